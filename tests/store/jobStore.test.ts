import { Queue, Worker } from "bullmq";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { JobStore, type JobView } from "../../src/store/jobStore.js";
import { dropPrefix } from "../helpers/redis.js";

const url = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const prefix = `test-jobstore-${process.pid}-${Date.now()}`;

describe("job store", () => {
  const connection = { url, maxRetriesPerRequest: null };
  const queue = new Queue("localize", { connection, prefix });
  const redis = new Redis(url);
  const store = new JobStore(queue as never, redis, 600);
  const workers: Worker[] = [];
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.close()));
    await queue.close();
    redis.disconnect();
    await dropPrefix(prefix, url);
  });

  it("never shows a finished job as succeeded without its result, however the reads interleave", async () => {
    // Jobs finish while clients poll them as fast as they can: a view read half before and
    // half after a job completes must not say "succeeded" with no result.
    for (let i = 0; i < 2; i++) workers.push(new Worker("localize", async (job) => ({ n: job.data.n as number }), { connection, prefix, concurrency: 4 }));
    const n = 300;
    const jobs = await queue.addBulk(Array.from({ length: n }, (_, i) => ({ name: "localize", data: { n: i, repo: { url: "file:///x", commit: "a".repeat(40) }, owner: "t", options: { policy: "baseline" } } })));
    const bad: JobView[] = [];
    await Promise.all(
      jobs.map(async (job) => {
        for (;;) {
          const view = await store.get(job.id!);
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
