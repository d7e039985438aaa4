import { createHash } from "node:crypto";
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { BaselinePolicy } from "../agent/baseline.js";
import { CODESCOUT_DEFAULTS, CodeScoutPolicy } from "../agent/codescout/loop.js";
import { ModelClient } from "../agent/codescout/modelClient.js";
import { loadPromptPack } from "../agent/codescout/prompts.js";
import { RankingSlots, WithLeads } from "../agent/leads.js";
import type { Policy } from "../agent/policy.js";
import { RepoCache } from "../repos/cache.js";
import { createDockerSandboxProvider } from "../sandbox/docker.js";
import { BenchError, loadBench, misnamedBy } from "../eval/bench.js";
import { markdownReport, summarize, type InstanceRecord } from "../eval/report.js";
import { EVAL_SANDBOX, runInstance } from "../eval/runner.js";
import { ANSWER_REVISION } from "../version.js";

/**
 * Evaluates a policy on a SWE-bench-style JSONL the way the field reports it: mean file,
 * module and function F1 over all instances. Resumable: instances already answered in the
 * output JSONL are skipped; those that failed run again.
 */
const USAGE = `usage: npm run eval -- --bench FILE [--out DIR] [--policy baseline|codescout] [--concurrency N]
    [--url-template TEMPLATE] [--model-url URL] [--model NAME] [--max-turns N] [--temperature T]
    [--limit N] [--cache-dir DIR] [--image IMAGE]
  --url-template   git URL per instance, with {repo}, {owner}, {name} (default https://github.com/{repo}.git);
                   file:// templates are allowed, e.g. file:///srv/mirrors/{owner}/{name}.git (end it in
                   {name}: the repository's name is read from the URL, and an issue's owner/name#N with it)
  --model-url      OpenAI-compatible base URL (policy codescout); MODEL_API_KEY is read from the environment
  --concurrency    instances at once (default: half the cores, at least 1, for the baseline; 2 for codescout)
  Writes DIR/results.jsonl (one line per instance), DIR/summary.json and DIR/summary.md. Run again
  with the same --out, it skips the instances answered and runs again those that failed; a run
  with another policy, model or bench file (DIR/run.json says what it was) is refused.`;

function fail(message: string): never {
  process.stderr.write(`eval: ${message}\n${USAGE}\n`);
  process.exit(2);
}

let a;
try {
  a = parseArgs({
    options: {
      bench: { type: "string" },
      out: { type: "string", default: "eval-out" },
      policy: { type: "string", default: "baseline" },
      concurrency: { type: "string" },
      "url-template": { type: "string", default: "https://github.com/{repo}.git" },
      "model-url": { type: "string" },
      model: { type: "string", default: "OpenHands/CodeScout-4B" },
      "max-turns": { type: "string", default: "10" },
      temperature: { type: "string", default: "0.6" },
      limit: { type: "string" },
      "cache-dir": { type: "string", default: ".cache/repos" },
      image: { type: "string", default: "codescout-sandbox:latest" },
      help: { type: "boolean", default: false },
    },
    strict: true,
  }).values;
} catch (err) {
  fail((err as Error).message);
}
if (a.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
if (!a.bench) fail("--bench is required");
// The baseline is CPU-bound: a job takes a core for its sandbox and another for the host's git and
// ranking, so more at once than half the cores only lengthens each instance's latency, which the
// report measures (django's trees, 2 cores: p50 1.38 s one at a time, 1.83 s two). The model
// policy waits on its server instead.
const defaultConcurrency = a.policy === "baseline" ? Math.max(1, Math.floor(availableParallelism() / 2)) : 2;
const concurrency = a.concurrency === undefined ? defaultConcurrency : Number(a.concurrency);
if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 32) fail("--concurrency must be an integer from 1 to 32");
const maxTurns = Number(a["max-turns"]);
const temperature = Number(a.temperature);
if (!Number.isInteger(maxTurns) || maxTurns < 1) fail("--max-turns must be a positive integer");
if (!(temperature >= 0 && temperature <= 2)) fail("--temperature must be between 0 and 2");
if (a.policy !== "baseline" && a.policy !== "codescout") fail(`--policy must be baseline or codescout, not ${a.policy}`);
if (a.policy === "codescout" && !a["model-url"]) fail("--policy codescout needs --model-url");
if (!/\{(repo|owner|name)\}/.test(a["url-template"])) fail("--url-template must contain {repo} or {owner}/{name}");
const limit = a.limit === undefined ? undefined : Number(a.limit);
if (limit !== undefined && !(Number.isInteger(limit) && limit >= 1)) fail(`--limit must be a positive integer, not ${a.limit}`);

let instances;
try {
  instances = loadBench(a.bench);
} catch (err) {
  fail((err as BenchError).message);
}
if (limit !== undefined) instances = instances.slice(0, limit);
const misnamed = misnamedBy(a["url-template"], instances);
if (misnamed) {
  // Not refused: a mirror may be named anything. But the score drops where an issue points at its fix by reference.
  process.stderr.write(
    `eval: warning: --url-template gives ${misnamed.url}, which names the repository "${misnamed.got}", not "${misnamed.want}": ` +
      `the issues' references written ${misnamed.repo}#N are not read. Name mirrors .../{owner}/{name}.git\n`,
  );
}

mkdirSync(a.out, { recursive: true });
const resultsPath = join(a.out, "results.jsonl");
// What the results are answers to. A run resumed into the same --out with another policy, model,
// bench or gold (relabelled), or after a refit, would report the old answers under the new run's
// name: refused, naming what differs.
const made = {
  policy: a.policy,
  bench_sha256: createHash("sha256").update(readFileSync(a.bench)).digest("hex"),
  url_template: a["url-template"],
  answerer: ANSWER_REVISION,
  ...(a.policy === "codescout" ? { model: a.model, max_turns: maxTurns, temperature } : {}),
};
const runPath = join(a.out, "run.json");
if (existsSync(runPath) || existsSync(resultsPath)) {
  let before: Record<string, unknown> = {};
  try {
    before = JSON.parse(readFileSync(runPath, "utf8")) as Record<string, unknown>;
  } catch {
    /* no run.json: results of an eval before it was written */
  }
  const differs = Object.keys({ ...before, ...made }).filter((k) => JSON.stringify(before[k]) !== JSON.stringify((made as Record<string, unknown>)[k]));
  if (differs.length) fail(`${a.out} holds the results of another run (its ${differs.join(", ")} differ${differs.length === 1 ? "s" : ""}${existsSync(runPath) ? "" : ": it has no run.json"}): give another --out, or remove ${a.out}`);
}
writeFileSync(runPath, `${JSON.stringify(made, null, 2)}\n`);
const done = new Map<string, InstanceRecord>();
// A failure is the machine's (a repository that could not be fetched, a sandbox that did not
// start), never the policy's answer: a resumed run runs those instances again. A later line
// of an instance stands for it.
const failedBefore = new Set<string>();
if (existsSync(resultsPath)) {
  for (const line of readFileSync(resultsPath, "utf8").split("\n")) {
    if (!line.trim()) continue;
    try {
      const r = JSON.parse(line) as InstanceRecord;
      if (r.failure) {
        done.delete(r.instance_id);
        failedBefore.add(r.instance_id);
      } else {
        done.set(r.instance_id, r);
        failedBefore.delete(r.instance_id);
      }
    } catch {
      /* a line cut by an interrupted run: that instance runs again */
    }
  }
}
const todo = instances.filter((i) => !done.has(i.instance_id));
const retried = todo.filter((i) => failedBefore.has(i.instance_id)).length;

const client = a["model-url"]
  ? new ModelClient({ baseURL: a["model-url"], apiKey: process.env.MODEL_API_KEY, model: a.model, timeoutMs: 300_000, maxRetries: 4 })
  : null;
const prompts = loadPromptPack(process.env.PROMPT_PACK_DIR);
// As the service answers (MODEL_ALTERNATIVES on), but every instance is ranked: the report's
// "with the alternatives" line measures the leads, not how busy this machine was.
const rankings = new RankingSlots(concurrency);
const policy = (): Policy =>
  a.policy === "codescout" && client
    ? new WithLeads(new CodeScoutPolicy({ ...CODESCOUT_DEFAULTS, client, prompts, maxTurns, temperature }), new BaselinePolicy(), rankings)
    : new BaselinePolicy();
const deps = {
  repos: new RepoCache({ dir: a["cache-dir"], allowFileUrls: true }),
  sandboxes: createDockerSandboxProvider({ image: a.image, ...EVAL_SANDBOX }),
  policy,
  urlTemplate: a["url-template"],
};

const abort = new AbortController();
process.on("SIGINT", () => abort.abort());
const started = Date.now();
let finished = 0;
const progress = () => {
  const elapsed = (Date.now() - started) / 1000;
  const eta = finished ? (elapsed / finished) * (todo.length - finished) : 0;
  process.stderr.write(`\r[${"#".repeat(Math.round((20 * finished) / Math.max(todo.length, 1))).padEnd(20, ".")}] ${finished}/${todo.length}  ${elapsed.toFixed(0)} s elapsed, ETA ${eta.toFixed(0)} s   `);
};
process.stderr.write(
  `eval: ${instances.length} instances, ${done.size} already done, ${todo.length} to run${retried ? ` (${retried} failed before)` : ""} (policy ${a.policy}, concurrency ${concurrency})\n`,
);
progress();
let next = 0;
await Promise.all(
  Array.from({ length: Math.min(concurrency, todo.length) }, async () => {
    while (next < todo.length && !abort.signal.aborted) {
      const inst = todo[next++]!;
      const record = await runInstance(deps, inst, abort.signal);
      appendFileSync(resultsPath, `${JSON.stringify(record)}\n`);
      done.set(record.instance_id, record);
      finished++;
      progress();
    }
  }),
);
process.stderr.write("\n");

const records = instances.map((i) => done.get(i.instance_id)).filter((r): r is InstanceRecord => !!r);
const summary = summarize(records);
const title = `Evaluation: ${a.policy} on ${a.bench.split("/").pop()}`;
mkdirSync(dirname(join(a.out, "summary.json")), { recursive: true });
writeFileSync(join(a.out, "summary.json"), `${JSON.stringify({ bench: a.bench, policy: a.policy, ...summary }, null, 2)}\n`);
writeFileSync(join(a.out, "summary.md"), markdownReport(summary, title, records));
const f = summary.levels;
process.stdout.write(
  `file F1 ${(100 * f.file.f1).toFixed(1)}  module F1 ${(100 * f.module.f1).toFixed(1)}  function F1 ${(100 * f.entity.f1).toFixed(1)}  answered ${summary.answered}/${summary.instances}  (${a.out}/summary.md)\n`,
);
await deps.repos.close();
process.exit(abort.signal.aborted ? 130 : 0);
