import { describe, it, expect, afterAll } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { pino } from "pino";
import { buildApiServer } from "../../src/api/build.js";
import { startWorker } from "../../src/worker/build.js";
import { isRedisUnreachable } from "../../src/queue/connection.js";
import { testConfig } from "../helpers/config.js";
import { makeGitFixture } from "../helpers/gitFixture.js";
import { freePort } from "../helpers/processes.js";

/**
 * A Redis of its own (the shared one serves the other tests), restarted with its data as a job
 * enters its last step: the job waits for it and ends as it would have, not failed as internal.
 */
const dir = mkdtempSync(join(tmpdir(), "codescout-redis-"));
let port = 0;
const startRedis = () => execFileSync("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--daemonize", "yes", "--dir", dir, "--save", "", "--appendonly", "no", "--pidfile", join(dir, "pid")]);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

afterAll(() => {
  try {
    execFileSync("redis-cli", ["-p", String(port), "shutdown", "nosave"], { stdio: "ignore" });
  } catch {
    /* already down */
  }
  rmSync(dir, { recursive: true, force: true });
});

describe("a Redis restart during a job's last step", () => {
  it("is waited out: the job succeeds", async () => {
    port = await freePort();
    startRedis();
    await sleep(300);
    const url = `redis://127.0.0.1:${port}`;
    const config = testConfig({ REDIS_URL: url, WORKER_CONCURRENCY: "1" });
    const repo = makeGitFixture();
    const api = await buildApiServer(config, { logger: false });
    const logged: string[] = [];
    const worker = await startWorker(config, { logger: pino({ level: "warn" }, { write: (line: string) => void logged.push(line) }) });
    try {
      const submit = await api.fastify.inject({ method: "POST", url: "/v1/localize", payload: { repo: { url: repo.url, commit: repo.commits[0] }, issue: "helper returns the wrong number", options: { policy: "baseline", cache: false, snippets: true } } });
      const id = submit.json().id as string;
      const probe = new Redis(url);
      try {
        for (;;) {
          const progress = await probe.hget(`${config.QUEUE_PREFIX}:localize:${id}`, "progress");
          if (progress && JSON.parse(progress).phase === "validating") break;
        }
      } finally {
        probe.disconnect();
      }
      // Down for two seconds, its data kept.
      execFileSync("redis-cli", ["-p", String(port), "shutdown", "save"]);
      await sleep(2000);
      startRedis();
      let view: { status: string; error: unknown } = { status: "?", error: null };
      for (let k = 0; k < 60 && !["succeeded", "failed", "cancelled"].includes(view.status); k++) {
        await sleep(500);
        view = (await api.fastify.inject({ method: "GET", url: `/v1/jobs/${id}` })).json();
      }
      expect(view).toMatchObject({ status: "succeeded", error: null });
      // The outage is said once, as a warning: each failed reconnect was an error with its stack.
      const levels = logged.map((line) => JSON.parse(line) as { level: number; msg: string });
      expect(levels.filter((l) => l.level >= 50)).toEqual([]);
      expect(levels.filter((l) => /Redis unreachable/.test(l.msg))).toHaveLength(1);
    } finally {
      await worker.close();
      await api.close();
      repo.cleanup();
    }
  }, 90_000);
});

describe("a Redis the worker cannot reach", () => {
  it("is told apart from other errors whichever way the connection fails: refused, a name gone (a compose service stopped)", async () => {
    const port = await freePort();
    for (const url of [`redis://127.0.0.1:${port}`, "redis://codescout-redis-gone.invalid:6379"]) {
      const client = new Redis(url, { maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true });
      const failed = new Promise<Error>((resolve) => client.once("error", resolve));
      await client.connect().catch(() => undefined);
      const err = await failed;
      client.disconnect();
      expect(isRedisUnreachable(err), `${url}: ${(err as NodeJS.ErrnoException).code}`).toBe(true);
    }
    expect(isRedisUnreachable(new Error("ERR unknown command"))).toBe(false);
  });
});
