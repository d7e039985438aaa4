import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig, type Config } from "../../src/config/env.js";
import { removeCacheDir } from "./tempDirs.js";

/** Dirs made by testConfig in this test file; tests/helpers/setup.ts removes them after it. */
const made: Array<{ cache: string; uploads: string }> = [];

export function removeTestConfigDirs(): void {
  for (const { cache, uploads } of made.splice(0)) {
    removeCacheDir(cache);
    rmSync(uploads, { recursive: true, force: true });
  }
}

/** A config for one test: its own queue prefix in the real Redis and its own cache dir. */
export function testConfig(env: Record<string, string> = {}): Config {
  const dirs = { cache: mkdtempSync(join(tmpdir(), "codescout-repos-")), uploads: mkdtempSync(join(tmpdir(), "codescout-uploads-")) };
  made.push(dirs);
  return loadConfig({
    REDIS_URL: process.env.REDIS_URL ?? "redis://127.0.0.1:6379",
    QUEUE_PREFIX: `cstest-${randomBytes(5).toString("hex")}`,
    REPO_CACHE_DIR: dirs.cache,
    UPLOAD_DIR: dirs.uploads,
    ALLOW_FILE_URLS: "true",
    LOG_LEVEL: "silent",
    ...env,
  });
}
