import { DelayedError, WaitingError, type Job } from "bullmq";
import type { Logger } from "pino";
import type { z } from "zod";
import { checkAnswer, normalizeLocations } from "../agent/locations.js";
import { ModelError } from "../agent/codescout/modelClient.js";
import { keepSteps, stepsOf, type Policy, type PolicyEvent } from "../agent/policy.js";
import {
  localizePayloadSchema,
  normalScope,
  type FailureCode,
  type JobProgress,
  type LocalizePayload,
  type LocalizeResult,
} from "../queue/contract.js";
import { JobFailedError } from "../queue/failure.js";
import { RepoError, type RepoCache } from "../repos/cache.js";
import { SandboxError, type Sandbox, type SandboxProvider } from "../sandbox/types.js";
import { makeWorkingDir } from "../sandbox/workdir.js";
import { locationSets } from "../scoring/index.js";
import type { JobStore } from "../store/jobStore.js";
import type { JobEvents } from "../store/events.js";
import type { ResultCache } from "../store/resultCache.js";
import { resultCacheKey } from "../queue/cacheKey.js";
import { ANSWER_REVISION } from "../version.js";
import type { Cleanups } from "./cleanups.js";
import { scopedCommits, scopedTree, unscoped } from "./scope.js";
import { sentCommitsNamed, withSentCommits } from "./sentCommits.js";

/**
 * One job, start to end: a tree from the repository cache, a sandbox for it, a policy run
 * in the sandbox's terminal, the answer checked and stored. The sandbox is destroyed
 * however the job ends (once the answer is out, see cleanups.ts); a wall-clock cap and
 * cancellation abort whatever is in flight.
 */

export interface ProcessorDeps {
  repos: RepoCache;
  sandboxes: SandboxProvider;
  store: JobStore;
  events: JobEvents;
  cache: ResultCache;
  /** Model name, part of the result-cache key. */
  model: string;
  /** Opens a sealed per-request token; per-host credentials fill in when there is none. */
  tokenFor(payload: LocalizePayload): string | undefined;
  /** Picks the policy for a job's options; throws JobFailedError when it cannot. */
  policyFor(options: LocalizePayload["options"], chosenBy?: LocalizePayload["policyChosenBy"]): Policy;
  jobTimeoutS: number;
  /** The model-call budget when a job does not set one (MAX_TURNS). */
  defaultMaxTurns: number;
  /** Lines of code per location when a job asks for snippets (SNIPPET_MAX_LINES). */
  snippetMaxLines: number;
  logger: Logger;
  /** Fires when the worker's shutdown grace is over: running jobs go back to the queue. */
  shutdownSignal?: AbortSignal;
  /** Where each job's sandbox removal and tree release run once its answer is out. */
  cleanups: Cleanups;
  /** The job lock's duration (WORKER_LOCK_MS): each run renews its own lock at half of it. */
  lockMs?: number;
  /** Told when this worker's engine cannot start a sandbox (engineWatch.ts): the worker takes no more jobs until it can. */
  engineDown?: (err: Error) => void;
}

export type LocalizeJob = Job<LocalizePayload, LocalizeResult>;

/** How long a job a newer API queued waits for an upgraded worker (a rolling upgrade's length), and how often it is looked at. */
const NEWER_JOB_WAIT_MS = 10 * 60_000;
const NEWER_JOB_RETRY_MS = 5_000;

/**
 * How long a job whose worker's engine could not start its sandbox is handed back for another
 * worker, and how soon it is taken again: past this, every worker's engine has failed it, and it
 * fails saying so.
 */
const ENGINE_WAIT_MS = 5 * 60_000;
const ENGINE_RETRY_MS = 15_000;
/** A job whose sandbox is stopped from outside this often fails (something stops every sandbox), and waits this before each new run. */
const SANDBOX_STOPS_MAX = 3;
const SANDBOX_STOPPED_RETRY_MS = 5_000;
const ENGINE_TROUBLE: ReadonlySet<SandboxError["reason"]> = new Set(["engine_unreachable", "image_missing"]);

/** Why a run is aborted when its lock is no longer its: the job is another run's. */
const LOCK_LOST = "lock_lost";

export function createProcessor(deps: ProcessorDeps) {
  return async function process(job: LocalizeJob, token?: string, cancelSignal?: AbortSignal): Promise<LocalizeResult> {
    const parsed = localizePayloadSchema.safeParse(job.data);
    if (!parsed.success) return refuseUnreadable(job, token, parsed.error, deps.logger);
    const payload = parsed.data;
    const log = deps.logger.child({ jobId: payload.jobId });
    const t0 = performance.now();
    const queueWaitMs = Math.max(0, (job.processedOn ?? Date.now()) - job.timestamp);
    // Where the time went, phase by phase as each ends: a failed job's log line says it too.
    const spent: Record<string, number> = { queue_wait_ms: queueWaitMs };

    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(new Error("job_timeout")), deps.jobTimeoutS * 1000);
    const onCancel = () => abort.abort(new Error("cancelled"));
    const onShutdown = () => abort.abort(new Error("shutdown"));
    cancelSignal?.addEventListener("abort", onCancel, { once: true });
    deps.shutdownSignal?.addEventListener("abort", onShutdown, { once: true });
    // BullMQ renews a lock, and finds a run to cancel, by the job's id: a new run of the same job
    // on this worker (its lock lapsed, the stalled check gave it back) takes both over, and the
    // old run's end drops them, so the old run was never stopped, the new one stalled and no
    // cancel reached it. Each run renews its own lock, by its token, stopping once the lock is no
    // longer its, and reads the job's cancel flag as it does (which also covers a cancel message
    // missed while the subscriber reconnected).
    const keepRun = async (held: string, lockMs: number) => {
      if ((await job.extendLock(held, lockMs).catch(() => null)) === 0) abort.abort(new Error(LOCK_LOST));
      else if (await deps.store.isCancelRequested(payload.jobId).catch(() => false)) abort.abort(new Error("cancelled"));
    };
    const lockMs = deps.lockMs;
    const renewal = token && lockMs ? setInterval(() => void keepRun(token, lockMs), lockMs / 2) : undefined;
    /** Why the run was aborted: job_timeout, cancelled, shutdown or LOCK_LOST. */
    const abortedFor = () => (abort.signal.reason as Error | undefined)?.message;
    const failAborted = () =>
      abortedFor() === "job_timeout" ? new JobFailedError("job_timeout", `the job ran longer than ${deps.jobTimeoutS} s`) : new JobFailedError("cancelled", "the job was cancelled");

    const maxTurns = payload.options.max_turns ?? deps.defaultMaxTurns;
    const progress = async (p: Omit<JobProgress, "max_turns"> & { max_turns?: number }) => {
      await job.updateProgress({ max_turns: maxTurns, ...p }).catch((err) => log.warn({ err }, "progress update failed"));
    };

    const publish = (type: Parameters<JobEvents["publish"]>[1], data?: Record<string, unknown>) =>
      deps.events.publish(payload.jobId, type, data).catch((err) => log.warn({ err }, "event publish failed"));
    // Queued before the end is recorded, so that a worker dying in between still sends it: the
    // delivery waits for the record (webhooks.ts), and the worker's own notice after it adds nothing.
    const notify = () => deps.store.notifyEnded(payload.jobId, payload.callbackUrl).catch((err) => log.warn({ err }, "webhook enqueue failed"));

    let sandbox: Sandbox | undefined;
    let release: (() => Promise<void>) | undefined;
    /** The policy that ran, and where: a failed run's steps are kept as its trajectory. */
    let ran: { policy: string; workingDir: string } | undefined;
    try {
      // Cancelled while it sat in the queue, or between a crash and this retry.
      if (await deps.store.isCancelRequested(payload.jobId)) throw new JobFailedError("cancelled", "the job was cancelled");
      const policy = deps.policyFor(payload.options, payload.policyChosenBy);
      await publish("started", { attempt: job.attemptsMade + 1, policy: policy.name });
      await progress({ phase: "repository", turn: 0 });
      const tR = performance.now();
      // Not `token`, which is the job's lock's: a repository's credentials go to git alone.
      const credentials = deps.tokenFor(payload);
      const { url, commit, upload } = payload.repo;
      const prepared = upload
        ? deps.repos.prepareUpload(upload, abort.signal, payload.patch)
        : deps.repos.prepare({ url: url ?? "", commit: commit ?? "", ...(credentials ? { token: credentials } : {}), ...(payload.patch ? { patch: payload.patch } : {}) }, abort.signal);
      const tree = await prepared.catch((err) => {
        if (abort.signal.aborted) throw failAborted();
        throw repoFailure(err);
      });
      release = tree.release;
      const repoMs = performance.now() - tR;
      spent.repo_ms = Math.round(repoMs);
      await publish("repository_ready", { sha: tree.sha, cache: tree.cache, ms: Math.round(repoMs) });

      const cacheKey =
        payload.options.cache !== false && !credentials
          ? resultCacheKey({ url: tree.url, sha: tree.sha, patch: payload.repo.patch_sha256, commits: payload.commits, issue: payload.issue, options: payload.options, model: deps.model, service: ANSWER_REVISION })
          : null;
      const cached = cacheKey ? await deps.cache.get(cacheKey) : null;
      if (cached) {
        // The job's view reads `cached` from its progress: the answer itself is the cached one, unchanged.
        await job.updateProgress({ phase: "done", turn: 0, max_turns: maxTurns, cached: true }).catch((err) => log.warn({ err }, "progress update failed"));
        await publish("finished", { cached: true });
        // This job's own time (the cache gives the answer without its run's time and model use,
        // which the replicas' codescout_tokens_total counted once).
        return { ...cached, timings: { ...cached.timings, queue_wait_ms: queueWaitMs, repo_ms: spent.repo_ms ?? 0, total_ms: Math.round(performance.now() - t0) } };
      }

      // The sandbox holds the scope's directory alone, as if it were the repository.
      const asked = normalScope(payload.options.scope);
      const scoped = asked ? await scopedTree(tree.treePath, asked, tree.sha) : undefined;
      const treePath = scoped?.dir ?? tree.treePath;
      const scope = scoped?.scope;
      const notes = notSearched(await deps.repos.submodules(tree, abort.signal), scope);

      // A sandbox the engine stopped under the job (its restart, an operator's drain) is not the
      // job's fault: it is run again, a few times, not failed.
      const handBackStopped = async (err: unknown) => {
        if (!(err instanceof SandboxError) || err.reason !== "stopped_outside" || !token) return;
        if ((await deps.store.sandboxStopped(payload.jobId).catch(() => SANDBOX_STOPS_MAX)) >= SANDBOX_STOPS_MAX) return;
        log.warn({ reason: err.message }, "the job's sandbox was stopped from outside it: the job is handed back");
        await handBack(job, token, SANDBOX_STOPPED_RETRY_MS);
      };

      await progress({ phase: "sandbox", turn: 0 });
      const tS = performance.now();
      const instance = `${tree.owner}__${tree.name}-${payload.jobId.slice(0, 8)}`;
      const workingDir = makeWorkingDir(tree.owner, tree.name, instance);
      ran = { policy: policy.name, workingDir };
      const creating = deps.sandboxes.create({ jobId: payload.jobId, treePath, workingDir, lazyShell: policy.usesShell === false }, abort.signal);
      // An engine that hangs holds the create past the job's time and its cancel: the job ends
      // when they say, and a sandbox that comes after all is removed then.
      sandbox = await untilAborted(creating, abort.signal, (late) => void late.destroy().catch((err) => log.error({ err }, "sandbox destroy failed"))).catch(async (err) => {
        if (abort.signal.aborted) throw failAborted();
        if (err instanceof SandboxError && ENGINE_TROUBLE.has(err.reason) && token) await handBackForAnotherEngine(job, token, err, deps);
        await handBackStopped(err);
        throw new JobFailedError("sandbox_failed", `could not start the sandbox: ${(err as Error).message}`, { cause: err });
      });
      // Only a job started before can have met an engine's trouble: a first run writes nothing.
      if (job.attemptsStarted > 1) void deps.store.engineTroubleOver(payload.jobId).catch(() => undefined);
      const sandboxMs = performance.now() - tS;
      spent.sandbox_ms = Math.round(sandboxMs);
      await publish("sandbox_ready", { ms: Math.round(sandboxMs) });
      const box = sandbox;
      // Given up (cancelled, out of time, the worker stopping), the sandbox goes at once, and
      // with it whatever runs in it: the baseline's scan of a large tree ran to its end before.
      const stopBox = () => void box.destroy().catch((err) => log.error({ err }, "sandbox destroy failed"));
      if (abort.signal.aborted) stopBox();
      else abort.signal.addEventListener("abort", stopBox, { once: true });

      await progress({ phase: "localizing", turn: 0 });
      const tP = performance.now();
      const onEvent = (e: PolicyEvent) => {
        if (e.type === "turn") {
          void progress({ phase: "localizing", turn: e.turn, max_turns: e.maxTurns });
          void publish("turn", { turn: e.turn, max_turns: e.maxTurns });
        } else if (e.type === "fallback") void publish("fallback", { from: policy.name, reason: e.reason ?? "" });
        else void publish("command", { turn: e.turn, command: shorten(e.command ?? "") });
      };
      const outcome = await policy
        .run({
          issue: payload.issue,
          workingDir,
          terminal: box.terminal,
          exec: (argv, options) => box.exec(argv, options),
          signal: abort.signal,
          deadlineAt: t0 + deps.jobTimeoutS * 1000,
          yieldCpu: (yielding) => box.yieldCpu(yielding),
          onEvent,
          // The mirror's history (none for an upload), then what the caller read from its own of
          // the commits the mirror lacks: an upload's, or those a patch carries.
          namedCommits: async (refs) =>
            scopedCommits(
              withSentCommits(await deps.repos.namedCommits(tree, refs, abort.signal, { waitUntil: t0 + deps.jobTimeoutS * 1000 - HISTORY_JOB_MARGIN_MS }), sentCommitsNamed(refs, payload.commits ?? [])),
              scope,
            ),
        })
        .catch(async (err) => {
          if (!abort.signal.aborted) await handBackStopped(err);
          const failure = abort.signal.aborted ? failAborted() : policyFailure(err);
          // The policy's steps until then go with the job's failure, to be kept as its trajectory.
          const steps = stepsOf(err);
          throw steps ? keepSteps(failure, steps) : failure;
        });
      // A policy that finishes its step after a cancel (the baseline's scan runs to its end) has
      // answered a job that was cancelled: the job ends as the DELETE said, not succeeded.
      if (abort.signal.aborted) throw failAborted();
      const policyMs = performance.now() - tP;

      await progress({ phase: "validating", turn: outcome.turns });
      const normalized = normalizeLocations(outcome.locations ?? [], workingDir);
      const { locations: checked, alternatives } = await checkAnswer(
        normalized,
        // The baseline ranks its next files in the same pass as its answer: left out here when not asked for.
        normalizeLocations(payload.options.alternatives === false ? [] : (outcome.alternatives ?? []), workingDir),
        workingDir,
        (argv, options) => box.exec(argv, options),
        { snippetLines: payload.options.snippets ? deps.snippetMaxLines : 0 },
      ).catch(async (err) => {
        if (abort.signal.aborted) throw failAborted();
        await handBackStopped(err);
        // The sandbox gone while the answer was checked (killed, out of memory) is its failure, not an internal one.
        throw policyFailure(err);
      });
      if (abort.signal.aborted) throw failAborted();
      const sets = locationSets(unscoped(normalized, scope));

      // With why (the fallback's step holds it): a 500 and a server that is gone read alike by their code.
      const why = (outcome.trajectory.find((step) => (step as { name?: unknown }).name === "fallback") as { detail?: unknown } | undefined)?.detail;
      if (outcome.fallback) log.warn({ fallback: outcome.fallback, detail: typeof why === "string" ? why : undefined }, "the model server failed the job; the baseline answered it");
      // The answer matters more than the record of how it was found: a Redis refusing the write
      // (full, say) loses the trajectory, not the job.
      await deps.store
        .saveTrajectory(payload.jobId, { policy: outcome.policy, finish_reason: outcome.finishReason, working_dir: workingDir, steps: outcome.trajectory })
        .catch((err: unknown) => log.warn({ err }, "trajectory write failed"));
      await progress({ phase: "done", turn: outcome.turns });
      const result: LocalizeResult = {
        policy: outcome.policy,
        finish_reason: outcome.finishReason,
        commit_sha: tree.sha,
        ...(scope ? { scope } : {}),
        repo_cache: tree.cache,
        answered: outcome.locations !== null,
        locations: unscoped(checked, scope),
        ...(alternatives.length ? { alternatives: unscoped(alternatives, scope) } : {}),
        ...(outcome.fallback ? { fallback: outcome.fallback } : {}),
        ...(notes.length || outcome.notes?.length ? { notes: [...notes, ...(outcome.notes ?? [])] } : {}),
        ...sets,
        turns: outcome.turns,
        timings: {
          queue_wait_ms: queueWaitMs,
          repo_ms: Math.round(repoMs),
          sandbox_ms: Math.round(sandboxMs),
          policy_ms: Math.round(policyMs),
          model_ms: Math.round(outcome.usage.modelMs),
          tool_ms: Math.round(outcome.usage.toolMs),
          total_ms: Math.round(performance.now() - t0),
        },
        usage: {
          model_calls: outcome.usage.modelCalls,
          prompt_tokens: outcome.usage.promptTokens,
          completion_tokens: outcome.usage.completionTokens,
        },
      };
      // A fallback's answer is not the model's: the next request asks the model again.
      if (cacheKey && result.answered && !result.fallback) await deps.cache.put(cacheKey, result).catch((err) => log.warn({ err }, "result cache write failed"));
      await publish("finished", { finish_reason: result.finish_reason, locations: checked.length });
      await notify();
      log.info(
        { owner: payload.owner, policy: result.policy, finish: outcome.finishReason, locations: checked.length, repo_cache: result.repo_cache, attempt: job.attemptsMade + 1, ms: result.timings.total_ms, timings: result.timings },
        "job done",
      );
      return result;
    } catch (err) {
      if (err instanceof DelayedError || err instanceof WaitingError) throw err;
      if (abortedFor() === "shutdown" && token) {
        // The worker is going away: hand the job back so another worker runs it from the start.
        await job.moveToWait(token);
        log.info("job handed back to the queue at shutdown");
        throw new WaitingError();
      }
      if (abortedFor() === LOCK_LOST) {
        // The job is no longer this run's (its lock lapsed while Redis was away): another run has
        // it or will, and says its end. This one stops, and says nothing of it to the caller.
        log.warn("this run stopped: the job's lock lapsed (Redis away, or refusing writes, longer than WORKER_LOCK_MS); the job is run again");
        throw new WaitingError();
      }
      const failure = err instanceof JobFailedError ? err : new JobFailedError("internal", (err as Error).message, { cause: err });
      failure.spent = { ...spent, total_ms: Math.round(performance.now() - t0) };
      // What the policy did before it failed (the model's turns until its server went, or the
      // job's time ran out): the trajectory an operator reads to see why.
      const steps = stepsOf(err);
      if (steps?.length && ran) {
        await deps.store
          .saveTrajectory(payload.jobId, { policy: ran.policy, finish_reason: null, failure: failure.code, working_dir: ran.workingDir, steps })
          .catch((e) => log.warn({ err: e }, "trajectory write failed"));
      }
      await publish(failure.code === "cancelled" ? "cancelled" : "failed", { code: failure.code, message: failure.detail.slice(0, 500) });
      await notify();
      throw failure;
    } finally {
      clearTimeout(timer);
      cancelSignal?.removeEventListener("abort", onCancel);
      deps.shutdownSignal?.removeEventListener("abort", onShutdown);
      const box = sandbox;
      // The lock is renewed until the run is done with it: waiting here for a slot to remove its
      // sandbox in (cleanups.ts) can take a while.
      await deps.cleanups
        .run(async () => {
          if (box) await box.destroy().catch((err) => log.error({ err }, "sandbox destroy failed"));
          // Only once no sandbox mounts it: a released tree may be removed to make room.
          await release?.().catch((err) => log.warn({ err }, "tree release failed"));
        })
        .finally(() => clearInterval(renewal));
    }
  };
}

/**
 * What a job's answer needs after the history the issue points into is read (the baseline's
 * ranking, the check of the answer): a first clone's history is waited for until this long
 * before the job's time limit, then the job is answered without it.
 */
const HISTORY_JOB_MARGIN_MS = 30_000;

/**
 * A job whose sandbox this worker's engine could not start (unreachable, its image missing): not
 * the job's fault. The worker takes no more jobs (engineWatch.ts), and the job is handed back for
 * another worker's engine, for ENGINE_WAIT_MS from its first such failure; past that, every
 * engine has failed it, and it fails (returns, for the caller to throw).
 */
async function handBackForAnotherEngine(job: LocalizeJob, token: string, err: SandboxError, deps: Pick<ProcessorDeps, "store" | "engineDown">): Promise<void> {
  deps.engineDown?.(err);
  const since = await deps.store.engineTroubleSince(job.data.jobId).catch(() => Date.now());
  if (Date.now() - since >= ENGINE_WAIT_MS) return;
  await handBack(job, token, ENGINE_RETRY_MS);
}

/** Hands the job back, to be run again in `ms`. Refused, the lock is no longer this run's: the run that has it says the job's end. */
async function handBack(job: LocalizeJob, token: string, ms: number): Promise<never> {
  await job.moveToDelayed(Date.now() + ms, token).catch(() => Promise.reject(new WaitingError()));
  throw new DelayedError();
}

/** What the job could not search: the submodules in its tree (or scope), which the service fetches none of. */
function notSearched(submodules: string[], scope: string | undefined): string[] {
  const inScope = scope ? submodules.filter((p) => p.startsWith(`${scope}/`)) : submodules;
  if (!inScope.length) return [];
  // Within the answer's bound on a note (contract.ts: 2,000 characters): ten paths at most, each cut at 150.
  const shown = inScope.slice(0, 10).map((p) => (p.length > 150 ? `${p.slice(0, 149)}…` : p));
  const named = shown.join(", ") + (inScope.length > shown.length ? `, and ${inScope.length - shown.length} more` : "");
  return [`not searched: ${named}, ${inScope.length === 1 ? "a submodule" : "submodules"} (the service fetches none: localize in the submodule's own repository)`];
}

/** `work`, or its signal's reason once it aborts first; what `work` brings after that goes to `late`. */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal, late: (value: T) => void): Promise<T> {
  if (signal.aborted) {
    void work.then(late, () => undefined);
    return Promise.reject(signal.reason as Error);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      void work.then(late, () => undefined);
      reject(signal.reason as Error);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        // Aborted first: onAbort gave it to `late` already.
        if (!signal.aborted) resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(err as Error);
      },
    );
  });
}

const shorten = (command: string) => (command.length > 200 ? `${command.slice(0, 197)}...` : command);

function repoFailure(err: unknown): JobFailedError {
  if (err instanceof RepoError) {
    const codes: Partial<Record<RepoError["reason"], FailureCode>> = {
      invalid_url: "invalid_repository",
      commit_not_found: "commit_not_found",
      patch_does_not_apply: "patch_does_not_apply",
      upload_not_found: "upload_not_found",
      invalid_upload: "invalid_upload",
    };
    const code = codes[err.reason] ?? "repository_unavailable";
    return new JobFailedError(code, err.message, { cause: err });
  }
  return new JobFailedError("repository_unavailable", (err as Error).message, { cause: err });
}

function policyFailure(err: unknown): JobFailedError {
  if (err instanceof JobFailedError) return err;
  if (err instanceof ModelError) {
    const code = err.reason === "llm_timeout" ? "llm_timeout" : err.reason === "cancelled" ? "cancelled" : err.reason === "llm_unavailable" ? "llm_unavailable" : "llm_bad_request";
    return new JobFailedError(code, err.message, { cause: err });
  }
  if (err instanceof SandboxError) return new JobFailedError(err.reason === "job_timeout" ? "job_timeout" : "sandbox_failed", err.message, { cause: err });
  return new JobFailedError("internal", (err as Error).message ?? String(err), { cause: err });
}

/**
 * A payload this worker cannot read. Fields it does not know are a newer API's (a rolling upgrade
 * puts the API first): the job is handed back for an upgraded worker, for a while, rather than
 * failed for good; counted from its first hand-back (each one a start), not from its queueing, so
 * a job that waited in a backlog is not failed by the first old worker to take it.
 */
async function refuseUnreadable(job: LocalizeJob, token: string | undefined, error: z.ZodError, logger: Logger): Promise<never> {
  const unknown = error.issues.flatMap((i) => (i.code === "unrecognized_keys" ? i.keys.map((k) => [...i.path, k].join(".")) : []));
  const newer = unknown.length > 0 && error.issues.every((i) => i.code === "unrecognized_keys");
  if (!newer) throw new JobFailedError("internal", `malformed job payload: ${error.message.slice(0, 500)}`);
  const handedBack = Math.max(0, job.attemptsStarted - 1);
  if (token && handedBack * NEWER_JOB_RETRY_MS < NEWER_JOB_WAIT_MS) {
    // Said once a minute of it, not at each look.
    if (handedBack % (60_000 / NEWER_JOB_RETRY_MS) === 0) logger.warn({ jobId: job.id, fields: unknown }, "a job a newer API queued (fields this worker does not know): handed back for an upgraded worker");
    await job.moveToDelayed(Date.now() + NEWER_JOB_RETRY_MS, token);
    throw new DelayedError();
  }
  throw new JobFailedError("internal", `the job asks for what this worker does not know (${unknown.join(", ")}): the API is newer than the workers, which were not upgraded within ${NEWER_JOB_WAIT_MS / 60_000} minutes; upgrade the workers`);
}
