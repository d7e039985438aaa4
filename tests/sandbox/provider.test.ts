import { describe, it, expect, afterAll, vi } from "vitest";
import Dockerode from "dockerode";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeTree, provider, spec, see, testServiceLabel, IMAGE, type Tree } from "./helpers.js";
import { SandboxError } from "../../src/sandbox/types.js";
import { missingLimits, PID_NAMESPACE } from "../../src/sandbox/docker.js";

/** Lifecycle against the real engine: cleanup, reaping, wall-clock cap, exec, reset, errors. */

const docker = new Dockerode();
const trees: Tree[] = [];
afterAll(() => trees.forEach((t) => t.cleanup()));
const tree = async () => {
  const t = await makeTree();
  trees.push(t);
  return t;
};
const exists = (id: string) => docker.getContainer(id).inspect().then(() => true, () => false);

describe("sandbox lifecycle", () => {
  it("labels the container, and destroy() removes it and is idempotent", async () => {
    const label = testServiceLabel("life");
    const p = provider({ serviceLabel: label });
    const sb = await p.create(spec(await tree(), "job-life"));
    const info = await docker.getContainer(sb.id).inspect();
    expect(info.Config.Labels).toMatchObject({ "codescout.service": label, "codescout.job": "job-life", "codescout.owner": p.ownerId });
    expect(info.HostConfig).toMatchObject({ NetworkMode: "none", ReadonlyRootfs: true, CapDrop: ["ALL"], SecurityOpt: ["no-new-privileges"] });
    expect(info.Mounts.some((m) => /docker\.sock/.test(m.Source ?? ""))).toBe(false);
    await sb.destroy();
    await sb.destroy();
    expect(await exists(sb.id)).toBe(false);
    await expect(sb.terminal.run({ command: "ls" })).rejects.toBeInstanceOf(SandboxError);
  });

  it("starts at most startConcurrency sandboxes at once; the others wait and then start", async () => {
    // The real engine, counted: how many container creations are under way at once.
    let running = 0;
    let most = 0;
    class CountingDocker extends Dockerode {
      override async createContainer(options: Dockerode.ContainerCreateOptions) {
        most = Math.max(most, ++running);
        try {
          const c = await super.createContainer(options);
          await new Promise((r) => setTimeout(r, 50));
          return c;
        } finally {
          running--;
        }
      }
    }
    const p = provider({ serviceLabel: testServiceLabel("starts"), docker: new CountingDocker(), startConcurrency: 2 });
    const t = await tree();
    const boxes = await Promise.all([1, 2, 3, 4, 5].map((i) => p.create(spec(t, `job-start-${i}`))));
    try {
      expect(most).toBe(2);
      for (const sb of boxes) expect(await see(sb, "echo up")).toMatch(/^up\n/);
    } finally {
      await Promise.all(boxes.map((sb) => sb.destroy()));
    }
  });

  it("reaps orphans: a dead owner's containers and its own forgotten ones, never a live sandbox or one of its own just made", async () => {
    const label = testServiceLabel("reap");
    const p = provider({ serviceLabel: label });
    const live = await p.create(spec(await tree(), "job-live"));
    // A container left by a crashed worker on this host: its owner pid no longer exists.
    const dead = spawnSync("true").pid!;
    const orphan = await docker.createContainer({
      Image: IMAGE,
      Cmd: ["sleep", "60"],
      Labels: { "codescout.service": label, "codescout.owner": `${(await import("node:os")).hostname()}:${dead}:x` },
    });
    // The same, made by a worker naming its pid namespace (ours): its pid is read here, and it is gone.
    const nsOrphan = await docker.createContainer({
      Image: IMAGE,
      Cmd: ["sleep", "60"],
      Labels: { "codescout.service": label, "codescout.owner": `${(await import("node:os")).hostname()}:${dead}:y:${PID_NAMESPACE}` },
    });
    // A young container of a worker in another pid namespace on a host of the same name (a
    // container with host networking): its pid means nothing here, so it is left to its age.
    const elsewhere = await docker.createContainer({
      Image: IMAGE,
      Cmd: ["sleep", "60"],
      Labels: { "codescout.service": label, "codescout.owner": `${(await import("node:os")).hostname()}:${dead}:z:1` },
    });
    // One of its own it does not know yet (a sandbox being created as the upkeep runs): left alone while young.
    const creating = await docker.createContainer({
      Image: IMAGE,
      Cmd: ["sleep", "60"],
      Labels: { "codescout.service": label, "codescout.owner": p.ownerId },
    });
    // A container of another live worker (this test process) must survive.
    const other = provider({ serviceLabel: label });
    const sibling = await other.create(spec(await tree(), "job-sibling"));
    try {
      expect(await p.reapOrphans()).toBe(2);
      expect(await exists(orphan.id)).toBe(false);
      expect(await exists(nsOrphan.id)).toBe(false);
      expect(await exists(elsewhere.id)).toBe(true);
      expect(await exists(creating.id)).toBe(true);
      expect(await exists(live.id)).toBe(true);
      expect(await exists(sibling.id)).toBe(true);
      expect(await see(live, "echo ok")).toMatch(/^ok\n/);
    } finally {
      await live.destroy();
      await sibling.destroy();
      await orphan.remove({ force: true }).catch(() => undefined);
      await nsOrphan.remove({ force: true }).catch(() => undefined);
      await elsewhere.remove({ force: true }).catch(() => undefined);
      await creating.remove({ force: true }).catch(() => undefined);
    }
  });

  it("asks the engine whether it can set a sandbox's limits, and names those it cannot", async () => {
    const info = await docker.info();
    // This engine sets them all; one without the cgroup controllers says so in the same fields.
    expect(missingLimits(info)).toEqual([]);
    await expect(provider({ serviceLabel: testServiceLabel("limits-check") }).checkLimits()).resolves.toEqual(info.SwapLimit === false ? [expect.stringContaining("swap")] : []);
    expect(missingLimits({ ...info, MemoryLimit: false, PidsLimit: false })).toEqual(["memory", "number of processes"]);
    expect(missingLimits({ ...info, CpuCfsQuota: false })).toEqual(["CPU"]);
  });

  it("says an engine that cannot see the job's tree needs the copy mount mode", async () => {
    // As an engine on another host, or in another mount namespace, sees the worker's tree: not at all.
    const gone = { ...(await tree()), treePath: join(tmpdir(), `codescout-nowhere-${process.pid}`) };
    const refused = provider({ serviceLabel: testServiceLabel("nowhere") }).create(spec(gone, "job-nowhere"));
    await expect(refused).rejects.toBeInstanceOf(SandboxError);
    await expect(refused).rejects.toThrow("needs SANDBOX_MOUNT_MODE=copy");
  });

  it("judges a sandbox's age by the limit of the worker that made it: another deployment on the engine allowing its jobs longer keeps its sandboxes", async () => {
    const label = testServiceLabel("limits");
    // This deployment's jobs may run 5 minutes; the other's 20.
    const p = provider({ serviceLabel: label, jobTimeoutS: 300 });
    const theirs = await provider({ serviceLabel: label, jobTimeoutS: 1200 }).create(spec(await tree(), "job-long"));
    // A sandbox of an earlier worker, which labelled no limit: judged by this worker's.
    const earlier = await docker.createContainer({ Image: IMAGE, Cmd: ["sleep", "60"], Labels: { "codescout.service": label, "codescout.owner": "elsewhere:7:ee:1" } });
    try {
      expect((await docker.getContainer(theirs.id).inspect()).Config.Labels["codescout.expires"]).toMatch(/^\d+$/);
      vi.useFakeTimers({ toFake: ["Date"] });
      // Ten minutes on: past this deployment's limit, within theirs.
      vi.setSystemTime(Date.now() + 600_000);
      expect(await p.reapOrphans()).toBe(1);
      expect(await exists(theirs.id)).toBe(true);
      expect(await exists(earlier.id)).toBe(false);
      // Past theirs too.
      vi.setSystemTime(Date.now() + 900_000);
      expect(await p.reapOrphans()).toBe(1);
      expect(await exists(theirs.id)).toBe(false);
    } finally {
      vi.useRealTimers();
      await theirs.destroy();
      await earlier.remove({ force: true }).catch(() => undefined);
    }
  });

  it("reaps the containers of a worker whose heartbeat has stopped, whatever its pid namespace, once past the heartbeat's grace", async () => {
    const label = testServiceLabel("beats");
    const alive = new Set<string>();
    let redisAnswers = true;
    const p = provider({ serviceLabel: label, owners: { scope: "here", alive: async () => (redisAnswers ? alive : null) } });
    // A worker container restarted in place: the same host name, its pid namespace new, so its
    // predecessor's pid is read nowhere; only its heartbeat says it is gone.
    const make = (owner: string, beatsIn?: string) =>
      docker.createContainer({ Image: IMAGE, Cmd: ["sleep", "60"], Labels: { "codescout.service": label, "codescout.owner": owner, ...(beatsIn ? { "codescout.owner-beats": beatsIn } : {}) } });
    const gone = await make("worker-host:7:aa:4026530000", "here");
    const living = await make("worker-host:7:bb:4026530001", "here");
    alive.add("worker-host:7:bb:4026530001");
    // A provider whose owner never said it beats (an earlier worker, the eval CLI): left to the other rules.
    const silent = await make("worker-host:7:cc:4026530002");
    // A worker of another deployment on the same engine (another Redis or queue): its heartbeats are not here to read.
    const elsewhere = await make("worker-host:7:dd:4026530003", "there");
    const own = await p.create(spec(await tree(), "job-beats"));
    try {
      alive.add(p.ownerId);
      expect((await docker.getContainer(own.id).inspect()).Config.Labels).toMatchObject({ "codescout.owner-beats": "here" });
      // Just made: its owner may not have beaten since.
      expect(await p.reapOrphans()).toBe(0);
      vi.useFakeTimers({ toFake: ["Date"] });
      vi.setSystemTime(Date.now() + 90_000);
      // Redis cannot tell: nothing is reaped for it.
      redisAnswers = false;
      expect(await p.reapOrphans()).toBe(0);
      redisAnswers = true;
      // Its own heartbeat not among them: Redis refuses the heartbeats' writes (full, or far from
      // this worker), and the others' missing ones say nothing either.
      alive.delete(p.ownerId);
      expect(await p.reapOrphans()).toBe(0);
      alive.add(p.ownerId);
      expect(await p.reapOrphans()).toBe(1);
      expect(await exists(gone.id)).toBe(false);
      expect(await exists(living.id)).toBe(true);
      expect(await exists(silent.id)).toBe(true);
      expect(await exists(elsewhere.id)).toBe(true);
      expect(await see(own, "echo ok")).toMatch(/^ok\n/);
    } finally {
      vi.useRealTimers();
      await own.destroy();
      for (const c of [gone, living, silent, elsewhere]) await c.remove({ force: true }).catch(() => undefined);
    }
  });

  it("destroys a sandbox that exceeds its wall-clock cap and fails the call with job_timeout", async () => {
    const p = provider({ serviceLabel: testServiceLabel("cap"), jobTimeoutS: 3, softTimeoutMs: 30_000 });
    const sb = await p.create(spec(await tree(), "job-cap"));
    const err = await sb.terminal.run({ command: "sleep 20" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SandboxError);
    expect((err as SandboxError).reason).toBe("job_timeout");
    // Removal is under way when the call fails; on a loaded engine it takes a moment.
    const deadline = Date.now() + 15_000;
    while ((await exists(sb.id)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
    expect(await exists(sb.id)).toBe(false);
  });

  it("is ready before its shell answers: commands wait for the shell, and fail clearly if it never answers, while exec still works", async () => {
    const p = provider({ serviceLabel: testServiceLabel("shell") });
    const sb = await p.create(spec(await tree(), "job-shell"));
    try {
      // The first command, sent at once, waits for the shell instead of failing.
      expect(await see(sb, "echo up")).toMatch(/^up\n/);
    } finally {
      await sb.destroy();
    }
    const never = provider({ serviceLabel: testServiceLabel("noshell"), readyTimeoutMs: 1 });
    const broken = await never.create(spec(await tree(), "job-noshell"));
    try {
      expect(await broken.exec(["echo", "exec works"])).toMatchObject({ exitCode: 0, stdout: "exec works\n" });
      await expect(broken.terminal.run({ command: "ls" })).rejects.toThrow(/did not answer within 1 ms/);
    } finally {
      await broken.destroy();
    }
  });

  it("with a sandbox image whose terminal server predates exec, exec goes through the engine and the shell still works", async () => {
    // That image made here: the current one with the server's exec branch taken out.
    const tag = `codescout-sandbox-test-noexec:${process.pid}`;
    const ctx = mkdtempSync(join(tmpdir(), "codescout-noexec-"));
    writeFileSync(
      join(ctx, "Dockerfile"),
      [
        `FROM ${IMAGE}`,
        "USER 0:0",
        `RUN sed -i 's/if msg\\["op"\\] == "exec":/if False:/' /opt/codescout/terminal-server.py && ! grep -q 'if msg\\["op"\\] == "exec":' /opt/codescout/terminal-server.py`,
        "USER 10001:10001",
        "",
      ].join("\n"),
    );
    const built = spawnSync("docker", ["build", "-q", "-t", tag, ctx], { encoding: "utf8" });
    rmSync(ctx, { recursive: true, force: true });
    expect(built.status, built.stderr).toBe(0);
    const p = provider({ serviceLabel: testServiceLabel("noexec"), image: tag });
    const sb = await p.create(spec(await tree(), "job-noexec"));
    try {
      const [a, b] = await Promise.all([sb.exec(["echo", "one"]), sb.exec(["python", "-c", "import sys; print(sys.stdin.read())"], { stdin: "two" })]);
      expect(a).toMatchObject({ exitCode: 0, stdout: "one\n" });
      expect(b).toMatchObject({ exitCode: 0, stdout: "two\n" });
      expect((await sb.exec(["echo", "three"])).stdout).toBe("three\n");
      expect(await see(sb, "echo shell")).toMatch(/^shell\n/);
    } finally {
      await sb.destroy();
      spawnSync("docker", ["rmi", "-f", tag]);
    }
  });

  it("a lazy sandbox (a policy that never uses the shell) starts its shell with the first command only", async () => {
    const p = provider({ serviceLabel: testServiceLabel("lazy") });
    const t = await tree();
    const lazy = await p.create({ ...spec(t, "job-lazy"), lazyShell: true });
    const eager = await p.create(spec(t, "job-eager"));
    try {
      const bash = async (sb: typeof lazy) => (await sb.exec(["sh", "-c", "pgrep -x bash || true"])).stdout.trim() !== "";
      await see(eager, "true");
      expect(await bash(eager)).toBe(true);
      await new Promise((r) => setTimeout(r, 500));
      expect(await bash(lazy)).toBe(false);
      expect(await see(lazy, "echo up")).toMatch(/^up\n/);
      expect(await bash(lazy)).toBe(true);
    } finally {
      await Promise.all([lazy.destroy(), eager.destroy()]);
    }
  });

  it("exec runs one-off processes with byte caps and a timeout", async () => {
    const p = provider({ serviceLabel: testServiceLabel("exec") });
    const sb = await p.create(spec(await tree(), "job-exec"));
    try {
      const ok = await sb.exec(["python", "-c", "import sys; print(sys.stdin.read().upper())"], { stdin: "abc" });
      expect(ok).toMatchObject({ exitCode: 0, stdout: "ABC\n", truncated: false });
      const big = await sb.exec(["yes"], { timeoutMs: 1_000, maxOutputBytes: 1000 });
      expect(big.truncated).toBe(true);
      expect(big.stdout.length).toBe(1000);
      expect(big.timedOut).toBe(true);
    } finally {
      await sb.destroy();
    }
  });

  it("exec goes through the terminal server: output over many chunks intact, several at once, a timeout kills the process group, a missing command is named", async () => {
    const p = provider({ serviceLabel: testServiceLabel("chan") });
    const sb = await p.create(spec(await tree(), "job-chan"));
    try {
      // 300,000 two-byte characters: split across the server's 48 KiB chunks mid-character.
      const wide = sb.exec(["python", "-c", "import sys; sys.stdout.write('\u00e9' * 300000); sys.stderr.write('err')"]);
      const cwd = sb.exec(["pwd"]);
      const [w, c] = await Promise.all([wide, cwd]);
      expect(w).toMatchObject({ exitCode: 0, stderr: "err", truncated: false });
      expect(w.stdout).toBe("\u00e9".repeat(300000));
      expect(c.stdout).toBe(`${sb.workingDir}\n`);

      // A child left in the background holds the pipes; the whole group dies at the deadline.
      const t0 = Date.now();
      const bg = await sb.exec(["sh", "-c", "sleep 60 & echo started; sleep 60"], { timeoutMs: 500 });
      expect(bg).toMatchObject({ exitCode: 137, stdout: "started\n", timedOut: true });
      expect(Date.now() - t0).toBeLessThan(4_000);
      expect((await sb.exec(["sh", "-c", "pgrep -x sleep || echo none"])).stdout).toBe("none\n");

      const missing = await sb.exec(["no-such-command"]);
      expect(missing.exitCode).toBe(127);
      expect(missing.stderr).toMatch(/no-such-command/);

      // Input larger than a pipe holds reaches the process whole, written as it reads.
      const mid = await sb.exec(["wc", "-c"], { stdin: "y".repeat(1_500_000) });
      expect(mid).toMatchObject({ exitCode: 0, stdout: "1500000\n" });

      // Input too large for one request line goes through the engine instead, unchanged.
      const input = "x".repeat(3 * 1024 * 1024);
      const big = await sb.exec(["wc", "-c"], { stdin: input, timeoutMs: 20_000 });
      expect(big).toMatchObject({ exitCode: 0, stdout: `${input.length}\n` });
    } finally {
      await sb.destroy();
    }
    await expect(sb.exec(["true"])).rejects.toBeInstanceOf(SandboxError);
  });

  it("treats what a process writes on the server's stream as untrusted: an answer to no exec is dropped, a malformed line ends the sandbox", async () => {
    const p = provider({ serviceLabel: testServiceLabel("forge") });
    const sb = await p.create(spec(await tree(), "job-forge"));
    try {
      // The server is the container's first process and runs as the sandbox's user: its stdout is writable.
      const forged = JSON.stringify({ type: "exec_done", id: 999, exit_code: 0, timed_out: false, truncated: false });
      expect(await sb.exec(["sh", "-c", `printf '%s\\n' '${forged}' > /proc/1/fd/1 && echo wrote`])).toMatchObject({ exitCode: 0, stdout: "wrote\n" });
      expect((await sb.exec(["echo", "still"])).stdout).toBe("still\n");
      const bad = JSON.stringify({ type: "exec_data", id: 1, fd: 3, b64: "!!" });
      const err = await sb.exec(["sh", "-c", `printf '%s\\n' '${bad}' > /proc/1/fd/1; sleep 5`]).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SandboxError);
      expect((err as SandboxError).message).toMatch(/invalid message/);
      const deadline = Date.now() + 15_000;
      while ((await exists(sb.id)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
      expect(await exists(sb.id)).toBe(false);
    } finally {
      await sb.destroy();
    }
  });

  it("reset restarts the shell: variables and cwd are gone; `exit` restarts it too", async () => {
    const p = provider({ serviceLabel: testServiceLabel("reset") });
    const t = await tree();
    const s = spec(t, "job-reset");
    const sb = await p.create(s);
    try {
      await see(sb, "export FOO=bar && cd pkg");
      expect(await see(sb, "echo $FOO")).toMatch(/^bar\n/);
      const r = await sb.terminal.run({ command: "echo [$FOO] && pwd", reset: true });
      expect(r.parts[0]).toBe(
        `Terminal session has been reset. All previous environment variables and session state have been cleared.\n\n[]\n${s.workingDir}` +
          `\n[The command completed with exit code 0.]\n[Current working directory: ${s.workingDir}]\n[Python interpreter: /usr/bin/python]\n[Command finished with exit code 0]`,
      );
      expect((await sb.terminal.run({ command: "", reset: true })).parts).toEqual([
        "Terminal session has been reset. All previous environment variables and session state have been cleared.",
      ]);
      const ex = await sb.terminal.run({ command: "exit 3" });
      expect(ex.exitCode).toBe(3);
      expect(await see(sb, "echo again")).toMatch(/^again\n/);
    } finally {
      await sb.destroy();
    }
  });

  it("names a missing image", async () => {
    const p = provider({ serviceLabel: testServiceLabel("noimg"), image: "codescout-no-such-image:never" });
    const err = await p.create(spec(await tree(), "job-noimg")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SandboxError);
    expect((err as SandboxError).reason).toBe("image_missing");
  });
});
