import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import type { Config } from "../../src/config/env.js";
import { createServer } from "node:net";

/** The service's real entry points, started as processes the way an operator starts them. */
export interface ServiceProcess {
  child: ChildProcess;
  output(): string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export function startProcess(entry: "src/api/server.ts" | "src/worker/main.ts", env: Record<string, string>): ServiceProcess {
  const child = spawn(process.execPath, ["--import", "tsx", entry], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out = (out + d.toString()).slice(-200_000)));
  child.stderr!.on("data", (d: Buffer) => (out = (out + d.toString()).slice(-200_000)));
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  return {
    child,
    output: () => out,
    async stop(signal = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
    srv.on("error", reject);
  });
}

export async function waitFor<T>(probe: () => Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The environment both entry points get in a test: its own Redis prefix and cache dir. */
export function serviceEnv(config: Config, extra: Record<string, string>): Record<string, string> {
  return {
    REDIS_URL: config.REDIS_URL,
    QUEUE_PREFIX: config.QUEUE_PREFIX,
    REPO_CACHE_DIR: config.REPO_CACHE_DIR,
    UPLOAD_DIR: config.UPLOAD_DIR,
    ALLOW_FILE_URLS: "true",
    ...extra,
  };
}

/** The service's containers for a job, still present on the engine (removed ones are gone). */
export function containersOf(jobId: string): string {
  return execFileSync("docker", ["ps", "-aq", "--filter", `label=codescout.job=${jobId}`], { encoding: "utf8" }).trim();
}
