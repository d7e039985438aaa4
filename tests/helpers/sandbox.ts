import { randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RepoCache } from "../../src/repos/cache.js";
import { createDockerSandboxProvider } from "../../src/sandbox/docker.js";
import type { Sandbox } from "../../src/sandbox/types.js";
import type { PolicyContext } from "../../src/agent/policy.js";
import { makeGitFixture, SAMPLE_FILES } from "./gitFixture.js";
import { removeCacheDir } from "./tempDirs.js";

/** A real sandbox (real Docker engine) over a real tree from a git repository the test makes. */
export interface SandboxFixture {
  sandbox: Sandbox;
  workingDir: string;
  jobId: string;
  cleanup(): Promise<void>;
}

export async function startSandbox(files: Record<string, string> = SAMPLE_FILES, options: { softTimeoutMs?: number; more?: (dir: string) => void } = {}): Promise<SandboxFixture> {
  const fx = makeGitFixture(files);
  // What a files record cannot say (names that are not UTF-8, links, deep directories), made in the work tree and committed.
  if (options.more) {
    options.more(fx.dir);
    fx.git("add", "-A");
    fx.git("commit", "-qm", "more");
  }
  const cacheDir = mkdtempSync(join(tmpdir(), "codescout-sbx-cache-"));
  const tree = await new RepoCache({ dir: cacheDir, allowFileUrls: true }).prepare({ url: fx.url, commit: fx.git("rev-parse", "HEAD") });
  const jobId = `test-${randomBytes(6).toString("hex")}`;
  const workingDir = `/tmp/testbed/${randomBytes(4).toString("hex")}/local_fixture_local__fixture-1`;
  const provider = createDockerSandboxProvider({
    image: process.env.SANDBOX_IMAGE ?? "codescout-sandbox:latest",
    mountMode: "bind",
    memoryMb: 512,
    pidsLimit: 128,
    cpus: 1,
    tmpfsMb: 64,
    jobTimeoutS: 300,
    ...(options.softTimeoutMs ? { softTimeoutMs: options.softTimeoutMs } : {}),
  });
  const sandbox = await provider.create({ jobId, treePath: tree.treePath, workingDir });
  return {
    sandbox,
    workingDir,
    jobId,
    async cleanup() {
      await sandbox.destroy();
      fx.cleanup();
      removeCacheDir(cacheDir);
    },
  };
}

/** What a policy is given to run on an issue in the fixture's sandbox (no history). */
export function policyContext(fx: SandboxFixture, issue: string, onEvent: PolicyContext["onEvent"] = () => {}): PolicyContext {
  return { issue, workingDir: fx.workingDir, terminal: fx.sandbox.terminal, exec: (argv, o) => fx.sandbox.exec(argv, o), signal: new AbortController().signal, onEvent };
}
