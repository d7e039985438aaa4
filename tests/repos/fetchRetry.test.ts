import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RepoCache } from "../../src/repos/cache.js";
import { HostGuard } from "../../src/queue/hostPolicy.js";
import { makeGitFixture, type GitFixture } from "../helpers/gitFixture.js";
import { removeCacheDir } from "../helpers/tempDirs.js";
import { startGitHttpServer, type GitHttpFault, type GitHttpServer } from "../helpers/gitHttp.js";

/**
 * A remote having a bad minute (git's own http-backend behind a server that answers some
 * requests with an error, or cuts them off): what it may not do again is tried again, what it
 * will always answer the same (no such repository) is not, and a clone cut short leaves
 * nothing behind.
 */
let fx: GitFixture;
let root: string;
const servers: GitHttpServer[] = [];
const dirs: string[] = [];

beforeAll(() => {
  fx = makeGitFixture();
  root = mkdtempSync(join(tmpdir(), "codescout-retry-"));
  execFileSync("git", ["clone", "-q", "--bare", fx.dir, join(root, "repo.git")]);
});

afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
  fx.cleanup();
  rmSync(root, { recursive: true, force: true });
  for (const d of dirs) removeCacheDir(d);
});

async function setup(fault: (index: number, request: { method: string; url: string }) => GitHttpFault) {
  const server = await startGitHttpServer({ root, fault });
  servers.push(server);
  const dir = mkdtempSync(join(tmpdir(), "codescout-retry-cache-"));
  dirs.push(dir);
  const retries: Array<{ attempt: number; retriesLeft: number; error: string }> = [];
  // The server is on loopback and speaks http: this test's deployment allows both.
  const cache = new RepoCache({
    dir,
    allowFileUrls: false,
    allowHttpUrls: true,
    hosts: new HostGuard({ allowedHosts: [], allowPrivate: true }),
    gitRetries: { retries: 2, minTimeoutMs: 20 },
    onGitRetry: ({ attempt, retriesLeft, error }) => retries.push({ attempt, retriesLeft, error }),
  });
  return { server, cache, retries, mirrors: () => readdirSync(join(dir, "mirrors")) };
}

const uploadPacks = (s: GitHttpServer) => s.requests.filter((r) => r.method === "POST" && r.url.endsWith("/git-upload-pack")).length;

describe("a remote that fails for a moment", () => {
  it("is cloned once it answers again: a 502, then a 503, then the clone", async () => {
    const { server, cache, retries, mirrors } = await setup((i) => (i === 0 ? 502 : i === 1 ? 503 : undefined));
    const tree = await cache.prepare({ url: server.url(), commit: fx.commits[0]! });
    expect(tree.cache).toBe("cold");
    expect(readFileSync(join(tree.treePath, "pkg/util.py"), "utf8")).toContain("def helper");
    expect(retries.map((r) => [r.attempt, r.retriesLeft])).toEqual([
      [1, 2],
      [2, 1],
    ]);
    expect(retries[0]!.error).toContain("returned error: 502");
    expect(mirrors().filter((n) => n.includes(".tmp-"))).toEqual([]);
  });

  it("is cloned again from the start when the pack is cut off halfway, and the half-made clone is removed", async () => {
    let cut = 0;
    const { server, cache, retries, mirrors } = await setup((_, r) => (r.method === "POST" && cut++ === 0 ? "cut" : undefined));
    const tree = await cache.prepare({ url: server.url(), commit: fx.commits[0]! });
    expect(readFileSync(join(tree.treePath, "pkg/parser.py"), "utf8")).toContain("class Parser");
    expect(retries).toHaveLength(1);
    expect(uploadPacks(server)).toBe(2);
    expect(mirrors().filter((n) => n.includes(".tmp-"))).toEqual([]);
  });

  it("is fetched from again when a commit the mirror lacks meets an error", async () => {
    // Two failures: the fetch of the one commit, then of the branches it falls back to.
    let failing = 0;
    const { server, cache, retries } = await setup((_, r) => (failing > 0 && r.method === "GET" ? (failing--, 502) : undefined));
    await cache.prepare({ url: server.url(), commit: fx.commits[0]! });
    const newer = fx.commit({ "pkg/new.py": "def added():\n    return 1\n" }, "a newer commit");
    execFileSync("git", ["push", "-q", join(root, "repo.git"), "HEAD:refs/heads/main", "--force"], { cwd: fx.dir });
    failing = 2;
    const tree = await cache.prepare({ url: server.url(), commit: newer });
    expect(tree.sha).toBe(newer);
    expect(existsSync(join(tree.treePath, "pkg/new.py"))).toBe(true);
    expect(retries).toHaveLength(1);
    expect(retries[0]!.error).toContain("returned error: 502");
  });

  it("fails after the retries when it keeps failing, saying how", async () => {
    const { server, cache, retries, mirrors } = await setup(() => 503);
    await expect(cache.prepare({ url: server.url(), commit: fx.commits[0]! })).rejects.toMatchObject({
      reason: "fetch_failed",
      message: expect.stringContaining("returned error: 503"),
    });
    expect(server.requests).toHaveLength(3);
    expect(retries).toHaveLength(2);
    expect(mirrors().filter((n) => n.includes(".tmp-"))).toEqual([]);
  });
});

describe("a private repository's remote failing", () => {
  it("is not taken for wrong credentials", async () => {
    const token = "retry-token";
    let down = false;
    const server = await startGitHttpServer({ root, auth: `Basic ${Buffer.from(`x-access-token:${token}`).toString("base64")}`, fault: () => (down ? 503 : undefined) });
    servers.push(server);
    const dir = mkdtempSync(join(tmpdir(), "codescout-retry-cache-"));
    dirs.push(dir);
    const cache = new RepoCache({ dir, allowFileUrls: false, allowHttpUrls: true, hosts: new HostGuard({ allowedHosts: [], allowPrivate: true }), gitRetries: { retries: 1, minTimeoutMs: 20 } });
    await cache.prepare({ url: server.url(), commit: fx.commits[0]!, token });
    // The tree is cached, but a private mirror's credentials are checked against the remote each time.
    down = true;
    const before = server.requests.length;
    const err = await cache.prepare({ url: server.url(), commit: fx.commits[0]!, token }).catch((e: Error) => e);
    expect(err).toMatchObject({ reason: "fetch_failed", message: expect.stringMatching(/^could not reach .*returned error: 503/) });
    expect(server.requests.length - before).toBe(2);
  });
});

describe("a remote that answers the same every time", () => {
  it("is asked once: no such repository", async () => {
    const { server, cache, retries } = await setup(() => undefined);
    await expect(cache.prepare({ url: server.url("missing.git"), commit: fx.commits[0]! })).rejects.toMatchObject({ reason: "fetch_failed" });
    expect(server.requests).toHaveLength(1);
    expect(retries).toEqual([]);
  });

  it("is asked once: 403", async () => {
    const { server, cache, retries } = await setup(() => 403);
    await expect(cache.prepare({ url: server.url(), commit: fx.commits[0]! })).rejects.toMatchObject({ reason: "fetch_failed" });
    expect(server.requests).toHaveLength(1);
    expect(retries).toEqual([]);
  });
});
