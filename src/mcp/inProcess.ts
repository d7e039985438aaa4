import { cancelJob } from "../api/cancel.js";
import type { AppContext } from "../api/context.js";
import { untilEither } from "../api/shutdown.js";
import { ApiError } from "../api/errors.js";
import { followJob } from "../api/follow.js";
import type { LocalizeBody } from "../api/schemas.js";

import { hasEnded, type JobView } from "../store/jobStore.js";
import type { McpCallJobs } from "./calls.js";
import { describeEvent, LocalizeRefused, optionsOf, remoteRepoOf, toolField, type LocalizeBackend, type LocalizeRun, type LocalizeToolInput, type RunHooks } from "./tool.js";

/**
 * The tool's arguments submitted inside the API: the same submit, limits and job store as
 * POST /v1/localize. A refusal is the REST API's ApiError, its field named as the tool's
 * argument (repo.url → repo_url), since that is what the caller sent.
 */
export async function submitToolCall(ctx: AppContext, owner: string, input: LocalizeToolInput, idempotencyKey?: string): Promise<JobView> {
  let body: LocalizeBody;
  try {
    body = { repo: remoteRepoOf(input), issue: input.issue, options: optionsOf(input) };
  } catch (err) {
    if (err instanceof LocalizeRefused) throw new ApiError(422, err.code, err.message, err.field);
    throw err;
  }
  try {
    return await ctx.submitter.accept(body, owner, idempotencyKey);
  } catch (err) {
    if (err instanceof ApiError) throw new ApiError(err.statusCode, err.code, err.message, toolField(err.field), err.headers);
    throw err;
  }
}

/**
 * The tool's backend inside the API, for MCP over Streamable HTTP: a refusal is the tool's
 * error, not the session's. While a call is held, `calls` knows its job, so that the client's
 * cancellation reaches the job whichever API process it reaches (http.ts).
 */
export class InProcessBackend implements LocalizeBackend {
  constructor(
    private readonly ctx: AppContext,
    private readonly owner: string,
    private readonly calls?: McpCallJobs,
  ) {}

  async run(input: LocalizeToolInput, hooks: RunHooks): Promise<LocalizeRun> {
    let view: JobView;
    try {
      view = await submitToolCall(this.ctx, this.owner, input);
    } catch (err) {
      if (err instanceof ApiError && err.statusCode < 500) throw new LocalizeRefused(err.code, err.message, err.field);
      throw err;
    }
    const { call } = hooks;
    const calls = call && this.calls;
    if (calls) await calls.remember(this.owner, call.session, call.request, view.id);
    try {
      return { view: await followToEnd(this.ctx, view, hooks) };
    } finally {
      if (calls) await calls.forget(this.owner, call.session, call.request).catch(() => undefined);
    }
  }
}

/**
 * Follows a job to its end, reporting each step; the signal's abort cancels the job. A job no
 * worker takes (none alive for NO_WORKER_WAIT_S) is cancelled and ends as `no_worker`: the agent
 * is told why instead of waiting for a worker that may never start. When the API stops and its
 * grace is over (`ctx.shutdown.handOff`), the job is answered as it stands and left to run.
 */
export async function followToEnd(ctx: AppContext, view: JobView, hooks: RunHooks, options: { cancelWhenGone?: boolean } = {}): Promise<JobView> {
  if (hasEnded(view)) return view;
  let release: () => void;
  try {
    release = ctx.followers.take(view.owner);
  } catch (err) {
    // No place to follow it (503, asked again later): a job nobody follows is not left running,
    // unless its caller may come back for it (an Idempotency-Key).
    if (options.cancelWhenGone !== false) await cancelJob(ctx.store, ctx.events, view.id).catch(() => undefined);
    throw err;
  }
  const onAbort = () => {
    if (options.cancelWhenGone !== false) void cancelJob(ctx.store, ctx.events, view.id).catch(() => undefined);
  };
  hooks.signal.addEventListener("abort", onAbort, { once: true });
  // A caller gone before the job was queued (the HTTP route's client hung up during the submission) has no abort left to fire.
  if (hooks.signal.aborted) onAbort();
  const until = untilEither(hooks.signal, ctx.shutdown.handOff);
  const stop = until.signal;
  try {
    hooks.progress(`queued: job ${view.id}`);
    for await (const stored of followJob(ctx.eventHub, ctx.store, view.id, "0", stop, ctx.noWorker)) {
      if (stored === null) hooks.idle?.();
      const line = stored && describeEvent(stored.event);
      if (line) hooks.progress(line);
      // A worker that took the job meanwhile is left to run it, and followed.
      if (stored?.event.type === "no_worker") {
        const why = { code: "no_worker" as const, message: String(stored.event.data?.message ?? "no worker is running") };
        if ((await cancelJob(ctx.store, ctx.events, view.id, { why, onlyQueued: true })) === "cancelled") break;
        // Running, its worker gone: left to go on when a worker starts, and the call says so rather than wait for one.
        const now = await ctx.store.get(view.id);
        if (now?.status === "running") return { ...now, error: why };
      }
    }
    // followJob sends the final event once the job reads as ended.
    return (await ctx.store.get(view.id)) ?? view;
  } finally {
    release();
    until.dispose();
    hooks.signal.removeEventListener("abort", onAbort);
  }
}
