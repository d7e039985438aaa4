import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { LocalizeResult } from "../src/queue/contract.js";
import { serviceEnv, startProcess } from "../tests/helpers/processes.js";
import { testConfig } from "../tests/helpers/config.js";
import { JobStore } from "../src/store/jobStore.js";
import { H100_CODESCOUT_4B, simulateIdeal, type EpisodeTrace } from "./gpu/batcher.js";
import { roundProducer } from "./producer.js";
import { ms, report, stats } from "./lib.js";

/**
 * Episodes in flight against a simulated GPU (bench/gpu/): one worker process on this host
 * with real Redis, Docker sandboxes and a real repository tree, the model played by a
 * continuous-batching H100 running CodeScout-4B. For each level (episodes in flight):
 * episodes per minute against the ideal (the same episodes on the same GPU with a scaffold
 * that adds no time, bench/gpu/batcher.ts simulateIdeal), the GPU's busy fraction, the time
 * each turn spends outside the model (tool runs, queueing, event publishing, HTTP), worker
 * RSS and sandbox memory per episode.
 *
 *   npx tsx bench/inflight.ts [--levels 8,16,32,64,128] [--rounds 2] [--concurrency N] [--repo URL --commit SHA] [--alternatives false]
 *
 * Each level queues rounds × level episodes at once; WORKER_CONCURRENCY=level keeps that many
 * running, or N with --concurrency (the queue then holds the rest, as in production).
 */
const { values: a } = parseArgs({
  options: {
    levels: { type: "string", default: "8,16,32,64,128" },
    rounds: { type: "string", default: "2" },
    repo: { type: "string", default: "file:///work/evalmirrors/sympy+sympy.git" },
    commit: { type: "string", default: "e950d313a932bc6cccbc95376b3821cd2f8b5af4" },
    concurrency: { type: "string" },
    name: { type: "string", default: "inflight" },
    // The baseline's leads beside each episode (MODEL_ALTERNATIVES): on by default, as in production.
    alternatives: { type: "string", default: "true" },
  },
});
const levels = a.levels.split(",").map(Number);
const rounds = Number(a.rounds);

// Episodes replay a realistic shape on the real tree: a search, then reads of the largest
// Python files in 300–400-line chunks, 1–3 calls a turn, 5 tool turns and a finish: the
// prompt grows from the system prompt and issue to ~25k tokens.
const gitDir = a.repo.replace("file://", "");
const big = execFileSync("git", ["--git-dir", gitDir, "ls-tree", "-r", "-l", a.commit], { encoding: "utf8", maxBuffer: 1 << 26 })
  .trim()
  .split("\n")
  .map((l) => /^\S+ blob \S+\s+(\d+)\t(.+)$/.exec(l))
  .filter((m): m is RegExpExecArray => !!m && m[2]!.endsWith(".py") && !m[2]!.includes("test"))
  .map((m) => ({ size: Number(m[1]), path: m[2]! }))
  .sort((x, y) => y.size - x.size)
  .slice(0, 3)
  .map((f) => f.path);
const [f1, f2, f3] = big as [string, string, string];
const issues = readFileSync("../shared/bench/swe-bench-lite-dev.jsonl", "utf8")
  .trim()
  .split("\n")
  .map((l) => (JSON.parse(l) as { problem_statement: string }).problem_statement);

// Removed in the finally at the end, however the run ends.
const scriptDir = mkdtempSync(join(tmpdir(), "gpu-script-"));
const scriptFile = join(scriptDir, "script.json");
writeFileSync(
  scriptFile,
  JSON.stringify({
    turns: [
      [`rg -n "def " --type py -m 2 ${f1.split("/")[0]} | head -120`, `find ${f1.split("/").slice(0, -1).join("/")} -name "*.py" | head -60`],
      [`wc -l ${f1}`, `sed -n '1,350p' ${f1}`],
      [`sed -n '350,700p' ${f1}`, `rg -n "^class |^def " ${f2} | head -80`],
      [`sed -n '1,350p' ${f2}`],
      [`sed -n '1,300p' ${f3}`, `grep -n "import" ${f3} | head -40`, `ls ${f3.split("/").slice(0, -1).join("/")}`],
    ],
    finish: [{ file: f1 }],
  }),
);

async function startGpu() {
  const child = spawn(process.execPath, ["--import", "tsx", "bench/gpu/server.ts", "--script", scriptFile], { stdio: ["ignore", "pipe", "inherit"] });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on("data", (d: Buffer) => {
      const m = /listening (\S+)/.exec(d.toString());
      if (m) resolve(m[1]!);
    });
    child.once("exit", (c) => reject(new Error(`gpu server exited ${c}`)));
  });
  return {
    url,
    async stop() {
      child.kill();
      await exited;
    },
  };
}

/** Memory of the service's sandboxes (cgroup v1, as on this host), MB each. */
function sandboxMemoryMb(label: string): number[] {
  const ids = execFileSync("docker", ["ps", "-q", "--no-trunc", "--filter", `label=codescout.service=${label}`], { encoding: "utf8" }).trim().split("\n").filter(Boolean);
  const out: number[] = [];
  for (const id of ids) {
    for (const path of [`/sys/fs/cgroup/memory/docker/${id}/memory.usage_in_bytes`, `/sys/fs/cgroup/system.slice/docker-${id}.scope/memory.current`]) {
      try {
        out.push(Number(readFileSync(path, "utf8")) / 2 ** 20);
        break;
      } catch {
        /* the other cgroup layout, or the sandbox just went */
      }
    }
  }
  return out;
}

const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) / 1024;

async function level(inFlight: number) {
  const concurrency = a.concurrency ? Number(a.concurrency) : inFlight;
  const gpu = await startGpu();
  const config = testConfig();
  const label = "codescout";
  const worker = startProcess("src/worker/main.ts", serviceEnv(config, { MODEL_BASE_URL: `${gpu.url}/v1`, WORKER_CONCURRENCY: String(concurrency), MODEL_ALTERNATIVES: a.alternatives, LOG_LEVEL: "warn" }));
  const { redis, queue, events, end } = roundProducer(config);
  let sampler: NodeJS.Timeout | undefined;
  // Whatever fails, the worker and the GPU server stop, and the level's keys and cache dir (a
  // full mirror of the repository) go: testConfig's dirs go only in vitest's afterAll otherwise.
  try {
    await events.waitUntilReady();
    const add = async (i: number) => {
      const id = `ep-${inFlight}-${i}`;
      const job = await queue.add("localize", { jobId: id, repo: { url: a.repo, commit: a.commit }, issue: `Episode ${id}.\n\n${issues[Math.abs(i) % issues.length]}`, options: { policy: "codescout", cache: false }, owner: "bench", submittedAt: new Date().toISOString() }, { jobId: id });
      return (await job.waitUntilFinished(events, 1_800_000)) as LocalizeResult;
    };
    // Warm the repository cache, the image and the worker.
    await add(-1);
    await fetch(`${gpu.url}/reset`, { method: "POST" });

    let rssMax = 0;
    const sandboxMb: number[] = [];
    sampler = setInterval(() => {
      try {
        rssMax = Math.max(rssMax, rssMb(worker.child.pid!));
        const each = sandboxMemoryMb(label);
        if (each.length) sandboxMb.push(each.reduce((x, y) => x + y, 0) / each.length);
      } catch {
        /* the worker exited */
      }
    }, 2000);
    const total = rounds * inFlight;
    // All episodes queued at once: the worker's concurrency is what keeps `inFlight` running,
    // as in production, where the queue is never empty at this scale.
    const t0 = performance.now();
    const results = await Promise.all(Array.from({ length: total }, (_, i) => add(i)));
    const wall = performance.now() - t0;
    clearInterval(sampler);
    const gpuStats = (await (await fetch(`${gpu.url}/stats`)).json()) as {
      busy_fraction: number;
      outside_model_ms: number[];
      outside_model_ms_by_turn: Array<number[] | null>;
      timer_lateness_ms: number[];
      resyncs: number;
      traces: EpisodeTrace[];
      stats: { runningSum: number; steps: number; maxRunning: number; maxWaiting: number };
      queue_wait_ms: number[];
    };
    // The worker's own view of each turn, from the trajectories: from a reply's arrival to the
    // next request, split into the tool calls' time and everything else.
    const store = new JobStore(queue, redis, 3600);
    const toolPerTurn: number[] = [];
    const restPerTurn: number[] = [];
    const toolPerCall: number[] = [];
    const leadsMs: number[] = [];
    for (let i = 0; i < total; i++) {
      const t = (await store.getTrajectory(`ep-${inFlight}-${i}`)) as { steps: Array<{ at: string; kind: string; name?: string; durationMs?: number }> } | null;
      const steps = t?.steps ?? [];
      let replyAt: number | null = null;
      let tools = 0;
      for (const step of steps) {
        const at = Date.parse(step.at);
        if (step.kind === "response") {
          if (replyAt !== null) {
            const gap = at - (step.durationMs ?? 0) - replyAt;
            toolPerTurn.push(tools);
            restPerTurn.push(gap - tools);
          }
          replyAt = at;
          tools = 0;
        } else if (step.name === "leads") {
          // Ranked (with leads or not: late, or failed); skipped steps have no duration.
          if (step.durationMs !== undefined) leadsMs.push(step.durationMs);
        } else if (step.kind === "tool" && step.durationMs !== undefined) {
          tools += step.durationMs;
          toolPerCall.push(step.durationMs);
        }
      }
    }
    const answered = results.filter((r) => r.finish_reason === "finish_tool").length;
    const perMin = (total / wall) * 60_000;
    const ideal = simulateIdeal(H100_CODESCOUT_4B, gpuStats.traces, concurrency);
    const outside = stats(gpuStats.outside_model_ms);
    const first = stats(gpuStats.traces.map((t) => t[0]!.promptTokens));
    const last = stats(gpuStats.traces.map((t) => t.at(-1)!.promptTokens));
    const row = {
      in_flight: inFlight,
      worker_concurrency: concurrency,
      episodes: total,
      answered,
      finish_reasons: [...new Set(results.map((r) => r.finish_reason))],
      episodes_per_min: ms(perMin),
      ideal_per_min: ms(ideal.episodesPerMin),
      ratio_to_ideal: Math.round((100 * perMin) / ideal.episodesPerMin) / 100,
      gpu_busy_fraction: Math.round(100 * gpuStats.busy_fraction) / 100,
      ideal_busy_fraction: Math.round(100 * ideal.busyFraction) / 100,
      mean_batch: ms(gpuStats.stats.runningSum / gpuStats.stats.steps),
      max_running: gpuStats.stats.maxRunning,
      gpu_queue_wait_ms_p50: ms(stats(gpuStats.queue_wait_ms).p50),
      outside_model_ms: { p50: ms(outside.p50), p95: ms(outside.p95), p99: ms(outside.p99), n: outside.n },
      outside_model_ms_p50_by_turn: gpuStats.outside_model_ms_by_turn.slice(1).map((x) => ms(stats(x ?? []).p50)),
      worker_view_per_turn_ms: {
        tools: { p50: ms(stats(toolPerTurn).p50), p99: ms(stats(toolPerTurn).p99) },
        rest: { p50: ms(stats(restPerTurn).p50), p99: ms(stats(restPerTurn).p99) },
        per_call: { p50: ms(stats(toolPerCall).p50), p99: ms(stats(toolPerCall).p99) },
      },
      model_alternatives: a.alternatives,
      with_leads: results.filter((r) => r.alternatives?.length).length,
      leads_ranked: leadsMs.length,
      leads_ms: { p50: ms(stats(leadsMs).p50), p99: ms(stats(leadsMs).p99) },
      phases_p50_ms: Object.fromEntries((["queue_wait_ms", "repo_ms", "sandbox_ms", "tool_ms", "model_ms", "total_ms"] as const).map((k) => [k, ms(stats(results.map((r) => r.timings[k])).p50)])),
      prompt_tokens: { first_turn_p50: first.p50, last_turn_p50: last.p50, last_turn_max: last.max },
      timer_lateness_ms_p99: ms(stats(gpuStats.timer_lateness_ms).p99),
      gpu_clock_resyncs: gpuStats.resyncs,
      worker_rss_mb_max: ms(rssMax),
      worker_rss_mb_per_episode: ms(rssMax / concurrency),
      sandbox_mb_per_episode_p50: ms(stats(sandboxMb).p50),
      wall_s: ms(wall / 1000),
    };
    process.stdout.write(`${JSON.stringify(row)}\n`);
    return { ...row, traces: gpuStats.traces };
  } finally {
    clearInterval(sampler);
    await worker.stop();
    await gpu.stop();
    await end();
  }
}

try {
  const rows: Array<Omit<Awaited<ReturnType<typeof level>>, "traces">> = [];
  const allTraces: EpisodeTrace[] = [];
  for (const n of levels) {
    const { traces, ...row } = await level(n);
    rows.push(row);
    allTraces.push(...traces);
  }
  // The GPU's maximum: the episodes seen, four times over, with a scaffold that adds no time, at
  // the number in flight that serves them fastest. Beyond it, conversations evict each other's
  // prefix cache and the GPU recomputes prompts: the knee the defaults follow.
  const many = [...allTraces, ...allTraces, ...allTraces, ...allTraces];
  const curve = [4, 8, 12, 16, 20, 24, 28, 32, 48, 64, 96, 128, 256].map((n) => ({ in_flight: n, episodes_per_min: ms(simulateIdeal(H100_CODESCOUT_4B, many, n).episodesPerMin) }));
  const best = curve.reduce((x, y) => (y.episodes_per_min > x.episodes_per_min ? y : x));
  const max = simulateIdeal(H100_CODESCOUT_4B, many, best.in_flight);
  for (const row of rows) Object.assign(row, { ratio_to_gpu_max: Math.round((100 * row.episodes_per_min) / max.episodesPerMin) / 100 });
  process.stdout.write(`gpu max ${ms(max.episodesPerMin)} episodes/min at ${best.in_flight} in flight; ideal curve ${curve.map((c) => `${c.in_flight}:${c.episodes_per_min}`).join(" ")}\n`);
  report(a.name, {
    gpu_max: { episodes_per_min: ms(max.episodesPerMin), busy_fraction: ms(max.busyFraction), mean_batch: ms(max.meanBatch), in_flight: best.in_flight },
    ideal_curve: curve,
    gpu: { model: "CodeScout-4B (Qwen3-4B) on one H100 SXM 80 GB, simulated", params: H100_CODESCOUT_4B },
    repository: `${a.repo}@${a.commit}`,
    levels: rows,
    targets: "64 in flight: >= 0.9 of the GPU's maximum; outside-model time per turn p99 <= 50 ms; worker RSS <= 500 MB",
  });
} finally {
  rmSync(scriptDir, { recursive: true, force: true });
}
process.exit(0);
