import { buildApiServer } from "../src/api/build.js";
import { removeTestConfigDirs, testConfig } from "../tests/helpers/config.js";
import { dropPrefix } from "../tests/helpers/redis.js";
import { ms, quick, report, stats, time } from "./lib.js";

/**
 * What a key's turn in the queue (src/store/turns.ts) costs a submission beside that key's own
 * backlog: POST /v1/localize through inject (no network), one key, no worker, with 0, 1,000 and
 * 5,000 of its jobs already waiting. A submission's cost must not grow with the backlog: one key's
 * batch of thousands would cost the square of its size, Redis blocked meanwhile.
 *
 *   npx tsx bench/turns.ts [--quick]
 */
const config = testConfig({ LOG_LEVEL: "silent", RATE_LIMIT_PER_MIN: "0", POLL_RATE_LIMIT_PER_MIN: "0", MAX_OPEN_JOBS_PER_KEY: "0", RESULT_CACHE_TTL_S: "0" });
const resolver = async (host: string) => (host === "github.com" ? ["140.82.112.3"] : Promise.reject(new Error(`${host}: not resolved in this bench`)));
const api = await buildApiServer(config, { logger: false, resolver });
const submit = (i: number) =>
  api.fastify.inject({
    method: "POST",
    url: "/v1/localize",
    payload: { repo: { url: "https://github.com/psf/requests.git", commit: "091991be0da19de9108dbe5e3752917fea3d7fdc" }, issue: `Session.request breaks on binary method names (${i})`, options: { policy: "baseline" } },
  });
try {
  const rows: Record<string, unknown>[] = [];
  let sent = 0;
  const sample = quick ? 100 : 300;
  for (const backlog of quick ? [0, 1_000] : [0, 1_000, 5_000]) {
    while (sent < backlog) {
      const res = await submit(sent++);
      if (res.statusCode !== 202) throw new Error(`submission ${sent}: ${res.statusCode} ${res.body}`);
    }
    const samples: number[] = [];
    for (let i = 0; i < sample; i++) samples.push((await time(() => submit(sent++)))[0]);
    const s = stats(samples);
    rows.push({ waiting_before: backlog, n: s.n, p50_ms: ms(s.p50), p95_ms: ms(s.p95), max_ms: ms(s.max) });
  }
  report("turns", { rows });
} finally {
  await api.close();
  removeTestConfigDirs();
  await dropPrefix(config.QUEUE_PREFIX);
}
