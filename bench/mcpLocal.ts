import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { CallToolResultSchema } from "@modelcontextprotocol/sdk/types.js";
import { startProcess } from "../tests/helpers/processes.js";
import { dropPrefix } from "../tests/helpers/redis.js";
import { removeCacheDir } from "../tests/helpers/tempDirs.js";
import { ms, quick, report, stats } from "./lib.js";

/**
 * A coding agent's call, end to end: the stdio MCP server (bin/codescout-mcp.mjs, as an agent
 * starts it) localizes in a local checkout with an uncommitted edit, through the real API and
 * worker processes, Redis and Docker, with the baseline policy. Warm: the mirror and the
 * patched tree exist after the first call; each call asks about another issue, so none is
 * answered from the result cache. Timed from the tool call to its result.
 *
 *   npx tsx bench/mcpLocal.ts [--quick] [--pause-ms N]
 * The checkout is Debian's python3-requests made into a git repository with a file:// remote.
 */
const work = "/tmp/codescout-bench-mcp";
rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });
// The checkout, uploads, cache and its trees (on the host's tmpfs) go however the run ends.
try {
  const src = "/usr/lib/python3/dist-packages/requests";
  if (!existsSync(src)) execFileSync("apt-get", ["install", "-y", "-qq", "python3-requests"], { stdio: "ignore" });
  const seed = join(work, "seed");
  mkdirSync(seed);
  execFileSync("cp", ["-r", src, join(seed, "requests")]);
  execFileSync("bash", ["-c", `find ${seed} -name __pycache__ -prune -exec rm -rf {} +`]);
  const g = (cwd: string, ...args: string[]) => execFileSync("git", ["-c", "user.name=b", "-c", "user.email=b@localhost", ...args], { cwd, encoding: "utf8" });
  g(seed, "init", "-q", "-b", "main");
  g(seed, "add", "-A");
  g(seed, "commit", "-qm", "requests");
  g(work, "clone", "-q", "--bare", seed, join(work, "origin.git"));
  const checkout = join(work, "checkout");
  g(work, "clone", "-q", join(work, "origin.git"), checkout);
  // The uncommitted edit: a helper that exists only in the work tree.
  writeFileSync(join(checkout, "requests", "retry_budget.py"), "def remaining_budget(attempts, limit):\n    return max(0, limit - attempts)\n");

  const port = 18500 + Math.floor(Math.random() * 400);
  const env = {
    QUEUE_PREFIX: `bench-mcp-${process.pid}`,
    REPO_CACHE_DIR: join(work, "repos"),
    UPLOAD_DIR: join(work, "uploads"),
    ALLOW_FILE_URLS: "true",
    API_PORT: String(port),
    LOG_LEVEL: "warn",
    MODEL_BASE_URL: "",
  };
  const procs = (["src/worker/main.ts", "src/api/server.ts"] as const).map((entry) => startProcess(entry, env));
  const base = `http://127.0.0.1:${port}`;
  const client = new Client({ name: "bench", version: "1" });
  const issues = [
    "Session.request ignores the timeout passed in the adapter configuration",
    "remaining_budget returns a negative number when attempts exceed the limit",
    "Response.iter_content raises a TypeError for decode_unicode with no encoding",
    "PreparedRequest.prepare_body sets Content-Length for generators",
    "get_netrc_auth fails when HOME is unset",
    "HTTPAdapter.send does not close the connection on a ProxyError",
    "RequestsCookieJar.set drops the domain of a morsel cookie",
    "should_bypass_proxies ignores no_proxy entries with ports",
    "super_len miscounts files opened in text mode",
    "merge_setting keeps None values from the request settings",
    "Session.resolve_redirects strips the Authorization header on same-host redirects",
    "guess_json_utf misdetects UTF-32 with a BOM",
  ];
  const times: number[] = [];
  const phases: Array<Record<string, number>> = [];
  const answers: string[] = [];
  const rounds = quick ? 4 : 12;
  // An agent reads what it got before it asks again: --pause-ms leaves the service idle between calls.
  const pauseMs = process.argv.includes("--pause-ms") ? Number(process.argv[process.argv.indexOf("--pause-ms") + 1]) : 0;
  // However the calls end, the API, the worker and the MCP server stop and the run's keys go:
  // a child left behind runs on, re-parented, with no one to see it.
  try {
    for (let i = 0; i < 200; i++) {
      if (await fetch(`${base}/readyz`).then((r) => r.ok, () => false)) break;
      await new Promise((r) => setTimeout(r, 250));
    }

    await client.connect(
      new StdioClientTransport({
        command: process.execPath,
        args: [resolve("bin/codescout-mcp.mjs")],
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root", CODESCOUT_URL: base, CODESCOUT_CACHE_DIR: join(work, "client-cache") },
      }),
    );
    for (let i = 0; i < rounds; i++) {
      if (i > 0 && pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
      const t = performance.now();
      const result = await client.callTool({ name: "localize", arguments: { issue: issues[i % issues.length]!, path: checkout, policy: "baseline" } }, CallToolResultSchema);
      const elapsed = performance.now() - t;
      const out = result.structuredContent as { status: string; locations: Array<{ file: string; function_name?: string }>; timings: Record<string, number> };
      if (out.status !== "succeeded") throw new Error(`call ${i}: ${JSON.stringify(result.content)}`);
      // The first call makes the mirror and the patched tree: it is the cold one.
      if (i > 0) {
        times.push(elapsed);
        phases.push({ ...out.timings, outside_the_job_ms: elapsed - out.timings.total_ms! });
      }
      answers.push(`${issues[i % issues.length]!.slice(0, 40)} → ${out.locations.slice(0, 2).map((l) => `${l.file}${l.function_name ? `:${l.function_name}` : ""}`).join(", ")}`);
    }
  } finally {
    await client.close();
    await Promise.all(procs.map((p) => p.stop()));
    await dropPrefix(env.QUEUE_PREFIX);
  }

  const s = stats(times);
  report("mcpLocal", {
    checkout: "Debian python3-requests as a git checkout, file:// remote, one uncommitted new file",
    policy: "baseline",
    calls_timed: times.length,
    pause_between_calls_ms: pauseMs,
    tool_call_to_result_ms: { p50: ms(s.p50), p95: ms(s.p95), max: ms(s.max) },
    phases_p50_ms: Object.fromEntries(Object.keys(phases[0] ?? {}).map((k) => [k, ms(stats(phases.map((p) => p[k]!)).p50)])),
    load_average: (await import("node:os")).loadavg().map((x) => Math.round(x * 100) / 100),
    target_p50_ms: 1500,
    answers,
  });
} finally {
  removeCacheDir(join(work, "repos"));
  rmSync(work, { recursive: true, force: true });
}
