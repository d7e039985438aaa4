import { randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig, type Config } from "../../src/config/env.js";

/** A config for one test: its own queue prefix in the real Redis and its own cache dir. */
export function testConfig(env: Record<string, string> = {}): Config {
  return loadConfig({
    REDIS_URL: process.env.REDIS_URL ?? "redis://127.0.0.1:6379",
    QUEUE_PREFIX: `cstest-${randomBytes(5).toString("hex")}`,
    REPO_CACHE_DIR: mkdtempSync(join(tmpdir(), "codescout-repos-")),
    UPLOAD_DIR: mkdtempSync(join(tmpdir(), "codescout-uploads-")),
    ALLOW_FILE_URLS: "true",
    LOG_LEVEL: "silent",
    ...env,
  });
}
