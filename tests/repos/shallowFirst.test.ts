import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RepoCache } from "../../src/repos/cache.js";
import { HostGuard } from "../../src/queue/hostPolicy.js";
import { makeGitFixture, type GitFixture } from "../helpers/gitFixture.js";
import { removeCacheDir } from "../helpers/tempDirs.js";
import { startGitHttpServer, type GitHttpServer } from "../helpers/gitHttp.js";

/**
 * A repository's first clone that takes long (a large history) does not hold its first jobs:
 * they are answered from their commit alone, fetched shallow, while the clone goes on; what a
 * job reads from the history waits for the clone. The remote is git's own http-backend, whose
 * clone is held back by the test (the pack request of a fetch that is not shallow) until it
 * lets it go.
 */
const TOKEN = "s3cret-token-value";
let fx: GitFixture;
let root: string;
let servers: GitHttpServer[] = [];
const dirs: string[] = [];

beforeAll(() => {
  fx = makeGitFixture();
  fx.commit({ "pkg/util.py": "def helper():\n    return 43\n" }, "Fixed #4242 -- helper returns the right answer");
  fx.commit({ "pkg/extra.py": "def extra():\n    return 1\n" }, "add extra");
  root = mkdtempSync(join(tmpdir(), "codescout-shallow-"));
  execFileSync("git", ["clone", "-q", "--bare", fx.dir, join(root, "repo.git")]);
  // As GitHub does: a commit is served by its sha, not only the branches' tips.
  execFileSync("git", ["--git-dir", join(root, "repo.git"), "config", "uploadpack.allowReachableSHA1InWant", "true"]);
});

afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
  fx.cleanup();
  rmSync(root, { recursive: true, force: true });
  for (const d of dirs) removeCacheDir(d);
});

/** A server whose clones wait for `release()`; shallow fetches and everything else go through. */
async function setup(options: { auth?: boolean; shallowAfterMs?: number; maxMirrorBytes?: number; diskShortInClone?: boolean } = {}) {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let clones = 0;
  let diskShortSeen = false;
  const server = await startGitHttpServer({
    root,
    ...(options.auth ? { auth: `Basic ${Buffer.from(`x-access-token:${TOKEN}`).toString("base64")}` } : {}),
    // A shallow fetch asks for "deepen 1"; a clone only lists the capability ("deepen-since").
    hold: ({ body }) => (body.includes("want ") && !/deepen \d/.test(body) ? (clones++, released) : undefined),
  });
  servers.push(server);
  const dir = mkdtempSync(join(tmpdir(), "codescout-shallow-cache-"));
  dirs.push(dir);
  // The server is on loopback and speaks http: this test's deployment allows both.
  const cache = new RepoCache({
    dir,
    allowFileUrls: false,
    allowHttpUrls: true,
    hosts: new HostGuard({ allowedHosts: [], allowPrivate: true }),
    shallowAfterMs: options.shallowAfterMs ?? 100,
    // Measured every 300 ms: the clone has asked for its pack (and is held) by the first look.
    ...(options.maxMirrorBytes !== undefined ? { maxMirrorBytes: options.maxMirrorBytes, mirrorWatchEveryMs: 300 } : {}),
    // The disk is short of its floor once, at the first look while the clone is held; plenty after.
    ...(options.diskShortInClone ? { mirrorWatchEveryMs: 300, mirrorFreeBytes: () => (clones > 0 && !diskShortSeen ? ((diskShortSeen = true), 0) : 2 ** 50) } : {}),
  });
  const mirrors = () => readdirSync(join(dir, "mirrors"));
  return { url: server.url(), cache, release, mirrors, clones: () => clones };
}

/** Resolves to "pending" when `p` has not settled within `ms`. */
const within = <T>(p: Promise<T>, ms: number) => Promise.race([p, new Promise<"pending">((r) => setTimeout(() => r("pending"), ms))]);

describe("a repository's first clone that takes long", () => {
  it("answers the first jobs from their commits alone while it runs; the history waits for it, and later jobs use the mirror", async () => {
    const { url, cache, release, mirrors } = await setup();
    const [first, second, third] = fx.commits as [string, string, string];

    const tree = await cache.prepare({ url, commit: third });
    expect(tree).toMatchObject({ sha: third, cache: "cold" });
    expect(readFileSync(join(tree.treePath, "pkg/util.py"), "utf8")).toBe("def helper():\n    return 43\n");
    expect(readFileSync(join(tree.treePath, "pkg/extra.py"), "utf8")).toBe("def extra():\n    return 1\n");
    // Still cloning: no mirror in place, and the shallow repository the tree came from is gone.
    expect(mirrors().filter((n) => n.endsWith(".git"))).toEqual([]);
    expect(mirrors().filter((n) => n.includes("seed"))).toEqual([]);

    // Another commit, by branch name, the same way meanwhile.
    const byRef = await cache.prepare({ url, commit: "main" });
    expect(byRef.sha).toBe(third);

    // The history an issue points into is the clone's: the answer waits for it, up to the job's bound.
    expect(await cache.namedCommits(tree, ["#4242"], undefined, { waitUntil: performance.now() + 200 })).toEqual([]);
    const named = cache.namedCommits(tree, ["#4242"]);
    expect(await within(named, 300)).toBe("pending");
    release();
    expect(await named).toEqual([{ ref: "#4242", sha: second, files: ["pkg/util.py"], defs: [{ file: "pkg/util.py", name: "helper" }] }]);

    expect(mirrors().filter((n) => n.endsWith(".git"))).toHaveLength(1);
    expect((await cache.prepare({ url, commit: first })).cache).toBe("warm");
    expect((await cache.prepare({ url, commit: third })).cache).toBe("hot");
    await tree.release();
  });

  it("applies an agent's patch on its commit fetched alone, as coding agents send their working trees", async () => {
    const { url, cache, release } = await setup();
    const patch = [
      "diff --git a/pkg/extra.py b/pkg/extra.py",
      "--- a/pkg/extra.py",
      "+++ b/pkg/extra.py",
      "@@ -1,2 +1,5 @@",
      " def extra():",
      "     return 1",
      "+",
      "+def only_in_the_edit():",
      "+    return 2",
      "",
    ].join("\n");
    const tree = await cache.prepare({ url, commit: fx.commits[2]!, patch });
    expect(tree).toMatchObject({ sha: fx.commits[2], cache: "cold" });
    expect(readFileSync(join(tree.treePath, "pkg/extra.py"), "utf8")).toBe("def extra():\n    return 1\n\ndef only_in_the_edit():\n    return 2\n");
    expect(readFileSync(join(tree.treePath, "pkg/util.py"), "utf8")).toBe("def helper():\n    return 43\n");
    release();
  });

  it("makes a commit the remote will not give by itself (`main~1`) wait for the clone", async () => {
    const { url, cache, release } = await setup();
    const waiting = cache.prepare({ url, commit: "main~1" });
    expect(await within(waiting, 500)).toBe("pending");
    release();
    const tree = await waiting;
    expect(tree).toMatchObject({ sha: fx.commits[1], cache: "cold" });
  });

  it("waits for the clone, as before, where shallowAfterMs is Infinity", async () => {
    const { url, cache, release, mirrors } = await setup({ shallowAfterMs: Infinity });
    const waiting = cache.prepare({ url, commit: fx.commits[0]! });
    expect(await within(waiting, 500)).toBe("pending");
    release();
    expect(await waiting).toMatchObject({ sha: fx.commits[0], cache: "cold" });
    expect(mirrors().filter((n) => n.endsWith(".git"))).toHaveLength(1);
  });

  it("serves a private repository's commit, fetched shallow, only to a request whose own credentials read it, during the clone and after", async () => {
    const { url, cache, release, mirrors } = await setup({ auth: true });
    const tree = await cache.prepare({ url, commit: fx.commits[2]!, token: TOKEN });
    expect(readFileSync(join(tree.treePath, "pkg/extra.py"), "utf8")).toContain("def extra");

    // Without credentials: refused, though the tree is there and the clone (with the token) is coming.
    const refused = cache.prepare({ url, commit: fx.commits[2]! });
    release();
    await expect(refused).rejects.toMatchObject({ reason: "fetch_failed" });
    const mirror = mirrors().find((n) => n.endsWith(".git"))!;
    expect(existsSync(join(cache.dir, "mirrors", mirror, "codescout-private"))).toBe(true);
    await expect(cache.prepare({ url, commit: fx.commits[2]! })).rejects.toMatchObject({ reason: "fetch_failed" });
    await expect(cache.prepare({ url, commit: fx.commits[2]!, token: "wrong" })).rejects.toMatchObject({ reason: "fetch_failed" });
    expect((await cache.prepare({ url, commit: fx.commits[2]!, token: TOKEN })).cache).toBe("hot");
  });

  it("refuses a request without credentials that came while a token's clone of a private repository was running, once it lands (the clone waited for)", async () => {
    const { url, cache, release } = await setup({ auth: true, shallowAfterMs: Infinity });
    const withToken = cache.prepare({ url, commit: fx.commits[2]!, token: TOKEN });
    const without = cache.prepare({ url, commit: fx.commits[2]! });
    expect(await within(Promise.race([withToken, without.catch((e: unknown) => e)]), 300)).toBe("pending");
    release();
    expect((await withToken).sha).toBe(fx.commits[2]);
    await expect(without).rejects.toMatchObject({ reason: "fetch_failed" });
  });

  it("stops a clone nobody waits on when the cache closes, leaving no half-made mirror", async () => {
    const { url, cache, release, mirrors } = await setup();
    const tree = await cache.prepare({ url, commit: fx.commits[2]! });
    expect(mirrors().filter((n) => n.includes(".tmp-"))).toHaveLength(1);
    // The clone is held by the server until after the close: only the close ends it.
    await cache.close();
    expect(mirrors()).toEqual([]);
    release();
    expect(readFileSync(join(tree.treePath, "pkg/extra.py"), "utf8")).toContain("def extra");
  });

  it("answers a repository larger than the mirror budget from each commit alone, without cloning it again for each job", async () => {
    // One byte: the clone (held) is stopped at the budget's first look.
    const { url, cache, release, mirrors, clones } = await setup({ maxMirrorBytes: 1 });
    const first = await cache.prepare({ url, commit: fx.commits[2]! });
    expect(readFileSync(join(first.treePath, "pkg/extra.py"), "utf8")).toContain("def extra");
    // The history never comes: an issue's commits are answered without it, once the clone has been stopped.
    expect(await cache.namedCommits(first, ["#4242"])).toEqual([]);
    expect(clones()).toBe(1);
    expect(mirrors()).toEqual([]);

    const second = await cache.prepare({ url, commit: fx.commits[1]! });
    expect(second).toMatchObject({ sha: fx.commits[1], cache: "cold" });
    expect(readFileSync(join(second.treePath, "pkg/util.py"), "utf8")).toBe("def helper():\n    return 43\n");
    expect(clones()).toBe(1);
    // What only a mirror could resolve is refused, saying what to send instead.
    await expect(cache.prepare({ url, commit: "main~1" })).rejects.toMatchObject({ reason: "fetch_failed", message: expect.stringMatching(/larger than the mirror budget.*full sha, a branch or a tag/) });
    release();
  });

  it("answers a repository whose clone left the disk short of its floor from each commit alone, the job that waited for the clone too, without cloning it again for each job", async () => {
    // The job waits for its clone (no shallow start); the floor stops the clone at its first look.
    const { url, cache, release, mirrors, clones } = await setup({ shallowAfterMs: Infinity, diskShortInClone: true });
    const first = await cache.prepare({ url, commit: fx.commits[2]! });
    expect(first).toMatchObject({ sha: fx.commits[2], cache: "cold" });
    expect(readFileSync(join(first.treePath, "pkg/extra.py"), "utf8")).toContain("def extra");
    expect(await cache.namedCommits(first, ["#4242"])).toEqual([]);
    expect(mirrors()).toEqual([]);

    // The disk has room again, but the next jobs do not start another clone that may fill it.
    const second = await cache.prepare({ url, commit: fx.commits[1]! });
    expect(readFileSync(join(second.treePath, "pkg/util.py"), "utf8")).toBe("def helper():\n    return 43\n");
    expect(clones()).toBe(1);
    await expect(cache.prepare({ url, commit: "main~1" })).rejects.toMatchObject({ reason: "fetch_failed", message: expect.stringMatching(/the disk has no room for .*'s history.*full sha, a branch or a tag/) });
    expect(clones()).toBe(1);
    release();
  });
});
