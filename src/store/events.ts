import type { Redis } from "ioredis";
import { z } from "zod";
import { keys } from "./keys.js";

/**
 * A job's progress as a Redis stream: the worker appends, any number of API replicas read.
 * Late subscribers replay from the start, so nobody misses what already happened.
 */

export const jobEventTypeSchema = z.enum([
  "queued",
  "started",
  "repository_ready",
  "sandbox_ready",
  "turn",
  "command",
  // The model server failed the job (llm_unavailable, llm_timeout) and the baseline answers it.
  "fallback",
  "finished",
  "failed",
  "cancelled",
  // Not stored: a follower is told it when its job has waited NO_WORKER_WAIT_S with no worker alive.
  "no_worker",
]);
export type JobEventType = z.infer<typeof jobEventTypeSchema>;
/** How long a job's events are kept once it has ended (a follower that reads later gets its end from the record). */
export const EVENTS_AFTER_END_S = 3600;

export const TERMINAL_EVENTS: ReadonlySet<JobEventType> = new Set(["finished", "failed", "cancelled"]);

export const jobEventSchema = z.object({
  type: jobEventTypeSchema,
  at: z.string(),
  data: z.record(z.string(), z.unknown()).optional(),
});
export type JobEvent = z.infer<typeof jobEventSchema>;

export interface StoredEvent {
  /** Stream entry id; the SSE `id:` so clients can resume with Last-Event-ID. */
  id: string;
  event: JobEvent;
}

const MAX_EVENTS = 2000;

export class JobEvents {
  private readonly k;

  constructor(
    private readonly redis: Redis,
    prefix: string,
    private readonly retentionS: number,
  ) {
    this.k = keys(prefix);
  }

  async publish(jobId: string, type: JobEventType, data?: Record<string, unknown>): Promise<void> {
    const event: JobEvent = { type, at: new Date().toISOString(), ...(data ? { data } : {}) };
    const key = this.k.events(jobId);
    // A job's steps matter while someone follows it; once it has ended its record says how, and
    // a week of every job's steps (~5 KB each) was most of what Redis held for it.
    const ttl = TERMINAL_EVENTS.has(type) ? Math.min(this.retentionS, EVENTS_AFTER_END_S) : this.retentionS;
    await this.redis.multi().xadd(key, "MAXLEN", "~", MAX_EVENTS, "*", "e", JSON.stringify(event)).expire(key, ttl).exec();
  }
}

/** The events in an XREAD answer, in order; an entry that is not one of ours is passed over. */
export function parseEntries(answer: unknown): StoredEvent[] {
  const out: StoredEvent[] = [];
  for (const [, entries] of (answer ?? []) as Array<[string, Array<[string, string[]]>]>) {
    for (const [id, fields] of entries) {
      const raw = fields[1];
      if (!raw) continue;
      const parsed = jobEventSchema.safeParse(JSON.parse(raw));
      if (parsed.success) out.push({ id, event: parsed.data });
    }
  }
  return out;
}
