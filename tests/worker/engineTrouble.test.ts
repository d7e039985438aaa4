import { afterAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, symlinkSync, unlinkSync } from "node:fs";
import { connect, createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Dockerode from "dockerode";
import { pino } from "pino";
import { createRedis } from "../../src/queue/connection.js";
import { JobStore } from "../../src/store/jobStore.js";
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
      unlinkSync(socket);
      const ids = [randomUUID(), randomUUID(), randomUUID()];
      for (const [i, jobId] of ids.entries()) {
        await enqueueLocalize(queue, { jobId, repo: { url: fx.url, commit: fx.commits[0]! }, issue: `\`helper\` should return 43 (${i})`, options: { policy: "baseline" }, owner: "alice", submittedAt: new Date().toISOString() });
      }
      // The broken worker meets its engine on the first job it takes, hands it back, and takes no more.
      await waitFor(async () => lines.find((l) => l.msg?.startsWith("the Docker engine cannot start a sandbox")), 30_000, "the engine said down");
      // Those it had taken (one, or two at once) handed back, the others left waiting: none failed.
      const states = await waitFor(async () => {
        const now = await Promise.all(ids.map((id) => queue.getJobState(id)));
        return now.every((s) => s === "delayed" || s === "waiting" || s === "failed") ? now : undefined;
      }, 10_000, "the jobs handed back or waiting");
      expect(states.filter((s) => s === "failed")).toEqual([]);
      expect(states.filter((s) => s === "delayed").length).toBeGreaterThanOrEqual(1);

      // A worker whose engine answers takes them all, the one handed back too.
      healthy = await startWorker(config, { logger: pino({ level: "silent" }) });
      for (const id of ids) await waitFor(async () => ((await queue.getJobState(id)) === "completed" ? true : undefined), 60_000, `job ${id} answered`);

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
      if (hung) return void client.pause();
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
    const worker = await startWorker(config, {
      logger: pino({ level: "silent" }),
      sandboxes: createDockerSandboxProvider({ ...sandboxOptionsFromConfig(config), owners, docker: new Dockerode({ socketPath: hangSocket }) }),
    });
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
});
