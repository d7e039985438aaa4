import { CANDIDATE_FILES } from "./baseline.js";
import { normalizeLocations } from "./locations.js";
import type { Location, Policy, PolicyContext, PolicyResult, TrajectoryStep } from "./policy.js";

/**
 * How long a job waits for its leads after the answer: sympy's scan and outline take ~1.1 s on an
 * idle host; on one busy with other episodes the ranking gets only the CPU they leave idle.
 */
export const LEADS_DEADLINE_MS = 5_000;

/**
 * What a job keeps of its time limit after its leads: the check of the answer, the trajectory's
 * write and the result's. Leads that cannot end this long before the job's limit are not ranked,
 * since a job still ranking at its limit fails and loses the answer it already has.
 */
export const LEADS_JOB_MARGIN_MS = 2_000;

/** Leads given less time than this are not worth starting (a scan of a small tree takes ~0.3 s). */
const LEADS_MIN_MS = 500;

/**
 * A policy's answer with a second policy's ranking beside it as alternatives: the model's
 * answer, and where the model-free baseline would read next. The model answers without
 * confidence and without leads; its file is wrong about a third of the time (model card), and
 * the baseline's next files cost one scan of a tree the sandbox already holds (~0.4-1.2 s of
 * CPU, against tens of seconds of a model episode).
 *
 * The leads are ranked after the answer, in the same sandbox, through the helper exec and not
 * the model's terminal, so the episode the model sees is the one it was trained in. At GPU scale
 * a worker host's CPU serves the tool calls of every episode in flight; ranked beside the
 * episodes, twenty scans of sympy at once slowed those calls from ~60 ms to ~0.8 s and the GPU's
 * throughput by a quarter (BENCHMARKS.md, "At GPU scale"). So the sandbox yields its CPU while it
 * ranks (it runs on what the episodes leave idle), the ranking has a deadline, after which the
 * job answers without leads, and only so many rank at once. They never change the answer, and a
 * failed, late or skipped ranking is recorded in the trajectory, not raised.
 */
export class WithLeads implements Policy {
  readonly name: Policy["name"];
  readonly usesShell?: boolean;

  constructor(
    private readonly primary: Policy,
    private readonly ranker: Policy,
    /** Rankings running at once across the worker's jobs: one past these is skipped, not queued. */
    private readonly slots: RankingSlots,
    private readonly limits: {
      /** Files named in all, the answer's and the leads' (the baseline's own CANDIDATE_FILES). */
      files: number;
      /** How long the job may wait for its leads after the answer (less near the job's own limit). */
      deadlineMs: number;
    } = { files: CANDIDATE_FILES, deadlineMs: LEADS_DEADLINE_MS },
  ) {
    this.name = primary.name;
    if (primary.usesShell !== undefined) this.usesShell = primary.usesShell;
  }

  async run(ctx: PolicyContext): Promise<PolicyResult> {
    const answer = await this.primary.run(ctx);
    if (ctx.signal.aborted) return answer;
    const deadline = Math.min(performance.now() + this.limits.deadlineMs, (ctx.deadlineAt ?? Infinity) - LEADS_JOB_MARGIN_MS);
    if (deadline - performance.now() < LEADS_MIN_MS) return this.noted(answer, { skipped: "too close to the job's time limit" });
    if (!this.slots.take()) return this.noted(answer, { skipped: "the worker's rankings are all busy" });
    try {
      return await this.rank(ctx, answer, deadline);
    } finally {
      this.slots.give();
    }
  }

  private async rank(ctx: PolicyContext, answer: PolicyResult, deadline: number): Promise<PolicyResult> {
    const t = performance.now();
    // A failure to yield only costs the other jobs some CPU: the leads go on.
    const yielded = ctx.yieldCpu ? await ctx.yieldCpu(true).then(() => true, () => false) : false;
    const ranked = await this.ranker
      .run({
        ...ctx,
        // Each process is killed at the deadline, so nothing of the ranking outlives it.
        exec: (argv, options) => ctx.exec(argv, { ...options, timeoutMs: Math.max(1, Math.min(options?.timeoutMs ?? Infinity, deadline - performance.now())) }),
        // The history may wait for a repository's first clone, up to the job's own limit: past
        // half the leads' time the ranking goes without it (it is a hint), as without any
        // history, and has the other half for its own processes.
        ...(ctx.namedCommits ? { namedCommits: (refs: string[]) => byDeadline(ctx.namedCommits!(refs), t + (deadline - t) / 2, []) } : {}),
        // Muted: the caller follows the model's turns, and this is not one.
        onEvent: () => {},
      })
      .then(
        (r) => ({ ok: true as const, locations: [...(r.locations ?? []), ...(r.alternatives ?? [])] }),
        (err: unknown) => ({ ok: false as const, error: err instanceof Error ? err.message : String(err) }),
      );
    if (yielded) await ctx.yieldCpu!(false).catch(() => undefined);
    if (ctx.signal.aborted) return answer;
    const durationMs = Math.round(performance.now() - t);
    if (!ranked.ok) return this.noted(answer, { error: ranked.error.slice(0, 500), durationMs });
    const located = answer.locations && withAgreement(normalizeLocations(answer.locations, ctx.workingDir), ranked.locations);
    const alternatives = leadsBeside(located ?? [], ranked.locations, this.limits.files);
    return this.noted({ ...answer, locations: located, ...(alternatives.length ? { alternatives } : {}) }, { files: alternatives.map((l) => l.file), durationMs });
  }

  /** The answer with the trajectory's last step: what became of the leads (ranked, failed, late or skipped). */
  private noted(answer: PolicyResult, outcome: Record<string, unknown>): PolicyResult {
    const step: TrajectoryStep = { at: new Date().toISOString(), kind: "tool", name: "leads", policy: this.ranker.name, ...outcome };
    return { ...answer, trajectory: [...answer.trajectory, step] };
  }
}

/**
 * The answer's locations, each with what the second ranking made of its file as evidence: its
 * place among that ranking's files and that ranking's confidence in it, or that they leave it
 * out. The model answers with neither evidence nor confidence; two rankings agreeing on a file
 * is a reason to believe it, and their disagreeing one to check it.
 */
export function withAgreement(answer: Location[], ranked: Location[]): Location[] {
  const files = bestPerFile(ranked);
  if (!files.length) return answer;
  return answer.map((l) => {
    const at = files.findIndex((f) => f.file === l.file);
    const sure = files[at]?.confidence;
    const its = sure ? `, at confidence ${sure.file.toFixed(2)}` : "";
    const said =
      at < 0
        ? `not among the model-free ranking's ${files.length} file${files.length === 1 ? "" : "s"}`
        : at === 0
          ? `the model-free ranking's first file too${its}`
          : `the model-free ranking's file ${at + 1} of ${files.length}${its}`;
    return { ...l, evidence: [...(l.evidence ?? []), said] };
  });
}

/**
 * The ranked locations whose files the answer (normalized) does not name, the best one per file,
 * until the answer's files and theirs make `files` in all. An answer that names that many gets none.
 */
export function leadsBeside(answer: Location[], ranked: Location[], files: number): Location[] {
  const named = new Set(answer.map((l) => l.file));
  return bestPerFile(ranked)
    .filter((l) => !named.has(l.file))
    .slice(0, Math.max(0, files - named.size));
}

/** The first (best) location of each file, in the ranking's order. */
function bestPerFile(ranked: Location[]): Location[] {
  const seen = new Set<string>();
  return ranked.filter((l) => !seen.has(l.file) && seen.add(l.file));
}

/**
 * How many rankings may run at once in one worker. A job that finds them all busy answers
 * without leads rather than wait: on a host whose CPU the episodes already use, a ranking would
 * only hold the job's slot until its deadline (BENCHMARKS.md, "At GPU scale"). Not p-limit,
 * which the project has: it queues what is over its limit, and this must refuse it.
 */
export class RankingSlots {
  private running = 0;

  constructor(readonly size: number) {}

  take(): boolean {
    if (this.running >= this.size) return false;
    this.running++;
    return true;
  }

  give(): void {
    this.running = Math.max(0, this.running - 1);
  }
}

/** `promise`'s value, or `otherwise` once `deadline` (performance.now()'s clock) has passed. */
async function byDeadline<T>(promise: Promise<T>, deadline: number, otherwise: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<T>((resolve) => (timer = setTimeout(() => resolve(otherwise), Math.max(0, deadline - performance.now()))));
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}
