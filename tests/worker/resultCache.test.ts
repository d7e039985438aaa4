import { afterAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { pino } from "pino";
import { createRedis } from "../../src/queue/connection.js";
import { resultCacheKey } from "../../src/queue/cacheKey.js";
import type { LocalizeResult } from "../../src/queue/contract.js";
import { createLocalizeQueue, enqueueLocalize } from "../../src/queue/producer.js";
import { JobStore } from "../../src/store/jobStore.js";
import { ResultCache } from "../../src/store/resultCache.js";
import { ANSWER_REVISION } from "../../src/version.js";
import { startWorker } from "../../src/worker/build.js";
import { testConfig } from "../helpers/config.js";
import { makeGitFixture } from "../helpers/gitFixture.js";
import { waitFor } from "../helpers/processes.js";
import { dropPrefix } from "../helpers/redis.js";

/** An answer the worker finds in the result cache (made after the job was queued: the API found none). */
const fx = makeGitFixture();
const prefixes: string[] = [];
afterAll(async () => {
  fx.cleanup();
  await Promise.all(prefixes.map((p) => dropPrefix(p)));
});

describe("an answer a worker takes from the result cache", () => {
  it("carries this job's time and no model use, not the job's that made it", async () => {
    const config = testConfig({ ALLOW_FILE_URLS: "true" });
    prefixes.push(config.QUEUE_PREFIX);
    const redis = createRedis(config.REDIS_URL, "producer");
    const queue = createLocalizeQueue(redis, { prefix: config.QUEUE_PREFIX, retentionS: 600 });
    const store = new JobStore(queue, redis, 600);
    const worker = await startWorker(config, { logger: pino({ level: "silent" }) });
    try {
      const issue = "`helper` should return 43 (answered before)";
      const options = { policy: "baseline" as const };
      const made: LocalizeResult = {
        policy: "baseline", finish_reason: "finish_tool", commit_sha: fx.commits[0]!, repo_cache: "cold", answered: true,
        locations: [{ file: "pkg/util.py", function_name: "helper", valid: true }], files: ["pkg/util.py"], modules: [], entities: ["pkg/util.py:helper"], turns: 4,
        timings: { queue_wait_ms: 5, repo_ms: 900, sandbox_ms: 700, policy_ms: 30_000, model_ms: 28_000, tool_ms: 2_000, total_ms: 31_600 },
        usage: { model_calls: 4, prompt_tokens: 12_000, completion_tokens: 800 },
      };
      await new ResultCache(redis, config.QUEUE_PREFIX, 600).put(resultCacheKey({ url: fx.url, sha: fx.commits[0]!, issue, options, model: config.MODEL_NAME, service: ANSWER_REVISION }), made);
      const jobId = randomUUID();
      await enqueueLocalize(queue, { jobId, repo: { url: fx.url, commit: fx.commits[0]! }, issue, options, owner: "alice", submittedAt: new Date().toISOString() });
      const view = await waitFor(async () => ((await store.get(jobId))?.status === "succeeded" ? store.get(jobId) : undefined), 60_000, "the job answered");
      expect(view?.result?.entities).toEqual(made.entities);
      expect(view?.cached).toBe(true);
      expect(view?.result?.usage).toEqual({ model_calls: 0, prompt_tokens: 0, completion_tokens: 0 });
      expect(view?.result?.timings).toMatchObject({ sandbox_ms: 0, policy_ms: 0, model_ms: 0, tool_ms: 0 });
      expect(view?.result?.timings.total_ms).toBeLessThan(31_600);
    } finally {
      await worker.close();
      await queue.close();
      redis.disconnect();
    }
  }, 120_000);
});
