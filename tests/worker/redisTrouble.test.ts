import { afterAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer as createTlsServer } from "node:tls";
import { randomUUID } from "node:crypto";
import { pino } from "pino";
import { createRedis } from "../../src/queue/connection.js";
import { createLocalizeQueue, enqueueLocalize } from "../../src/queue/producer.js";
import { startWorker } from "../../src/worker/build.js";
import { testConfig } from "../helpers/config.js";
import { makeGitFixture } from "../helpers/gitFixture.js";
import { freePort, serviceEnv, startProcess, waitFor } from "../helpers/processes.js";
import { ownRedis } from "../helpers/redis.js";

/**
 * A worker whose Redis is full (maxmemory, noeviction) takes no job until it has room again: each
 * job taken then failed for good (its writes refused), and the whole queue went in a second.
 * Against a Redis of the test's own, since it is made full.
 */
const fx = makeGitFixture();
afterAll(() => fx.cleanup());

describe("a worker whose Redis is full", () => {
  it("takes no job while Redis is full, says so, and takes them again once it has room; says when it came back empty", async () => {
    const own = await ownRedis();
    own.start();
    const port = new URL(own.url).port;
    const cli = (...args: string[]) => execFileSync("redis-cli", ["-p", port, ...args], { encoding: "utf8" });
    const config = testConfig({ ALLOW_FILE_URLS: "true", REDIS_URL: own.url });
    const lines: Array<Record<string, unknown>> = [];
    const logger = pino({ level: "info" }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    const redis = createRedis(config.REDIS_URL, "producer");
    const queue = createLocalizeQueue(redis, { prefix: config.QUEUE_PREFIX, retentionS: 600 });
    const worker = await startWorker(config, { logger, redisWatchEveryMs: 200 });
    try {
      cli("config", "set", "maxmemory-policy", "noeviction");
      cli("config", "set", "maxmemory", "1");
      await waitFor(async () => (worker.worker.isPaused() ? true : undefined), 10_000, "the worker to stop taking jobs");
      expect(lines.find((l) => typeof l.msg === "string" && l.msg.startsWith("Redis is full"))).toMatchObject({ level: 50 });

      cli("config", "set", "maxmemory", "0");
      await waitFor(async () => (worker.worker.isPaused() ? undefined : true), 10_000, "the worker to take jobs again");
      const jobId = randomUUID();
      await enqueueLocalize(queue, { jobId, repo: { url: fx.url, commit: fx.commits[0]! }, issue: "`helper` should return 43", options: { policy: "baseline" }, owner: "alice", submittedAt: new Date().toISOString() });
      await waitFor(async () => lines.find((l) => l.msg === "job done" && l.jobId === jobId), 60_000, "the job done");
      expect(lines.some((l) => typeof l.msg === "string" && l.msg.startsWith("Redis came back empty"))).toBe(false);

      // Restarted without its data (here: flushed): said once, at error.
      cli("flushall");
      const empty = await waitFor(async () => lines.find((l) => typeof l.msg === "string" && l.msg.startsWith("Redis came back empty")), 10_000, "the empty Redis said");
      expect(empty).toMatchObject({ level: 50 });
    } finally {
      await worker.close();
      await queue.close();
      redis.disconnect();
      own.stop();
    }
  }, 120_000);
});

describe("a Redis that evicts keys", () => {
  it("is said at error by the worker and the API as they start, in their logs", async () => {
    const own = await ownRedis();
    own.start();
    const port = new URL(own.url).port;
    execFileSync("redis-cli", ["-p", port, "config", "set", "maxmemory-policy", "allkeys-lru"]);
    const config = testConfig({ REDIS_URL: own.url });
    const lines: Array<Record<string, unknown>> = [];
    const logger = pino({ level: "info" }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    const worker = await startWorker(config, { logger, redisWatchEveryMs: 100 });
    const api = startProcess("src/api/server.ts", serviceEnv(config, { API_PORT: String(await freePort()) }));
    try {
      // At its maxmemory it still takes writes (evicting): not full, so the worker goes on taking jobs.
      execFileSync("redis-cli", ["-p", port, "config", "set", "maxmemory", "1"]);
      await new Promise((r) => setTimeout(r, 1_000));
      expect(worker.worker.isPaused()).toBe(false);
      expect(lines.some((l) => typeof l.msg === "string" && l.msg.startsWith("Redis is full"))).toBe(false);
      execFileSync("redis-cli", ["-p", port, "config", "set", "maxmemory", "0"]);
      const said = "Redis evicts keys (maxmemory-policy allkeys-lru): a queued job, an answer, an Idempotency-Key or a rate budget can vanish when it is full; set maxmemory-policy noeviction (docs/deployment.md, Redis)";
      expect(lines.find((l) => l.msg === said)).toMatchObject({ level: 50 });
      const line = await waitFor(async () => api.output().split("\n").find((l) => l.includes("Redis evicts keys")), 30_000, "the API's line");
      expect(JSON.parse(line)).toMatchObject({ level: 50, msg: said });
    } finally {
      await api.stop();
      await worker.close();
      own.stop();
    }
  }, 120_000);
});

describe("a worker that cannot start on its Redis", () => {
  it("says what the connection met, not only that it gave up (a TLS certificate it does not trust)", async () => {
    // A TLS endpoint with a self-signed certificate, as a Redis behind its own CA looks without NODE_EXTRA_CA_CERTS.
    const dir = mkdtempSync(join(tmpdir(), "codescout-tls-"));
    execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"), "-days", "1", "-subj", "/CN=localhost"], { stdio: "ignore" });
    const server = createTlsServer({ key: readFileSync(join(dir, "key.pem")), cert: readFileSync(join(dir, "cert.pem")) }, (socket) => socket.end());
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const config = testConfig({ REDIS_URL: `rediss://127.0.0.1:${(server.address() as AddressInfo).port}` });
      const err = (await startWorker(config, { logger: pino({ level: "silent" }) }).catch((e: unknown) => e)) as Error;
      expect(err).toBeInstanceOf(Error);
      expect(err.message).toMatch(/^Reached the max retries per request limit .*; the connection's last error: self[- ]signed certificate/);
    } finally {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
