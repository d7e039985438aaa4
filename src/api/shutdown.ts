import { setMaxListeners } from "node:events";
import type { FastifyInstance } from "fastify";

/** How long after the hand-off the connections still open are cut: time for the hand-off answers to be written. */
const CUT_AFTER_MS = 2_000;

/**
 * How the API lets go of the connections it holds when it stops, so that a deploy neither waits
 * on them until it is killed nor cancels what they follow. Once it starts closing (new
 * connections refused), event streams end: a client resumes them elsewhere (Last-Event-ID), or
 * reads the job. Calls held for an agent (a tool call, a `wait`) get the grace to end as usual,
 * then answer with the job as it stands (`handOff`), which goes on in the queue; whatever is
 * still open shortly after is cut, so that closing ends within the grace and a moment.
 */
export class ApiShutdown {
  private readonly closingCtl = new AbortController();
  private readonly handOffCtl = new AbortController();
  readonly closing = this.closingCtl.signal;
  readonly handOff = this.handOffCtl.signal;

  constructor() {
    // One listener per request held (a stream, a wait, a call): thousands are expected, and each
    // is removed when its request ends; Node's warning of a leak past ten misled operators.
    setMaxListeners(0, this.closing, this.handOff);
  }

  attach(fastify: FastifyInstance, graceMs: number): void {
    const timers: NodeJS.Timeout[] = [];
    fastify.addHook("preClose", async () => {
      this.closingCtl.abort();
      timers.push(setTimeout(() => this.handOffCtl.abort(), graceMs));
      timers.push(setTimeout(() => fastify.server.closeAllConnections(), graceMs + CUT_AFTER_MS));
    });
    fastify.addHook("onClose", async () => {
      for (const t of timers) clearTimeout(t);
      this.handOffCtl.abort();
    });
  }
}

/**
 * A signal that aborts when a request's own does or when the API stops (`stopping`, one of the
 * shutdown's signals), with `dispose` to let go of the latter once the request is done. Not
 * AbortSignal.any: on Node 20 it keeps a reference to each signal made in the one that lives as
 * long as the process, for ever (nodejs/node#55351), one per held request: 100,000 waits, 4 MB.
 */
export function untilEither(own: AbortSignal, stopping: AbortSignal): { signal: AbortSignal; dispose(): void } {
  const ctl = new AbortController();
  const abort = () => ctl.abort();
  const dispose = () => {
    own.removeEventListener("abort", abort);
    stopping.removeEventListener("abort", abort);
  };
  if (own.aborted || stopping.aborted) ctl.abort();
  else {
    own.addEventListener("abort", abort, { once: true });
    stopping.addEventListener("abort", abort, { once: true });
  }
  return { signal: ctl.signal, dispose };
}

/** Runs `work` with a signal that aborts with either, and lets go of `stopping` when it is done. */
export async function untilEitherFor<T>(own: AbortSignal, stopping: AbortSignal, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const until = untilEither(own, stopping);
  try {
    return await work(until.signal);
  } finally {
    until.dispose();
  }
}
