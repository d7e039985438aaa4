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
