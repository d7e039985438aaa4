/**
 * The sandbox as the rest of the service sees it: create a container for a tree, talk to
 * its persistent terminal, run one-off helper processes, destroy it. Nothing here knows
 * about the model.
 */

/** One call of the `terminal` tool, already validated against the tool schema. */
export interface TerminalCall {
  command: string;
  is_input?: boolean;
  /** Hard limit in seconds; when given the 30 s soft timeout is off. */
  timeout?: number;
  reset?: boolean;
}

export interface TerminalResult {
  /**
   * The text parts of the tool message, exactly as the reference terminal produced them
   * (an error is two parts). The model receives them joined with "\n".
   */
  parts: string[];
  /** Command exit code; -1 for soft/hard timeout; null when the call was refused. */
  exitCode: number | null;
  isError: boolean;
  /** Wall time spent in the sandbox for this call. */
  durationMs: number;
}

export interface Terminal {
  run(call: TerminalCall, signal?: AbortSignal): Promise<TerminalResult>;
}

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** True when stdout/stderr hit the byte cap and were cut. */
  truncated: boolean;
  /** True when the process was killed for exceeding its timeout. */
  timedOut?: boolean;
}

export interface ExecOptions {
  stdin?: string;
  timeoutMs?: number;
  maxOutputBytes?: number;
}

export interface Sandbox {
  /** Container id. */
  readonly id: string;
  /** Absolute path of the repository inside the container; the shell starts there. */
  readonly workingDir: string;
  readonly terminal: Terminal;
  /** A one-off process beside the shell (e.g. Python's ast to check locations). */
  exec(argv: string[], options?: ExecOptions): Promise<ExecResult>;
  /**
   * While yielding, the sandbox gets only CPU that other sandboxes leave idle (the lowest CPU
   * weight): for work in it that no episode waits on. Off again restores the weight every sandbox has.
   */
  yieldCpu(yielding: boolean): Promise<void>;
  /** Idempotent; never throws for a container that is already gone. */
  destroy(): Promise<void>;
}

export interface SandboxSpec {
  /** Owner of the sandbox, recorded in its labels so a crashed worker's leftovers can be reaped. */
  jobId: string;
  /** Host path of the materialized repository tree (read-only inside). */
  treePath: string;
  /** Absolute working directory inside the container, e.g. /tmp/testbed/<8 hex>/<owner>_<repo>_<id>. */
  workingDir: string;
  /**
   * Start the shell with the first terminal command instead of at once. At once, its start
   * hides behind a model's first turn; for a job that never uses it (the baseline) it only
   * takes CPU from the job (~65 ms of a django instance's policy time on two cores).
   */
  lazyShell?: boolean;
}

export interface SandboxProvider {
  create(spec: SandboxSpec, signal?: AbortSignal): Promise<Sandbox>;
  /** Removes every container of this service not owned by a live sandbox of this process. */
  reapOrphans(): Promise<number>;
  /** The owner its containers are labelled with (what a worker's heartbeat says it owns). */
  readonly ownerId?: string;
  /** Throws when the container engine cannot be reached (readiness). */
  ping?(): Promise<void>;
  /**
   * Throws when the engine would start a sandbox without the limits it is given (asked once, at
   * the worker's start); returns what it would drop that the others still bound, to be said.
   */
  checkLimits?(): Promise<string[]>;
}

export class SandboxError extends Error {
  override name = "SandboxError";
  constructor(
    readonly reason: "image_missing" | "create_failed" | "terminal_died" | "job_timeout" | "output_limit" | "engine_unreachable" | "stopped_outside",
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
