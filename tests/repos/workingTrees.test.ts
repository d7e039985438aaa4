import { describe, it, expect, afterEach } from "vitest";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { Readable } from "node:stream";
import { RepoCache, RepoError } from "../../src/repos/cache.js";
import { readArchive } from "../../src/uploads/archive.js";
import { DirUploadStore } from "../../src/uploads/store.js";
import { makeGitFixture, type GitFixture } from "../helpers/gitFixture.js";
import { tarOf, type TarEntry } from "../helpers/tarball.js";
import { removeCacheDir } from "../helpers/tempDirs.js";

/** Trees made from a caller's working tree: a patch on a commit, and an uploaded archive. */
const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((f) => f()));

const LIMITS = { maxBytes: 1 << 20, maxFiles: 100, maxPathBytes: 256, maxRatio: 50 };

function setup(): { fx: GitFixture; cache: RepoCache; dir: string; store: DirUploadStore } {
  const fx = makeGitFixture();
  const dir = mkdtempSync(join(tmpdir(), "codescout-wt-"));
  cleanups.push(() => fx.cleanup(), () => removeCacheDir(join(dir, "repos")), () => rmSync(dir, { recursive: true, force: true }));
  const store = new DirUploadStore(join(dir, "uploads"), 3600);
  return { fx, dir, store, cache: new RepoCache({ dir: join(dir, "repos"), allowFileUrls: true, uploads: { store, limits: LIMITS } }) };
}

/** What `git diff --binary HEAD` prints for an edit made in a clone of the fixture. */
function diffOf(fx: GitFixture, edit: (dir: string) => void): string {
  const clone = mkdtempSync(join(tmpdir(), "codescout-clone-"));
  cleanups.push(() => rmSync(clone, { recursive: true, force: true }));
  execFileSync("git", ["clone", "-q", fx.url, clone]);
  edit(clone);
  execFileSync("git", ["add", "-A"], { cwd: clone });
  return execFileSync("git", ["diff", "--cached", "--binary", "HEAD"], { cwd: clone, encoding: "utf8" });
}

async function store(s: DirUploadStore, entries: TarEntry[]): Promise<string> {
  const buf = await tarOf(entries, { gzip: true });
  const staged = await s.stage();
  await staged.write(buf);
  const summary = await readArchive(Readable.from([buf]), LIMITS);
  return (await staged.commit(summary)).info.upload_id;
}

describe("working trees", () => {
  it("applies a patch on top of a commit in a tree of its own, never the commit's cached tree", async () => {
    const { fx, cache } = setup();
    const base = await cache.prepare({ url: fx.url, commit: fx.commits[0]! });
    const patch = diffOf(fx, (d) => {
      writeFileSync(join(d, "pkg/util.py"), "def helper():\n    return 42\n\n\ndef only_in_the_edit():\n    return 'new'\n");
      writeFileSync(join(d, "pkg/added.py"), "VALUE = 1\n");
    });
    const patched = await cache.prepare({ url: fx.url, commit: fx.commits[0]!, patch });
    expect(patched.treePath).not.toBe(base.treePath);
    expect(patched.sha).toBe(fx.commits[0]);
    expect(readFileSync(join(patched.treePath, "pkg/util.py"), "utf8")).toContain("only_in_the_edit");
    expect(readFileSync(join(patched.treePath, "pkg/added.py"), "utf8")).toBe("VALUE = 1\n");
    expect(readFileSync(join(base.treePath, "pkg/util.py"), "utf8")).not.toContain("only_in_the_edit");
    expect(existsSync(join(base.treePath, "pkg/added.py"))).toBe(false);
    const again = await cache.prepare({ url: fx.url, commit: fx.commits[0]!, patch });
    expect(again).toMatchObject({ treePath: patched.treePath, cache: "hot" });
    // Its last newline stripped on the way (a shell's "$(git diff)"): the same change.
    const stripped = await cache.prepare({ url: fx.url, commit: fx.commits[0]!, patch: patch.replace(/\n$/, "") });
    expect(readFileSync(join(stripped.treePath, "pkg/added.py"), "utf8")).toBe("VALUE = 1\n");
  });

  it("fails a patch that does not apply, naming the first failing file, and leaves no scratch behind", async () => {
    const { fx, cache, dir } = setup();
    const patch = diffOf(fx, (d) => writeFileSync(join(d, "pkg/parser.py"), "class Parser:\n    pass\n"));
    const moved = fx.commit({ "pkg/parser.py": "# rewritten upstream\n" });
    const err = await cache.prepare({ url: fx.url, commit: moved, patch }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RepoError);
    expect((err as RepoError).reason).toBe("patch_does_not_apply");
    expect((err as RepoError).message).toMatch(/pkg\/parser\.py/);
    expect(readdirSync(join(dir, "repos", "scratch"))).toEqual([]);
    // Made with diff.noprefix: git apply names a path the caller never wrote; the failure says why.
    const bare = patch.replace(/^(diff --git )a\/(\S+) b\//gm, "$1$2 ").replace(/^(---|\+\+\+) [ab]\//gm, "$1 ");
    const unprefixed = (await cache.prepare({ url: fx.url, commit: fx.commits[0]!, patch: bare }).catch((e: unknown) => e)) as RepoError;
    expect(unprefixed.reason).toBe("patch_does_not_apply");
    expect(unprefixed.message).toContain("(its paths lack the a/ and b/ prefixes git apply expects: make it with `git diff --binary HEAD`, without --no-prefix or diff.noprefix)");
    expect((err as RepoError).message).not.toContain("prefixes");
  });

  it("applies a patch on top of an upload: every file it holds, ignored or not, and the upload's own tree untouched", async () => {
    const { cache, store: s, dir } = setup();
    const files = { ".gitignore": "*.log\n", "app/main.py": "def main():\n    return 0\n", "app/debug.log": "sent anyway\n" };
    const id = await store(s, [...Object.entries(files).map(([name, body]) => ({ name, body })), { name: "app/alias.py", type: "symlink", linkname: "main.py" }]);
    // The caller's side: the same tree in git, edited since it was sent.
    const work = mkdtempSync(join(tmpdir(), "codescout-sent-"));
    cleanups.push(() => rmSync(work, { recursive: true, force: true }));
    const sh = (...args: string[]) => execFileSync("git", args, { cwd: work, encoding: "utf8" });
    sh("init", "-q");
    for (const [name, body] of Object.entries(files)) {
      execFileSync("mkdir", ["-p", join(work, name, "..")]);
      writeFileSync(join(work, name), body);
    }
    execFileSync("ln", ["-s", "main.py", join(work, "app/alias.py")]);
    sh("add", "-A", "-f");
    const sent = sh("write-tree").trim();
    writeFileSync(join(work, "app/main.py"), "def main():\n    return only_in_the_edit()\n");
    writeFileSync(join(work, "app/added.py"), "def only_in_the_edit():\n    return 1\n");
    sh("add", "-A");
    const patch = sh("diff", "--cached", "--binary", sent);

    const base = await cache.prepareUpload(id);
    const patched = await cache.prepareUpload(id, undefined, patch);
    expect(patched).toMatchObject({ sha: id, cache: "warm", owner: "local", name: "workspace" });
    expect(patched.treePath).not.toBe(base.treePath);
    expect(readFileSync(join(patched.treePath, "app/main.py"), "utf8")).toContain("only_in_the_edit");
    expect(readFileSync(join(patched.treePath, "app/added.py"), "utf8")).toContain("def only_in_the_edit");
    expect(readFileSync(join(patched.treePath, "app/debug.log"), "utf8")).toBe("sent anyway\n");
    expect(readFileSync(join(patched.treePath, "app/alias.py"), "utf8")).toContain("only_in_the_edit");
    expect(readFileSync(join(base.treePath, "app/main.py"), "utf8")).not.toContain("only_in_the_edit");
    expect(existsSync(join(base.treePath, "app/added.py"))).toBe(false);
    expect(await cache.prepareUpload(id, undefined, patch)).toMatchObject({ treePath: patched.treePath, cache: "hot" });

    // A patch made against another tree names the file it cannot change, and leaves nothing half made.
    const stale = patch.replace("return 0", "return 7");
    const err = (await cache.prepareUpload(id, undefined, stale).catch((e: unknown) => e)) as RepoError;
    expect(err.reason).toBe("patch_does_not_apply");
    expect(err.message).toMatch(/app\/main\.py/);
    const places = [...new Set([cache.trees.dir, cache.trees.spillDir])].map((d) => join(d, "uploads")).filter((d) => existsSync(d));
    expect(places.flatMap((d) => readdirSync(d)).filter((n) => n.includes(".tmp-"))).toEqual([]);
    // A path out of the tree is refused as git refuses it, and nothing is written outside.
    const escape = "diff --git a/../../outside.py b/../../outside.py\nnew file mode 100644\n--- /dev/null\n+++ b/../../outside.py\n@@ -0,0 +1 @@\n+x = 1\n";
    expect(((await cache.prepareUpload(id, undefined, escape).catch((e: unknown) => e)) as RepoError).reason).toBe("patch_does_not_apply");
    expect(existsSync(join(dir, "outside.py"))).toBe(false);
  });

  it("removes the trees of what a client sent (a patched commit, an upload) once unused past their time, within the limits or not; a commit's tree and a tree in use stay", async () => {
    const { fx, dir, store: s } = setup();
    // Trees idle 1.5 s after their jobs let go (a job's hold lapses then too); what clients sent, unused 0.5 s past that.
    const cache = new RepoCache({ dir: join(dir, "repos"), allowFileUrls: true, uploads: { store: s, limits: LIMITS }, treeIdleMs: 1_500, sentMaxIdleMs: 500 });
    const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const commit = await cache.prepare({ url: fx.url, commit: fx.commits[0]! });
    const patched = await cache.prepare({ url: fx.url, commit: fx.commits[0]!, patch: diffOf(fx, (d) => writeFileSync(join(d, "pkg/added.py"), "SECRET = 'sent by a client'\n")) });
    const id = await store(s, [{ name: "app/main.py", body: "def main():\n    return 0\n" }]);
    const upload = await cache.prepareUpload(id);
    await commit.release();
    await patched.release();
    // Let go of just now: not yet past its time.
    await cache.sweep();
    expect(existsSync(patched.treePath)).toBe(true);
    await wait(700);
    // A job takes the upload again (a hold of its own, fresh).
    const again = await cache.prepareUpload(id);
    await cache.sweep();
    expect([existsSync(commit.treePath), existsSync(patched.treePath), existsSync(upload.treePath)]).toEqual([true, false, true]);
    await upload.release();
    await again.release();
    await wait(700);
    await cache.sweep();
    expect([existsSync(commit.treePath), existsSync(upload.treePath)]).toEqual([true, false]);
  });

  it("keeps trees and mirrors from other users of the host: the directories above a tree are entered, not listed, and the mirrors neither; the tree itself stays readable to the sandbox's user", async () => {
    const { fx, dir, store: s } = setup();
    const cache = new RepoCache({ dir: join(dir, "repos"), allowFileUrls: true, uploads: { store: s, limits: LIMITS }, treeRoot: join(dir, "shm") });
    const commit = await cache.prepare({ url: fx.url, commit: fx.commits[0]! });
    const upload = await cache.prepareUpload(await store(s, [{ name: "app/main.py", body: "def main():\n    return 0\n" }]));
    const mode = (p: string) => statSync(p).mode & 0o777;
    for (const tree of [commit.treePath, upload.treePath]) {
      expect(mode(tree)).toBe(0o755);
      for (let d = dirname(tree); d !== dir; d = dirname(d)) if (d.startsWith(join(dir, "shm"))) expect([d, mode(d)]).toEqual([d, 0o711]);
    }
    expect(mode(join(dir, "repos", "mirrors"))).toBe(0o700);
    // Made before, listable: a worker's start (its sweep) closes them.
    execFileSync("chmod", ["0755", join(dir, "shm"), dirname(commit.treePath), join(dir, "repos", "mirrors")]);
    await new RepoCache({ dir: join(dir, "repos"), allowFileUrls: true, treeRoot: join(dir, "shm") }).sweep();
    expect([mode(join(dir, "shm")), mode(dirname(commit.treePath)), mode(join(dir, "repos", "mirrors"))]).toEqual([0o711, 0o711, 0o700]);
    // As another user: a tree read by its path, nothing found by listing.
    const as = (...argv: string[]) => spawnSync("runuser", ["-u", "nobody", "--", ...argv], { encoding: "utf8" });
    execFileSync("chmod", ["o+x", dir]);
    expect(as("cat", join(commit.treePath, "pkg/util.py")).status).toBe(0);
    expect(as("ls", dirname(commit.treePath)).status).not.toBe(0);
    expect(as("ls", join(dir, "shm")).status).not.toBe(0);
    expect(as("ls", join(dir, "repos", "mirrors")).status).not.toBe(0);
    // Nor the holds, named after the trees jobs use, nor the upload store, named by the uploads' ids.
    const treesDir = dirname(dirname(commit.treePath));
    expect(existsSync(join(treesDir, ".holds"))).toBe(true);
    expect(as("ls", join(treesDir, ".holds")).status).not.toBe(0);
    expect(as("ls", join(treesDir, ".holds", "uploads")).status).not.toBe(0);
    expect(mode(join(dir, "uploads"))).toBe(0o700);
  });

  it("applies a patch to an upload laid out as a bare git repository without reading its config (its filter would run a command)", async () => {
    const { cache, store: s, dir } = setup();
    const marker = join(dir, "ran");
    const id = await store(s, [
      { name: "HEAD", body: "ref: refs/heads/main\n" },
      { name: "objects", type: "directory" },
      { name: "refs", type: "directory" },
      { name: "config", body: `[core]\n\tbare = true\n[filter "x"]\n\tclean = touch ${marker} && cat\n\tsmudge = touch ${marker} && cat\n` },
      { name: "info/attributes", body: "*.py filter=x\n" },
      { name: "app.py", body: "x = 1\n" },
    ]);
    const patch = "diff --git a/app.py b/app.py\n--- a/app.py\n+++ b/app.py\n@@ -1 +1 @@\n-x = 1\n+x = 2\n";
    const patched = await cache.prepareUpload(id, undefined, patch);
    expect(readFileSync(join(patched.treePath, "app.py"), "utf8")).toBe("x = 2\n");
    expect(existsSync(marker)).toBe(false);
  });

  it("extracts an uploaded tree once, and refuses a stored archive that fails the checks again", async () => {
    const { cache, store: s, dir } = setup();
    const id = await store(s, [
      { name: "app/main.py", body: "def main():\n    return 0\n" },
      { name: "app/alias.py", type: "symlink", linkname: "main.py" },
    ]);
    const tree = await cache.prepareUpload(id);
    expect(tree).toMatchObject({ sha: id, cache: "warm", owner: "local", name: "workspace" });
    expect(readFileSync(join(tree.treePath, "app/main.py"), "utf8")).toContain("def main");
    expect((await cache.prepareUpload(id)).cache).toBe("hot");
    expect(((await cache.prepareUpload("a".repeat(64)).catch((e: unknown) => e)) as RepoError).reason).toBe("upload_not_found");

    // The store is not trusted: an archive swapped behind the API's back is checked again.
    const other = await store(s, [{ name: "b.py", body: "x" }]);
    writeFileSync(join(s.dir, `${other}.archive`), await tarOf([{ name: "../../escaped.py", body: "x" }]));
    const err = (await cache.prepareUpload(other).catch((e: unknown) => e)) as RepoError;
    expect(err.reason).toBe("invalid_upload");
    expect(existsSync(join(dir, "escaped.py"))).toBe(false);
    // Trees go to the fast place, or to the spill directory while other caches' trees fill its budget.
    const places = [...new Set([cache.trees.dir, cache.trees.spillDir])].map((d) => join(d, "uploads")).filter((d) => existsSync(d));
    expect(places.flatMap((d) => readdirSync(d)).filter((n) => !n.endsWith(".bytes"))).toEqual([id]);
  });
});
