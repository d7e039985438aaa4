import { readFileSync } from "node:fs";
import { extractIssueTerms } from "../src/agent/baseline/issueTerms.js";
import { ms, quick, report, stats } from "./lib.js";

/**
 * Reading an issue's terms runs on the worker's event loop, over text a client sends (up to
 * the 60,000 characters the reader keeps): a pattern that backtracks on some shape of text
 * stalls every job of that worker. Times the reading of hostile texts of that size, one shape
 * each (a long word, long runs of blanks, many lines, dotted names, paths without `.py`, ...),
 * and of the dev set's real issues for scale. Each should stay linear in the text's length.
 *
 *   npx tsx bench/issueText.ts [--quick]
 */
const SIZE = 60_000;
const fill = (unit: string, n = SIZE) => unit.repeat(Math.ceil(n / unit.length)).slice(0, n);
const shapes: Record<string, string> = {
  "one word": fill("a"),
  "dotted, no end": fill("a."),
  "path, no .py": fill("a/"),
  blanks: fill(" "),
  tabs: fill("\t"),
  "empty lines": fill("\n"),
  backticks: fill("`"),
  "links without .py": fill("http://a/"),
  "links to .py lines": fill("http://a/b.py#L1 "),
  "error lines": fill("a.Error: message text\n"),
  "code lines": fill("if a.b(c) == d[e]:\n\tx = f(y)\n"),
  "diff hunks": `--- a/x.py\n@@ -1,3 +1,3 @@\n${fill(" a\n-b\n+c\n", SIZE - 30)}`,
  "commit-like words": fill("regression in a1b2c3d4e5 "),
  "one hex word": fill("a1"),
  "issue numbers": fill("see #12345 and https://x.org/o/r/issues/678 "),
  "cross-references": fill("a.b-c/d.e_f#12 "),
  "cross-references, no blanks": fill("a.b/c.d#12!"),
  "traceback frames": fill('  File "/x/site-packages/pkg/mod.py", line 12, in func\n'),
  "a heading, blanks inside": `# a${fill(" ", SIZE - 4)}x`,
  "a version line's shape, blanks inside": `a${fill(" ", SIZE - 2)}x`,
  "a bold heading, blanks inside": `**a**${fill(" ", SIZE - 6)}x`,
  "layout tags, never closed": fill("<br "),
  "comment openers, never closed": fill("<!--\n"),
  // The environment filter reads up to four times the kept length.
  "empty lines, 240,000": fill("\n", 4 * SIZE),
  "comment openers, 240,000": fill("<!--\n", 4 * SIZE),
};

function timeOf(text: string): number {
  const runs = quick ? 1 : 3;
  const t: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    extractIssueTerms(text);
    t.push(performance.now() - t0);
  }
  return stats(t).p50;
}

const hostile: Record<string, number> = {};
for (const [name, text] of Object.entries(shapes)) hostile[name] = ms(timeOf(text));
// Linear: a quarter of the text takes about a quarter of the time (a backtracking pattern: a sixteenth or less).
const growth: Record<string, number> = {};
for (const name of ["one word", "blanks", "empty lines"]) {
  const quarter = timeOf(shapes[name]!.slice(0, SIZE / 4));
  growth[name] = Math.round((hostile[name]! / Math.max(quarter, 0.1)) * 10) / 10;
}

const real = ["../shared/bench/swe-bench-lite-dev.jsonl", "../shared/bench/swe-bench-verified-dev.jsonl"].flatMap((f) =>
  readFileSync(f, "utf8")
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => (JSON.parse(l) as { problem_statement: string }).problem_statement),
);
const realTimes = stats(real.map(timeOf));

report("issueText", {
  size_chars: SIZE,
  hostile_ms: hostile,
  time_ratio_full_to_quarter: growth,
  dev_issues_ms: { n: realTimes.n, p50: ms(realTimes.p50), max: ms(realTimes.max) },
});
