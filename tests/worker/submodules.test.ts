import { afterAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { pino } from "pino";
import { createRedis } from "../../src/queue/connection.js";
import { createLocalizeQueue, enqueueLocalize } from "../../src/queue/producer.js";
import { JobStore } from "../../src/store/jobStore.js";
import { startWorker } from "../../src/worker/build.js";
import { answer } from "../../src/mcp/tool.js";
import { testConfig } from "../helpers/config.js";
import { makeGitFixture } from "../helpers/gitFixture.js";
import { waitFor } from "../helpers/processes.js";
import { dropPrefix } from "../helpers/redis.js";

/** A repository whose code is partly in a submodule, asked for by URL: the service fetches no submodule. */
const fx = makeGitFixture();
const prefixes: string[] = [];
afterAll(async () => {
  fx.cleanup();
  await Promise.all(prefixes.map((p) => dropPrefix(p)));
});

describe("a repository with submodules", () => {
  it("says which submodules were not searched, beside the answer and in the tool's text", async () => {
    // And an entry .gitmodules kept for a submodule since removed: it names nothing of the tree.
    writeFileSync(join(fx.dir, ".gitmodules"), '[submodule "retry"]\n\tpath = vendor/retry\n\turl = https://example.com/retry.git\n[submodule "old"]\n\tpath = vendor/old\n\turl = https://example.com/old.git\n');
    // A gitlink, as `git submodule add` records one: the commit of another repository.
    fx.git("update-index", "--add", "--cacheinfo", `160000,${fx.commits[0]!},vendor/retry`);
    fx.git("add", ".gitmodules");
    fx.git("commit", "-qm", "vendor the retry library as a submodule");
    const sha = fx.git("rev-parse", "HEAD");
    const config = testConfig({ ALLOW_FILE_URLS: "true" });
    prefixes.push(config.QUEUE_PREFIX);
    const worker = await startWorker(config, { logger: pino({ level: "silent" }) });
    const redis = createRedis(config.REDIS_URL, "producer");
    const queue = createLocalizeQueue(redis, { prefix: config.QUEUE_PREFIX, retentionS: 600 });
    const store = new JobStore(queue, redis, 600);
    try {
      const ask = async (scope?: string, commit = sha) => {
        const jobId = randomUUID();
        await enqueueLocalize(queue, { jobId, repo: { url: fx.url, commit }, issue: `\`helper\` should retry with jitter${scope ? ` (${scope})` : ""}`, options: { policy: "baseline", ...(scope ? { scope } : {}) }, owner: "alice", submittedAt: new Date().toISOString() });
        return waitFor(async () => {
          const view = await store.get(jobId);
          return view?.status === "succeeded" || view?.status === "failed" ? view : undefined;
        }, 60_000, "the job's end");
      };
      const whole = await ask();
      expect(whole.result?.notes).toEqual(["not searched: vendor/retry, a submodule (the service fetches none: localize in the submodule's own repository)"]);
      const text = (answer(whole).content[0] as { text: string }).text;
      expect(text).toContain("Note: not searched: vendor/retry, a submodule");
      // A scope without submodules says nothing of them.
      expect((await ask("pkg")).result?.notes).toBeUndefined();

      // Many, with long paths: the note stays within what an answer may carry, and says how many more.
      const long = Array.from({ length: 12 }, (_, i) => `third_party/${"deeply-nested-vendor-directory/".repeat(6)}lib${i}`);
      writeFileSync(join(fx.dir, ".gitmodules"), long.map((p, i) => `[submodule "l${i}"]\n\tpath = ${p}\n\turl = https://example.com/l${i}.git\n`).join(""));
      for (const p of long) fx.git("update-index", "--add", "--cacheinfo", `160000,${fx.commits[0]!},${p}`);
      fx.git("add", ".gitmodules");
      fx.git("commit", "-qm", "many submodules");
      const many = await ask(undefined, fx.git("rev-parse", "HEAD"));
      expect(many.status).toBe("succeeded");
      expect(many.result?.notes?.[0]?.length).toBeLessThan(2000);
      expect(many.result?.notes?.[0]).toContain(", and 2 more");
    } finally {
      await worker.close();
      await queue.close();
      redis.disconnect();
    }
  }, 120_000);
});
