import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { redisAtMaxMemory, within } from "../queue/connection.js";
import { every } from "./every.js";

/** How long a look at Redis may take before it counts as not read (Redis away: nothing changes). */
const LOOK_MS = 2_000;

/**
 * What a worker watches of its Redis while it runs, every `everyMs`:
 * - at its maxmemory (noeviction refuses writes), it takes no job: each job taken then could not
 *   keep its trajectory, its events or its end, and the whole queue was failed within a second,
 *   where waiting keeps every job for when old ones have expired;
 * - come back empty (restarted without persistence, flushed, a failover to an empty replica): said
 *   once at error, since every job it held is gone (their ids answer 404) and nothing else says so.
 * `marker` is a key the deployment keeps for as long as Redis keeps its data. Returns the stop.
 */
export function watchRedis(worker: { pause(doNotWaitActive?: boolean): Promise<void>; resume(): void }, redis: Redis, marker: string, logger: Logger, everyMs: number): () => void {
  let paused = false;
  let emptySaid = false;
  const look = async () => {
    const full = await within(redisAtMaxMemory(redis), LOOK_MS);
    if (full === true && !paused) {
      paused = true;
      await worker.pause(true);
      logger.error("Redis is full (maxmemory, noeviction): taking no job until it has room (old jobs expire after JOB_TTL_S; or raise maxmemory)");
    } else if (full === false && paused) {
      paused = false;
      worker.resume();
      logger.warn("Redis has room again: taking jobs");
    }
    if (!emptySaid && (await within(redis.exists(marker), LOOK_MS)) === 0) {
      emptySaid = true;
      logger.error("Redis came back empty (restarted without persistence, flushed, or an empty replica promoted): every job it held is gone, and their ids answer 404; keep Redis's data (appendonly yes, docs/deployment.md)");
    }
  };
  return every(everyMs, () => look().catch((err: unknown) => logger.warn({ err }, "looking at Redis failed")));
}
