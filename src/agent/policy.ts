import type { Terminal, ExecResult, ExecOptions } from "../sandbox/types.js";

/**
 * A localization policy drives the terminal of one sandbox and answers with locations.
 * The CodeScout model loop and the model-free baseline both sit behind this interface, so
 * the worker runs either the same way.
 */

export interface Location {
  file: string;
  class_name?: string;
  function_name?: string;
  /** Why the policy chose it (matched issue terms, a traceback frame, a quoted line). */
  evidence?: string[];
  /**
   * How likely the file, and the function when one is named, is one the fix changes (0-1):
   * the baseline's calibrated estimate; the model answers without one.
   */
  confidence?: Confidence;
  /**
   * Where the policy read the class or function (1-based, decorators included): a hint. The
   * check of the answer confirms it from the file's lines or finds the span itself.
   */
  start_line?: number;
  end_line?: number;
}

export interface Confidence {
  file: number;
  function?: number;
}

export type PolicyName = "codescout" | "baseline";

/** How an episode ended; recorded on every result. */
export type FinishReason =
  | "finish_tool" // the policy called localization_finish
  | "recovered" // the answer came from the recovery turn
  | "text_reply" // the model answered with text only (no answer)
  | "budget_exhausted" // model-call budget spent (no answer)
  | "context_exhausted" // context window full (no answer)
  | "stuck"; // repeated identical actions (no answer)

export interface PolicyEvent {
  /** A model turn, a command it ran, or the fallback policy taking over (`reason`: the model's failure). */
  type: "turn" | "command" | "fallback";
  turn: number;
  maxTurns: number;
  command?: string;
  exitCode?: number | null;
  reason?: string;
}

/**
 * The steps a policy had taken when it failed (the model server gone, the job's time up), kept
 * beside its error, so the job's trajectory says what happened before: a failed job had none,
 * and a fallback's began at the fallback. A WeakMap, so an error's shape is not changed.
 */
const stepsBeforeFailure = new WeakMap<object, TrajectoryStep[]>();

export function keepSteps<E>(err: E, steps: TrajectoryStep[]): E {
  if (err && typeof err === "object") stepsBeforeFailure.set(err, steps);
  return err;
}

export function stepsOf(err: unknown): TrajectoryStep[] | undefined {
  return err && typeof err === "object" ? stepsBeforeFailure.get(err) : undefined;
}

export interface TrajectoryStep {
  at: string;
  kind: "request" | "response" | "tool";
  durationMs?: number;
  [key: string]: unknown;
}

export interface PolicyUsage {
  modelCalls: number;
  promptTokens: number;
  completionTokens: number;
  modelMs: number;
  toolMs: number;
}

export interface PolicyResult {
  policy: PolicyName;
  locations: Location[] | null;
  /**
   * Candidates the policy ranked next and did not answer, surest first: where a calling agent
   * reads when the answer's confidence is low. Never scored.
   */
  alternatives?: Location[];
  finishReason: FinishReason;
  /** Set when this answer is the fallback's: which policy failed, and why (a ModelError's reason). */
  fallback?: { from: PolicyName; reason: string };
  /** What the policy did not read of the tree, for the caller to know (the baseline's scan past its bound). */
  notes?: string[];
  turns: number;
  usage: PolicyUsage;
  /** Messages, tool calls, observations and timings, in order. */
  trajectory: TrajectoryStep[];
}

export interface PolicyContext {
  issue: string;
  workingDir: string;
  terminal: Terminal;
  /** One-off helper processes inside the sandbox (not part of the model's terminal). */
  exec(argv: string[], options?: ExecOptions): Promise<ExecResult>;
  signal: AbortSignal;
  /**
   * When the job's time runs out (a `performance.now()` reading): `signal` aborts then, and work
   * that only adds to an answer (the leads) must end before it, so as not to cost the answer.
   */
  deadlineAt?: number;
  /** While on, the sandbox runs only on CPU other jobs leave idle (Sandbox.yieldCpu): for work no one waits on. */
  yieldCpu?(yielding: boolean): Promise<void>;
  onEvent(event: PolicyEvent): void;
  /**
   * What commits the issue names changed (a sha, or `#123` for the commits whose messages
   * mention it), where the host holds the tree's history (the repository cache's mirror): only
   * commits in the tree's own past. Absent, or answering nothing, where there is no history.
   */
  namedCommits?(refs: string[]): Promise<NamedCommit[]>;
}

/** A commit an issue names, and what it changed (paths; `def` names its hunks sit in). */
export interface NamedCommit {
  ref: string;
  sha: string;
  files: string[];
  defs: { file: string; name: string }[];
}

export interface Policy {
  readonly name: PolicyName;
  /** False for a policy that never runs a terminal command: its sandbox starts no shell. */
  readonly usesShell?: boolean;
  run(ctx: PolicyContext): Promise<PolicyResult>;
}

export function emptyUsage(): PolicyUsage {
  return { modelCalls: 0, promptTokens: 0, completionTokens: 0, modelMs: 0, toolMs: 0 };
}

/** What two policies spent on one job (a model's attempt, then the baseline that answered for it). */
export function addUsage(a: PolicyUsage, b: PolicyUsage): PolicyUsage {
  return { modelCalls: a.modelCalls + b.modelCalls, promptTokens: a.promptTokens + b.promptTokens, completionTokens: a.completionTokens + b.completionTokens, modelMs: a.modelMs + b.modelMs, toolMs: a.toolMs + b.toolMs };
}
