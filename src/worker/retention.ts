import type { Queue } from "bullmq";
import type { Redis } from "ioredis";

/** Ended jobs removed a call, per queue and end state (BullMQ's clean runs as one script: bounded). */
const BATCH = 1_000;
const MAX_BATCHES = 20;

/**
 * Removes what the queues keep of jobs that ended more than `retentionMs` ago: their records (the
 * issue, a patch, a sealed token, a callback URL, the answer) and their entries in the queue's
 * event stream (which carries each answer). BullMQ removes an ended job past its age only when
 * another job of its queue ends the same way, so on a quiet service, and for failed and cancelled
 * jobs, records stayed for ever while the API answered 404 for them; its event stream is cut by
 * length alone (10,000 entries), which on a quiet service is months. Returns how many jobs went.
 */
export async function dropEndedJobs(redis: Redis, queues: Queue[], retentionMs: number): Promise<number> {
  let removed = 0;
  for (const queue of queues) {
    for (const state of ["completed", "failed"] as const) {
      for (let i = 0; i < MAX_BATCHES; i++) {
        const ids = await queue.clean(retentionMs, BATCH, state);
        removed += ids.length;
        if (ids.length < BATCH) break;
      }
    }
    // Stream ids begin with their time in ms: what was added before the cut goes. Exactly, not
    // `~` (whole nodes of 100 entries alone): on a quiet service one node spans weeks.
    await redis.xtrim(queue.keys.events!, "MINID", Date.now() - retentionMs);
  }
  return removed;
}
