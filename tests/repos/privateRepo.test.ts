import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { spawn, execFileSync } from "node:child_process";
import { createServer, type Server } from "node:http";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RepoCache } from "../../src/repos/cache.js";
import { HostGuard } from "../../src/queue/hostPolicy.js";
import { makeGitFixture, type GitFixture } from "../helpers/gitFixture.js";

/**
 * A private repository behind HTTP Basic auth (git's own http-backend): the token opens it,
 * reaches git only through the environment, never lands in the mirror's config, and a later
 * request without valid credentials is not served from the cache.
 */
const TOKEN = "s3cret-token-value";
let server: Server;
let url: string;
let fx: GitFixture;
let root: string;
const dirs: string[] = [];

beforeAll(async () => {
  fx = makeGitFixture();
  root = mkdtempSync(join(tmpdir(), "codescout-private-"));
  execFileSync("git", ["clone", "-q", "--bare", fx.dir, join(root, "repo.git")]);
  const expected = `Basic ${Buffer.from(`x-access-token:${TOKEN}`).toString("base64")}`;
  server = createServer((req, res) => {
    if (req.headers.authorization !== expected) {
      res.writeHead(401, { "www-authenticate": 'Basic realm="git"' }).end();
      return;
    }
    const [path = "", query = ""] = (req.url ?? "").split("?");
    const cgi = spawn("/usr/lib/git-core/git-http-backend", [], {
      env: {
        GIT_PROJECT_ROOT: root,
        GIT_HTTP_EXPORT_ALL: "1",
        PATH_INFO: path,
        QUERY_STRING: query,
        REQUEST_METHOD: req.method ?? "GET",
        CONTENT_TYPE: req.headers["content-type"] ?? "",
        REMOTE_USER: "x-access-token",
      },
    });
    req.pipe(cgi.stdin);
    let head = Buffer.alloc(0);
    let sent = false;
    cgi.stdout.on("data", (chunk: Buffer) => {
      if (sent) return void res.write(chunk);
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return;
      const headers: Record<string, string> = {};
      let status = 200;
      for (const line of head.subarray(0, end).toString().split("\r\n")) {
        const [k, ...v] = line.split(":");
        if (!k) continue;
        if (k.toLowerCase() === "status") status = Number(v.join(":").trim().split(" ")[0]);
        else headers[k] = v.join(":").trim();
      }
      res.writeHead(status, headers);
      res.write(head.subarray(end + 4));
      sent = true;
    });
    cgi.on("close", () => res.end());
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}/repo.git`;
});

afterAll(() => {
  server.close();
  fx.cleanup();
  rmSync(root, { recursive: true, force: true });
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const newCache = () => {
  const dir = mkdtempSync(join(tmpdir(), "codescout-private-cache-"));
  dirs.push(dir);
  // The server is on loopback and speaks http: this test's deployment allows both.
  return new RepoCache({ dir, allowFileUrls: false, allowHttpUrls: true, hosts: new HostGuard({ allowedHosts: [], allowPrivate: true }) });
};

describe("private repositories", () => {
  it("are fetched with the token, which stays out of the mirror, and are not served without it", async () => {
    const cache = newCache();
    await expect(cache.prepare({ url, commit: fx.commits[0]! })).rejects.toMatchObject({ reason: "fetch_failed" });

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

    // The tree is cached, yet a request without (or with wrong) credentials is refused.
    await expect(cache.prepare({ url, commit: fx.commits[0]! })).rejects.toMatchObject({ reason: "fetch_failed" });
    await expect(cache.prepare({ url, commit: fx.commits[0]!, token: "wrong" })).rejects.toMatchObject({ reason: "fetch_failed" });
    expect((await cache.prepare({ url, commit: fx.commits[0]!, token: TOKEN })).cache).toBe("hot");
  });
});
