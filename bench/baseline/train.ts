import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { FILE_FEATURES, FUNCTION_FEATURES, fileFeatures, functionFeatures, rankContext } from "../../src/agent/baseline/features.js";
import type { Weights } from "../../src/agent/baseline/model.js";
import { WEIGHTS } from "../../src/agent/baseline/weights.js";
import { half, line, loadCases, replay, summary, type Case } from "./offline.js";

/**
 * Fits the baseline's weights on the tuning half of the dev set and reports both halves.
 * File and function weights are conditional-logit fits (softmax over one instance's
 * candidates, the gold ones as positives, L2-penalized, plain gradient descent from zero,
 * so the fit is deterministic); how many files and functions to answer is then chosen by
 * grid search on the tuning half's mean F1.
 *
 *   npx tsx bench/baseline/train.ts --dump DUMP.jsonl [--write] BENCH.jsonl...
 */
const { values: a, positionals } = parseArgs({
  options: { dump: { type: "string" }, write: { type: "boolean", default: false }, lambda: { type: "string", default: "0.02" }, all: { type: "boolean", default: false } },
  allowPositionals: true,
});
if (!a.dump || positionals.length === 0) throw new Error("usage: train.ts --dump FILE [--write] BENCH.jsonl...");
const cases = loadCases(positionals, a.dump);
const tune = cases.filter((c) => a.all || half(c.inst.instance_id) === "tune");
const held = cases.filter((c) => half(c.inst.instance_id) === "held");
const lambda = Number(a.lambda);

interface Group {
  x: number[][];
  pos: boolean[];
}

/** Mean negative log-likelihood of the positives' total probability, plus λ‖w‖². */
function fit(groups: Group[], dims: number, iters = 4000, lr = 0.5): number[] {
  const w = new Array<number>(dims).fill(0);
  for (let it = 0; it < iters; it++) {
    const grad = w.map((v) => 2 * lambda * v);
    for (const g of groups) {
      const s = g.x.map((x) => x.reduce((acc, v, i) => acc + v * w[i]!, 0));
      const m = Math.max(...s);
      const e = s.map((v) => Math.exp(v - m));
      const z = e.reduce((p, q) => p + q, 0);
      const zp = e.reduce((p, q, i) => p + (g.pos[i] ? q : 0), 0);
      g.x.forEach((x, j) => {
        const coef = e[j]! / z - (g.pos[j] ? e[j]! / zp : 0);
        if (coef !== 0) for (let i = 0; i < dims; i++) grad[i]! += (coef * x[i]!) / groups.length;
      });
    }
    for (let i = 0; i < dims; i++) w[i]! -= lr * grad[i]!;
  }
  return w;
}

function fileGroups(cs: Case[]): Group[] {
  const out: Group[] = [];
  for (const c of cs) {
    const g = c.dump.gathered;
    const cands = fileFeatures(rankContext(c.terms, g.query, g.scan));
    const gt = new Set(c.inst.gt.files);
    const pos = cands.map((f) => gt.has(f.path));
    if (!pos.some(Boolean) || pos.every(Boolean)) continue;
    out.push({ x: cands.map((f) => FILE_FEATURES.map((k) => f.features[k])), pos });
  }
  return out;
}

function functionGroups(cs: Case[]): Group[] {
  const out: Group[] = [];
  for (const c of cs) {
    const g = c.dump.gathered;
    const ctx = rankContext(c.terms, g.query, g.scan);
    const gt = new Set(c.inst.gt.entities);
    for (const file of g.outline.filter((f) => c.inst.gt.files.includes(f.path))) {
      const cands = functionFeatures(ctx, [file]);
      const pos = cands.map((f) => gt.has(`${f.def.file}:${f.def.cls ? `${f.def.cls}.` : ""}${f.def.name}`));
      if (!pos.some(Boolean) || pos.every(Boolean)) continue;
      out.push({ x: cands.map((f) => FUNCTION_FEATURES.map((k) => f.features[k])), pos });
    }
  }
  return out;
}

const round = (x: number) => Math.round(x * 1000) / 1000;
const fg = fileGroups(tune);
const wf = fit(fg, FILE_FEATURES.length);
const ng = functionGroups(tune);
const wn = fit(ng, FUNCTION_FEATURES.length);
process.stdout.write(`fitted on ${fg.length} file groups, ${ng.length} function groups (λ=${lambda})\n`);
let weights: Weights = {
  ...WEIGHTS,
  file: Object.fromEntries(FILE_FEATURES.map((k, i) => [k, round(wf[i]!)])) as Weights["file"],
  fn: Object.fromEntries(FUNCTION_FEATURES.map((k, i) => [k, round(wn[i]!)])) as Weights["fn"],
};

// How many to answer: grid search on the tuning half's mean of file and function F1.
let best = { score: -1, weights };
for (const maxFiles of [1, 2, 3])
  for (const fileRatio of [0.2, 0.35, 0.5, 0.65, 0.8, 0.95])
    for (const maxFunctionsPerFile of [1, 2, 3])
      for (const fnRatio of [0.2, 0.35, 0.5, 0.65, 0.8, 0.95]) {
        const w = { ...weights, maxFiles, fileRatio, maxFunctionsPerFile, fnRatio };
        const s = summary(replay(tune, w)).levels;
        const score = s.file.f1 + s.entity.f1;
        if (score > best.score + 1e-9) best = { score, weights: w };
      }
weights = best.weights;
process.stdout.write(`${JSON.stringify(weights, null, 1)}\n`);
process.stdout.write(`${line("start tune", summary(replay(tune, WEIGHTS)))}\n${line("start held", summary(replay(held, WEIGHTS)))}\n`);
process.stdout.write(`${line("fitted tune", summary(replay(tune, weights)))}\n${line("fitted held", summary(replay(held, weights)))}\n`);
if (a.write) {
  writeFileSync(
    "src/agent/baseline/weights.ts",
    `import type { Weights } from "./model.js";

/**
 * Fitted by bench/baseline/train.ts on the tuning half of the dev set (instances whose
 * sha256(instance_id) starts with an even 32-bit number); do not edit by hand.
 */
export const WEIGHTS: Weights = ${JSON.stringify(weights, null, 2).replace(/"(\w+)":/g, "$1:")};
`,
  );
  process.stdout.write("wrote src/agent/baseline/weights.ts\n");
}
