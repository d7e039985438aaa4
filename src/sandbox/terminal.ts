import { SandboxError, type Terminal, type TerminalCall, type TerminalResult } from "./types.js";
import { type HostRequest, type ReadyMessage, type ResultMessage, type TerminalMessage, encodeRequest } from "./protocol.js";
import {
  formatResult,
  multipleCommandsText,
  refusal,
  resetOnly,
  NO_COMMAND_FOR_INPUT,
  NO_COMMAND_FOR_LOGS,
  RESET_TEXT,
  RESET_WITH_INPUT,
  type Observation,
} from "./observation.js";
import { splitBashCommands } from "./commandSplit.js";

/**
 * Host side of the sandbox terminal: turns tool calls into requests to the in-container
 * server, waits for its answers and formats them as the reference did. Calls run one after
 * another, as parallel tool calls did in the reference (one shell).
 */

export interface TerminalClientOptions {
  /** Writes one request line to the container. */
  write(line: string): void;
  /** The reference's 30 s "no new output" timeout. */
  softTimeoutMs: number;
  /** How long the shell may take to answer once started. */
  readyTimeoutMs: number;
}

interface Pending {
  resolve(msg: ResultMessage): void;
  reject(err: Error): void;
}

/**
 * Python's str.strip(): whitespace at both ends. A scan, not `/[\s…]+$/`: the command is the
 * model's, and that pattern is quadratic in a run of blanks inside it (40,000 took 3.4 s).
 */
const PY_SPACE = /[\s\x1c-\x1f\x85]/;
export function pyStrip(s: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && PY_SPACE.test(s[start]!)) start++;
  while (end > start && PY_SPACE.test(s[end - 1]!)) end--;
  return s.slice(start, end);
}

export class TerminalClient implements Terminal {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private queue: Promise<unknown> = Promise.resolve();
  private failure: SandboxError | null = null;
  /** Whether the previous command is still running (soft/hard timeout), as the server said. */
  private running = false;
  private readyWaiter: { resolve(m: ReadyMessage): void; reject(e: Error): void } | null = null;
  private ready: ReadyMessage | null = null;
  private starting: Promise<ReadyMessage> | null = null;

  constructor(private readonly options: TerminalClientOptions) {}

  /** Feeds one validated message from the container. */
  handle(msg: TerminalMessage): void {
    if (msg.type === "ready") {
      this.ready = msg;
      this.readyWaiter?.resolve(msg);
      this.readyWaiter = null;
      return;
    }
    if (msg.type === "fatal") {
      this.fail(new SandboxError("terminal_died", `terminal server: ${msg.message}`));
      return;
    }
    this.running = msg.running;
    const waiter = this.pending.get(msg.id);
    if (waiter) {
      this.pending.delete(msg.id);
      waiter.resolve(msg);
    }
  }

  /** Ends every pending and future call with `err` (the sandbox is gone or misbehaved). */
  fail(err: SandboxError): void {
    if (this.failure) return;
    this.failure = err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    this.readyWaiter?.reject(err);
    this.readyWaiter = null;
  }

  get failed(): SandboxError | null {
    return this.failure;
  }

  /**
   * Starts the shell and resolves at its first prompt. Commands wait for it, so a caller need
   * not: the sandbox lets the shell come up while the job goes on.
   */
  start(): Promise<ReadyMessage> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.ready) return Promise.resolve(this.ready);
    if (this.starting) return this.starting;
    const timeoutMs = this.options.readyTimeoutMs;
    const starting = new Promise<ReadyMessage>((resolve, reject) => {
      // A shell that never answers fails every later command too, not only this wait.
      const timer = setTimeout(() => this.fail(new SandboxError("terminal_died", `the sandbox shell did not answer within ${timeoutMs} ms`)), timeoutMs);
      this.readyWaiter = {
        resolve: (m) => (clearTimeout(timer), resolve(m)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      };
      this.send({ op: "start" });
    });
    this.starting = starting;
    this.queue = this.queue.then(() => starting).catch(() => undefined);
    return starting;
  }

  run(call: TerminalCall, signal?: AbortSignal): Promise<TerminalResult> {
    // A shell not started yet (a lazy sandbox) starts with its first command, which waits for it.
    if (!this.starting) this.start().catch(() => undefined);
    const next = this.queue.then(() => this.runNow(call, signal));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async runNow(call: TerminalCall, signal?: AbortSignal): Promise<TerminalResult> {
    const started = performance.now();
    const obs = await this.observe(call, signal);
    return { ...obs, durationMs: performance.now() - started };
  }

  private async observe(call: TerminalCall, signal?: AbortSignal): Promise<Observation> {
    if (this.failure) throw this.failure;
    signal?.throwIfAborted();
    const isInput = call.is_input ?? false;
    const timeout = call.timeout ?? null;
    if (call.reset && isInput) return refusal(RESET_WITH_INPUT);
    const command = pyStrip(call.command);

    if (call.reset) {
      await this.request({ op: "reset", id: this.nextId++ }, signal);
      if (command === "") return resetOnly();
      // The reference runs the command in the new shell and puts the reset notice before its output.
      return this.execute(command, false, timeout, signal, `${RESET_TEXT}\n\n`);
    }
    if (!this.running) {
      if (command === "") return refusal(NO_COMMAND_FOR_LOGS);
      if (isInput) return refusal(NO_COMMAND_FOR_INPUT);
    }
    const commands = splitBashCommands(command);
    if (commands.length > 1) return refusal(multipleCommandsText(commands));
    return this.execute(command, isInput, timeout, signal);
  }

  private async execute(
    command: string,
    isInput: boolean,
    timeout: number | null,
    signal: AbortSignal | undefined,
    bodyPrefix = "",
  ): Promise<Observation> {
    const softTimeoutMs = this.options.softTimeoutMs;
    const msg = await this.request(
      { op: "run", id: this.nextId++, command, is_input: isInput, timeout, soft_timeout: softTimeoutMs / 1000 },
      signal,
    );
    return formatResult(command, msg, softTimeoutMs, timeout, bodyPrefix);
  }

  private request(req: Extract<HostRequest, { id: number }>, signal?: AbortSignal): Promise<ResultMessage> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<ResultMessage>((resolve, reject) => {
      const onAbort = () => {
        // The server ends the call as a hard timeout; its late answer is dropped by id.
        this.pending.delete(req.id);
        this.send({ op: "cancel", id: req.id });
        reject(signal?.reason ?? new Error("aborted"));
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.pending.set(req.id, {
        resolve: (m) => (signal?.removeEventListener("abort", onAbort), resolve(m)),
        reject: (e) => (signal?.removeEventListener("abort", onAbort), reject(e)),
      });
      this.send(req);
    });
  }

  private send(req: HostRequest) {
    try {
      this.options.write(encodeRequest(req));
    } catch (err) {
      this.fail(new SandboxError("terminal_died", "could not write to the sandbox terminal", { cause: err }));
    }
  }
}

