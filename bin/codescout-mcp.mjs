#!/usr/bin/env node
// The stdio MCP server (src/mcp/stdio.ts), so it works from a checkout:
// register `node /path/to/codescout-service/bin/codescout-mcp.mjs` in your coding agent.
import { start } from "./entry.mjs";
await start("src/mcp/stdio.ts", "codescout-mcp");
