import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RepoCache } from "../../src/repos/cache.js";
import { HostGuard } from "../../src/queue/hostPolicy.js";
import { makeGitFixture, type GitFixture } from "../helpers/gitFixture.js";
import { removeCacheDir } from "../helpers/tempDirs.js";
import { startGitHttpServer, type GitHttpServer } from "../helpers/gitHttp.js";

/**
 * A private repository behind HTTP Basic auth (git's own http-backend): the token opens it,
 * reaches git only through the environment, never lands in the mirror's config, and a later
 * request without valid credentials is not served from the cache.
 */
const TOKEN = "s3cret-token-value";
let server: GitHttpServer;
let url: string;
let fx: GitFixture;
let root: string;
const dirs: string[] = [];

beforeAll(async () => {
  fx = makeGitFixture();
  root = mkdtempSync(join(tmpdir(), "codescout-private-"));
  execFileSync("git", ["clone", "-q", "--bare", fx.dir, join(root, "repo.git")]);
  server = await startGitHttpServer({ root, auth: `Basic ${Buffer.from(`x-access-token:${TOKEN}`).toString("base64")}` });
  url = server.url();
});

afterAll(async () => {
  await server.close();
  fx.cleanup();
  rmSync(root, { recursive: true, force: true });
  for (const d of dirs) removeCacheDir(d);
});

const newCache = () => {
  const dir = mkdtempSync(join(tmpdir(), "codescout-private-cache-"));
  dirs.push(dir);
  // The server is on loopback and speaks http: this test's deployment allows both.
  return new RepoCache({ dir, allowFileUrls: false, allowHttpUrls: true, hosts: new HostGuard({ allowedHosts: [], allowPrivate: true }) });
};

describe("private repositories", () => {
  it("are fetched with the token, which stays out of the mirror, and are not served without it", async () => {
    // A wrong token on the first clone is said to be refused, not missing.
    await expect(newCache().prepare({ url, commit: fx.commits[0]!, token: "wrong-token-value" })).rejects.toMatchObject({ message: expect.stringContaining("the remote refused them") });
    const cache = newCache();
    // Said as what it is, and what to send, not as git's prompt that could not be shown.
    const refused = await cache.prepare({ url, commit: fx.commits[0]! }).catch((err: Error) => err);
    expect(refused).toMatchObject({ reason: "fetch_failed", message: expect.stringContaining("the remote asks for credentials, and none were sent: give repo.token, or set GIT_CREDENTIALS for 127.0.0.1 on the workers") });

    const tree = await cache.prepare({ url, commit: fx.commits[0]!, token: TOKEN });
    expect(readFileSync(join(tree.treePath, "pkg/util.py"), "utf8")).toContain("def helper");
    // grep exits 1 when nothing on disk holds the token.
    const found = (() => {
      try {
        return execFileSync("grep", ["-rl", TOKEN, cache.dir], { encoding: "utf8" });
      } catch {
        return "";
      }
    })();
    expect(found).toBe("");

    // The tree is cached, yet a request without (or with wrong) credentials is refused, in the
    // words it was refused in before anyone fetched it: they do not tell that some other key did.
    await expect(cache.prepare({ url, commit: fx.commits[0]! })).rejects.toMatchObject({ reason: "fetch_failed", message: (refused as Error).message });
    await expect(cache.prepare({ url, commit: fx.commits[0]!, token: "wrong" })).rejects.toMatchObject({ reason: "fetch_failed", message: expect.stringContaining("the remote refused them") });
    expect((await cache.prepare({ url, commit: fx.commits[0]!, token: TOKEN })).cache).toBe("hot");
  });

  it("are not served from a cached tree once their mirror is gone, where the mark that asks for credentials was kept", async () => {
    const cache = newCache();
    await cache.prepare({ url, commit: fx.commits[0]!, token: TOKEN });
    // The mirror budget removes an idle mirror whole; the tree made from it stays in its own cache.
    const mirrors = join(cache.dir, "mirrors");
    for (const name of readdirSync(mirrors).filter((n) => n.endsWith(".git"))) rmSync(join(mirrors, name), { recursive: true, force: true });

    await expect(cache.prepare({ url, commit: fx.commits[0]! })).rejects.toMatchObject({ reason: "fetch_failed" });
    const again = await cache.prepare({ url, commit: fx.commits[0]!, token: TOKEN });
    expect(again.cache).toBe("cold");
    expect(readFileSync(join(again.treePath, "pkg/util.py"), "utf8")).toContain("def helper");
  });
});
