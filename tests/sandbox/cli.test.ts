import { describe, it, expect, afterAll } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Dockerode from "dockerode";
import { makeGitFixture } from "../helpers/gitFixture.js";
import { removeCacheDir } from "../helpers/tempDirs.js";
import { IMAGE } from "./helpers.js";

const fx = makeGitFixture();
const cacheDir = mkdtempSync(join(tmpdir(), "codescout-cli-cache-"));
afterAll(() => {
  fx.cleanup();
  removeCacheDir(cacheDir);
});

const cli = (input: string, extra: string[] = []) =>
  spawnSync("npx", ["tsx", "src/cli/terminal.ts", "--repo", fx.url, "--commit", "main", "--cache-dir", cacheDir, "--allow-file-urls", ...extra], {
    input,
    encoding: "utf8",
    env: { ...process.env, SANDBOX_IMAGE: IMAGE },
    timeout: 60_000,
  });

describe("terminal CLI", () => {
  it("prints one JSONL observation per call and leaves no container behind", async () => {
    const r = cli('{"command":"cat pkg/util.py"}\n{"command":"cd pkg && pwd"}\n{"command":"ls\\npwd"}\n');
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as { command: string; exit_code: number | null; observation: string });
    expect(lines).toHaveLength(3);
    expect(lines[0]!.observation).toMatch(/^def helper\(\):\n {4}return 42\n\[The command completed with exit code 0\.\]\n\[Current working directory: \/tmp\/testbed\/[0-9a-f]{8}\/tmp_codescout-fixture-\w+_cli\]/);
    expect(lines[1]!.observation).toMatch(/^\/tmp\/testbed\/[0-9a-f]{8}\/\S+\/pkg\n/);
    expect(lines[2]).toMatchObject({ exit_code: null });
    expect(lines[2]!.observation).toBe(
      "[An error occurred during execution.]\n\nCannot execute multiple commands at once.\nPlease run each command separately OR chain them into a single command via && or ;\nProvided commands:\n(1) ls\n(2) pwd",
    );
    // Other test files run sandboxes at the same time: count only the CLI's own (job "cli-<pid>").
    const left = (await new Dockerode().listContainers({ all: true, filters: { label: ["codescout.service=codescout"] } })).filter((c) =>
      (c.Labels["codescout.job"] ?? "").startsWith("cli-"),
    );
    expect(left).toEqual([]);
  });

  it("names the problem in a bad input line", () => {
    const r = cli('{"command":"ls"}\n{"command":"ls","bogus":1}\n');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/input line 2/);
    const r2 = cli("not json\n");
    expect(r2.stderr).toMatch(/input line 1 is not JSON/);
  });
});
