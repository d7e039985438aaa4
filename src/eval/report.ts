import { aggregate, LEVELS, type InstanceScores, type Level } from "../scoring/index.js";

/** What the eval writes per instance (one JSONL line). */
export interface InstanceRecord {
  instance_id: string;
  repo: string;
  policy: string;
  answered: boolean;
  finish_reason: string | null;
  failure: string | null;
  prediction: Array<{ file: string; class_name?: string; function_name?: string }> | null;
  scores: InstanceScores | null;
  /** The policy's alternatives (the baseline's next files), and the answer scored with them: never part of `scores`. */
  alternatives?: Array<{ file: string; class_name?: string; function_name?: string }>;
  scores_with_alternatives?: InstanceScores;
  turns: number;
  model_calls: number;
  prompt_tokens: number;
  completion_tokens: number;
  durations_ms: { repo: number; sandbox: number; policy: number; check?: number; total: number };
  /** The sandbox or tree could not be given back after the answer: the machine's trouble, the answer stands. */
  cleanup_failure?: string;
}

export interface Summary {
  instances: number;
  answered: number;
  failed: number;
  levels: Record<Level, { precision: number; recall: number; f1: number }>;
  latency_ms: { p50: number; p90: number; p99: number; max: number };
  tokens: { prompt_mean: number; completion_mean: number };
  failures: Record<string, number>;
  /** Where a policy names alternatives: the share of instances with a gold file (function) among those named, without and with them. */
  alternatives?: {
    per_instance: number;
    gold_file_named: { answer: number; with_alternatives: number };
    gold_function_named: { answer: number; with_alternatives: number };
  };
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export function summarize(records: InstanceRecord[]): Summary {
  const agg = aggregate(records.map((r) => ({ scores: r.scores, answered: r.answered })));
  const totals = records.map((r) => r.durations_ms.total).sort((a, b) => a - b);
  const failures: Record<string, number> = {};
  for (const r of records) if (r.failure) failures[r.failure.split(":")[0]!] = (failures[r.failure.split(":")[0]!] ?? 0) + 1;
  const n = Math.max(records.length, 1);
  return {
    instances: records.length,
    answered: agg.answered,
    failed: records.filter((r) => r.failure).length,
    levels: agg.levels,
    latency_ms: { p50: percentile(totals, 50), p90: percentile(totals, 90), p99: percentile(totals, 99), max: totals.at(-1) ?? 0 },
    tokens: {
      prompt_mean: records.reduce((s, r) => s + r.prompt_tokens, 0) / n,
      completion_mean: records.reduce((s, r) => s + r.completion_tokens, 0) / n,
    },
    failures,
    ...(records.some((r) => r.alternatives?.length) ? { alternatives: alternativesSummary(records) } : {}),
  };
}

/** A gold location is named when the recall at its level is above 0. */
function alternativesSummary(records: InstanceRecord[]): NonNullable<Summary["alternatives"]> {
  const n = Math.max(records.length, 1);
  const share = (level: Level, scores: (r: InstanceRecord) => InstanceScores | null | undefined) => records.filter((r) => (scores(r)?.[level].recall ?? 0) > 0).length / n;
  const withThem = (r: InstanceRecord) => r.scores_with_alternatives ?? r.scores;
  return {
    per_instance: records.reduce((s, r) => s + (r.alternatives?.length ?? 0), 0) / n,
    gold_file_named: { answer: share("file", (r) => r.scores), with_alternatives: share("file", withThem) },
    gold_function_named: { answer: share("entity", (r) => r.scores), with_alternatives: share("entity", withThem) },
  };
}

const pct = (x: number) => (100 * x).toFixed(1);
const bar = (x: number) => "█".repeat(Math.round(x * 20)).padEnd(20, "·");

export function markdownReport(summary: Summary, title: string, records: InstanceRecord[]): string {
  const lines = [
    `# ${title}`,
    "",
    `${summary.instances} instances, ${summary.answered} answered (${pct(summary.answered / Math.max(summary.instances, 1))}%), ${summary.failed} failed.`,
    "",
    "| level | precision | recall | F1 | |",
    "| --- | ---: | ---: | ---: | --- |",
    ...LEVELS.map((l) => {
      const s = summary.levels[l];
      return `| ${l === "entity" ? "function (entity)" : l} | ${pct(s.precision)} | ${pct(s.recall)} | **${pct(s.f1)}** | \`${bar(s.f1)}\` |`;
    }),
    "",
    `Latency per instance: p50 ${(summary.latency_ms.p50 / 1000).toFixed(2)} s, p90 ${(summary.latency_ms.p90 / 1000).toFixed(2)} s, p99 ${(summary.latency_ms.p99 / 1000).toFixed(2)} s, max ${(summary.latency_ms.max / 1000).toFixed(2)} s.`,
    `Tokens per instance (mean): prompt ${summary.tokens.prompt_mean.toFixed(0)}, completion ${summary.tokens.completion_mean.toFixed(0)}.`,
  ];
  const alt = summary.alternatives;
  if (alt) {
    lines.push(
      `With the alternatives (${alt.per_instance.toFixed(1)} per instance, not scored): a gold file is among the files named for ${pct(alt.gold_file_named.answer)}% → ${pct(alt.gold_file_named.with_alternatives)}% of instances, a gold function for ${pct(alt.gold_function_named.answer)}% → ${pct(alt.gold_function_named.with_alternatives)}%.`,
    );
  }
  if (Object.keys(summary.failures).length) lines.push("", `Failures: ${Object.entries(summary.failures).map(([k, v]) => `${k} ${v}`).join(", ")}.`);
  lines.push("", "| instance | file F1 | function F1 | finish |", "| --- | ---: | ---: | --- |");
  for (const r of records) {
    lines.push(`| ${r.instance_id} | ${r.scores ? pct(r.scores.file.f1) : "–"} | ${r.scores ? pct(r.scores.entity.f1) : "–"} | ${r.failure ?? r.finish_reason ?? ""} |`);
  }
  return `${lines.join("\n")}\n`;
}
