import { promisify } from "node:util";
import { gunzip, gzip } from "node:zlib";
import { z } from "zod";
import type { Redis } from "ioredis";
import type { Job } from "bullmq";
import {
  jobFailureSchema,
  localizeResultSchema,
  progressSchema,
  publicRepoRefSchema,
  SERVICE_ID_RE,
  type JobFailure,
  type LocalizePayload,
  type LocalizeResult,
} from "../queue/contract.js";
import { decodeFailure } from "../queue/failure.js";
import type { LocalizeQueue, WebhookQueue } from "../queue/producer.js";
import { keys, type Keys } from "./keys.js";
import { Turns } from "./turns.js";

/**
 * Where a job's state is read from: BullMQ's own record (state, progress, result, failure)
 * plus the trajectory, kept under its own key so that status polls never carry it.
 */

export const jobStatusSchema = z.enum(["queued", "running", "succeeded", "failed", "cancelled"]);
export type JobStatus = z.infer<typeof jobStatusSchema>;

export const jobViewSchema = z.object({
  id: z.string(),
  status: jobStatusSchema,
  repo: publicRepoRefSchema,
  policy: z.string().optional().describe("The localizer the job was asked to run; result.policy says which answered (the baseline, when the model server was away)."),
  owner: z.string().describe("The API key name that submitted the job."),
  created_at: z.string(),
  started_at: z.string().nullable(),
  finished_at: z.string().nullable(),
  attempts: z.number().int().min(0),
  progress: progressSchema.nullable(),
  cached: z.boolean().describe("True when the result came from the result cache."),
  result: localizeResultSchema.nullable(),
  error: jobFailureSchema.nullable(),
});
export type JobView = z.infer<typeof jobViewSchema>;

const ENDED = new Set(["succeeded", "failed", "cancelled"]);
/** Whether a job's record says it ended (nothing more will happen to it). */
export const hasEnded = (view: JobView) => ENDED.has(view.status);

const iso = (ms: number | undefined) => (ms ? new Date(ms).toISOString() : null);

/**
 * Every job id the service hands out is a UUID (submit.ts). Anything else is not a job, and
 * must not be read as one: BullMQ keeps its own records beside the jobs' under the same prefix
 * (`meta`, `events`, `wait`, …), which `getJob` would read as a job with no payload.
 */
const isJobId = (id: string) => SERVICE_ID_RE.test(id);

export class JobStore {
  readonly keys: Keys;

  /** The API keys' turns in the queue. */
  readonly turns: Turns;

  constructor(
    readonly queue: LocalizeQueue,
    readonly redis: Redis,
    readonly retentionS: number,
    /** Where a job that ends without a worker (answered from the cache, cancelled while queued) has its webhook queued. */
    private readonly webhooks?: WebhookQueue,
  ) {
    this.keys = keys(queue.opts.prefix ?? "bull");
    this.turns = new Turns(redis, this.keys, retentionS);
  }

  /**
   * Queues the webhook of a job that ended with no worker involved: the workers queue it for the
   * jobs they end (their completed and failed events), and these would otherwise have none.
   */
  async notifyEnded(id: string, callbackUrl: string | undefined): Promise<void> {
    if (!callbackUrl || !this.webhooks) return;
    // One delivery per job, however many say it ended: the worker before it records the end
    // (so a worker dying in between still sends it) and again once BullMQ has.
    await this.webhooks.add("webhook", { jobId: id, url: callbackUrl }, { jobId: `hook-${id}` });
  }

  /**
   * A job is either BullMQ's (queued, running, finished) or a static record written when
   * no worker was involved: answered from the result cache, or cancelled while queued.
   */
  async get(id: string): Promise<JobView | null> {
    if (!isJobId(id)) return null;
    // State first, then the job: BullMQ writes a job's return value in the same step that
    // makes it completed, so a job read after its state is at least as new as that state.
    // The other order let a job finishing in between read as succeeded with no result.
    const state = await this.queue.getJobState(id);
    const job = (await this.queue.getJob(id)) as Job<LocalizePayload, LocalizeResult> | undefined;
    // BullMQ removes an ended job past its age only when another job ends: gone when its time
    // is, as the docs say, whatever the queue's traffic (its trajectory and key are gone then too).
    if (job?.finishedOn && Date.now() - job.finishedOn > this.retentionS * 1000) return null;
    if (job && lostItsRequest(job)) return null;
    if (job) return toView(job, state);
    const raw = await this.redis.get(this.keys.staticView(id));
    if (raw === null) return null;
    const parsed = jobViewSchema.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : null;
  }

  /**
   * When a worker's engine first failed to start this job's sandbox (ms), now if it never did:
   * how long the job has been handed back for other workers, apart from its other starts (a
   * newer API's fields, a shutdown), which count in BullMQ's own.
   */
  async engineTroubleSince(id: string): Promise<number> {
    const key = this.keys.engineTrouble(id);
    await this.redis.set(key, String(Date.now()), "EX", this.retentionS, "NX");
    return Number(await this.redis.get(key)) || Date.now();
  }

  /** A sandbox of the job started: a later engine's trouble is timed from its own first failure. */
  async engineTroubleOver(id: string): Promise<void> {
    await this.redis.del(this.keys.engineTrouble(id));
  }

  /** How many times the job's sandbox was stopped from outside it while it ran, this one counted. */
  async sandboxStopped(id: string): Promise<number> {
    const key = this.keys.sandboxStops(id);
    const [[, n]] = (await this.redis.multi().incr(key).expire(key, this.retentionS).exec()) as [[Error | null, number]];
    return n;
  }

  async putStatic(view: JobView): Promise<void> {
    await this.redis.set(this.keys.staticView(view.id), JSON.stringify(view), "EX", this.retentionS);
  }

  /**
   * Gzipped: a model job's trajectory is mostly the code its commands printed, kept for
   * JOB_TTL_S, and the largest thing a job leaves in Redis (BENCHMARKS.md, "What a job keeps in
   * Redis"); gzip takes it to a quarter (Django's code read in 100-line chunks: 37 KB to 9 KB).
   * Under a key of its own (keys.trajectoryGz), so that processes of either version, side by
   * side in a rolling upgrade or after a rollback, each read what they can.
   */
  async saveTrajectory(id: string, trajectory: unknown): Promise<void> {
    await this.redis.set(this.keys.trajectoryGz(id), await gzipped(Buffer.from(JSON.stringify(trajectory))), "EX", this.retentionS);
  }

  async getTrajectory(id: string): Promise<unknown | null> {
    const raw = (await this.redis.getBuffer(this.keys.trajectoryGz(id))) ?? (await this.redis.getBuffer(this.keys.trajectory(id)));
    if (raw === null) return null;
    // Gzipped wherever it is: a build between two commits of 0.9.2 stored it so under the plain key.
    const json = raw[0] === 0x1f && raw[1] === 0x8b ? await gunzipped(raw) : raw;
    return JSON.parse(json.toString("utf8")) as unknown;
  }

  /**
   * Cancels a job. A queued job is taken off the queue here and recorded as cancelled (for
   * `why`, else as cancelled before it started); a running one is told through a flag (read when
   * a worker starts it) and a message (for the worker running it now), or, with `onlyQueued`,
   * left to run ("running").
   */
  async cancel(id: string, options: { why?: JobFailure; onlyQueued?: boolean } = {}): Promise<"cancelled" | "signalled" | "running" | "finished" | "missing"> {
    if (!isJobId(id)) return "missing";
    const job = (await this.queue.getJob(id)) as Job<LocalizePayload, LocalizeResult> | undefined;
    if (!job) return (await this.redis.exists(this.keys.staticView(id))) ? "finished" : "missing";
    if (lostItsRequest(job)) return "missing";
    const state = await job.getState();
    if (state === "completed" || state === "failed") return "finished";
    if (options.onlyQueued && state === "active") return "running";
    // A flag a worker acts on (at its start, and as it renews its lock): not set where the job is
    // to be left running if a worker has it (onlyQueued), which a removed job does not need.
    if (!options.onlyQueued) await this.redis.set(this.keys.cancelFlag(id), "1", "EX", this.retentionS);
    if (state !== "active") {
      // The record of its end first, then the job off the queue: a read in between finds the
      // job (get prefers it) and never neither, which read as a job that does not exist (404).
      await this.putStatic({
        ...toView(job, "failed"),
        status: "cancelled",
        finished_at: new Date().toISOString(),
        error: options.why ?? { code: "cancelled", message: "the job was cancelled before it started" },
      });
      let removed = false;
      try {
        await job.remove();
        removed = true;
      } catch {
        // A worker took it in the meantime: its own end stands, then. Fall through to signalling
        // it, or leave it to run.
        await this.redis.del(this.keys.staticView(id));
        if (options.onlyQueued) return "running";
      }
      if (removed) {
        await this.turns.left(job.data.owner, id).catch(() => undefined);
        // Its webhook is queued once the cancel stands; a queue that fails it loses the webhook, not the cancel.
        await this.notifyEnded(id, job.data.callbackUrl).catch(() => undefined);
        return "cancelled";
      }
    }
    await this.redis.publish(this.keys.cancelChannel, id);
    return "signalled";
  }

  async isCancelRequested(id: string): Promise<boolean> {
    return (await this.redis.exists(this.keys.cancelFlag(id))) === 1;
  }
}

/** The view of a job just accepted, without reading it back from Redis. */
export function newJobView(payload: LocalizePayload, overrides: Partial<JobView> = {}): JobView {
  return {
    id: payload.jobId,
    status: "queued",
    repo: payload.repo,
    policy: payload.options.policy,
    owner: payload.owner,
    created_at: payload.submittedAt,
    started_at: null,
    finished_at: null,
    attempts: 0,
    progress: null,
    cached: false,
    result: null,
    error: null,
    ...overrides,
  };
}

/** A job whose record lost its request (a key an evicting Redis dropped): gone, to reads and cancels alike, not a 500 on each. */
function lostItsRequest(job: Job<LocalizePayload, LocalizeResult>): boolean {
  return !(job.data as Partial<LocalizePayload> | undefined)?.options;
}

export function toView(job: Job<LocalizePayload, LocalizeResult>, state: string): JobView {
  // An answer this API cannot read (a newer worker's, with a value it does not know) fails the
  // job's view, readably: it answered 500 on every read while the API was the older one.
  const answer = state === "completed" ? localizeResultSchema.safeParse(job.returnvalue) : null;
  if (answer && !answer.success) {
    const where = answer.error.issues[0]?.path.join(".") ?? "";
    return { ...toView(job, "failed"), error: { code: "internal", message: `this API cannot read the job's answer (result.${where}: written by a newer worker?): upgrade the API` } };
  }
  const failure = state === "failed" ? decodeFailure(job.failedReason) : null;
  const status: JobStatus =
    state === "completed"
      ? "succeeded"
      : state === "failed"
        ? failure?.code === "cancelled"
          ? "cancelled"
          : "failed"
        : state === "active"
          ? "running"
          : "queued";
  const progress = progressSchema.safeParse(job.progress);
  return {
    id: job.id ?? "",
    status,
    repo: job.data.repo,
    policy: job.data.options.policy,
    owner: job.data.owner,
    // As the POST answered it: BullMQ's own time is a few milliseconds later, and one job read with two.
    created_at: job.data.submittedAt || new Date(job.timestamp).toISOString(),
    // A queued job has not started, even one handed back after a start (a worker's shutdown, a
    // newer API's fields): a start time beside "queued" read as a job running unseen.
    started_at: status === "queued" ? null : iso(job.processedOn),
    finished_at: iso(job.finishedOn),
    attempts: job.attemptsMade,
    progress: progress.success ? progress.data : null,
    // A worker that found the answer in the result cache says so in its last progress (the API's own hits are written as such).
    cached: status === "succeeded" && (job.progress as { cached?: unknown } | null | undefined)?.cached === true,
    result: answer?.success ? answer.data : null,
    error: failure,
  };
}

const gzipped = promisify(gzip);
const gunzipped = promisify(gunzip);
