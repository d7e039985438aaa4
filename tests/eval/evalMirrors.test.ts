import { describe, it, expect, afterAll } from "vitest";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { makeGitFixture } from "../helpers/gitFixture.js";

/** scripts/eval-mirrors.sh on repositories the test makes: history where it can, shallow where it cannot. */

const dir = mkdtempSync(join(tmpdir(), "codescout-evalmirrors-"));
const fx = makeGitFixture({ "pkg/a.py": "A = 1\n", "pkg/old.py": "OLD = 1\n" });
fx.commit({ "pkg/a.py": "A = 2\n", "pkg/old.py": "OLD = 2\n" }, "second");
fx.commit({ "pkg/a.py": "A = 3\n" }, "third");
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  fx.cleanup();
});

const script = resolve("scripts/eval-mirrors.sh");
const bench = join(dir, "bench.jsonl");
writeFileSync(bench, `${JSON.stringify({ repo: "local/fixture", base_commit: fx.commits[2] })}\n`);
const run = (source: string, dest: string, env: Record<string, string> = {}) =>
  execFileSync("bash", [script, bench, source, dest], { env: { ...process.env, ...env }, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
const git = (repo: string, ...args: string[]) => execFileSync("git", ["--git-dir", repo, ...args], { encoding: "utf8" }).trim();

describe("eval-mirrors.sh", () => {
  it("clones a complete repository whole, so the eval sees the history the service would", () => {
    const dest = join(dir, "whole");
    run(fx.dir, dest);
    const out = join(dest, "local+fixture.git");
    expect(git(out, "rev-list", "--count", `refs/heads/base/${fx.commits[2]}`)).toBe("3");
    expect(existsSync(join(out, "shallow"))).toBe(false);
  });

  it("fetches the base commit alone with HISTORY=0, and where the copy lacks objects of older commits", () => {
    const shallow = join(dir, "shallow");
    run(fx.dir, shallow, { HISTORY: "0" });
    expect(git(join(shallow, "local+fixture.git"), "rev-list", "--count", `refs/heads/base/${fx.commits[2]}`)).toBe("1");

    // A copy like the search tool's snapshots: an old blob missing, so it cannot be cloned whole.
    const copy = join(dir, "copy");
    // A local clone links the fixture's loose objects: removing one here leaves the fixture whole.
    execFileSync("git", ["clone", "-q", fx.dir, copy]);
    const oldBlob = execFileSync("git", ["-C", copy, "rev-parse", `${fx.commits[0]}:pkg/old.py`], { encoding: "utf8" }).trim();
    const loose = join(copy, ".git", "objects", oldBlob.slice(0, 2), oldBlob.slice(2));
    expect(existsSync(loose)).toBe(true);
    unlinkSync(loose);
    const dest = join(dir, "fallback");
    run(copy, dest);
    const out = join(dest, "local+fixture.git");
    expect(git(out, "rev-list", "--count", `refs/heads/base/${fx.commits[2]}`)).toBe("1");
    expect(git(out, "show", `${fx.commits[2]}:pkg/a.py`)).toBe("A = 3");
  });

  it("fails, naming how many, when a base commit cannot be fetched, after making the others", () => {
    const dest = join(dir, "missing");
    const both = join(dir, "both.jsonl");
    writeFileSync(both, [fx.commits[2], "f".repeat(40)].map((sha) => JSON.stringify({ repo: "local/fixture", base_commit: sha })).join("\n") + "\n");
    let stderr = "";
    let status = 0;
    try {
      execFileSync("bash", [script, both, fx.dir, dest], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, HISTORY: "0" } });
    } catch (err) {
      ({ stderr, status } = err as { stderr: string; status: number });
    }
    expect(status).toBe(1);
    expect(stderr).toContain("eval-mirrors: 1 base commits could not be fetched");
    expect(git(join(dest, "local+fixture.git"), "rev-parse", `refs/heads/base/${fx.commits[2]}`)).toBe(fx.commits[2]);
  });
});
