import { rankFiles } from "../../src/agent/baseline.js";
import { WEIGHTS } from "../../src/agent/baseline/weights.js";
import { half, loadCases } from "./offline.js";

/**
 * Where the gold file lands after the second look, replayed offline on dumped instances: a
 * histogram of its place (0 = first), `notRanked` when the scan saw it but it was not among the
 * outlined files, `notScanned` when the scan never saw it.
 *
 *   npx tsx bench/baseline/goldRank.ts DUMP.jsonl BENCH.jsonl...   (HALF=tune|held for one half; V=1 prints each miss)
 */
const [dump, ...benches] = process.argv.slice(2);
if (!dump || benches.length === 0) throw new Error("usage: goldRank.ts DUMP.jsonl BENCH.jsonl...");
const hist: Record<string, number> = {};
for (const c of loadCases(benches, dump)) {
  if (process.env.HALF && half(c.inst.instance_id) !== process.env.HALF) continue;
  const gold = new Set(c.inst.gt.files);
  const ranked = rankFiles(c.terms, c.dump.gathered, WEIGHTS).files;
  const place = ranked.findIndex((f) => gold.has(f.item.path));
  const key = place >= 0 ? String(place) : c.dump.gathered.scan.paths.some((p) => gold.has(p)) ? "notRanked" : "notScanned";
  hist[key] = (hist[key] ?? 0) + 1;
  if (process.env.V && place !== 0) {
    const top = ranked.slice(0, 3).map((f) => `${f.item.path}:${f.p.toFixed(2)}`);
    process.stdout.write(`${c.inst.instance_id} ${key} ${[...gold].join(",")} | ${top.join(" ")}\n`);
  }
}
process.stdout.write(`${JSON.stringify(hist)}\n`);
