import type { EventHub } from "../store/eventHub.js";
import { TERMINAL_EVENTS, type StoredEvent } from "../store/events.js";
import { hasEnded, type JobStore, type JobView } from "../store/jobStore.js";
import { waitForEnd } from "./waitFor.js";

/** Who says whether any worker is alive, and how long a queued job may wait with none before its follower is told (`no_worker`). */
export interface NoWorkerWatch {
  anyAlive(): Promise<boolean>;
  afterMs: number;
}

/** The status a job's record says for each way its events announce its end. */
const STATUS_OF_END: Record<string, JobView["status"]> = { finished: "succeeded", failed: "failed", cancelled: "cancelled" };

/**
 * A job's events from `after` on, until its final one: what the SSE route streams and the
 * MCP tool turns into progress. Yields null when nothing happened for a while (a chance to
 * send a keep-alive). A job that ended without announcing it (failed as stalled, expired)
 * gets a final event made from its record, so a follower never waits forever. With `watch`, a
 * job still queued (or running, its worker dead) after `watch.afterMs` with no worker alive gets
 * one `no_worker` event (not stored, and not its end: it runs if a worker starts); a caller
 * holding a call for an agent gives up on it.
 */
export async function* followJob(hub: EventHub, store: JobStore, id: string, after: string, signal: AbortSignal, watch?: NoWorkerWatch): AsyncGenerator<StoredEvent | null> {
  let last = after;
  // Counted from the follow's start: its first look at the job (after a quiet read) says whether
  // it is still queued with no worker, without a read of its own up front.
  let alone: number | undefined = watch ? Date.now() : undefined;
  let told = false;
  /**
   * How long the job has been queued, or running, with no worker alive, as far as this follower
   * has seen. Running with none: its worker died, and nothing retries it until a worker starts.
   */
  const waitedAlone = async (current: JobView | null): Promise<number> => {
    if (!watch || told || (current?.status !== "queued" && current?.status !== "running") || (await watch.anyAlive())) {
      alone = undefined;
      return 0;
    }
    alone ??= Date.now();
    return Date.now() - alone;
  };
  // A follower resuming (Last-Event-ID) a job that has ended reads what is left without
  // waiting: the blocking read held it 5 s before its end was told.
  let block = after !== "0" && (await store.get(id).then((v) => !v || hasEnded(v))) ? 0 : 5_000;
  // The wait ends with the signal, not up to 5 s later: a stopping API lets go at once.
  while (!signal.aborted) {
    let read;
    try {
      read = await hub.read(id, last, block, signal);
      block = 5_000;
    } catch (err) {
      if (signal.aborted) return;
      throw err;
    }
    if (signal.aborted) return;
    const batch = read.events;
    for (const stored of batch) {
      const terminal = TERMINAL_EVENTS.has(stored.event.type);
      // The worker announces a job's end just before BullMQ records it: a client that reads
      // the job on this event must find it ended, with its result (it found it running).
      if (terminal) {
        const now = await store.get(id);
        const recorded = now && (await waitForEnd(store, now, 5, signal));
        // An end its record does not say: the worker died between announcing and recording it
        // (its retry may end the job otherwise), or this was an earlier attempt's. The stream
        // goes on, and ends with the end the record comes to say.
        if (recorded && (!hasEnded(recorded) || STATUS_OF_END[stored.event.type] !== recorded.status)) {
          last = stored.id;
          continue;
        }
      }
      yield stored;
      last = stored.id;
      if (terminal) return;
    }
    // Past what was read, entries not ours included (a newer worker's event type in a rolling
    // deploy): read again from them, the same unreadable entries were read for ever.
    if (read.last !== undefined) last = read.last;
    if (batch.length > 0 || read.last !== undefined) continue;
    const current = await store.get(id);
    if (!current || hasEnded(current)) {
      const type = current?.status === "succeeded" ? "finished" : current?.status === "cancelled" ? "cancelled" : "failed";
      yield { id: last, event: { type, at: new Date().toISOString(), data: { status: current?.status ?? "expired" } } };
      return;
    }
    const waited = await waitedAlone(current);
    if (watch && waited >= watch.afterMs) {
      told = true;
      const seconds = Math.round(waited / 1000);
      const start = "start one (`npm run worker`, or the compose file's worker service)";
      const message =
        current?.status === "running"
          ? `no worker is running: the worker running the job stopped ${seconds} s ago or more; ${start} and the job is tried again from its start (once: a second worker lost fails it as worker_lost), or ask again`
          : `no worker is running: the job waited ${seconds} s and none took it; ${start} and ask again`;
      yield { id: last, event: { type: "no_worker", at: new Date().toISOString(), data: { seconds, message, status: current?.status } } };
      continue;
    }
    yield null;
  }
}

