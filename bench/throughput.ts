import { readFileSync } from "node:fs";
import type { LocalizeResult } from "../src/queue/contract.js";
import { startFakeModel, type ScriptedReply } from "../tests/helpers/fakeModel.js";
import { makeGitFixture } from "../tests/helpers/gitFixture.js";
import { serviceEnv, startProcess } from "../tests/helpers/processes.js";
import { testConfig } from "../tests/helpers/config.js";
import { roundProducer } from "./producer.js";
import { ms, quick, report, stats } from "./lib.js";

/**
 * Scaffold overhead and throughput with a real worker process, real Redis, real sandboxes
 * and a stand-in model:
 * - scaffold: an instant model (3 turns); job wall time minus model time, by phase;
 * - throughput: a model that answers like a real one (1.5 s a turn, 6 turns) at worker
 *   concurrency 1, 2, 4, 8, against the ideal of concurrency × one job per model-time;
 * - worker RSS, sampled while the concurrency-8 round runs.
 *
 *   npx tsx bench/throughput.ts [--quick]
 */
const TURN_MS = 1500;
const repo = makeGitFixture();
const turns = (delayMs: number, n: number): ScriptedReply[] => {
  const cmds = ['rg -n "def parse" -t py', "wc -l pkg/parser.py", "sed -n '1,40p' pkg/parser.py", "rg -n helper", "ls -la pkg"];
  const steps: ScriptedReply[] = cmds.slice(0, n - 1).map((command) => ({ delayMs, then: { toolCalls: [{ name: "terminal", arguments: { command, security_risk: "LOW" } }] } }));
  steps.push({ delayMs, then: { toolCalls: [{ name: "localization_finish", arguments: { locations: [{ file: "pkg/parser.py", class_name: "Parser", function_name: "parse" }] } }] } });
  return steps;
};

async function round(concurrency: number, jobs: number, script: () => ScriptedReply[], sampleRss: boolean) {
  const model = await startFakeModel();
  // Each conversation gets its own script position, keyed by how many assistant turns it has.
  const steps = script();
  model.script((req) => steps[Math.min(steps.length - 1, req.body.messages.filter((m) => m.role === "assistant").length)]!);
  const config = testConfig();
  const env = serviceEnv(config, {
    MODEL_BASE_URL: model.baseURL,
    WORKER_CONCURRENCY: String(concurrency),
    LOG_LEVEL: "warn",
  });
  const worker = startProcess("src/worker/main.ts", env);
  const { queue, events, end } = roundProducer(config);
  let sampler: NodeJS.Timeout | undefined;
  // A round that fails must not leave its worker running, nor its keys and cache dir behind
  // (testConfig's dirs go only in vitest's afterAll otherwise).
  try {
    await events.waitUntilReady();
    await queue.waitUntilReady();
    // Warm the repository cache and the worker first: throughput is about the steady state.
    const add = (i: number) =>
      queue.add("localize", {
        jobId: `bench-${concurrency}-${i}`,
        repo: { url: repo.url, commit: repo.commits[0]! },
        issue: "Parser.parse drops values containing '='",
        options: { policy: "codescout", cache: false },
        owner: "bench",
        submittedAt: new Date().toISOString(),
      }, { jobId: `bench-${concurrency}-${i}` });
    const warm = await add(-1);
    await warm.waitUntilFinished(events, 120_000);

    let rssMax = 0;
    sampler = sampleRss
      ? setInterval(() => {
          try {
            const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${worker.child.pid}/status`, "utf8"))?.[1] ?? 0);
            rssMax = Math.max(rssMax, kb / 1024);
          } catch {
            /* the worker exited */
          }
        }, 200)
      : undefined;
    const t0 = performance.now();
    const added = await Promise.all(Array.from({ length: jobs }, (_, i) => add(i)));
    const results = (await Promise.all(added.map((j) => j.waitUntilFinished(events, 600_000)))) as LocalizeResult[];
    const wall = performance.now() - t0;
    return { wall, results, rssMax };
  } finally {
    clearInterval(sampler);
    await worker.stop();
    await model.close();
    await end();
  }
}

try {
  // Scaffold overhead: an instant model, jobs one after another.
  const scaffoldJobs = quick ? 5 : 15;
  const scaffold = await round(1, scaffoldJobs, () => turns(0, 3), false);
  const overhead = scaffold.results.map((r) => r.timings.total_ms - r.timings.model_ms);
  const phase = (k: keyof LocalizeResult["timings"]) => ms(stats(scaffold.results.map((r) => r.timings[k])).p50);

  // Throughput: 1.5 s a turn, 6 turns = 9 s of model time per job.
  const modelTimeS = (6 * TURN_MS) / 1000;
  const levels = quick ? [1, 4] : [1, 2, 4, 8];
  const throughput: Record<string, unknown> = {};
  let rssAt8 = 0;
  for (const c of levels) {
    const jobs = quick ? c : 2 * c;
    const r = await round(c, jobs, () => turns(TURN_MS, 6), c === 8 || (quick && c === 4));
    const perMin = (jobs / r.wall) * 60_000;
    const ideal = (c * 60) / modelTimeS;
    throughput[`c${c}`] = { jobs, wall_s: ms(r.wall / 1000), jobs_per_min: ms(perMin), ideal_per_min: ms(ideal), ratio: Math.round((100 * perMin) / ideal) / 100 };
    if (r.rssMax) rssAt8 = r.rssMax;
  }
  report("throughput", {
    scaffold_overhead_ms: { p50: ms(stats(overhead).p50), p95: ms(stats(overhead).p95), jobs: scaffoldJobs },
    scaffold_phases_p50_ms: { queue_wait: phase("queue_wait_ms"), repository: phase("repo_ms"), sandbox: phase("sandbox_ms"), tools: phase("tool_ms"), model: phase("model_ms"), total: phase("total_ms") },
    throughput,
    worker_rss_mb_max: ms(rssAt8),
    targets: "scaffold overhead p50 <= 1 s; throughput >= 0.9 x ideal; worker RSS <= 300 MB at concurrency 8",
  });
} finally {
  repo.cleanup();
}
process.exit(0);
