import { spawn } from "node:child_process";

/**
 * Runs git on the host with prompts disabled and a hard time limit. Arguments are passed as
 * an argv array (never through a shell); callers put `--` before anything user-supplied.
 */
export interface GitRunOptions {
  cwd?: string;
  timeoutMs?: number;
  /** Extra environment, e.g. GIT_CONFIG_* entries carrying credentials (never argv). */
  env?: Record<string, string>;
  signal?: AbortSignal;
  /** Written to git's stdin (e.g. a patch). */
  input?: string;
}

export class GitError extends Error {
  override name = "GitError";
  constructor(
    message: string,
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    super(message);
  }
}

const MAX_CAPTURE = 1 << 20;

export function runGit(args: string[], options: GitRunOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn("git", args, {
      cwd: options.cwd,
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        HOME: process.env.HOME ?? "/tmp",
        GIT_TERMINAL_PROMPT: "0",
        GIT_ASKPASS: "/bin/false",
        SSH_ASKPASS: "/bin/false",
        GIT_CONFIG_NOSYSTEM: "1",
        // Nobody's ~/.gitconfig (url.insteadOf, proxies, helpers) changes what git does here.
        GIT_CONFIG_GLOBAL: "/dev/null",
        GIT_PROTOCOL_FROM_USER: "0",
        LC_ALL: "C",
        ...options.env,
      },
      stdio: [options.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
      signal: options.signal,
    });
    if (options.input !== undefined) {
      child.stdin!.on("error", () => undefined);
      child.stdin!.end(options.input);
    }
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (d: Buffer) => {
      if (stdout.length < MAX_CAPTURE) stdout += d.toString("utf8");
    });
    child.stderr!.on("data", (d: Buffer) => {
      if (stderr.length < MAX_CAPTURE) stderr += d.toString("utf8");
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 600_000);
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(new GitError(`git ${args[0]} failed to start: ${err.message}`, null, stderr));
    });
    child.on("close", (code, sig) => {
      clearTimeout(timer);
      if (code === 0) resolve(stdout);
      else reject(new GitError(`git ${args[0]} exited with ${code ?? sig}: ${stderr.trim().slice(-500)}`, code, stderr));
    });
  });
}

/**
 * Failures of a command that reached a remote which the same command may not meet again: the
 * remote or the way to it failed (HTTP 5xx, 429 or 408, a connection refused, reset or cut
 * short), not the request (no such repository, no access). A command killed for its time
 * limit or stopped by its caller (no exit code) is not among them: running it again would
 * spend that time again.
 */
const TRANSIENT = [
  /returned error: (5\d\d|429|408)\b/,
  /RPC failed|early EOF|unexpected disconnect|remote end hung up unexpectedly|transfer closed with/,
  /Failed to connect|Couldn't connect|Connection (reset|refused|timed out)|Operation timed out|Recv failure/,
  /SSL_(read|write|connect)|GnuTLS|gnutls_handshake|HTTP\/2 stream \d+ was not closed cleanly/,
];

export function isTransientGitFailure(err: unknown): boolean {
  return err instanceof GitError && err.exitCode !== null && TRANSIENT.some((re) => re.test(err.stderr));
}

/** Git configuration for one command, through the environment (never argv, never a file). */
export function gitConfigEnv(pairs: ReadonlyArray<readonly [string, string]>): Record<string, string> {
  const env: Record<string, string> = { GIT_CONFIG_COUNT: String(pairs.length) };
  pairs.forEach(([key, value], i) => {
    env[`GIT_CONFIG_KEY_${i}`] = key;
    env[`GIT_CONFIG_VALUE_${i}`] = value;
  });
  return env;
}

/**
 * Which transports git may use when it reaches a remote, and how: https always, http and
 * file only where the server allows them, everything else (ssh, git://, ext::, fd::) never,
 * even for a URL form that slipped past the URL check; redirects never followed.
 */
export function transportConfig(allow: { http: boolean; file: boolean }): Array<[string, string]> {
  return [
    ["protocol.allow", "never"],
    ["protocol.https.allow", "always"],
    ["protocol.http.allow", allow.http ? "always" : "never"],
    ["protocol.file.allow", allow.file ? "always" : "never"],
    ["http.followRedirects", "false"],
  ];
}
