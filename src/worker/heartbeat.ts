import type { Redis } from "ioredis";
import type { Keys } from "../store/keys.js";
import { liveWorkers, type ModelState } from "../store/workers.js";
import { within } from "../queue/connection.js";

/**
 * Each worker says every few seconds that it is alive and whether its Docker engine and
 * model server answer. The API's /readyz reads these (it never touches Docker or the
 * model itself), and a starting worker knows a sandbox whose owner stopped beating is an
 * orphan.
 */
export interface HeartbeatStatus {
  docker: boolean;
  model: ModelState;
}

export const HEARTBEAT_TTL_S = 30;
const INTERVAL_MS = 10_000;
/**
 * A probe slower than this is an engine that does not answer (the model server's look is bounded
 * at 3 s of its own): said so, as the engine's being down is, while the heartbeat goes on.
 */
const PROBE_WAIT_MS = 5_000;

export class Heartbeat {
  private timer: NodeJS.Timeout | undefined;
  private readonly started = new Date().toISOString();
  private status: HeartbeatStatus = { docker: false, model: "none" };

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    readonly id: string,
    private readonly probe: () => Promise<HeartbeatStatus>,
    /** The owner label of this worker's sandboxes: a worker reaping them knows them as ours while we beat. */
    private readonly sandboxOwner?: string,
  ) {}

  /**
   * Says it is alive first, with what the last probe found, then probes: a probe that hangs (an
   * engine that does not answer) must not let the heartbeat lapse, or another worker would take
   * this one's running sandboxes for a dead worker's. The probe is bounded; past that, the
   * engine is said not to answer (a hung dockerd read as up while jobs sat in their sandbox's start).
   */
  async beat(): Promise<void> {
    await this.write();
    this.status = (await within(this.probe(), PROBE_WAIT_MS)) ?? { ...this.status, docker: false };
    await this.write();
  }

  private async write(): Promise<void> {
    const record = { id: this.id, pid: process.pid, started: this.started, at: new Date().toISOString(), ...this.status, ...(this.sandboxOwner ? { sandboxOwner: this.sandboxOwner } : {}) };
    await this.redis
      .multi()
      .set(this.keys.workerHeartbeat(this.id), JSON.stringify(record), "EX", HEARTBEAT_TTL_S)
      .set(this.keys.workersAlive, "1", "EX", HEARTBEAT_TTL_S)
      .exec();
  }

  async start(): Promise<void> {
    // Bounded as every beat's: an engine that does not answer must not hold the worker's start.
    this.status = (await within(this.probe(), PROBE_WAIT_MS)) ?? { ...this.status, docker: false };
    await this.write();
    this.timer = setInterval(() => void this.beat().catch(() => undefined), INTERVAL_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.redis.del(this.keys.workerHeartbeat(this.id)).catch(() => undefined);
    // The last worker to stop says so at once; one that dies lets it expire.
    if ((await liveWorkers(this.redis, this.keys).catch(() => [{}])).length === 0) await this.redis.del(this.keys.workersAlive).catch(() => undefined);
  }
}
