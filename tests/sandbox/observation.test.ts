import { loadGolden } from "../helpers/shared.js";
import { describe, it, expect } from "vitest";
import {
  formatResult,
  multipleCommandsText,
  pyFloat,
  refusal,
  truncateMiddle,
  TRUNCATE_NOTICE,
  MAX_OBSERVATION_CHARS,
} from "../../src/sandbox/observation.js";
import { splitBashCommands } from "../../src/sandbox/commandSplit.js";
import { pyStrip } from "../../src/sandbox/terminal.js";
import type { ResultMessage } from "../../src/sandbox/protocol.js";
import { seeded } from "../helpers/random.js";

const golden = loadGolden();
const bySeq = (n: number) => golden.find((g) => g.seq === n)!;
const CWD = "/tmp/testbed/5f3c2a1b/psf_requests_psf__requests-2317";

const completed = (output: string, exit_code = 0, extra: Partial<ResultMessage> = {}): ResultMessage =>
  ({ type: "result", id: 1, running: false, kind: "completed", output, continued: false, history_lines: null, exit_code, cwd: CWD, python: "<PYTHON>", special_key: false, ...extra }) as ResultMessage;

describe("observation formatting (pure, against the golden examples)", () => {
  it("completed commands: output, then the four status lines", () => {
    for (const seq of [3, 8, 15, 16, 17, 18, 21, 25, 41]) {
      const g = bySeq(seq);
      const out = g.observation.slice(0, g.observation.indexOf("\n[The command completed"));
      const obs = formatResult(g.command, completed(out, g.exit_code!), 30_000, null);
      expect(obs.parts, `seq ${seq}`).toEqual(g.llm_content_parts);
      expect(obs.exitCode).toBe(g.exit_code);
    }
  });

  it("cuts the whole text to 30,000 chars: first 14,944, the notice, last 14,943 (golden seq 19)", () => {
    const g = bySeq(19);
    const cut = g.observation.indexOf(TRUNCATE_NOTICE);
    expect(cut).toBe(14_944);
    // The golden text was cut with the real interpreter path and then had it replaced by
    // <PYTHON>; rebuild a full text with a 25-char path so the cut lands where theirs did.
    const python = "/opt/venv/bin/python-3.1x";
    const head = g.observation.slice(0, cut);
    const tail = g.observation.slice(cut + TRUNCATE_NOTICE.length).replace("<PYTHON>", python);
    const middle = "x".repeat(50_000);
    const fullOutput = head + middle + tail.slice(0, tail.indexOf("\n[The command completed"));
    const obs = formatResult(g.command, completed(fullOutput, 0, { python }), 30_000, null);
    const text = obs.parts[0]!;
    expect([...text].length).toBe(MAX_OBSERVATION_CHARS);
    expect(text).toBe(g.observation.replace("<PYTHON>", python));
  });

  it("cuts exactly when the server sent only head and tail of a huge output", () => {
    const full = Array.from({ length: 30_000 }, (_, i) => `line ${i}`).join("\n");
    const exact = formatResult("cat big", completed(full), 30_000, null).parts[0];
    const capped = formatResult(
      "cat big",
      completed(full.slice(0, 40_000), 0, { output_tail: full.slice(-40_000), output_omitted: full.length - 80_000 }),
      30_000,
      null,
    ).parts[0];
    expect(capped).toBe(exact);
  });

  it("counts code points like Python when cutting", () => {
    const s = "😀".repeat(40_000);
    const t = truncateMiddle(s, 0, "");
    expect([...t].length).toBe(30_000);
  });

  it("soft timeout, hard timeout, busy and C-c texts match the reference", () => {
    const soft = formatResult("sleep 35", { type: "result", id: 1, running: true, kind: "soft_timeout", output: "", continued: false }, 30_000, null);
    expect(soft).toEqual({ parts: bySeq(30).llm_content_parts, exitCode: -1, isError: false });
    const hard = formatResult("sleep 5", { type: "result", id: 1, running: true, kind: "hard_timeout", output: "", continued: false }, 30_000, 2);
    expect(hard.parts).toEqual(bySeq(33).llm_content_parts);
    const busy = formatResult("ls", { type: "result", id: 1, running: true, kind: "busy", output: "", continued: true }, 30_000, null);
    expect(busy).toEqual({ parts: bySeq(36).llm_content_parts, exitCode: -1, isError: true });
    const cc = formatResult("C-c", completed("^C", 130, { continued: true, special_key: true }), 30_000, null);
    expect(cc.parts).toEqual(bySeq(37).llm_content_parts);
  });

  it("refuses several commands with the reference's two-part error", () => {
    const g = bySeq(26);
    const cmds = splitBashCommands(g.command);
    expect(cmds).toEqual(["ls requests", "wc -l requests/api.py"]);
    expect(refusal(multipleCommandsText(cmds)).parts).toEqual(g.llm_content_parts);
  });

  it("prints timeouts as Python floats", () => {
    expect([2, 2.5, 0.1, 30, 1e-5, 1e16, 120].map(pyFloat)).toEqual(["2.0", "2.5", "0.1", "30.0", "1e-05", "1e+16", "120.0"]);
  });
});

describe("stripping the model's command like Python's str.strip()", () => {
  it("strips what the pattern it replaces stripped, and a command with a million blanks inside at once", () => {
    const pattern = (x: string) => x.replace(/^[\s\x1c-\x1f\x85]+|[\s\x1c-\x1f\x85]+$/gu, "");
    const alphabet = [" ", "\t", "\n", "\x1c", "\x85", "\u00a0", "\ufeff", "\u2028", "\u3000", "a", "é", "😀"];
    const next = seeded(3);
    for (let i = 0; i < 2000; i++) {
      const x = Array.from({ length: next() % 12 }, () => alphabet[next() % alphabet.length]).join("");
      expect(pyStrip(x), JSON.stringify(x)).toBe(pattern(x));
    }
    // Quadratic before: 40,000 blanks took 3.4 s, a million would have taken half an hour.
    expect(pyStrip(` ls${" ".repeat(1_000_000)}-la\n`)).toBe(`ls${" ".repeat(1_000_000)}-la`);
  });
});

describe("splitting a call into bash statements", () => {
  it.each([
    ["ls && wc -l a.py", 1],
    ["ls; pwd", 1],
    ["ls\npwd", 2],
    ["ls\n\n# comment\npwd\n", 2],
    ["for i in 1 2\ndo\n  echo $i\ndone", 1],
    ["if true; then\n echo a\nfi\necho b", 2],
    ["echo 'a\nb'", 1],
    ['echo "a\n$(echo b\n)"', 1],
    ["cat <<EOF\nls\npwd\nEOF", 1],
    ["cat <<'EOF' | wc -l\nls\nEOF\necho x", 2],
    ["ls \\\n -la", 1],
    ["ls |\n wc -l", 1],
    ["ls &&\n pwd", 1],
    ["f() {\n echo hi\n}", 1],
    ["echo done\necho fi", 2],
    ["case x in\n a) echo a;;\n *) echo b;;\nesac", 1],
    ["echo 'unclosed\nls", 1],
    ["python -c 'import x\nprint(1)'", 1],
    // What the reference's parser (bashlex) could not read, it ran whole (compared with bashlex itself).
    ["x=$((1+2))\necho $x", 1],
    ["[[ -f a ]] && echo y\nls", 1],
    ["time ls\npwd", 1],
    ["select x in a; do echo; done\nls", 1],
    ["a=(1 2)\necho ${a[0]}", 1],
    // ... and what it could, it split as before.
    ["((i++))\nls", 2],
    ["echo time\nls", 2],
    ["echo '[[ x'\nls", 2],
    ["cat a b\n# time to go\nls", 2],
  ])("%j → %i statement(s)", (cmd, count) => {
    expect(splitBashCommands(cmd)).toHaveLength(count);
  });
});
