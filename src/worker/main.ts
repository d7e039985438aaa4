import { loadConfigOrExit } from "../config/env.js";
import { cannotStartLine } from "../queue/connection.js";
import { startWorker } from "./build.js";

/** The worker process. On SIGTERM it stops taking jobs and finishes or hands back its own. */
const config = loadConfigOrExit();
const running = await startWorker(config).catch((err: Error) => {
  // At boot a missing dependency is named on one line, not a stack: a supervisor restarts the worker.
  process.stderr.write(cannotStartLine("worker", err, config.REDIS_URL));
  process.exit(1);
});

let closing = false;
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => {
    if (closing) return;
    closing = true;
    running.logger.info({ signal }, "worker shutting down");
    running.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}
