import { afterAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { pino } from "pino";
import { createRedis } from "../../src/queue/connection.js";
import { createLocalizeQueue } from "../../src/queue/producer.js";
import { JobStore } from "../../src/store/jobStore.js";
import { startWorker } from "../../src/worker/build.js";
import { testConfig } from "../helpers/config.js";
import { makeGitFixture } from "../helpers/gitFixture.js";
import { waitFor } from "../helpers/processes.js";
import { dropPrefix } from "../helpers/redis.js";

/**
 * A rolling upgrade: the API first (as docs/deployment.md says), so a worker may take a job with
 * a field it does not know yet; and an API may read an answer a newer worker wrote.
 */
const fx = makeGitFixture();
const config = testConfig({ ALLOW_FILE_URLS: "true" });
afterAll(async () => {
  fx.cleanup();
  await dropPrefix(config.QUEUE_PREFIX);
});

describe("versions side by side", () => {
  it("hands a job with a field the worker does not know back for an upgraded worker, for a while, then fails it saying so", async () => {
    const withNewField = (jobId: string) => ({ ...payload(jobId), options: { policy: "baseline", depth_of_search: 3 } });
    const lines: Array<Record<string, unknown>> = [];
    const logger = pino({ level: "info" }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    const redis = createRedis(config.REDIS_URL, "producer");
    const queue = createLocalizeQueue(redis, { prefix: config.QUEUE_PREFIX, retentionS: 600 });
    const store = new JobStore(queue, redis, 600);
    // Handed back for as long as a rolling upgrade takes (120 hand-backs, 5 s apart): the workers were not upgraded.
    const stale = randomUUID();
    await queue.add("localize", withNewField(stale) as never, { jobId: stale });
    await redis.hset(`${config.QUEUE_PREFIX}:localize:${stale}`, "ats", "121");
    const worker = await startWorker(config, { logger });
    try {
      const failed = await waitFor(async () => {
        const view = await store.get(stale);
        return view?.status === "failed" ? view : undefined;
      }, 30_000, "the stale job failed");
      expect(failed.error).toMatchObject({ code: "internal", message: "the job asks for what this worker does not know (options.depth_of_search): the API is newer than the workers, which were not upgraded within 10 minutes; upgrade the workers" });

      // A fresh one, however long it waited in the queue, is handed back.
      const fresh = randomUUID();
      await queue.add("localize", withNewField(fresh) as never, { jobId: fresh, timestamp: Date.now() - 60 * 60_000 });
      const handed = await waitFor(async () => lines.find((l) => l.jobId === fresh && l.msg === "a job a newer API queued (fields this worker does not know): handed back for an upgraded worker"), 30_000, "the job handed back");
      expect(handed).toMatchObject({ level: 40, fields: ["options.depth_of_search"] });
      expect(await queue.getJobState(fresh)).toBe("delayed");
      expect(await store.get(fresh)).toMatchObject({ status: "queued", started_at: null });
      await queue.remove(fresh);

      // A new field anywhere in the request, not only among its options.
      for (const [extra, field] of [[{ newTop: 1 }, "newTop"], [{ repo: { ...payload("x").repo, newRepo: 1 } }, "repo.newRepo"]] as const) {
        const id = randomUUID();
        await queue.add("localize", { ...payload(id), ...extra } as never, { jobId: id });
        const line = await waitFor(async () => lines.find((l) => l.jobId === id && typeof l.msg === "string" && l.msg.startsWith("a job a newer API queued")), 30_000, `the job with ${field} handed back`);
        expect(line).toMatchObject({ fields: [field] });
        await queue.remove(id);
      }
    } finally {
      await worker.close();
      await queue.close();
      redis.disconnect();
    }
  }, 120_000);

  it("reads an answer it cannot parse (a newer worker's) as the job's failure, not as a 500", async () => {
    const redis = createRedis(config.REDIS_URL, "producer");
    const queue = createLocalizeQueue(redis, { prefix: config.QUEUE_PREFIX, retentionS: 600 });
    const store = new JobStore(queue, redis, 600);
    const worker = await startWorker(config, { logger: pino({ level: "silent" }) });
    try {
      const jobId = randomUUID();
      await queue.add("localize", payload(jobId), { jobId });
      await waitFor(async () => ((await store.get(jobId))?.status === "succeeded" ? true : undefined), 60_000, "the job done");
      // What a newer worker writes: a finish reason this API does not know.
      const key = `${config.QUEUE_PREFIX}:localize:${jobId}`;
      const answer = JSON.parse((await redis.hget(key, "returnvalue"))!) as Record<string, unknown>;
      await redis.hset(key, "returnvalue", JSON.stringify({ ...answer, finish_reason: "a_reason_from_the_future" }));
      const view = await store.get(jobId);
      expect(view).toMatchObject({ status: "failed", result: null, error: { code: "internal", message: "this API cannot read the job's answer (result.finish_reason: written by a newer worker?): upgrade the API" } });
    } finally {
      await worker.close();
      await queue.close();
      redis.disconnect();
    }
  }, 120_000);
});

function payload(jobId: string) {
  return { jobId, repo: { url: fx.url, commit: fx.commits[0]! }, issue: "`helper` should return 43", options: { policy: "baseline" as const }, owner: "alice", submittedAt: new Date().toISOString() };
}
