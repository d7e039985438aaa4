import { describe, it, expect } from "vitest";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadPromptPack, renderPrompt } from "../../src/agent/codescout/prompts.js";
import { parseRawToolCalls } from "../../src/agent/codescout/rawToolCalls.js";
import { parseToolCall } from "../../src/agent/codescout/tools.js";

describe("prompt pack", () => {
  it("carries the protocol's rules in the default pack", () => {
    const pack = loadPromptPack();
    for (const rule of ["rg", "grep", "find", "sed", "wc -l", "100 lines", "up to 5", "up to 4 turns", "localization_finish", "class_name", "function_name", "Precision and recall"]) {
      expect(pack.system, rule).toContain(rule);
    }
    const user = renderPrompt(pack.user, { working_dir: "/tmp/testbed/0a1b2c3d/o_r_o__r-1", issue: "Broken {{working_dir}} parse" });
    expect(user).toContain("/tmp/testbed/0a1b2c3d/o_r_o__r-1");
    expect(user).toContain("<issue_description>\nBroken {{working_dir}} parse\n</issue_description>");
  });

  it("is replaced by an operator's directory, and a broken pack is refused with its path", () => {
    const dir = mkdtempSync(join(tmpdir(), "pack-"));
    writeFileSync(join(dir, "system.md"), "SYS");
    writeFileSync(join(dir, "user.md"), "Repo at {{working_dir}}: {{issue}}");
    writeFileSync(join(dir, "recovery.md"), "Answer now.");
    expect(loadPromptPack(dir)).toEqual({ system: "SYS", user: "Repo at {{working_dir}}: {{issue}}", recovery: "Answer now." });
    writeFileSync(join(dir, "user.md"), "no issue here");
    expect(() => loadPromptPack(dir)).toThrow(/user\.md must contain \{\{issue\}\}/);
  });
});

describe("tool calls the model emits", () => {
  it("reads several raw <tool_call> blocks, repairing common slips, and keeps the text", () => {
    const raw = [
      "Searching two ways.",
      '<tool_call>\n{"name": "terminal", "arguments": {"command": "ls", "security_risk": "LOW"}}\n</tool_call>',
      '<tool_call>\n{"name": "terminal", "arguments": {"command": "pwd",}}}\n</tool_call>',
      "<tool_call>\nnot json at all\n</tool_call>",
    ].join("\n");
    const parsed = parseRawToolCalls(raw);
    expect(parsed.calls.map((c) => JSON.parse(c.arguments).command)).toEqual(["ls", "pwd"]);
    // Written back as vLLM writes a parsed call's arguments (Python's json.dumps), for the history.
    expect(parsed.calls[0]!.arguments).toBe('{"command": "ls", "security_risk": "LOW"}');
    expect(parsed.unreadable).toBe(1);
    expect(parsed.text).toBe("Searching two ways.");
    // The repair of a trailing comma leaves the command as written: `{2,}` and `[1,2,]` are the model's own.
    const inCommand = parseRawToolCalls(`<tool_call>{"name": "terminal", "arguments": {"command": "rg -n '[0-9]{2,}px' src/ && python -c 'print([1,2,])' \\",", "security_risk": "LOW",}}</tool_call>`);
    expect(JSON.parse(inCommand.calls[0]!.arguments)).toEqual({ command: `rg -n '[0-9]{2,}px' src/ && python -c 'print([1,2,])' ",`, security_risk: "LOW" });
  });

  it("takes finish arguments as the reference agent did: what a location is known by, from a list or its JSON text, with a security_risk beside", () => {
    const ok = parseToolCall("localization_finish", JSON.stringify({ locations: [{ file: "a.py", class_name: null, function_name: "f" }] }));
    expect(ok).toEqual({ tool: "finish", locations: [{ file: "a.py", function_name: "f" }] });
    // The reference dropped what it did not know of a location; each of these lost the answer here.
    expect(parseToolCall("localization_finish", JSON.stringify({ locations: [{ file: "a.py", line: 3, reason: "raises" }] }))).toEqual({ tool: "finish", locations: [{ file: "a.py" }] });
    expect(parseToolCall("localization_finish", JSON.stringify({ locations: [{ file: "a.py" }], security_risk: "LOW" }))).toEqual({ tool: "finish", locations: [{ file: "a.py" }] });
    expect(parseToolCall("localization_finish", JSON.stringify({ locations: JSON.stringify([{ file: "a.py", function_name: "f" }]) }))).toEqual({ tool: "finish", locations: [{ file: "a.py", function_name: "f" }] });
    expect(parseToolCall("localization_finish", JSON.stringify({ locations: [{ line: 3 }] })).tool).toBe("error");
    expect(parseToolCall("localization_finish", JSON.stringify({ locations: "not json" })).tool).toBe("error");
  });

  it("takes terminal arguments as the reference agent did (lax: a number or a boolean as text), and refuses unknown names", () => {
    const risk = parseToolCall("terminal", JSON.stringify({ command: "ls", security_risk: "HIGH", timeout: 2 }));
    expect(risk).toEqual({ tool: "terminal", call: { command: "ls", timeout: 2 }, securityRisk: "HIGH" });
    expect(parseToolCall("terminal", JSON.stringify({ command: "ls", timeout: "30", is_input: "false", security_risk: null }))).toEqual({ tool: "terminal", call: { command: "ls", timeout: 30, is_input: false } });
    expect(parseToolCall("terminal", JSON.stringify({ command: "ls", timeout: "-1" })).tool).toBe("error");
    expect(parseToolCall("terminal", JSON.stringify({ command: "ls", timeout: "soon" })).tool).toBe("error");
    expect(parseToolCall("terminal", JSON.stringify({ command: "ls", is_input: "maybe" })).tool).toBe("error");
    expect(parseToolCall("terminal", JSON.stringify({ command: "ls", color: true })).tool).toBe("error");
  });
});
