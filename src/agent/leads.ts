import { normalizeLocations } from "./locations.js";
import type { Location, Policy, PolicyContext, PolicyResult } from "./policy.js";

/**
 * A policy's answer with a second policy's ranking beside it as alternatives: the model's
 * answer, and where the model-free baseline would read next. The model answers without
 * confidence and without leads; its file is wrong about a third of the time (model card), and
 * the baseline's next files cost one scan of a tree the sandbox already holds (~0.4-1.2 s of
 * CPU, against tens of seconds of a model episode).
 *
 * The leads are ranked beside the episode, in the same sandbox, through the helper exec and
 * not the model's terminal, so the episode the model sees is the one it was trained in. They never
 * change the answer, and a failure to rank is recorded in the trajectory, not raised: the job
 * answers without them.
 */
export class WithLeads implements Policy {
  readonly name: Policy["name"];
  readonly usesShell?: boolean;

  constructor(
    private readonly primary: Policy,
    private readonly ranker: Policy,
    /** Files named in all, the answer's and the leads' (the baseline's own CANDIDATE_FILES). */
    private readonly files: number,
  ) {
    this.name = primary.name;
    if (primary.usesShell !== undefined) this.usesShell = primary.usesShell;
  }

  async run(ctx: PolicyContext): Promise<PolicyResult> {
    // Ranked while the model works, so the leads add little or nothing to the job's time.
    // Muted: the caller follows the model's turns, not these.
    const t = performance.now();
    const ranking = this.ranker.run({ ...ctx, onEvent: () => {} }).then(
      (r) => ({ ok: true as const, locations: [...(r.locations ?? []), ...(r.alternatives ?? [])], durationMs: performance.now() - t }),
      (err: unknown) => ({ ok: false as const, error: err instanceof Error ? err.message : String(err), durationMs: performance.now() - t }),
    );
    const answer = await this.primary.run(ctx);
    if (answer.alternatives?.length) return answer;
    const ranked = await ranking;
    if (ctx.signal.aborted) return answer;
    const alternatives = ranked.ok ? leadsBeside(normalizeLocations(answer.locations ?? [], ctx.workingDir), ranked.locations, this.files) : [];
    const at = new Date().toISOString();
    const durationMs = Math.round(ranked.durationMs);
    const step = ranked.ok
      ? { at, kind: "tool" as const, name: "leads", policy: this.ranker.name, files: alternatives.map((l) => l.file), durationMs }
      : { at, kind: "tool" as const, name: "leads", policy: this.ranker.name, error: ranked.error.slice(0, 500), durationMs };
    return { ...answer, ...(alternatives.length ? { alternatives } : {}), trajectory: [...answer.trajectory, step] };
  }
}

/**
 * The ranked locations whose files the answer (normalized) does not name, the best one per file,
 * until the answer's files and theirs make `files` in all. An answer that names that many gets none.
 */
export function leadsBeside(answer: Location[], ranked: Location[], files: number): Location[] {
  const named = new Set(answer.map((l) => l.file));
  const leads: Location[] = [];
  for (const l of ranked) {
    if (named.size >= files) break;
    if (named.has(l.file)) continue;
    named.add(l.file);
    leads.push(l);
  }
  return leads;
}
