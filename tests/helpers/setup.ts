import { afterAll } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { removeTestConfigDirs } from "./config.js";

// The client's cache (snapshots, trees sent) goes to a dir of this test file, never the user's;
// child processes (the CLI, the stdio MCP server) inherit it.
const clientCache = mkdtempSync(join(tmpdir(), "codescout-client-cache-"));
process.env.CODESCOUT_CACHE_DIR = clientCache;
afterAll(() => rmSync(clientCache, { recursive: true, force: true }));

// Registered before each test file's own afterAll, so it runs after them (hooks run as a
// stack): the file's worker processes are stopped before their cache dirs go.
afterAll(removeTestConfigDirs);
