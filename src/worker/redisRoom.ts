import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { redisAtMaxMemory, within } from "../queue/connection.js";

/** How long a look at Redis's memory may take before it counts as not read (Redis away: nothing changes). */
const LOOK_MS = 2_000;

/**
 * Takes no job while Redis is at its maxmemory (noeviction refuses writes): each job taken then
 * could not keep its trajectory, its events or its end, and the whole queue was failed within a
 * second, where waiting keeps every job for when old ones have expired. Returns the stop.
 */
export function pauseWhileRedisFull(worker: { pause(doNotWaitActive?: boolean): Promise<void>; resume(): void }, redis: Redis, logger: Logger, everyMs: number): () => void {
  let paused = false;
  let looking = false;
  const look = async () => {
    if (looking) return;
    looking = true;
    try {
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
    } finally {
      looking = false;
    }
  };
  const timer = setInterval(() => void look().catch((err: unknown) => logger.warn({ err }, "looking at Redis's memory failed")), everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
