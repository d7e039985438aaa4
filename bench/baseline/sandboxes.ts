import { createDockerSandboxProvider, type DockerSandboxProvider } from "../../src/sandbox/docker.js";

/**
 * Sandboxes as the eval CLI gives the baseline (src/cli/eval.ts; a shorter time limit), for the
 * benchmarks that dump or time its sandbox work, so their figures stand for the same sandbox.
 */
export function baselineSandboxes(): DockerSandboxProvider {
  return createDockerSandboxProvider({ image: "codescout-sandbox:latest", memoryMb: 2048, pidsLimit: 512, cpus: 1, tmpfsMb: 256, jobTimeoutS: 600, mountMode: "bind" });
}
