import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BaselinePolicy } from "../../src/agent/baseline.js";
import { policyContext, startSandbox, type SandboxFixture } from "../helpers/sandbox.js";

/**
 * A tree with more source files than the scan reads (20,000): a monorepo's. Its many packages
 * come first in walk order; the one the issue is about comes last.
 */
let box: SandboxFixture;
beforeAll(async () => {
  box = await startSandbox(
    { "README.md": "a monorepo\n" },
    {
      more: (dir) => {
        // Committing 21,000 files would start git's gc in the background, still writing when the fixture is removed.
        execFileSync("git", ["-C", dir, "config", "gc.auto", "0"]);
        for (let d = 0; d < 210; d++) {
          const pkg = join(dir, `a${String(d).padStart(3, "0")}`);
          mkdirSync(pkg);
          for (let f = 0; f < 100; f++) writeFileSync(join(pkg, `m${f}.py`), `def helper_${d}_${f}():\n    return ${f}\n`);
        }
        mkdirSync(join(dir, "zz_needle"));
        writeFileSync(join(dir, "zz_needle/frobulate.py"), "def frobulate_needle(x):\n    return x\n");
      },
    },
  );
}, 300_000);
afterAll(async () => {
  await box?.cleanup();
});

describe("a tree larger than the scan reads", () => {
  it("reads first the files whose paths hold the issue's words, so a package past the first 20,000 files is still found", async () => {
    const result = await new BaselinePolicy().run(policyContext(box, "frobulate_needle breaks on empty needles\n\nCalling `frobulate_needle` in the needle package with an empty needle fails.", () => {}));
    expect(result.locations?.[0]).toMatchObject({ file: "zz_needle/frobulate.py", function_name: "frobulate_needle" });
    // The answer is of the files read, and says so.
    expect(result.notes).toEqual(["read 20,000 of the tree's 21,001 source files, those whose paths hold the issue's words first: give options.scope (a directory of the repository) to read all of one part"]);
  });
});

describe("a tree past 20,000 source files of which the language read holds fewer", () => {
  let mixed: SandboxFixture;
  beforeAll(async () => {
    mixed = await startSandbox(
      { "README.md": "an application and its vendored scripts\n" },
      {
        more: (dir) => {
          execFileSync("git", ["-C", dir, "config", "gc.auto", "0"]);
          // 18,000 small vendored scripts, and the application's 3,001 Python files, most of the source by size.
          for (let d = 0; d < 180; d++) {
            const lib = join(dir, "web", "static", `lib${String(d).padStart(3, "0")}`);
            mkdirSync(lib, { recursive: true });
            for (let f = 0; f < 100; f++) writeFileSync(join(lib, `s${f}.js`), "x=1;\n");
          }
          for (let f = 0; f < 3000; f++) {
            const pkg = join(dir, "pkg", `p${Math.floor(f / 100)}`);
            mkdirSync(pkg, { recursive: true });
            writeFileSync(join(pkg, `m${f % 100}.py`), `def helper_${f}(value):\n    """Returns the value it is given, unchanged, for the caller."""\n    return value\n`);
          }
          writeFileSync(join(dir, "pkg", "frobulate.py"), "def frobulate_needle(x):\n    return x\n");
        },
      },
    );
  }, 300_000);
  afterAll(async () => {
    await mixed?.cleanup();
  });

  it("reads every file of that language, says nothing of a cut, and names the other language it did not read", async () => {
    const result = await new BaselinePolicy().run(policyContext(mixed, "frobulate_needle breaks on empty needles\n\nCalling `frobulate_needle` with an empty needle fails.", () => {}));
    expect(result.locations?.[0]).toMatchObject({ file: "pkg/frobulate.py", function_name: "frobulate_needle" });
    expect(result.notes).toEqual([
      "read the tree's source in its main language only; it also holds JavaScript/TypeScript (18,000 files), not read: a stack trace through their files, or options.scope (their directory), has them read",
    ]);
  });
});
