import { appendFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import { parseArgs } from "node:util";
import { gather } from "../../src/agent/baseline.js";
import { extractIssueTerms } from "../../src/agent/baseline/issueTerms.js";
import { WEIGHTS } from "../../src/agent/baseline/weights.js";
import { loadBench, repoUrl } from "../../src/eval/bench.js";
import { RepoCache } from "../../src/repos/cache.js";
import { commitChanges } from "../../src/repos/history.js";
import { makeWorkingDir } from "../../src/sandbox/workdir.js";
import { serialize } from "./store.js";
import { baselineSandboxes } from "./sandboxes.js";

/**
 * Runs the baseline's sandbox work (scan and ast outline, through the real repository
 * cache and sandbox) for every instance of benchmark files and stores what it found, so
 * weights can be fitted and rules compared offline in seconds. More files are outlined than
 * the policy outlines, so refitted file weights still find their files' outlines.
 *
 *   npx tsx bench/baseline/dump.ts --out /work/eval-baseline/dump.jsonl \
 *     --url-template 'file:///work/evalmirrors/{owner}/{name}.git' BENCH.jsonl...
 *
 * (The `{owner}/{name}.git` links of scripts/eval-mirrors.sh give the service the repository's
 * own name, so an issue's `owner/name#N` is read; `{owner}+{name}.git` drops it.)
 *
 * The commits issues name are read from the cache's mirror, as the service reads them (so a
 * whole-history mirror from scripts/eval-mirrors.sh gives what the eval CLI sees; before stop 39
 * they were read only with --history-template, and dumps made without it have none). Shallow
 * per-commit mirrors have no history: --history-template names a bare repository with it
 * (e.g. '/work/.mirror/{owner}+{name}/repo') to read instead.
 */
const { values: a, positionals } = parseArgs({
  options: {
    out: { type: "string" },
    "url-template": { type: "string", default: "https://github.com/{repo}.git" },
    "cache-dir": { type: "string", default: ".cache/repos" },
    outline: { type: "string", default: "16" },
    concurrency: { type: "string", default: "2" },
    "history-template": { type: "string" },
    // Only the instances whose issue names a commit (a sha or a number), e.g. to dump them again with --history-template.
    "naming-commits": { type: "boolean", default: false },
  },
  allowPositionals: true,
});
if (!a.out || positionals.length === 0) throw new Error("usage: dump.ts --out FILE [--url-template T] [--cache-dir D] BENCH.jsonl...");
const out = a.out;
mkdirSync(dirname(out), { recursive: true });
const done = new Set(existsSync(out) ? readFileSync(out, "utf8").split("\n").filter(Boolean).map((l) => (JSON.parse(l) as { instance_id: string }).instance_id) : []);
const instances = positionals
  .flatMap((p) => loadBench(p))
  .filter((i) => !done.has(i.instance_id) && (!a["naming-commits"] || extractIssueTerms(i.problem_statement).commits.length > 0));

// Files a named commit changed are outlined whatever their weight now, so a refit that raises
// it still finds their functions.
const OUTLINE_WEIGHTS = { ...WEIGHTS, file: { ...WEIGHTS.file, namedCommit: Math.max(WEIGHTS.file.namedCommit, 10) } };
const repos = new RepoCache({ dir: a["cache-dir"], allowFileUrls: true });
const sandboxes = baselineSandboxes();
let next = 0;
await Promise.all(
  Array.from({ length: Number(a.concurrency) }, async () => {
    while (next < instances.length) {
      const inst = instances[next++]!;
      // A mined commit whose tree a local snapshot cannot produce is skipped, not fatal.
      const tree = await repos.prepare({ url: repoUrl(a["url-template"], inst.repo), commit: inst.base_commit }).catch((err: Error) => {
        process.stderr.write(`${inst.instance_id} skipped: ${err.message}\n`);
        return null;
      });
      if (!tree) continue;
      const [owner = "o", name = "r"] = inst.repo.split("/");
      const workingDir = makeWorkingDir(owner, name, inst.instance_id);
      const box = await sandboxes.create({ jobId: `dump-${inst.instance_id}`, treePath: tree.treePath, workingDir });
      try {
        const timings: number[] = [];
        const exec = async (argv: string[], o?: Parameters<typeof box.exec>[1]) => {
          const t = performance.now();
          const r = await box.exec(argv, o);
          timings.push(performance.now() - t);
          return r;
        };
        const history = a["history-template"]?.replace("{owner}", owner).replace("{name}", name);
        const terms = extractIssueTerms(inst.problem_statement);
        const changes = !terms.commits.length ? [] : history ? await commitChanges(history, inst.base_commit, terms.commits, { owner, name }) : await repos.namedCommits(tree, terms.commits);
        // The commits' files go first in the outline, and as many more are outlined, so the best
        // files under the weights of the day are outlined as well.
        const more = new Set(changes.flatMap((c) => c.files)).size;
        const g = await gather(exec, workingDir, terms, OUTLINE_WEIGHTS, Number(a.outline) + more, async () => changes);
        appendFileSync(out, `${serialize({ instance_id: inst.instance_id, repo: inst.repo, exec_ms: timings.map(Math.round), gathered: g })}\n`);
        process.stderr.write(`${inst.instance_id} ${timings.map(Math.round).join(" ")} ms\n`);
      } finally {
        await box.destroy();
        await tree.release();
      }
    }
  }),
);
