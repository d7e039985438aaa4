import type { Redis } from "ioredis";
import { withErrorListener } from "../queue/connection.js";
import { TERMINAL_EVENTS, type JobEvents, type StoredEvent } from "../store/events.js";
import type { JobStore } from "../store/jobStore.js";
import { hasEnded } from "./waitFor.js";

/**
 * A job's events from `after` on, until its final one: what the SSE route streams and the
 * MCP tool turns into progress. Yields null when nothing happened for a while (a chance to
 * send a keep-alive). A job that ended without announcing it (failed as stalled, expired)
 * gets a final event made from its record, so a follower never waits forever.
 */
export async function* followJob(redis: Redis, events: JobEvents, store: JobStore, id: string, after: string, signal: AbortSignal): AsyncGenerator<StoredEvent | null> {
  // A duplicate does not carry the original's listeners: a dropped Redis fails the read instead.
  const conn = withErrorListener(redis.duplicate());
  let last = after;
  try {
    while (!signal.aborted) {
      const batch = await events.read(conn, id, last, 5_000);
      for (const stored of batch) {
        yield stored;
        last = stored.id;
        if (TERMINAL_EVENTS.has(stored.event.type)) return;
      }
      if (batch.length > 0) continue;
      const current = await store.get(id);
      if (!current || hasEnded(current)) {
        const type = current?.status === "succeeded" ? "finished" : current?.status === "cancelled" ? "cancelled" : "failed";
        yield { id: last, event: { type, at: new Date().toISOString(), data: { status: current?.status ?? "expired" } } };
        return;
      }
      yield null;
    }
  } finally {
    conn.disconnect();
  }
}
