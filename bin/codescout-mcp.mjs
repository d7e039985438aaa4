#!/usr/bin/env node
// The stdio MCP server (src/mcp/stdio.ts), run through tsx so it works from a checkout:
// register `node /path/to/codescout-service/bin/codescout-mcp.mjs` in your coding agent.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
const entry = fileURLToPath(new URL("../src/mcp/stdio.ts", import.meta.url));
const tsx = fileURLToPath(new URL("../node_modules/tsx/dist/loader.mjs", import.meta.url));
const child = spawn(process.execPath, ["--import", tsx, entry, ...process.argv.slice(2)], { stdio: "inherit" });
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => child.kill(signal));
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
