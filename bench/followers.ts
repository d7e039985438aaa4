import { Redis } from "ioredis";
import { JobEvents } from "../src/store/events.js";
import { removeTestConfigDirs, testConfig } from "../tests/helpers/config.js";
import { ownRedis } from "../tests/helpers/redis.js";
import { freePort, serviceEnv, startProcess, waitFor } from "../tests/helpers/processes.js";
import { ms, quick, report, stats } from "./lib.js";

/**
 * Jobs followed at once: N event streams (spread over 20 queued jobs) on one API process, its
 * own process, on a Redis of the bench's own. Each round appends an event to every job, stamped
 * with the time it was appended; what is measured is how long each follower takes to have it,
 * and how many Redis clients the API holds meanwhile. No worker runs: events are appended as a
 * worker appends them.
 *
 *   npx tsx bench/followers.ts [--quick] [--levels 100,1000] [--name followers]
 */
const arg = (name: string) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : undefined);
const levels = (arg("--levels") ?? (quick ? "100" : "100,1000")).split(",").map(Number);
const rounds = quick ? 3 : 10;
const JOBS = 20;

const redisServer = await ownRedis();
redisServer.start();
const config = testConfig({ REDIS_URL: redisServer.url });
const port = await freePort();
const api = startProcess(
  "src/api/server.ts",
  serviceEnv(config, {
    API_PORT: String(port),
    LOG_LEVEL: "silent",
    MAX_FOLLOWERS: "100000",
    MAX_FOLLOWERS_PER_KEY: "100000",
    NO_WORKER_WAIT_S: "86400",
    RATE_LIMIT_PER_MIN: "0",
    POLL_RATE_LIMIT_PER_MIN: "0",
    MAX_OPEN_JOBS_PER_KEY: "0",
    ALLOW_PRIVATE_HOSTS: "true",
    ALLOW_HTTP_URLS: "true",
  }),
);
const redis = new Redis(redisServer.url);
const clients = async () => ((await redis.client("LIST")) as string).trim().split("\n").length - 1;
const results: Record<string, unknown> = {};
try {
  const base = `http://127.0.0.1:${port}`;
  await waitFor(async () => ((await fetch(`${base}/healthz`).catch(() => null))?.ok ? true : undefined), 60_000, "the API");
  const ids: string[] = [];
  for (let i = 0; i < JOBS; i++) {
    const post = await fetch(`${base}/v1/localize`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ repo: { url: "http://127.0.0.1:9/r.git", commit: "a".repeat(40) }, issue: `followed job ${i}`, options: { cache: false } }),
    });
    const { id } = (await post.json()) as { id?: string };
    if (!id) throw new Error(`the API refused the bench's job (${post.status})`);
    ids.push(id);
  }
  const events = new JobEvents(redis, config.QUEUE_PREFIX, 3600);
  for (const n of levels) {
    const idle = await clients();
    const stops: AbortController[] = [];
    const latencies: number[] = [];
    // The stamps of this level's rounds: a stream opened later replays the earlier levels' events too.
    const published = new Set<number>();
    // Per follower: the rounds it has seen, by the stamp each carried.
    const seen = Array.from({ length: n }, () => new Set<number>());
    // Per follower: whether its stream has begun (its first event, queued, arrived).
    const open = Array.from({ length: n }, () => false);
    const followers = Array.from({ length: n }, async (_, f) => {
      const stop = new AbortController();
      stops.push(stop);
      const res = await fetch(`${base}/v1/jobs/${ids[f % JOBS]}/events`, { signal: stop.signal });
      if (res.status !== 200) throw new Error(`follower ${f}: ${res.status}`);
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const chunk = await reader.read().catch(() => ({ done: true, value: undefined }));
        if (chunk.done) return;
        const now = Date.now();
        buffer += decoder.decode(chunk.value, { stream: true });
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          if (/^event: queued$/m.test(buffer.slice(0, cut))) open[f] = true;
          const data = /^data: (.*)$/m.exec(buffer.slice(0, cut))?.[1];
          buffer = buffer.slice(cut + 2);
          const t = data ? (JSON.parse(data) as { data?: { t?: number } }).data?.t : undefined;
          if (typeof t === "number" && published.has(t) && !seen[f]!.has(t)) {
            seen[f]!.add(t);
            latencies.push(now - t);
          }
        }
      }
    });
    // Every follower's stream open (its first event, queued, read) before the rounds: one still
    // connecting would count its connection's time as the event's.
    await waitFor(async () => (open.every(Boolean) ? true : undefined), 120_000, "every stream to open");
    await new Promise((r) => setTimeout(r, 500));
    const during = await clients();
    for (let round = 0; round < rounds; round++) {
      const t = Date.now();
      published.add(t);
      await Promise.all(ids.map((id) => events.publish(id, "turn", { turn: round + 1, max_turns: rounds, t })));
      await waitFor(async () => (seen.every((s) => s.has(t)) ? true : undefined), 30_000, `round ${round} to reach every follower`);
      await new Promise((r) => setTimeout(r, 300));
    }
    for (const stop of stops) stop.abort();
    await Promise.allSettled(followers);
    const s = stats(latencies);
    results[`followers_${n}`] = { delivery_ms: { p50: ms(s.p50), p99: ms(s.p99), max: ms(s.max), n: s.n }, redis_clients_idle: idle, redis_clients_following: during };
    await new Promise((r) => setTimeout(r, 1_000));
  }
  report(arg("--name") ?? "followers", { jobs: JOBS, rounds, ...results });
} finally {
  redis.disconnect();
  await api.stop();
  redisServer.stop();
  removeTestConfigDirs();
}
process.exit(0);
