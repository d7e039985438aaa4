import { describe, it, expect, afterAll } from "vitest";
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { scopedCommits, scopedTree, unscoped } from "../../src/worker/scope.js";
import { JobFailedError } from "../../src/queue/failure.js";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A tree as the cache writes one, with what a hostile repository could commit: links out of it. */
function tree(): string {
  const root = mkdtempSync(join(tmpdir(), "codescout-scope-"));
  dirs.push(root);
  const top = join(root, "tree");
  const outside = join(root, "host");
  mkdirSync(join(top, "services/api/app"), { recursive: true });
  mkdirSync(outside);
  writeFileSync(join(top, "services/api/app/main.py"), "def main():\n    pass\n");
  writeFileSync(join(top, "README.md"), "# mono\n");
  symlinkSync(outside, join(top, "escape"));
  symlinkSync("/", join(top, "services/root"));
  symlinkSync("api", join(top, "services/api-link"));
  // A submodule, as an archive of its repository writes it.
  mkdirSync(join(top, "vendor/sub"), { recursive: true });
  return top;
}

describe("a job's scope", () => {
  it("gives the sandbox a directory of the tree, and only one inside it", async () => {
    const top = tree();
    const sha = "a".repeat(40);
    expect(await scopedTree(top, "services/api", sha)).toEqual({ dir: realpathSync(join(top, "services/api")), scope: "services/api" });
    // A link to a directory of the same tree is that directory, and answered as its path.
    expect(await scopedTree(top, "services/api-link", sha)).toEqual({ dir: realpathSync(join(top, "services/api")), scope: "services/api" });
    for (const scope of ["escape", "services/root", "services/root/etc", "services/nope", "README.md", "services/api/app/main.py"]) {
      const refused = scopedTree(top, scope, sha);
      await expect(refused).rejects.toBeInstanceOf(JobFailedError);
      await expect(refused).rejects.toMatchObject({ code: "scope_not_found", detail: `options.scope: ${scope} is not a directory of the repository at aaaaaaaaaaaa` });
    }
    await expect(scopedTree(top, "vendor/sub", sha)).rejects.toMatchObject({ code: "scope_not_found", detail: expect.stringContaining("vendor/sub holds no files in the repository at aaaaaaaaaaaa (a submodule's directory is empty") });
  });

  it("answers with the repository's paths, and gives the policy what named commits changed in the scope", () => {
    expect(unscoped([{ file: "app/main.py" }], "services/api")).toEqual([{ file: "services/api/app/main.py" }]);
    // Its evidence names it as the repository does; another file's name that ends the same is left.
    const evidence = ["the issue names the file app/main.py", "the issue links to line 3 of app/main.py", "traceback frame: lib/app/main.py in main", "issue terms in its body: main"];
    expect(unscoped([{ file: "app/main.py", evidence }], "services/api")[0]!.evidence).toEqual([
      "the issue names the file services/api/app/main.py",
      "the issue links to line 3 of services/api/app/main.py",
      "traceback frame: lib/app/main.py in main",
      "issue terms in its body: main",
    ]);
    // The other files its evidence names are the scope's too: a caller's, a frame's.
    const others = [
      "called by `Job.run` (pkg/jobs.py:12), which the issue names",
      "called by `main` (line 3), which the issue names",
      "a traceback frame in app/main.py names `main`",
      "a traceback frame in a file this repository does not hold names `main`",
      // Paths with parentheses and spaces (Next.js route groups, a directory named so).
      "called by `Page` (app/(marketing)/page.tsx:12), which the issue names",
      "a traceback frame in my dir/b.py names `main`",
    ];
    expect(unscoped([{ file: "app/main.py", evidence: others }], "services/api")[0]!.evidence).toEqual([
      "called by `Job.run` (services/api/pkg/jobs.py:12), which the issue names",
      "called by `main` (line 3), which the issue names",
      "a traceback frame in services/api/app/main.py names `main`",
      "a traceback frame in a file this repository does not hold names `main`",
      "called by `Page` (services/api/app/(marketing)/page.tsx:12), which the issue names",
      "a traceback frame in services/api/my dir/b.py names `main`",
    ]);
    expect(unscoped([{ file: "app/main.py" }], undefined)).toEqual([{ file: "app/main.py" }]);
    const commits = [
      { ref: "#12", sha: "b".repeat(40), files: ["services/api/app/main.py", "services/web/x.py"], defs: [{ file: "services/api/app/main.py", name: "main" }, { file: "services/web/x.py", name: "x" }] },
      { ref: "#13", sha: "c".repeat(40), files: ["services/web/x.py"], defs: [] },
      // A sibling whose name starts like the scope is not in it.
      { ref: "#14", sha: "d".repeat(40), files: ["services/api-v2/y.py"], defs: [] },
    ];
    expect(scopedCommits(commits, "services/api")).toEqual([{ ref: "#12", sha: "b".repeat(40), files: ["app/main.py"], defs: [{ file: "app/main.py", name: "main" }] }]);
    expect(scopedCommits(commits, undefined)).toBe(commits);
  });
});
