import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { buildApiServer, type ApiServer } from "../src/api/build.js";
import { removeTestConfigDirs, testConfig } from "../tests/helpers/config.js";
import { dropPrefix } from "../tests/helpers/redis.js";
import { freePort } from "../tests/helpers/processes.js";
import { ms, quick, report } from "./lib.js";

/**
 * API latency under load: POST /v1/localize (validate, enqueue in Redis) and GET
 * /v1/jobs/{id}, with autocannon at a fixed rate against the real server on loopback and
 * the real Redis. No worker runs: the API's own cost is measured. autocannon runs as its own
 * process so that the load generator does not share the server's event loop.
 *
 *   npx tsx bench/api.ts [--quick] [--rate N]
 *
 *   npx tsx bench/api.ts [--quick]
 */
const config = testConfig({ LOG_LEVEL: "silent", RATE_LIMIT_PER_MIN: "0", POLL_RATE_LIMIT_PER_MIN: "0", MAX_OPEN_JOBS_PER_KEY: "0" });
// Only vitest's afterAll removes testConfig's dirs: here they, and the jobs enqueued, go in the
// finally, however the run ends.
let server: ApiServer | undefined;
try {
  // github.com answered at once, as a warm DNS cache does: what is measured is the API's own
  // time, and it runs on machines without DNS (where every POST was refused, and each GET a 404).
  const resolver = async (host: string) => (host === "github.com" ? ["140.82.112.3"] : Promise.reject(new Error(`${host}: not resolved in this bench`)));
  server = await buildApiServer(config, { logger: false, resolver });
  const port = await freePort();
  await server.fastify.listen({ host: "127.0.0.1", port });
  const url = `http://127.0.0.1:${port}`;
  const duration = quick ? 5 : 15;
  const rate = process.argv.includes("--rate") ? Number(process.argv[process.argv.indexOf("--rate") + 1]) : 500;

  const body = JSON.stringify({
    repo: { url: "https://github.com/psf/requests.git", commit: "091991be0da19de9108dbe5e3752917fea3d7fdc" },
    issue: "Session.request breaks on binary method names",
    options: { policy: "baseline", cache: false },
  });
  interface Result {
    requests: { average: number };
    latency: { p50: number; p90: number; p99: number; max: number };
    non2xx: number;
    errors: number;
  }
  const run = async (target: string, extra: string[] = [], seconds = duration): Promise<Result> => {
    const args = ["autocannon", "-j", "-c", "20", "-d", String(seconds), "-R", String(rate), ...extra, target];
    const { stdout } = await promisify(execFile)("npx", args, { maxBuffer: 64 << 20 });
    return JSON.parse(stdout) as Result;
  };
  const postArgs = ["-m", "POST", "-H", "content-type=application/json", "-b", body];
  // A few seconds at the same rate first, not recorded: the steady state is what is measured,
  // not V8 compiling the request path (which alone put ~1% of requests above 40 ms).
  await run(`${url}/v1/localize`, postArgs, 3);
  const post = await run(`${url}/v1/localize`, postArgs);
  const one = (await (await fetch(`${url}/v1/localize`, { method: "POST", headers: { "content-type": "application/json" }, body })).json()) as { id?: string };
  if (!one.id) throw new Error(`the API refused the bench's job: ${JSON.stringify(one).slice(0, 300)}`);
  const get = await run(`${url}/v1/jobs/${one.id}`);

  const summary = (r: Result) => ({
    requests_per_s: ms(r.requests.average),
    latency_ms: { p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99, max: r.latency.max },
    non_2xx: r.non2xx,
    errors: r.errors,
  });
  report("api", {
    offered_rate_per_s: rate,
    duration_s: duration,
    post_localize: summary(post),
    get_job: summary(get),
    target: "POST p99 <= 20 ms at 500 requests/s",
  });
} finally {
  await server?.close();
  await dropPrefix(config.QUEUE_PREFIX);
  removeTestConfigDirs();
}
process.exit(0);
