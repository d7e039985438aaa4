import { createHash, randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import type { Keys } from "./keys.js";

/**
 * The model server as a worker's probe found it: answering; away; answering but refusing this
 * service (its key, or it serves no model of MODEL_NAME), where jobs fail rather than fall back;
 * or none configured.
 */
export type ModelState = "ok" | "down" | "refused" | "none";

/** What each live worker last said of itself (see worker/heartbeat.ts). */
export interface WorkerStatus {
  id: string;
  at: string;
  docker: boolean;
  model: ModelState;
  /** The owner label of its sandboxes (workers of an earlier version do not say). */
  sandboxOwner?: string;
}

export async function liveWorkers(redis: Redis, keys: Keys): Promise<WorkerStatus[]> {
  const found: string[] = [];
  let cursor = "0";
  do {
    const [next, batch] = await redis.scan(cursor, "MATCH", keys.workerHeartbeatPattern, "COUNT", 200);
    cursor = next;
    found.push(...batch);
  } while (cursor !== "0");
  if (found.length === 0) return [];
  const raw = await redis.mget(...found);
  return raw.filter((r): r is string => r !== null).map((r) => JSON.parse(r) as WorkerStatus);
}

/**
 * Whether any worker is alive, asked of Redis at most once per `everyMs` however many followers
 * ask (each heartbeat also refreshes one shared key). Without that key the heartbeats themselves
 * are looked for, since workers of an earlier version beat without it (a rolling upgrade). When
 * Redis cannot tell, a worker is assumed: a blip must not make a follower give up.
 */
export class WorkerPresence {
  private askedAt = 0;
  private answer: Promise<boolean> | undefined;
  private listed: { at: number; workers: Promise<WorkerStatus[]> } | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly everyMs = 1_000,
  ) {}

  anyAlive(): Promise<boolean> {
    const now = Date.now();
    if (!this.answer || now - this.askedAt >= this.everyMs) {
      this.askedAt = now;
      this.answer = this.redis
        .exists(this.keys.workersAlive)
        .then(async (n) => n > 0 || (await this.statuses()).length > 0)
        .catch(() => true);
    }
    return this.answer;
  }

  /**
   * What each live worker last said of itself, read at most once per `everyMs` too: readyz is
   * open to anyone, and each read scans Redis's keys for heartbeats (300,000 keys: 354 ms).
   */
  statuses(): Promise<WorkerStatus[]> {
    const now = Date.now();
    if (!this.listed || now - this.listed.at >= this.everyMs) this.listed = { at: now, workers: liveWorkers(this.redis, this.keys) };
    return this.listed.workers;
  }
}

/** The sandbox owners of the live workers, by their heartbeats. */
export async function liveSandboxOwners(redis: Redis, keys: Keys): Promise<Set<string>> {
  return new Set((await liveWorkers(redis, keys)).flatMap((w) => (w.sandboxOwner ? [w.sandboxOwner] : [])));
}

/**
 * What tells this deployment's workers from another's on the same engine: an id kept in its
 * Redis under its queue's prefix, made by the first worker to ask. Two deployments whose Redis
 * URLs read the same (each compose project's `redis://redis:6379`) have two ids.
 */
export async function deploymentScope(redis: Redis, keys: Keys): Promise<string> {
  await redis.set(keys.deployment, randomBytes(16).toString("hex"), "NX");
  const id = await redis.get(keys.deployment);
  if (!id) throw new Error("Redis kept no deployment id");
  return createHash("sha256").update(id).digest("hex").slice(0, 16);
}
