import { parseArgs } from "node:util";
import { decide } from "../../src/agent/baseline.js";
import { WEIGHTS } from "../../src/agent/baseline/weights.js";
import { scoreInstance } from "../../src/scoring/index.js";
import { functionFeatures, rankContext } from "../../src/agent/baseline/features.js";
import { rank } from "../../src/agent/baseline/model.js";
import { half, loadCases } from "./offline.js";

const roundAll = (o: Record<string, number>) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== 0).map(([k, v]) => [k, Math.round(v * 100) / 100]));

/**
 * Per instance: where the gold files and functions rank under the current weights, what
 * was answered and its scores; for reading failures, not for choosing weights on the held half.
 *
 *   npx tsx bench/baseline/inspect.ts --dump DUMP.jsonl [--half tune|held] [--id ID] BENCH.jsonl...
 */
const { values: a, positionals } = parseArgs({
  options: { dump: { type: "string" }, half: { type: "string" }, id: { type: "string" }, verbose: { type: "boolean", default: false } },
  allowPositionals: true,
});
const cases = loadCases(positionals, a.dump!).filter((c) => (!a.half || half(c.inst.instance_id) === a.half) && (!a.id || c.inst.instance_id === a.id));
const fileRanks: number[] = [];
for (const c of cases) {
  const d = decide(c.terms, c.dump.gathered, WEIGHTS);
  const s = scoreInstance(d.locations, c.inst.gt);
  const ranks = c.inst.gt.files.map((f) => d.files.findIndex((x) => x.item.path === f));
  fileRanks.push(Math.min(...ranks.map((r) => (r < 0 ? 999 : r))));
  process.stdout.write(`\n${c.inst.instance_id} [${half(c.inst.instance_id)}] file ${(100 * s.file.f1).toFixed(0)} fn ${(100 * s.entity.f1).toFixed(0)}  gold file ranks ${ranks.join(",")}\n`);
  process.stdout.write(`  top files: ${d.files.slice(0, 4).map((f) => `${f.item.path} (${f.p.toFixed(2)})`).join("  ")}\n`);
  process.stdout.write(`  answered: ${d.locations.map((l) => `${l.file}:${l.class_name ? `${l.class_name}.` : ""}${l.function_name ?? ""}`).join("  ")}\n`);
  process.stdout.write(`  gold: ${c.inst.gt.entities.join("  ") || c.inst.gt.files.join("  ")}\n`);
  for (const file of new Set(c.inst.gt.entities.map((e) => e.slice(0, e.indexOf(":"))))) {
    const outline = c.dump.gathered.outline.find((f) => f.path === file);
    if (!outline) continue;
    // The gold file's functions as if it had been chosen.
    const ctx = rankContext(c.terms, c.dump.gathered.query, c.dump.gathered.scan, c.dump.gathered.commits);
    const fns = rank(functionFeatures(ctx, [outline]), WEIGHTS.fn, (x) => `${x.def.start}`);
    const name = (x: (typeof fns)[number]) => `${x.item.def.cls ? `${x.item.def.cls}.` : ""}${x.item.def.name}`;
    const gold = fns.map((x, i) => [i, x] as const).filter(([, x]) => c.inst.gt.entities.includes(`${file}:${name(x)}`));
    process.stdout.write(`  in ${file}: gold fn ranks ${gold.map(([i]) => i).join(",")} of ${fns.length}; top ${fns.slice(0, 3).map((x) => `${name(x)} (${x.p.toFixed(2)})`).join("  ")}\n`);
    if (a.verbose) {
      for (const [i, x] of gold.slice(0, 1)) process.stdout.write(`    gold #${i}: ${JSON.stringify(roundAll(x.item.features))}\n`);
      process.stdout.write(`    top: ${JSON.stringify(roundAll(fns[0]!.item.features))}\n`);
    }
  }
  if (a.verbose) {
    const top = d.files[0];
    if (top) process.stdout.write(`  top file features: ${JSON.stringify(roundAll(top.item.features))}\n  evidence: ${JSON.stringify(d.locations[0]?.evidence)}\n`);
    const g = d.files.find((x) => c.inst.gt.files.includes(x.item.path));
    if (g && g !== top) process.stdout.write(`  gold file features: ${JSON.stringify(roundAll(g.item.features))}\n`);
  }
}
const within = (k: number) => fileRanks.filter((r) => r < k).length;
process.stdout.write(`\ngold file within top 1/2/4/8/12: ${within(1)}/${within(2)}/${within(4)}/${within(8)}/${within(12)} of ${fileRanks.length}\n`);
