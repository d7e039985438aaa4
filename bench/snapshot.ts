import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { Snapshot } from "../src/client/snapshot.js";
import { ms, quick, report, stats, time } from "./lib.js";

/**
 * The client's own side of sending a checkout, without a service: capturing the work tree
 * (Snapshot.take, a warm scratch index after the first round), its tree id, the upload's tar
 * (`git archive`, drained, not compressed: what goes to a service on loopback) and keeping that
 * tree as the base of later patches (keepTree).
 *
 *   npx tsx bench/snapshot.ts --path CHECKOUT [--quick] [--name snapshot]
 */
const arg = (name: string) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : undefined);
const path = arg("--path");
if (!path) throw new Error("usage: bench/snapshot.ts --path CHECKOUT [--quick] [--name NAME]");
const rounds = quick ? 3 : 10;
const cache = mkdtempSync(join(tmpdir(), "codescout-bench-snapshot-"));

const drain = (r: Readable) =>
  new Promise<number>((resolve, reject) => {
    let n = 0;
    r.on("data", (d: Buffer) => (n += d.length));
    r.once("end", () => resolve(n));
    r.once("error", reject);
  });

const samples = { take_ms: [] as number[], tree_ms: [] as number[], archive_ms: [] as number[], keep_ms: [] as number[] };
let archiveBytes = 0;
try {
  for (let i = 0; i < rounds; i++) {
    const [take, snap] = await time(() => Snapshot.take(path, cache));
    try {
      const [tree, id] = await time(() => snap.treeId());
      const [archive, bytes] = await time(async () => drain(await snap.archive(false)));
      const [keep] = await time(() => snap.keepTree(id));
      // The first round builds the scratch index from the checkout's own: the rest are what each call costs.
      if (i === 0) continue;
      samples.take_ms.push(take);
      samples.tree_ms.push(tree);
      samples.archive_ms.push(archive);
      samples.keep_ms.push(keep);
      archiveBytes = bytes;
    } finally {
      await snap.dispose();
    }
  }
} finally {
  rmSync(cache, { recursive: true, force: true });
}
const summary = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, Object.fromEntries(Object.entries(stats(v)).map(([s, x]) => [s, ms(x)]))]));
report(arg("--name") ?? "snapshot", { path, rounds: rounds - 1, archive_bytes: archiveBytes, ...summary });
