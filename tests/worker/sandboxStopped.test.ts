import { afterAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import type { JobView } from "../../src/store/jobStore.js";
import { testConfig } from "../helpers/config.js";
import type { RecordedRequest, ScriptedReply } from "../helpers/fakeModel.js";
import { withModelJob } from "../helpers/modelJob.js";
import { makeGitFixture } from "../helpers/gitFixture.js";
import { containersOf, waitFor } from "../helpers/processes.js";
import { dropPrefix } from "../helpers/redis.js";

/**
 * A job's sandbox stopped from outside while the job ran: by the engine (a restart stops every
 * container; `docker stop` is what it does to each) or removed by an operator. The job is not at
 * fault, and is run again; a sandbox whose own command ends its server fails the job as before.
 */
const fx = makeGitFixture();
const config = testConfig({ ALLOW_FILE_URLS: "true" });
afterAll(async () => {
  fx.cleanup();
  await dropPrefix(config.QUEUE_PREFIX);
});

const terminal = (command: string): ScriptedReply => ({ toolCalls: [{ name: "terminal", arguments: { command, security_risk: "LOW" } }] });
const finish: ScriptedReply = { toolCalls: [{ name: "localization_finish", arguments: { locations: [{ file: "pkg/util.py", function_name: "helper" }] } }] };

/** A worker on a scripted model whose first reply runs `first` in the sandbox; `during` acts on the job's container while it runs. */
async function run(first: string, during: (container: string, jobId: string) => void, issue: string, later = "rg -n helper") {
  // The first run's first turn is `first`; a later run's looks, then each answers.
  const script = (req: RecordedRequest, i: number) => (i === 0 ? terminal(first) : req.body.messages.some((m) => m.role === "tool") ? finish : terminal(later));
  let ended: { view: JobView; lines: Array<Record<string, unknown>>; requests: number } | undefined;
  await withModelJob(config, { url: fx.url, commit: fx.commits[0]! }, script, issue, async ({ jobId, model, queue, store, lines }) => {
    during(await waitFor(async () => containersOf(jobId) || undefined, 60_000, "the first run's sandbox"), jobId);
    // A hand-back waits a few seconds before the job's next run: the test does not.
    const view = await waitFor(async () => {
      if ((await queue.getJobState(jobId)) === "delayed") await (await queue.getJob(jobId))?.promote();
      const v = await store.get(jobId);
      return v && (v.status === "succeeded" || v.status === "failed") ? v : undefined;
    }, 60_000, "the job ended");
    ended = { view, lines: lines.filter((l) => l.jobId === jobId), requests: model.requests.length };
  });
  return ended!;
}

describe("a job whose sandbox is stopped from outside while it runs", () => {
  it("is run again when the engine stops the sandbox (as a restart of the engine does), and answers", async () => {
    const { view, lines, requests } = await run("sleep 20", (id) => execFileSync("docker", ["stop", "-t", "1", id]), "`helper` should return 43 (stopped)");
    expect(view.status).toBe("succeeded");
    expect(view.result?.entities).toEqual(["pkg/util.py:helper"]);
    expect(lines.some((l) => l.msg === "the job's sandbox was stopped from outside it: the job is handed back")).toBe(true);
    // Two runs: the stopped one's first turn, then the second run's two.
    expect(requests).toBe(3);
  }, 120_000);

  it("is run again when its container is removed under it", async () => {
    const { view } = await run("sleep 20", (id) => execFileSync("docker", ["rm", "-f", id]), "`helper` should return 43 (removed)");
    expect(view.status).toBe("succeeded");
  }, 120_000);

  it("fails when its sandbox is stopped every time it runs (something stops every sandbox), and not before its third", async () => {
    let stopper: NodeJS.Timeout | undefined;
    try {
      const { view, lines } = await run(
        "sleep 20",
        (id, jobId) => {
          execFileSync("docker", ["rm", "-f", id]);
          stopper = setInterval(() => {
            const ids = containersOf(jobId);
            if (ids) execFileSync("docker", ["rm", "-f", ...ids.split("\n")]);
          }, 300);
        },
        "`helper` should return 43 (stopped every time)",
        "sleep 20",
      );
      expect(view.status).toBe("failed");
      expect(view.error).toMatchObject({ code: "sandbox_failed" });
      expect(view.error?.message).toMatch(/stopped from outside it/);
      expect(lines.filter((l) => l.msg === "the job's sandbox was stopped from outside it: the job is handed back")).toHaveLength(2);
    } finally {
      clearInterval(stopper);
    }
  }, 120_000);

  it("fails as before when a command in the sandbox ends the sandbox's own server: that is the job's doing", async () => {
    const { view, lines } = await run("sleep 2; kill -TERM 1; sleep 5", () => undefined, "`helper` should return 43 (ended from inside)");
    expect(view.status).toBe("failed");
    expect(view.error).toMatchObject({ code: "sandbox_failed" });
    expect(view.error?.message).toMatch(/terminal server stopped/);
    expect(lines.some((l) => l.msg === "the job's sandbox was stopped from outside it: the job is handed back")).toBe(false);
  }, 120_000);
});
