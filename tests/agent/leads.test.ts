import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { LEADS_JOB_MARGIN_MS, leadsBeside, RankingSlots, withAgreement, WithLeads } from "../../src/agent/leads.js";
import { BaselinePolicy } from "../../src/agent/baseline.js";
import { emptyUsage, type Policy, type PolicyResult } from "../../src/agent/policy.js";
import { policyContext, startSandbox, type SandboxFixture } from "../helpers/sandbox.js";

/** The leads beside a model's answer: the pure parts (the end-to-end tests run them through a worker). */
describe("leads beside an answer", () => {
  const ranked = [
    { file: "a.py", function_name: "f" },
    { file: "a.py", function_name: "g" },
    { file: "b.py", function_name: "h" },
    { file: "c.py" },
    { file: "d.py" },
    { file: "e.py" },
  ];

  it("takes the best location of each file the answer does not name, up to the files in all", () => {
    expect(leadsBeside([{ file: "b.py" }], ranked, 4)).toEqual([{ file: "a.py", function_name: "f" }, { file: "c.py" }, { file: "d.py" }]);
    expect(leadsBeside([], ranked, 2)).toEqual([{ file: "a.py", function_name: "f" }, { file: "b.py", function_name: "h" }]);
  });

  it("gives none to an answer that already names that many files", () => {
    expect(leadsBeside([{ file: "x.py" }, { file: "y.py" }], ranked, 2)).toEqual([]);
  });

  it("says where the second ranking put each answered file, with its confidence, or that it left the file out", () => {
    const ranked = [
      { file: "a.py", function_name: "f", confidence: { file: 0.7, function: 0.4 } },
      { file: "a.py", function_name: "g", confidence: { file: 0.7, function: 0.1 } },
      { file: "b.py", confidence: { file: 0.2 } },
      { file: "c.py" },
    ];
    expect(withAgreement([{ file: "a.py", function_name: "h" }, { file: "b.py", evidence: ["its own"] }, { file: "c.py" }, { file: "z.py" }], ranked)).toEqual([
      { file: "a.py", function_name: "h", evidence: ["the model-free ranking's first file too, at confidence 0.70"] },
      { file: "b.py", evidence: ["its own", "the model-free ranking's file 2 of 3, at confidence 0.20"] },
      { file: "c.py", evidence: ["the model-free ranking's file 3 of 3"] },
      { file: "z.py", evidence: ["not among the model-free ranking's 3 files"] },
    ]);
    // A ranking that found nothing says nothing.
    expect(withAgreement([{ file: "a.py" }], [])).toEqual([{ file: "a.py" }]);
  });

  it("lets only so many rankings run at once, and frees a slot when one ends", () => {
    const slots = new RankingSlots(2);
    expect([slots.take(), slots.take(), slots.take()]).toEqual([true, true, false]);
    slots.give();
    expect(slots.take()).toBe(true);
  });
});

/**
 * The leads and the job's own time limit, in a real sandbox with the real baseline ranking. The
 * answering policy stands in for the model (its answer is all WithLeads reads of it).
 */
describe("leads near the job's time limit", () => {
  let box: SandboxFixture;
  beforeAll(async () => {
    box = await startSandbox();
  });
  afterAll(async () => {
    await box?.cleanup();
  });

  const answering: Policy = {
    name: "codescout",
    async run(): Promise<PolicyResult> {
      return { policy: "codescout", locations: [{ file: "pkg/util.py", function_name: "helper" }], finishReason: "finish_tool", turns: 1, usage: emptyUsage(), trajectory: [] };
    },
  };
  const issue = "Values of parsed lines are wrong\n\nThe values read from each line come out wrong, and a helper is involved too.";
  const withLeads = () => new WithLeads(answering, new BaselinePolicy(), new RankingSlots(1), { files: 5, deadlineMs: 30_000 });
  const leadsStep = (r: PolicyResult) => r.trajectory.at(-1) as Record<string, unknown>;

  it("ranks them when the job has time to spare, and says where the ranking put the answer's file", async () => {
    const r = await withLeads().run({ ...policyContext(box, issue), deadlineAt: performance.now() + 120_000 });
    // The ranking puts the parser first and the helper's file second: the model's file says so.
    expect(r.locations).toEqual([{ file: "pkg/util.py", function_name: "helper", evidence: [expect.stringMatching(/^the model-free ranking's file 2 of 2, at confidence 0\.\d\d$/)] }]);
    expect(r.alternatives?.[0]?.file).toBe("pkg/parser.py");
    expect(leadsStep(r)).toMatchObject({ name: "leads", policy: "baseline", files: expect.arrayContaining(["pkg/parser.py"]) });
  });

  it("does not start them when the job's limit is nearer than its margin, and keeps the answer", async () => {
    const slots = new RankingSlots(1);
    const r = await new WithLeads(answering, new BaselinePolicy(), slots, { files: 5, deadlineMs: 30_000 }).run({
      ...policyContext(box, issue),
      deadlineAt: performance.now() + LEADS_JOB_MARGIN_MS,
    });
    expect(r.locations).toEqual([{ file: "pkg/util.py", function_name: "helper" }]);
    expect(r.alternatives).toBeUndefined();
    expect(leadsStep(r)).toMatchObject({ name: "leads", skipped: "too close to the job's time limit" });
    // The slot was never taken.
    expect(slots.take()).toBe(true);
  });

  it("skips them when the worker's rankings are all busy, keeps the answer, and frees no slot it did not take", async () => {
    const slots = new RankingSlots(1);
    expect(slots.take()).toBe(true);
    const r = await new WithLeads(answering, new BaselinePolicy(), slots, { files: 5, deadlineMs: 30_000 }).run({
      ...policyContext(box, issue),
      deadlineAt: performance.now() + 120_000,
    });
    expect(r.locations).toEqual([{ file: "pkg/util.py", function_name: "helper" }]);
    expect(r.alternatives).toBeUndefined();
    expect(leadsStep(r)).toMatchObject({ name: "leads", skipped: "the worker's rankings are all busy" });
    // The other job's ranking still holds the one slot; it frees it when it ends.
    expect(slots.take()).toBe(false);
    slots.give();
    expect(slots.take()).toBe(true);
  });

  it("ranks without the history when it would come after the deadline (a repository's first clone still running)", async () => {
    const r = await new WithLeads(answering, new BaselinePolicy(), new RankingSlots(1), { files: 5, deadlineMs: 2_000 }).run({
      ...policyContext(box, `${issue}\n\nIt broke in #4242.`),
      deadlineAt: performance.now() + 120_000,
      // What the worker's would do while the clone runs: wait, here for ever.
      namedCommits: () => new Promise(() => undefined),
    });
    expect(r.alternatives?.[0]?.file).toBe("pkg/parser.py");
    expect(leadsStep(r).durationMs).toBeLessThan(10_000);
  });

  it("ends the ranking's processes before the job's limit, whatever the leads' own deadline", async () => {
    // A ranker whose one process would run 20 s: the job's limit leaves it about one.
    const sleeper: Policy = {
      name: "baseline",
      async run(ctx): Promise<PolicyResult> {
        const out = await ctx.exec(["sleep", "20"], { timeoutMs: 60_000 });
        return { policy: "baseline", locations: out.exitCode === 0 ? [{ file: "pkg/parser.py" }] : null, finishReason: "finish_tool", turns: 0, usage: emptyUsage(), trajectory: [] };
      },
    };
    const r = await new WithLeads(answering, sleeper, new RankingSlots(1), { files: 5, deadlineMs: 30_000 }).run({
      ...policyContext(box, issue),
      deadlineAt: performance.now() + LEADS_JOB_MARGIN_MS + 1_000,
    });
    expect(r.locations).toEqual([{ file: "pkg/util.py", function_name: "helper" }]);
    expect(r.alternatives).toBeUndefined();
    // Killed at the job's limit less its margin (~1 s), far before the process's 20 s or the leads' 30 s.
    expect(leadsStep(r).durationMs).toBeLessThan(10_000);
  });
});
