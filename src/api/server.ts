import { loadConfigOrExit } from "../config/env.js";
import { cannotStartLine } from "../queue/connection.js";
import { buildApiServer } from "./build.js";

/** The API process: listens, and on SIGTERM/SIGINT stops taking requests and drains. */
const config = loadConfigOrExit();
// At boot what is wrong (a key file, Redis, a port in use) is named on one line, as the worker does.
const cannotStart = (err: Error): never => {
  process.stderr.write(cannotStartLine("api", err, config.REDIS_URL));
  process.exit(1);
};
const server = await buildApiServer(config).catch(cannotStart);
await server.fastify.listen({ host: config.API_HOST, port: config.API_PORT }).catch(async (err: Error) => {
  await server.close().catch(() => undefined);
  cannotStart(err);
});
// With auth off every caller is one key: one client's rate, open jobs and streams are everyone's,
// and every job is everyone's to read. Fine on a laptop; said when others can reach the port.
if (config.AUTH_MODE === "off" && !/^(127\.|localhost$|::1$)/.test(config.API_HOST)) {
  server.fastify.log.warn({ host: config.API_HOST }, "AUTH_MODE=off on an address others can reach: every caller shares one key's limits and reads every job; set AUTH_MODE=api_key and API_KEYS");
}

let closing = false;
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => {
    if (closing) return;
    closing = true;
    server.fastify.log.info({ signal }, "shutting down");
    server.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}
