import { describe, it, expect, afterEach } from "vitest";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RepoCache } from "../../src/repos/cache.js";
import { commitChanges, hunkDefs } from "../../src/repos/history.js";
import { identifierExcept } from "../../src/repos/funcnames.js";
import { makeGitFixture, SAMPLE_FILES } from "../helpers/gitFixture.js";
import { removeCacheDir } from "../helpers/tempDirs.js";

const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((f) => f()));

function setup() {
  const fx = makeGitFixture();
  const dir = mkdtempSync(join(tmpdir(), "codescout-cache-"));
  cleanups.push(() => fx.cleanup(), () => removeCacheDir(dir));
  return { fx, cache: new RepoCache({ dir, allowFileUrls: true }) };
}

const parser = SAMPLE_FILES["pkg/parser.py"]!;

const ROUTER_TS = [
  "export class Router {",
  "  private routes: string[] = [];",
  "",
  "  find(path: string): string | undefined {",
  "    if (path === '') {",
  "      return undefined;",
  "    }",
  "    return this.routes.find((r) => r === path);",
  "  }",
  "}",
  "",
].join("\n");
const SERVER_GO = ["package server", "", "func (s *Server) Serve(addr string) error {", "\tif addr == \"\" {", "\t\treturn nil", "\t}", "\treturn listen(addr)", "}", ""].join("\n");

describe("what the commits an issue names changed", () => {
  it("builds a regular expression for identifiers other than given words, which git's POSIX rules cannot say with a lookahead", () => {
    const re = new RegExp(`^${identifierExcept(["if", "for", "foreach", "while"])}$`);
    const taken = ["if", "for", "foreach", "while", "i", "fo", "fore", "iff", "format", "forEach", "whilst", "_if", "$el"].filter((w) => re.test(w));
    expect(taken).toEqual(["i", "fo", "fore", "iff", "format", "forEach", "whilst", "_if", "$el"]);
  });

  it("names the definitions a commit's hunks sit in, in TypeScript and Go too (not the `if` above them)", async () => {
    const { fx, cache } = setup();
    fx.commit({ "src/router.ts": ROUTER_TS, "server/server.go": SERVER_GO }, "add router and server");
    const culprit = fx.commit(
      { "src/router.ts": ROUTER_TS.replace("this.routes.find((r) => r === path)", "this.routes.find((r) => r.startsWith(path))"), "server/server.go": SERVER_GO.replace("listen(addr)", "listen(addr + \":80\")") },
      "match prefixes",
    );
    const tree = await cache.prepare({ url: fx.url, commit: culprit });
    const [found] = await cache.namedCommits(tree, [culprit.slice(0, 8)]);
    expect(found!.defs).toEqual([
      { file: "src/router.ts", name: "find" },
      { file: "server/server.go", name: "Serve" },
    ]);
  });

  it("reads a named commit's files and the definitions its hunks sit in, from the tree's own past only", async () => {
    const { fx, cache } = setup();
    const culprit = fx.commit({ "pkg/parser.py": parser.replace("value.strip()", "value.rstrip()"), "pkg/util.py": "def helper():\n    return 43\n" }, "tidy");
    const base = fx.commit({ "README.md": "# sample v2\n" }, "docs");
    const later = fx.commit({ "pkg/util.py": "def helper():\n    return 44\n" }, "the fix, after the issue");
    const tree = await cache.prepare({ url: fx.url, commit: base });

    const found = await cache.namedCommits(tree, [culprit.slice(0, 7), later.slice(0, 10), "deadbeef1234", base]);
    // The later commit is not in the tree's past, and an unknown one is no commit at all.
    expect(found.map((c) => c.sha)).toEqual([culprit, base]);
    expect(found[0]).toMatchObject({ ref: culprit.slice(0, 7), files: ["pkg/parser.py", "pkg/util.py"] });
    expect(found[0]!.defs).toEqual([
      { file: "pkg/parser.py", name: "parse" },
      { file: "pkg/util.py", name: "helper" },
    ]);
    expect(found[1]).toMatchObject({ files: ["README.md"], defs: [] });
  });

  it("finds the commits whose messages mention an issue's number, a merged pull request's whole change among them, in the past only", async () => {
    const { fx, cache } = setup();
    const related = fx.commit({ "pkg/util.py": "def helper():\n    return 43\n" }, "Fixed #4242 -- helper returns the answer");
    fx.commit({ "README.md": "# about #42424\n" }, "Mentions #42424, a longer number");
    // A pull request merged with a merge commit: its own commits do not say its number.
    fx.git("checkout", "-q", "-b", "feature");
    fx.commit({ "pkg/parser.py": parser.replace("out = {}", "out = dict()") }, "use dict()");
    fx.git("checkout", "-q", "main");
    fx.git("merge", "-q", "--no-ff", "-m", "Merge pull request #77 from someone/feature", "feature");
    const base = fx.git("rev-parse", "HEAD");
    fx.commit({ "pkg/util.py": "def helper():\n    return 44\n" }, "Refs #4242 -- after the issue");
    const tree = await cache.prepare({ url: fx.url, commit: base });

    // Another project's #4242 (a cross-reference, a link to its tracker) is not this one's; the
    // same project under an owner it had before is.
    const found = await cache.namedCommits(tree, ["other/project#4242", `former-owner/${tree.name.toUpperCase()}#4242`, "#77", "#5"]);
    expect(found.map((c) => [c.ref, c.files])).toEqual([
      [`former-owner/${tree.name.toUpperCase()}#4242`, ["pkg/util.py"]],
      ["#77", ["pkg/parser.py"]],
    ]);
    expect(found[0]!.sha).toBe(related);
    expect(found[1]!.defs).toEqual([{ file: "pkg/parser.py", name: "parse" }]);
    // A tracker's address without owner and name: the project's own when its host names the project.
    const viaTracker = await cache.namedCommits(tree, ["bugs.ruby-lang.org#4242", `code.${tree.name}.org#77`]);
    expect(viaTracker.map((c) => [c.ref, c.files])).toEqual([[`code.${tree.name}.org#77`, ["pkg/parser.py"]]]);
  });

  it("reads every number in one walk of the history: each gets its own newest three commits", async () => {
    const { fx, cache } = setup();
    const shas = [1, 2, 3, 4].map((i) => fx.commit({ "pkg/util.py": `def helper():\n    return ${i}\n` }, `Refs #31 -- step ${i}`));
    const other = fx.commit({ "pkg/parser.py": parser.replace("out = {}", "out = dict()") }, "Tidy\n\nThe body says it: closes #32.");
    const tree = await cache.prepare({ url: fx.url, commit: other });
    const found = await cache.namedCommits(tree, ["#31", "#32", "#33"]);
    expect(found.map((c) => [c.ref, c.sha])).toEqual([
      ["#31", shas[3]],
      ["#31", shas[2]],
      ["#31", shas[1]],
      ["#32", other],
    ]);
  });

  it("reads only a branch's own commits after a given one: the commits a patch carries, which no remote's history holds", async () => {
    const { fx } = setup();
    const pushedFix = fx.commit({ "pkg/util.py": "def helper():\n    return 2\n" }, "Refs #31 -- on the remote");
    const pushed = fx.commit({ "README.md": "# pushed\n" }, "docs");
    const local = fx.commit({ "pkg/parser.py": parser.replace("out = {}", "out = dict()") }, "Refs #31 -- the local one");
    const head = fx.commit({ "README.md": "# local\n" }, "docs, locally");
    const gitDir = join(fx.dir, ".git");
    const read = (refs: string[], after?: string) => commitChanges(gitDir, head, refs, { owner: "", name: "r" }, undefined, after ? { after } : {});
    // Without `after`, the whole past of HEAD: both commits mentioning #31, and a remote's commit by its sha.
    expect((await read(["#31", pushedFix.slice(0, 9)])).map((c) => c.sha)).toEqual([local, pushedFix]);
    // After the remote's commit: the local commit only, by its number or its sha; the remote's, by neither.
    expect((await read(["#31", pushedFix.slice(0, 9)], pushed)).map((c) => [c.ref, c.sha, c.files])).toEqual([["#31", local, ["pkg/parser.py"]]]);
    expect((await read([local.slice(0, 9)], pushed)).map((c) => c.sha)).toEqual([local]);
    // A value that is not a full sha is not passed to git as a revision: it is ignored.
    expect((await read(["#31"], "--all")).map((c) => c.sha)).toEqual([local, pushedFix]);
  });

  it("passes nothing but hex and numbers to git, and answers nothing for a tree without history", async () => {
    const { fx, cache } = setup();
    const tree = await cache.prepare({ url: fx.url, commit: fx.commits[0]! });
    // Refs that would be options, revision expressions or other objects' names.
    expect(await cache.namedCommits(tree, ["--output=/tmp/x", "HEAD~1", `${fx.commits[0]}:pkg`, "main", "#1 --all", "#12|.", "#"])).toEqual([]);
    expect(await cache.namedCommits({ ...tree, url: "upload:ab", sha: "a".repeat(64) }, [fx.commits[0]!.slice(0, 8)])).toEqual([]);
  });

  it("reads the def a hunk sits in, defs it adds or removes, and nothing from deleted files", () => {
    const diff = [
      "diff --git a/pkg/a.py b/pkg/a.py",
      "--- a/pkg/a.py",
      "+++ b/pkg/a.py",
      "@@ -10,2 +10,2 @@ def outer(x):",
      "-    return 1",
      "+    return 2",
      "@@ -30 +30,3 @@ class Thing:",
      "+    async def fresh(self):",
      "+        pass",
      "diff --git a/pkg/gone.py b/pkg/gone.py",
      "--- a/pkg/gone.py",
      "+++ /dev/null",
      "@@ -1,2 +0,0 @@",
      "-def gone():",
    ].join("\n");
    expect(hunkDefs(diff)).toEqual([
      { file: "pkg/a.py", name: "outer" },
      { file: "pkg/a.py", name: "fresh" },
    ]);
  });
});
