import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { writeFileSync, rmSync } from "node:fs";
import { randomBytes } from "node:crypto";
import Dockerode from "dockerode";
import { makeTree, provider, spec, see, testServiceLabel, type Tree } from "./helpers.js";
import type { Sandbox } from "../../src/sandbox/types.js";
import type { DockerSandboxProvider } from "../../src/sandbox/docker.js";

/** Each lock-down promise, proven against the real engine from inside the sandbox. */

const docker = new Dockerode();
const out = (text: string) => text.slice(0, text.indexOf("\n[The command"));

describe.each(["bind", "copy"] as const)("lock-down (%s mode)", (mode) => {
  let tree: Tree;
  let p: DockerSandboxProvider;
  let sb: Sandbox;
  beforeAll(async () => {
    tree = await makeTree();
    p = provider({ serviceLabel: testServiceLabel(`lock-${mode}`), mountMode: mode, memoryMb: 256, pidsLimit: 64, tmpfsMb: 16 });
    sb = await p.create(spec(tree, `lock-${mode}`));
  });
  afterAll(async () => {
    await sb?.destroy();
    tree?.cleanup();
  });

  it("runs as uid 10001 with no capabilities and no_new_privs", async () => {
    expect(out(await see(sb, "id -u"))).toBe("10001");
    const status = out(await see(sb, "grep -E '^(CapEff|CapPrm|CapBnd|NoNewPrivs)' /proc/self/status"));
    expect(status).toMatch(/CapEff:\s+0000000000000000/);
    expect(status).toMatch(/CapBnd:\s+0000000000000000/);
    expect(status).toMatch(/NoNewPrivs:\s+1/);
  });

  it("has no network", async () => {
    expect(out(await see(sb, "ls /sys/class/net"))).toBe("lo");
    const py = await see(sb, "python -c \"import socket; socket.create_connection(('1.1.1.1', 80), timeout=2)\" 2>&1 | tail -1");
    expect(py).toMatch(/Network is unreachable|OSError/);
  });

  it("keeps the root filesystem and the repository read-only", async () => {
    expect(await see(sb, "touch /etc/x 2>&1; touch /usr/bin/x 2>&1")).toMatch(/Read-only file system/);
    const repo = await see(sb, "echo hi > README.md; touch new.py; rm -f pkg/util.py; echo $?");
    expect(repo).toMatch(/Read-only file system|Permission denied/);
    expect(await see(sb, "cat pkg/util.py")).toContain("return 42");
  });

  it("caps /tmp", async () => {
    const r = await see(sb, "dd if=/dev/zero of=/tmp/fill bs=1M count=64 2>&1; rm -f /tmp/fill");
    expect(r).toMatch(/No space left on device/);
  });

  it("contains a fork bomb and keeps working afterwards", async () => {
    // A sandbox of its own: bomb processes can outlive the test and would starve the others' forks.
    const bombBox = await p.create(spec(tree, `lock-${mode}-bomb`));
    try {
      const r = await bombBox.terminal.run({ command: "bash -c ':(){ :|:& };:' 2>&1 | head -2; sleep 1", timeout: 8 });
      expect(r.parts.join("")).toMatch(/fork|Resource temporarily unavailable|retry|exit code/);
      const pids = (await docker.getContainer(bombBox.id).inspect()).HostConfig.PidsLimit;
      expect(pids).toBe(64);
      // Cleaned up as an agent would: interrupt, kill what is left, ask again. On a loaded host the
      // dying bomb can hold the shell for some seconds (the previous command "is still running").
      let alive = "";
      for (let i = 0; i < 10 && !/^alive(\n|$)/.test(alive); i++) {
        await bombBox.terminal.run({ command: "C-c", is_input: true }).catch(() => undefined);
        await bombBox.exec(["pkill", "-KILL", "-f", ":\\|:"], { timeoutMs: 5_000 }).catch(() => undefined);
        alive = out(await see(bombBox, "echo alive", { timeout: 5 }).catch(() => ""));
      }
      // The shell still answers; dying bomb processes may still complain on the terminal.
      expect(alive).toMatch(/^alive(\n|$)/);
    } finally {
      await bombBox.destroy();
    }
    // The other sandboxes on the engine are untouched.
    expect(out(await see(sb, "echo still-here"))).toBe("still-here");
  });

  it("contains a memory bomb (OOM kills the hog, not the host)", async () => {
    const r = await sb.terminal.run({ command: "python -c \"x = bytearray(1024*1024*1024)\"; echo code=$?", timeout: 20 });
    const text = r.parts.join("");
    expect(text).toMatch(/MemoryError|Killed|code=137|code=1/);
    const info = await docker.getContainer(sb.id).inspect();
    expect(info.HostConfig.Memory).toBe(256 * 1024 * 1024);
    expect(info.HostConfig.MemorySwap).toBe(256 * 1024 * 1024);
  });

  it("yields its CPU to other sandboxes while asked to, and takes back the same share", async () => {
    // The kernel's own figure, read inside: cgroup v1's shares, or v2's weight.
    const share = async () => out((await sb.terminal.run({ command: "cat /sys/fs/cgroup/cpu/cpu.shares 2>/dev/null || cat /sys/fs/cgroup/cpu.weight" })).parts.join("")).trim();
    const normal = await share();
    expect((await docker.getContainer(sb.id).inspect()).HostConfig.CpuShares).toBe(1024);
    await sb.yieldCpu(true);
    const yielding = await share();
    expect(Number(yielding)).toBeLessThan(Number(normal) / 20);
    await sb.yieldCpu(false);
    expect(await share()).toBe(normal);
  });

  it("cannot see the docker socket or host files", async () => {
    const marker = `codescout-host-secret-${randomBytes(4).toString("hex")}`;
    writeFileSync(`/tmp/${marker}`, "secret");
    try {
      const r = await see(sb, `ls -la /var/run/docker.sock /run/docker.sock 2>&1; find / -name '${marker}*' 2>/dev/null | head; echo done`);
      expect(r).not.toContain(marker);
      expect(r).toMatch(/No such file or directory/);
    } finally {
      rmSync(`/tmp/${marker}`, { force: true });
    }
  });
});

describe("floods, stuck commands and background processes", () => {
  let tree: Tree;
  let sb: Sandbox;
  beforeAll(async () => {
    tree = await makeTree();
    const p = provider({ serviceLabel: testServiceLabel("flood"), softTimeoutMs: 1_500 });
    sb = await p.create(spec(tree, "flood"));
  });
  afterAll(async () => {
    await sb?.destroy();
    tree?.cleanup();
  });

  it("a `yes` flood returns a capped observation while host memory stays bounded", async () => {
    const before = process.memoryUsage().rss;
    const r = await sb.terminal.run({ command: "yes 0123456789abcdef", timeout: 6 });
    expect(r.exitCode).toBe(-1);
    expect(r.parts[0]!.length).toBe(30_000);
    expect(r.parts[0]).toContain("<response clipped>");
    expect(r.parts[0]).toContain("[The command timed out after 6.0 seconds.");
    expect(process.memoryUsage().rss - before).toBeLessThan(200 * 1024 * 1024);
    const cc = await sb.terminal.run({ command: "C-c", is_input: true });
    expect(cc.exitCode).toBe(130);
    expect(out(await see(sb, "echo alive"))).toBe("alive");
  });

  it("the 10,000-line history shows the reference's prefix", async () => {
    const r = await see(sb, "seq 1 12000");
    expect(r).toMatch(/^\[Previous command outputs are truncated\. Showing the last 100\d\d lines of the output below\.\]\n/);
    expect(r).toContain("\n12000\n[The command completed with exit code 0.]");
  });

  it("`sleep infinity` hits the soft timeout and can be interrupted", async () => {
    const r = await sb.terminal.run({ command: "sleep infinity" });
    expect(r.exitCode).toBe(-1);
    expect(r.parts[0]).toContain("no new output after 1.5 seconds");
    expect((await sb.terminal.run({ command: "C-c", is_input: true })).exitCode).toBe(130);
  });

  it("a background process left running does not block the shell", async () => {
    const r = await see(sb, "nohup sleep 1000 >/dev/null 2>&1 &");
    expect(r).toMatch(/^\[1\] \d+\n\[The command completed with exit code 0\.\]/);
    expect(out(await see(sb, "echo next"))).toBe("next");
  });
});
