import { execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";

/** A real git repository made by the test, served through a file:// URL. */
export interface GitFixture {
  dir: string;
  url: string;
  /** Commit shas in creation order. */
  commits: string[];
  commit(files: Record<string, string>, message?: string): string;
  /** Runs git in the repository as its author (branches, merges); returns its output, trimmed. */
  git(...args: string[]): string;
  cleanup(): void;
}

const git = (cwd: string, ...args: string[]) =>
  execFileSync("git", args, {
    cwd,
    encoding: "utf8",
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: "t",
      GIT_AUTHOR_EMAIL: "t@example.invalid",
      GIT_COMMITTER_NAME: "t",
      GIT_COMMITTER_EMAIL: "t@example.invalid",
    },
  }).trim();

export const SAMPLE_FILES: Record<string, string> = {
  "pkg/__init__.py": "",
  "pkg/parser.py": [
    "import re",
    "",
    "",
    "class Parser:",
    '    """Parses key=value lines."""',
    "",
    "    def __init__(self, strict=False):",
    "        self.strict = strict",
    "",
    "    def parse(self, text):",
    "        out = {}",
    "        for line in text.splitlines():",
    "            key, _, value = line.partition('=')",
    "            out[key.strip()] = value.strip()",
    "        return out",
    "",
    "",
    "def parse_file(path):",
    "    with open(path) as fh:",
    "        return Parser().parse(fh.read())",
    "",
  ].join("\n"),
  "pkg/util.py": "def helper():\n    return 42\n",
  "README.md": "# sample\n",
  "tests/test_parser.py": "from pkg.parser import Parser\n\n\ndef test_parse():\n    assert Parser().parse('a=1') == {'a': '1'}\n",
};

export function makeGitFixture(files: Record<string, string> = SAMPLE_FILES): GitFixture {
  const dir = mkdtempSync(join(tmpdir(), "codescout-fixture-"));
  git(dir, "init", "-q", "-b", "main");
  const commits: string[] = [];
  const fixture: GitFixture = {
    dir,
    url: `file://${dir}`,
    commits,
    commit(changed, message = "change") {
      for (const [path, content] of Object.entries(changed)) {
        const full = join(dir, path);
        mkdirSync(dirname(full), { recursive: true });
        writeFileSync(full, content);
      }
      git(dir, "add", "-A");
      git(dir, "commit", "-q", "-m", message);
      const sha = git(dir, "rev-parse", "HEAD");
      commits.push(sha);
      return sha;
    },
    git: (...args) => git(dir, ...args),
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
  fixture.commit(files, "initial");
  return fixture;
}

/**
 * A commit abbreviated as a user most often writes it in an issue: nine characters, or more until
 * it holds a letter and a digit. The same test then reads the same kind of word every run (one
 * nine-character prefix in 70 is digits alone, which the issue reader takes for a sha only beside
 * a word about commits: tests/agent/baseline.test.ts).
 */
export function writtenSha(sha: string): string {
  let n = 9;
  while (n < sha.length && !(/[a-f]/.test(sha.slice(0, n)) && /[0-9]/.test(sha.slice(0, n)))) n++;
  return sha.slice(0, n);
}
