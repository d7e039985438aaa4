import { createHash } from "node:crypto";
import { pick, rankFiles, type RankedFiles } from "../../src/agent/baseline.js";
import { extractIssueTerms, type IssueTerms } from "../../src/agent/baseline/issueTerms.js";
import type { Weights } from "../../src/agent/baseline/model.js";
import { loadBench, type Instance } from "../../src/eval/bench.js";
import { aggregate, scoreInstance, type AggregateScores, type InstanceScores } from "../../src/scoring/index.js";
import { loadDump, type Dumped } from "./store.js";

/**
 * The baseline replayed offline on dumped sandbox findings: same `decide` as the policy, so
 * figures here match the eval CLI's up to which files were outlined.
 */

/**
 * The split every figure uses: an instance is in the tuning half when the first 8 hex digits
 * of sha256(instance_id) are even, else held out. Nothing about the instance but its id.
 */
export function half(instanceId: string): "tune" | "held" {
  return parseInt(createHash("sha256").update(instanceId).digest("hex").slice(0, 8), 16) % 2 === 0 ? "tune" : "held";
}

export interface Case {
  inst: Instance;
  terms: IssueTerms;
  dump: Dumped;
}

export function loadCases(benchFiles: string[], dumpFile: string): Case[] {
  const dump = loadDump(dumpFile);
  const out: Case[] = [];
  const missing: string[] = [];
  for (const inst of benchFiles.flatMap((f) => loadBench(f))) {
    const d = dump.get(inst.instance_id);
    if (d) out.push({ inst, terms: extractIssueTerms(inst.problem_statement), dump: d });
    else missing.push(inst.instance_id);
  }
  // The eval CLI scores those as zeros: a mean without them is over fewer instances, not comparable.
  if (missing.length) process.stderr.write(`offline: ${missing.length} of ${missing.length + out.length} instances are not in ${dumpFile} (their trees could not be prepared?): left out of every figure: ${missing.slice(0, 5).join(", ")}${missing.length > 5 ? ", …" : ""}\n`);
  return out;
}

export interface Outcome {
  id: string;
  repo: string;
  scores: InstanceScores;
}

export function replay(cases: Case[], weights: Weights): Outcome[] {
  return replayCounts(cases, weights)(weights);
}

/**
 * Replays for many answer counts under the same linear weights: files are ranked once per
 * case, then only the choosing is repeated (what a grid search over counts needs).
 */
export function replayCounts(cases: Case[], weights: Weights): (counts: Counts) => Outcome[] {
  const ranked: RankedFiles[] = cases.map((c) => rankFiles(c.terms, c.dump.gathered, weights));
  return (counts) =>
    cases.map((c, i) => {
      const { locations } = pick(ranked[i]!, c.dump.gathered, { ...weights, ...counts });
      return { id: c.inst.instance_id, repo: c.inst.repo, scores: scoreInstance(locations, c.inst.gt) };
    });
}

export type Counts = Pick<Weights, "maxFiles" | "fileRatio" | "maxFunctionsPerFile" | "fnRatio">;

/** The answer counts a fit chooses among (train.ts, counts.ts --choose). */
export function countGrid(): Counts[] {
  const grid: Counts[] = [];
  for (const maxFiles of [1, 2, 3])
    for (const fileRatio of [0.2, 0.35, 0.5, 0.65, 0.8, 0.95])
      for (const maxFunctionsPerFile of [1, 2, 3])
        for (const fnRatio of [0.2, 0.35, 0.5, 0.65, 0.8, 0.95]) grid.push({ maxFiles, fileRatio, maxFunctionsPerFile, fnRatio });
  return grid;
}

/** The counts of `grid` with the best mean file F1 + mean function F1 (the first of equals). */
export function bestCounts(replayWith: (counts: Counts) => Outcome[], grid = countGrid()): Counts {
  let best: { score: number; counts: Counts } | undefined;
  for (const counts of grid) {
    const l = summary(replayWith(counts)).levels;
    const score = l.file.f1 + l.entity.f1;
    if (!best || score > best.score + 1e-9) best = { score, counts };
  }
  return best!.counts;
}

export function summary(outcomes: Outcome[]): AggregateScores {
  return aggregate(outcomes.map((o) => ({ scores: o.scores, answered: true })));
}

export const pct = (x: number) => (100 * x).toFixed(1);
export function line(label: string, s: AggregateScores): string {
  return `${label.padEnd(14)} n=${String(s.instances).padStart(3)}  file ${pct(s.levels.file.f1).padStart(5)}  module ${pct(s.levels.module.f1).padStart(5)}  function ${pct(s.levels.entity.f1).padStart(5)}`;
}
