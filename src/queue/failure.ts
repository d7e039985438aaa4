import { jobFailureSchema, type FailureCode, type JobFailure } from "./contract.js";

/**
 * A job that fails carries a machine-readable code. BullMQ keeps only an error message,
 * so the worker throws a JobFailedError whose message is the encoded failure.
 */
export class JobFailedError extends Error {
  override name = "JobFailedError";
  constructor(
    readonly code: FailureCode,
    readonly detail: string,
    options?: { cause?: unknown },
  ) {
    super(JSON.stringify({ code, message: detail }), options);
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
