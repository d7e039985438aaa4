import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { BaselinePolicy } from "../../src/agent/baseline.js";
import { CODESCOUT_DEFAULTS, CodeScoutPolicy } from "../../src/agent/codescout/loop.js";
import { ModelClient } from "../../src/agent/codescout/modelClient.js";
import { loadPromptPack } from "../../src/agent/codescout/prompts.js";
import { WithFallback } from "../../src/agent/fallback.js";
import type { PolicyEvent } from "../../src/agent/policy.js";
import { startFakeModel, type FakeModel, type ScriptedReply } from "../helpers/fakeModel.js";
import { policyContext, startSandbox, type SandboxFixture } from "../helpers/sandbox.js";

/**
 * The model's loop against the scripted model server, with the real baseline behind it in a real
 * sandbox: which of the model server's failures the baseline answers for, and how it says so.
 */
let model: FakeModel;
let box: SandboxFixture;
beforeAll(async () => {
  [model, box] = await Promise.all([startFakeModel(), startSandbox()]);
});
afterAll(async () => {
  await Promise.all([model?.close(), box?.cleanup()]);
});

const ISSUE = "`Parser.parse` loses values that contain '='";

function run(script: ScriptedReply[], options: { timeoutMs?: number; deadlineAt?: number } = {}) {
  model.script(script);
  // No retries and a short limit: each failure is the client's last word at once.
  const client = new ModelClient({ baseURL: model.baseURL, model: "m", timeoutMs: options.timeoutMs ?? 1_000, maxRetries: 0 });
  const events: PolicyEvent[] = [];
  const policy = new WithFallback(new CodeScoutPolicy({ ...CODESCOUT_DEFAULTS, client, prompts: loadPromptPack() }), new BaselinePolicy());
  const ctx = policyContext(box, ISSUE, (e) => events.push(e));
  return { events, result: policy.run(options.deadlineAt === undefined ? ctx : { ...ctx, deadlineAt: options.deadlineAt }) };
}

describe("the baseline behind the model", () => {
  it("answers when the model server does not answer in time, and says so after the model's turn", async () => {
    const { events, result } = run([{ hang: true }]);
    const r = await result;
    expect(r).toMatchObject({ policy: "baseline", fallback: { from: "codescout", reason: "llm_timeout" } });
    expect(r.locations?.[0]).toMatchObject({ file: "pkg/parser.py" });
    expect(events.map((e) => e.type).slice(0, 2)).toEqual(["turn", "fallback"]);
    expect(events[1]).toMatchObject({ reason: "llm_timeout" });
    // In the order it happened: the model was asked (system and user), then the fallback, then the baseline's steps.
    expect(r.trajectory.slice(0, 3)).toMatchObject([
      { kind: "request", role: "system" },
      { kind: "request", role: "user" },
      { kind: "tool", name: "fallback", from: "codescout", reason: "llm_timeout" },
    ]);
    // The model's failed request is in the job's usage: one call, waited on for the client's limit (1 s).
    expect(r.usage.modelCalls).toBe(1);
    expect(r.usage.modelMs).toBeGreaterThanOrEqual(1_000);
    expect(r.usage.toolMs).toBeGreaterThan(0);
  });

  it("answers when the model server is away (503)", async () => {
    const r = await run([{ status: 503 }]).result;
    expect(r).toMatchObject({ policy: "baseline", fallback: { from: "codescout", reason: "llm_unavailable" }, usage: { modelCalls: 1, promptTokens: 0, completionTokens: 0 } });
  });

  it("answers when the model server's reply is not a chat completion (a proxy's page with 200)", async () => {
    const r = await run([{ raw: "<html>upstream connect error</html>" }]).result;
    expect(r).toMatchObject({ policy: "baseline", fallback: { from: "codescout", reason: "llm_unavailable" } });
    expect(r.trajectory.find((s) => (s as { name?: string }).name === "fallback")).toMatchObject({ detail: "the model server's reply is not a chat completion (not JSON)" });
  });

  it("ends the model's time before the job's, so that the baseline answers in it: a request allowed a minute stops with the model's time", async () => {
    // Three seconds left of the job: the model has half of them, the baseline the rest.
    const r = await run([{ hang: true }], { timeoutMs: 60_000, deadlineAt: performance.now() + 3_000 }).result;
    expect(r).toMatchObject({ policy: "baseline", fallback: { from: "codescout", reason: "llm_timeout" } });
    expect(r.locations?.[0]).toMatchObject({ file: "pkg/parser.py" });
  });

  it("does not hide a model server that refuses the request: the failure is the caller's to see", async () => {
    await expect(run([{ status: 400 }]).result).rejects.toMatchObject({ name: "ModelError", reason: "llm_bad_request" });
  });
});
