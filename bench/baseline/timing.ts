import { gather } from "../../src/agent/baseline.js";
import { extractIssueTerms } from "../../src/agent/baseline/issueTerms.js";
import { WEIGHTS } from "../../src/agent/baseline/weights.js";
import { loadBench, repoUrl } from "../../src/eval/bench.js";
import { RepoCache } from "../../src/repos/cache.js";
import { makeWorkingDir } from "../../src/sandbox/workdir.js";
import { baselineSandboxes } from "./sandboxes.js";

/**
 * Time of the baseline's sandbox work on one instance, repeated in one sandbox:
 *   npx tsx bench/baseline/timing.ts BENCH.jsonl INSTANCE_ID [URL_TEMPLATE] [CACHE_DIR]
 */
const [bench, id, template = "file:///work/evalmirrors/{owner}+{name}.git", cacheDir = "/work/cache-baseline"] = process.argv.slice(2);
const inst = loadBench(bench!).find((i) => i.instance_id === id)!;
const tree = await new RepoCache({ dir: cacheDir, allowFileUrls: true }).prepare({ url: repoUrl(template, inst.repo), commit: inst.base_commit });
const wd = makeWorkingDir("o", "r", id!);
const box = await baselineSandboxes().create({ jobId: `timing-${id}`, treePath: tree.treePath, workingDir: wd });
try {
  for (let i = 0; i < 5; i++) {
    const t: number[] = [];
    await gather(async (argv, o) => {
      const t0 = performance.now();
      const r = await box.exec(argv, o);
      t.push(Math.round(performance.now() - t0));
      return r;
    }, wd, extractIssueTerms(inst.problem_statement), WEIGHTS, 4);
    const t0 = performance.now();
    await box.exec(["python3", "-c", "pass"]);
    process.stdout.write(`scan ${t[0]} ms, outline ${t[1]} ms; python -c pass ${Math.round(performance.now() - t0)} ms\n`);
  }
} finally {
  await box.destroy();
}
