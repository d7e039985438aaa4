import { checkAnswer, normalizeLocations } from "../agent/locations.js";
import type { Policy } from "../agent/policy.js";
import type { RepoCache } from "../repos/cache.js";
import { makeWorkingDir } from "../sandbox/workdir.js";
import type { DockerSandboxOptions } from "../sandbox/docker.js";
import type { Sandbox, SandboxProvider } from "../sandbox/types.js";
import { scoreInstance } from "../scoring/index.js";
import { repoUrl, type Instance } from "./bench.js";
import type { InstanceRecord } from "./report.js";

/**
 * One benchmark instance through the service's own parts, in process: repository cache,
 * a sandbox with the training layout's working directory, the policy, the answer checked as
 * the worker checks it (so the spans recorded are the ones the service serves), and its scores.
 * A failure is recorded (and scores 0), never thrown.
 */
/** The sandbox an eval runs each instance in (the eval CLI adds the image; benchmarks of the baseline's sandbox work use the same). */
export const EVAL_SANDBOX = { memoryMb: 2048, pidsLimit: 512, cpus: 1, tmpfsMb: 256, jobTimeoutS: 1800, mountMode: "bind" } satisfies Omit<DockerSandboxOptions, "image">;

export interface RunnerDeps {
  repos: RepoCache;
  sandboxes: SandboxProvider;
  policy: () => Policy;
  urlTemplate: string;
}

export async function runInstance(deps: RunnerDeps, inst: Instance, signal: AbortSignal): Promise<InstanceRecord> {
  const t0 = performance.now();
  const durations = { repo: 0, sandbox: 0, policy: 0, check: 0, total: 0 };
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
    let sandbox: Sandbox | undefined;
    let record: InstanceRecord | undefined;
    try {
      phase = "sandbox";
      t = performance.now();
      const [owner = "o", name = "r"] = inst.repo.split("/");
      const workingDir = makeWorkingDir(owner, name, inst.instance_id);
      const box = await deps.sandboxes.create({ jobId: `eval-${inst.instance_id}`, treePath: tree.treePath, workingDir, lazyShell: policy.usesShell === false }, signal);
      sandbox = box;
      durations.sandbox = performance.now() - t;
      phase = "policy";
      t = performance.now();
      const out = await policy.run({
        issue: inst.problem_statement,
        workingDir,
        terminal: box.terminal,
        exec: (argv, o) => box.exec(argv, o),
        signal,
        onEvent: () => undefined,
        namedCommits: (refs) => deps.repos.namedCommits(tree, refs, signal),
      });
      durations.policy = performance.now() - t;
      phase = "check";
      t = performance.now();
      const named = out.locations ? normalizeLocations(out.locations, workingDir) : null;
      // Scored by what the policy named, as the worker's location sets are; recorded as served.
      const checked = named ? await checkAnswer(named, normalizeLocations(out.alternatives ?? [], workingDir), workingDir, (argv, o) => box.exec(argv, o)) : null;
      durations.check = performance.now() - t;
      const alternatives = checked?.alternatives ?? [];
      record = {
        ...base,
        answered: named !== null,
        finish_reason: out.finishReason,
        prediction: checked?.locations ?? null,
        scores: scoreInstance(named, inst.gt),
        ...(named && alternatives.length ? { alternatives, scores_with_alternatives: scoreInstance([...named, ...alternatives], inst.gt) } : {}),
        turns: out.turns,
        model_calls: out.usage.modelCalls,
        prompt_tokens: out.usage.promptTokens,
        completion_tokens: out.usage.completionTokens,
        durations_ms: { ...durations, total: performance.now() - t0 },
      };
      return record;
    } finally {
      // The tree goes back once no sandbox mounts it: a released tree may make room for the next
      // instance's. A failure here is not the answer's, nor may it hide the policy's own error.
      await Promise.resolve(sandbox?.destroy())
        .finally(() => tree.release())
        .catch((err: unknown) => {
          if (record) record.cleanup_failure = (err as Error).message.slice(0, 500);
        });
    }
  } catch (err) {
    const reason = (err as { reason?: string }).reason ?? phase;
    return { ...base, failure: `${reason}: ${(err as Error).message}`.slice(0, 500), scores: scoreInstance(null, inst.gt), durations_ms: { ...durations, total: performance.now() - t0 } };
  }
}
