import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { outlineFiles } from "../../src/agent/baseline/outline.js";
import { checkAnswer, checkLocations } from "../../src/agent/locations.js";
import type { Location } from "../../src/agent/policy.js";
import { makeWorkingDir } from "../../src/sandbox/workdir.js";
import { baselineSandboxes } from "./sandboxes.js";

/**
 * The check of an answer with the spans the baseline's outline read (hints) against the check
 * finding every span itself, on a tree's own definitions: the same answer for each, and the
 * time each takes. Then one answer as a job has it (two methods and three alternatives in four
 * files), both ways, alternating.
 *
 *   npx tsx bench/baseline/spanCheck.ts --tree DIR [--every N] [--answer FILE:CLASS.FN,...]
 *
 * Every Nth Python file of DIR (sorted) is outlined in a sandbox, 40 at a time, and each of its
 * definitions checked both ways. --answer names the five locations of the second part (the
 * first two the answer, the rest alternatives); its default is django's.
 */
const { values: a } = parseArgs({
  options: {
    tree: { type: "string" },
    every: { type: "string", default: "5" },
    answer: {
      type: "string",
      default:
        "django/db/models/query.py:QuerySet.bulk_create,django/db/models/query.py:QuerySet._batched_insert,django/db/models/sql/compiler.py:SQLInsertCompiler.as_sql,django/db/models/base.py:Model.save,django/db/backends/base/operations.py:BaseDatabaseOperations.bulk_batch_size",
    },
  },
});
if (!a.tree) throw new Error("usage: spanCheck.ts --tree DIR [--every N] [--answer FILE:CLASS.FN,...]");
const tree = a.tree.replace(/\/+$/, "");
const every = Math.max(1, Number(a.every));
const files = execFileSync("find", [tree, "-name", "*.py", "-type", "f"], { encoding: "utf8", maxBuffer: 64 << 20 })
  .trim()
  .split("\n")
  .map((f) => f.slice(tree.length + 1))
  .sort()
  .filter((_, i) => i % every === 0);
const workingDir = makeWorkingDir("span", "check", "tree");
const box = await baselineSandboxes().create({ jobId: "span-check", treePath: tree, workingDir, lazyShell: true });
const exec = (argv: string[], options?: Parameters<typeof box.exec>[1]) => box.exec(argv, options);
const unhinted = (ls: Location[]) => ls.map(({ start_line: _s, end_line: _e, ...l }) => l);

try {
  let same = 0;
  const differ: string[] = [];
  const ms = { hinted: 0, parsed: 0 };
  for (let i = 0; i < files.length; i += 40) {
    const outlined = await outlineFiles(exec, workingDir, files.slice(i, i + 40), { words: [], names: [] });
    const seen = new Set<string>();
    const locations: Location[] = [];
    for (const f of outlined) {
      for (const d of f.defs) {
        const l: Location = d.kind === "class" ? { file: f.path, class_name: d.cls ? `${d.cls}.${d.name}` : d.name } : { file: f.path, ...(d.cls ? { class_name: d.cls } : {}), function_name: d.name };
        // A name defined twice in a file is one location (as normalizeLocations keeps it): its first.
        const key = `${l.file}|${l.class_name ?? ""}|${l.function_name ?? ""}`;
        if (seen.has(key)) continue;
        seen.add(key);
        locations.push({ ...l, start_line: d.first ?? d.start, end_line: d.end });
      }
    }
    let t = performance.now();
    const hinted = await checkLocations(locations, workingDir, exec);
    ms.hinted += performance.now() - t;
    t = performance.now();
    const parsed = await checkLocations(unhinted(locations), workingDir, exec);
    ms.parsed += performance.now() - t;
    hinted.forEach((h, j) => {
      const p = parsed[j]!;
      if (h.valid === p.valid && h.start_line === p.start_line && h.end_line === p.end_line) same++;
      else differ.push(`${JSON.stringify(locations[j])}: with the hint ${h.valid ? `${h.start_line}-${h.end_line}` : h.problem}, parsed ${p.valid ? `${p.start_line}-${p.end_line}` : p.problem}`);
    });
  }
  console.log(`${files.length} files, ${same + differ.length} definitions: ${same} the same, ${differ.length} differ; check time with the hints ${ms.hinted.toFixed(0)} ms, parsing ${ms.parsed.toFixed(0)} ms`);
  for (const d of differ.slice(0, 20)) console.log(`  ${d}`);

  const wanted: Location[] = a.answer.split(",").map((spec) => {
    const [file, qualified] = spec.split(":") as [string, string];
    const cut = qualified.lastIndexOf(".");
    return cut < 0 ? { file, function_name: qualified } : { file, class_name: qualified.slice(0, cut), function_name: qualified.slice(cut + 1) };
  });
  const missing = wanted.find((l) => !existsSync(join(tree, l.file)));
  if (missing) {
    console.log(`(no answer timed: ${missing.file} is not in the tree; see --answer)`);
  } else await timeAnswer(wanted);
} finally {
  await box.destroy();
}

async function timeAnswer(wanted: Location[]) {
  const outlined = await outlineFiles(exec, workingDir, [...new Set(wanted.map((l) => l.file))], { words: [], names: [] });
  const withHints = wanted.map((l) => {
    const d = outlined.find((f) => f.path === l.file)?.defs.find((x) => x.name === l.function_name && (x.cls ?? undefined) === l.class_name);
    if (!d) throw new Error(`no ${JSON.stringify(l)} in the tree`);
    return { ...l, start_line: d.first ?? d.start, end_line: d.end };
  });
  const runs: [string, Location[], number][] = [
    ["the answer, parsed", unhinted(withHints), 2],
    ["the answer and 3 alternatives, parsed", unhinted(withHints), 5],
    ["the answer, hints", withHints, 2],
    ["the answer and 3 alternatives, hints", withHints, 5],
  ];
  const times = runs.map((): number[] => []);
  for (let i = 0; i < 11; i++) {
    for (const [k, [, ls, n]] of runs.entries()) {
      const t = performance.now();
      await checkAnswer(ls.slice(0, 2), ls.slice(2, n), workingDir, exec);
      times[k]!.push(performance.now() - t);
    }
  }
  for (const [k, [name]] of runs.entries()) console.log(`${name}: p50 ${times[k]!.sort((x, y) => x - y)[5]!.toFixed(0)} ms (11 rounds, in turn)`);
}
