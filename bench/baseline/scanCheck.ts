import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { SCAN_SCRIPT } from "../../src/agent/baseline/repoScan.js";
import { buildQuery } from "../../src/agent/baseline/query.js";
import { extractIssueTerms } from "../../src/agent/baseline/issueTerms.js";
import { loadBench, repoUrl } from "../../src/eval/bench.js";
import { RepoCache } from "../../src/repos/cache.js";
import { makeWorkingDir } from "../../src/sandbox/workdir.js";
import { baselineSandboxes } from "./sandboxes.js";

/**
 * The repository scan of another revision against this tree's, on each instance's tree and
 * query in one sandbox: is the output byte for byte the same, and how long does each take?
 * A change meant to make the scan faster must leave its output alone.
 *
 *   npx tsx bench/baseline/scanCheck.ts --before REV [--url-template T] [--cache-dir D] BENCH.jsonl...
 *   npx tsx bench/baseline/scanCheck.ts --before REV --hostile
 *
 * --hostile scans a tree of one Python file that is one 2 MB line of `xdef refresh ` (generated
 * or minified code at its worst for the definitions' search) for an issue naming `refresh`.
 *
 * REV is checked out as a git worktree of its own under .cache/scan-check/ (inside the project,
 * so its imports resolve to this node_modules) and removed at the end. The two scans run in turns,
 * the first one alternating between instances, so neither gets the warmer page cache.
 */
const { values: a, positionals } = parseArgs({
  options: {
    before: { type: "string" },
    "url-template": { type: "string", default: "file:///work/evalmirrors/{owner}+{name}.git" },
    "cache-dir": { type: "string", default: ".cache/scan-check-repos" },
    hostile: { type: "boolean", default: false },
  },
  allowPositionals: true,
});
if (!a.before || (positionals.length === 0) === !a.hostile) throw new Error("usage: scanCheck.ts --before REV [--url-template T] [--cache-dir D] BENCH.jsonl...");
const rev = execFileSync("git", ["rev-parse", "--verify", `${a.before}^{commit}`], { encoding: "utf8" }).trim();
// One worktree per run: two runs at once must not remove each other's.
const worktree = resolve(".cache/scan-check", `${rev.slice(0, 12)}-${process.pid}`);
execFileSync("git", ["worktree", "add", "--detach", worktree, rev], { stdio: "ignore" });
const before = ((await import(`${worktree}/src/agent/baseline/repoScan.ts`)) as { SCAN_SCRIPT: string }).SCAN_SCRIPT;

const cache = new RepoCache({ dir: a["cache-dir"], allowFileUrls: true });
const provider = baselineSandboxes();
const times = new Map<string, { before: number[]; after: number[] }>();
let same = 0;
const differ: string[] = [];
let turn = 0;
try {
  const instances = a.hostile ? [{ instance_id: "hostile", repo: "hostile/line", base_commit: "", problem_statement: "`refresh` is slow" }] : positionals.flatMap((b) => loadBench(b));
  for (const inst of instances) {
    let tree: { treePath: string };
    try {
      tree = a.hostile ? hostileTree() : await cache.prepare({ url: repoUrl(a["url-template"], inst.repo), commit: inst.base_commit });
    } catch (err) {
      process.stdout.write(`skipped ${inst.instance_id}: ${(err as Error).message}\n`);
      continue;
    }
    const wd = makeWorkingDir("scan", "check", inst.instance_id);
    const box = await provider.create({ jobId: `scan-check-${inst.instance_id}`.slice(0, 60), treePath: tree.treePath, workingDir: wd });
    try {
      const stdin = JSON.stringify(buildQuery(extractIssueTerms(inst.problem_statement)));
      const run = async (script: string) => {
        const t = performance.now();
        const r = await box.exec(["env", "PYTHONHASHSEED=0", "python3", "-c", script, wd], { stdin, timeoutMs: 60_000, maxOutputBytes: 16 << 20 });
        return { r, ms: performance.now() - t };
      };
      const first = turn++ % 2 === 0;
      const x = first ? await run(before) : await run(SCAN_SCRIPT);
      const y = first ? await run(SCAN_SCRIPT) : await run(before);
      const [old, now] = first ? [x, y] : [y, x];
      const t = times.get(inst.repo) ?? { before: [], after: [] };
      t.before.push(old.ms);
      t.after.push(now.ms);
      times.set(inst.repo, t);
      if (old.r.exitCode === 0 && now.r.exitCode === 0 && old.r.stdout === now.r.stdout) same++;
      else differ.push(`${inst.instance_id} (exit ${old.r.exitCode} / ${now.r.exitCode})`);
    } finally {
      await box.destroy();
    }
  }
} finally {
  try {
    execFileSync("git", ["worktree", "remove", "--force", worktree], { stdio: "ignore" });
  } catch {
    process.stderr.write(`could not remove the worktree ${worktree}: remove it with git worktree remove --force\n`);
  }
}
function hostileTree(): { treePath: string } {
  mkdirSync(resolve(a["cache-dir"]), { recursive: true });
  const treePath = mkdtempSync(join(resolve(a["cache-dir"]), "hostile-"));
  chmodSync(treePath, 0o755); // the sandbox's user reads it
  mkdirSync(join(treePath, "pkg"));
  writeFileSync(join(treePath, "pkg/generated.py"), `x = 1; ${"xdef refresh ".repeat(150_000)}\n`);
  return { treePath };
}

const p50 = (v: number[]) => [...v].sort((x, y) => x - y)[Math.floor((v.length - 1) / 2)]!;
process.stdout.write(`| repository | n | scan p50 before | after |\n| --- | ---: | ---: | ---: |\n`);
for (const [repo, t] of [...times].sort((x, y) => p50(y[1].before) - p50(x[1].before)))
  process.stdout.write(`| ${repo} | ${t.before.length} | ${Math.round(p50(t.before))} ms | ${Math.round(p50(t.after))} ms |\n`);
process.stdout.write(`same output: ${same} of ${same + differ.length}${differ.length ? `; differs: ${differ.join(", ")}` : ""}\n`);
