import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { OUTLINE_FILES, firstRanking } from "../../src/agent/baseline.js";
import { FILE_FEATURES, FUNCTION_FEATURES, RERANK_FEATURES, fileFeatures, functionFeatures, rankContext } from "../../src/agent/baseline/features.js";
import type { Weights } from "../../src/agent/baseline/model.js";
import { rerankFeatures } from "../../src/agent/baseline/rerank.js";
import { WEIGHTS } from "../../src/agent/baseline/weights.js";
import { bestCounts, half, line, loadCases, replay, replayCounts, summary, type Case } from "./offline.js";

/**
 * Fits the baseline's weights on the tuning half of the dev set and reports both halves.
 * File and function weights are conditional-logit fits (softmax over one instance's
 * candidates, the gold ones as positives, L2-penalized, plain gradient descent from zero,
 * so the fit is deterministic); how many files and functions to answer is then chosen by
 * grid search on the tuning half's mean F1.
 *
 *   npx tsx bench/baseline/train.ts --dump DUMP.jsonl [--write] [--loro] [--lambda FILE,FN] [--drop a,b]
 *     [--extra MINED.jsonl --extra-dump MINED-DUMP.jsonl] BENCH.jsonl...
 *
 * --extra adds instances mined from other repositories' histories (bench/baseline/commits.py)
 * to every fit; they are never scored, so the dev halves and the leave-one-repository-out
 * figures stay comparable with and without them.
 */
const { values: a, positionals } = parseArgs({
  options: { dump: { type: "string" }, write: { type: "boolean", default: false }, all: { type: "boolean", default: false }, loro: { type: "boolean", default: false }, drop: { type: "string", default: "" }, lambda: { type: "string" }, extra: { type: "string", multiple: true, default: [] }, "counts-on-dev": { type: "boolean", default: false }, "dev-weight": { type: "string", default: "1" }, "kfold-extra": { type: "string", default: "0" }, "extra-dump": { type: "string" } },
  allowPositionals: true,
});
if (!a.dump || positionals.length === 0) throw new Error("usage: train.ts --dump FILE [--write] BENCH.jsonl...");
const cases = loadCases(positionals, a.dump);
const extra = a.extra.length > 0 ? loadCases(a.extra, a["extra-dump"] ?? a.dump) : [];
const tune = cases.filter((c) => a.all || half(c.inst.instance_id) === "tune");
const held = cases.filter((c) => half(c.inst.instance_id) === "held");
const fold = (id: string) => parseInt(createHash("sha256").update(id).digest("hex").slice(8, 16), 16) % 2;

interface Group {
  x: number[][];
  pos: boolean[];
}

/**
 * Mean negative log-likelihood of the positives' total probability, plus λ‖w‖², minimized
 * by plain gradient descent from zero (deterministic).
 */
function fit(groups: Group[], dims: number, lambda: number, signed: boolean[], iters = 3000, lr = 0.5): number[] {
  const flat = groups.map((g) => ({ x: Float64Array.from(g.x.flat()), n: g.x.length, pos: g.pos }));
  const w = new Float64Array(dims);
  const grad = new Float64Array(dims);
  for (let it = 0; it < iters; it++) {
    for (let i = 0; i < dims; i++) grad[i] = 2 * lambda * w[i]!;
    for (const g of flat) {
      const s = new Float64Array(g.n);
      let m = -Infinity;
      for (let j = 0; j < g.n; j++) {
        let v = 0;
        for (let i = 0; i < dims; i++) v += g.x[j * dims + i]! * w[i]!;
        s[j] = v;
        if (v > m) m = v;
      }
      let z = 0;
      let zp = 0;
      for (let j = 0; j < g.n; j++) {
        s[j] = Math.exp(s[j]! - m);
        z += s[j]!;
        if (g.pos[j]) zp += s[j]!;
      }
      for (let j = 0; j < g.n; j++) {
        const coef = (s[j]! / z - (g.pos[j] ? s[j]! / zp : 0)) / flat.length;
        if (coef !== 0) for (let i = 0; i < dims; i++) grad[i] = grad[i]! + coef * g.x[j * dims + i]!;
      }
    }
    // Evidence features may only add to a score (their weight is kept ≥ 0): with a few dozen
    // instances a negative weight on evidence is noise, and would not carry to new repositories.
    for (let i = 0; i < dims; i++) w[i] = signed[i] ? Math.max(0, w[i]! - lr * grad[i]!) : w[i]! - lr * grad[i]!;
  }
  return [...w];
}

/** Mean log-probability of the positives (higher is better). */
function logLik(groups: Group[], w: number[]): number {
  let sum = 0;
  for (const g of groups) {
    const s = g.x.map((x) => x.reduce((acc, xi, i) => acc + xi * w[i]!, 0));
    const m = Math.max(...s);
    const z = s.reduce((acc, v) => acc + Math.exp(v - m), 0);
    const zp = s.reduce((acc, v, j) => acc + (g.pos[j] ? Math.exp(v - m) : 0), 0);
    sum += Math.log(zp / z);
  }
  return sum / Math.max(1, groups.length);
}

/** Share of groups whose best-scored candidate is a positive. */
function top1(groups: Group[], w: number[]): number {
  let hits = 0;
  for (const g of groups) {
    let best = -Infinity;
    let pos = false;
    g.x.forEach((x, j) => {
      const v = x.reduce((acc, xi, i) => acc + xi * w[i]!, 0);
      if (v > best) {
        best = v;
        pos = g.pos[j]!;
      }
    });
    if (pos) hits++;
  }
  return hits / Math.max(1, groups.length);
}

/** λ by two-fold cross-validation inside the tuning half (folds by the next hash bit). */
function chooseLambda(groups: Group[], folds: number[], dims: number, signed: boolean[], say: (s: string) => void): number {
  let best = { lambda: LAMBDAS[0]!, ll: -Infinity };
  for (const lambda of LAMBDAS) {
    let acc = 0;
    let ll = 0;
    for (const k of [0, 1]) {
      const w = fit(groups.filter((_, i) => folds[i] !== k), dims, lambda, signed, 1500);
      const test = groups.filter((_, i) => folds[i] === k);
      acc += top1(test, w) / 2;
      ll += logLik(test, w) / 2;
    }
    say(`  λ=${lambda}: cross-validated top-1 ${(100 * acc).toFixed(1)}, log-likelihood ${ll.toFixed(3)}\n`);
    if (ll > best.ll + 1e-9) best = { lambda, ll };
  }
  return best.lambda;
}
const LAMBDAS = [0.001, 0.003, 0.01, 0.03, 0.1];
/** Priors about a candidate (size, kind of path or name) may weigh either way; evidence only adds. */
/** Features left out of a fit (weight 0), to measure what each one brings: --drop a,b. */
const DROP = new Set(a.drop.split(",").filter(Boolean));
const PRIORS = new Set(["vendored", "outsidePackage", "init", "size", "dunder", "private", "property"]);
const FILE_SIGNED = FILE_FEATURES.map((f) => !PRIORS.has(f));
const FUNCTION_SIGNED = FUNCTION_FEATURES.map((f) => !PRIORS.has(f));
const RERANK_SIGNED = RERANK_FEATURES.map(() => true);

function fileGroups(cs: Case[]): Group[] {
  const out: Group[] = [];
  folds.length = 0;
  for (const c of cs) {
    const g = c.dump.gathered;
    const cands = fileFeatures(rankContext(c.terms, g.query, g.scan, g.commits));
    const gt = new Set(c.inst.gt.files);
    const pos = cands.map((f) => gt.has(f.path));
    if (!pos.some(Boolean) || pos.every(Boolean)) continue;
    folds.push(fold(c.inst.instance_id));
    out.push({ x: cands.map((f) => FILE_FEATURES.map((k) => (DROP.has(k) ? 0 : f.features[k]))), pos });
  }
  return out;
}

/** The outlined files of each case, first ranked by fitted file weights, as the second model sees them. */
function rerankGroups(cs: Case[], fileWeights: Weights["file"]): Group[] {
  const out: Group[] = [];
  folds.length = 0;
  for (const c of cs) {
    const g = c.dump.gathered;
    const ctx = rankContext(c.terms, g.query, g.scan, g.commits);
    const cands = rerankFeatures(ctx, firstRanking(ctx, fileWeights), g.outline, OUTLINE_FILES);
    const gt = new Set(c.inst.gt.files);
    const pos = cands.map((f) => gt.has(f.file.item.path));
    if (!pos.some(Boolean) || pos.every(Boolean)) continue;
    folds.push(fold(c.inst.instance_id));
    out.push({ x: cands.map((f) => RERANK_FEATURES.map((k) => (DROP.has(k) ? 0 : f.features[k]))), pos });
  }
  return out;
}

function functionGroups(cs: Case[]): Group[] {
  const out: Group[] = [];
  folds.length = 0;
  for (const c of cs) {
    const g = c.dump.gathered;
    const ctx = rankContext(c.terms, g.query, g.scan, g.commits);
    const gt = new Set(c.inst.gt.entities);
    for (const file of g.outline.filter((f) => c.inst.gt.files.includes(f.path))) {
      const cands = functionFeatures(ctx, [file]);
      const pos = cands.map((f) => gt.has(`${f.def.file}:${f.def.cls ? `${f.def.cls}.` : ""}${f.def.name}`));
      if (!pos.some(Boolean) || pos.every(Boolean)) continue;
      folds.push(fold(c.inst.instance_id));
      out.push({ x: cands.map((f) => FUNCTION_FEATURES.map((k) => (DROP.has(k) ? 0 : f.features[k]))), pos });
    }
  }
  return out;
}

const round = (x: number) => Math.round(x * 1000) / 1000;
/** Cross-validation fold of each group, filled by the group builders. */
const folds: number[] = [];

/** Weights fitted on `cs`: both linear models, then how many files and functions to answer. */
function train(cs: Case[], say: (s: string) => void, fixed?: { file: number; fn: number; rerank: number }, countCases: Case[] = cs): Weights {
  const fg = fileGroups(cs);
  say(`files: ${fg.length} groups\n`);
  const lf = fixed?.file ?? chooseLambda(fg, [...folds], FILE_FEATURES.length, FILE_SIGNED, say);
  const wf = fit(fg, FILE_FEATURES.length, lf, FILE_SIGNED);
  const ng = functionGroups(cs);
  say(`functions: ${ng.length} groups\n`);
  const ln = fixed?.fn ?? chooseLambda(ng, [...folds], FUNCTION_FEATURES.length, FUNCTION_SIGNED, say);
  const wn = fit(ng, FUNCTION_FEATURES.length, ln, FUNCTION_SIGNED);
  const file = Object.fromEntries(FILE_FEATURES.map((k, i) => [k, round(wf[i]!)])) as Weights["file"];
  const rg = rerankGroups(cs, file);
  say(`outlined files: ${rg.length} groups\n`);
  const lr = fixed?.rerank ?? chooseLambda(rg, [...folds], RERANK_FEATURES.length, RERANK_SIGNED, say);
  const wr = fit(rg, RERANK_FEATURES.length, lr, RERANK_SIGNED);
  lambdas = { file: lf, fn: ln, rerank: lr };
  say(`fitted with λ ${lf} (files), ${ln} (functions), ${lr} (outlined files); top-1 on these cases ${(100 * top1(fg, wf)).toFixed(1)} / ${(100 * top1(ng, wn)).toFixed(1)} / ${(100 * top1(rg, wr)).toFixed(1)}\n`);
  const weights: Weights = {
    ...WEIGHTS,
    file,
    fn: Object.fromEntries(FUNCTION_FEATURES.map((k, i) => [k, round(wn[i]!)])) as Weights["fn"],
    rerank: Object.fromEntries(RERANK_FEATURES.map((k, i) => [k, round(wr[i]!)])) as Weights["rerank"],
  };
  // How many to answer: grid search on these cases' mean of file and function F1.
  return { ...weights, ...bestCounts(replayCounts(countCases, weights)) };
}
let lambdas = { file: 0, fn: 0, rerank: 0 };

const out = (s: string) => void process.stdout.write(s);
// --lambda FILE,FN fixes the penalties instead of choosing them by cross-validation.
const fixedLambda = a.lambda ? (([f, n, r]) => ({ file: Number(f), fn: Number(n ?? f), rerank: Number(r ?? f) }))(a.lambda.split(",")) : undefined;
if (fixedLambda && !(fixedLambda.file > 0 && fixedLambda.fn > 0 && fixedLambda.rerank > 0)) throw new Error(`--lambda takes FILE[,FN[,RERANK]], positive numbers (got ${a.lambda})`);
if (extra.length > 0) out(`extra: ${extra.length} mined instances from ${new Set(extra.map((c) => c.inst.repo)).size} repositories\n`);
// How many locations to answer follows the benchmarks' ground truth, which mined commits
// (larger, multi-function changes) may not share: --counts-on-dev chooses it on dev cases only.
const countsOn = (dev: Case[], mined = extra) => (a["counts-on-dev"] ? dev : [...dev, ...mined]);
// --dev-weight k counts each dev case k times in the fit, so a few dozen benchmark issues are
// not outweighed by hundreds of mined commits.
const devWeight = Number(a["dev-weight"]);
if (!(Number.isInteger(devWeight) && devWeight >= 1)) throw new Error(`--dev-weight takes a whole number ≥ 1 (got ${a["dev-weight"]})`);
const withExtra = (dev: Case[], mined = extra) => [...Array.from({ length: devWeight }, () => dev).flat(), ...mined];
const weights = train(withExtra(tune), out, fixedLambda, countsOn(tune));
out(`${JSON.stringify(weights, null, 1)}\n`);
out(`${line("current tune", summary(replay(tune, WEIGHTS)))}\n${line("current held", summary(replay(held, WEIGHTS)))}\n`);
out(`${line("fitted tune", summary(replay(tune, weights)))}\n${line("fitted held", summary(replay(held, weights)))}\n`);
if (a.loro) {
  // Leave one repository out, inside the tuning half: fit on the other repositories' cases,
  // score the left-out one; a proxy for repositories never seen, for choosing features
  // without looking at the held-out half.
  const fixed = lambdas;
  const outcomes = [];
  for (const repo of [...new Set(tune.map((c) => c.inst.repo))].sort()) {
    const rest = tune.filter((c) => c.inst.repo !== repo);
    const w = train(withExtra(rest), () => undefined, fixed, countsOn(rest));
    const o = replay(tune.filter((c) => c.inst.repo === repo), w);
    out(`${line(`loro ${repo.split("/")[1]}`, summary(o))}\n`);
    outcomes.push(...o);
  }
  out(`${line("loro all", summary(outcomes))}\n`);
  // The mined instances alone: every dev repository is then one never seen in fitting.
  if (extra.length > 0) out(`${line("extra only", summary(replay(tune, train(extra, () => undefined, fixed))))}\n`);
}
// The mined repositories as a second, larger proxy for repositories never seen: split by
// repository into K groups, each scored with weights fitted without it.
const k = Number(a["kfold-extra"]);
if (k > 0 && extra.length > 0) {
  const group = (repo: string) => parseInt(createHash("sha256").update(repo).digest("hex").slice(0, 8), 16) % k;
  const outcomes = [];
  for (let g = 0; g < k; g++) {
    const rest = extra.filter((c) => group(c.inst.repo) !== g);
    const w = train(withExtra(tune, rest), () => undefined, lambdas, countsOn(tune, rest));
    outcomes.push(...replay(extra.filter((c) => group(c.inst.repo) === g), w));
  }
  out(`${line("dev → mined", summary(replay(extra, train(tune, () => undefined, lambdas))))}\n`);
  out(`${line(`${k}-fold mined`, summary(outcomes))}\n`);
}
if (a.write) {
  writeFileSync(
    "src/agent/baseline/weights.ts",
    `import type { Weights } from "./model.js";

/**
 * Fitted by bench/baseline/train.ts on the tuning half of the dev set (instances whose
 * sha256(instance_id) starts with an even 32-bit number) together with instances mined from
 * other repositories' histories (bench/baseline/mined-repos.txt); do not edit by hand.
 */
export const WEIGHTS: Weights = ${JSON.stringify(weights, null, 2).replace(/"(\w+)":/g, "$1:")};
`,
  );
  process.stdout.write("wrote src/agent/baseline/weights.ts; tests/agent/baselineFit.test.ts gives src/version.ts's new BASELINE_FIT\n");
}
