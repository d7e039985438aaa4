import type { Redis } from "ioredis";
import type { Keys } from "../store/keys.js";
import { liveWorkers } from "../store/workers.js";

/**
 * Each worker says every few seconds that it is alive and whether its Docker engine and
 * model server answer. The API's /readyz reads these (it never touches Docker or the
 * model itself), and a starting worker knows a sandbox whose owner stopped beating is an
 * orphan.
 */
export interface HeartbeatStatus {
  docker: boolean;
  model: "ok" | "down" | "none";
}

export const HEARTBEAT_TTL_S = 30;
const INTERVAL_MS = 10_000;

export class Heartbeat {
  private timer: NodeJS.Timeout | undefined;
  private readonly started = new Date().toISOString();

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    readonly id: string,
    private readonly probe: () => Promise<HeartbeatStatus>,
    /** The owner label of this worker's sandboxes: a worker reaping them knows them as ours while we beat. */
    private readonly sandboxOwner?: string,
  ) {}

  async beat(): Promise<void> {
    const status = await this.probe();
    const record = { id: this.id, pid: process.pid, started: this.started, at: new Date().toISOString(), ...status, ...(this.sandboxOwner ? { sandboxOwner: this.sandboxOwner } : {}) };
    await this.redis
      .multi()
      .set(this.keys.workerHeartbeat(this.id), JSON.stringify(record), "EX", HEARTBEAT_TTL_S)
      .set(this.keys.workersAlive, "1", "EX", HEARTBEAT_TTL_S)
      .exec();
  }

  async start(): Promise<void> {
    await this.beat();
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
