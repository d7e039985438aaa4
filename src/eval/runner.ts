import { normalizeLocations } from "../agent/locations.js";
import type { Policy } from "../agent/policy.js";
import type { RepoCache } from "../repos/cache.js";
import { makeWorkingDir } from "../sandbox/workdir.js";
import type { SandboxProvider } from "../sandbox/types.js";
import { scoreInstance } from "../scoring/index.js";
import { repoUrl, type Instance } from "./bench.js";
import type { InstanceRecord } from "./report.js";

/**
 * One benchmark instance through the service's own parts, in process: repository cache,
 * a sandbox with the training layout's working directory, the policy, the normalized
 * answer, and its scores. A failure is recorded (and scores 0), never thrown.
 */
export interface RunnerDeps {
  repos: RepoCache;
  sandboxes: SandboxProvider;
  policy: () => Policy;
  urlTemplate: string;
}

export async function runInstance(deps: RunnerDeps, inst: Instance, signal: AbortSignal): Promise<InstanceRecord> {
  const t0 = performance.now();
  const durations = { repo: 0, sandbox: 0, policy: 0, total: 0 };
  const policy = deps.policy();
  const base: InstanceRecord = {
    instance_id: inst.instance_id,
    repo: inst.repo,
    policy: policy.name,
    answered: false,
    finish_reason: null,
    failure: null,
    prediction: null,
    scores: null,
    turns: 0,
    model_calls: 0,
    prompt_tokens: 0,
    completion_tokens: 0,
    durations_ms: durations,
  };
  let phase = "repository";
  try {
    let t = performance.now();
    const tree = await deps.repos.prepare({ url: repoUrl(deps.urlTemplate, inst.repo), commit: inst.base_commit }, signal);
    durations.repo = performance.now() - t;
    try {
      phase = "sandbox";
      t = performance.now();
      const [owner = "o", name = "r"] = inst.repo.split("/");
      const workingDir = makeWorkingDir(owner, name, inst.instance_id);
      const sandbox = await deps.sandboxes.create({ jobId: `eval-${inst.instance_id}`, treePath: tree.treePath, workingDir }, signal);
      durations.sandbox = performance.now() - t;
      try {
        phase = "policy";
        t = performance.now();
        const out = await policy.run({
          issue: inst.problem_statement,
          workingDir,
          terminal: sandbox.terminal,
          exec: (argv, o) => sandbox.exec(argv, o),
          signal,
          onEvent: () => undefined,
          namedCommits: (refs) => deps.repos.namedCommits(tree, refs, signal),
        });
        durations.policy = performance.now() - t;
        const prediction = out.locations ? normalizeLocations(out.locations, workingDir) : null;
        return {
          ...base,
          answered: prediction !== null,
          finish_reason: out.finishReason,
          prediction,
          scores: scoreInstance(prediction, inst.gt),
          turns: out.turns,
          model_calls: out.usage.modelCalls,
          prompt_tokens: out.usage.promptTokens,
          completion_tokens: out.usage.completionTokens,
          durations_ms: { ...durations, total: performance.now() - t0 },
        };
      } finally {
        await sandbox.destroy();
      }
    } finally {
      // Once no sandbox mounts it: a released tree may make room for the next instance's.
      await tree.release();
    }
  } catch (err) {
    const reason = (err as { reason?: string }).reason ?? phase;
    return { ...base, failure: `${reason}: ${(err as Error).message}`.slice(0, 500), scores: scoreInstance(null, inst.gt), durations_ms: { ...durations, total: performance.now() - t0 } };
  }
}
