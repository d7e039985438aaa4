import { CappedBuffer } from "./demux.js";
import { encodeRequest, type ExecMessage, type HostRequest } from "./protocol.js";
import { SandboxError, type ExecOptions, type ExecResult } from "./types.js";

/**
 * One-off processes started by the sandbox's terminal server, over the stream the host
 * already holds, instead of one `docker exec` each: the engine's exec costs ~100-130 ms of
 * its CPU per process (on two cores, taken from the job itself), a fork in the container a
 * few. The server streams each process's output in base64 chunks; everything it sends is
 * untrusted, so ids that are not pending are dropped and the byte caps are applied here again.
 */

/** Exec output kept per stream unless the caller asks for another cap. */
export const DEFAULT_EXEC_BYTES = 1024 * 1024;
/** The largest stdin sent in one request line (the server refuses lines over 4 MiB). */
export const MAX_CHANNEL_STDIN = 2 * 1024 * 1024;
/** What a terminal server that predates the `exec` request answers to it (it goes on serving). */
export const EXEC_UNKNOWN = "unexpected op 'exec'";
/** How long after its deadline an exec may still answer before it is given up. */
const GRACE_MS = 5_000;

interface Pending {
  stdout: CappedBuffer;
  stderr: CappedBuffer;
  finish(done: { exitCode: number; timedOut: boolean; truncated: boolean; unstarted: boolean }): void;
  reject(err: Error): void;
}

export class ExecChannel {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private failure: SandboxError | null = null;
  private unsupported = false;

  constructor(private readonly write: (line: string) => void) {}

  /** Resolves null when the server could not start the process: the sandbox's process limit is reached. */
  run(argv: string[], options: ExecOptions = {}): Promise<ExecResult | null> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.unsupported) return Promise.resolve(null);
    const timeoutMs = options.timeoutMs ?? 30_000;
    const cap = options.maxOutputBytes ?? DEFAULT_EXEC_BYTES;
    const id = this.nextId++;
    return new Promise<ExecResult | null>((resolve, reject) => {
      const stdout = new CappedBuffer(cap);
      const stderr = new CappedBuffer(cap);
      // The server kills at the deadline; this only covers a server that never answers.
      const guard = setTimeout(() => {
        this.pending.delete(id);
        resolve({ exitCode: -1, stdout: stdout.text(), stderr: stderr.text(), truncated: stdout.truncated || stderr.truncated, timedOut: true });
      }, timeoutMs + GRACE_MS);
      this.pending.set(id, {
        stdout,
        stderr,
        finish: (done) => {
          clearTimeout(guard);
          if (done.unstarted) return resolve(null);
          resolve({
            exitCode: done.exitCode,
            stdout: stdout.text(),
            stderr: stderr.text(),
            truncated: done.truncated || stdout.truncated || stderr.truncated,
            timedOut: done.timedOut || done.exitCode === 137,
          });
        },
        reject: (err) => (clearTimeout(guard), reject(err)),
      });
      const req: HostRequest = {
        op: "exec",
        id,
        argv,
        stdin: options.stdin === undefined ? null : Buffer.from(options.stdin).toString("base64"),
        timeout: Math.max(0.001, timeoutMs / 1000),
        max_bytes: cap,
      };
      try {
        this.write(encodeRequest(req));
      } catch (err) {
        this.fail(new SandboxError("terminal_died", "could not write to the sandbox", { cause: err }));
      }
    });
  }

  /** Feeds one validated exec message from the container. */
  handle(msg: ExecMessage): void {
    const p = this.pending.get(msg.id);
    if (!p) return;
    if (msg.type === "exec_data") {
      (msg.fd === 1 ? p.stdout : p.stderr).push(Buffer.from(msg.b64, "base64"));
      return;
    }
    this.pending.delete(msg.id);
    p.finish({ exitCode: msg.exit_code, timedOut: msg.timed_out, truncated: msg.truncated, unstarted: msg.unstarted ?? false });
  }

  /**
   * The server does not know the request (an image built before it could start processes):
   * every pending and future exec resolves null, so the caller asks the engine instead.
   */
  notSupported(): void {
    this.unsupported = true;
    for (const p of this.pending.values()) p.finish({ exitCode: -1, timedOut: false, truncated: false, unstarted: true });
    this.pending.clear();
  }

  /** Ends every pending and future exec with `err` (the sandbox is gone). */
  fail(err: SandboxError): void {
    if (this.failure) return;
    this.failure = err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }
}
