import type { Config } from "../config/env.js";
import type { DockerSandboxOptions } from "./docker.js";

/** The provider options the service's environment asks for (SANDBOX_* variables). */
export function sandboxOptionsFromConfig(config: Config): DockerSandboxOptions {
  return {
    image: config.SANDBOX_IMAGE,
    memoryMb: config.SANDBOX_MEMORY_MB,
    pidsLimit: config.SANDBOX_PIDS_LIMIT,
    cpus: config.SANDBOX_CPUS,
    tmpfsMb: config.SANDBOX_TMPFS_MB,
    jobTimeoutS: config.SANDBOX_JOB_TIMEOUT_S,
    mountMode: config.SANDBOX_MOUNT_MODE,
    startConcurrency: config.SANDBOX_START_CONCURRENCY,
  };
}
