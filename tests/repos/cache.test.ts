import { describe, it, expect, afterEach } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, readFileSync, readdirSync, existsSync, renameSync, rmSync, utimesSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { createHash, randomBytes } from "node:crypto";
import { RepoCache, RepoError } from "../../src/repos/cache.js";
import { defaultTreeDir } from "../../src/repos/trees.js";
import { makeGitFixture, type GitFixture } from "../helpers/gitFixture.js";
import { tarOf } from "../helpers/tarball.js";
import { DirUploadStore } from "../../src/uploads/store.js";
import { readArchive } from "../../src/uploads/archive.js";
import { Readable } from "node:stream";
import { removeCacheDir } from "../helpers/tempDirs.js";

const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((f) => f()));

function setup(): { fx: GitFixture; cache: RepoCache; dir: string } {
  const fx = makeGitFixture();
  const dir = mkdtempSync(join(tmpdir(), "codescout-cache-"));
  cleanups.push(() => fx.cleanup(), () => removeCacheDir(dir));
  return { fx, cache: new RepoCache({ dir, allowFileUrls: true }), dir };
}

/** A tree root of the test's own, so that other test files' caches do not share its budget. */
function privateRoot(): string {
  const root = mkdtempSync(join(tmpdir(), "codescout-treeroot-"));
  cleanups.push(() => rmSync(root, { recursive: true, force: true }));
  return root;
}

function cacheDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "codescout-cache-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

describe("RepoCache", () => {
  it("mirrors once, materializes a tree per commit, and serves it hot afterwards", async () => {
    const { fx, cache } = setup();
    const first = await cache.prepare({ url: fx.url, commit: fx.commits[0]! });
    expect(first.cache).toBe("cold");
    expect(readFileSync(join(first.treePath, "pkg/util.py"), "utf8")).toContain("def helper");
    expect(existsSync(join(first.treePath, ".git"))).toBe(false);

    const again = await cache.prepare({ url: fx.url, commit: fx.commits[0]! });
    expect(again.cache).toBe("hot");
    expect(again.treePath).toBe(first.treePath);

    // A commit made after the mirror was created is fetched into the same mirror.
    const second = fx.commit({ "pkg/util.py": "def helper():\n    return 43\n" });
    const next = await cache.prepare({ url: fx.url, commit: second });
    expect(next.sha).toBe(second);
    expect(readFileSync(join(next.treePath, "pkg/util.py"), "utf8")).toContain("43");
    expect(readFileSync(join(first.treePath, "pkg/util.py"), "utf8")).toContain("42");
  });

  it("writes the tree as committed, whatever its .gitattributes tells an archive: export-ignore paths kept, export-subst not expanded", async () => {
    const { fx, cache } = setup();
    const sha = fx.commit({ ".gitattributes": "/bin export-ignore\n/tests export-ignore\npkg/version.py export-subst\n", "bin/console.py": "def run_console():\n    pass\n", "tests/test_util.py": "def test_helper():\n    pass\n", "pkg/version.py": "REF = '$Format:%H$'\n" });
    const tree = await cache.prepare({ url: fx.url, commit: sha });
    expect(readFileSync(join(tree.treePath, "bin/console.py"), "utf8")).toContain("def run_console");
    expect(existsSync(join(tree.treePath, "tests/test_util.py"))).toBe(true);
    expect(readFileSync(join(tree.treePath, "pkg/version.py"), "utf8")).toBe("REF = '$Format:%H$'\n");
    // A tree derived from it (another commit beside it) is as committed too.
    const next = fx.commit({ "bin/console.py": "def run_console():\n    return 1\n" });
    const derived = await cache.prepare({ url: fx.url, commit: next });
    expect(readFileSync(join(derived.treePath, "bin/console.py"), "utf8")).toContain("return 1");
    expect(readFileSync(join(derived.treePath, "pkg/version.py"), "utf8")).toBe("REF = '$Format:%H$'\n");
  });

  it("sweeps half-made trees a crashed worker left, but not fresh ones", async () => {
    const { fx, dir } = setup();
    const cache = new RepoCache({ dir, allowFileUrls: true, treeRoot: privateRoot() });
    const tree = await cache.prepare({ url: fx.url, commit: fx.commits[0]! });
    const parent = join(tree.treePath, "..");
    const old = join(parent, `${"a".repeat(40)}.tmp-dead`);
    const fresh = join(parent, `${"b".repeat(40)}.tmp-live`);
    mkdirSync(old);
    mkdirSync(fresh);
    const past = new Date(Date.now() - 3600_000);
    utimesSync(old, past, past);
    expect(await cache.sweep()).toBe(1);
    expect(existsSync(old)).toBe(false);
    expect(existsSync(fresh)).toBe(true);
    expect(existsSync(tree.treePath)).toBe(true);
  });

  it("evicts the least recently used idle trees beyond the limit, never a recently used one", async () => {
    const { fx, dir } = setup();
    const second = fx.commit({ "pkg/util.py": "def helper():\n    return 43\n" });
    // A root of its own: under the host's shared one, a one-tree limit would take other test files' idle trees too.
    const treeRoot = privateRoot();
    const busy = new RepoCache({ dir, allowFileUrls: true, treeRoot, maxTrees: 1, treeIdleMs: 3_600_000 });
    const a = await busy.prepare({ url: fx.url, commit: fx.commits[0]! });
    await busy.prepare({ url: fx.url, commit: second });
    expect(existsSync(a.treePath)).toBe(true); // used within the idle time: kept
    const idle = new RepoCache({ dir, allowFileUrls: true, treeRoot, maxTrees: 1, treeIdleMs: 0 });
    const past = new Date(Date.now() - 60_000);
    utimesSync(a.treePath, past, past);
    expect(await idle.evict()).toBe(1);
    expect(existsSync(a.treePath)).toBe(false);
    expect((await idle.prepare({ url: fx.url, commit: second })).cache).toBe("hot");
  });

  it("keeps trees on the host's tmpfs by default (one directory per cache), within a byte budget", async () => {
    const { fx, dir, cache } = setup();
    expect(cache.trees.dir.startsWith(`/dev/shm/codescout-trees-u${process.getuid!()}/`)).toBe(true);
    expect(cache.trees.dir).toBe(defaultTreeDir(dir));
    expect(defaultTreeDir(join(dir, "other"))).not.toBe(cache.trees.dir);
    // A directory that is not a tmpfs with room: trees stay beside the mirrors.
    expect(defaultTreeDir(dir, dir)).toBe(join(dir, "trees"));
    expect(cache.trees.maxBytes).toBeGreaterThan(0);

    const second = fx.commit({ "pkg/big.py": `DATA = "${"x".repeat(20_000)}"\n` });
    const small = await cache.prepare({ url: fx.url, commit: fx.commits[0]! });
    const budget = new RepoCache({ dir, allowFileUrls: true, maxTreeBytes: 1_000, treeIdleMs: 30_000 });
    await small.release();
    const big = await budget.prepare({ url: fx.url, commit: second });
    // Both are over a 1 kB budget: the idle one goes; the one just made is in use and stays.
    expect(existsSync(small.treePath)).toBe(false);
    expect(existsSync(big.treePath)).toBe(true);
  });

  it("shares one budget among a host's caches, never takes a tree in use, and spills to disk when the budget is all in use", async () => {
    const fx = makeGitFixture();
    cleanups.push(() => fx.cleanup());
    const second = fx.commit({ "pkg/util.py": "def helper():\n    return 43\n" });
    const root = privateRoot();
    const [dirA, dirB, dirC] = [cacheDir(), cacheDir(), cacheDir()];
    // Room for one of these trees (a 10 kB archive, 28 kB in blocks) and not for two.
    const budget = 16_000;
    const a = new RepoCache({ dir: dirA, allowFileUrls: true, treeRoot: root, maxTreeBytes: budget, treeIdleMs: 30_000 });
    const b = new RepoCache({ dir: dirB, allowFileUrls: true, treeRoot: root, maxTreeBytes: budget, treeIdleMs: 30_000 });
    const c = new RepoCache({ dir: dirC, allowFileUrls: true, treeRoot: root, maxTreeBytes: budget, treeIdleMs: 3_600_000 });

    const ta = await a.prepare({ url: fx.url, commit: fx.commits[0]! });
    expect(ta.treePath.startsWith(`${root}/`)).toBe(true);
    const past = new Date(Date.now() - 60_000);
    await ta.release();
    // Another cache's tree, idle (its job released it), goes to make room under the one budget.
    const tb = await b.prepare({ url: fx.url, commit: second });
    expect(existsSync(ta.treePath)).toBe(false);
    expect(tb.treePath.startsWith(`${root}/`)).toBe(true);

    // The budget is all b's tree, still in use: c's tree goes to c's own disk, b's stays.
    const tc = await c.prepare({ url: fx.url, commit: fx.commits[0]! });
    expect(tc.treePath.startsWith(join(dirC, "trees", "/"))).toBe(true);
    expect(readFileSync(join(tc.treePath, "pkg/util.py"), "utf8")).toContain("42");
    expect(existsSync(tb.treePath)).toBe(true);
    const again = await c.prepare({ url: fx.url, commit: fx.commits[0]! });
    expect(again).toMatchObject({ cache: "hot", treePath: tc.treePath });

    // A cache whose directory is gone leaves trees nobody can use: the next sweep takes them,
    // and the trees a cache kept beside the root before there was one.
    rmSync(dirB, { recursive: true, force: true });
    expect(await c.sweep()).toBe(0); // ... once they are idle: b's tree is still held
    await tb.release();
    const legacy = join(root, "..", `codescout-trees-${basename(dirname(dirname(ta.treePath)))}`);
    mkdirSync(join(legacy, "repo", "sha"), { recursive: true });
    cleanups.push(() => rmSync(legacy, { recursive: true, force: true }));
    expect(await c.sweep()).toBeGreaterThanOrEqual(1);
    expect(existsSync(dirname(dirname(tb.treePath)))).toBe(false);
    expect(existsSync(tc.treePath)).toBe(true);
    // Another cache's old directory goes once every tree in it is idle.
    const other = join(root, "..", `codescout-trees-${"0".repeat(12)}`);
    mkdirSync(join(other, "repo", "sha"), { recursive: true });
    cleanups.push(() => rmSync(other, { recursive: true, force: true }));
    expect(await a.sweep()).toBeGreaterThanOrEqual(1);
    expect(existsSync(legacy)).toBe(false);
    expect(existsSync(other)).toBe(true);
    utimesSync(join(other, "repo", "sha"), past, past);
    expect(await a.sweep()).toBeGreaterThanOrEqual(1);
    expect(existsSync(other)).toBe(false);
  });

  it("makes room with a tree once every job holding it released it, and with one whose job died once the idle time passed", async () => {
    const fx = makeGitFixture();
    cleanups.push(() => fx.cleanup());
    const second = fx.commit({ "pkg/util.py": "def helper():\n    return 43\n" });
    const third = fx.commit({ "pkg/util.py": "def helper():\n    return 44\n" });
    const [dir, treeDir] = [cacheDir(), privateRoot()];
    // Room for one tree, and an idle time no test waits for: only a release frees a tree early.
    const cache = new RepoCache({ dir, allowFileUrls: true, treeDir, maxTreeBytes: 16_000, treeIdleMs: 3_600_000 });
    const one = await cache.prepare({ url: fx.url, commit: fx.commits[0]! });
    const two = await cache.prepare({ url: fx.url, commit: fx.commits[0]! });
    expect(two.treePath).toBe(one.treePath);

    // One of its two jobs is done: the tree is still in use, so the next one spills to disk.
    await one.release();
    const spilled = await cache.prepare({ url: fx.url, commit: second });
    expect(spilled.treePath.startsWith(`${join(dir, "trees")}/`)).toBe(true);
    expect(existsSync(one.treePath)).toBe(true);
    await spilled.release();

    // Both are done: the tree makes room, and the next one is written in the fast place.
    await two.release();
    const fast = await cache.prepare({ url: fx.url, commit: third });
    expect(fast.treePath.startsWith(`${treeDir}/`)).toBe(true);
    expect(existsSync(one.treePath)).toBe(false);
    expect(readFileSync(join(fast.treePath, "pkg/util.py"), "utf8")).toContain("44");

    // A job that died holds its tree until the idle time has passed since its hold and last use.
    const holds = join(treeDir, ".holds", basename(dirname(fast.treePath)));
    const [hold] = readdirSync(holds);
    expect(hold!.startsWith(`${basename(fast.treePath)}.`)).toBe(true);
    const past = new Date(Date.now() - 3_700_000);
    utimesSync(fast.treePath, past, past);
    const blocked = await cache.prepare({ url: fx.url, commit: fx.commits[0]! });
    expect(blocked.treePath.startsWith(`${join(dir, "trees")}/`)).toBe(true);
    expect(existsSync(fast.treePath)).toBe(true);
    await blocked.release();
    utimesSync(join(holds, hold!), past, past);
    await cache.sweep();
    expect(existsSync(fast.treePath)).toBe(false);
    expect(readdirSync(holds)).toEqual([]);
  });

  it("with a tree directory the operator chose, keeps its budget there and spills past it in the same way", async () => {
    const fx = makeGitFixture();
    cleanups.push(() => fx.cleanup());
    const second = fx.commit({ "pkg/util.py": "def helper():\n    return 43\n" });
    const [dir, treeDir] = [cacheDir(), privateRoot()];
    const cache = new RepoCache({ dir, allowFileUrls: true, treeDir, maxTreeBytes: 16_000, treeIdleMs: 3_600_000 });
    const first = await cache.prepare({ url: fx.url, commit: fx.commits[0]! });
    const next = await cache.prepare({ url: fx.url, commit: second });
    expect(first.treePath.startsWith(`${treeDir}/`)).toBe(true);
    expect(next.treePath.startsWith(`${join(dir, "trees")}/`)).toBe(true);
    expect(existsSync(first.treePath)).toBe(true);
  });

  it("writes a tree larger than the whole memory budget on the cache's disk instead", async () => {
    const fx = makeGitFixture({ "pkg/blob.txt": randomBytes(3 << 20).toString("base64") });
    cleanups.push(() => fx.cleanup());
    const [dir, treeRoot] = [cacheDir(), privateRoot()];
    const cache = new RepoCache({ dir, allowFileUrls: true, treeRoot, maxTreeBytes: 1 << 20 });
    const tree = await cache.prepare({ url: fx.url, commit: fx.commits[0]! });
    expect(tree.treePath.startsWith(`${join(dir, "trees")}/`)).toBe(true);
    expect(readFileSync(join(tree.treePath, "pkg/blob.txt"), "utf8")).toHaveLength(4 << 20);
    // Nothing half-written is left in the memory budget's place.
    const repos = readdirSync(cache.trees.dir).filter((n) => !n.startsWith("."));
    expect(repos.flatMap((r) => readdirSync(join(cache.trees.dir, r)))).toEqual([]);

    // While it is in use, the memory budget counts the trees in memory only: a small tree there,
    // its job done, is not removed to make room the big one on disk does not take.
    const [one, two] = [makeGitFixture(), makeGitFixture()];
    cleanups.push(() => one.cleanup(), () => two.cleanup());
    const small = await cache.prepare({ url: one.url, commit: one.commits[0]! });
    expect(small.treePath.startsWith(`${cache.trees.dir}/`)).toBe(true);
    await small.release();
    const next = await cache.prepare({ url: two.url, commit: two.commits[0]! });
    expect(next.treePath.startsWith(`${cache.trees.dir}/`)).toBe(true);
    expect(existsSync(small.treePath)).toBe(true);
    await Promise.all([tree.release(), next.release()]);
  });

  it("removes the least recently used idle mirrors beyond the mirror budget, never one in use", async () => {
    const [fa, fb] = [makeGitFixture(), makeGitFixture()];
    cleanups.push(() => fa.cleanup(), () => fb.cleanup());
    const dir = cacheDir();
    const cache = new RepoCache({ dir, allowFileUrls: true, treeRoot: privateRoot(), maxMirrorBytes: 1, treeIdleMs: 30_000 });
    const mirrors = () => readdirSync(join(dir, "mirrors")).filter((n) => n.endsWith(".git"));
    const first = await cache.prepare({ url: fa.url, commit: fa.commits[0]! });
    const [mirrorA] = mirrors();
    const past = new Date(Date.now() - 60_000);
    utimesSync(join(dir, "mirrors", mirrorA!), past, past);
    // Over a 1-byte budget: the idle mirror goes, the one just cloned is in use and stays.
    await cache.prepare({ url: fb.url, commit: fb.commits[0]! });
    expect(mirrors()).toHaveLength(1);
    expect(mirrors()).not.toContain(mirrorA);
    // Its next job clones again, so the history the job reads is there as it was, and the
    // tree already made is used as it is.
    const again = await cache.prepare({ url: fa.url, commit: fa.commits[0]! });
    expect(again).toMatchObject({ cache: "cold", treePath: first.treePath });
    expect((await cache.namedCommits(again, [fa.commits[0]!])).map((c) => c.sha)).toEqual([fa.commits[0]]);
    const second = fa.commit({ "pkg/util.py": "def helper():\n    return 43\n" });
    expect((await cache.prepare({ url: fa.url, commit: second })).cache).toBe("cold");
    expect(mirrors()).toHaveLength(2);
  });

  it("stops a clone that outgrows the mirror budget or leaves the disk too little room, and names why", async () => {
    // Random text does not compress: ~24 MB of pack for git to send.
    const fx = makeGitFixture({ "blob.txt": randomBytes(18 << 20).toString("base64") });
    cleanups.push(() => fx.cleanup());
    const dir = cacheDir();
    const cache = new RepoCache({ dir, allowFileUrls: true, treeRoot: privateRoot(), maxMirrorBytes: 1 << 20, mirrorWatchEveryMs: 10 });
    // The clone is stopped and no mirror kept; the job is answered from its commit alone (not a mirror: the budget is not its).
    const tree = await cache.prepare({ url: fx.url, commit: fx.commits[0]! });
    expect(statSync(join(tree.treePath, "blob.txt")).size).toBeGreaterThan(18 << 20);
    // The clone, stopped, removes what it had written once git has gone: on a loaded machine, after the job's answer.
    await expect.poll(() => readdirSync(join(dir, "mirrors")), { timeout: 15_000, interval: 100 }).toEqual([]);
    // What only a mirror could resolve is refused, naming why.
    await expect(cache.prepare({ url: fx.url, commit: "main~0" })).rejects.toMatchObject({
      reason: "fetch_failed",
      message: expect.stringContaining("larger than the mirror budget"),
    });
    expect(readdirSync(join(dir, "mirrors"))).toEqual([]);
    // A floor no disk here has room for: the same clone stops for the disk's sake, and so does the fetch of its commit alone.
    const floor = new RepoCache({ dir, allowFileUrls: true, treeRoot: privateRoot(), mirrorMinFreeBytes: 2 ** 60, mirrorWatchEveryMs: 10 });
    await expect(floor.prepare({ url: fx.url, commit: fx.commits[0]! })).rejects.toMatchObject({
      reason: "fetch_failed",
      message: expect.stringMatching(/the disk has less than \d+ MB free/),
    });
    expect(readdirSync(join(dir, "mirrors"))).toEqual([]);
    // The default floor, 2 GiB (stopping at half of it), as the CLIs get it: 900 MB free is short.
    const byDefault = new RepoCache({ dir, allowFileUrls: true, treeRoot: privateRoot(), mirrorFreeBytes: () => 900 * 2 ** 20, mirrorWatchEveryMs: 10 });
    await expect(byDefault.prepare({ url: fx.url, commit: fx.commits[0]! })).rejects.toMatchObject({
      reason: "fetch_failed",
      message: expect.stringContaining("the disk has less than 1024 MB free"),
    });
  });

  it("keeps the disk's floor under trees spilled there: an idle one goes while the disk is short, and one that would take it below half the floor is refused, naming it", async () => {
    const fx = makeGitFixture({ "pkg/blob.txt": randomBytes(3 << 20).toString("base64") });
    cleanups.push(() => fx.cleanup());
    const second = fx.commit({ "pkg/util.py": "def helper():\n    return 43\n" });
    const [dir, treeRoot, uploadsDir] = [cacheDir(), privateRoot(), cacheDir()];
    const floor = 100 * 2 ** 20;
    // The mirrors' disk has room; the spilled trees' is what the test says.
    let spillFree = 2 ** 50;
    const store = new DirUploadStore(uploadsDir, 3600);
    const limits = { maxBytes: 8 << 20, maxFiles: 100, maxPathBytes: 256, maxRatio: 100 };
    const cache = new RepoCache({
      dir, allowFileUrls: true, treeRoot, maxTreeBytes: 1 << 20, treeIdleMs: 3_600_000, mirrorMinFreeBytes: floor,
      mirrorFreeBytes: (d) => (d.startsWith(join(dir, "trees")) ? spillFree : 2 ** 50),
      uploads: { store, limits },
    });
    const first = await cache.prepare({ url: fx.url, commit: fx.commits[0]! });
    expect(first.treePath.startsWith(`${join(dir, "trees")}/`)).toBe(true);

    // 1 MiB above half the floor: the next tree (~4 MB) would take the disk below it.
    spillFree = floor / 2 + (1 << 20);
    await expect(cache.prepare({ url: fx.url, commit: second })).rejects.toMatchObject({
      reason: "materialize_failed",
      message: expect.stringContaining("below half its 100 MiB floor (REPO_MIRROR_MIN_FREE_MB)"),
    });
    // An upload's size is known before it is written: refused the same way, nothing written.
    const archive = await tarOf([{ name: "big.txt", body: randomBytes(3 << 20).toString("base64") }]);
    const staged = await store.stage();
    await staged.write(archive);
    const upload = (await staged.commit(await readArchive(Readable.from([archive]), limits))).info.upload_id;
    await expect(cache.prepareUpload(upload)).rejects.toMatchObject({
      reason: "materialize_failed",
      message: expect.stringContaining(`no room for the tree of upload ${upload}`),
    });
    expect(existsSync(join(dir, "trees", "uploads"))).toBe(false);

    // Short of the floor: a spilled tree still held stays; released, it goes.
    spillFree = floor - 1;
    await cache.evict();
    expect(existsSync(first.treePath)).toBe(true);
    await first.release();
    await cache.evict();
    expect(existsSync(first.treePath)).toBe(false);
  });

  it("mirrors branches and tags but not pull requests' refs, and still fetches a pull request's commit a job names", async () => {
    const { fx, cache, dir } = setup();
    fx.git("tag", "v1");
    // As GitHub does: a pull request's head under refs/pull/, on no branch, fetchable by its sha.
    fx.git("checkout", "-q", "-b", "contrib");
    const pr = fx.commit({ "pkg/contrib.py": "def contributed():\n    return 1\n" }, "a pull request");
    fx.git("checkout", "-q", "main");
    fx.git("update-ref", "refs/pull/7/head", pr);
    fx.git("branch", "-q", "-D", "contrib");
    fx.git("config", "uploadpack.allowReachableSHA1InWant", "true");

    await cache.prepare({ url: fx.url, commit: fx.commits[0]! });
    const [mirror] = readdirSync(join(dir, "mirrors")).filter((m) => !m.includes(".tmp-"));
    const gitDir = join(dir, "mirrors", mirror!);
    const refs = execFileSync("git", ["--git-dir", gitDir, "for-each-ref", "--format=%(refname)"], { encoding: "utf8" }).trim().split("\n");
    expect(refs).toEqual(["refs/heads/main", "refs/tags/v1"]);
    expect(() => execFileSync("git", ["--git-dir", gitDir, "cat-file", "-e", pr], { stdio: "ignore" })).toThrow();

    const tree = await cache.prepare({ url: fx.url, commit: pr });
    expect(tree.sha).toBe(pr);
    expect(readFileSync(join(tree.treePath, "pkg/contrib.py"), "utf8")).toContain("def contributed");

    // A branch pushed later is found by name, and a pull request's head by its ref.
    fx.git("checkout", "-q", "-b", "later");
    const later = fx.commit({ "pkg/util.py": "def helper():\n    return 44\n" }, "later");
    fx.git("checkout", "-q", "main");
    expect((await cache.prepare({ url: fx.url, commit: "later" })).sha).toBe(later);
    expect((await cache.prepare({ url: fx.url, commit: "refs/pull/7/head" })).sha).toBe(pr);
    // What was asked for by name is kept under a ref of its own, one per name (by its digest).
    const after = execFileSync("git", ["--git-dir", gitDir, "for-each-ref", "--format=%(refname) %(objectname)"], { encoding: "utf8" }).trim().split("\n");
    const kept = (name: string) => `refs/codescout/named/${createHash("sha256").update(name).digest("hex").slice(0, 40)}`;
    expect(after).toEqual([`${kept("later")} ${later}`, `${kept("refs/pull/7/head")} ${pr}`].sort().concat([`refs/heads/main ${fx.commits[0]}`, `refs/tags/v1 ${fx.commits[0]}`]));
  });

  it("asks the remote what a name stands for now: a branch moved, HEAD, a tag moved, a branch deleted", async () => {
    const { fx, cache, dir } = setup();
    fx.git("tag", "v1");
    expect((await cache.prepare({ url: fx.url, commit: "main" })).sha).toBe(fx.commits[0]);
    // The mirror is there now; the branch and the tag move on the remote.
    const second = fx.commit({ "pkg/util.py": "def helper():\n    return 43\n" });
    fx.git("tag", "-f", "v1");
    for (const name of ["main", "HEAD", "v1", "main~0", "v1^{}"]) {
      const tree = await cache.prepare({ url: fx.url, commit: name });
      expect([name, tree.sha]).toEqual([name, second]);
    }
    expect(readFileSync(join((await cache.prepare({ url: fx.url, commit: "main" })).treePath, "pkg/util.py"), "utf8")).toContain("43");
    expect((await cache.prepare({ url: fx.url, commit: "main~1" })).sha).toBe(fx.commits[0]);
    // A sha cut short names the same commit anywhere: read from the mirror.
    expect((await cache.prepare({ url: fx.url, commit: second.slice(0, 10) })).sha).toBe(second);
    // Any name git allows.
    for (const name of ["fix#12", "résumé+1"]) {
      fx.git("branch", "-q", name, fx.commits[0]!);
      expect([name, (await cache.prepare({ url: fx.url, commit: name })).sha]).toEqual([name, fx.commits[0]]);
    }
    // A branch deleted on the remote is gone, whatever the mirror remembers of it.
    fx.git("branch", "-q", "gone");
    expect((await cache.prepare({ url: fx.url, commit: "gone" })).sha).toBe(second);
    fx.git("branch", "-q", "-D", "gone");
    await expect(cache.prepare({ url: fx.url, commit: "gone" })).rejects.toMatchObject({ reason: "commit_not_found" });
    // Nor does its kept ref stay, holding its commits.
    const [mirror] = readdirSync(join(dir, "mirrors")).filter((m) => m.endsWith(".git"));
    const keptRefs = execFileSync("git", ["--git-dir", join(dir, "mirrors", mirror!), "for-each-ref", "--format=%(refname)", "refs/codescout/named/"], { encoding: "utf8" });
    expect(keptRefs).not.toContain(createHash("sha256").update("gone").digest("hex").slice(0, 40));
  });

  it("fetches of a moved branch bring what is new since the last one, not all since the clone", async () => {
    const { fx, cache, dir } = setup();
    await cache.prepare({ url: fx.url, commit: "main" });
    // Past git's unpack limit (100 objects): a fetch this large is kept as a pack, every object of it counted.
    for (let i = 0; i < 40; i++) fx.commit({ [`pkg/m${i}.py`]: `N = ${i}\n` });
    await cache.prepare({ url: fx.url, commit: "main" });
    const [mirror] = readdirSync(join(dir, "mirrors")).filter((m) => m.endsWith(".git"));
    const objects = () => {
      const counts = execFileSync("git", ["--git-dir", join(dir, "mirrors", mirror!), "count-objects", "-v"], { encoding: "utf8" });
      return Number(/^count: (\d+)/m.exec(counts)![1]) + Number(/^in-pack: (\d+)/m.exec(counts)![1]);
    };
    const had = objects();
    const last = fx.commit({ "pkg/last.py": "N = 99\n" });
    expect((await cache.prepare({ url: fx.url, commit: "main" })).sha).toBe(last);
    // The new commit, its trees and its file: not the forty commits before it again.
    expect(objects() - had).toBeLessThan(8);
  });

  it("asks the remote about a name that looks like a sha, and reads a sha cut short (any case) or `@` as git does", async () => {
    const { fx, cache } = setup();
    await cache.prepare({ url: fx.url, commit: "main" });
    fx.git("branch", "-q", "cafe");
    const second = fx.commit({ "pkg/util.py": "def helper():\n    return 43\n" });
    fx.git("branch", "-q", "-f", "cafe", second);
    expect((await cache.prepare({ url: fx.url, commit: "cafe" })).sha).toBe(second);
    expect((await cache.prepare({ url: fx.url, commit: second.slice(0, 10).toUpperCase() })).sha).toBe(second);
    expect((await cache.prepare({ url: fx.url, commit: "@" })).sha).toBe(second);
    expect((await cache.prepare({ url: fx.url, commit: "@~1" })).sha).toBe(fx.commits[0]);
  });

  it("names a commit's submodules, those its .gitmodules lists that the tree holds, and remembers only a known answer", async () => {
    const { fx, cache } = setup();
    writeFileSync(join(fx.dir, ".gitmodules"), '[submodule "r"]\n\tpath = vendor/retry\n\turl = https://example.com/r.git\n[submodule "o"]\n\tpath = vendor/old\n\turl = https://example.com/o.git\n');
    fx.git("update-index", "--add", "--cacheinfo", `160000,${fx.commits[0]!},vendor/retry`);
    fx.git("add", ".gitmodules");
    fx.git("commit", "-qm", "a submodule");
    const tree = await cache.prepare({ url: fx.url, commit: fx.git("rev-parse", "HEAD") });
    // Asked by a job that stopped meanwhile: not known, and not remembered as none.
    expect(await cache.submodules(tree, AbortSignal.abort())).toEqual([]);
    expect(await cache.submodules(tree)).toEqual(["vendor/retry"]);
    expect(await cache.submodules(await cache.prepare({ url: fx.url, commit: fx.commits[0]! }))).toEqual([]);
  });

  it("fails a name when the remote cannot be asked, saying a full sha is served from the cache", async () => {
    const { fx, cache } = setup();
    await cache.prepare({ url: fx.url, commit: "main" });
    // The remote gone (moved, a host down): its mirror's copy of `main` may be any age.
    const moved = `${fx.dir}-moved`;
    renameSync(fx.dir, moved);
    cleanups.push(() => rmSync(moved, { recursive: true, force: true }));
    await expect(cache.prepare({ url: fx.url, commit: "main" })).rejects.toMatchObject({ reason: "fetch_failed", message: expect.stringContaining("a full sha is served from the cache") });
    expect((await cache.prepare({ url: fx.url, commit: fx.commits[0]! })).sha).toBe(fx.commits[0]);
  });

  it("resolves a ref to a sha", async () => {
    const { fx, cache } = setup();
    const tree = await cache.prepare({ url: fx.url, commit: "main" });
    expect(tree.sha).toBe(fx.commits[0]);
    expect(tree.owner).toBe("tmp");
  });

  it("reports a missing commit and refuses file URLs unless allowed", async () => {
    const { fx, cache, dir } = setup();
    await expect(cache.prepare({ url: fx.url, commit: "0".repeat(40) })).rejects.toMatchObject({ reason: "commit_not_found", message: expect.stringContaining("git merge-base HEAD @{upstream}") });
    const strict = new RepoCache({ dir, allowFileUrls: false });
    await expect(strict.prepare({ url: fx.url, commit: fx.commits[0]! })).rejects.toBeInstanceOf(RepoError);
    await expect(strict.prepare({ url: "--upload-pack=touch /tmp/x", commit: "main" })).rejects.toMatchObject({ reason: "invalid_url" });
  });
});
