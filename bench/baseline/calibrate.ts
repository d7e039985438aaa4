import { readFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { CANDIDATE_FILES, pick, rankFiles } from "../../src/agent/baseline.js";
import { CALIBRATION, calibrate, logit, type Calibration, type Curve } from "../../src/agent/baseline/calibration.js";
import { WEIGHTS } from "../../src/agent/baseline/weights.js";
import type { Location } from "../../src/agent/policy.js";
import { half, loadCases, type Case } from "./offline.js";

/**
 * Fits how sure the baseline says it is (src/agent/baseline/calibration.ts) on the tuning half
 * of the dev set, with the committed weights, and shows how well it holds on the held-out half
 * and on any other set: of the locations given a confidence in each band, how many were right;
 * then what the alternatives add (a gold file or function among those named, without and with them).
 *
 *   npx tsx bench/baseline/calibrate.ts --dump DUMP.jsonl [--write] [--report NAME=BENCH.jsonl:DUMP.jsonl]... BENCH.jsonl...
 *
 * Files are those answered and the alternatives (the next files, whose confidence says they
 * are less likely), functions those answered. A file is right when it is a gold file, a
 * function when it is a gold function (with its class). The curve is a logistic regression of
 * that on the ranker's log-odds, plain gradient descent from zero (deterministic).
 */
const { values: a, positionals } = parseArgs({
  options: { dump: { type: "string" }, write: { type: "boolean", default: false }, report: { type: "string", multiple: true, default: [] } },
  allowPositionals: true,
});
if (!a.dump || positionals.length === 0) throw new Error("usage: calibrate.ts --dump FILE [--write] [--report NAME=BENCH:DUMP]... BENCH.jsonl...");

type Level = keyof Calibration;
interface Row {
  level: Level;
  p: number;
  right: boolean;
}

/** The first CANDIDATE_FILES files (answered, then alternatives) and the answered functions, with the rankers' raw probabilities. */
function rows(cases: Case[]): Row[] {
  const out: Row[] = [];
  for (const c of cases) {
    const ranked = rankFiles(c.terms, c.dump.gathered, WEIGHTS);
    const d = pick(ranked, c.dump.gathered, WEIGHTS);
    const files = new Set(c.inst.gt.files);
    const entities = new Set(c.inst.gt.entities);
    // The answer's files are the first ranked; the rest of the first five are the alternatives.
    for (const f of d.files.slice(0, CANDIDATE_FILES)) out.push({ level: "file", p: f.p, right: files.has(f.item.path) });
    for (const l of d.locations) {
      if (!l.function_name) continue;
      const fn = d.functions.find((f) => f.item.def.file === l.file && f.item.def.name === l.function_name && (f.item.def.cls || undefined) === l.class_name)!;
      out.push({ level: "function", p: fn.p, right: entities.has(`${l.file}:${l.class_name ? `${l.class_name}.` : ""}${l.function_name}`) });
    }
  }
  return out;
}

function fit(data: Row[]): Curve {
  const x = data.map((r) => logit(r.p));
  let bias = 0;
  let slope = 0;
  for (let it = 0; it < 5000; it++) {
    let gb = 0;
    let gs = 0;
    data.forEach((r, i) => {
      const err = 1 / (1 + Math.exp(-(bias + slope * x[i]!))) - (r.right ? 1 : 0);
      gb += err;
      gs += err * x[i]!;
    });
    bias -= 0.5 * (gb / data.length + 1e-3 * bias);
    slope -= 0.5 * (gs / data.length + 1e-3 * slope);
  }
  return { bias: Math.round(bias * 1000) / 1000, slope: Math.round(slope * 1000) / 1000 };
}

/** Per instance: a gold file among the files named, a gold function among the functions named; the answer alone, then with the alternatives. */
function coverage(name: string, cases: Case[]): string {
  const key = (l: Location) => `${l.file}:${l.class_name ? `${l.class_name}.` : ""}${l.function_name}`;
  const n = { file: [0, 0], fn: [0, 0], alternatives: 0 };
  for (const c of cases) {
    const d = pick(rankFiles(c.terms, c.dump.gathered, WEIGHTS), c.dump.gathered, WEIGHTS);
    const files = new Set(c.inst.gt.files);
    const entities = new Set(c.inst.gt.entities);
    const file = (ls: Location[]) => ls.some((l) => files.has(l.file));
    const fn = (ls: Location[]) => ls.some((l) => l.function_name && entities.has(key(l)));
    n.alternatives += d.alternatives.length;
    if (file(d.locations)) n.file[0]!++;
    if (file([...d.locations, ...d.alternatives])) n.file[1]!++;
    if (fn(d.locations)) n.fn[0]!++;
    if (fn([...d.locations, ...d.alternatives])) n.fn[1]!++;
  }
  const pc = (k: number) => `${Math.round((100 * k) / cases.length)}%`;
  return `| ${name} | ${cases.length} | ${(n.alternatives / cases.length).toFixed(1)} | ${pc(n.file[0]!)} → ${pc(n.file[1]!)} | ${pc(n.fn[0]!)} → ${pc(n.fn[1]!)} |`;
}

const BANDS = [0, 0.2, 0.4, 0.6, 0.8, 1.0001];
function table(name: string, data: Row[], calibration: Calibration): string[] {
  return (["file", "function"] as const).map((level) => {
    const r = data.filter((x) => x.level === level);
    const conf = r.map((x) => calibrate(x.p, calibration[level]));
    const cells = BANDS.slice(0, -1).map((lo, i) => {
      const inBand = r.filter((_, j) => conf[j]! >= lo && conf[j]! < BANDS[i + 1]!);
      return inBand.length ? `${Math.round((100 * inBand.filter((x) => x.right).length) / inBand.length)}% of ${inBand.length}` : "";
    });
    const brier = (ps: number[]) => (r.reduce((s, x, j) => s + (ps[j]! - (x.right ? 1 : 0)) ** 2, 0) / r.length).toFixed(3);
    const mean = (conf.reduce((s, c) => s + c, 0) / r.length).toFixed(2);
    const right = (r.filter((x) => x.right).length / r.length).toFixed(2);
    return `| ${name} | ${level} | ${r.length} | ${cells.join(" | ")} | ${mean} / ${right} | ${brier(conf)} (raw ${brier(r.map((x) => x.p))}) |`;
  });
}

const dev = loadCases(positionals, a.dump);
const tune = rows(dev.filter((c) => half(c.inst.instance_id) === "tune"));
const fitted: Calibration = { file: fit(tune.filter((r) => r.level === "file")), function: fit(tune.filter((r) => r.level === "function")) };
const reported: [string, Case[]][] = a.report.map((spec) => {
  const [name, files] = spec.split("=") as [string, string];
  const [bench, dump] = files.split(":") as [string, string];
  return [name, loadCases([bench], dump)];
});
const sets: [string, Row[]][] = [["tuning half", tune], ["held-out half", rows(dev.filter((c) => half(c.inst.instance_id) === "held"))], ...reported.map(([name, cases]): [string, Row[]] => [name, rows(cases)])];
const out = (s: string) => void process.stdout.write(`${s}\n`);
out(`fitted: file ${JSON.stringify(fitted.file)}, function ${JSON.stringify(fitted.function)}; committed: file ${JSON.stringify(CALIBRATION.file)}, function ${JSON.stringify(CALIBRATION.function)}`);
out("\n| set | level | n | 0-0.2 | 0.2-0.4 | 0.4-0.6 | 0.6-0.8 | 0.8-1 | mean confidence / share right | Brier |");
out("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |");
for (const [name, data] of sets) for (const line of table(name, data, fitted)) out(line);
out("\n| set | n | alternatives per instance | gold file named | gold function named |");
out("| --- | ---: | ---: | --- | --- |");
for (const [name, cases] of [["dev", dev] as [string, Case[]], ...reported]) out(coverage(name, cases));

if (a.write) {
  const path = new URL("../../src/agent/baseline/calibration.ts", import.meta.url);
  const src = readFileSync(path, "utf8").replace(
    /export const CALIBRATION: Calibration = \{[\s\S]*?\n\};/,
    `export const CALIBRATION: Calibration = {\n  file: { bias: ${fitted.file.bias}, slope: ${fitted.file.slope} },\n  function: { bias: ${fitted.function.bias}, slope: ${fitted.function.slope} },\n};`,
  );
  writeFileSync(path, src);
  out("wrote src/agent/baseline/calibration.ts; tests/agent/baselineFit.test.ts gives src/version.ts's new BASELINE_FIT");
}
