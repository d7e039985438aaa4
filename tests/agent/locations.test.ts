import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { checkAnswer, checkLocations, normalizeLocations } from "../../src/agent/locations.js";
import type { Location } from "../../src/agent/policy.js";
import { startSandbox, type SandboxFixture } from "../helpers/sandbox.js";

/** Location checks and line ranges, computed by Python's ast inside a real sandbox. */
const FILES: Record<string, string> = {
  "app/__init__.py": "",
  "app/views.py": [
    "import functools", // 1
    "", // 2
    "", // 3
    "def cached(fn):", // 4
    "    return fn", // 5
    "", // 6
    "", // 7
    "@cached", // 8
    "@functools.lru_cache()", // 9
    "def render(name):", // 10
    "    return name.upper()", // 11
    "", // 12
    "", // 13
    "class View:", // 14
    '    """A view."""', // 15
    "", // 16
    "    @property", // 17
    "    def title(self):", // 18
    "        return 'x'", // 19
    "", // 20
    "    class Meta:", // 21
    "        def ordering(self):", // 22
    "            return []", // 23
    "", // 24
    "    async def fetch(self, url):", // 25
    "        return url", // 26
    "", // 27
  ].join("\n"),
  // Two classes named Inner, each with run(): one at the top level, one in B.
  "app/nested.py": ["class Inner:", "    def run(self):", "        return 1", "", "", "class B:", "    class Inner:", "        def run(self):", "            return 2", ""].join("\n"),
  "app/broken.py": "def oops(:\n",
  // Python 2: ast refuses it, its lines still show where each function is.
  "app/legacy.py": "def export(rows):\n    for r in rows:\n        print ', '.join(r)\n\ndef refund(order):\n    print 'refund', order\n",
  "README.md": "# app\n",
  // 2 MB of one name: its syntax tree (1.4 GB) is larger than this sandbox's 512 MB.
  "app/table.py": `def lookup(key):\n    return TABLE[key]\n\nTABLE = [${"a,".repeat(999_000)}]\n`,
};

let box: SandboxFixture;
beforeAll(async () => {
  box = await startSandbox(FILES);
});
afterAll(async () => {
  await box?.cleanup();
});

const exec = (argv: string[], options?: Parameters<SandboxFixture["sandbox"]["exec"]>[1]) => box.sandbox.exec(argv, options);

describe("location checks", () => {
  it("takes a span only where every class the location names encloses it", async () => {
    const inB = { file: "app/nested.py", class_name: "B.Inner", function_name: "run" };
    // B.Inner.run with the top-level Inner.run's span: B's is served, not the span's.
    const checked = await checkLocations([{ ...inB, start_line: 2, end_line: 3 }, { ...inB, start_line: 8, end_line: 9 }, { file: "app/nested.py", class_name: "Inner", function_name: "run", start_line: 8, end_line: 9 }], box.workingDir, exec);
    expect(checked.map((c) => [c.valid, c.start_line, c.end_line])).toEqual([
      [true, 8, 9],
      [true, 8, 9],
      // A short class name: the span names which Inner.
      [true, 8, 9],
    ]);
  });

  it("gives each valid class or function its span, decorators included", async () => {
    const locations = normalizeLocations(
      [
        { file: "app/views.py", function_name: "render" },
        { file: "app/views.py", class_name: "View" },
        { file: "app/views.py", class_name: "View", function_name: "title" },
        { file: "app/views.py", class_name: "View", function_name: "fetch" },
        { file: "app/views.py", class_name: "View.Meta", function_name: "ordering" },
        { file: "app/views.py", function_name: "View.fetch" },
        { file: "README.md" },
        { file: "app/views.py", class_name: "View", function_name: "missing" },
        { file: "app/broken.py", function_name: "oops" },
        { file: "../etc/passwd" },
      ],
      box.workingDir,
    );
    // "View.fetch" as a bare function is the same location as View + fetch: kept once.
    expect(locations).toHaveLength(9);
    const checked = await checkLocations(locations, box.workingDir, exec);
    const spans = checked.map((c) => [c.valid, c.start_line ?? null, c.end_line ?? null, c.problem ?? null]);
    expect(spans).toEqual([
      [true, 8, 11, null],
      [true, 14, 26, null],
      [true, 17, 19, null],
      [true, 25, 26, null],
      [true, 22, 23, null],
      [true, null, null, null],
      [false, null, null, "function not found in class"],
      [false, null, null, "cannot parse: SyntaxError"],
      [false, null, null, "path outside the repository"],
    ]);
    expect(checked.some((c) => "snippet" in c)).toBe(false);
  });

  it("takes a policy's span where the file's lines confirm it, and finds the span itself where they do not", async () => {
    const at = (start_line: number, end_line: number) => ({ start_line, end_line });
    const cases: Array<[Location, [boolean, number | null, number | null, string | null]]> = [
      [{ file: "app/views.py", function_name: "render", ...at(8, 11) }, [true, 8, 11, null]],
      [{ file: "app/views.py", class_name: "View", function_name: "title", ...at(17, 19) }, [true, 17, 19, null]],
      [{ file: "app/views.py", class_name: "View.Meta", ...at(21, 23) }, [true, 21, 23, null]],
      // A file ast refuses: its lines confirm the span (trailing blank lines left out), where the parse cannot.
      [{ file: "app/legacy.py", function_name: "export", ...at(1, 4) }, [true, 1, 3, null]],
      [{ file: "app/legacy.py", function_name: "refund", ...at(1, 3) }, [false, null, null, "cannot parse: SyntaxError"]],
      // Hints the lines contradict: the span is found as without one.
      [{ file: "app/views.py", function_name: "render", ...at(8, 10) }, [true, 8, 11, null]],
      [{ file: "app/views.py", function_name: "render", ...at(9, 11) }, [true, 8, 11, null]],
      [{ file: "app/views.py", function_name: "cached", ...at(4, 11) }, [true, 4, 5, null]],
      [{ file: "app/views.py", function_name: "render", ...at(14, 26) }, [true, 8, 11, null]],
      [{ file: "app/views.py", class_name: "Meta", function_name: "title", ...at(17, 19) }, [false, null, null, "function not found in class"]],
      [{ file: "app/views.py", function_name: "missing", ...at(1, 2) }, [false, null, null, "function not found"]],
    ];
    // One at a time: several are the same location with different hints.
    const locations = cases.flatMap(([l]) => normalizeLocations([l], box.workingDir));
    expect(locations.map((l) => [l.start_line, l.end_line])).toEqual(cases.map(([l]) => [l.start_line, l.end_line]));
    const checked = await checkLocations(locations, box.workingDir, exec);
    expect(checked.map((c) => [c.valid, c.start_line ?? null, c.end_line ?? null, c.problem ?? null])).toEqual(cases.map(([, want]) => want));
  });

  it("adds the code of each location when asked, cut after the line cap", async () => {
    const checked = await checkLocations(
      [
        { file: "app/views.py", function_name: "render" },
        { file: "app/views.py", class_name: "View" },
      ],
      box.workingDir,
      exec,
      { snippetLines: 4 },
    );
    expect(checked[0]).toMatchObject({ start_line: 8, end_line: 11, snippet: "@cached\n@functools.lru_cache()\ndef render(name):\n    return name.upper()", snippet_truncated: false });
    expect(checked[1]!.snippet).toBe('class View:\n    """A view."""\n\n    @property');
    expect(checked[1]!.snippet_truncated).toBe(true);
  });
});

describe("an answer and its alternatives", () => {
  it("checks both in one process, gives the answer the snippets, and keeps only alternatives that exist in other files", async () => {
    let processes = 0;
    const counted = (argv: string[], options?: Parameters<SandboxFixture["sandbox"]["exec"]>[1]) => (processes++, exec(argv, options));
    const { locations, alternatives } = await checkAnswer(
      [{ file: "app/views.py", function_name: "render" }],
      [
        { file: "app/views.py", class_name: "View", function_name: "title" },
        { file: "app/missing.py", function_name: "gone" },
        { file: "app/views.py", function_name: "nowhere" },
        { file: "README.md", confidence: { file: 0.2 } },
      ],
      box.workingDir,
      counted,
      { snippetLines: 2 },
    );
    expect(processes).toBe(1);
    expect(locations).toEqual([expect.objectContaining({ file: "app/views.py", function_name: "render", valid: true, start_line: 8, snippet: "@cached\n@functools.lru_cache()" })]);
    // The same file as the answer is not an alternative; a missing one is not a lead.
    expect(alternatives).toEqual([{ file: "README.md", confidence: { file: 0.2 }, valid: true }]);
  });
});

describe("a location in a file whose syntax tree is larger than the sandbox's memory", () => {
  it("is answered as such, and the other locations are checked as ever", async () => {
    const checked = await checkLocations([{ file: "app/table.py", function_name: "lookup" }, { file: "app/views.py", function_name: "render" }], box.workingDir, exec);
    expect(checked).toEqual([
      { file: "app/table.py", function_name: "lookup", valid: false, problem: "cannot parse: MemoryError" },
      expect.objectContaining({ file: "app/views.py", function_name: "render", valid: true, start_line: 8 }),
    ]);
  });
});

describe("normalizeLocations", () => {
  it("keeps a policy's evidence, capped to five short strings, and drops what is not text", () => {
    const raw = {
      file: "/tmp/testbed/x/pkg/a.py",
      function_name: "f",
      evidence: ["  the issue names\n`f`  ", 42, "the issue names `f`", "x".repeat(500), "b", "c", "d", "e", "f"],
    } as unknown as Location;
    const [loc] = normalizeLocations([raw], "/tmp/testbed/x");
    expect(loc?.file).toBe("pkg/a.py");
    expect(loc?.evidence).toEqual(["the issue names `f`", "x".repeat(200), "b", "c", "d"]);
  });

  it("keeps a policy's confidence only as probabilities, and a function's only where a function is named", () => {
    const raw = [
      { file: "a.py", function_name: "f", confidence: { file: 0.8, function: 0.35 } },
      { file: "b.py", confidence: { file: 0.4, function: 0.9 } },
      { file: "c.py", function_name: "g", confidence: { file: 0.7, function: 1.5 } },
      { file: "d.py", confidence: { file: Number.NaN } },
      { file: "e.py", confidence: { file: "0.9" } },
      { file: "f.py", confidence: 0.9 },
      { file: "g.py", confidence: { file: -0.1 } },
    ] as unknown as Location[];
    expect(normalizeLocations(raw, "/w").map((l) => l.confidence)).toEqual([{ file: 0.8, function: 0.35 }, { file: 0.4 }, { file: 0.7 }, undefined, undefined, undefined, undefined]);
  });

  it("keeps a policy's span only as two whole line numbers in order, on a named class or function", () => {
    const raw = [
      { file: "a.py", function_name: "f", start_line: 3, end_line: 9 },
      { file: "a.py", function_name: "g", start_line: 9, end_line: 3 },
      { file: "a.py", function_name: "h", start_line: 2.5, end_line: 9 },
      { file: "a.py", function_name: "i", start_line: "3", end_line: 9 },
      { file: "a.py", function_name: "j", start_line: 0, end_line: 9 },
      { file: "b.py", start_line: 3, end_line: 9 },
    ] as unknown as Location[];
    expect(normalizeLocations(raw, "/w").map((l) => [l.start_line, l.end_line])).toEqual([[3, 9], ...Array(5).fill([undefined, undefined])]);
  });

  it("reads a method written with its class, whether the class is given apart or not, as the method", () => {
    const raw = [
      { file: "a.py", function_name: "Foo.bar" },
      { file: "b.py", class_name: "Foo", function_name: "Foo.bar" },
      { file: "c.py", class_name: "Foo", function_name: "Foobar.baz" },
    ];
    expect(normalizeLocations(raw, "/w").map((l) => [l.class_name, l.function_name])).toEqual([["Foo", "bar"], ["Foo", "bar"], ["Foo", "Foobar.baz"]]);
  });

  it("leaves evidence out when there is none, or when it is not a list", () => {
    const [a, b] = normalizeLocations([{ file: "a.py" }, { file: "b.py", evidence: "why" } as unknown as Location], "/w");
    expect(a).toEqual({ file: "a.py" });
    expect(b).toEqual({ file: "b.py" });
  });
});
