import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { pick, rankFiles } from "../../src/agent/baseline.js";
import { CALIBRATION, UNCALIBRATED, calibrate, type Calibration, type Curve } from "../../src/agent/baseline/calibration.js";
import { WEIGHTS } from "../../src/agent/baseline/weights.js";
import { half, loadCases, type Case } from "./offline.js";

/**
 * Fits how sure the baseline says it is (src/agent/baseline/calibration.ts) on the tuning half
 * of the dev set, with the committed weights, and shows how well it holds on the held-out half
 * and on any other set: of the locations given a confidence in each band, how many were right.
 *
 *   npx tsx bench/baseline/calibrate.ts --dump DUMP.jsonl [--write] [--report NAME=BENCH.jsonl:DUMP.jsonl]... BENCH.jsonl...
 *
 * A file location is right when the file is a gold file; a function location when the
 * function (with its class) is a gold function. The curve is a logistic regression of that on
 * the ranker's log-odds, plain gradient descent from zero (deterministic).
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

/** Each answered file once, and each answered function, with the ranker's raw probability. */
function rows(cases: Case[]): Row[] {
  const out: Row[] = [];
  for (const c of cases) {
    const ranked = rankFiles(c.terms, c.dump.gathered, WEIGHTS);
    const d = pick(ranked, c.dump.gathered, WEIGHTS, UNCALIBRATED);
    const files = new Set(c.inst.gt.files);
    const entities = new Set(c.inst.gt.entities);
    const seen = new Set<string>();
    for (const l of d.locations) {
      if (!seen.has(l.file)) {
        seen.add(l.file);
        out.push({ level: "file", p: d.files.find((f) => f.item.path === l.file)!.p, right: files.has(l.file) });
      }
      if (!l.function_name) continue;
      const fn = d.functions.find((f) => f.item.def.file === l.file && f.item.def.name === l.function_name && (f.item.def.cls || undefined) === l.class_name)!;
      out.push({ level: "function", p: fn.p, right: entities.has(`${l.file}:${l.class_name ? `${l.class_name}.` : ""}${l.function_name}`) });
    }
  }
  return out;
}

function fit(data: Row[]): Curve {
  const x = data.map((r) => Math.log(Math.min(1 - 1e-4, Math.max(1e-4, r.p)) / (1 - Math.min(1 - 1e-4, Math.max(1e-4, r.p)))));
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
const sets: [string, Row[]][] = [
  ["tuning half", tune],
  ["held-out half", rows(dev.filter((c) => half(c.inst.instance_id) === "held"))],
  ...a.report.map((spec): [string, Row[]] => {
    const [name, files] = spec.split("=") as [string, string];
    const [bench, dump] = files.split(":") as [string, string];
    return [name, rows(loadCases([bench], dump))];
  }),
];
const out = (s: string) => void process.stdout.write(`${s}\n`);
out(`fitted: file ${JSON.stringify(fitted.file)}, function ${JSON.stringify(fitted.function)}; committed: file ${JSON.stringify(CALIBRATION.file)}, function ${JSON.stringify(CALIBRATION.function)}`);
out("\n| set | level | n | 0-0.2 | 0.2-0.4 | 0.4-0.6 | 0.6-0.8 | 0.8-1 | mean confidence / share right | Brier |");
out("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |");
for (const [name, data] of sets) for (const line of table(name, data, fitted)) out(line);

if (a.write) {
  const path = new URL("../../src/agent/baseline/calibration.ts", import.meta.url);
  const { readFileSync } = await import("node:fs");
  const src = readFileSync(path, "utf8").replace(
    /export const CALIBRATION: Calibration = \{[\s\S]*?\n\};/,
    `export const CALIBRATION: Calibration = {\n  file: { bias: ${fitted.file.bias}, slope: ${fitted.file.slope} },\n  function: { bias: ${fitted.function.bias}, slope: ${fitted.function.slope} },\n};`,
  );
  writeFileSync(path, src);
  out("wrote src/agent/baseline/calibration.ts");
}
