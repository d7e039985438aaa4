import { existsSync } from "node:fs";
import { RepoCache } from "../src/repos/cache.js";
import { createDockerSandboxProvider } from "../src/sandbox/docker.js";
import { makeWorkingDir } from "../src/sandbox/workdir.js";
import { ms, quick, report, stats, time } from "./lib.js";

/**
 * Sandbox ready time (container created, repository visible, shell answering) for a sympy
 * tree (~1,900 files), and the per-command round trip (`true`) of the persistent terminal, of
 * the sandbox's exec (a process the terminal server starts) and of one `docker exec`.
 *
 *   npx tsx bench/sandbox.ts [--quick] [--repo file:///work/benchmirrors/sympy.git]
 */
const arg = (name: string) => process.argv[process.argv.indexOf(name) + 1];
const url = process.argv.includes("--repo") ? arg("--repo")! : "file:///work/benchmirrors/sympy.git";
// The source is made by hand (BENCHMARKS.md, "Sources"): said plainly, not as a clone's error.
if (url.startsWith("file://") && !existsSync(url.slice("file://".length))) {
  process.stderr.write(`${process.argv[1]}: no repository at ${url}: make it as BENCHMARKS.md's "Sources" says, or give --repo\n`);
  process.exit(2);
}
const repos = new RepoCache({ dir: "/tmp/codescout-bench-cache", allowFileUrls: true });
const tree = await repos.prepare({ url, commit: "HEAD" });
const provider = createDockerSandboxProvider({ image: "codescout-sandbox:latest", memoryMb: 1024, pidsLimit: 256, cpus: 1, tmpfsMb: 64, jobTimeoutS: 300, mountMode: "bind" });

const readyRounds = quick ? 8 : 30;
const ready: number[] = [];
const destroy: number[] = [];
for (let i = 0; i < readyRounds; i++) {
  const workingDir = makeWorkingDir("sympy", "sympy", `bench-${i}`);
  const [t, box] = await time(async () => {
    const b = await provider.create({ jobId: `bench-ready-${i}`, treePath: tree.treePath, workingDir });
    // "Ready" includes the repository being visible to the shell.
    const r = await b.terminal.run({ command: "test -f setup.py && echo ok" });
    if (!r.parts.join("").startsWith("ok")) throw new Error("repository not visible");
    return b;
  });
  ready.push(t);
  destroy.push((await time(() => box.destroy()))[0]);
}

const cmdRounds = quick ? 50 : 300;
const workingDir = makeWorkingDir("sympy", "sympy", "bench-cmd");
const box = await provider.create({ jobId: "bench-cmd", treePath: tree.treePath, workingDir });
const terminal: number[] = [];
const exec: number[] = [];
const engine: number[] = [];
try {
  for (let i = 0; i < 10; i++) await box.terminal.run({ command: "true" });
  for (let i = 0; i < cmdRounds; i++) terminal.push((await time(() => box.terminal.run({ command: "true" })))[0]);
  for (let i = 0; i < Math.min(cmdRounds, 100); i++) exec.push((await time(() => box.exec(["true"])))[0]);
  // The engine's exec, as the sandbox's exec was before stop 33: create, start, read to the end, inspect.
  const container = provider.docker.getContainer(box.id);
  for (let i = 0; i < Math.min(cmdRounds, 100); i++) {
    engine.push(
      (
        await time(async () => {
          const e = await container.exec({ Cmd: ["true"], User: "10001:10001", AttachStdout: true, AttachStderr: true });
          const io = await e.start({ hijack: true, stdin: false });
          await new Promise<void>((r) => io.on("end", r).on("close", r).resume());
          await e.inspect();
        })
      )[0],
    );
  }
  const rgOwn: number[] = [];
  for (let i = 0; i < 10; i++) rgOwn.push((await time(() => box.terminal.run({ command: "rg -c 'def simplify' -t py | wc -l" })))[0]);
  const s = { ready: stats(ready), destroy: stats(destroy), terminal_true: stats(terminal), exec_true: stats(exec), docker_exec_true: stats(engine), terminal_rg: stats(rgOwn) };
  report("sandbox", {
    repository: url,
    files_in_tree: Number((await box.terminal.run({ command: "rg --files | wc -l" })).parts[0]?.split("\n")[0]),
    ready_ms: { p50: ms(s.ready.p50), p95: ms(s.ready.p95) },
    destroy_ms_p50: ms(s.destroy.p50),
    per_command_ms: {
      terminal_p50: ms(s.terminal_true.p50),
      terminal_p95: ms(s.terminal_true.p95),
      exec_p50: ms(s.exec_true.p50),
      exec_p95: ms(s.exec_true.p95),
      docker_exec_p50: ms(s.docker_exec_true.p50),
      docker_exec_p95: ms(s.docker_exec_true.p95),
    },
    rg_over_tree_ms_p50: ms(s.terminal_rg.p50),
    targets: "ready p50 <= 300 ms; per-command overhead p50 <= 5 ms",
    samples: s,
  });
} finally {
  await box.destroy();
}
