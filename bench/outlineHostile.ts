import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { OUTLINE_SCRIPT } from "../src/agent/baseline/outline.js";
import { ms, report } from "./lib.js";

/**
 * The baseline's outline (what it runs in the sandbox on the six files it ranks first) on files
 * a hostile or generated tree holds: 2 MB of tiny definitions, 2 MB of distinct words holding the
 * issue's, one 2 MB identifier. Each case outlined alone and all together, as six files are in a
 * job; the outline's own limit is 60 s, the baseline's aim 2 s an instance. Run here with the
 * host's python3, on files the bench writes itself.
 *
 *   npx tsx bench/outlineHostile.ts
 */
const dir = mkdtempSync(join(tmpdir(), "codescout-bench-outline-"));
const MB2 = 2_000_000;
const fill = (unit: (i: number) => string) => {
  const parts: string[] = [];
  let size = 0;
  for (let i = 0; size < MB2 - 200; i++) {
    const u = unit(i);
    parts.push(u);
    size += u.length;
  }
  return parts.join("");
};
const files: Record<string, string> = {
  "tiny_defs.py": fill((i) => `def f${i}(deleting_${i}):\n    return parse_${i}\n`),
  "tiny_functions.js": fill((i) => `function f${i}(a) { return deleting${i}(a) }\n`),
  "distinct_words.js": fill((i) => `const x${i} = deletingColumns${i} + parserMatch${i};\n`).replace(/^/, "// generated\n"),
  "one_identifier.py": `x = ${"DeletingColumns".repeat(MB2 / 15)}\n`,
};
for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
const query = { words: ["deleting", "columns", "parser", "match", "search", "string"], names: ["parse"] };
const outline = (which: string[]) => {
  const t = performance.now();
  execFileSync("python3", ["-c", OUTLINE_SCRIPT, dir], { input: JSON.stringify({ files: which, ...query }), maxBuffer: 1 << 28, timeout: 600_000 });
  return ms((performance.now() - t) / 1000);
};
try {
  const seconds: Record<string, number> = {};
  for (const name of Object.keys(files)) seconds[name] = outline([name]);
  seconds["all four together"] = outline(Object.keys(files));
  report("outlineHostile", { bytes_per_file: MB2, seconds });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
