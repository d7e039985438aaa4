import { GitError, gitConfigEnv, runGit } from "./git.js";

/**
 * What commits named in an issue changed ("Regression in b3db6c8"), read from the host's bare
 * mirror: the reporter who bisected a bug has named the change that holds it. Only commits in
 * the tree's own past count, so a job can never learn of a later commit (its fix among them).
 * The refs are untrusted text: each is checked to be hex before git sees it, after
 * `--end-of-options`, and git runs on the local mirror only, never reaching a remote.
 */

export interface CommitChange {
  /** As the issue wrote it (often abbreviated). */
  ref: string;
  sha: string;
  /** Paths the commit changed, against its first parent. */
  files: string[];
  /** Python definitions its hunks sit in or add: the hunk header's `def`, and `def` lines changed. */
  defs: { file: string; name: string }[];
}

const REF = /^[0-9a-f]{7,40}$/;
const MAX_REFS = 8;
/** A commit that changed more than this is a merge of everything or a reformat: it points nowhere. */
export const MAX_CHANGED_FILES = 50;
const TIMEOUT_MS = 10_000;
/** Every hunk's header names the `def` or `class` before it, with Python's own funcname rule. */
const PY_FUNCNAME = gitConfigEnv([["diff.default.xfuncname", "^[ \t]*((class|(async[ \t]+)?def)[ \t].*)$"]]);

export async function commitChanges(mirror: string, base: string, refs: string[], signal?: AbortSignal): Promise<CommitChange[]> {
  const out: CommitChange[] = [];
  const seen = new Set<string>();
  for (const ref of refs.filter((r) => REF.test(r)).slice(0, MAX_REFS)) {
    const change = await one(mirror, base, ref, signal).catch((err) => {
      if (err instanceof GitError) return null;
      throw err;
    });
    if (change && !seen.has(change.sha)) {
      seen.add(change.sha);
      out.push(change);
    }
  }
  return out;
}

async function one(mirror: string, base: string, ref: string, signal?: AbortSignal): Promise<CommitChange | null> {
  const git = (args: string[], env?: Record<string, string>) => runGit(["--git-dir", mirror, ...args], { signal, timeoutMs: TIMEOUT_MS, env });
  // Ambiguous or unknown: rev-parse fails, and the ref is not a commit of this repository.
  const sha = (await git(["rev-parse", "--verify", "--quiet", "--end-of-options", `${ref}^{commit}`])).trim();
  if (!/^[0-9a-f]{40}$/.test(sha)) return null;
  // Exit 1 (not an ancestor) rejects with a GitError like any other failure.
  await git(["merge-base", "--is-ancestor", "--end-of-options", sha, base]);
  const files = (await git(["diff-tree", "-r", "--root", "--no-commit-id", "--name-only", "--no-renames", "-z", "--end-of-options", sha]))
    .split("\0")
    .filter(Boolean);
  if (files.length === 0 || files.length > MAX_CHANGED_FILES) return null;
  const diff = await git(["show", "--format=", "-U0", "--no-color", "--no-ext-diff", "--no-textconv", "--no-renames", "--end-of-options", sha, "--", "*.py"], PY_FUNCNAME);
  return { ref, sha, files, defs: hunkDefs(diff) };
}

/** The definitions a `-U0` diff's hunks sit in or change, per new-side file. */
export function hunkDefs(diff: string): CommitChange["defs"] {
  const defs: CommitChange["defs"] = [];
  const seen = new Set<string>();
  let file: string | null = null;
  const add = (name: string | undefined) => {
    if (!file || !name || seen.has(`${file}\0${name}`)) return;
    seen.add(`${file}\0${name}`);
    defs.push({ file, name });
  };
  for (const line of diff.split("\n")) {
    if (line.startsWith("+++ ")) file = line.startsWith("+++ b/") ? line.slice(6) : null;
    else if (line.startsWith("@@")) add(/^@@ [^@]*@@ (?:async\s+)?def\s+(\w+)/.exec(line)?.[1]);
    else if (line.startsWith("+") || line.startsWith("-")) add(/^[+-][ \t]*(?:async[ \t]+)?def[ \t]+(\w+)/.exec(line)?.[1]);
  }
  return defs;
}
