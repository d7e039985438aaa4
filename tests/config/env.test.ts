import { describe, it, expect } from "vitest";
import { readFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { envSchema, loadConfig, ConfigError, workerConcurrency, EPISODES_PER_GPU } from "../../src/config/env.js";

describe("configuration", () => {
  it("has defaults for a local run", () => {
    const c = loadConfig({});
    expect(c.REDIS_URL).toBe("redis://127.0.0.1:6379");
    expect(c.MAX_TURNS).toBe(10);
    expect(c.ALLOW_FILE_URLS).toBe(false);
  });

  it("runs one GPU's knee of jobs with a model server, one per core without, unless told", () => {
    expect(workerConcurrency(loadConfig({}), 2)).toBe(2);
    expect(workerConcurrency(loadConfig({}), 8)).toBe(8);
    expect(workerConcurrency(loadConfig({ MODEL_BASE_URL: "http://vllm:8000/v1" }), 2)).toBe(EPISODES_PER_GPU);
    expect(workerConcurrency(loadConfig({ MODEL_BASE_URL: "http://vllm:8000/v1", WORKER_CONCURRENCY: "40" }), 2)).toBe(40);
    expect(workerConcurrency(loadConfig({ WORKER_CONCURRENCY: "3" }), 8)).toBe(3);
  });

  it("names the variable when a value is bad", () => {
    expect(() => loadConfig({ WORKER_CONCURRENCY: "lots" })).toThrow(ConfigError);
    expect(() => loadConfig({ WORKER_CONCURRENCY: "lots" })).toThrow(/WORKER_CONCURRENCY/);
    expect(() => loadConfig({ SANDBOX_MOUNT_MODE: "nfs" })).toThrow(/SANDBOX_MOUNT_MODE/);
    expect(() => loadConfig({ ALLOW_FILE_URLS: "maybe" })).toThrow(/ALLOW_FILE_URLS/);
    expect(() => loadConfig({ REPO_SHALLOW_FIRST_AFTER_S: "never" })).toThrow(/REPO_SHALLOW_FIRST_AFTER_S/);
    expect(loadConfig({}).REPO_SHALLOW_FIRST_AFTER_S).toBe(3);
    expect(loadConfig({ REPO_SHALLOW_FIRST_AFTER_S: "off" }).REPO_SHALLOW_FIRST_AFTER_S).toBe("off");
    expect(loadConfig({ REPO_SHALLOW_FIRST_AFTER_S: "0" }).REPO_SHALLOW_FIRST_AFTER_S).toBe(0);
    // A token in a malformed value is never repeated in the message (JSON.parse's own quotes it).
    const bad = (() => {
      try {
        loadConfig({ GIT_CREDENTIALS: '{"github.com": ghp_secret123}' });
      } catch (err) {
        return (err as Error).message;
      }
      return "";
    })();
    expect(bad).toMatch(/GIT_CREDENTIALS: must be a JSON object of host name → token/);
    expect(bad).not.toContain("ghp_secret123");
    expect(loadConfig({ GIT_CREDENTIALS: '{"github.com": "ghp_x"}' }).GIT_CREDENTIALS).toBe('{"github.com": "ghp_x"}');
  });

  it("refuses at boot a value that would mean something other than it says", () => {
    const refused: Array<[Record<string, string>, RegExp]> = [
      // Number() reads these as 8080 and 8000.
      [{ API_PORT: "0x1F90" }, /API_PORT: expected a whole number from 0 to 65535, in decimal digits/],
      [{ API_PORT: "8e3" }, /API_PORT: expected a whole number/],
      [{ REPO_SHALLOW_FIRST_AFTER_S: "OFF" }, /REPO_SHALLOW_FIRST_AFTER_S: expected `off` or seconds/],
      // A worker started with these used to say Redis was unreachable, or fall back to the baseline for every job.
      [{ REDIS_URL: "http://127.0.0.1:6379" }, /REDIS_URL: expected a redis:\/\/ or rediss:\/\/ URL/],
      [{ MODEL_BASE_URL: "localhost:8000/v1" }, /MODEL_BASE_URL: expected an http:\/\/ or https:\/\/ URL/],
      // Tokens are found by the repository URL's host name: these keys matched nothing, and git went unauthenticated.
      [{ GIT_CREDENTIALS: '{"https://github.com": "ghp_x"}' }, /GIT_CREDENTIALS: .*bare host name/],
      [{ GIT_CREDENTIALS: '{"git.example.com:8443": "ghp_x"}' }, /GIT_CREDENTIALS: .*bare host name/],
      [{ GIT_CREDENTIALS: '{"github.com": 123}' }, /GIT_CREDENTIALS: .*each token a string/],
    ];
    for (const [env, message] of refused) expect(() => loadConfig(env), JSON.stringify(env)).toThrow(message);
    expect(loadConfig({ API_PORT: " 8081 " }).API_PORT).toBe(8081);
    expect(loadConfig({ REDIS_URL: "rediss://cache.internal:6380/2" }).REDIS_URL).toBe("rediss://cache.internal:6380/2");
    expect(loadConfig({ GIT_CREDENTIALS: '{"github.com": "a", "git.example.co.uk": "b", "[::1]": "c"}' }).GIT_CREDENTIALS).toContain("git.example.co.uk");
  });

  it("stops a process at boot with the variable's name", () => {
    let stderr = "";
    try {
      execFileSync("npx", ["tsx", "src/api/server.ts"], { env: { ...process.env, API_PORT: "70000" }, encoding: "utf8", stdio: "pipe" });
    } catch (err) {
      stderr = (err as { stderr: string }).stderr;
    }
    expect(stderr).toContain("API_PORT");
  });

  it("documents every variable in the README", () => {
    const readme = readFileSync("README.md", "utf8");
    const missing = Object.keys(envSchema.shape).filter((k) => !readme.includes(`\`${k}\``));
    expect(missing).toEqual([]);
  });
});
