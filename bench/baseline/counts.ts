import { parseArgs } from "node:util";
import { WEIGHTS } from "../../src/agent/baseline/weights.js";
import { half, loadCases, pct, replayCounts, summary } from "./offline.js";

/**
 * How many files and functions to answer, under the committed weights, on several sets at once
 * (file / function F1 for each point of a small grid), so a change of counts is judged on every
 * proxy together rather than on the set it was chosen on:
 *
 *   npx tsx bench/baseline/counts.ts --set NAME=BENCH[,BENCH…]@DUMP[@tune|@held] ...
 */
const { values: a } = parseArgs({ options: { set: { type: "string", multiple: true, default: [] } } });
if (a.set.length === 0) throw new Error("usage: counts.ts --set NAME=BENCH[,BENCH…]@DUMP[@tune|@held] ...");
const sets = a.set.map((spec) => {
  const m = /^([^=]+)=([^@]+)@([^@]+)(?:@(tune|held))?$/.exec(spec);
  if (!m) throw new Error(`--set ${spec}: expected NAME=BENCH[,BENCH…]@DUMP[@tune|@held]`);
  const cases = loadCases(m[2]!.split(","), m[3]!).filter((c) => !m[4] || half(c.inst.instance_id) === m[4]);
  return { name: m[1]!, run: replayCounts(cases, WEIGHTS) };
});
for (const maxFiles of [1, 2, 3])
  for (const fileRatio of [0.5, 0.65, 0.8])
    for (const maxFunctionsPerFile of [1, 2, 3])
      for (const fnRatio of [0.5, 0.65, 0.8]) {
        const cells = sets.map((s) => {
          const l = summary(s.run({ maxFiles, fileRatio, maxFunctionsPerFile, fnRatio })).levels;
          return `${s.name} ${pct(l.file.f1)} / ${pct(l.entity.f1)}`;
        });
        const committed = maxFiles === WEIGHTS.maxFiles && fileRatio === WEIGHTS.fileRatio && maxFunctionsPerFile === WEIGHTS.maxFunctionsPerFile && fnRatio === WEIGHTS.fnRatio;
        process.stdout.write(`files ≤${maxFiles} ≥${fileRatio}  functions ≤${maxFunctionsPerFile} ≥${fnRatio}  ${cells.join("   ")}${committed ? "   (committed)" : ""}\n`);
      }
