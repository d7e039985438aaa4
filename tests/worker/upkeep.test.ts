import { afterAll, describe, expect, it } from "vitest";
import Dockerode from "dockerode";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, utimesSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { Redis } from "ioredis";
import { Queue, Worker } from "bullmq";
import { QUEUES } from "../../src/queue/contract.js";
import { PID_NAMESPACE } from "../../src/sandbox/docker.js";
import { keys } from "../../src/store/keys.js";
import { liveWorkers } from "../../src/store/workers.js";
import { startWorker, type RunningWorker } from "../../src/worker/build.js";
import { testConfig } from "../helpers/config.js";
import { waitFor } from "../helpers/processes.js";
import { dropPrefix } from "../helpers/redis.js";

/**
 * What a worker that died leaves on its host (a sandbox, a half-made mirror) is removed by a
 * worker that keeps running, not only by the next one to start. Real Docker, a real worker.
 */
const config = testConfig();
const docker = new Dockerode();
let worker: RunningWorker | undefined;

afterAll(async () => {
  await worker?.close();
  await dropPrefix(config.QUEUE_PREFIX);
});

describe("a running worker's upkeep", () => {
  it("removes the sandboxes of a worker that died on this host, half-made mirrors older than any job, and expired uploads, while it runs", async () => {
    // An upload that expired in the directory store, with no new upload coming to sweep it.
    const expiredId = "e".repeat(64);
    mkdirSync(config.UPLOAD_DIR, { recursive: true });
    writeFileSync(join(config.UPLOAD_DIR, `${expiredId}.archive`), "bytes");
    const info = { upload_id: expiredId, sha256: expiredId, files: 1, bytes: 5, archive_bytes: 5, expires_at: new Date(Date.now() - 60_000).toISOString() };
    writeFileSync(join(config.UPLOAD_DIR, `${expiredId}.json`), JSON.stringify(info));
    worker = await startWorker(config, { logger: pino({ level: "silent" }), upkeepEveryMs: 300 });
    // Left after this worker started (its start's own sweep has passed): a dead worker's.
    const dead = spawnSync("true").pid!;
    const orphan = await docker.createContainer({
      Image: config.SANDBOX_IMAGE,
      Cmd: ["sleep", "60"],
      Labels: { "codescout.service": "codescout", "codescout.owner": `${hostname()}:${dead}:gone:${PID_NAMESPACE}` },
    });
    const halfMade = join(config.REPO_CACHE_DIR, "mirrors", "example.git.tmp-deadbeef");
    mkdirSync(halfMade, { recursive: true });
    writeFileSync(join(halfMade, "HEAD"), "ref: refs/heads/main\n");
    const old = new Date(Date.now() - 3 * 3_600_000);
    utimesSync(halfMade, old, old);
    // A fresh one may be a live clone's: it stays.
    const fresh = join(config.REPO_CACHE_DIR, "mirrors", "other.git.tmp-cafebabe");
    mkdirSync(fresh, { recursive: true });
    try {
      // Its heartbeat names its sandboxes' owner, so another worker knows them as live while it beats.
      const redis = new Redis(config.REDIS_URL);
      const beats = await liveWorkers(redis, keys(config.QUEUE_PREFIX)).finally(() => redis.disconnect());
      expect(beats).toEqual([expect.objectContaining({ sandboxOwner: expect.stringMatching(new RegExp(`^${hostname()}:${process.pid}:[0-9a-f]{8}:${PID_NAMESPACE}$`)) })]);
      await waitFor(async () => (await docker.getContainer(orphan.id).inspect().then(() => undefined, () => true)), 15_000, "the dead worker's sandbox to go");
      await waitFor(async () => !existsSync(halfMade) || undefined, 15_000, "the half-made mirror to go");
      expect(existsSync(fresh)).toBe(true);
      await waitFor(async () => !existsSync(join(config.UPLOAD_DIR, `${expiredId}.archive`)) || undefined, 15_000, "the expired upload to go");
    } finally {
      await orphan.remove({ force: true }).catch(() => undefined);
    }
  });

  it("removes what the queues keep of jobs ended more than JOB_TTL_S ago (their records and event stream entries), on a queue where no other job ends, and keeps the recent ones", async () => {
    await worker?.close();
    worker = undefined;
    const own = testConfig();
    const redis = new Redis(own.REDIS_URL);
    const connection = { url: own.REDIS_URL };
    try {
      // Jobs that ended, each way, in both queues: the records BullMQ keeps (a plain worker ends them).
      const past = Date.now() - 2 * own.JOB_TTL_S * 1000;
      for (const name of [QUEUES.localize, QUEUES.webhook]) {
        // The event stream's entry of an old job's end (a stream takes ids in order: written first).
        await redis.xadd(`${own.QUEUE_PREFIX}:${name}:events`, `${past}-0`, "event", "completed", "jobId", `${name}-old-done`, "returnvalue", "answer");
        const queue = new Queue(name, { connection, prefix: own.QUEUE_PREFIX });
        for (const id of ["old-done", "old-failed", "new-done"]) await queue.add("x", { issue: "AKIA-SECRET in the patch" }, { jobId: `${name}-${id}` });
        const ends = new Worker(name, async (job) => { if (job.id!.endsWith("failed")) throw new Error("no"); return "answer"; }, { connection, prefix: own.QUEUE_PREFIX });
        await waitFor(async () => ((await queue.getCompletedCount()) === 2 && (await queue.getFailedCount()) === 1) || undefined, 15_000, "the jobs to end");
        await ends.close();
        await queue.close();
        // Ended two JOB_TTL_S ago: as the ended sets record it.
        await redis.zadd(`${own.QUEUE_PREFIX}:${name}:completed`, "XX", past, `${name}-old-done`);
        await redis.zadd(`${own.QUEUE_PREFIX}:${name}:failed`, "XX", past, `${name}-old-failed`);
      }
      const stream = `${own.QUEUE_PREFIX}:${QUEUES.localize}:events`;
      expect(await redis.xlen(stream)).toBeGreaterThan(1);
      const soon = await startWorker(own, { logger: pino({ level: "silent" }), upkeepEveryMs: 3_600_000, upkeepSoonAfterMs: 300 });
      try {
        for (const name of [QUEUES.localize, QUEUES.webhook]) {
          await waitFor(async () => (await redis.exists(`${own.QUEUE_PREFIX}:${name}:${name}-old-failed`)) === 0 || undefined, 15_000, "the old jobs to go");
          expect(await redis.exists(`${own.QUEUE_PREFIX}:${name}:${name}-old-done`)).toBe(0);
          expect(await redis.exists(`${own.QUEUE_PREFIX}:${name}:${name}-new-done`)).toBe(1);
        }
        // Nothing in the stream from before the cut, though newer entries share its node.
        const [first] = await redis.xrange(stream, "-", "+", "COUNT", 1);
        expect(Number(first![0].split("-")[0])).toBeGreaterThan(Date.now() - own.JOB_TTL_S * 1000);
      } finally {
        await soon.close();
      }
    } finally {
      redis.disconnect();
      await dropPrefix(own.QUEUE_PREFIX);
    }
  });

  it("runs once more soon after its start, before its first interval: what a predecessor left while its heartbeat lived goes then", async () => {
    // The first test's worker reaps every 300 ms: stopped, so only this one's runs count.
    await worker?.close();
    worker = undefined;
    const own = testConfig();
    const soon = await startWorker(own, { logger: pino({ level: "silent" }), upkeepEveryMs: 3_600_000, upkeepSoonAfterMs: 1_500 });
    const dead = spawnSync("true").pid!;
    const orphan = await docker.createContainer({
      Image: own.SANDBOX_IMAGE,
      Cmd: ["sleep", "60"],
      Labels: { "codescout.service": "codescout", "codescout.owner": `${hostname()}:${dead}:soon:${PID_NAMESPACE}` },
    });
    try {
      await waitFor(async () => (await docker.getContainer(orphan.id).inspect().then(() => undefined, () => true)), 15_000, "the sandbox to go soon after the start");
    } finally {
      await orphan.remove({ force: true }).catch(() => undefined);
      await soon.close();
      await dropPrefix(own.QUEUE_PREFIX);
    }
  });
});
