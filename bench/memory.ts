import { execFileSync } from "node:child_process";
import { RepoCache } from "../src/repos/cache.js";
import { createDockerSandboxProvider } from "../src/sandbox/docker.js";
import { makeWorkingDir } from "../src/sandbox/workdir.js";
import { makeGitFixture } from "../tests/helpers/gitFixture.js";
import { removeCacheDir } from "../tests/helpers/tempDirs.js";
import { ms, report } from "./lib.js";

/**
 * Host memory while a command in the sandbox prints 1 GB: the process holding the terminal
 * (this one, as a worker would) must not grow with the output, and the observation the model
 * gets is capped at 30,000 characters.
 *
 *   npx tsx bench/memory.ts
 */
const fx = makeGitFixture();
const cacheDir = "/tmp/codescout-bench-mem";
// The mirror and the tree (on the host's tmpfs) go with the fixture, however the run ends.
try {
  const tree = await new RepoCache({ dir: cacheDir, allowFileUrls: true }).prepare({ url: fx.url, commit: fx.commits[0]! });
  const provider = createDockerSandboxProvider({ image: "codescout-sandbox:latest", memoryMb: 512, pidsLimit: 128, cpus: 1, tmpfsMb: 64, jobTimeoutS: 600, mountMode: "bind" });
  const box = await provider.create({ jobId: "bench-mem", treePath: tree.treePath, workingDir: makeWorkingDir("local", "fixture", "mem") });
  const rss = () => process.memoryUsage().rss / 2 ** 20;
  try {
    global.gc?.();
    const before = rss();
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, rss())), 50);
    const t = performance.now();
    const result = await box.terminal.run({ command: "head -c 1000000000 /dev/zero | tr '\\0' 'a' | fold -w 200", timeout: 300 });
    const seconds = (performance.now() - t) / 1000;
    clearInterval(sampler);
    const container = execFileSync("docker", ["stats", "--no-stream", "--format", "{{.MemUsage}}", box.id], { encoding: "utf8" }).trim();
    report("memory", {
      command: "head -c 1000000000 /dev/zero | tr '\\0' a | fold -w 200   (1 GB of output)",
      seconds: ms(seconds),
      exit_code: result.exitCode,
      observation_chars: result.parts.join("\n").length,
      host_process_rss_mb: { before: ms(before), peak: ms(peak), growth: ms(peak - before) },
      container_memory_after: container,
    });
  } finally {
    await box.destroy();
  }
} finally {
  fx.cleanup();
  removeCacheDir(cacheDir);
}
process.exit(0);
