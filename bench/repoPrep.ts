import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RepoCache } from "../src/repos/cache.js";
import { ms, quick, report, stats, time } from "./lib.js";

/**
 * Repository preparation: our cache cold (first job for a repository: with the default
 * settings its commit alone once the clone has run 3 s), warm (mirror cached,
 * a new commit) and hot (same commit again), against what the reference pipeline does per
 * job: `git clone` + `git checkout`. Source: a local full-history copy of pylint (a SWE-bench
 * repository, ~70 MB of history) through file://, so the network does not blur the result.
 *
 *   npx tsx bench/repoPrep.ts [--quick] [--repo file:///work/.mirror/pylint-dev+pylint/repo]
 */
const arg = (name: string) => process.argv[process.argv.indexOf(name) + 1];
const url = process.argv.includes("--repo") ? arg("--repo")! : "file:///work/.mirror/pylint-dev+pylint/repo";
// Commits a few hundred apart on the main line, as jobs for different issues would ask for.
// The source is made by hand (BENCHMARKS.md, "Sources"): said plainly, not as a clone's error.
if (url.startsWith("file://") && !existsSync(url.slice("file://".length))) {
  process.stderr.write(`${process.argv[1]}: no repository at ${url}: make it as BENCHMARKS.md's "Sources" says, or give --repo\n`);
  process.exit(2);
}
const shas = execFileSync("git", ["--git-dir", url.replace("file://", ""), "rev-list", "--max-count=4000", "HEAD"], { encoding: "utf8" }).trim().split("\n").filter((_, i) => i % 500 === 0);
const rounds = quick ? 3 : 7;
// The default puts trees on the host's tmpfs (RepoCache's defaultTreeDir); --tree-dir DIR
// measures another place, e.g. a directory on disk (the default before trees moved to tmpfs).
const treeDir = process.argv.includes("--tree-dir") ? arg("--tree-dir") : undefined;
const cold: number[] = [];
const warm: number[] = [];
const hot: number[] = [];
const clone: number[] = [];
let usedTreeDir = "";

for (let i = 0; i < rounds; i++) {
  const dir = mkdtempSync(join(tmpdir(), "bench-repo-"));
  const cache = new RepoCache({ dir, allowFileUrls: true, ...(treeDir ? { treeDir: join(treeDir, String(i)) } : {}) });
  const a = shas[i % shas.length]!;
  const b = shas[(i + 1) % shas.length]!;
  const [coldMs, first] = await time(() => cache.prepare({ url, commit: a }));
  cold.push(coldMs);
  // A first job may be answered from its commit alone while the clone goes on
  // (REPO_SHALLOW_FIRST_AFTER_S): warm is measured on the mirror once it is there.
  await cache.namedCommits(first, ["#1"]);
  warm.push((await time(() => cache.prepare({ url, commit: b })))[0]);
  hot.push((await time(() => cache.prepare({ url, commit: a })))[0]);
  const work = join(dir, "clone");
  const [t] = await time(async () => {
    execFileSync("git", ["clone", "-q", url, work]);
    execFileSync("git", ["-C", work, "checkout", "-q", b]);
  });
  clone.push(t);
  rmSync(dir, { recursive: true, force: true });
  rmSync(cache.trees.dir, { recursive: true, force: true });
  usedTreeDir = cache.trees.dir;
}
const s = { cold: stats(cold), warm: stats(warm), hot: stats(hot), clone_checkout: stats(clone) };
report(treeDir ? "repoPrep-treedir" : "repoPrep", {
  repository: url,
  tree_dir: treeDir ? `${treeDir} (as given)` : `${usedTreeDir.replace(/[^/]+$/, "")}… (the default)`,
  load_average: (await import("node:os")).loadavg().map((x) => Math.round(x * 100) / 100),
  p50_ms: { cold: ms(s.cold.p50), warm: ms(s.warm.p50), hot: ms(s.hot.p50), clone_checkout: ms(s.clone_checkout.p50) },
  speedup_vs_clone: { warm: ms(s.clone_checkout.p50 / s.warm.p50), hot: ms(s.clone_checkout.p50 / s.hot.p50) },
  target: "warm >= 20x faster than clone + checkout",
  samples: s,
});
