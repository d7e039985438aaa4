import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import type { InstanceRecord } from "../../src/eval/report.js";
import { aggregate, type AggregateScores } from "../../src/scoring/index.js";
import { machine, stats } from "../lib.js";
import { half } from "./offline.js";

/**
 * Tables for BENCHMARKS.md from eval CLI outputs (results.jsonl): per set, their union, per
 * repository, per half of the split (tuning vs held out), with file, module and function
 * precision, recall and F1, and latency percentiles.
 *
 *   npx tsx bench/baseline/report.ts --name baseline-dev lite=DIR/results.jsonl verified=DIR/results.jsonl
 *   (--title "…" heads the page: "Baseline on the dev set" unless told)
 */
const { values: a, positionals } = parseArgs({ options: { name: { type: "string" }, title: { type: "string", default: "Baseline on the dev set" } }, allowPositionals: true });
// No default: one would write over the committed results of the dev set when left out.
if (!a.name) {
  process.stderr.write("report: --name is required (it writes bench/results/NAME.{md,json})\n");
  process.exit(2);
}
const sets = positionals.map((p) => {
  const [label, path] = p.split("=") as [string, string];
  // As the eval CLI reads it: a resumed run appends a second line for an instance that failed
  // before, and the later line stands for it.
  const byId = new Map<string, InstanceRecord>();
  for (const l of readFileSync(path, "utf8").split("\n")) if (l.trim()) {
    const r = JSON.parse(l) as InstanceRecord;
    byId.delete(r.instance_id);
    byId.set(r.instance_id, r);
  }
  return { label, path, records: [...byId.values()] };
});
const all = sets.flatMap((s) => s.records);
const repeated = all.length - new Set(all.map((r) => r.instance_id)).size;
// Two sets may hold the same instance with other texts (a fix's commit message, its real issue): each is counted.
if (repeated) process.stderr.write(`report: ${repeated} instance ids are in more than one set; the union counts each set's row\n`);

interface Row {
  label: string;
  scores: AggregateScores;
  latency: { total_p50: number; total_p95: number; policy_p50: number; policy_p95: number };
}
const row = (label: string, records: InstanceRecord[]): Row => {
  const total = stats(records.map((r) => r.durations_ms.total));
  const policy = stats(records.map((r) => r.durations_ms.policy));
  return {
    label,
    scores: aggregate(records.map((r) => ({ scores: r.scores, answered: r.answered }))),
    latency: { total_p50: Math.round(total.p50), total_p95: Math.round(total.p95), policy_p50: Math.round(policy.p50), policy_p95: Math.round(policy.p95) },
  };
};

const bySet = [...sets.map((s) => row(s.label, s.records)), row("union", all)];
const repos = [...new Set(all.map((r) => r.repo))].sort();
const byRepo = repos.map((repo) => row(repo, all.filter((r) => r.repo === repo)));
const byHalf = sets.flatMap((s) => (["tune", "held"] as const).map((h) => row(`${s.label}, ${h === "tune" ? "tuning half" : "held-out half"}`, s.records.filter((r) => half(r.instance_id) === h))));
byHalf.push(...(["tune", "held"] as const).map((h) => row(`union, ${h === "tune" ? "tuning half" : "held-out half"}`, all.filter((r) => half(r.instance_id) === h))));

const pct = (x: number) => (100 * x).toFixed(1);
const table = (rows: Row[], first: string) => [
  `| ${first} | n | file P | file R | **file F1** | module P | module R | module F1 | function P | function R | **function F1** |`,
  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ...rows.map((r) => {
    const l = r.scores.levels;
    return `| ${r.label} | ${r.scores.instances} | ${pct(l.file.precision)} | ${pct(l.file.recall)} | **${pct(l.file.f1)}** | ${pct(l.module.precision)} | ${pct(l.module.recall)} | ${pct(l.module.f1)} | ${pct(l.entity.precision)} | ${pct(l.entity.recall)} | **${pct(l.entity.f1)}** |`;
  }),
];
const latency = [
  "| set | n | total p50 | total p95 | policy p50 | policy p95 |",
  "| --- | ---: | ---: | ---: | ---: | ---: |",
  ...bySet.map((r) => `| ${r.label} | ${r.scores.instances} | ${(r.latency.total_p50 / 1000).toFixed(2)} s | ${(r.latency.total_p95 / 1000).toFixed(2)} s | ${(r.latency.policy_p50 / 1000).toFixed(2)} s | ${(r.latency.policy_p95 / 1000).toFixed(2)} s |`),
];
const md = [
  `# ${a.title} (${a.name})`,
  "",
  "## Per set",
  "",
  ...table(bySet, "set"),
  "",
  "## Per repository (union)",
  "",
  ...table(byRepo, "repository"),
  "",
  "## Split halves (tuning half: first 8 hex digits of sha256(instance_id) even)",
  "",
  ...table(byHalf, "half"),
  "",
  "## Latency per instance (repository + sandbox + policy; policy alone)",
  "",
  ...latency,
  "",
].join("\n");
mkdirSync("bench/results", { recursive: true });
writeFileSync(`bench/results/${a.name}.md`, md);
writeFileSync(`bench/results/${a.name}.json`, `${JSON.stringify({ machine: machine(), inputs: sets.map((s) => s.path), by_set: bySet, by_repository: byRepo, by_half: byHalf }, null, 2)}\n`);
process.stdout.write(md);
