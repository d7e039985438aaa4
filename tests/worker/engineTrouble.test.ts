import { afterAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, symlinkSync, unlinkSync } from "node:fs";
import { connect, createServer, type Socket } from "node:net";
import { createServer as createHttpServer, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Dockerode from "dockerode";
import { pino } from "pino";
import { createRedis } from "../../src/queue/connection.js";
import { JobStore } from "../../src/store/jobStore.js";
import { keys } from "../../src/store/keys.js";
import { createLocalizeQueue, enqueueLocalize } from "../../src/queue/producer.js";
import { createDockerSandboxProvider } from "../../src/sandbox/docker.js";
import { sandboxOptionsFromConfig } from "../../src/sandbox/config.js";
import { startWorker } from "../../src/worker/build.js";
import { testConfig } from "../helpers/config.js";
import { makeGitFixture } from "../helpers/gitFixture.js";
import { waitFor } from "../helpers/processes.js";
import { dropPrefix } from "../helpers/redis.js";

/**
 * A worker whose Docker engine goes away (the engine reached through a socket path of the
 * test's own, a link to the real one, taken away and put back). Two workers on one queue, the
 * other's engine fine: what the broken one takes, the other answers.
 */
const fx = makeGitFixture();
const dir = mkdtempSync(join(tmpdir(), "codescout-engine-"));
const socket = join(dir, "docker.sock");
const engineSocket = process.env.DOCKER_HOST?.startsWith("unix://") ? process.env.DOCKER_HOST.slice("unix://".length) : "/var/run/docker.sock";
const prefixes: string[] = [];
afterAll(async () => {
  fx.cleanup();
  rmSync(dir, { recursive: true, force: true });
  await Promise.all(prefixes.map((p) => dropPrefix(p)));
});

describe("a worker whose Docker engine cannot start sandboxes", () => {
  it("hands the job it took back and takes no other until its engine answers, so a healthy worker answers them", async () => {
    symlinkSync(engineSocket, socket);
    const config = testConfig({ ALLOW_FILE_URLS: "true" });
    prefixes.push(config.QUEUE_PREFIX);
    const lines: Array<{ msg?: string; level?: number }> = [];
    const logger = pino({ level: "info" }, { write: (l: string) => void lines.push(JSON.parse(l) as { msg?: string }) });
    const owners = { scope: `engine-${config.QUEUE_PREFIX}`, alive: async () => null };
    const broken = await startWorker(config, {
      logger,
      engineWatchEveryMs: 300,
      sandboxes: createDockerSandboxProvider({ ...sandboxOptionsFromConfig(config), owners, docker: new Dockerode({ socketPath: socket }) }),
    });
    const redis = createRedis(config.REDIS_URL, "producer");
    const queue = createLocalizeQueue(redis, { prefix: config.QUEUE_PREFIX, retentionS: 600 });
    let healthy: Awaited<ReturnType<typeof startWorker>> | undefined;
    try {
      // The first job it takes was started many times before for other reasons (handed back for
      // an upgraded worker, say): its engine's trouble is counted apart, and it is handed back all the same.
      const often = randomUUID();
      await queue.add("localize", { jobId: often, repo: { url: fx.url, commit: fx.commits[0]! }, issue: "`helper` should return 43 (started often)", options: { policy: "baseline" }, owner: "alice", submittedAt: new Date().toISOString() }, { jobId: often, delay: 1_000 });
      await redis.hset(`${config.QUEUE_PREFIX}:localize:${often}`, "ats", "60");
      unlinkSync(socket);
      await waitFor(async () => lines.find((l) => l.msg?.startsWith("the Docker engine cannot start a sandbox")), 30_000, "the engine said down");
      await waitFor(async () => ((await queue.getJobState(often)) === "delayed" && Number(await redis.hget(`${config.QUEUE_PREFIX}:localize:${often}`, "ats")) > 60 ? true : undefined), 10_000, "the job handed back");
      // The jobs that come next wait for a worker that can run them: this one takes none.
      const ids = [often, randomUUID(), randomUUID()];
      for (const [i, jobId] of ids.slice(1).entries()) {
        await enqueueLocalize(queue, { jobId, repo: { url: fx.url, commit: fx.commits[0]! }, issue: `\`helper\` should return 43 (${i})`, options: { policy: "baseline" }, owner: "alice", submittedAt: new Date().toISOString() });
      }
      await new Promise((r) => setTimeout(r, 1_000));
      expect(await Promise.all(ids.slice(1).map((id) => queue.getJobState(id)))).toEqual(["waiting", "waiting"]);
      expect(broken.worker.isPaused()).toBe(true);

      // A worker whose engine answers takes them all, the one handed back too.
      healthy = await startWorker(config, { logger: pino({ level: "silent" }) });
      for (const id of ids) await waitFor(async () => ((await queue.getJobState(id)) === "completed" ? true : undefined), 60_000, `job ${id} answered`);
      // Its sandbox started: an engine's trouble later would be timed from then, not from this one's.
      expect(await redis.exists(keys(config.QUEUE_PREFIX).engineTrouble(often))).toBe(0);

      // The engine back, the broken worker takes jobs again.
      symlinkSync(engineSocket, socket);
      await waitFor(async () => lines.find((l) => l.msg === "the Docker engine can start sandboxes again: taking jobs"), 10_000, "the engine said back");
      expect(broken.worker.isPaused()).toBe(false);
    } finally {
      await healthy?.close();
      await broken.close();
      await queue.close();
      redis.disconnect();
    }
  }, 180_000);

  it("ends a job at its time limit, and on its cancel, while its engine hangs on the sandbox's creation", async () => {
    // The engine reached through a proxy of the test's own, which can stop passing anything on: an engine that hangs.
    const pairs: Socket[] = [];
    let hung = false;
    const proxy = createServer((client) => {
      pairs.push(client);
      // Hung: what it is sent is read and never answered (read, so that a caller giving up is seen).
      if (hung) return void client.resume();
      const up = connect(engineSocket);
      pairs.push(up);
      client.pipe(up);
      up.pipe(client);
      client.on("error", () => up.destroy());
      up.on("error", () => client.destroy());
    });
    const hangSocket = join(dir, "hang.sock");
    await new Promise<void>((r) => proxy.listen(hangSocket, r));
    const config = testConfig({ ALLOW_FILE_URLS: "true", SANDBOX_JOB_TIMEOUT_S: "10" });
    prefixes.push(config.QUEUE_PREFIX);
    const owners = { scope: `hang-${config.QUEUE_PREFIX}`, alive: async () => null };
    const sandboxes = createDockerSandboxProvider({ ...sandboxOptionsFromConfig(config), owners, docker: new Dockerode({ socketPath: hangSocket }) });
    const worker = await startWorker(config, { logger: pino({ level: "silent" }), sandboxes });
    const redis = createRedis(config.REDIS_URL, "producer");
    const queue = createLocalizeQueue(redis, { prefix: config.QUEUE_PREFIX, retentionS: 600 });
    const store = new JobStore(queue, redis, 600);
    try {
      hung = true;
      for (const s of pairs) s.pause();
      const timedOut = randomUUID();
      await enqueueLocalize(queue, { jobId: timedOut, repo: { url: fx.url, commit: fx.commits[0]! }, issue: "`helper` should return 43 (hung)", options: { policy: "baseline" }, owner: "alice", submittedAt: new Date().toISOString() });
      const failed = await waitFor(async () => ((await store.get(timedOut))?.status === "failed" ? store.get(timedOut) : undefined), 30_000, "the job ended at its limit");
      expect(failed?.error).toMatchObject({ code: "job_timeout" });

      // Its ping gives up in time, and with its connection: asked every few seconds, a hung engine kept each one open.
      const from = pairs.length;
      await expect(sandboxes.ping()).rejects.toThrow("the Docker engine did not answer in time");
      expect(pairs.length).toBeGreaterThan(from);
      // Those opened meanwhile (this ping's, and the heartbeat's, which gives up as it does) are closed.
      await expect.poll(() => pairs.slice(from).every((c) => c.closed), { timeout: 6_000 }).toBe(true);

      const cancelled = randomUUID();
      await enqueueLocalize(queue, { jobId: cancelled, repo: { url: fx.url, commit: fx.commits[0]! }, issue: "`helper` should return 43 (hung, cancelled)", options: { policy: "baseline" }, owner: "alice", submittedAt: new Date().toISOString() });
      await waitFor(async () => ((await store.get(cancelled))?.progress?.phase === "sandbox" ? true : undefined), 10_000, "the job at its sandbox");
      await store.cancel(cancelled);
      const ended = await waitFor(async () => ((await store.get(cancelled))?.status === "cancelled" ? true : undefined), 3_000, "the job cancelled at once");
      expect(ended).toBe(true);
    } finally {
      for (const s of pairs) s.destroy();
      proxy.close();
      await worker.close();
      await queue.close();
      redis.disconnect();
    }
  }, 60_000);

  it("does not start on an engine that cannot limit a sandbox's memory, and leaves no heartbeat", async () => {
    // The real engine, whose answer to `info` says what one without the cgroup controllers says.
    const proxy = createHttpServer((req, res) => {
      const up = request({ socketPath: engineSocket, path: req.url, method: req.method, headers: req.headers }, (answer) => {
        if (!/\/info$/.test(req.url ?? "")) {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          return void answer.pipe(res);
        }
        const chunks: Buffer[] = [];
        answer.on("data", (c: Buffer) => chunks.push(c));
        answer.on("end", () => {
          const info = { ...(JSON.parse(Buffer.concat(chunks).toString("utf8")) as object), MemoryLimit: false };
          res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(info));
        });
      });
      req.pipe(up);
    });
    const limitless = join(dir, "limitless.sock");
    await new Promise<void>((r) => proxy.listen(limitless, r));
    const config = testConfig();
    prefixes.push(config.QUEUE_PREFIX);
    const redis = createRedis(config.REDIS_URL, "producer");
    try {
      const owners = { scope: `limits-${config.QUEUE_PREFIX}`, alive: async () => null };
      const sandboxes = createDockerSandboxProvider({ ...sandboxOptionsFromConfig(config), owners, docker: new Dockerode({ socketPath: limitless }) });
      await expect(startWorker(config, { logger: pino({ level: "silent" }), sandboxes })).rejects.toThrow("the Docker engine cannot limit a sandbox's memory");
      expect(await redis.keys(`${config.QUEUE_PREFIX}:*worker*`)).toEqual([]);
    } finally {
      proxy.close();
      redis.disconnect();
    }
  });
});
