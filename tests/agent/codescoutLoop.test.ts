import { sharedPath } from "../helpers/shared.js";
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { readFileSync } from "node:fs";
import { CODESCOUT_DEFAULTS, CodeScoutPolicy, type CodeScoutSettings } from "../../src/agent/codescout/loop.js";
import { ModelClient, ModelError } from "../../src/agent/codescout/modelClient.js";
import { loadPromptPack } from "../../src/agent/codescout/prompts.js";
import type { PolicyResult } from "../../src/agent/policy.js";
import { startFakeModel, type FakeModel, type ScriptedReply } from "../helpers/fakeModel.js";
import { startSandbox, type SandboxFixture } from "../helpers/sandbox.js";

let model: FakeModel;
let box: SandboxFixture;

beforeAll(async () => {
  [model, box] = await Promise.all([startFakeModel(), startSandbox()]);
});
afterAll(async () => {
  await Promise.all([model.close(), box.cleanup()]);
});

const ISSUE = "Parser.parse drops values that contain '='";
const term = (command: string, extra: Record<string, unknown> = {}) => ({ name: "terminal", arguments: { command, security_risk: "LOW", ...extra } });
const finish = (locations: unknown[]) => ({ name: "localization_finish", arguments: { locations } });

async function episode(
  script: ScriptedReply[],
  overrides: Partial<CodeScoutSettings> = {},
  clientOverrides: Partial<ConstructorParameters<typeof ModelClient>[0]> = {},
  signal?: AbortSignal,
  deadlineAt?: number,
): Promise<PolicyResult> {
  model.requests.length = 0;
  model.script(script);
  const client = new ModelClient({ baseURL: model.baseURL, model: "OpenHands/CodeScout-4B", timeoutMs: 10_000, maxRetries: 2, ...clientOverrides });
  const policy = new CodeScoutPolicy({ ...CODESCOUT_DEFAULTS, client, prompts: loadPromptPack(), ...overrides });
  return policy.run({
    issue: ISSUE,
    workingDir: box.workingDir,
    terminal: box.sandbox.terminal,
    exec: (argv, o) => box.sandbox.exec(argv, o),
    signal: signal ?? new AbortController().signal,
    onEvent: () => undefined,
    ...(deadlineAt === undefined ? {} : { deadlineAt }),
  });
}

type Msg = { role: string; content: unknown; tool_call_id?: string; name?: string; tool_calls?: unknown[] };
const messagesOf = (i: number) => model.requests[i]!.body.messages as Msg[];
const toolMessages = (i: number) => messagesOf(i).filter((m) => m.role === "tool");

describe("CodeScout loop: faithful to training", () => {
  it("sends exactly the training request shape (golden two-turn episode)", async () => {
    const result = await episode([
      { toolCalls: [{ id: "call_a", ...term('rg -n "def parse" -t py') }] },
      { toolCalls: [{ id: "call_b", ...finish([{ file: "pkg/parser.py", class_name: "Parser", function_name: "parse" }]) }] },
    ]);
    expect(result).toMatchObject({ finishReason: "finish_tool", turns: 2, locations: [{ file: "pkg/parser.py", class_name: "Parser", function_name: "parse" }] });

    const body = model.requests[1]!.body;
    // Sampling exactly as in CodeScout's evaluation; no tool_choice, no max_tokens, not streaming.
    expect(body.temperature).toBe(0.6);
    expect(body.top_p).toBe(1);
    expect(body.chat_template_kwargs).toEqual({ enable_thinking: false });
    expect(body).not.toHaveProperty("tool_choice");
    expect(body).not.toHaveProperty("max_tokens");
    expect(body.stream).toBe(false);
    expect(body.model).toBe("OpenHands/CodeScout-4B");

    // The tools' structure is the protocol's, byte for byte once descriptions are removed.
    const strip = (v: unknown): unknown =>
      Array.isArray(v) ? v.map(strip) : v && typeof v === "object" ? Object.fromEntries(Object.entries(v).filter(([k]) => k !== "description").map(([k, x]) => [k, strip(x)])) : v;
    expect(strip(body.tools)).toEqual(JSON.parse(readFileSync(sharedPath("golden", "tools.json"), "utf8")));

    const msgs = body.messages as Msg[];
    expect(msgs.map((m) => m.role)).toEqual(["system", "user", "assistant", "tool"]);
    expect(msgs[1]!.content).toContain(`<issue_description>\n${ISSUE}\n</issue_description>`);
    expect(msgs[1]!.content).toContain(box.workingDir);
    expect(msgs[2]).toMatchObject({ role: "assistant", content: null, tool_calls: [{ id: "call_a", type: "function", function: { name: "terminal" } }] });
    expect(msgs[3]).toMatchObject({ role: "tool", tool_call_id: "call_a", name: "terminal" });
    const obs = msgs[3]!.content as string;
    expect(obs).toContain("pkg/parser.py\n10:    def parse(self, text):");
    expect(obs).toContain(`\n[The command completed with exit code 0.]\n[Current working directory: ${box.workingDir}]\n[Python interpreter: `);
    expect(obs.endsWith("\n[Command finished with exit code 0]")).toBe(true);
  });

  it("runs parallel calls one after another in the same shell and answers each in call order", async () => {
    await episode([
      { toolCalls: [term("cd pkg"), term("pwd"), term("export X=7"), term("echo $X")] },
      { toolCalls: [finish([{ file: "pkg/util.py", function_name: "helper" }])] },
    ]);
    const tools = toolMessages(1);
    expect(tools).toHaveLength(4);
    const ids = (messagesOf(1)[2]!.tool_calls as Array<{ id: string }>).map((c) => c.id);
    expect(tools.map((t) => t.tool_call_id)).toEqual(ids);
    expect(tools[1]!.content).toMatch(new RegExp(`^${box.workingDir}/pkg\\n`));
    expect(tools[3]!.content).toMatch(/^7\n/);
    await box.sandbox.terminal.run({ command: `cd ${box.workingDir}` });
  });

  it("answers unknown tools and bad arguments with error messages naming the tool, and accepts a missing security_risk", async () => {
    await episode([
      {
        toolCalls: [
          { name: "str_replace_editor", arguments: { path: "x" } },
          { name: "terminal", arguments: { command: "ls", security_risk: "LOW", color: true } },
          { name: "terminal", arguments: { command: "ls", security_risk: "EXTREME" } },
          { name: "terminal", arguments: { security_risk: "LOW" } },
          { name: "terminal", arguments: { command: "ls", is_input: true, reset: true } },
          { name: "terminal", arguments: "{not json" },
          { name: "terminal", arguments: { command: "echo ok" } },
        ],
      },
      { toolCalls: [finish([{ file: "pkg/parser.py" }])] },
    ]);
    const t = toolMessages(1).map((m) => m.content as string);
    // Worded as the reference agent's messages were.
    expect(t[0]).toBe("Tool 'str_replace_editor' not found. Available: ['terminal', 'localization_finish']");
    for (const e of t.slice(1, 6)) expect(e).toMatch(/^Error validating args .* for tool 'terminal': /s);
    expect(t[1]).toContain('{"command":"ls","security_risk":"LOW","color":true}');
    expect(t[1]).toContain("color");
    expect(t[4]).toContain("reset");
    expect(t[6]).toMatch(/^ok\n\[The command completed with exit code 0\.\]/);
  });
});

describe("CodeScout loop: robust endings", () => {
  it("recovers an answer after a text-only reply by asking for localization_finish", async () => {
    const result = await episode([{ content: "I think it is the parser." }, { toolCalls: [finish([{ file: "pkg/parser.py" }])] }]);
    expect(result).toMatchObject({ finishReason: "recovered", locations: [{ file: "pkg/parser.py" }], turns: 1 });
    const last = model.requests[1]!.body;
    expect(last.tool_choice).toEqual({ type: "function", function: { name: "localization_finish" } });
    const msgs = last.messages as Msg[];
    expect(msgs.at(-2)).toMatchObject({ role: "assistant", content: "I think it is the parser." });
    expect(msgs.at(-1)!.role).toBe("user");
  });

  it("asks again after a blank reply (no text, no call), as the reference loop did, with the history as it was, the turn spent", async () => {
    const result = await episode([{ content: "" }, { toolCalls: [finish([{ file: "pkg/parser.py" }])] }], { finishPolicy: "strict" });
    expect(result).toMatchObject({ finishReason: "finish_tool", locations: [{ file: "pkg/parser.py" }], turns: 2 });
    expect(model.requests).toHaveLength(2);
    expect(model.requests[1]!.body.messages).toEqual(model.requests[0]!.body.messages);
  });

  it("ends with no answer in strict mode, exactly as in training", async () => {
    const result = await episode([{ content: "done" }], { finishPolicy: "strict" });
    expect(result).toMatchObject({ finishReason: "text_reply", locations: null });
    expect(model.requests).toHaveLength(1);
  });

  it("recovers after the budget is spent, and counts model calls as the budget", async () => {
    const result = await episode([{ toolCalls: [term("ls")] }, { toolCalls: [term("ls pkg")] }, { toolCalls: [finish([{ file: "pkg/util.py" }])] }], { maxTurns: 2 });
    expect(result.finishReason).toBe("recovered");
    expect(model.requests).toHaveLength(3);
    expect(model.requests[2]!.body.tool_choice).toBeDefined();
  });

  it("parses raw <tool_call> text leniently when the server's parser gave up", async () => {
    const raw =
      'Let me search.\n<tool_call>\n{"name": "terminal", "arguments": {"command": "wc -l pkg/parser.py", "security_risk": "LOW",}}\n</tool_call>';
    const result = await episode([{ content: raw }, { toolCalls: [finish([{ file: "pkg/parser.py" }])] }]);
    expect(result.finishReason).toBe("finish_tool");
    const msgs = messagesOf(1);
    expect(msgs[2]).toMatchObject({ role: "assistant", content: "Let me search.", tool_calls: [{ function: { name: "terminal" } }] });
    expect(msgs[3]!.content).toMatch(/^20 pkg\/parser\.py\n/);
  });

  it("stops a stuck episode after 4 identical actions with identical observations", async () => {
    const result = await episode([{ toolCalls: [term("ls")] }], { finishPolicy: "strict" });
    expect(result.finishReason).toBe("stuck");
    expect(model.requests).toHaveLength(4);
  });

  it("goes to recovery before the context window overflows, making room by dropping unseen outputs", async () => {
    const result = await episode(
      [
        { toolCalls: [term("cat pkg/parser.py")], usage: { prompt_tokens: 38_000, completion_tokens: 100 } },
        { toolCalls: [finish([{ file: "pkg/parser.py", class_name: "Parser" }])] },
      ],
      { contextWindow: 40_960 },
    );
    expect(result.finishReason).toBe("recovered");
    const msgs = messagesOf(1);
    expect(msgs.at(-2)).toMatchObject({ role: "tool", content: "[Output omitted: the context window is full.]" });
  });

  it("makes the same room when the last turn's outputs fill the window, whatever ended the episode (here its last turn)", async () => {
    const result = await episode(
      [
        { toolCalls: [term("cat pkg/parser.py")], usage: { prompt_tokens: 38_000, completion_tokens: 100 } },
        { toolCalls: [finish([{ file: "pkg/parser.py", class_name: "Parser" }])] },
      ],
      { contextWindow: 40_960, maxTurns: 1 },
    );
    expect(result.finishReason).toBe("recovered");
    expect(messagesOf(1).at(-2)).toMatchObject({ role: "tool", content: "[Output omitted: the context window is full.]" });
  });

  it("keeps a reply whose <tool_call> blocks cannot be read as the model wrote it, for the recovery to see", async () => {
    const written = '<tool_call>{"name": "terminal", "arguments": {"command": "ls\n</tool_call>';
    const result = await episode([{ content: written }, { toolCalls: [finish([{ file: "pkg/parser.py" }])] }]);
    expect(result.finishReason).toBe("recovered");
    expect(messagesOf(1).find((m) => m.role === "assistant")).toMatchObject({ content: written });
  });

  it("takes the recovery path when the server answers 400 for context length", async () => {
    const result = await episode([
      { status: 400, body: { error: { message: "This model's maximum context length is 40960 tokens. However, you requested 41000 tokens", type: "BadRequestError" } } },
    ]);
    expect(result.finishReason).toBe("context_exhausted");
    expect(result.locations).toBeNull();
  });
});

describe("CodeScout loop: model server faults", () => {
  it("retries 429 with backoff, then succeeds", async () => {
    model.requests.length = 0;
    let n = 0;
    model.script(() => (++n === 1 ? { status: 429, headers: { "retry-after-ms": "50" } } : { toolCalls: [finish([{ file: "pkg/util.py" }])] }));
    const client = new ModelClient({ baseURL: model.baseURL, model: "m", timeoutMs: 5000, maxRetries: 3 });
    const result = await new CodeScoutPolicy({ ...CODESCOUT_DEFAULTS, client, prompts: loadPromptPack() }).run({
      issue: ISSUE,
      workingDir: box.workingDir,
      terminal: box.sandbox.terminal,
      exec: (a, o) => box.sandbox.exec(a, o),
      signal: new AbortController().signal,
      onEvent: () => undefined,
    });
    expect(result.finishReason).toBe("finish_tool");
    expect(model.requests).toHaveLength(2);
  });

  it("fails with llm_unavailable after retries on a server that answers 500 forever", async () => {
    const err = await episode([{ status: 500, headers: { "retry-after-ms": "10" } }], {}, { maxRetries: 2 }).catch((e) => e);
    expect(err).toBeInstanceOf(ModelError);
    expect(err.reason).toBe("llm_unavailable");
    expect(model.requests).toHaveLength(3);
  });

  it("fails with llm_unavailable when nothing listens", async () => {
    const err = await episode([], {}, { baseURL: "http://127.0.0.1:9/v1", maxRetries: 1 }).catch((e) => e);
    expect(err.reason).toBe("llm_unavailable");
  });

  it("fails with llm_timeout on a server that never answers", async () => {
    const err = await episode([{ hang: true }], {}, { timeoutMs: 300, maxRetries: 1 }).catch((e) => e);
    expect(err.reason).toBe("llm_timeout");
  });

  it("times out a reply that trickles in after its headers, as one that never comes", async () => {
    const err = await episode([{ trickle: true }], {}, { timeoutMs: 600, maxRetries: 0 }).catch((e) => e);
    expect(err).toMatchObject({ name: "ModelError", reason: "llm_timeout" });
  });

  it("waits no longer than the model's time for a Retry-After, and is cancelled while it waits", async () => {
    // An hour asked for, the model's time ending in two seconds: the failure stands at once.
    const late = await episode([{ status: 503, headers: { "retry-after": "3600" } }], {}, { maxRetries: 3 }, undefined, performance.now() + 2_000).catch((e) => e);
    expect(late).toMatchObject({ reason: "llm_unavailable" });
    expect(model.requests).toHaveLength(1);
    // Asked for 20 s, within the model's time: a cancel ends the wait.
    const ctrl = new AbortController();
    setTimeout(() => ctrl.abort(), 300);
    const cancelled = await episode([{ status: 503, headers: { "retry-after": "20" } }], {}, { maxRetries: 3 }, ctrl.signal).catch((e) => e);
    expect(cancelled).toMatchObject({ reason: "cancelled" });
    expect(model.requests).toHaveLength(1);
    // The model's time over before a request: none is made.
    const over = await episode([{ toolCalls: [finish([{ file: "pkg/util.py" }])] }], {}, {}, undefined, performance.now() - 1).catch((e) => e);
    expect(over).toMatchObject({ reason: "llm_timeout" });
    expect(model.requests).toHaveLength(0);
  });

  it("takes a reply that is not a chat completion as the server's failure, retried, never the loop's", async () => {
    for (const raw of ["<html><body>502 Bad Gateway</body></html>", '{"error": {"message": "upstream failed"}}', '{"choices": []}', '{"choices": null}', "", '{"choices": [{"message": {"content": ["a"]}}]}']) {
      const err = await episode([{ raw }], {}, { maxRetries: 1 }).catch((e) => e);
      expect(err, raw).toMatchObject({ name: "ModelError", reason: "llm_unavailable" });
      expect(err.message, raw).toMatch(/^the model server's reply is not a chat completion/);
      expect(model.requests, raw).toHaveLength(2);
    }
    const huge = await episode([{ raw: JSON.stringify({ choices: [{ message: { content: "x".repeat(5 << 20) } }] }) }], {}, { maxRetries: 0 }).catch((e) => e);
    expect(huge).toMatchObject({ reason: "llm_unavailable", message: "the model server's reply is over 4 MiB" });
  });

  it("counts only token counts that are counts, and takes arguments given as an object", async () => {
    const reply = (usage: Record<string, unknown>, args: unknown) =>
      JSON.stringify({ choices: [{ message: { role: "assistant", content: null, tool_calls: [{ id: "c1", function: { name: "localization_finish", arguments: args } }] } }], usage });
    const result = await episode([{ raw: reply({ prompt_tokens: -5, completion_tokens: "1000" }, { locations: [{ file: "pkg/util.py" }] }) }]);
    expect(result).toMatchObject({ finishReason: "finish_tool", locations: [{ file: "pkg/util.py" }], usage: { promptTokens: 0, completionTokens: 0 } });
    const huge = await episode([{ raw: reply({ prompt_tokens: 1e300, completion_tokens: 3.5 }, JSON.stringify({ locations: [{ file: "pkg/util.py" }] })) }]);
    expect(huge.usage).toMatchObject({ promptTokens: 0, completionTokens: 0 });
  });

  it("reads vLLM's flat error body (before 0.10.1) for a context overflow, and keeps its words", async () => {
    const flat = { object: "error", message: "This model's maximum context length is 40960 tokens. However, you requested 41000 tokens", type: "BadRequestError", code: 400 };
    const result = await episode([{ status: 400, body: flat }]);
    expect(result.finishReason).toBe("context_exhausted");
    const refused = await episode([{ status: 404, body: { object: "error", message: "The model `m` does not exist.", type: "NotFoundError", code: 404 } }], {}, { maxRetries: 0 }).catch((e) => e);
    expect(refused).toMatchObject({ reason: "llm_bad_request", message: "model server refused the request (404): 404 The model `m` does not exist." });
  });

  it("follows no redirect of the model server, and keeps its key and its long pages out of the failure", async () => {
    const elsewhere = await startFakeModel([{ toolCalls: [finish([{ file: "pkg/util.py" }])] }]);
    try {
      const moved = await episode([{ status: 307, headers: { location: `${elsewhere.baseURL}/chat/completions` } }], {}, { maxRetries: 2 }).catch((e) => e);
      expect(moved).toMatchObject({ reason: "llm_unavailable", message: "the model server redirected the request (307): set MODEL_BASE_URL to the address it answers on" });
      expect(elsewhere.requests).toHaveLength(0);
      // Not asked again: a redirect will not mend.
      expect(model.requests).toHaveLength(1);
    } finally {
      await elsewhere.close();
    }
    const key = "sk-model-key-0123456789";
    const echoed = await episode([{ status: 401, body: { error: { message: `bad key Bearer ${key} ${"x".repeat(10_000)}` } } }], {}, { apiKey: key, maxRetries: 0 }).catch((e) => e);
    expect(echoed.reason).toBe("llm_bad_request");
    expect(echoed.message).not.toContain(key);
    expect(echoed.message).toContain("Bearer [MODEL_API_KEY]");
    expect(echoed.message.length).toBeLessThan(500);
    // The key where the clip falls: none of it is kept.
    const edge = await episode([{ status: 401, body: { error: { message: `${"x".repeat(270)} Bearer ${key}` } } }], {}, { apiKey: key, maxRetries: 0 }).catch((e) => e);
    expect(edge.message).not.toContain("sk-model");
  });

  it("aborts the request in flight when the job is cancelled", async () => {
    const ctrl = new AbortController();
    setTimeout(() => ctrl.abort(), 200);
    const t = Date.now();
    const err = await episode([{ hang: true }], {}, { timeoutMs: 30_000, maxRetries: 0 }, ctrl.signal).catch((e) => e);
    expect(err.reason).toBe("cancelled");
    expect(Date.now() - t).toBeLessThan(5_000);
  });
});
