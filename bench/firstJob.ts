import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RepoCache } from "../src/repos/cache.js";
import { diskUsage } from "../src/repos/disk.js";
import { ms, quick, report, stats, time } from "./lib.js";

/**
 * A repository's first job: how long until its tree is ready when the cache clones the whole
 * history first (shallowAfterMs: Infinity, the behaviour before) and when it answers from the
 * commit alone once the clone has run 3 s (the default), and what each brings over the wire
 * (the whole history's pack against the commit's shallow pack). Source: a whole-history bare
 * copy through file://, so the network does not blur the times; over a real network the bytes
 * set the pace.
 *
 *   npx tsx bench/firstJob.ts [--quick] --repo file:///tmp/em/django+django.git [--commit SHA]
 */
const arg = (name: string) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : undefined);
const url = arg("--repo") ?? "file:///tmp/em/django+django.git";
const gitDir = url.replace("file://", "");
const commit = arg("--commit") ?? execFileSync("git", ["--git-dir", gitDir, "rev-parse", "HEAD"], { encoding: "utf8" }).trim();
const rounds = quick ? 1 : 3;


// What each way brings: the mirror's pack after a clone, the commit's pack after a shallow fetch.
const scratch = mkdtempSync(join(tmpdir(), "bench-first-"));
execFileSync("git", ["init", "-q", "--bare", join(scratch, "seed.git")]);
execFileSync("git", ["--git-dir", join(scratch, "seed.git"), "fetch", "-q", "--depth=1", "--no-tags", url, commit]);
const seedBytes = await diskUsage(join(scratch, "seed.git", "objects"));
rmSync(scratch, { recursive: true, force: true });

const samples: Record<"clone_first" | "shallow_first" | "shallow_first_clone_landed", number[]> = { clone_first: [], shallow_first: [], shallow_first_clone_landed: [] };
let mirrorBytes = 0;
for (let i = 0; i < rounds; i++) {
  for (const way of ["clone_first", "shallow_first"] as const) {
    const dir = mkdtempSync(join(tmpdir(), "bench-first-cache-"));
    const cache = new RepoCache({ dir, allowFileUrls: true, ...(way === "clone_first" ? { shallowAfterMs: Infinity } : {}) });
    const t0 = performance.now();
    const [t, tree] = await time(() => cache.prepare({ url, commit }));
    samples[way].push(t);
    // The clone goes on after a shallow first job: the history is there once namedCommits answers.
    await cache.namedCommits(tree, ["#1"]);
    if (way === "shallow_first") samples.shallow_first_clone_landed.push(performance.now() - t0);
    const mirrors = join(dir, "mirrors");
    const mirror = readdirSync(mirrors).find((n) => n.endsWith(".git"));
    if (mirror && existsSync(join(mirrors, mirror))) mirrorBytes = await diskUsage(join(mirrors, mirror, "objects"));
    await tree.release();
    rmSync(cache.trees.dir, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  }
}
const s = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, stats(v)]));
report("firstJob", {
  repository: url,
  commit,
  load_average: (await import("node:os")).loadavg().map((x) => Math.round(x * 100) / 100),
  p50_ms: Object.fromEntries(Object.entries(s).map(([k, v]) => [k, ms(v.p50)])),
  bytes: { whole_history: mirrorBytes, commit_alone: seedBytes },
  target: "a first job's tree ready without waiting for the whole history",
  samples: s,
});
