import { describe, it, expect, afterAll } from "vitest";
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeGitFixture } from "../helpers/gitFixture.js";
import { Snapshot } from "../../src/client/snapshot.js";

/** The work tree as git sees it, in a plain checkout and in a linked worktree (`.git` is a file there). */
const fx = makeGitFixture({ "pkg/a.py": "def a():\n    return 1\n" });
const worktree = `${fx.dir}-wt`;
afterAll(() => {
  rmSync(worktree, { recursive: true, force: true });
  fx.cleanup();
});

const indexOf = (root: string) => readFileSync(execFileSync("git", ["rev-parse", "--path-format=absolute", "--git-path", "index"], { cwd: root, encoding: "utf8" }).trim());

async function capture(root: string) {
  const before = indexOf(root);
  const snap = await Snapshot.take(root);
  try {
    return { patch: await snap.patch(), indexUntouched: before.equals(indexOf(root)) };
  } finally {
    await snap.dispose();
  }
}

describe("work tree snapshot", () => {
  it("captures edits and untracked files of a plain checkout without writing its index", async () => {
    writeFileSync(join(fx.dir, "pkg", "a.py"), "def a():\n    return 2\n");
    writeFileSync(join(fx.dir, "pkg", "b.py"), "def only_here():\n    pass\n");
    const { patch, indexUntouched } = await capture(fx.dir);
    expect(patch).toContain("+    return 2");
    expect(patch).toContain("+def only_here():");
    expect(indexUntouched).toBe(true);
  });

  it("does the same in a linked worktree, whose .git is a file", async () => {
    execFileSync("git", ["worktree", "add", "-q", "--detach", worktree], { cwd: fx.dir });
    writeFileSync(join(worktree, "pkg", "c.py"), "def in_worktree():\n    pass\n");
    const { patch, indexUntouched } = await capture(worktree);
    expect(patch).toContain("+def in_worktree():");
    expect(patch).not.toContain("only_here");
    expect(indexUntouched).toBe(true);
  });
});
