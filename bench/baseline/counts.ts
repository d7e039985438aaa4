import { readFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { WEIGHTS } from "../../src/agent/baseline/weights.js";
import { bestCounts, countGrid, half, loadCases, pct, replayCounts, summary, type Counts, type Outcome } from "./offline.js";

/**
 * How many files and functions to answer, under the committed weights, on several sets at once
 * (file / function F1 for each point of train.ts's grid), so a change of counts is judged on every
 * proxy together rather than on the set it was chosen on:
 *
 *   npx tsx bench/baseline/counts.ts --set NAME=BENCH[,BENCH…]@DUMP[@tune|@held] ... [--choose NAME,NAME… [--write]]
 *
 * --choose picks the counts instead, by train.ts's grid and objective (mean file F1 + mean
 * function F1) on the named sets pooled, and prints the committed and the chosen counts on every
 * set; --write puts the chosen ones in src/agent/baseline/weights.ts.
 */
const { values: a } = parseArgs({ options: { set: { type: "string", multiple: true, default: [] }, choose: { type: "string" }, write: { type: "boolean", default: false } } });
if (a.set.length === 0) throw new Error("usage: counts.ts --set NAME=BENCH[,BENCH…]@DUMP[@tune|@held] ... [--choose NAME,NAME… [--write]]");
const sets = a.set.map((spec) => {
  const m = /^([^=]+)=([^@]+)@([^@]+)(?:@(tune|held))?$/.exec(spec);
  if (!m) throw new Error(`--set ${spec}: expected NAME=BENCH[,BENCH…]@DUMP[@tune|@held]`);
  const cases = loadCases(m[2]!.split(","), m[3]!).filter((c) => !m[4] || half(c.inst.instance_id) === m[4]);
  return { name: m[1]!, cases, run: replayCounts(cases, WEIGHTS) };
});

const committed: Counts = { maxFiles: WEIGHTS.maxFiles, fileRatio: WEIGHTS.fileRatio, maxFunctionsPerFile: WEIGHTS.maxFunctionsPerFile, fnRatio: WEIGHTS.fnRatio };
const isCommitted = (c: Counts) => (Object.keys(committed) as (keyof Counts)[]).every((k) => c[k] === committed[k]);
const f1s = (outcomes: Outcome[]) => {
  const l = summary(outcomes).levels;
  return `${pct(l.file.f1)} / ${pct(l.entity.f1)}`;
};

if (!a.choose) {
  // The fit's own grid, so the committed counts are among the lines.
  for (const c of countGrid()) {
    const cells = sets.map((s) => `${s.name} ${f1s(s.run(c))}`);
    process.stdout.write(`files ≤${c.maxFiles} ≥${c.fileRatio}  functions ≤${c.maxFunctionsPerFile} ≥${c.fnRatio}  ${cells.join("   ")}${isCommitted(c) ? "   (committed)" : ""}\n`);
  }
} else {
  const names = a.choose.split(",");
  const on = names.map((n) => sets.find((s) => s.name === n) ?? (() => { throw new Error(`--choose ${n}: no --set of that name`); })());
  // train.ts's grid and objective, so a choice here is one the fit could have made.
  const chosen = bestCounts(replayCounts(on.flatMap((s) => s.cases), WEIGHTS));
  const show = (c: Counts) => `files ≤${c.maxFiles} ≥${c.fileRatio}, functions ≤${c.maxFunctionsPerFile} ≥${c.fnRatio}`;
  process.stdout.write(`chosen on ${on.map((s) => `${s.name} (${s.cases.length})`).join(" + ")}\ncommitted: ${show(committed)}\nchosen:    ${show(chosen)}\n\n`);
  process.stdout.write(`${"set".padEnd(12)}${"n".padStart(5)}  ${"committed".padStart(13)}  ${"chosen".padStart(13)}\n`);
  for (const s of sets) process.stdout.write(`${s.name.padEnd(12)}${String(s.cases.length).padStart(5)}  ${f1s(s.run(committed)).padStart(13)}  ${f1s(s.run(chosen)).padStart(13)}${names.includes(s.name) ? "  (chosen on)" : ""}\n`);
  if (a.write) {
    const path = new URL("../../src/agent/baseline/weights.ts", import.meta.url);
    let src = readFileSync(path, "utf8");
    for (const [k, v] of Object.entries(chosen)) src = src.replace(new RegExp(`(\\n  ${k}: )[0-9.]+`), `$1${v}`);
    writeFileSync(path, src);
    process.stdout.write("wrote the counts to src/agent/baseline/weights.ts; tests/agent/baselineFit.test.ts gives src/version.ts's new BASELINE_FIT\n");
  }
}
