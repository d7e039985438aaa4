import { afterAll, describe, expect, it } from "vitest";
import { parseEntries } from "../../src/store/events.js";
import { keys } from "../../src/store/keys.js";
import { testConfig } from "../helpers/config.js";
import { withModelJob } from "../helpers/modelJob.js";
import { makeGitFixture } from "../helpers/gitFixture.js";
import { containersOf, waitFor } from "../helpers/processes.js";
import { dropPrefix } from "../helpers/redis.js";

/**
 * A run whose job lock lapsed (its worker lost Redis longer than WORKER_LOCK_MS, and the stalled
 * check gave the job to a new run) stops, and says nothing of its end: the job ran twice, the
 * first run kept its sandbox, and its failure was published after the second's answer.
 */
const fx = makeGitFixture();
const config = testConfig({ ALLOW_FILE_URLS: "true", WORKER_LOCK_MS: "2000" });
afterAll(async () => {
  fx.cleanup();
  await dropPrefix(config.QUEUE_PREFIX);
});

describe("a run whose job lock lapsed", () => {
  it("stops, removes its sandbox and publishes no end; the job's new run answers it", () =>
    // The first run's request hangs; the second run's is answered.
    withModelJob(
      config,
      { url: fx.url, commit: fx.commits[0]! },
      (_req, i) => (i === 0 ? { hang: true } : { toolCalls: [{ name: "localization_finish", arguments: { locations: [{ file: "pkg/parser.py" }] } }] }),
      "`helper` should return 43",
      async ({ jobId, model, redis, queue, lines }) => {
        // What another worker's stalled check does to a lock that lapsed: it is gone.
        await redis.del(`${config.QUEUE_PREFIX}:localize:${jobId}:lock`);
        await waitFor(async () => lines.find((l) => l.jobId === jobId && typeof l.msg === "string" && l.msg.startsWith("this run stopped: the job's lock lapsed")), 30_000, "the first run stopped");
        const done = await waitFor(async () => lines.find((l) => l.msg === "job done" && l.jobId === jobId), 60_000, "the job's new run done");
        expect(done).toMatchObject({ policy: "codescout" });
        expect(model.requests.length).toBe(2);
        const types = parseEntries(await redis.xread("STREAMS", keys(config.QUEUE_PREFIX).events(jobId), "0")).map((e) => e.event.type);
        expect(types).toContain("finished");
        expect(types).not.toContain("cancelled");
        expect(types).not.toContain("failed");
        await waitFor(async () => (containersOf(jobId) === "" ? true : undefined), 15_000, "the runs' sandboxes removed");
        // And it stays answered: past two lock durations no stalled check or late end of the first run undoes it.
        await new Promise((r) => setTimeout(r, 4_500));
        expect(await queue.getJobState(jobId)).toBe("completed");
      },
    ),
  120_000);

  it("reads a cancel no handle received (its message missed, or its handle dropped) from the job's flag, and stops", () =>
    withModelJob(config, { url: fx.url, commit: fx.commits[0]! }, [{ hang: true }], "`helper` should return 44 (asked again: not the cached answer)", async ({ jobId, redis, store }) => {
      // The flag a DELETE sets, without the message that tells the worker at once.
      await redis.set(keys(config.QUEUE_PREFIX).cancelFlag(jobId), "1", "EX", 600);
      const ended = await waitFor(async () => {
        const view = await store.get(jobId);
        return view?.status === "cancelled" ? view : undefined;
      }, 30_000, "the job cancelled");
      expect(ended.error).toMatchObject({ code: "cancelled" });
    }),
  120_000);
});
