import type { Redis } from "ioredis";
import { parseEntries, type StoredEvent } from "./events.js";
import { keys } from "./keys.js";

/** XREAD's answer: per stream, its entries as [id, [field, value, ...]]. */
type StreamEntries = Array<[string, string[]]>;

interface Waiter {
  key: string;
  after: string;
  settle(result: StreamEntries | Error): void;
}

/**
 * Every follower of a process reads its job's events through one blocking connection. A
 * blocking read holds its connection, so one per follower (event streams, calls held for
 * agents) made followers cost Redis clients, which the workers share: 2,000 followers per API
 * replica were 2,000 connections. Here one loop reads every followed stream at once (XREAD
 * takes many) and hands each follower what is new to it; a follower's first look, and a look
 * that must not wait, use the ordinary connection.
 *
 * Hand-written: ioredis has no multiplexed stream reader, and BullMQ's QueueEvents reads its
 * own single stream.
 */
export class EventHub {
  private readonly byKey = new Map<string, Set<Waiter>>();
  /** Set and cleared in the same turn as the loop's last look at who waits: a waiter is never left without one. */
  private running = false;
  private closed = false;
  private readonly k;

  constructor(
    /** Used for nothing else: it blocks. */
    private readonly reader: Redis,
    /** The process's ordinary connection, for reads that do not block. */
    private readonly plain: Redis,
    prefix: string,
    /**
     * How long the shared read blocks before it looks again at who follows what: a follower that
     * begins meanwhile has what was there already at once (its own first look) and what comes
     * after within this time.
     */
    private readonly blockMs = 250,
  ) {
    this.k = keys(prefix);
  }

  /**
   * A job's events after `afterId` ("0" for all), waiting up to `waitMs` for the first one;
   * [] when none came, or `signal` fired. Throws when Redis cannot be read.
   */
  async read(jobId: string, afterId: string, waitMs: number, signal?: AbortSignal): Promise<EventBatch> {
    const key = this.k.events(jobId);
    const there = batchOf(await this.plain.xread("COUNT", 500, "STREAMS", key, afterId));
    if (there.last !== undefined || waitMs <= 0 || signal?.aborted || this.closed) return there;
    const entries = await new Promise<StreamEntries>((resolve, reject) => {
      let settled = false;
      const waiter: Waiter = {
        key,
        after: afterId,
        settle: (result) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          signal?.removeEventListener("abort", onAbort);
          const waiting = this.byKey.get(key);
          waiting?.delete(waiter);
          if (waiting?.size === 0) this.byKey.delete(key);
          if (result instanceof Error) reject(result);
          else resolve(result);
        },
      };
      const timer = setTimeout(() => waiter.settle([]), waitMs);
      const onAbort = () => waiter.settle([]);
      signal?.addEventListener("abort", onAbort, { once: true });
      const waiting = this.byKey.get(key) ?? new Set<Waiter>();
      waiting.add(waiter);
      this.byKey.set(key, waiting);
      if (!this.running) {
        this.running = true;
        void this.run();
      }
    });
    return batchOf([[key, entries]]);
  }

  /** Ends every wait with nothing (the process is stopping) and lets the reader go. */
  close(): void {
    this.closed = true;
    for (const waiting of [...this.byKey.values()]) for (const w of [...waiting]) w.settle([]);
    this.reader.disconnect();
  }

  private async run(): Promise<void> {
    for (;;) {
      if (this.closed || this.byKey.size === 0) {
        this.running = false;
        return;
      }
      // Each stream from the earliest entry any of its followers still waits after.
      const from = new Map<string, string>();
      for (const [key, waiting] of this.byKey) {
        for (const w of waiting) {
          const earliest = from.get(key);
          if (earliest === undefined || isAfter(earliest, w.after)) from.set(key, w.after);
        }
      }
      let answer: Array<[string, StreamEntries]> | null;
      try {
        answer = (await this.reader.xread("COUNT", 500, "BLOCK", this.blockMs, "STREAMS", ...from.keys(), ...from.values())) as Array<[string, StreamEntries]> | null;
      } catch (err) {
        if (this.closed) {
          this.running = false;
          return;
        }
        // No answer within its time (a connection gone half-open, which still reads as ready):
        // a new one, rather than every follower of the process waiting out its own timeout.
        if (err instanceof Error && /timed out/i.test(err.message)) {
          this.reader.disconnect(true);
          continue;
        }
        // Redis away: every follower is told (as its own read would have failed), not left waiting.
        for (const key of from.keys()) for (const w of [...(this.byKey.get(key) ?? [])]) w.settle(err as Error);
        continue;
      }
      for (const [key, entries] of answer ?? []) {
        const readFrom = from.get(key)!;
        for (const w of [...(this.byKey.get(key) ?? [])]) {
          // The usual case: it waits from where the read began, and all of it is news.
          if (w.after === readFrom) {
            w.settle(entries);
            continue;
          }
          // Joined during the read, from further back: what lies between is not in this answer;
          // the next read, from its place, has it.
          if (isAfter(readFrom, w.after)) continue;
          const news = entries.filter(([id]) => isAfter(id, w.after));
          if (news.length > 0) w.settle(news);
        }
      }
    }
  }
}

/** A job's events as read, and the id of the last entry read (an entry not one of ours included), to read on from. */
export interface EventBatch {
  events: StoredEvent[];
  last?: string;
}

function batchOf(answer: unknown): EventBatch {
  const entries = ((answer ?? []) as Array<[string, StreamEntries]>).flatMap(([, e]) => e);
  return { events: parseEntries(answer), last: entries.at(-1)?.[0] };
}

/** Whether stream id `a` comes after `b` (ids are `<ms>-<seq>`; "0" is before all). */
function isAfter(a: string, b: string): boolean {
  const [am = 0n, as = 0n] = a.split("-").map((p) => BigInt(p));
  const [bm = 0n, bs = 0n] = b.split("-").map((p) => BigInt(p));
  return am > bm || (am === bm && as > bs);
}
