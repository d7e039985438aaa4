import { jobFailureSchema, type FailureCode, type JobFailure } from "./contract.js";

/**
 * A job that fails carries a machine-readable code. BullMQ keeps only an error message,
 * so the worker throws a JobFailedError whose message is the encoded failure.
 */
/**
 * A failure's message is read by the caller, kept in Redis with the job and sent in webhooks: it
 * is clipped, since some come from outside (a model server's 3 MB error page, git's stderr).
 */
export const FAILURE_MESSAGE_CHARS = 1_000;

export class JobFailedError extends Error {
  override name = "JobFailedError";
  readonly detail: string;
  private timings?: Record<string, number>;
  constructor(
    readonly code: FailureCode,
    detail: string,
    options?: { cause?: unknown },
  ) {
    const clipped = detail.length > FAILURE_MESSAGE_CHARS ? `${detail.slice(0, FAILURE_MESSAGE_CHARS)}…` : detail;
    super(JSON.stringify({ code, message: clipped }), options);
    this.detail = clipped;
  }

  /** Where the job's time went before it failed (queue wait, repository, sandbox, total): kept with the failure, which the job's view shows. */
  get spent(): Record<string, number> | undefined {
    return this.timings;
  }

  set spent(timings: Record<string, number> | undefined) {
    this.timings = timings;
    this.message = JSON.stringify({ code: this.code, message: this.detail, ...(timings ? { timings } : {}) });
  }
}

export function decodeFailure(failedReason: string | undefined): JobFailure {
  if (!failedReason) return { code: "internal", message: "the job failed without a reason" };
  try {
    const parsed = jobFailureSchema.safeParse(JSON.parse(failedReason));
    if (parsed.success) return parsed.data;
  } catch {
    /* not ours: BullMQ's own reasons, e.g. a job stalled too often */
  }
  // BullMQ's words for a job whose lock lapsed more often than maxStalledCount allows.
  if (failedReason === "job stalled more than allowable limit") {
    return { code: "worker_lost", message: "the worker running the job stopped (killed, crashed, or its host gone) while it ran, and the job's retry's worker too; ask again" };
  }
  return { code: "internal", message: failedReason.slice(0, 2000) };
}
