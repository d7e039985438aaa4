import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { RepoCache } from "../../src/repos/cache.js";
import { makeGitFixture, SAMPLE_FILES } from "../helpers/gitFixture.js";
import { removeCacheDir } from "../helpers/tempDirs.js";
import { createDockerSandboxProvider, type DockerSandboxOptions } from "../../src/sandbox/docker.js";
import type { Sandbox, SandboxSpec } from "../../src/sandbox/types.js";

export const IMAGE = process.env.SANDBOX_IMAGE ?? "codescout-sandbox:latest";

/** A unique service label per test file, so reaping in one file never touches another's containers. */
export function testServiceLabel(name: string): string {
  return `codescout-test-${name}-${process.pid}-${randomBytes(3).toString("hex")}`;
}

export function provider(overrides: Partial<DockerSandboxOptions> & { serviceLabel: string }) {
  return createDockerSandboxProvider({
    image: IMAGE,
    memoryMb: 512,
    pidsLimit: 128,
    cpus: 1,
    tmpfsMb: 64,
    jobTimeoutS: 300,
    mountMode: "bind",
    softTimeoutMs: 2_000,
    ...overrides,
  });
}

export interface Tree {
  treePath: string;
  owner: string;
  name: string;
  cleanup(): void;
}

/** A real repository tree made with git + RepoCache, as the worker makes them. */
export async function makeTree(files: Record<string, string> = SAMPLE_FILES): Promise<Tree> {
  const fx = makeGitFixture(files);
  const dir = mkdtempSync(join(tmpdir(), "codescout-sbx-cache-"));
  const cache = new RepoCache({ dir, allowFileUrls: true });
  const tree = await cache.prepare({ url: fx.url, commit: fx.commits[0]! });
  return {
    treePath: tree.treePath,
    owner: tree.owner,
    name: tree.name,
    cleanup() {
      fx.cleanup();
      removeCacheDir(dir);
    },
  };
}

export function spec(tree: Tree, jobId: string, workingDir?: string): SandboxSpec {
  return {
    jobId,
    treePath: tree.treePath,
    workingDir: workingDir ?? `/tmp/testbed/${randomBytes(4).toString("hex")}/${tree.owner}_${tree.name}_t1`,
  };
}

/** Runs a command and returns the text the model would see. */
export async function see(sb: Sandbox, command: string, extra: Record<string, unknown> = {}): Promise<string> {
  const r = await sb.terminal.run({ command, ...extra });
  return r.parts.join("\n");
}

export function suffix(cwd: string, code = 0, python = "/usr/bin/python"): string {
  return (
    `\n[The command completed with exit code ${code}.]\n[Current working directory: ${cwd}]` +
    `\n[Python interpreter: ${python}]\n[Command finished with exit code ${code}]`
  );
}
