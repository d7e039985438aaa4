import pLimit from "p-limit";
import { GitError, runGit } from "./git.js";
import { FUNCNAME_RULES, pyChanged, pyHeader } from "./funcnames.js";

/**
 * What commits named in an issue changed, read from the host's bare mirror: the commit a
 * reporter who bisected names ("Regression in b3db6c8"), and the commits whose messages mention
 * an issue or pull request it names ("see #30408": "Fixed #30408 --", "(#30408)"): the code
 * around a related fix. Only commits in the tree's own past count, so a job can never learn of
 * a later commit (its fix among them). The refs are untrusted text: each is checked to be hex or
 * `#` and digits before git sees it, after `--end-of-options`, and git runs on the local mirror
 * only, never reaching a remote.
 */

export interface CommitChange {
  /** As the issue wrote it: a sha (often abbreviated), or `#123` (`owner/name#123`, `host#123`) for a commit whose message mentions it. */
  ref: string;
  sha: string;
  /** Paths the commit changed (a merge: against its first parent). */
  files: string[];
  /** Definitions its hunks sit in or add: the hunk header's function or class, and declarations changed. */
  defs: { file: string; name: string }[];
}

const SHA_REF = /^[0-9a-f]{7,40}$/;
const FULL_SHA = /^[0-9a-f]{40}$/;
/** `#123`, `owner/name#123` from a cross-reference or an issue's address, or `host#123` from a tracker's address. */
const NUMBER_REF = /^(?:([\w.-]+)\/([\w.-]+)|([\w-]+(?:\.[\w-]+)+))?#([0-9]{2,7})$/;
/** Words of a tracker's host (of four letters or more: shorter ones are not compared) that say nothing of whose it is. */
const HOST_WORDS = new Set(["code", "bugs", "issues", "tracker", "trac", "jira", "redmine", "project", "projects", "github", "gitlab"]);
const MAX_REFS = 8;
/** Per number, the newest commits whose messages mention it. */
const PER_NUMBER = 3;
/** A commit that changed more than this is a merge of everything or a reformat: it points nowhere. */
export const MAX_CHANGED_FILES = 50;
const TIMEOUT_MS = 10_000;
/** Commits read at once. */
const COMMIT_READERS = 4;

type Git = (args: string[], env?: Record<string, string>) => Promise<string>;

/**
 * `repo` is the tree's own owner and name: a number written as another project's
 * (`numpy/numpy#123`, a link to its tracker) is that project's issue, and is skipped. Only the
 * name is compared: projects move between owners (`kennethreitz/requests` is `psf/requests`
 * now), and a fork keeps its project's numbers. With `after` (a full sha), only the commits
 * between it and `base` count: a local branch's own, which a remote's history lacks.
 */
export async function commitChanges(
  mirror: string,
  base: string,
  refs: string[],
  repo: { owner: string; name: string },
  signal?: AbortSignal,
  options: { after?: string } = {},
): Promise<CommitChange[]> {
  const git: Git = (args, env) => runGit(["--git-dir", mirror, ...args], { signal, timeoutMs: TIMEOUT_MS, env });
  // A git failure (unknown, ambiguous, not an ancestor, a broken mirror) means no answer for that ref.
  const orNull = <T>(p: Promise<T>) =>
    p.catch((err) => {
      if (err instanceof GitError) return null;
      throw err;
    });
  const name = repo.name.toLowerCase();
  // A tracker's host is the project's own when one of its words holds the name or the name holds
  // it (code.djangoproject.com for django, bugs.python.org for cpython); bugs.ruby-lang.org's
  // `/issues/10789` is Ruby's, and django's own #10789 is another ticket.
  const ownHost = (host: string) =>
    name.length >= 3 && host.split(/[.-]/).some((w) => w.length >= 4 && !HOST_WORDS.has(w) && (w.includes(name) || name.includes(w)));
  // Each ref read once: a sha, or a number and whose it says it is.
  const ours = ([, , repoName, host]: RegExpExecArray) => (host ? ownHost(host.toLowerCase()) : !repoName || repoName.toLowerCase() === name);
  const kept = refs
    .map((ref) => ({ ref, m: NUMBER_REF.exec(ref) }))
    .filter(({ ref, m }) => (m ? ours(m) : SHA_REF.test(ref)))
    .slice(0, MAX_REFS)
    .map(({ ref, m }) => ({ ref, number: m?.[4] }));
  const numbers = [...new Set(kept.flatMap((k) => (k.number ? [k.number] : [])))];
  const after = options.after !== undefined && FULL_SHA.test(options.after) ? options.after : undefined;
  const mentioning = numbers.length ? orNull(commitsMentioning(git, base, numbers, after)) : Promise.resolve(null);
  const shasOf = await Promise.all(kept.map(({ ref, number }) => (number ? mentioning.then((m) => m?.get(number)) : orNull(commitOf(git, ref)))));
  // Each commit once, under the first ref that led to it, in the refs' order.
  const firstRef = new Map<string, string>();
  kept.forEach(({ ref }, i) => {
    for (const sha of shasOf[i] ?? []) if (!firstRef.has(sha)) firstRef.set(sha, ref);
  });
  const candidates = [...firstRef].map(([sha, ref]) => ({ ref, sha }));
  // A commit costs a few git processes, each waiting on the disk or a core: read a few commits
  // at once rather than one after another (a ticket's three commits on django: ~0.3 s less).
  const limit = pLimit(COMMIT_READERS);
  const read = await Promise.all(
    candidates.map(({ ref, sha }) =>
      limit(async (): Promise<CommitChange | null> => {
        // Whatever the issue or a message names, only the tree's own past counts (exit 1 rejects).
        if ((await orNull(git(["merge-base", "--is-ancestor", "--end-of-options", sha, base]))) === null) return null;
        if (after && (await orNull(git(["merge-base", "--is-ancestor", "--end-of-options", sha, after]))) !== null) return null;
        const change = await orNull(changed(git, sha));
        return change ? { ref, sha, ...change } : null;
      }),
    ),
  );
  return read.filter((c): c is CommitChange => c !== null);
}

/**
 * Per number, the newest commits in the past of `base` whose messages mention it: "Fixed #30408
 * --", "(#1234)", "closes #12". One walk of the history for all of them, since a number
 * mentioned once costs a walk of most of it; one number stops at its first few.
 */
async function commitsMentioning(git: Git, base: string, numbers: string[], after?: string): Promise<Map<string, string[]>> {
  const mention = (n: string) => `#${n}([^0-9]|$)`;
  const limit = numbers.length === 1 ? ["-n", String(PER_NUMBER)] : [];
  const log = await git(["log", "-E", ...numbers.map((n) => `--grep=${mention(n)}`), ...limit, "--format=%x1e%H%x00%B", "--end-of-options", base, ...(after ? [`^${after}`] : [])]);
  const found = new Map(numbers.map((n) => [n, [] as string[]]));
  // Newest first; git matched each line of a message, so each pattern is read line by line here too.
  for (const record of log.split("\x1e")) {
    const [sha, message = ""] = record.split("\0");
    if (!sha || !FULL_SHA.test(sha)) continue;
    for (const n of numbers) {
      const list = found.get(n)!;
      if (list.length < PER_NUMBER && new RegExp(mention(n), "m").test(message)) list.push(sha);
    }
  }
  return found;
}

/** The commit an abbreviated sha names, if it is one of this repository. */
async function commitOf(git: Git, ref: string): Promise<string[]> {
  // Ambiguous or unknown: rev-parse fails, and the ref is not a commit of this repository.
  const sha = (await git(["rev-parse", "--verify", "--quiet", "--end-of-options", `${ref}^{commit}`])).trim();
  return FULL_SHA.test(sha) ? [sha] : [];
}

/** What a commit changed; a merge, what it brought to its first parent (a pull request's whole change). */
async function changed(git: Git, sha: string): Promise<Omit<CommitChange, "ref" | "sha"> | null> {
  const parents = (await git(["rev-list", "--parents", "-n", "1", "--end-of-options", sha])).trim().split(" ").length - 1;
  const range = parents > 1 ? [`${sha}^1`, sha] : [sha];
  const files = (await git(["diff-tree", "-r", "--root", "--no-commit-id", "--name-only", "--no-renames", "-z", "--end-of-options", ...range]))
    .split("\0")
    .filter(Boolean);
  if (files.length === 0 || files.length > MAX_CHANGED_FILES) return null;
  const hunks = (globs: string[], config: string[]) =>
    git([...config, "diff-tree", "-p", "-r", "--root", "--no-commit-id", "-U0", "--no-color", "--no-ext-diff", "--no-textconv", "--no-renames", "--end-of-options", ...range, "--", ...globs]);
  const defs: CommitChange["defs"] = [];
  // Each language the commit touched costs one diff, with its own funcname rule; others, none.
  for (const rule of FUNCNAME_RULES) {
    if (!files.some((f) => rule.globs.some((g) => f.endsWith(g.slice(1))))) continue;
    defs.push(...hunkDefs(await hunks(rule.globs, rule.config), rule.header, rule.changed));
  }
  return { files, defs };
}

/**
 * The definitions a `-U0` diff's hunks sit in or change, per new-side file: what each hunk
 * header names (`header`: the text after its `@@ … @@`) and what changed lines declare.
 */
export function hunkDefs(diff: string, header: (text: string) => string | undefined = pyHeader, changedLine: (text: string) => string | undefined = pyChanged): CommitChange["defs"] {
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
    else if (line.startsWith("@@")) {
      const text = /^@@ [^@]*@@ (.*)$/.exec(line)?.[1];
      if (text) add(header(text.slice(0, 1000)));
    } else if (line.startsWith("+") || line.startsWith("-")) add(changedLine(line.slice(1, 1001)));
  }
  return defs;
}
