import { ModelError, type ModelErrorReason } from "./codescout/modelClient.js";
import { addUsage, stepsOf, type Policy, type PolicyContext, type PolicyResult } from "./policy.js";

/** The job's time kept for the baseline: on a large tree's first job its answer takes seconds, rarely a minute. */
export const BASELINE_RESERVE_MS = 120_000;

/** What the model server did that the baseline answers for: it was away, or did not answer in time. */
const FALLBACK_REASONS: ReadonlySet<ModelErrorReason> = new Set(["llm_unavailable", "llm_timeout"]);

/**
 * The model's policy with the model-free baseline behind it. When the model server cannot be
 * reached or does not answer in time (after the client's own retries), the baseline answers in
 * the same sandbox, and the result says so (`fallback`), instead of the job failing: an agent
 * calling during a model server's restart or overload still gets places to read, with the
 * baseline's confidence on each. A request that names the model's policy is not given this
 * (policies.ts): it asked for the model, and gets it or its failure.
 */
export class WithFallback implements Policy {
  readonly name: Policy["name"];
  readonly usesShell?: boolean;

  constructor(
    private readonly primary: Policy,
    private readonly fallback: Policy,
  ) {
    this.name = primary.name;
    if (primary.usesShell !== undefined) this.usesShell = primary.usesShell;
  }

  async run(ctx: PolicyContext): Promise<PolicyResult> {
    // The model's time ends early enough for the baseline to answer in the job's: a server that
    // hangs or trickles ends the model's turn as llm_timeout, not the job as job_timeout.
    const left = ctx.deadlineAt === undefined ? 0 : Math.max(0, ctx.deadlineAt - performance.now());
    const primaryCtx = ctx.deadlineAt === undefined ? ctx : { ...ctx, deadlineAt: ctx.deadlineAt - Math.min(BASELINE_RESERVE_MS, left / 2) };
    try {
      return await this.primary.run(primaryCtx);
    } catch (err) {
      if (!(err instanceof ModelError) || !FALLBACK_REASONS.has(err.reason) || ctx.signal.aborted) throw err;
      // The reason's code only: the client's message may name the model server's address.
      const fallback = { from: this.primary.name, reason: err.reason };
      ctx.onEvent({ type: "fallback", turn: 0, maxTurns: 0, reason: err.reason });
      const answer = await this.fallback.run(ctx);
      // The job's usage is both policies': the model's calls (the failed one too), then the baseline's tools.
      // In the order it happened: the model's steps until it failed, the fallback, the baseline's.
      const before = stepsOf(err) ?? [];
      const step = { at: new Date().toISOString(), kind: "tool" as const, name: "fallback", ...fallback, detail: err.message };
      return { ...answer, usage: err.usage ? addUsage(err.usage, answer.usage) : answer.usage, fallback, trajectory: [...before, step, ...answer.trajectory] };
    }
  }
}
