import { afterAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { pino } from "pino";
import { createRedis } from "../../src/queue/connection.js";
import { createLocalizeQueue, enqueueLocalize } from "../../src/queue/producer.js";
import { startWorker } from "../../src/worker/build.js";
import { JobStore } from "../../src/store/jobStore.js";
import { testConfig } from "../helpers/config.js";
import { makeGitFixture } from "../helpers/gitFixture.js";
import { waitFor } from "../helpers/processes.js";
import { dropPrefix } from "../helpers/redis.js";

/**
 * What the worker's log says of a job's end, which is what an operator holding its id greps for:
 * the failure's code as a field, at info when it is the request's own, and the job's split of its time.
 */
const config = testConfig({ ALLOW_FILE_URLS: "true" });
const fx = makeGitFixture();
afterAll(async () => {
  fx.cleanup();
  await dropPrefix(config.QUEUE_PREFIX);
});

describe("the worker's log of a job", () => {
  it("names a failure's code as a field, at info for the request's own mistake, and a job done with its timings and owner", async () => {
    const lines: Array<Record<string, unknown>> = [];
    const logger = pino({ level: "info" }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    const redis = createRedis(config.REDIS_URL, "producer");
    const queue = createLocalizeQueue(redis, { prefix: config.QUEUE_PREFIX, retentionS: 600 });
    const worker = await startWorker(config, { logger });
    try {
      const job = (commit: string) => ({ jobId: randomUUID(), repo: { url: fx.url, commit }, issue: "`helper` should return 43", options: { policy: "baseline" as const }, owner: "alice", submittedAt: new Date().toISOString() });
      const missing = job("b".repeat(40));
      const good = job(fx.commits[0]!);
      await enqueueLocalize(queue, missing);
      await enqueueLocalize(queue, good);
      const failed = await waitFor(async () => lines.find((l) => l.msg === "job failed" && l.jobId === missing.jobId), 60_000, "the failed job's line");
      // With where its time went until then: the queue, then the repository step that failed.
      expect(failed).toMatchObject({ level: 30, code: "commit_not_found", owner: "alice", timings: { queue_wait_ms: expect.any(Number), total_ms: expect.any(Number) } });
      // And the job's view says it too, to its caller (a job_timeout spent in the repository step was a slow fetch).
      const view = await waitFor(async () => {
        const v = await new JobStore(queue, redis, 600).get(missing.jobId);
        return v?.status === "failed" ? v : undefined;
      }, 10_000, "the failed job's view");
      expect(view.error).toMatchObject({ code: "commit_not_found", timings: { queue_wait_ms: expect.any(Number), total_ms: expect.any(Number) } });
      const done = await waitFor(async () => lines.find((l) => l.msg === "job done" && l.jobId === good.jobId), 60_000, "the job's line");
      expect(done).toMatchObject({ owner: "alice", policy: "baseline", attempt: 1, timings: { queue_wait_ms: expect.any(Number), repo_ms: expect.any(Number), sandbox_ms: expect.any(Number), policy_ms: expect.any(Number) } });
    } finally {
      await worker.close();
      await queue.close();
      redis.disconnect();
    }
  }, 120_000);
});
