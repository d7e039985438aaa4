import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { scanRepository } from "../../src/agent/baseline/repoScan.js";
import { startSandbox, type SandboxFixture } from "../helpers/sandbox.js";

/**
 * Where the scan says the names are defined: a keyword that begins its line (after
 * indentation and `async`), a name that is a whole word. The scan finds candidates by the
 * keyword or the name alone and checks the rest; these cases are the ones that check refuses.
 */
const PY_FILES: Record<string, string> = {
  "pkg/widgets.py": [
    "class Widget:", // 1
    "    async def refresh(self):", // 2
    "        pass", // 3
    "", // 4
    "    def  render(self):", // 5
    '        return "def refresh(self)"  # def in a string, mid-line', // 6
    "", // 7
    "undef refresh = 1", // 8
    "async  def render():", // 9
    "class WidgetBase: pass", // 10
    "\tdef refresh(): pass", // 11
    "x = 1; class Widget: pass", // 12
    "asyncdef render(): pass", // 13
    "async async def render(): pass", // 14
    "  async\tdef render(): pass", // 15
    `${"y = 'def refresh' ".repeat(2000)}`, // 16: the keyword mid-line, many times on one long line
    "", // 17
  ].join("\n"),
};

const TS_FILES: Record<string, string> = {
  "package.json": '{ "name": "widgets" }\n',
  "src/widget.ts": [
    "export class Widget {", // 1
    "  refresh(): void {}", // 2
    "  $render(): void {}", // 3
    "}", // 4
    "export function render(x: number): number {", // 5
    "  return x;", // 6
    "}", // 7
    "const xrender = (y: number) => y;", // 8
    "export const prerender = (y: number) => y;", // 9
    "", // 10
  ].join("\n"),
  "src/merge.ts": "export function deepMerge(a: any, b: any) {\n  for (const k in b) if (k !== '__proto__') a[k] = b[k];\n  return a.__proto__;\n}\n",
};

const NAMES = ["Widget", "refresh", "render"];

describe("the scan's definitions of the issue's names", () => {
  let py: SandboxFixture;
  let ts: SandboxFixture;
  beforeAll(async () => {
    [py, ts] = await Promise.all([startSandbox(PY_FILES), startSandbox(TS_FILES)]);
  });
  afterAll(async () => {
    await Promise.all([py?.cleanup(), ts?.cleanup()]);
  });

  const scan = (fx: SandboxFixture) => scanRepository((argv, o) => fx.sandbox.exec(argv, o), fx.workingDir, { words: ["widget"], names: NAMES, phrases: [] });

  it("takes Python defs and classes that begin their line, in order, and nothing mid-line or inside a longer name", async () => {
    const file = (await scan(py)).files.find((f) => f.path === "pkg/widgets.py")!;
    expect(file.defs).toEqual([
      { name: "Widget", kind: "class", line: 1 },
      { name: "refresh", kind: "def", line: 2 },
      { name: "render", kind: "def", line: 5 },
      { name: "render", kind: "def", line: 9 },
      { name: "refresh", kind: "def", line: 11 },
      { name: "render", kind: "def", line: 15 },
    ]);
  });

  it("takes other languages' declarations only where the name is a whole word", async () => {
    const file = (await scan(ts)).files.find((f) => f.path === "src/widget.ts")!;
    expect(file.defs.map((d) => [d.name, d.line])).toEqual([
      ["Widget", 1],
      ["refresh", 2],
      ["render", 5],
    ]);
  });

  it("counts a name like __proto__ as any other (the host reads the counts into a Map, not an object)", async () => {
    const result = await scanRepository((argv, o) => ts.sandbox.exec(argv, o), ts.workingDir, { words: ["merge"], names: ["deepMerge", "__proto__", "constructor"], phrases: [] });
    const file = result.files.find((f) => f.path === "src/merge.ts")!;
    expect([...file.ids].sort()).toEqual([["__proto__", 2], ["deepMerge", 1]]);
    expect(Object.getPrototypeOf(file.ids)).toBe(Map.prototype);
  });
});
