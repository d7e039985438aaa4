import { describe, it, expect, afterEach } from "vitest";
import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RepoCache } from "../../src/repos/cache.js";
import { AS_COMMITTED } from "../../src/repos/treeWrite.js";
import { makeGitFixture, type GitFixture } from "../helpers/gitFixture.js";
import { removeCacheDir } from "../helpers/tempDirs.js";

/**
 * A commit's tree made from another tree of the same repository on the host (treeWrite.ts):
 * it must hold exactly what `git archive` of the commit gives, and leave the tree it came
 * from as it was unless no job uses that one any more.
 */
const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((f) => f()));

function setup(): { fx: GitFixture; cache: RepoCache } {
  const fx = makeGitFixture();
  const dir = mkdtempSync(join(tmpdir(), "codescout-derive-"));
  // A tree root of its own: another test file's cache with a small budget may remove idle trees under a shared one.
  const treeRoot = mkdtempSync(join(tmpdir(), "codescout-derive-trees-"));
  cleanups.push(() => fx.cleanup(), () => removeCacheDir(dir), () => rmSync(treeRoot, { recursive: true, force: true }));
  return { fx, cache: new RepoCache({ dir, allowFileUrls: true, treeRoot }) };
}

/** Every entry of a tree: its type, permission bits, and content or link target. */
function snapshot(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const path = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(root, path));
      const mode = (st.mode & 0o777).toString(8);
      if (st.isSymbolicLink()) out[path] = `link -> ${readlinkSync(join(root, path))}`;
      else if (st.isDirectory()) {
        out[path] = `dir ${mode}`;
        walk(path);
      } else out[path] = `file ${mode} ${readFileSync(join(root, path), "utf8")}`;
    }
  };
  walk("");
  return out;
}

/** What a whole `git archive` of the commit gives, the way the cache extracts it (as committed: AS_COMMITTED). */
function archived(fx: GitFixture, sha: string): Record<string, string> {
  const dir = mkdtempSync(join(tmpdir(), "codescout-archive-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(fx.dir, ".git", "info"), { recursive: true });
  writeFileSync(join(fx.dir, ".git", "info", "attributes"), AS_COMMITTED);
  execFileSync("sh", ["-c", `git -C "${fx.dir}" archive --format=tar ${sha} | tar -x --no-same-owner --no-same-permissions -C "${dir}"`]);
  return snapshot(dir);
}

/** Commits whatever `edit` did in the fixture's work tree. */
function commitEdit(fx: GitFixture, edit: (dir: string) => void): string {
  edit(fx.dir);
  fx.git("add", "-A");
  fx.git("commit", "-q", "-m", "edit");
  const sha = fx.git("rev-parse", "HEAD");
  fx.commits.push(sha);
  return sha;
}

describe("derived trees", () => {
  it("hold exactly what the commit's archive holds, and take over the tree they came from only once no job uses it", async () => {
    const { fx, cache } = setup();
    const a = commitEdit(fx, (d) => {
      writeFileSync(join(d, "docs"), "a file, later a directory\n");
      mkdirSync(join(d, "pkg/sub"));
      writeFileSync(join(d, "pkg/sub/only.py"), "X = 1\n");
      writeFileSync(join(d, "tool.sh"), "#!/bin/sh\necho hi\n");
      symlinkSync("pkg/util.py", join(d, "latest"));
      symlinkSync("pkg", join(d, "alias"));
      writeFileSync(join(d, ".gitattributes"), "*.secret export-ignore\n");
      // Files no commit changes: a tree is derived only where at most an eighth changed.
      mkdirSync(join(d, "lib"));
      for (let i = 0; i < 100; i++) writeFileSync(join(d, `lib/m${i}.py`), `N = ${i}\n`);
    });
    // Every kind of change: edited, deleted (emptying two directories), a file and a symlink
    // to a directory become directories, an executable bit, a symlink's target, a new deep
    // directory, a file .gitattributes marks export-ignore (kept: the tree is as committed).
    const b = commitEdit(fx, (d) => {
      writeFileSync(join(d, "pkg/util.py"), "def helper():\n    return 43\n");
      rmSync(join(d, "pkg/sub"), { recursive: true });
      rmSync(join(d, "tests"), { recursive: true });
      unlinkSync(join(d, "docs"));
      mkdirSync(join(d, "docs"));
      writeFileSync(join(d, "docs/index.md"), "# docs\n");
      chmodSync(join(d, "tool.sh"), 0o755);
      unlinkSync(join(d, "latest"));
      symlinkSync("README.md", join(d, "latest"));
      mkdirSync(join(d, "new/deep"), { recursive: true });
      writeFileSync(join(d, "new/deep/y.py"), "Y = 2\n");
      writeFileSync(join(d, "keys.secret"), "not for the archive\n");
      unlinkSync(join(d, "alias"));
      mkdirSync(join(d, "alias"));
      writeFileSync(join(d, "alias/z.py"), "Z = 3\n");
    });
    const c = commitEdit(fx, (d) => writeFileSync(join(d, "README.md"), "# sample, again\n"));

    // A job still holds a's tree: b's links to its files, and a's stays as it was.
    const first = await cache.prepare({ url: fx.url, commit: a });
    const second = await cache.prepare({ url: fx.url, commit: b });
    expect(second.cache).toBe("warm");
    expect(snapshot(second.treePath)).toEqual(archived(fx, b));
    expect(snapshot(second.treePath)["keys.secret"]).toBe("file 644 not for the archive\n");
    expect(snapshot(first.treePath)).toEqual(archived(fx, a));
    expect(lstatSync(join(second.treePath, "README.md")).ino).toBe(lstatSync(join(first.treePath, "README.md")).ino);

    // Released, b's tree is idle: c's takes it over.
    await first.release();
    // Released later (a tree's last use has the clock's resolution), b's is the newest.
    await new Promise((r) => setTimeout(r, 20));
    await second.release();
    const third = await cache.prepare({ url: fx.url, commit: c });
    expect(snapshot(third.treePath)).toEqual(archived(fx, c));
    expect(existsSync(second.treePath)).toBe(false);
    expect(snapshot(first.treePath)).toEqual(archived(fx, a));

    // Asked for again, b's tree is made again, from c's this time (c is held: linked).
    const again = await cache.prepare({ url: fx.url, commit: b });
    expect(again.cache).toBe("warm");
    expect(snapshot(again.treePath)).toEqual(archived(fx, b));
    expect(snapshot(third.treePath)).toEqual(archived(fx, c));
  });

  it("link a patched tree to its commit's tree, which stays for the next edit even when no job uses it", async () => {
    const { fx, cache } = setup();
    const commit = commitEdit(fx, (d) => {
      mkdirSync(join(d, "lib"));
      for (let i = 0; i < 40; i++) writeFileSync(join(d, `lib/m${i}.py`), `N = ${i}\n`);
    });
    const base = await cache.prepare({ url: fx.url, commit });
    const before = snapshot(base.treePath);
    await base.release();
    const patch = [
      "diff --git a/pkg/util.py b/pkg/util.py",
      "--- a/pkg/util.py",
      "+++ b/pkg/util.py",
      "@@ -1,2 +1,2 @@",
      " def helper():",
      "-    return 42",
      "+    return 'only in the edit'",
      "",
    ].join("\n");
    const patched = await cache.prepare({ url: fx.url, commit, patch });
    expect(readFileSync(join(patched.treePath, "pkg/util.py"), "utf8")).toContain("only in the edit");
    expect(lstatSync(join(patched.treePath, "pkg/parser.py")).ino).toBe(lstatSync(join(base.treePath, "pkg/parser.py")).ino);
    expect(snapshot(base.treePath)).toEqual(before);
    const hot = await cache.prepare({ url: fx.url, commit });
    expect(hot).toMatchObject({ cache: "hot", treePath: base.treePath });
  });

  it("derive a tree whose .gitattributes asks an archive to rewrite or leave out files: those stay as committed", async () => {
    const { fx, cache } = setup();
    const a = commitEdit(fx, (d) => {
      writeFileSync(join(d, ".gitattributes"), ".git_archival.txt export-subst\n/bin export-ignore\n");
      writeFileSync(join(d, ".git_archival.txt"), "node: $Format:%H$\n");
      mkdirSync(join(d, "bin"));
      writeFileSync(join(d, "bin/console.py"), "def run():\n    pass\n");
      mkdirSync(join(d, "lib"));
      for (let i = 0; i < 40; i++) writeFileSync(join(d, `lib/m${i}.py`), `N = ${i}\n`);
    });
    const b = commitEdit(fx, (d) => writeFileSync(join(d, "lib/.gitattributes"), "*.py export-subst export-ignore\n"));
    const first = await cache.prepare({ url: fx.url, commit: a });
    await first.release();
    const second = await cache.prepare({ url: fx.url, commit: b });
    expect(second.cache).toBe("warm");
    const tree = snapshot(second.treePath);
    expect(tree).toEqual(archived(fx, b));
    expect(tree[".git_archival.txt"]).toBe("file 644 node: $Format:%H$\n");
    expect(tree["bin/console.py"]).toBeDefined();
    expect(tree["lib/m3.py"]).toBe("file 644 N = 3\n");
    // Derived from the first tree, which no job held: taken over.
    expect(existsSync(first.treePath)).toBe(false);
  });
});
