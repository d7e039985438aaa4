import { describe, it, expect, afterEach } from "vitest";
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { createServer as createHttpServer, request as httpRequest } from "node:http";
import type { AddressInfo } from "node:net";
import { Redis } from "ioredis";
import { buildApiServer, type ApiServer } from "../../src/api/build.js";
import { testConfig } from "../helpers/config.js";
import { dropPrefix } from "../helpers/redis.js";
import { sparseBomb, tarOf, type TarEntry } from "../helpers/tarball.js";
import { Readable } from "node:stream";
import { ServiceClient, ServiceRefused } from "../../src/client/service.js";
import { localizeCheckout, uploadCheckout } from "../../src/client/checkout.js";
import { Snapshot, TreeCache } from "../../src/client/snapshot.js";
import { tmpdir } from "node:os";
import { makeGitFixture } from "../helpers/gitFixture.js";
import { freePort, serviceEnv, waitFor } from "../helpers/processes.js";
import { resultCacheKey } from "../../src/queue/cacheKey.js";
import { ANSWER_REVISION } from "../../src/version.js";
import type { LocalizeResult } from "../../src/queue/contract.js";
import { ResultCache } from "../../src/store/resultCache.js";
import { keys } from "../../src/store/keys.js";

const servers: Array<{ api: ApiServer; prefix: string }> = [];
afterEach(async () => {
  for (const { api, prefix } of servers.splice(0)) {
    await api.close();
    await dropPrefix(prefix);
  }
});

async function start(env: Record<string, string> = {}) {
  const config = testConfig(env);
  const api = await buildApiServer(config, { logger: false });
  servers.push({ api, prefix: config.QUEUE_PREFIX });
  return { config, api, inject: api.fastify.inject.bind(api.fastify) };
}

const TREE: TarEntry[] = [
  { name: "app/__init__.py", body: "" },
  { name: "app/main.py", body: "def main():\n    return 0\n" },
];
const gz = { "content-type": "application/gzip" };
const CACHED: LocalizeResult = {
  policy: "baseline",
  finish_reason: "finish_tool",
  commit_sha: "0".repeat(40),
  repo_cache: "hot",
  answered: true,
  locations: [{ file: "app/main.py", function_name: "main", valid: true }],
  files: ["app/main.py"],
  modules: [],
  entities: ["app/main.py:main"],
  turns: 1,
  timings: { queue_wait_ms: 1, repo_ms: 1, sandbox_ms: 1, policy_ms: 1, model_ms: 0, tool_ms: 1, total_ms: 5 },
  usage: { model_calls: 0, prompt_tokens: 0, completion_tokens: 0 },
};

/** An answer put in the result cache under `key`, as a finished job would. */
async function cacheAnswer(config: { REDIS_URL: string; QUEUE_PREFIX: string }, key: string): Promise<void> {
  const redis = new Redis(config.REDIS_URL);
  try {
    await new ResultCache(redis, config.QUEUE_PREFIX, 60).put(key, CACHED);
  } finally {
    redis.disconnect();
  }
}

/** Every file under a directory, recursively (the upload area must hold nothing but uploads). */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => !d.isDirectory())
    .map((d) => join(d.parentPath, d.name));
}

describe("uploads", () => {
  it("stores a tree once by its content address, answers by hash, and localizes it", async () => {
    const { inject, config } = await start();
    const first = await inject({ method: "POST", url: "/v1/uploads", payload: await tarOf(TREE, { gzip: true }), headers: gz });
    expect(first.statusCode).toBe(201);
    const info = first.json();
    expect(info).toMatchObject({ files: 2, bytes: 25 });
    expect(info.upload_id).toBe(info.sha256);
    // The same tree packed differently (plain tar, other order) is the same upload.
    const again = await inject({ method: "POST", url: "/v1/uploads", payload: await tarOf([...TREE].reverse()), headers: { "content-type": "application/x-tar" } });
    expect(again.statusCode).toBe(200);
    expect(again.json().upload_id).toBe(info.upload_id);
    expect(filesUnder(config.UPLOAD_DIR).filter((f) => f.endsWith(".archive"))).toHaveLength(1);

    expect((await inject({ method: "HEAD", url: `/v1/uploads/${info.upload_id}` })).statusCode).toBe(200);
    expect((await inject({ method: "GET", url: `/v1/uploads/${info.upload_id}` })).json().files).toBe(2);
    const unknown = await inject({ method: "GET", url: `/v1/uploads/${"0".repeat(64)}` });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().error.code).toBe("upload_not_found");

    const job = await inject({ method: "POST", url: "/v1/localize", payload: { repo: { upload: info.upload_id }, issue: "main returns the wrong code" } });
    expect(job.statusCode).toBe(202);
    expect(job.json().repo).toEqual({ upload: info.upload_id });
    const gone = await inject({ method: "POST", url: "/v1/localize", payload: { repo: { upload: "f".repeat(64) }, issue: "x" } });
    expect(gone.statusCode).toBe(422);
    expect(gone.json().error).toMatchObject({ code: "upload_not_found", field: "repo.upload" });
    const mixed = await inject({ method: "POST", url: "/v1/localize", payload: { repo: { upload: info.upload_id, commit: "main" }, issue: "x" } });
    expect(mixed.statusCode).toBe(422);
    expect(mixed.json().error.field).toBe("repo.commit");
  });

  it("is an API key's own: another key can neither read, renew nor use it, nor learn it was sent, until it sends the tree itself", async () => {
    const { inject } = await start({ AUTH_MODE: "api_key", API_KEYS: "alice:key-alice-1234,bob:key-bob-12345" });
    const as = (key: string) => ({ authorization: `Bearer ${key}` });
    const sent = await inject({ method: "POST", url: "/v1/uploads", payload: await tarOf(TREE, { gzip: true }), headers: { ...gz, ...as("key-alice-1234") } });
    expect(sent.statusCode).toBe(201);
    const id = sent.json().upload_id as string;
    expect((await inject({ method: "GET", url: `/v1/uploads/${id}`, headers: as("key-alice-1234") })).statusCode).toBe(200);
    // To Bob, as an upload never sent.
    const read = await inject({ method: "GET", url: `/v1/uploads/${id}`, headers: as("key-bob-12345") });
    expect([read.statusCode, read.json().error.code]).toEqual([404, "upload_not_found"]);
    const used = await inject({ method: "POST", url: "/v1/localize", payload: { repo: { upload: id }, issue: "main returns the wrong code" }, headers: as("key-bob-12345") });
    expect([used.statusCode, used.json().error.code]).toEqual([422, "upload_not_found"]);
    // Bob sends the same tree: stored, to him, as any first sending is (201); then it is his to use.
    const own = await inject({ method: "POST", url: "/v1/uploads", payload: await tarOf(TREE, { gzip: true }), headers: { ...gz, ...as("key-bob-12345") } });
    expect([own.statusCode, own.json().upload_id]).toEqual([201, id]);
    expect((await inject({ method: "POST", url: "/v1/localize", payload: { repo: { upload: id }, issue: "main returns the wrong code" }, headers: as("key-bob-12345") })).statusCode).toBe(202);
    expect((await inject({ method: "POST", url: "/v1/uploads", payload: await tarOf(TREE, { gzip: true }), headers: { ...gz, ...as("key-bob-12345") } })).statusCode).toBe(200);
  });

  it("keeps no grant past its upload: another key's asking does not renew it, and a tree stored anew is only its new sender's", async () => {
    const { inject, config } = await start({ AUTH_MODE: "api_key", API_KEYS: "alice:key-alice-1234,bob:key-bob-12345", UPLOAD_STORE: "redis" });
    const as = (key: string) => ({ authorization: `Bearer ${key}` });
    const id = (await inject({ method: "POST", url: "/v1/uploads", payload: await tarOf(TREE, { gzip: true }), headers: { ...gz, ...as("key-alice-1234") } })).json().upload_id as string;
    const redis = new Redis(config.REDIS_URL);
    try {
      const grants = keys(config.QUEUE_PREFIX).uploadOwners(id);
      await redis.expire(grants, 5);
      expect((await inject({ method: "GET", url: `/v1/uploads/${id}`, headers: as("key-bob-12345") })).statusCode).toBe(404);
      expect(await redis.ttl(grants)).toBeLessThanOrEqual(5);
      // The upload expires (its keys gone, as their TTL takes them); Bob sends the same tree.
      await redis.del(`${config.QUEUE_PREFIX}:upload:${id}:archive`, `${config.QUEUE_PREFIX}:upload:${id}:meta`);
      expect((await inject({ method: "POST", url: "/v1/uploads", payload: await tarOf(TREE, { gzip: true }), headers: { ...gz, ...as("key-bob-12345") } })).statusCode).toBe(201);
      expect((await inject({ method: "GET", url: `/v1/uploads/${id}`, headers: as("key-alice-1234") })).statusCode).toBe(404);
      expect((await inject({ method: "GET", url: `/v1/uploads/${id}`, headers: as("key-bob-12345") })).statusCode).toBe(200);
    } finally {
      redis.disconnect();
    }
  });

  it("holds each API key to its own share of the store: past it an upload is refused (413, naming the share, with Retry-After) and nothing of it is kept; other keys and trees held already go on", async () => {
    const { inject, config } = await start({ AUTH_MODE: "api_key", API_KEYS: "alice:key-alice-1234,bob:key-bob-12345", UPLOAD_KEY_MAX_MB: "1" });
    const as = (key: string) => ({ authorization: `Bearer ${key}` });
    // Random bytes do not compress: each archive is ~0.6 MB, two past a 1 MB share.
    const tree = (name: string) => tarOf([{ name: `${name}.bin`, body: randomBytes(600_000) }], { gzip: true });
    const send = async (archive: Buffer, key: string) => inject({ method: "POST", url: "/v1/uploads", payload: archive, headers: { ...gz, ...as(key) } });
    const first = await tree("first");
    expect((await send(first, "key-alice-1234")).statusCode).toBe(201);
    const before = filesUnder(config.UPLOAD_DIR);
    const second = await tree("second");
    const refused = await send(second, "key-alice-1234");
    expect([refused.statusCode, refused.json().error.code, refused.json().error.field]).toEqual([413, "upload_quota_exceeded", "body"]);
    expect(refused.json().error.message).toContain("UPLOAD_KEY_MAX_MB (1)");
    expect(Number(refused.headers["retry-after"])).toBeGreaterThan(config.UPLOAD_TTL_S - 60);
    expect(filesUnder(config.UPLOAD_DIR)).toEqual(before);
    // A tree the key holds already costs nothing more; another key has a share of its own.
    expect((await send(first, "key-alice-1234")).statusCode).toBe(200);
    expect((await send(second, "key-bob-12345")).statusCode).toBe(201);
    expect((await send(first, "key-bob-12345")).statusCode).toBe(413);
    // Alice's hold on the first tree ends: its bytes are hers again.
    const redis = new Redis(config.REDIS_URL);
    try {
      await redis.zadd(keys(config.QUEUE_PREFIX).ownerUploads("alice"), Date.now() - 1, (await send(first, "key-alice-1234")).json().upload_id);
    } finally {
      redis.disconnect();
    }
    expect((await send(second, "key-alice-1234")).statusCode).toBe(201);
  });

  it("has no share per key with AUTH_MODE=off, where everyone is one key", async () => {
    const { inject } = await start({ UPLOAD_KEY_MAX_MB: "1" });
    for (const name of ["first", "second"]) {
      const archive = await tarOf([{ name: `${name}.bin`, body: randomBytes(600_000) }], { gzip: true });
      expect((await inject({ method: "POST", url: "/v1/uploads", payload: archive, headers: gz })).statusCode).toBe(201);
    }
  });

  it("takes what the commits an issue names changed with an upload, or a patch's own commits, checked field by field, and keeps it out of the job's view", async () => {
    const { inject, config } = await start();
    const info = (await inject({ method: "POST", url: "/v1/uploads", payload: await tarOf(TREE, { gzip: true }), headers: gz })).json();
    const commit = { ref: "b3db6c8", sha: "b3db6c8".padEnd(40, "0"), files: ["app/main.py"], defs: [{ file: "app/main.py", name: "main" }] };
    const post = (repo: Record<string, unknown>, issue = "main broke in b3db6c8") => inject({ method: "POST", url: "/v1/localize", payload: { repo, issue } });

    const job = await post({ upload: info.upload_id, commits: [commit, { ...commit, ref: "#1234" }, { ...commit, ref: "code.example.org#1234" }] });
    expect(job.statusCode).toBe(202);
    expect(job.json().repo).toEqual({ upload: info.upload_id });
    // The same tree and issue with other history is another question: a result cached without it is not its answer.
    const options = { policy: "baseline" } as const;
    const key = resultCacheKey({ url: `upload:${info.upload_id}`, sha: info.upload_id, issue: "main broke in b3db6c8", options, model: config.MODEL_NAME, service: ANSWER_REVISION });
    await cacheAnswer(config, key);
    expect((await post({ upload: info.upload_id })).json().cached).toBe(true);
    expect((await post({ upload: info.upload_id, commits: [commit] })).json().cached).toBe(false);
    // A repository URL's history is read by the service itself; a patch's own commits are in none it holds.
    const withUrl = await post({ url: "https://github.com/o/r", commit: "main", commits: [commit] });
    expect(withUrl.statusCode).toBe(422);
    expect(withUrl.json().error).toMatchObject({ code: "invalid_repository", field: "repo.commits" });
    expect(withUrl.json().error.message).toContain("repo.patch");
    const patch = "diff --git a/app/main.py b/app/main.py\n--- a/app/main.py\n+++ b/app/main.py\n@@ -1,2 +1,2 @@\n def main():\n-    return 0\n+    return 1\n";
    const withPatch = await post({ url: "file:///srv/o/r.git", commit: "a".repeat(40), patch, commits: [commit] });
    expect(withPatch.statusCode, withPatch.body).toBe(202);
    expect(withPatch.json().repo).toEqual({ url: "file:///srv/o/r.git", commit: "a".repeat(40), patch_sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    for (const [bad, field] of [
      [{ ...commit, ref: "--all" }, "repo.commits.0.ref"],
      [{ ...commit, ref: "a b.org#12" }, "repo.commits.0.ref"],
      [{ ...commit, sha: "HEAD" }, "repo.commits.0.sha"],
      [{ ...commit, files: Array.from({ length: 51 }, (_, i) => `f${i}.py`) }, "repo.commits.0.files"],
      [{ ...commit, extra: 1 }, "repo.commits.0.extra"],
    ] as const) {
      const refused = await post({ upload: info.upload_id, commits: [bad] });
      expect(refused.statusCode, JSON.stringify(bad).slice(0, 80)).toBe(422);
      expect(refused.json().error.field, JSON.stringify(refused.json())).toBe(field);
    }
  });

  it("takes an upload with the caller's changes since as a patch, checked as a commit's patch is, and caches its answer apart", async () => {
    const { inject, config } = await start({ PATCH_MAX_BYTES: "2048" });
    const info = (await inject({ method: "POST", url: "/v1/uploads", payload: await tarOf(TREE, { gzip: true }), headers: gz })).json();
    const patch = "diff --git a/app/main.py b/app/main.py\n--- a/app/main.py\n+++ b/app/main.py\n@@ -1,2 +1,2 @@\n def main():\n-    return 0\n+    return 1\n";
    const post = (repo: Record<string, unknown>) => inject({ method: "POST", url: "/v1/localize", payload: { repo, issue: "main returns the wrong code" } });
    const options = { policy: "baseline" } as const;
    const key = resultCacheKey({ url: `upload:${info.upload_id}`, sha: info.upload_id, issue: "main returns the wrong code", options, model: config.MODEL_NAME, service: ANSWER_REVISION });
    await cacheAnswer(config, key);
    expect((await post({ upload: info.upload_id })).json().cached).toBe(true);
    // The patched tree is another tree: the upload's cached answer is not its answer.
    const job = await post({ upload: info.upload_id, patch });
    expect(job.statusCode).toBe(202);
    expect(job.json()).toMatchObject({ cached: false, repo: { upload: info.upload_id, patch_sha256: createHash("sha256").update(patch).digest("hex") } });
    for (const [bad, code] of [
      [`${patch}${"+# more\n".repeat(400)}`, "patch_too_large"],
      ["just some text", "invalid_patch"],
    ] as const) {
      const refused = await post({ upload: info.upload_id, patch: bad });
      expect(refused.statusCode).toBe(422);
      expect(refused.json().error).toMatchObject({ code, field: "repo.patch" });
    }
    const gone = await post({ upload: "f".repeat(64), patch });
    expect(gone.json().error).toMatchObject({ code: "upload_not_found", field: "repo.upload" });
  });

  it("refuses hostile archives with a clear 4xx and leaves nothing on disk", async () => {
    const { inject, config } = await start({ UPLOAD_MAX_BYTES: String(8 << 20), UPLOAD_MAX_ARCHIVE_BYTES: String(4 << 20) });
    const cases: Array<[Buffer, string, number, RegExp]> = [
      [await tarOf([{ name: "ok.py", body: "x" }, { name: "../../x", body: "x" }]), "application/x-tar", 422, /\.\.\/\.\.\/x/],
      [await tarOf([{ name: "/etc/passwd", body: "x" }], { gzip: true }), "application/gzip", 422, /absolute/],
      [await tarOf([{ name: "etc", type: "symlink", linkname: "/etc" }, { name: "etc/cron.d/x", body: "x" }]), "application/x-tar", 422, /etc/],
      [await tarOf([{ name: "a", body: "x" }, { name: "b", type: "link", linkname: "a" }]), "application/x-tar", 422, /hard link/],
      [await tarOf([{ name: "p", type: "fifo" }]), "application/x-tar", 422, /fifo/],
      [sparseBomb(10 * 1024 ** 3), "application/gzip", 422, /sparse/],
      [await tarOf([{ name: "big.bin", body: Buffer.alloc(9 << 20, 1) }], { gzip: true }), "application/gzip", 413, /bytes/],
      [Buffer.alloc(5 << 20, 7), "application/octet-stream", 413, /bytes/],
    ];
    for (const [payload, type, status, message] of cases) {
      const res = await inject({ method: "POST", url: "/v1/uploads", payload, headers: { "content-type": type } });
      expect(res.statusCode, message.source).toBe(status);
      expect(res.json().error.field).toBe("body");
      expect(res.json().error.message).toMatch(message);
    }
    expect(filesUnder(config.UPLOAD_DIR)).toEqual([]);
    for (const [payload, type] of [["hello", "text/plain"], ['{"files":[]}', "application/json"]]) {
      const res = await inject({ method: "POST", url: "/v1/uploads", payload, headers: { "content-type": type! } });
      expect(res.statusCode, type).toBe(415);
      expect(res.json().error, type).toMatchObject({ code: "unsupported_media_type", message: expect.stringContaining("application/gzip") });
    }
    expect(filesUnder(config.UPLOAD_DIR)).toEqual([]);
  });

  it("keeps archives in Redis when configured, under its cap", async () => {
    const { inject, config } = await start({ UPLOAD_STORE: "redis", UPLOAD_MAX_ARCHIVE_BYTES: String(64 << 10) });
    const res = await inject({ method: "POST", url: "/v1/uploads", payload: await tarOf(TREE, { gzip: true }), headers: gz });
    expect(res.statusCode).toBe(201);
    const redis = new Redis(config.REDIS_URL);
    try {
      expect(await redis.exists(`${config.QUEUE_PREFIX}:upload:${res.json().upload_id}:archive`)).toBe(1);
      expect(await redis.ttl(`${config.QUEUE_PREFIX}:upload:${res.json().upload_id}:archive`)).toBeGreaterThan(0);
    } finally {
      redis.disconnect();
    }
    const big = await inject({ method: "POST", url: "/v1/uploads", payload: await tarOf([{ name: "r.bin", body: Buffer.from(Array.from({ length: 100_000 }, (_, i) => (i * 7919) % 251)) }]), headers: { "content-type": "application/x-tar" } });
    expect(big.statusCode).toBe(413);
    expect(filesUnder(config.UPLOAD_DIR)).toEqual([]);
  });

  it("keeps Redis uploads within UPLOAD_REDIS_MAX_MB: past it, 503 to send again, naming the setting; a tree already kept is still answered", async () => {
    const { inject } = await start({ UPLOAD_STORE: "redis", UPLOAD_REDIS_MAX_MB: "1" });
    const tar = { "content-type": "application/x-tar" };
    // Random bytes: the archive's size is the file's, ~410 KB each; two fit in 1 MiB, a third does not.
    const archives = await Promise.all([1, 2, 3].map(() => tarOf([{ name: "r.bin", body: randomBytes(400_000) }])));
    const first = await inject({ method: "POST", url: "/v1/uploads", payload: archives[0], headers: tar });
    expect(first.statusCode).toBe(201);
    expect((await inject({ method: "POST", url: "/v1/uploads", payload: archives[1], headers: tar })).statusCode).toBe(201);
    const third = await inject({ method: "POST", url: "/v1/uploads", payload: archives[2], headers: tar });
    expect(third.statusCode).toBe(503);
    expect(third.headers["retry-after"]).toBe("5");
    expect(third.json().error).toMatchObject({ code: "upload_store_unavailable", message: expect.stringContaining("UPLOAD_REDIS_MAX_MB") });
    const again = await inject({ method: "POST", url: "/v1/uploads", payload: archives[0], headers: tar });
    expect(again.statusCode).toBeLessThan(300);
    expect(again.json().upload_id).toBe(first.json().upload_id);
  });

  it("answers 503, the service's fault and not the archive's, when its store cannot keep the upload (a file-size limit: EFBIG)", async () => {
    const apiKeys = { AUTH_MODE: "api_key", API_KEYS: "alice:key-alice-1234" };
    const config = testConfig(apiKeys);
    const port = await freePort();
    // A real API whose process may write no file over 1 MB: the upload store's writes fail.
    const env = { ...process.env, ...serviceEnv(config, { API_PORT: String(port), LOG_LEVEL: "silent", ...apiKeys }) };
    const api = spawn("bash", ["-c", `ulimit -f 1024 && exec "${process.execPath}" --import tsx src/api/server.ts`], { env, stdio: "ignore" });
    try {
      const base = `http://127.0.0.1:${port}`;
      await waitFor(async () => ((await fetch(`${base}/healthz`)).ok ? true : undefined), 60_000, "the API");
      const archive = await tarOf([{ name: "big.bin", body: randomBytes(3 << 20) }]);
      const res = await fetch(`${base}/v1/uploads`, { method: "POST", headers: { "content-type": "application/x-tar", authorization: "Bearer key-alice-1234" }, body: new Uint8Array(archive) });
      expect(res.status).toBe(503);
      expect(res.headers.get("retry-after")).toBe("5");
      expect((await res.json()).error).toMatchObject({ code: "upload_store_unavailable", message: expect.stringContaining("EFBIG") });
      // Nothing half-written is kept, nor counted against the key's share.
      expect(filesUnder(config.UPLOAD_DIR)).toEqual([]);
      const redis = new Redis(config.REDIS_URL);
      try {
        const share = keys(config.QUEUE_PREFIX);
        expect([await redis.zcard(share.ownerUploads("alice")), await redis.hget(share.ownerUploadBytes("alice"), "total")]).toEqual([0, "0"]);
      } finally {
        redis.disconnect();
      }
    } finally {
      api.kill();
      await dropPrefix(config.QUEUE_PREFIX);
    }
  });

  it("sends the upload again when the service asks to (503 with Retry-After), and it is kept once the store can", async () => {
    const config = testConfig();
    const port = await freePort();
    const env = { ...process.env, ...serviceEnv(config, { API_PORT: String(port), LOG_LEVEL: "silent" }) };
    // The soft limit only: the test lifts it while the client waits.
    const api = spawn("bash", ["-c", `ulimit -S -f 1024 && exec "${process.execPath}" --import tsx src/api/server.ts`], { env, stdio: "ignore" });
    try {
      const base = `http://127.0.0.1:${port}`;
      await waitFor(async () => ((await fetch(`${base}/healthz`)).ok ? true : undefined), 60_000, "the API");
      const archive = await tarOf([{ name: "big.bin", body: randomBytes(3 << 20) }]);
      let made = 0;
      const sending = new ServiceClient(base).sendUpload(async () => {
        made++;
        return Readable.from([archive]);
      });
      // The first is refused (EFBIG); the store is mended before the 5 s the service asks to wait.
      await waitFor(async () => (made === 1 ? true : undefined), 10_000, "the first send");
      await new Promise((r) => setTimeout(r, 1500));
      execFileSync("prlimit", ["--pid", String(api.pid), "--fsize=unlimited:"]);
      const info = await sending;
      expect(made).toBe(2);
      expect(info).toMatchObject({ files: 1, bytes: 3 << 20 });
    } finally {
      api.kill();
      await dropPrefix(config.QUEUE_PREFIX);
    }
  });

  it("sends a tree that compresses past the service's ratio again uncompressed, and says so", async () => {
    const { api } = await start();
    const base = await api.fastify.listen({ port: 0, host: "127.0.0.1" });
    // A committed dump of one byte repeated: gzip makes ~1000x of it, past UPLOAD_MAX_RATIO (100) once past the 8 MiB it allows any archive.
    const fx = makeGitFixture({ "app/main.py": "def main():\n    pass\n", "data/dump.sql": "0".repeat(12 << 20) });
    const cache = mkdtempSync(join(tmpdir(), "codescout-snapcache-"));
    const snap = await Snapshot.take(fx.dir, cache);
    try {
      const said: string[] = [];
      const info = await uploadCheckout(new ServiceClient(base), snap, (l) => said.push(l), new TreeCache(cache), undefined, undefined, true);
      expect(info.bytes).toBeGreaterThan(12 << 20);
      expect(said).toContain("the tree compresses past the service's limit on compression; sending it uncompressed");
    } finally {
      await snap.dispose();
      rmSync(cache, { recursive: true, force: true });
      fx.cleanup();
    }
  });

  it.each([
    ["the service's limit on an archive", { UPLOAD_MAX_ARCHIVE_BYTES: String(1 << 20) }, undefined, "an archive"],
    ["the key's share of the store", { AUTH_MODE: "api_key", API_KEYS: "alice:key-alice-1234", UPLOAD_KEY_MAX_MB: "1" }, "key-alice-1234", "this key's uploads"],
  ] as const)("sends a tree past %s uncompressed (as over loopback) again compressed, and says so", async (_, env, key, limit) => {
    const { api } = await start(env);
    const base = await api.fastify.listen({ port: 0, host: "127.0.0.1" });
    // 1.4 MB of source text: past 1 MB as it is, well under it gzipped.
    const fx = makeGitFixture({ "app/main.py": "def main():\n    pass\n", "app/table.py": Array.from({ length: 40_000 }, (_, i) => `ROW_${i} = ${i}  # a row of the table`).join("\n") });
    const cache = mkdtempSync(join(tmpdir(), "codescout-snapcache-"));
    const snap = await Snapshot.take(fx.dir, cache);
    try {
      const said: string[] = [];
      const info = await uploadCheckout(new ServiceClient(base, key), snap, (l) => said.push(l), new TreeCache(cache));
      expect(info.bytes).toBeGreaterThan(1 << 20);
      expect(said).toContain(`the tree uncompressed is past the service's limit on ${limit}; sending it compressed`);
    } finally {
      await snap.dispose();
      rmSync(cache, { recursive: true, force: true });
      fx.cleanup();
    }
  });

  it("sends no tree, and queues no job, for a checkout given up as its upload begins", async () => {
    const { api, config } = await start();
    const base = await api.fastify.listen({ port: 0, host: "127.0.0.1" });
    const fx = makeGitFixture();
    try {
      const stop = new AbortController();
      const said: string[] = [];
      const say = (line: string) => {
        said.push(line);
        if (line.startsWith("uploading")) stop.abort();
      };
      const given = localizeCheckout(new ServiceClient(base), fx.dir, { issue: "`Parser.parse` drops values", options: {} }, { signal: stop.signal, say });
      await expect(given).rejects.toMatchObject({ name: "AbortError" });
      expect(said).toContain("uploading the tree");
      expect(filesUnder(config.UPLOAD_DIR)).toEqual([]);
      const redis = new Redis(config.REDIS_URL);
      try {
        const jobs = (await redis.keys(`${config.QUEUE_PREFIX}:localize:*`)).filter((k) => /[0-9a-f]{8}-[0-9a-f]{4}-/.test(k));
        expect(jobs).toEqual([]);
      } finally {
        redis.disconnect();
      }
    } finally {
      fx.cleanup();
    }
  });

  it("sends the tree once more when the job does not find the upload the service had taken (an API replica of 0.9.4 beside, which records no sender)", async () => {
    // No worker: the job, once taken, ends as no one's to run (no_worker), which is all this asks of it.
    const { api, config } = await start({ NO_WORKER_WAIT_S: "1" });
    const base = await api.fastify.listen({ port: 0, host: "127.0.0.1" });
    const redis = new Redis(config.REDIS_URL);
    // In front of the API: before the first job is passed on, the record of who sent each upload
    // goes, as when the upload went to a 0.9.4 replica.
    let dropped = false;
    const proxy = createHttpServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", async () => {
        if (req.method === "POST" && req.url === "/v1/localize" && !dropped) {
          dropped = true;
          const grants = await redis.keys(`${config.QUEUE_PREFIX}:localize:upload-owners:*`);
          if (grants.length) await redis.del(...grants);
        }
        const upstream = httpRequest(`${base}${req.url}`, { method: req.method, headers: req.headers }, (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        });
        upstream.end(Buffer.concat(chunks));
      });
    });
    await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
    const fx = makeGitFixture();
    try {
      const said: string[] = [];
      const client = new ServiceClient(`http://127.0.0.1:${(proxy.address() as AddressInfo).port}`);
      const job = await localizeCheckout(client, fx.dir, { issue: "`helper` should return 43", options: { policy: "baseline" } }, { say: (l) => said.push(l) }).catch((err: Error) => err);
      expect(dropped).toBe(true);
      expect(said).toContain("the service did not find the tree for the job; sending it again");
      expect(job).toMatchObject({ view: { repo: { upload: expect.any(String) }, error: { code: "no_worker" } } });
    } finally {
      fx.cleanup();
      proxy.close();
      redis.disconnect();
    }
  }, 60_000);

  it("takes a streamed archive from the client over HTTP, and reports a refusal sent mid-stream as the service's answer", async () => {
    const { api } = await start({ UPLOAD_MAX_ARCHIVE_BYTES: String(2 << 20) });
    const base = await api.fastify.listen({ port: 0, host: "127.0.0.1" });
    const client = new ServiceClient(base);
    const archive = await tarOf(TREE);
    // In small pieces, as GNU tar's pipe delivers them.
    const info = await client.sendUpload(Readable.from([archive.subarray(0, 700), archive.subarray(700)]));
    expect(info).toMatchObject({ files: 2, bytes: 25 });
    expect((await client.upload(info.upload_id))?.files).toBe(2);

    // A 16 MB archive the service stops reading after 2 MB: the 413 must come back, not a broken pipe.
    const big = await tarOf([{ name: "big.bin", body: Buffer.alloc(16 << 20, 1) }]);
    const pieces = Readable.from((function* () {
      for (let i = 0; i < big.length; i += 64 << 10) yield big.subarray(i, i + (64 << 10));
    })());
    const refused = await client.sendUpload(pieces).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(ServiceRefused);
    expect(refused).toMatchObject({ status: 413, code: "upload_too_large", field: "body" });
  });
});
