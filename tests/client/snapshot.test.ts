import { describe, it, expect, afterAll } from "vitest";
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createGunzip } from "node:zlib";
import { makeGitFixture, type GitFixture } from "../helpers/gitFixture.js";
import { Snapshot, TreeCache } from "../../src/client/snapshot.js";

/** The work tree as git sees it, in a plain checkout and in a linked worktree (`.git` is a file there). */
const fx = makeGitFixture({ "pkg/a.py": "def a():\n    return 1\n" });
const worktree = `${fx.dir}-wt`;
afterAll(() => {
  rmSync(worktree, { recursive: true, force: true });
  fx.cleanup();
});

const indexOf = (root: string) => readFileSync(execFileSync("git", ["rev-parse", "--path-format=absolute", "--git-path", "index"], { cwd: root, encoding: "utf8" }).trim());

async function capture(root: string) {
  const before = indexOf(root);
  const snap = await Snapshot.take(root);
  try {
    return { patch: await snap.patch(), indexUntouched: before.equals(indexOf(root)) };
  } finally {
    await snap.dispose();
  }
}

/** What `tar ARGS` prints reading the archive a snapshot would upload (gzip-compressed when asked). */
function tarOutput(snap: Snapshot, args: string[], compress = false): Promise<string> {
  return new Promise((res, rej) => {
    const tar = spawn("tar", args, { stdio: ["pipe", "pipe", "inherit"] });
    let out = "";
    tar.stdout.on("data", (d: Buffer) => (out += d.toString()));
    tar.on("close", () => res(out));
    tar.on("error", rej);
    void snap.archive(compress).then((a) => (compress ? a.pipe(createGunzip()) : a).pipe(tar.stdin), rej);
  });
}

/** The paths of the files and links in the archive a snapshot would upload, as tar lists them, sorted. */
async function archivedNames(snap: Snapshot): Promise<string[]> {
  return (await tarOutput(snap, ["-t"])).split("\n").filter((n) => n && !n.endsWith("/")).sort();
}

/** A checkout made of `files` and a client cache of its own, both removed after `fn`. */
async function withCheckout(files: Record<string, string>, fn: (repo: GitFixture, cache: string) => Promise<void>): Promise<void> {
  const repo = makeGitFixture(files);
  const cache = mkdtempSync(join(tmpdir(), "codescout-snapcache-"));
  try {
    await fn(repo, cache);
  } finally {
    rmSync(cache, { recursive: true, force: true });
    repo.cleanup();
  }
}

describe("work tree snapshot", () => {
  it("captures edits and untracked files of a plain checkout without writing its index", async () => {
    writeFileSync(join(fx.dir, "pkg", "a.py"), "def a():\n    return 2\n");
    writeFileSync(join(fx.dir, "pkg", "b.py"), "def only_here():\n    pass\n");
    const { patch, indexUntouched } = await capture(fx.dir);
    expect(patch).toContain("+    return 2");
    expect(patch).toContain("+def only_here():");
    expect(indexUntouched).toBe(true);
  });

  it("reuses its scratch index between calls and still sees every later change, including to the user's index", async () => {
    const other = makeGitFixture({ "m/keep.py": "K = 1\n", "m/gone.py": "G = 1\n", ".gitignore": "secret.txt\n" });
    const cache = mkdtempSync(join(tmpdir(), "codescout-snapcache-"));
    const look = async () => {
      const snap = await Snapshot.take(other.dir, cache);
      try {
        return { tree: await snap.treeId(), patch: await snap.patch() };
      } finally {
        await snap.dispose();
      }
    };
    // Another checkout's scratch set, untouched for 40 days, and one used yesterday.
    const old = join(cache, "snapshots", "0123456789abcdef");
    const recent = join(cache, "snapshots", "fedcba9876543210");
    for (const [dir, days] of [[old, 40], [recent, 1]] as const) {
      mkdirSync(join(dir, "objects-none"), { recursive: true });
      const t = new Date(Date.now() - days * 86_400_000);
      utimesSync(dir, t, t);
    }
    try {
      const first = await look();
      expect(first.patch).toBe("");
      expect([existsSync(old), existsSync(recent)]).toEqual([false, true]);
      expect((await look()).tree).toBe(first.tree);
      // The kept index is what the second call started from.
      const own = readdirSync(join(cache, "snapshots")).find((n) => join(cache, "snapshots", n) !== recent)!;
      expect(readdirSync(join(cache, "snapshots", own)).filter((n) => n.startsWith("index-"))).toHaveLength(1);

      writeFileSync(join(other.dir, "m", "keep.py"), "K = 2\n");
      unlinkSync(join(other.dir, "m", "gone.py"));
      writeFileSync(join(other.dir, "m", "new.py"), "def fresh():\n    pass\n");
      writeFileSync(join(other.dir, "secret.txt"), "token\n");
      const edited = await look();
      expect(edited.tree).not.toBe(first.tree);
      expect(edited.patch).toContain("+K = 2");
      expect(edited.patch).toContain("deleted file mode");
      expect(edited.patch).toContain("+def fresh():");
      expect(edited.patch).not.toContain("token");
      expect((await look()).tree).toBe(edited.tree);

      // The user tracks an ignored file: their index changed, so the snapshot starts from it again.
      execFileSync("git", ["add", "-f", "secret.txt"], { cwd: other.dir });
      const forced = await look();
      expect(forced.patch).toContain("+token");
      expect(forced.tree).not.toBe(edited.tree);
      // And stops tracking it again: the kept scratch index must not keep it.
      execFileSync("git", ["rm", "-q", "--cached", "secret.txt"], { cwd: other.dir });
      expect((await look()).patch).not.toContain("token");

      // A file sent before the user ignored it (their index unchanged, so the kept scratch index
      // is used again) is not sent once it is ignored.
      writeFileSync(join(other.dir, "settings.ini"), "API_KEY=sk-live-123\n");
      expect((await look()).patch).toContain("sk-live-123");
      writeFileSync(join(other.dir, ".gitignore"), "secret.txt\nsettings.ini\n");
      const ignoredNow = await look();
      expect(ignoredNow.patch).not.toContain("sk-live-123");
      expect((await look()).tree).toBe(ignoredNow.tree);
    } finally {
      rmSync(cache, { recursive: true, force: true });
      other.cleanup();
    }
  });

  it("sees an edit made in the same second as the index it starts from was written, at the same size", async () => {
    // git trusts a cached stat only for files older than their index ("racy git"); only
    // mtime seconds and size are compared here, so each edit below is invisible to the stat.
    const racy = makeGitFixture({ "r.py": "X = 1\n" });
    const cache = mkdtempSync(join(tmpdir(), "codescout-snapcache-"));
    const look = async () => {
      const snap = await Snapshot.take(racy.dir, cache);
      try {
        return await snap.treeId();
      } finally {
        await snap.dispose();
      }
    };
    // The tree as a fresh index (no stat cache at all) sees it. Not the patch: git diff
    // reads a stat-clean file from the work tree, so its text would look right regardless.
    const truth = () => {
      const env = { ...process.env, GIT_INDEX_FILE: join(cache, "fresh-index") };
      rmSync(env.GIT_INDEX_FILE, { force: true });
      execFileSync("git", ["add", "-A"], { cwd: racy.dir, env });
      return execFileSync("git", ["write-tree"], { cwd: racy.dir, env, encoding: "utf8" }).trim();
    };
    try {
      for (const [k, v] of [["core.checkStat", "minimal"], ["core.trustctime", "false"]]) execFileSync("git", ["config", k!, v!], { cwd: racy.dir });
      const file = join(racy.dir, "r.py");
      const then = new Date(Date.now() - 3600_000);
      const edit = (text: string) => {
        writeFileSync(file, text);
        utimesSync(file, then, then);
      };
      edit("X = 1\n");
      execFileSync("git", ["update-index", "--refresh"], { cwd: racy.dir });
      edit("X = 2\n");
      utimesSync(join(racy.dir, ".git", "index"), then, then);
      // From the user's index, then from the scratch index the first look kept.
      expect(await look()).toBe(truth());
      const dir = join(cache, "snapshots", readdirSync(join(cache, "snapshots"))[0]!);
      utimesSync(join(dir, readdirSync(dir).find((n) => n.startsWith("index-"))!), then, then);
      edit("X = 3\n");
      expect(await look()).toBe(truth());
    } finally {
      rmSync(cache, { recursive: true, force: true });
      racy.cleanup();
    }
  });

  it("captures a clean checkout whose index was last written long ago, on its first call", async () => {
    // git add leaves an index with nothing to change unwritten: the scratch copy keeps the
    // user's index's old time, which must not make it look like a stale set's leftover.
    const clean = makeGitFixture({ "c/one.py": "def one():\n    pass\n", "c/two.py": "T = 2\n" });
    const cache = mkdtempSync(join(tmpdir(), "codescout-snapcache-"));
    try {
      // Files older than the index that caches their stat, as in a checkout left alone a while.
      const older = new Date(Date.now() - 7200_000);
      for (const f of ["c/one.py", "c/two.py"]) utimesSync(join(clean.dir, f), older, older);
      clean.git("update-index", "--refresh");
      const then = new Date(Date.now() - 3600_000);
      utimesSync(join(clean.dir, ".git", "index"), then, then);
      const snap = await Snapshot.take(clean.dir, cache);
      try {
        expect(await snap.treeId()).toBe(clean.git("rev-parse", "HEAD^{tree}"));
        expect(await snap.sentFiles()).toBe(2);
        expect(await archivedNames(snap)).toEqual(["c/one.py", "c/two.py"]);
      } finally {
        await snap.dispose();
      }
    } finally {
      rmSync(cache, { recursive: true, force: true });
      clean.cleanup();
    }
  });

  it("leaves files HEAD does not hold out of the patch and the archive when they are over the size limit", async () => {
    const repo = makeGitFixture({ "m/keep.py": "K = 1\n", "m/table.dat": "0".repeat(1500) });
    const cache = mkdtempSync(join(tmpdir(), "codescout-snapcache-"));
    const look = async () => {
      const snap = await Snapshot.take(repo.dir, cache, 1000);
      try {
        return { leftOut: await snap.leftOut(), patch: await snap.patch(), archived: await archivedNames(snap) };
      } finally {
        await snap.dispose();
      }
    };
    try {
      writeFileSync(join(repo.dir, "m", "new.py"), "def fresh():\n    pass\n");
      writeFileSync(join(repo.dir, "dump*.bin"), "x".repeat(2000));
      // A file HEAD holds goes whatever its size.
      writeFileSync(join(repo.dir, "m", "table.dat"), "1".repeat(1500));
      let seen = await look();
      expect(seen.leftOut).toEqual([{ path: "dump*.bin", files: 1, bytes: 2000, why: "size" }]);
      expect(seen.patch).toContain("+def fresh():");
      expect(seen.patch).toContain("m/table.dat");
      expect(seen.patch).not.toContain("dump*.bin");
      expect(seen.archived).toEqual(["m/keep.py", "m/new.py", "m/table.dat"]);
      writeFileSync(join(repo.dir, "dump*.bin"), "small\n");
      seen = await look();
      expect(seen.leftOut).toEqual([]);
      expect(seen.patch).toContain("+small");
      expect(seen.archived).toContain("dump*.bin");
      // Grown again, though the scratch index holds it from when it was small.
      writeFileSync(join(repo.dir, "dump*.bin"), "y".repeat(2000));
      seen = await look();
      expect(seen.leftOut).toEqual([{ path: "dump*.bin", files: 1, bytes: 2000, why: "size" }]);
      expect(seen.patch).not.toContain("dump*.bin");
      expect(seen.archived).not.toContain("dump*.bin");
    } finally {
      rmSync(cache, { recursive: true, force: true });
      repo.cleanup();
    }
  });

  it("never sends files whose names say they hold credentials, with no ignore file to say so, committed or not; a .env template goes", () =>
    withCheckout({ "app/main.py": "def main():\n    pass\n", "tests/fixtures/server.pem": "TEST CERT\n", "config/credentials.json": '{"token": ""}\n' }, async (repo, cache) => {
      const secrets = [".env", "app/.env.local", ".aws/credentials", ".ssh/id_ed25519", "deploy/id_rsa", "certs/prod.pem", ".netrc", ".git-credentials", ".envrc", "infra/prod.tfvars", ".vault-token"];
      for (const path of [...secrets, ".env.example", "app/credentials.py"]) {
        mkdirSync(join(repo.dir, path, ".."), { recursive: true });
        writeFileSync(join(repo.dir, path), secrets.includes(path) ? "SECRET=1\n" : "NAME=\n");
      }
      // A committed template filled in, and a key in a commit no remote holds yet (the patch is on the commit before).
      writeFileSync(join(repo.dir, "config/credentials.json"), '{"token": "SECRET-FILLED"}\n');
      const pushed = repo.commits[repo.commits.length - 1]!;
      repo.commit({ "deploy/unpushed.key": "SECRET-UNPUSHED\n" }, "local only");
      const snap = await Snapshot.take(repo.dir, cache);
      try {
        const credentials = async (base?: string) => (await snap.leftOut(base)).filter((f) => f.why === "credentials").map((f) => f.path);
        const committed = ["config/credentials.json", "deploy/unpushed.key", "tests/fixtures/server.pem"];
        expect(await credentials()).toEqual([...secrets, ...committed].sort());
        // On the pushed commit, the service reads its own copies: the fixture, unchanged since, is no change to leave out.
        expect(await credentials(pushed)).toEqual([...secrets, "config/credentials.json", "deploy/unpushed.key"].sort());
        const patch = await snap.patch(pushed);
        const archived = await archivedNames(snap);
        for (const path of secrets) expect(patch).not.toContain(` b/${path}\n`);
        expect(patch).not.toContain("SECRET");
        expect(patch).toContain("+NAME=");
        expect(archived).toEqual([".env.example", "app/credentials.py", "app/main.py"]);
      } finally {
        await snap.dispose();
      }
    }));

  it("leaves out a file whose name the service refuses (a line break, a backslash), not the whole tree", () =>
    withCheckout({ "app/main.py": "def main():\n    pass\n" }, async (repo, cache) => {
      const odd = ["app/new\nline.py", "app/back\\slash.py"];
      for (const path of odd) writeFileSync(join(repo.dir, path), "X = 1\n");
      repo.git("add", "-A");
      repo.git("commit", "-qm", "odd names");
      writeFileSync(join(repo.dir, "app/main.py"), "def main():\n    return 1\n");
      const snap = await Snapshot.take(repo.dir, cache);
      try {
        expect((await snap.leftOut()).filter((f) => f.why === "name").map((f) => f.path)).toEqual([...odd].sort());
        expect(await archivedNames(snap)).toEqual(["app/main.py"]);
        // A patch carries them, as git quotes their names: the service applies it.
        const patch = await snap.patch(repo.commits[0]!);
        expect(patch).toContain("+    return 1");
        expect(patch).toContain("back\\\\slash.py");
      } finally {
        await snap.dispose();
      }
    }));

  it("refuses to make a patch of a file that is not UTF-8, naming it, rather than send it garbled; an upload still carries the file", () =>
    withCheckout({ "app/main.py": "def main():\n    pass\n" }, async (repo, cache) => {
      mkdirSync(join(repo.dir, "app/old b"), { recursive: true });
      writeFileSync(join(repo.dir, "app/old b/legacy.py"), Buffer.from("# caf\xe9\nX = 1\n", "latin1"));
      repo.git("add", "-A");
      repo.git("commit", "-qm", "a Latin-1 source");
      writeFileSync(join(repo.dir, "app/main.py"), "def main():\n    return 1\n");
      writeFileSync(join(repo.dir, "app/old b/legacy.py"), Buffer.from("# caf\xe9\nX = 2\n", "latin1"));
      const snap = await Snapshot.take(repo.dir, cache);
      try {
        await expect(snap.patch()).rejects.toThrow("the changes to app/old b/legacy.py are not UTF-8 text, which a patch must be");
        expect(await tarOutput(snap, ["-xO", "app/old b/legacy.py"])).toContain("X = 2");
      } finally {
        await snap.dispose();
      }
    }));

  it("calls a directory of the largest parts tracked only when HEAD holds most of it: a committed README beside a dataset does not make the dataset git's", () =>
    withCheckout({ "app/main.py": "def main():\n    pass\n", "data/README.md": "# data\n", "vendor/lib.py": "X = 1\n".repeat(2000) }, async (repo, cache) => {
      for (let i = 0; i < 5; i++) writeFileSync(join(repo.dir, `data/part${i}.csv`), "1,2,3\n".repeat(5000));
      const snap = await Snapshot.take(repo.dir, cache);
      try {
        const parts = await snap.largestParts(2);
        expect(parts.bySize).toEqual(["data/ (0.1 MiB)", "vendor/ (0.0 MiB, tracked)"]);
        expect(parts).toMatchObject({ tracked: true, untracked: true });
      } finally {
        await snap.dispose();
      }
    }));

  it("makes the patch of a scoped job of its directory alone: edits elsewhere in the checkout stay on the machine", () =>
    withCheckout({ "pkgA/a.py": "A = 1\n", "pkgB/b.py": "B = 1\n" }, async (repo, cache) => {
      writeFileSync(join(repo.dir, "pkgA/a.py"), "A = 2\n");
      writeFileSync(join(repo.dir, "pkgB/b.py"), "B = 'PRIVATE_EDIT'\n");
      const snap = await Snapshot.take(repo.dir, cache);
      try {
        const scoped = await snap.patch("HEAD", "pkgA");
        expect(scoped).toContain("+A = 2");
        expect(scoped).not.toContain("PRIVATE_EDIT");
        expect(await snap.patch("HEAD")).toContain("PRIVATE_EDIT");
      } finally {
        await snap.dispose();
      }
    }));

  it("takes a CRLF file git's core.safecrlf would refuse to commit: that guard is for the user's commits", () =>
    withCheckout({ "app/main.py": "def main():\n    pass\n" }, async (repo, cache) => {
      execFileSync("git", ["config", "core.autocrlf", "input"], { cwd: repo.dir });
      execFileSync("git", ["config", "core.safecrlf", "true"], { cwd: repo.dir });
      writeFileSync(join(repo.dir, "app/win.py"), "def win():\r\n    return 1\r\n");
      const snap = await Snapshot.take(repo.dir, cache);
      try {
        expect(await snap.patch()).toContain("+++ b/app/win.py");
      } finally {
        await snap.dispose();
      }
    }));

  it("reads a symlink git wrote as a plain file holding its target (core.symlinks=false, Git for Windows' default) as the link it is", () =>
    withCheckout({ "pkg/a.py": "def a():\n    pass\n" }, async (repo, cache) => {
      symlinkSync("a.py", join(repo.dir, "pkg/alias.py"));
      symlinkSync("/etc/passwd", join(repo.dir, "leak.txt"));
      repo.commit({}, "links");
      const clone = `${repo.dir}-nolinks`;
      execFileSync("git", ["clone", "-q", "-c", "core.symlinks=false", repo.dir, clone]);
      try {
        expect(readFileSync(join(clone, "pkg/alias.py"), "utf8")).toBe("a.py");
        const snap = await Snapshot.take(clone, cache);
        try {
          // The link inside the tree goes; only the one leaving it is left out.
          expect(await snap.escapingLinks()).toEqual(["leak.txt"]);
          expect(await archivedNames(snap)).toEqual(["pkg/a.py", "pkg/alias.py"]);
        } finally {
          await snap.dispose();
        }
      } finally {
        rmSync(clone, { recursive: true, force: true });
      }
    }));

  it("leaves out installed packages and caches HEAD does not hold, and sends a vendored directory HEAD holds", async () => {
    const repo = makeGitFixture({ "app/main.py": "def main():\n    pass\n", "web/node_modules/vendored/index.js": "module.exports = 1;\n" });
    const cache = mkdtempSync(join(tmpdir(), "codescout-snapcache-"));
    const put = (path: string, body: string) => {
      mkdirSync(join(repo.dir, path, ".."), { recursive: true });
      writeFileSync(join(repo.dir, path), body);
    };
    // A virtualenv under any name, a package manager's installs, a cache: none of it committed.
    put("env/pyvenv.cfg", "home = /usr/bin\n");
    put("env/lib/python3.11/site-packages/requests/__init__.py", "x = 1\n");
    put("env/bin/activate", "# venv\n");
    put("ui/node_modules/left/index.js", "module.exports = 2;\n");
    put("app/__pycache__/main.cpython-311.pyc", "\0\0");
    put("app/extra.py", "def extra():\n    pass\n");
    // Deeper down, found among the new files once git has read them.
    put("pkgs/ui/node_modules/dep/index.js", "module.exports = 4;\n");
    // An ignored virtualenv is nothing git would send: not named.
    put(".gitignore", "quiet/\n");
    put("quiet/pyvenv.cfg", "home = /usr/bin\n");
    // Nor one that ignores itself, as uv's do; nor one whose ignore line git alone can read.
    put("selfish/.gitignore", "*\n");
    put("selfish/pyvenv.cfg", "home = /usr/bin\n");
    put("srv/.gitignore", "[v]env/\n");
    put("srv/venv/pyvenv.cfg", "home = /usr/bin\n");
    // A file the committed vendored directory gains goes with it.
    put("web/node_modules/vendored/more.js", "module.exports = 3;\n");
    // Links out of the tree are left out; the virtualenv's own goes with its directory, unnamed.
    symlinkSync("/usr/bin/python3", join(repo.dir, "env/bin/python3"));
    symlinkSync("/etc/passwd", join(repo.dir, "leak.txt"));
    const snap = await Snapshot.take(repo.dir, cache);
    try {
      // The virtualenv and node_modules near the top were never read into the scratch objects, only left out.
      for (const body of ["x = 1\n", "module.exports = 2;\n"]) {
        const blob = execFileSync("git", ["hash-object", "--stdin"], { input: body, encoding: "utf8" }).trim();
        expect(execFileSync("find", [cache, "-path", `*/${blob.slice(0, 2)}/${blob.slice(2)}`], { encoding: "utf8" }), body).toBe("");
      }
      expect(await snap.escapingLinks()).toEqual(["leak.txt"]);
      expect(await snap.leftOut()).toEqual([
        { path: "app/__pycache__/", files: 0, bytes: 0, why: "environment" },
        { path: "env/", files: 0, bytes: 0, why: "environment" },
        { path: "pkgs/ui/node_modules/", files: 1, bytes: 0, why: "environment" },
        { path: "ui/node_modules/", files: 0, bytes: 0, why: "environment" },
      ]);
      const patch = await snap.patch();
      expect(patch).toContain("+def extra():");
      expect(patch).toContain("web/node_modules/vendored/more.js");
      expect(patch).not.toMatch(/^diff --git a\/(env|ui\/node_modules|app\/__pycache__|pkgs|quiet|selfish|srv\/venv)\//m);
      expect(await archivedNames(snap)).toEqual([".gitignore", "app/extra.py", "app/main.py", "srv/.gitignore", "web/node_modules/vendored/index.js", "web/node_modules/vendored/more.js"]);
    } finally {
      await snap.dispose();
      rmSync(cache, { recursive: true, force: true });
      repo.cleanup();
    }
  });

  it("makes a patch of the blobs as stored, with the a/ b/ prefixes git apply takes, whatever the user's diff config", () =>
    withCheckout({ "secrets.env": "API_KEY=old-secret-123\n", "app.py": "x = 1\n" }, async (repo, cache) => {
      // A stand-in for git-crypt: its textconv shows plaintext where the blob holds something else.
      repo.git("config", "diff.fakecrypt.textconv", "sh -c 'echo DECRYPTED: $(cat \"$1\")' -");
      repo.git("config", "diff.noprefix", "true");
      writeFileSync(join(repo.dir, ".gitattributes"), "secrets.env diff=fakecrypt\n");
      repo.git("add", ".gitattributes");
      repo.git("commit", "-qm", "attributes");
      writeFileSync(join(repo.dir, "secrets.env"), "API_KEY=new-secret-456\n");
      writeFileSync(join(repo.dir, "app.py"), "x = 2\n");
      const snap = await Snapshot.take(repo.dir, cache);
      try {
        const patch = await snap.patch();
        expect(patch).not.toContain("DECRYPTED");
        expect(patch).toContain("diff --git a/app.py b/app.py");
        // It applies where the service applies it: on the commit's tree, as git apply --cached does by default.
        const env = { ...process.env, GIT_INDEX_FILE: join(cache, "check-index") };
        execFileSync("git", ["read-tree", "HEAD"], { cwd: repo.dir, env });
        execFileSync("git", ["apply", "--cached", "--check", "-"], { cwd: repo.dir, input: patch, env });
      } finally {
        await snap.dispose();
      }
    }));

  it("remembers trees from calls at once in one process (an agent's parallel calls)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "codescout-treecache-"));
    try {
      const summary = { sha256: "a".repeat(64), files: 1, bytes: 1 };
      await Promise.all(Array.from({ length: 8 }, (_, i) => new TreeCache(dir).put(`tree${i}`, summary)));
      expect(readdirSync(dir).filter((n) => n.endsWith(".tmp"))).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("fails the archive, rather than ending it after the files before, when git cannot read one", () =>
    withCheckout({ "keep.py": "K = 1\n" }, async (repo, cache) => {
      for (let i = 0; i < 50; i++) writeFileSync(join(repo.dir, `f${String(i).padStart(2, "0")}.txt`), `file ${i}\n`);
      const snap = await Snapshot.take(repo.dir, cache);
      try {
        // One untracked file's object, in the snapshot's own objects, gone after the tree was
        // written and before the archive is made.
        await snap.treeId();
        const blob = execFileSync("git", ["hash-object", join(repo.dir, "f30.txt")], { encoding: "utf8" }).trim();
        execFileSync("find", [cache, "-path", `*/objects-*/${blob.slice(0, 2)}/${blob.slice(2)}`, "-delete"]);
        const stream = await snap.archive(false);
        let bytes = 0;
        const read = (async () => {
          for await (const chunk of stream) bytes += (chunk as Buffer).length;
        })();
        await expect(read).rejects.toThrow(/git archive could not read the checkout/);
        expect(bytes).toBeGreaterThan(0);
      } finally {
        await snap.dispose();
      }
    }));

  it("archives the tree it captured, as it is in git: export-ignore, filters and edits made since change nothing", () =>
    withCheckout({ "m/a.py": "A = 1\n", "tests/test_a.py": "def test_a():\n    pass\n" }, async (repo, cache) => {
      // Release archives often leave the tests out; a filter (Git LFS's, here one that fails) would run.
      writeFileSync(join(repo.dir, ".gitattributes"), "tests/** export-ignore\n*.py filter=boom\n");
      repo.git("config", "filter.boom.smudge", "false");
      repo.git("config", "filter.boom.clean", "cat");
      repo.git("config", "filter.boom.required", "true");
      writeFileSync(join(repo.dir, "m", "a.py"), "A = 2\n");
      const snap = await Snapshot.take(repo.dir, cache);
      try {
        await snap.treeId();
        writeFileSync(join(repo.dir, "m", "a.py"), "A = 3\n");
        expect(await archivedNames(snap)).toEqual([".gitattributes", "m/a.py", "tests/test_a.py"]);
        expect(await tarOutput(snap, ["-xO", "-f", "-", "m/a.py"], true)).toBe("A = 2\n");
      } finally {
        await snap.dispose();
      }
    }));

  it("keeps the last tree sent as a base for patches after the user's index changes and the old scratch set is dropped", () =>
    withCheckout({ "m/a.py": "A = 1\n" }, async (repo, cache) => {
      // The tree sent: an edit and an untracked file, neither in the repository's own objects.
      writeFileSync(join(repo.dir, "m", "a.py"), "A = 2\n");
      writeFileSync(join(repo.dir, "m", "new.py"), "def sent():\n    pass\n");
      const first = await Snapshot.take(repo.dir, cache);
      const sent = await first.treeId();
      await first.keepTree(sent);
      await first.dispose();
      const sets = join(cache, "snapshots", readdirSync(join(cache, "snapshots"))[0]!);
      const scratchSets = () => readdirSync(sets).filter((n) => /^(objects|index)-[0-9a-f]+$/.test(n));
      const before = scratchSets();

      // Edited further, then a commit of another tree: the user's index changed, so a new set starts.
      writeFileSync(join(repo.dir, "m", "a.py"), "A = 3\n");
      repo.commit({});
      writeFileSync(join(repo.dir, "m", "b.py"), "def after():\n    pass\n");
      const later = await Snapshot.take(repo.dir, cache);
      try {
        // What dropStale does to the old set ten minutes on.
        for (const n of before) rmSync(join(sets, n), { recursive: true, force: true });
        expect(scratchSets().some((n) => before.includes(n))).toBe(false);
        const patch = await later.changesSince(sent);
        expect(patch).toContain("-A = 2");
        expect(patch).toContain("+A = 3");
        expect(patch).toContain("+def after():");
        expect(patch).not.toContain("+def sent():");
        // The kept set is what the patch was made from: a blob of it gone, the tree is sent whole instead.
        const blob = execFileSync("git", ["hash-object", "--stdin"], { input: "A = 2\n", encoding: "utf8" }).trim();
        rmSync(join(sets, "objects-kept", blob.slice(0, 2), blob.slice(2)));
        expect(await later.changesSince(sent)).toBeNull();
        rmSync(join(sets, "objects-kept"), { recursive: true, force: true });
        expect(await later.changesSince(sent)).toBeNull();
      } finally {
        await later.dispose();
      }
    }));

  it("does the same in a linked worktree, whose .git is a file", async () => {
    execFileSync("git", ["worktree", "add", "-q", "--detach", worktree], { cwd: fx.dir });
    writeFileSync(join(worktree, "pkg", "c.py"), "def in_worktree():\n    pass\n");
    const { patch, indexUntouched } = await capture(worktree);
    expect(patch).toContain("+def in_worktree():");
    expect(patch).not.toContain("only_here");
    expect(indexUntouched).toBe(true);
  });
});
