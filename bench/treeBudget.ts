import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, utimesSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RepoCache } from "../src/repos/cache.js";
import { ms, quick, report, stats, time } from "./lib.js";

/**
 * Memory the trees take on the host's tmpfs when every tree stays in use: four caches (as four
 * workers on one host) share one tree root on /dev/shm with a small budget, and are asked for
 * distinct commits faster than their trees go idle (a client sending one commit after another,
 * the worst case). The budget should hold to within one tree; trees past it go to each cache's
 * disk. Then one cache's directory is removed and, once its trees are idle, a sweep should free them.
 *
 *   npx tsx bench/treeBudget.ts [--quick] [--budget-mb 120] [--repo file:///work/.mirror/pylint-dev+pylint/repo]
 */
const arg = (name: string) => process.argv[process.argv.indexOf(name) + 1];
const url = process.argv.includes("--repo") ? arg("--repo")! : "file:///work/.mirror/pylint-dev+pylint/repo";
const budgetMb = process.argv.includes("--budget-mb") ? Number(arg("--budget-mb")) : 120;
const commits = quick ? 8 : 16;
const shas = execFileSync("git", ["--git-dir", url.replace("file://", ""), "rev-list", `--max-count=${commits * 200}`, "HEAD"], { encoding: "utf8" })
  .trim()
  .split("\n")
  .filter((_, i) => i % 200 === 0)
  .slice(0, commits);

const root = mkdtempSync("/dev/shm/codescout-bench-treeroot-");
const dirs = [0, 1, 2, 3].map(() => mkdtempSync(join(tmpdir(), "bench-treebudget-")));
// The first (unmeasured) job of each cache waits for the whole mirror: trees are measured in the steady state.
const caches = dirs.map((dir) => new RepoCache({ dir, allowFileUrls: true, treeRoot: root, maxTreeBytes: budgetMb * 2 ** 20, treeIdleMs: 3_600_000, shallowAfterMs: Infinity }));
// Blocks, not apparent size: what a tree costs the host's memory.
const du = (path: string) => Number(execFileSync("du", ["-s", "-B1", path], { encoding: "utf8" }).split("\t")[0]);

try {
  // Mirrors first, so the measured preparations are all warm (a new commit of a cached repository).
  for (const cache of caches) await cache.prepare({ url, commit: shas.at(-1)! });
  const warmBytes = du(root);
  const onTmpfs: number[] = [];
  const spilled: number[] = [];
  let rootMax = warmBytes;
  let allTrees = 0;
  for (const [i, sha] of shas.slice(0, -1).entries()) {
    const cache = caches[i % caches.length]!;
    const [t, tree] = await time(() => cache.prepare({ url, commit: sha }));
    (tree.treePath.startsWith(root) ? onTmpfs : spilled).push(t);
    allTrees += du(tree.treePath);
    rootMax = Math.max(rootMax, du(root));
  }
  const treeMb = allTrees / (shas.length - 1) / 2 ** 20;
  rmSync(dirs[0]!, { recursive: true, force: true });
  // An orphan's trees go once idle: an hour on, as far as their times say.
  const hourAgo = new Date(Date.now() - 3_600_000);
  for (const repo of readdirSync(caches[0]!.trees.dir).filter((n) => !n.startsWith("."))) {
    for (const name of readdirSync(join(caches[0]!.trees.dir, repo)).filter((n) => !n.endsWith(".bytes"))) utimesSync(join(caches[0]!.trees.dir, repo, name), hourAgo, hourAgo);
  }
  const before = du(root);
  const swept = await caches[1]!.sweep();
  report("treeBudget", {
    repository: url,
    caches: caches.length,
    commits: shas.length - 1,
    budget_mb: budgetMb,
    tree_mb_mean: ms(treeMb),
    tmpfs_mb_max: ms(rootMax / 2 ** 20),
    tmpfs_mb_if_every_tree_stayed: ms((warmBytes + allTrees) / 2 ** 20),
    trees_on_tmpfs: onTmpfs.length,
    trees_spilled_to_disk: spilled.length,
    prepare_p50_ms: { tmpfs: ms(stats(onTmpfs).p50), spilled: ms(stats(spilled).p50) },
    orphaned_cache: { tmpfs_mb_before_sweep: ms(before / 2 ** 20), removed: swept, tmpfs_mb_after_sweep: ms(du(root) / 2 ** 20) },
    target: "tmpfs_mb_max <= budget_mb + tree_mb_mean",
  });
} finally {
  rmSync(root, { recursive: true, force: true });
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
}
