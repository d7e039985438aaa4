import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RepoCache } from "../src/repos/cache.js";
import { TreeStore } from "../src/repos/trees.js";
import { ms, quick, report, stats, time } from "./lib.js";

/**
 * Successive commits of one repository, as an eval (or a team's agents) asks for them: each new
 * tree derived from the last one (src/repos/treeWrite.ts) against the same tree written whole
 * (`git archive | tar -x`, what the cache did before), each derived tree checked file for file
 * against the whole one. Commits: the first-parent line, one a week (SWE-bench Verified has
 * ~230 django instances over ~4.5 years). Then what the tree store's scan costs with many trees
 * under the shared root (each new tree scans twice: to place it and to keep the budget).
 *
 *   npx tsx bench/treeDerive.ts [--quick] [--repo /work/evalmirrors-h/django+django.git] [--since 2019-01-01] [--name treeDerive]
 */
const arg = (name: string) => process.argv[process.argv.indexOf(name) + 1];
const mirror = process.argv.includes("--repo") ? arg("--repo")! : "/work/evalmirrors-h/django+django.git";
const since = process.argv.includes("--since") ? arg("--since")! : "2019-01-01";
const count = quick ? 10 : 30;
const git = (...args: string[]) => execFileSync("git", ["--git-dir", mirror, ...args], { encoding: "utf8", maxBuffer: 1 << 28 });

const shas: string[] = [];
let last = 0;
for (const entry of git("log", "--first-parent", "--reverse", `--since=${since}`, "--format=%H %ct", "HEAD").trim().split("\n")) {
  const [sha, t] = entry.split(" ");
  if (Number(t) - last < 7 * 86_400) continue;
  shas.push(sha!);
  last = Number(t);
  if (shas.length === count) break;
}

const listing = (root: string) => execFileSync("sh", ["-c", 'cd "$1" && find . -mindepth 1 -printf "%p %y %m %s %l\\n" | sort', "sh", root], { maxBuffer: 1 << 28 }).toString();
const sameFiles = (a: string, b: string) => {
  if (listing(a) !== listing(b)) return false;
  try {
    execFileSync("diff", ["-r", "--no-dereference", "-q", a, b]);
    return true;
  } catch {
    return false;
  }
};

const dir = mkdtempSync(join(tmpdir(), "bench-derive-"));
const root = mkdtempSync("/dev/shm/codescout-bench-derive-");
// The steady state is measured: the first (unmeasured) job waits for the whole mirror rather than being answered from its commit alone.
const cache = new RepoCache({ dir, allowFileUrls: true, treeRoot: root, shallowAfterMs: Infinity });
const derived: number[] = [];
const whole: number[] = [];
const changed: number[] = [];
let different = 0;
try {
  await cache.prepare({ url: `file://${mirror}`, commit: shas[0]! }).then((t) => t.release());
  for (const [i, sha] of shas.entries()) {
    if (i === 0) continue;
    const [t, tree] = await time(() => cache.prepare({ url: `file://${mirror}`, commit: sha }));
    derived.push(t);
    changed.push(git("diff-tree", "-r", "--name-only", "--no-renames", shas[i - 1]!, sha).split("\n").filter(Boolean).length);
    const out = mkdtempSync("/dev/shm/bench-derive-whole-");
    const [w] = await time(async () => execFileSync("sh", ["-c", 'git --git-dir "$1" archive --format=tar "$2" | tar -x --no-same-owner --no-same-permissions -C "$3"', "sh", mirror, sha, out]));
    whole.push(w);
    if (!sameFiles(tree.treePath, out)) different++;
    rmSync(out, { recursive: true, force: true });
    await tree.release();
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
  rmSync(root, { recursive: true, force: true });
}

// The scan: N trees of other caches under one root, each with its size file.
const scanMs: Record<string, number> = {};
for (const n of quick ? [200] : [200, 1000]) {
  const scanRoot = mkdtempSync("/dev/shm/codescout-bench-scan-");
  const dirs: string[] = [];
  try {
    for (let c = 0; c < 5; c++) {
      const cacheDir = mkdtempSync(join(tmpdir(), "bench-scan-"));
      dirs.push(cacheDir);
      const own = new TreeStore({ cacheDir, treeRoot: scanRoot }).dir;
      mkdirSync(own, { recursive: true });
      writeFileSync(join(own, ".owner.json"), JSON.stringify({ cacheDir, idleMs: 3_600_000 }));
      for (let i = 0; i < n / 5; i++) {
        const tree = join(own, `repo${i % 5}`, String(i).padStart(40, "0"));
        mkdirSync(tree, { recursive: true });
        writeFileSync(`${tree}.bytes`, "4096");
      }
    }
    const probeDir = mkdtempSync(join(tmpdir(), "bench-scan-"));
    dirs.push(probeDir);
    const store = new TreeStore({ cacheDir: probeDir, treeRoot: scanRoot });
    const samples: number[] = [];
    for (let i = 0; i < 7; i++) samples.push((await time(() => store.place("repo/new")))[0]);
    scanMs[`${n}_trees_p50`] = ms(stats(samples).p50);
  } finally {
    rmSync(scanRoot, { recursive: true, force: true });
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
}

const d = stats(derived);
const w = stats(whole);
report(process.argv.includes("--name") ? arg("--name")! : "treeDerive", {
  repository: mirror,
  commits: `${shas.length}, first-parent, one a week since ${since}`,
  changed_files_p50: stats(changed).p50,
  p50_ms: { derived_prepare: ms(d.p50), whole_archive_tar: ms(w.p50) },
  trees_different_from_whole: different,
  store_scan_ms: scanMs,
  target: "derived prepare < whole archive | tar alone; 0 trees different",
  samples: { derived: d, whole: w },
});
