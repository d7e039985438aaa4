import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { SOURCE_OUTLINE } from "../../src/agent/sourceOutline.js";
import { makeGitFixture, SAMPLE_FILES, writtenSha } from "../helpers/gitFixture.js";

/**
 * bench/baseline/commits.py turns commits into fitting instances; the weights every user without
 * a GPU gets are fitted on them, so a wrong ground truth would quietly skew the baseline.
 */
const parser = SAMPLE_FILES["pkg/parser.py"]!;
const explanation =
  "\n\nA line without an equals sign was stored under its whole text with an empty value, so a stray " +
  "comment line in a settings file became a setting. Lines without a separator are skipped now, and " +
  "strict parsers report them. parse_file also closes the file before returning, even on errors.";

/** A repository of the test's own, and commits.py run over its history from `tip` (with `flags`). */
function minedRepository() {
  const repo = makeGitFixture();
  const out = mkdtempSync(join(tmpdir(), "codescout-mined-"));
  afterAll(() => {
    repo.cleanup();
    rmSync(out, { recursive: true, force: true });
  });
  const mine = (tip: string, ...flags: string[]) => {
    const file = join(out, `${tip.slice(0, 8)}${flags.join("").replace(/[^\w-]/g, "_")}.jsonl`);
    execFileSync("python3", ["bench/baseline/commits.py", ...flags, "--per-repo", "10", file, `${repo.dir}/.git:acme/sample@${tip}`], { stdio: "pipe" });
    return readFileSync(file, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  };
  return { repo, mine };
}

describe("mining fitting instances from commit history", () => {
  const { repo, mine } = minedRepository();

  const base = repo.commits[0]!;
  const fix = repo.commit(
    {
      // an edited line in Parser.parse, an inserted line inside parse_file
      "pkg/parser.py": parser
        .replace("            key, _, value = line.partition('=')", "            key, sep, value = line.partition('=')\n            if not sep:\n                continue")
        .replace("        return Parser().parse(fh.read())", "        text = fh.read()\n        return Parser().parse(text)"),
      "tests/test_parser.py": `${SAMPLE_FILES["tests/test_parser.py"]}\n\ndef test_skip():\n    assert Parser().parse('x') == {}\n`,
      "README.md": "# sample\n\nLines need an equals sign.\n",
    },
    `Fix stray lines parsed as settings${explanation}`,
  );
  repo.commit({ "pkg/util.py": "def helper():\n    return 43\n" }, `Bump helper value${explanation}`);
  repo.commit({ "pkg/util.py": "def helper():\n    return 44\n" }, "Fix helper value\n\ntoo short to stand in for an issue");
  repo.commit({ "pkg/new.py": "def fresh():\n    return 1\n" }, `Fix missing module${explanation}`);

  it("keeps an explained fix, with the parent as base and the edited functions as ground truth", () => {
    const rows = mine("HEAD");
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      instance_id: `acme__sample-${fix.slice(0, 12)}`,
      repo: "acme/sample",
      base_commit: base,
      gt: {
        // tests and docs are not where the fix goes; added files have nothing to find
        files: ["pkg/parser.py"],
        modules: ["pkg/parser.py:Parser", "pkg/parser.py:parse_file"],
        entities: ["pkg/parser.py:Parser.parse", "pkg/parser.py:parse_file"],
      },
    });
    expect(rows[0]!.problem_statement).toMatch(/^Fix stray lines parsed as settings\n\nA line without/);
  });

  it("walks back from the pinned commit, so later history does not change the set", () => {
    expect(mine(base)).toEqual([]);
    expect(mine(fix).map((r) => r.base_commit)).toEqual([base]);
  });
});

describe("mining instances whose message names an earlier commit (--names-commit)", () => {
  const { repo, mine } = minedRepository();
  const why = "\n\nStrict parsers stopped reporting lines without a separator, so a typo in a settings file went unnoticed.";
  const v1 = parser.replace("self.strict = strict", "self.strict = bool(strict)");
  const v2 = v1.replace("out = {}", "out = dict()");
  const culprit = repo.commit({ "pkg/parser.py": v1 }, `Fix strict flag parsing${why}`);
  // As a reporter writes it (writtenSha): a prefix of digits alone is not read as a commit, which made this test fail about once in 70 runs.
  const named = repo.commit({ "pkg/parser.py": v2 }, `Fix regression in strict mode from ${writtenSha(culprit)}${why}`);
  repo.commit({ "pkg/parser.py": v2.replace("return out", "return dict(out)") }, `Fix regression in deadbeef123, not a commit here${why}`);

  it("keeps only the fixes whose message names a commit before them", () => {
    const rows = mine("HEAD", "--names-commit");
    expect(rows.map((r) => r.instance_id)).toEqual([`acme__sample-${named.slice(0, 12)}`]);
    expect(rows[0]).toMatchObject({ base_commit: culprit, gt: { files: ["pkg/parser.py"], entities: ["pkg/parser.py:Parser.parse"] } });
  });
});

describe("mining fixes in other languages (--other-languages, with the sandbox's reader)", () => {
  const { repo, mine } = minedRepository();
  const readerDir = mkdtempSync(join(tmpdir(), "codescout-reader-"));
  afterAll(() => rmSync(readerDir, { recursive: true, force: true }));
  const reader = join(readerDir, "reader.py");
  writeFileSync(reader, SOURCE_OUTLINE);
  const router = ["export class Router {", "  find(path: string) {", "    return this.routes.get(path);", "  }", "", "  add(path: string) {", "    this.routes.set(path, true);", "  }", "}", ""].join("\n");
  repo.commit({ "src/router.ts": router, "src/router.test.ts": "test('find', () => {});\n" }, "Add a router");
  const fix = repo.commit(
    { "src/router.ts": router.replace("this.routes.get(path)", "this.routes.get(path.replace(/\\/$/, ''))"), "src/router.test.ts": "test('find', () => { /* slash */ });\n" },
    `Fix routes with a trailing slash not found${explanation}`,
  );

  it("takes the TypeScript method a fix edits as its ground truth, read as the baseline reads it, and leaves the test file out", () => {
    const rows = mine("HEAD", "--other-languages", reader);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      instance_id: `acme__sample-${fix.slice(0, 12)}`,
      gt: { files: ["src/router.ts"], modules: ["src/router.ts:Router"], entities: ["src/router.ts:Router.find"] },
    });
    // Without the flag, the same history holds no Python fix to mine.
    expect(mine("HEAD")).toEqual([]);
  });
});
