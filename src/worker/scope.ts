import { readdir, realpath, stat } from "node:fs/promises";
import { isAbsolute, join, relative, sep } from "node:path";
import type { Location, NamedCommit } from "../agent/policy.js";
import { JobFailedError } from "../queue/failure.js";

// A job's scope (`options.scope`): the directory of the tree the sandbox is given, as if it were
// the repository, and the prefix its answer's paths get back. The schema admits only plain
// segments; what they lead to on disk is checked here, since a tree is the repository's own
// content and a committed symlink may point anywhere on the worker's host.

/**
 * The scope's directory on disk, and the scope as the tree's own path to it (a committed link
 * to a directory of the tree, `api-link`, is answered as that directory, `services/api`).
 */
export async function scopedTree(treePath: string, scope: string, sha: string): Promise<{ dir: string; scope: string }> {
  const missing = () => new JobFailedError("scope_not_found", `options.scope: ${scope} is not a directory of the repository at ${sha.slice(0, 12)}`);
  const [top, inside] = await Promise.all([realpath(treePath), realpath(join(treePath, scope)).catch(() => null)]);
  if (inside === null) throw missing();
  const rel = relative(top, inside);
  if (rel === "" || rel.startsWith("..") || isAbsolute(rel)) throw missing();
  if (!(await stat(inside)).isDirectory()) throw missing();
  // A submodule is an empty directory in its repository's tree: localized, it found nothing, and said no more.
  if ((await readdir(inside)).length === 0) {
    throw new JobFailedError("scope_not_found", `options.scope: ${scope} holds no files in the repository at ${sha.slice(0, 12)} (a submodule's directory is empty: the service fetches no submodule; localize in the submodule's own repository)`);
  }
  return { dir: inside, scope: rel.split(sep).join("/") };
}

/**
 * Locations found in the scope, as paths of the whole repository: their files, their file where
 * their evidence names it ("the issue names the file app.py"), and the other files it names (a
 * caller's, "called by `run` (pkg/a.py:12)"; a frame's, "a traceback frame in pkg/a.py names").
 */
export function unscoped<L extends Pick<Location, "file" | "evidence">>(locations: L[], scope: string | undefined): L[] {
  if (!scope) return locations;
  return locations.map((l) => {
    const file = `${scope}/${l.file}`;
    const named = new RegExp(`(^|[\\s(\`'"])${l.file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}(?=$|[\\s)\`'",:;])`, "g");
    // The other files first: written whole, the location's own name no longer matches inside them.
    const other = (e: string) => e.replace(CALLER_IN, `$1${scope}/$2`).replace(FRAME_IN, `$1${scope}/$2`);
    return { ...l, file, ...(l.evidence ? { evidence: l.evidence.map((e) => other(e).replace(named, `$1${file}`)) } : {}) };
  });
}

/** The other files the baseline's evidence names (features.ts), as the scope's paths. */
const CALLER_IN = /^(called by `[^`]*` \()(.+?)(?=:\d+\), which the issue names$)/;
const FRAME_IN = /^(a traceback frame in )(?!a file this repository does not hold)(.+?)(?= names `[^`]*`$)/;

/** What named commits changed inside the scope, as paths of the scope; the rest is not in its tree. */
export function scopedCommits(commits: NamedCommit[], scope: string | undefined): NamedCommit[] {
  if (!scope) return commits;
  const prefix = `${scope}/`;
  const inScope = (f: string) => f.startsWith(prefix);
  return commits
    .map((c) => ({
      ...c,
      files: c.files.filter(inScope).map((f) => f.slice(prefix.length)),
      defs: c.defs.filter((d) => inScope(d.file)).map((d) => ({ ...d, file: d.file.slice(prefix.length) })),
    }))
    .filter((c) => c.files.length > 0);
}
