import { Redis } from "ioredis";
import { startFakeModel, type ScriptedReply } from "../tests/helpers/fakeModel.js";
import { makeGitFixture, SAMPLE_FILES } from "../tests/helpers/gitFixture.js";
import { removeTestConfigDirs, testConfig } from "../tests/helpers/config.js";
import { ownRedis } from "../tests/helpers/redis.js";
import { freePort, serviceEnv, startProcess, waitFor } from "../tests/helpers/processes.js";
import { loadBench } from "../src/eval/bench.js";
import { quick, report } from "./lib.js";

/**
 * What a job leaves in Redis while JOB_TTL_S keeps it, by key kind: N baseline jobs, then N
 * model jobs (a stand-in model reading a 400-line file in 100-line chunks over 6 turns, as
 * CodeScout reads), through an API and a worker on a Redis of the bench's own. Measured when
 * every job has ended, and without the event streams (EVENTS_AFTER_END_S, an hour, later).
 * With --bench, the baseline's jobs are that file's first instances (a real repository's
 * answers and trajectories are larger than the fixture's).
 *
 *   npx tsx bench/redisPerJob.ts [--quick] [--bench FILE.jsonl --url-template 'file:///…/{owner}/{name}.git']
 */
const N = quick ? 5 : 30;
const arg = (name: string) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : undefined);
const benchFile = arg("--bench");
const urlTemplate = arg("--url-template");
if (benchFile && !urlTemplate) throw new Error("--bench needs --url-template");
const instances = benchFile ? loadBench(benchFile).slice(0, N) : [];

const big = Array.from({ length: 100 }, (_, i) => [`def handler_${i}(request, *args, **kwargs):`, `    """Handles request kind ${i}: validates, dispatches, returns a response."""`, `    return dispatch(request, "kind-${i}", *args, **kwargs)`, ""]).flat();
const repo = makeGitFixture({ ...SAMPLE_FILES, "pkg/handlers.py": `${big.join("\n")}\n` });
const commands = ['rg -n "def handler_" pkg/handlers.py | head -40', "sed -n '1,100p' pkg/handlers.py", "sed -n '101,200p' pkg/handlers.py", "sed -n '201,300p' pkg/handlers.py", "sed -n '301,400p' pkg/handlers.py"];
const steps: ScriptedReply[] = [
  ...commands.map((command) => ({ toolCalls: [{ name: "terminal", arguments: { command, security_risk: "LOW" } }], usage: { prompt_tokens: 4000, completion_tokens: 60 } })),
  { toolCalls: [{ name: "localization_finish", arguments: { locations: [{ file: "pkg/handlers.py", function_name: "handler_7" }] } }] },
];
const model = await startFakeModel();
model.script((req) => steps[Math.min(steps.length - 1, req.body.messages.filter((m) => m.role === "assistant").length)]!);

const redisServer = await ownRedis();
redisServer.start();
const config = testConfig({ REDIS_URL: redisServer.url });
const port = await freePort();
const env = serviceEnv(config, { API_PORT: String(port), LOG_LEVEL: "silent", MODEL_BASE_URL: model.baseURL, RATE_LIMIT_PER_MIN: "0", MAX_OPEN_JOBS_PER_KEY: "0", WORKER_CONCURRENCY: "2" });
const api = startProcess("src/api/server.ts", env);
const worker = startProcess("src/worker/main.ts", env);
const redis = new Redis(redisServer.url);

const usedMemory = async () => Number(/used_memory:(\d+)/.exec(await redis.info("memory"))![1]);
/** Bytes by key kind: the key with its job id, hash or other variable part written `{}`. */
async function byKind(): Promise<Map<string, { keys: number; bytes: number }>> {
  const out = new Map<string, { keys: number; bytes: number }>();
  for await (const batch of redis.scanStream({ match: `${config.QUEUE_PREFIX}:*`, count: 1000 })) {
    for (const key of batch as string[]) {
      const kind = key
        .slice(config.QUEUE_PREFIX.length)
        .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, "{id}")
        .replace(/[0-9a-f]{32,}/g, "{hash}")
        .replace(/:\d+$/, ":{n}");
      const entry = out.get(kind) ?? { keys: 0, bytes: 0 };
      entry.keys++;
      entry.bytes += (await redis.memory("USAGE", key, "SAMPLES", 0)) ?? 0;
      out.set(kind, entry);
    }
  }
  return out;
}
const total = (m: Map<string, { bytes: number }>, except?: RegExp) => [...m].filter(([k]) => !except?.test(k)).reduce((s, [, v]) => s + v.bytes, 0);

async function round(policy: "baseline" | "codescout") {
  const base = `http://127.0.0.1:${port}`;
  const before = { used: await usedMemory(), kinds: await byKind() };
  const ids: string[] = [];
  const real = policy === "baseline" && instances.length > 0;
  const n = real ? instances.length : N;
  for (let i = 0; i < n; i++) {
    const inst = real ? instances[i]! : undefined;
    const [owner, name] = inst ? inst.repo.split("/") : [];
    const job = inst
      ? { repo: { url: urlTemplate!.replace("{owner}", owner!).replace("{name}", name!), commit: inst.base_commit }, issue: inst.problem_statement }
      : { repo: { url: repo.url, commit: repo.commits[0] }, issue: `Handler ${i} returns the wrong response for kind-${i} requests (${policy})` };
    const post = await fetch(`${base}/v1/localize`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ...job, options: { policy, cache: false } }),
    });
    const { id } = (await post.json()) as { id?: string };
    if (!id) throw new Error(`the API refused the bench's job (${post.status})`);
    ids.push(id);
  }
  for (const id of ids) {
    await waitFor(
      async () => {
        const job = (await (await fetch(`${base}/v1/jobs/${id}?wait=30`)).json()) as { status: string };
        if (job.status === "failed" || job.status === "cancelled") throw new Error(`job ${id} ${job.status}: ${JSON.stringify(job).slice(0, 500)}`);
        return job.status === "succeeded" ? true : undefined;
      },
      300_000,
      `job ${id}`,
    );
  }
  // The worker's last writes (its end event, the job's completion) land after the answer is readable.
  await new Promise((r) => setTimeout(r, 1_000));
  const after = { used: await usedMemory(), kinds: await byKind() };
  const kinds: Record<string, { keys_per_job: number; bytes_per_job: number }> = {};
  for (const [kind, v] of after.kinds) {
    const was = before.kinds.get(kind) ?? { keys: 0, bytes: 0 };
    const bytes = (v.bytes - was.bytes) / n;
    if (Math.abs(bytes) >= 16) kinds[kind] = { keys_per_job: Math.round(((v.keys - was.keys) / n) * 100) / 100, bytes_per_job: Math.round(bytes) };
  }
  // The job's own event stream goes an hour after its end; BullMQ's queue-wide one is capped by length.
  const events = /:events:/;
  return {
    jobs: n,
    repository: real ? `${benchFile} (first ${n})` : "fixture",
    bytes_per_job_keys: Math.round((total(after.kinds) - total(before.kinds)) / n),
    bytes_per_job_keys_after_events_expire: Math.round((total(after.kinds, events) - total(before.kinds, events)) / n),
    bytes_per_job_used_memory: Math.round((after.used - before.used) / n),
    kinds,
  };
}

try {
  await waitFor(async () => ((await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => null))?.ok ? true : undefined), 60_000, "the API");
  const baseline = await round("baseline");
  const codescout = await round("codescout");
  report("redis-per-job", { baseline, codescout });
} finally {
  redis.disconnect();
  await api.stop();
  await worker.stop();
  await model.close();
  redisServer.stop();
  removeTestConfigDirs();
  repo.cleanup();
}
process.exit(0);
