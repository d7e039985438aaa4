import { mkdtemp, mkdir, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { GitError, runGit } from "./git.js";
import { copyTree, linkTree } from "./treeWrite.js";

/**
 * The caller's uncommitted changes on top of a commit, as a git tree. The patch is applied
 * to a throwaway index whose new objects go to a throwaway object directory (the mirror is
 * only read, through git's alternates), so neither the mirror nor the commit's cached tree
 * is ever touched. The result is a tree id: the same edit on the same commit is the same
 * tree, and can be cached like a commit's.
 */
export class PatchError extends Error {
  override name = "PatchError";
  constructor(
    readonly file: string | null,
    message: string,
  ) {
    super(message);
  }
}

export interface PatchedTree {
  treeId: string;
  /** Environment under which git sees the patched tree's objects (for `git archive`). */
  env: Record<string, string>;
  /** Removes the scratch objects once the tree has been materialized. */
  dispose(): Promise<void>;
}

export async function applyPatch(mirror: string, sha: string, patch: string, scratchParent: string, signal?: AbortSignal): Promise<PatchedTree> {
  await mkdir(scratchParent, { recursive: true });
  const scratch = await mkdtemp(join(scratchParent, "patch.tmp-"));
  const dispose = () => rm(scratch, { recursive: true, force: true });
  const env = {
    GIT_DIR: mirror,
    GIT_INDEX_FILE: join(scratch, "index"),
    GIT_OBJECT_DIRECTORY: join(scratch, "objects"),
    GIT_ALTERNATE_OBJECT_DIRECTORIES: join(mirror, "objects"),
  };
  try {
    await mkdir(env.GIT_OBJECT_DIRECTORY);
    await runGit(["read-tree", sha], { env, signal });
    try {
      // --cached: only the index; nothing is written as files, so no path can escape.
      await runGit(["apply", "--cached", "--whitespace=nowarn", "-"], { env, signal, input: withFinalNewline(patch), timeoutMs: 120_000 });
    } catch (err) {
      if (err instanceof GitError) throw describeFailure(err.stderr, patch);
      throw err;
    }
    const treeId = (await runGit(["write-tree"], { env, signal })).trim();
    return { treeId, env, dispose };
  } catch (err) {
    await dispose();
    throw err;
  }
}

/**
 * An uploaded tree (plain files, no history) with the caller's changes since on top, written
 * in `dest`: the upload's files are linked there (copied where the two are on different disks),
 * then git apply works on the copy. It replaces each file it changes (unlink, then write),
 * so the upload's own files are never written; it refuses paths with `..`, through a symlink
 * or into a `.git`.
 *
 * git is given an empty repository of ours (GIT_DIR) with `dest` as its work tree, so it looks
 * for no repository of its own: left to, it took an upload laid out as a bare repository (HEAD,
 * objects/, refs/, config) for one, read the caller's config, and ran the filter command that
 * config named on the worker's host. Nor one above `dest`, where the cache's directory may sit.
 */
export async function applyPatchToCopy(dir: string, dest: string, patch: string, signal?: AbortSignal): Promise<void> {
  await linkTree(dir, dest, signal).catch(async () => {
    await rm(dest, { recursive: true, force: true });
    await copyTree(dir, dest, signal);
  });
  // Beside `dest`, named after it: a crash leaves it where half-made trees are swept.
  const gitDir = await mkdtemp(`${dest}-git-`);
  try {
    await runGit(["init", "-q", "--bare", "--template=", gitDir], { signal });
    const env = { GIT_DIR: gitDir, GIT_WORK_TREE: dest, GIT_CEILING_DIRECTORIES: dirname(dest), GIT_CONFIG_COUNT: "1", GIT_CONFIG_KEY_0: "safe.bareRepository", GIT_CONFIG_VALUE_0: "explicit" };
    await runGit(["apply", "--whitespace=nowarn", "-"], { cwd: dest, env, signal, input: withFinalNewline(patch), timeoutMs: 120_000 });
  } catch (err) {
    if (err instanceof GitError) throw describeFailure(err.stderr, patch);
    throw err;
  } finally {
    await rm(gitDir, { recursive: true, force: true });
  }
}

/**
 * A diff made with `diff.noprefix` set (or `--no-prefix`): git apply takes each path's first
 * directory for the a/ b/ git writes, so its complaint names a path the caller never wrote. Known
 * by a header naming one path twice (a/x b/x, or the i/ w/ of diff.mnemonicPrefix, never do).
 */
const NO_PREFIX = /^diff --git (\S+) \1$/m;

/** git apply's first complaint, with the file it names. */
function describeFailure(stderr: string, patch: string): PatchError {
  const failure = firstComplaint(stderr);
  if (!NO_PREFIX.test(patch)) return failure;
  return new PatchError(failure.file, `${failure.message} (its paths lack the a/ and b/ prefixes git apply expects: make it with \`git diff --binary HEAD\`, without --no-prefix or diff.noprefix)`);
}

function firstComplaint(stderr: string): PatchError {
  const first = stderr
    .split("\n")
    .map((l) => l.trim())
    .find((l) => l.startsWith("error: "));
  if (!first) return new PatchError(null, `the patch does not apply: ${stderr.trim().slice(0, 300) || "git apply failed"}`);
  const body = first.slice("error: ".length);
  const failed = /^patch failed: (.+):\d+$/.exec(body);
  const named = failed ? failed[1]! : /^(.+?): /.exec(body)?.[1];
  if (!named || named.startsWith("corrupt patch") || named === "No valid patches in input (allow with \"--allow-empty\")") {
    return new PatchError(null, `the patch does not apply: ${body.slice(0, 300)}`);
  }
  return new PatchError(named, `the patch does not apply to ${named}: ${body.slice(0, 300)}`);
}

/**
 * A patch as git prints it ends with a newline; one whose last was stripped on the way (a
 * shell's `$(git diff)`) is the same change, which git apply would call corrupt.
 */
function withFinalNewline(patch: string): string {
  return patch.endsWith("\n") ? patch : `${patch}\n`;
}
