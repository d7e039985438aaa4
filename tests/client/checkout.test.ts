import { afterAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CheckoutError, describeCheckout, ignoredBy, serviceUrlOf, uploadCheckout } from "../../src/client/checkout.js";
import { ServiceClient } from "../../src/client/service.js";
import { Snapshot, TreeCache } from "../../src/client/snapshot.js";

/**
 * Which remote the service is told to fetch a checkout's HEAD from: real git repositories made
 * here, with remotes that do and do not hold HEAD.
 */
const root = mkdtempSync(join(tmpdir(), "codescout-checkout-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const g = (cwd: string, ...args: string[]) =>
  execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@localhost", "-c", "init.defaultBranch=main", ...args], { cwd, encoding: "utf8" }).trim();

/** A bare "upstream" with one commit, and a clone of it whose origin is that upstream. */
function cloned(name: string): { upstream: string; clone: string } {
  const seed = join(root, `${name}-seed`);
  mkdirSync(seed, { recursive: true });
  g(seed, "init", "-q");
  writeFileSync(join(seed, "a.py"), "def f():\n    return 1\n");
  g(seed, "add", "-A");
  g(seed, "commit", "-qm", "one");
  const upstream = join(root, `${name}-upstream.git`);
  g(root, "clone", "-q", "--bare", seed, upstream);
  const clone = join(root, `${name}-clone`);
  g(root, "clone", "-q", upstream, clone);
  return { upstream, clone };
}

/** A commit made in the clone only: no remote holds it yet. */
function commitLocally(clone: string): void {
  writeFileSync(join(clone, "b.py"), "x = 1\n");
  g(clone, "add", "-A");
  g(clone, "commit", "-qm", "local");
}

describe("ignoredBy", () => {
  it("names the rule that leaves a directory out, and none for one a `!` rule takes back or holding files git tracks", async () => {
    const { clone } = cloned("ignored");
    writeFileSync(join(clone, ".gitignore"), "build/\ngen*\n!generated_src\n");
    for (const dir of ["build/out", "generated_src", "gen_cache", "build/kept"]) mkdirSync(join(clone, dir), { recursive: true });
    for (const file of ["build/out/a.py", "generated_src/q.py", "gen_cache/c.py", "build/kept/k.py"]) writeFileSync(join(clone, file), "X = 1\n");
    g(clone, "add", "-f", "build/kept/k.py");
    expect(await ignoredBy(clone, "build/out")).toBe(".gitignore:1:build/");
    expect(await ignoredBy(clone, "gen_cache")).toBe(".gitignore:2:gen*");
    expect(await ignoredBy(clone, "generated_src")).toBeNull();
    expect(await ignoredBy(clone, "build/kept")).toBeNull();
  });
});

describe("describeCheckout", () => {
  it("names origin when its branch holds HEAD, uncommitted edits or not", async () => {
    const { upstream, clone } = cloned("plain");
    writeFileSync(join(clone, "a.py"), "def f():\n    return 2\n");
    const c = await describeCheckout(clone);
    expect(c.root).toBe(clone);
    expect(c.head).toBe(g(clone, "rev-parse", "HEAD"));
    expect(c.remoteUrl).toBe(`file://${upstream}`);
    expect(c.base).toBe(c.head);
  });

  it("names an ssh remote by its https form, as the service reads it, without the login or the port", async () => {
    const { clone } = cloned("ssh");
    for (const [url, https] of [
      ["git@example.com:team/app.git", "https://example.com/team/app.git"],
      ["ssh://deploy@example.com:2222/team/app.git", "https://example.com/team/app.git"],
    ]) {
      g(clone, "remote", "set-url", "origin", url!);
      expect((await describeCheckout(clone)).remoteUrl, url).toBe(https);
    }
    // A short name git's url.<base>.insteadOf expands (the longest that fits), as git itself fetches it.
    g(clone, "config", "url.https://example.com/.insteadOf", "ex:");
    g(clone, "config", "url.https://example.com/mirror/.insteadOf", "ex:team/");
    g(clone, "remote", "set-url", "origin", "ex:team/app.git");
    expect((await describeCheckout(clone)).remoteUrl).toBe("https://example.com/mirror/app.git");
  });

  it("names where HEAD's own commits begin once it has commits no remote holds, and no remote once none holds any of its past", async () => {
    const { upstream, clone } = cloned("ahead");
    const pushed = g(clone, "rev-parse", "HEAD");
    commitLocally(clone);
    writeFileSync(join(clone, "c.py"), "y = 2\n");
    g(clone, "add", "-A");
    g(clone, "commit", "-qm", "local too");
    const c = await describeCheckout(clone);
    expect(c.head).toBe(g(clone, "rev-parse", "HEAD"));
    expect(c).toMatchObject({ remoteUrl: `file://${upstream}`, base: pushed });
    // The same with no upstream set (a branch made locally): origin's default branch says it.
    g(clone, "checkout", "-q", "-b", "topic");
    expect(await describeCheckout(clone)).toMatchObject({ remoteUrl: `file://${upstream}`, base: pushed });
    // A history of its own (an orphan branch): nothing a remote holds.
    g(clone, "checkout", "-q", "--orphan", "alone");
    g(clone, "commit", "-qm", "alone");
    expect(await describeCheckout(clone)).toMatchObject({ remoteUrl: null, base: null });
  });

  it("prefers origin when the branch tracks another remote that holds HEAD too", async () => {
    const { upstream, clone } = cloned("fork");
    const fork = join(root, "fork-other.git");
    g(root, "clone", "-q", "--bare", upstream, fork);
    g(clone, "remote", "add", "mine", fork);
    g(clone, "fetch", "-q", "mine");
    g(clone, "branch", "-q", "--set-upstream-to", "mine/main");
    const c = await describeCheckout(clone);
    expect(c.remoteUrl).toBe(`file://${upstream}`);
  });

  it("names the remote that holds HEAD when origin does not, whatever the branch tracks", async () => {
    const { clone } = cloned("pushed");
    commitLocally(clone);
    const fork = join(root, "pushed-fork.git");
    g(root, "init", "-q", "--bare", fork);
    g(clone, "remote", "add", "mine", fork);
    g(clone, "push", "-q", "mine", "main");
    g(clone, "fetch", "-q", "mine");
    const c = await describeCheckout(clone);
    expect(c.remoteUrl).toBe(`file://${fork}`);
  });

  it("finds origin's commit from a detached HEAD with no upstream", async () => {
    const { upstream, clone } = cloned("detached");
    g(clone, "checkout", "-q", "--detach", "HEAD");
    const c = await describeCheckout(clone);
    expect(c.remoteUrl).toBe(`file://${upstream}`);
  });

  it("answers a repository with no commit yet, and refuses a directory outside git", async () => {
    const empty = join(root, "empty");
    mkdirSync(empty, { recursive: true });
    g(empty, "init", "-q");
    const c = await describeCheckout(empty);
    expect(c).toMatchObject({ root: empty, head: null, remoteUrl: null });
    const outside = mkdtempSync(join(tmpdir(), "codescout-nogit-"));
    try {
      await expect(describeCheckout(outside)).rejects.toThrow(new CheckoutError(`${outside} is not inside a git work tree: give the git checkout of the project you work in as the path (git tells the files to send from those it ignores)`));
      // A mistyped path is named as such, not as a directory outside git.
      await expect(describeCheckout(join(outside, "missing"))).rejects.toThrow(new CheckoutError(`${join(outside, "missing")} does not exist`));
      writeFileSync(join(outside, "issue.md"), "x");
      await expect(describeCheckout(join(outside, "issue.md"))).rejects.toThrow(/issue\.md is not a directory/);
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });

  it("reads a remote written as a Windows path as a local one, not as host C", () => {
    expect(serviceUrlOf("C:/repos/upstream.git", "/work")).toBe("file:///C:/repos/upstream.git");
    expect(serviceUrlOf("D:\\src\\app.git", "/work")).toBe("file:///D:/src/app.git");
    expect(serviceUrlOf("git@github.com:team/app.git", "/work")).toBe("https://github.com/team/app.git");
  });

  it("says git could not be run, not that the directory is outside git, where the client has no git on its PATH", async () => {
    const empty = mkdtempSync(join(tmpdir(), "codescout-nopath-"));
    const saved = process.env.PATH;
    process.env.PATH = empty;
    try {
      await expect(describeCheckout(root)).rejects.toThrow(/^git could not be run here \(no git on this process's PATH\)/);
    } finally {
      process.env.PATH = saved;
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it("refuses a home directory made a repository, from anywhere in it: not a project, and its files are the user's", async () => {
    const home = join(root, "home");
    mkdirSync(join(home, "proj"), { recursive: true });
    g(home, "init", "-q");
    for (const dir of [home, join(home, "proj")]) {
      await expect(describeCheckout(dir, home)).rejects.toThrow(new CheckoutError(`${home} is your home directory, not a project's checkout: give the checkout you work in as the path`));
    }
    // The same directory is a checkout like any other for someone else.
    expect((await describeCheckout(home, join(root, "elsewhere-home"))).root).toBe(home);
  });
});

describe("uploadCheckout", () => {
  it("refuses a tree, or a directory of it, with nothing git would send, before asking the service anything", async () => {
    const dir = join(root, "nothing-to-send");
    mkdirSync(join(dir, "pkg"), { recursive: true });
    g(dir, "init", "-q");
    writeFileSync(join(dir, ".gitignore"), "*.log\npkg/\n");
    writeFileSync(join(dir, "pkg", "run.log"), "x\n");
    const cache = join(root, "nothing-cache");
    // Nothing listens on the discard port: a request would fail with another error.
    const client = new ServiceClient("http://127.0.0.1:9");
    const snap = await Snapshot.take(dir, cache);
    try {
      await expect(uploadCheckout(client, snap, () => undefined, new TreeCache(cache), "pkg")).rejects.toThrow(new CheckoutError("pkg/ holds no file git would send (tracked, or untracked and not ignored)"));
      rmSync(join(dir, ".gitignore"));
      writeFileSync(join(dir, ".git", "info", "exclude"), "*\n");
      const empty = await Snapshot.take(dir, cache);
      try {
        await expect(uploadCheckout(client, empty, () => undefined, new TreeCache(cache))).rejects.toThrow(new CheckoutError(`${dir} holds no file git would send (tracked, or untracked and not ignored)`));
      } finally {
        await empty.dispose();
      }
    } finally {
      await snap.dispose();
    }
  });
});
