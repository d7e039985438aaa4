import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { zeroWeights, type Weights } from "../../src/agent/baseline/model.js";
import { WEIGHTS } from "../../src/agent/baseline/weights.js";
import { line, loadCases, replay, summary } from "./offline.js";

/**
 * Scores weights offline on dumped instances, per repository and in all (for instances of
 * repositories no fit has seen, bench/baseline/unseen-repos.txt):
 *
 *   npx tsx bench/baseline/score.ts --dump DUMP.jsonl [--weights W.json] BENCH.jsonl...
 *
 * --weights takes weights as JSON (default: the committed ones); weights from before the second
 * look (no `rerank`) are scored as they answered then, on the first score alone.
 */
const { values: a, positionals } = parseArgs({
  options: { dump: { type: "string" }, weights: { type: "string" } },
  allowPositionals: true,
});
if (!a.dump || positionals.length === 0) throw new Error("usage: score.ts --dump DUMP.jsonl [--weights W.json] BENCH.jsonl...");
const firstOnly = { ...zeroWeights().rerank, first: 1 };
const weights: Weights = a.weights ? { rerank: firstOnly, ...(JSON.parse(readFileSync(a.weights, "utf8")) as Omit<Weights, "rerank">) } : WEIGHTS;
// Replayed once; each repository's line is a slice of the same outcomes.
const outcomes = replay(loadCases(positionals, a.dump), weights);
const repos = [...new Set(outcomes.map((o) => o.repo))].sort();
for (const repo of repos) process.stdout.write(`${line(repo.slice(0, 14), summary(outcomes.filter((o) => o.repo === repo)))}  ${repo}\n`);
process.stdout.write(`${line("all", summary(outcomes))}  (${repos.length} repositories)\n`);
