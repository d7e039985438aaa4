import { execFileSync, spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { resolve } from "node:path";
import { ms, quick, report, stats } from "./lib.js";

/**
 * What an agent pays before its call reaches the service: the start of the `localize` command
 * (its usage, so nothing else is timed) and of the stdio MCP server (until it answers
 * `initialize`), each from the bundle bin/entry.mjs keeps, from a bundle it has to build first
 * (the first start after the sources changed), and from the sources through tsx (as before
 * bundles; CODESCOUT_FROM_SOURCE=1).
 *
 *   npx tsx bench/cliStart.ts [--quick]
 */
const RUNS = quick ? 5 : 15;
const fresh = resolve("node_modules/.cache/codescout-bin-bench");
const ways: Record<string, Record<string, string>> = {
  bundle: {},
  "bundle built first": { CODESCOUT_BUNDLE_DIR: fresh },
  "from source (tsx)": { CODESCOUT_FROM_SOURCE: "1" },
};

function cli(env: Record<string, string>): number {
  const t = performance.now();
  execFileSync(process.execPath, [resolve("bin/localize.mjs"), "--help"], { env: { ...process.env, ...env }, stdio: "ignore" });
  return performance.now() - t;
}

async function mcp(env: Record<string, string>): Promise<number> {
  const t = performance.now();
  const child = spawn(process.execPath, [resolve("bin/codescout-mcp.mjs")], { env: { ...process.env, CODESCOUT_URL: "http://127.0.0.1:9", ...env }, stdio: ["pipe", "pipe", "ignore"] });
  const answered = new Promise<void>((res, rej) => {
    child.stdout.on("data", () => res());
    child.on("exit", () => rej(new Error("the MCP server exited before answering")));
  });
  child.stdin.write(`${JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "bench", version: "1" } } })}\n`);
  await answered;
  const took = performance.now() - t;
  child.kill();
  return took;
}

// A bundle for the sources as they are, so the first timed "bundle" start is a warm one.
cli({});
const results: Record<string, unknown> = {};
for (const [way, env] of Object.entries(ways)) {
  const cliMs: number[] = [];
  const mcpMs: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    if (way === "bundle built first") rmSync(fresh, { recursive: true, force: true });
    cliMs.push(cli(env));
    if (way === "bundle built first") rmSync(fresh, { recursive: true, force: true });
    mcpMs.push(await mcp(env));
  }
  const c = stats(cliMs);
  const m = stats(mcpMs);
  results[way] = { localize_help_ms: { p50: ms(c.p50), max: ms(c.max) }, mcp_initialize_ms: { p50: ms(m.p50), max: ms(m.max) } };
}
rmSync(fresh, { recursive: true, force: true });
report("cliStart", { runs: RUNS, ...results });
