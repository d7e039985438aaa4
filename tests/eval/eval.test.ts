import { describe, it, expect, afterAll } from "vitest";
import { execFile, execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { promisify } from "node:util";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { BenchError, loadBench, misnamedBy, repoUrl } from "../../src/eval/bench.js";
import { markdownReport, percentile, summarize, type InstanceRecord } from "../../src/eval/report.js";
import { makeGitFixture, SAMPLE_FILES } from "../helpers/gitFixture.js";
import { startFakeModel } from "../helpers/fakeModel.js";
import { TreeStore } from "../../src/repos/trees.js";

const dir = mkdtempSync(join(tmpdir(), "codescout-eval-"));
const fx = makeGitFixture(SAMPLE_FILES);
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  fx.cleanup();
});

const instance = (id: string, issue: string, entities: string[]) => ({
  instance_id: id,
  repo: "local/fixture",
  base_commit: fx.commits[0],
  problem_statement: issue,
  gt: { files: [...new Set(entities.map((e) => e.split(":")[0]))], modules: entities.map((e) => e.split(".")[0]), entities },
});

describe("benchmark input", () => {
  it("names the line and field of a bad instance", () => {
    const path = join(dir, "bad.jsonl");
    writeFileSync(path, `${JSON.stringify(instance("a", "x", []))}\n{"instance_id": "b"\n`);
    expect(() => loadBench(path)).toThrow(BenchError);
    expect(() => loadBench(path)).toThrow(/bad\.jsonl:2: not valid JSON/);
    writeFileSync(path, `${JSON.stringify({ ...instance("a", "x", []), base_commit: "abc" })}\n`);
    expect(() => loadBench(path)).toThrow(/bad\.jsonl:1: base_commit: base_commit must be a 40-hex sha/);
  });

  it("fills URL templates", () => {
    expect(repoUrl("https://github.com/{repo}.git", "psf/requests")).toBe("https://github.com/psf/requests.git");
    expect(repoUrl("file:///m/{owner}+{name}.git", "psf/requests")).toBe("file:///m/psf+requests.git");
  });

  it("says when a template's URLs name other repositories than the instances'", () => {
    const instances = [{ repo: "psf/requests" }, { repo: "django/django" }];
    expect(misnamedBy("https://github.com/{repo}.git", instances)).toBeNull();
    expect(misnamedBy("file:///m/{owner}/{name}.git", instances)).toBeNull();
    expect(misnamedBy("file:///m/{owner}/{name}", instances)).toBeNull();
    expect(misnamedBy("file:///m/{owner}+{name}.git", instances)).toEqual({ url: "file:///m/psf+requests.git", repo: "psf/requests", want: "requests", got: "psf_requests" });
    expect(misnamedBy("file:///m/{name}/repo", instances)).toMatchObject({ got: "repo", want: "requests" });
    // A URL the service refuses is the run's to report, once per instance.
    expect(misnamedBy("ext::{repo}", instances)).toBeNull();
  });
});

describe("summary", () => {
  it("averages over all instances, failures included as zeros, with latency percentiles", () => {
    const rec = (f1: number | null, total: number): InstanceRecord => ({
      instance_id: String(total),
      repo: "r",
      policy: "baseline",
      answered: f1 !== null,
      finish_reason: f1 === null ? null : "finish_tool",
      failure: f1 === null ? "sandbox_failed: boom" : null,
      prediction: null,
      scores:
        f1 === null
          ? null
          : { file: { precision: f1, recall: f1, f1 }, module: { precision: 0, recall: 0, f1: 0 }, entity: { precision: 0, recall: 0, f1: 0 } },
      turns: 1,
      model_calls: 0,
      prompt_tokens: 10,
      completion_tokens: 2,
      durations_ms: { repo: 0, sandbox: 0, policy: 0, total },
    });
    const s = summarize([rec(1, 100), rec(0.5, 200), rec(null, 300), rec(0, 400)]);
    expect(s.levels.file.f1).toBeCloseTo(1.5 / 4);
    expect(s).toMatchObject({ instances: 4, answered: 3, failed: 1, failures: { sandbox_failed: 1 } });
    expect(s.latency_ms).toEqual({ p50: 200, p90: 400, p99: 400, max: 400 });
    expect(percentile([], 50)).toBe(0);
    expect(s.alternatives).toBeUndefined();
  });

  it("says how often the alternatives name a gold file or function the answer missed, apart from the scores", () => {
    const level = (recall: number) => ({ precision: recall, recall, f1: recall });
    const rec = (id: string, answer: [number, number], withAlternatives?: [number, number]): InstanceRecord => ({
      instance_id: id,
      repo: "r",
      policy: "baseline",
      answered: true,
      finish_reason: "finish_tool",
      failure: null,
      prediction: [{ file: "a.py" }],
      scores: { file: level(answer[0]), module: level(0), entity: level(answer[1]) },
      ...(withAlternatives ? { alternatives: [{ file: "b.py" }, { file: "c.py", function_name: "f" }], scores_with_alternatives: { file: level(withAlternatives[0]), module: level(0), entity: level(withAlternatives[1]) } } : {}),
      turns: 1,
      model_calls: 0,
      prompt_tokens: 0,
      completion_tokens: 0,
      durations_ms: { repo: 0, sandbox: 0, policy: 0, total: 1 },
    });
    const records = [rec("1", [1, 0], [1, 0.5]), rec("2", [0, 0], [0.5, 0]), rec("3", [0, 0], [0, 0]), rec("4", [1, 1])];
    const s = summarize(records);
    expect(s.levels.file.f1).toBeCloseTo(0.5);
    expect(s.alternatives).toEqual({ per_instance: 1.5, gold_file_named: { answer: 0.5, with_alternatives: 0.75 }, gold_function_named: { answer: 0.25, with_alternatives: 0.5 } });
    expect(markdownReport(s, "t", records)).toContain("With the alternatives (1.5 per instance, not scored): a gold file is among the files named for 50.0% → 75.0% of instances, a gold function for 25.0% → 50.0%.");
  });
});

describe("eval CLI", () => {
  it("runs instances through the real pipeline, writes results and a report, and resumes", () => {
    const bench = join(dir, "bench.jsonl");
    writeFileSync(
      bench,
      [
        instance("fixture-1", "`Parser.parse` loses values that contain '='", ["pkg/parser.py:Parser.parse"]),
        instance("fixture-2", "`helper` should return 43", ["pkg/util.py:helper"]),
      ]
        .map((i) => JSON.stringify(i))
        .join("\n"),
    );
    const out = join(dir, "out");
    execFileSync("git", ["clone", "-q", "--bare", fx.dir, join(dir, "local+fixture.git")]);
    const args = ["tsx", "src/cli/eval.ts", "--bench", bench, "--url-template", `file://${dir}/{owner}+{name}.git`, "--out", out, "--cache-dir", join(dir, "cache")];
    const run = () => spawnSync("npx", args, { encoding: "utf8" });
    const first = run();
    expect(first.status, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/file F1 100\.0 .* function F1 100\.0 .*answered 2\/2/);
    expect(first.stderr).toContain(`names the repository "local_fixture", not "fixture": the issues' references written local/fixture#N are not read`);
    // The baseline is CPU-bound: by default, one instance at a time per two cores.
    expect(first.stderr).toContain(`(policy baseline, concurrency ${Math.max(1, Math.floor(availableParallelism() / 2))})`);
    const lines = readFileSync(join(out, "results.jsonl"), "utf8").trim().split("\n");
    expect(lines).toHaveLength(2);
    expect(JSON.parse(lines[0]!)).toMatchObject({ policy: "baseline", answered: true, scores: { file: { f1: 1 } } });
    expect(readFileSync(join(out, "summary.md"), "utf8")).toContain("| file |");
    // Each instance released its tree once done: an eval of many commits reuses the trees' room.
    const holds = join(new TreeStore({ cacheDir: join(dir, "cache") }).dir, ".holds");
    expect(readdirSync(holds, { recursive: true, withFileTypes: true }).filter((e) => e.isFile())).toEqual([]);
    expect(readdirSync(holds).length).toBeGreaterThan(0);
    expect(run().status).toBe(0);
    expect(readFileSync(join(out, "results.jsonl"), "utf8").trim().split("\n")).toHaveLength(2);
    // Resumed with another policy, or after the gold was relabelled: the old answers are not reported as the new run's.
    const codescout = spawnSync("npx", [...args, "--policy", "codescout", "--model-url", "http://127.0.0.1:9/v1"], { encoding: "utf8" });
    expect(codescout.status).toBe(2);
    expect(codescout.stderr).toContain(`eval: ${out} holds the results of another run (its policy, model, max_turns, temperature differ): give another --out, or remove ${out}`);
    writeFileSync(bench, [instance("fixture-1", "`Parser.parse` loses values that contain '='", ["pkg/util.py:helper"])].map((i) => JSON.stringify(i)).join("\n"));
    const relabelled = run();
    expect(relabelled.status).toBe(2);
    expect(relabelled.stderr).toContain("(its bench_sha256 differs)");
    expect(readFileSync(join(out, "results.jsonl"), "utf8").trim().split("\n")).toHaveLength(2);
  });

  it("runs again on resume the instances that failed, and keeps the answered ones", () => {
    const bench = join(dir, "bench-resume.jsonl");
    const other = { ...instance("other-1", "`helper` should return 43", ["pkg/util.py:helper"]), repo: "other/fixture" };
    writeFileSync(bench, [instance("fixture-r", "`helper` should return 43", ["pkg/util.py:helper"]), other].map((i) => JSON.stringify(i)).join("\n"));
    const mirrors = join(dir, "resume-mirrors");
    execFileSync("git", ["clone", "-q", "--bare", fx.dir, join(mirrors, "local", "fixture.git")]);
    const out = join(dir, "out-resume");
    const args = ["tsx", "src/cli/eval.ts", "--bench", bench, "--url-template", `file://${mirrors}/{owner}/{name}.git`, "--out", out, "--cache-dir", join(dir, "cache")];
    const results = () => readFileSync(join(out, "results.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as InstanceRecord);

    // other/fixture's mirror is not there yet: that instance fails, and is recorded so.
    const first = spawnSync("npx", args, { encoding: "utf8" });
    expect(first.status, first.stderr).toBe(0);
    expect(first.stdout).toContain("answered 1/2");
    expect(results().find((r) => r.instance_id === "other-1")).toMatchObject({ answered: false, failure: expect.stringMatching(/^fetch_failed: /) });

    execFileSync("git", ["clone", "-q", "--bare", fx.dir, join(mirrors, "other", "fixture.git")]);
    const second = spawnSync("npx", args, { encoding: "utf8" });
    expect(second.status, second.stderr).toBe(0);
    expect(second.stderr).toContain("2 instances, 1 already done, 1 to run (1 failed before)");
    expect(second.stdout).toMatch(/file F1 100\.0 .*answered 2\/2/);
    // The failed line stays, the later one stands for the instance; the answered one ran once.
    expect(results().map((r) => [r.instance_id, r.answered])).toEqual([
      ["fixture-r", true],
      ["other-1", false],
      ["other-1", true],
    ]);

    const third = spawnSync("npx", args, { encoding: "utf8" });
    expect(third.stderr).toContain("2 instances, 2 already done, 0 to run (policy");
    expect(results()).toHaveLength(3);
  });

  it("runs the model with the baseline's leads beside its answers, and reports what they add", async () => {
    const model = await startFakeModel();
    try {
      // The model answers the helper; the issue is about the parser, which the baseline ranks first.
      // Its span is wrong and its second location does not exist: the record holds them as the service serves them.
      const locations = [
        { file: "pkg/util.py", function_name: "helper", start_line: 7, end_line: 9 },
        { file: "pkg/util.py", function_name: "missing" },
      ];
      model.script([{ toolCalls: [{ name: "localization_finish", arguments: { locations } }] }]);
      const bench = join(dir, "bench-model.jsonl");
      const issue = "Values of parsed lines are wrong\n\nThe values read from each line come out wrong, and a helper is involved too.";
      writeFileSync(bench, JSON.stringify(instance("fixture-m", issue, ["pkg/parser.py:parse_file"])));
      execFileSync("git", ["clone", "-q", "--bare", fx.dir, join(dir, "local", "fixture.git")]);
      const out = join(dir, "out-model");
      const args = ["tsx", "src/cli/eval.ts", "--bench", bench, "--url-template", `file://${dir}/{owner}/{name}.git`, "--out", out, "--cache-dir", join(dir, "cache"), "--policy", "codescout", "--model-url", model.baseURL];
      const { stderr } = await promisify(execFile)("npx", args, { encoding: "utf8" });
      expect(stderr).not.toContain("warning");
      const record = JSON.parse(readFileSync(join(out, "results.jsonl"), "utf8").trim()) as InstanceRecord;
      expect(record).toMatchObject({ policy: "codescout", answered: true, scores: { file: { f1: 0 } } });
      expect(record.prediction).toMatchObject([
        { file: "pkg/util.py", function_name: "helper", valid: true, start_line: 1, end_line: 2 },
        { file: "pkg/util.py", function_name: "missing", valid: false, problem: "function not found" },
      ]);
      expect(record.durations_ms.check).toBeGreaterThan(0);
      expect(record.alternatives?.[0]).toMatchObject({ file: "pkg/parser.py", function_name: "parse_file" });
      expect(readFileSync(join(out, "summary.md"), "utf8")).toMatch(/a gold file is among the files named for 0\.0% → 100\.0% of instances/);
    } finally {
      await model.close();
    }
  });

  it("refuses bad arguments with a message naming the problem", () => {
    const refusal = (...args: string[]) => {
      try {
        execFileSync("npx", ["tsx", "src/cli/eval.ts", "--bench", "x.jsonl", ...args], { encoding: "utf8", stdio: "pipe" });
      } catch (err) {
        return (err as { stderr: string }).stderr;
      }
      return "";
    };
    expect(refusal("--concurrency", "zero")).toContain("--concurrency must be an integer");
    // Not a run of no instances (NaN) or of all but the last five.
    expect(refusal("--limit", "abc")).toContain("--limit must be a positive integer, not abc");
    expect(refusal("--limit=-5")).toContain("--limit must be a positive integer, not -5");
  });
});
