import { EVAL_SANDBOX } from "../../src/eval/runner.js";
import { createDockerSandboxProvider, type DockerSandboxProvider } from "../../src/sandbox/docker.js";

/**
 * Sandboxes as the eval CLI gives the baseline (a shorter time limit), for the benchmarks that
 * dump or time its sandbox work, so their figures stand for the same sandbox.
 */
export function baselineSandboxes(): DockerSandboxProvider {
  return createDockerSandboxProvider({ image: "codescout-sandbox:latest", ...EVAL_SANDBOX, jobTimeoutS: 600 });
}
