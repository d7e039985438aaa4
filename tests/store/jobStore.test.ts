import { gzipSync } from "node:zlib";
import { randomUUID } from "node:crypto";
import { Worker } from "bullmq";
import { afterAll, describe, expect, it } from "vitest";
import type { LocalizePayload } from "../../src/queue/contract.js";
import { closeRedis, createRedis } from "../../src/queue/connection.js";
import { createLocalizeQueue, enqueueLocalize } from "../../src/queue/producer.js";
import { JobStore, type JobView } from "../../src/store/jobStore.js";
// A whole answer, as a worker writes it: the job's view reads nothing less as succeeded.
import { finishedJobExample } from "../../src/api/schemas.js";
import { dropPrefix } from "../helpers/redis.js";

const url = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const prefix = `test-jobstore-${process.pid}-${Date.now()}`;

describe("job store", () => {
  const redis = createRedis(url, "producer");
  const queue = createLocalizeQueue(redis, { prefix, retentionS: 600 });
  const store = new JobStore(queue, redis, 600);
  const workers: Worker[] = [];
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.close()));
    await queue.close();
    await closeRedis(redis);
    await dropPrefix(prefix, url);
  });

  it("reads a job whose record lost its request (a Redis that evicts dropped it) as gone, not as an error", async () => {
    const jobId = randomUUID();
    await enqueueLocalize(queue, { jobId, repo: { url: "https://github.com/o/r.git", commit: "a".repeat(40) }, issue: "x", options: {}, owner: "t", submittedAt: new Date().toISOString() });
    expect((await store.get(jobId))?.status).toBe("queued");
    await redis.hdel(`${prefix}:localize:${jobId}`, "data");
    expect(await store.get(jobId)).toBeNull();
    expect(await store.cancel(jobId)).toBe("missing");
    // Not left for the next test's worker to take.
    await queue.remove(jobId);
  });

  it("keeps a trajectory gzipped, under a quarter of its JSON, and reads back one stored as plain JSON too", async () => {
    const id = randomUUID();
    // What a model's turn keeps: the command and the code it printed.
    const code = Array.from({ length: 400 }, (_, i) => `def handler_${i}(request):\n    return dispatch(request, "kind-${i}")\n`).join("");
    const trajectory = { steps: Array.from({ length: 5 }, (_, turn) => ({ turn, command: `sed -n '1,100p' pkg/h${turn}.py`, observation: code })) };
    await store.saveTrajectory(id, trajectory);
    expect(await store.getTrajectory(id)).toEqual(trajectory);
    const stored = (await redis.memory("USAGE", store.keys.trajectoryGz(id)))!;
    expect(stored).toBeLessThan(JSON.stringify(trajectory).length / 4);
    // Not where an API before 0.9.2 reads it as JSON: it finds none there (404), not bytes it cannot parse (500).
    expect(await redis.exists(store.keys.trajectory(id))).toBe(0);
    const old = randomUUID();
    await redis.set(store.keys.trajectory(old), JSON.stringify(trajectory));
    expect(await store.getTrajectory(old)).toEqual(trajectory);
    // Gzipped under the plain key, as a build between two commits of 0.9.2 stored it: read too.
    const between = randomUUID();
    await redis.set(store.keys.trajectory(between), gzipSync(JSON.stringify(trajectory)));
    expect(await store.getTrajectory(between)).toEqual(trajectory);
    expect(await store.getTrajectory(randomUUID())).toBeNull();
  });

  it("reads a job whose workers died running it twice (BullMQ fails it as stalled) as worker_lost, not internal", async () => {
    const jobId = randomUUID();
    await enqueueLocalize(queue, { jobId, repo: { url: "file:///x", commit: "a".repeat(40) }, issue: "x", options: { policy: "baseline" }, owner: "t", submittedAt: new Date().toISOString() });
    // Workers that take the job and never renew its lock, as a killed worker does not; the second's stalled checks fail it.
    const connection = { url, maxRetriesPerRequest: null };
    const lock = { lockDuration: 300, stalledInterval: 300, maxStalledCount: 1, skipLockRenewal: true, concurrency: 4 };
    const dying = new Worker<LocalizePayload>("localize", () => new Promise(() => undefined), { connection, prefix, ...lock });
    workers.push(dying);
    let view: JobView | null = null;
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && view?.status !== "failed") {
      await new Promise((r) => setTimeout(r, 200));
      view = await store.get(jobId);
    }
    await dying.close(true);
    expect(view).toMatchObject({ status: "failed", error: { code: "worker_lost", message: expect.stringContaining("the worker running the job stopped") } });
  });

  it("reads an ended job as gone once its time is up, though BullMQ has not removed it yet (no other job has ended since)", async () => {
    const brief = new JobStore(queue, redis, 1);
    const jobId = randomUUID();
    await enqueueLocalize(queue, { jobId, repo: { url: "file:///x", commit: "a".repeat(40) }, issue: "x", options: { policy: "baseline" }, owner: "t", submittedAt: new Date().toISOString() });
    const worker = new Worker<LocalizePayload>("localize", async () => finishedJobExample.result, { connection: { url, maxRetriesPerRequest: null }, prefix });
    workers.push(worker);
    let view: JobView | null = null;
    for (let i = 0; i < 100 && view?.status !== "succeeded"; i++) {
      await new Promise((r) => setTimeout(r, 50));
      view = await brief.get(jobId);
    }
    expect(view?.status).toBe("succeeded");
    await worker.close();
    await new Promise((r) => setTimeout(r, 1_200));
    expect(await queue.getJob(jobId)).toBeDefined();
    expect(await brief.get(jobId)).toBeNull();
  });

  it("never shows a finished job as succeeded without its result, however the reads interleave", async () => {
    // Jobs finish while clients poll them as fast as they can: a view read half before and
    // half after a job completes must not say "succeeded" with no result.
    const connection = { url, maxRetriesPerRequest: null };
    for (let i = 0; i < 2; i++) workers.push(new Worker<LocalizePayload>("localize", async () => finishedJobExample.result, { connection, prefix, concurrency: 4 }));
    const ids = Array.from({ length: 300 }, () => randomUUID());
    await Promise.all(
      ids.map((jobId) =>
        enqueueLocalize(queue, { jobId, repo: { url: "file:///x", commit: "a".repeat(40) }, issue: "x", options: { policy: "baseline" }, owner: "t", submittedAt: new Date().toISOString() }),
      ),
    );
    const bad: JobView[] = [];
    await Promise.all(
      ids.map(async (id) => {
        for (;;) {
          const view = await store.get(id);
          if (view?.status === "succeeded") {
            if (view.result === null) bad.push(view);
            return;
          }
        }
      }),
    );
    expect(bad).toEqual([]);
  });
});
