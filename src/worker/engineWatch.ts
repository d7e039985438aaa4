import type { Logger } from "pino";
import { within } from "../queue/connection.js";
import { every } from "./every.js";

/** An engine that does not answer its ping within this is still down (a hung engine holds the ping). */
const PING_MS = 5_000;

/**
 * A worker whose Docker engine cannot start a sandbox (unreachable, the sandbox image missing)
 * takes no job until it can: each job it took failed within milliseconds, so one worker so
 * broken emptied the shared queue as failures while healthy workers stood by. The job that met
 * it is handed back (processor.ts); from then the worker takes no other, asks the engine every
 * `everyMs`, and takes jobs again once it answers. Returns what the processor calls, and the stop.
 */
export function watchEngine(
  pause: { pause(): Promise<void>; resume(): void },
  ping: () => Promise<void>,
  logger: Logger,
  everyMs: number,
): { down(err: Error): void; stop(): void } {
  let stopAsking: (() => void) | undefined;
  let stopped = false;
  const ask = async () => {
    // Still down (refused, or no answer in time): asked again at the next tick.
    if (!(await within(ping().then(() => true), PING_MS)) || stopped) return;
    stopAsking?.();
    stopAsking = undefined;
    pause.resume();
    logger.warn("the Docker engine can start sandboxes again: taking jobs");
  };
  return {
    down(err) {
      if (stopAsking || stopped) return;
      stopAsking = every(everyMs, ask);
      void pause.pause().catch((e: unknown) => logger.warn({ err: e }, "pausing the worker failed"));
      logger.error({ reason: err.message }, "the Docker engine cannot start a sandbox: taking no job until it can (the job is handed back for another worker)");
    },
    stop() {
      stopped = true;
      stopAsking?.();
    },
  };
}
