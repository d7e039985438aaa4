import { mkdtemp, mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { GitError, runGit } from "./git.js";

/**
 * The caller's uncommitted changes on top of a commit (or of a tree it uploaded), as a git
 * tree. The patch is applied to a throwaway index whose new objects go to a throwaway object directory (the mirror is
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
  const { scratch, dispose } = await scratchDir(scratchParent);
  const env = {
    GIT_DIR: mirror,
    GIT_INDEX_FILE: join(scratch, "index"),
    GIT_OBJECT_DIRECTORY: join(scratch, "objects"),
    GIT_ALTERNATE_OBJECT_DIRECTORIES: join(mirror, "objects"),
  };
  try {
    await mkdir(env.GIT_OBJECT_DIRECTORY);
    await runGit(["read-tree", sha], { env, signal });
    return { treeId: await applyToIndex(patch, env, signal), env, dispose };
  } catch (err) {
    await dispose();
    throw err;
  }
}

/**
 * An uploaded tree (plain files, no history) with the caller's changes since on top, as a git
 * tree in a throwaway repository: its files are hashed into a scratch index first (every file
 * the upload holds, whatever its .gitignore says: the client sent only what it meant to), then
 * the patch goes on as for a commit. The upload's own directory is only read.
 */
export async function applyPatchToDirectory(dir: string, patch: string, scratchParent: string, signal?: AbortSignal): Promise<PatchedTree> {
  const { scratch, dispose } = await scratchDir(scratchParent);
  const gitDir = join(scratch, "git");
  const env = { GIT_DIR: gitDir, GIT_INDEX_FILE: join(scratch, "index"), GIT_WORK_TREE: dir };
  try {
    await runGit(["init", "--bare", "--quiet", gitDir], { signal });
    await runGit(["add", "--all", "--force", "--", "."], { cwd: dir, env, signal, timeoutMs: 300_000 });
    return { treeId: await applyToIndex(patch, env, signal), env: { GIT_DIR: gitDir }, dispose };
  } catch (err) {
    await dispose();
    throw err;
  }
}

async function scratchDir(parent: string): Promise<{ scratch: string; dispose: () => Promise<void> }> {
  await mkdir(parent, { recursive: true });
  const scratch = await mkdtemp(join(parent, "patch.tmp-"));
  return { scratch, dispose: () => rm(scratch, { recursive: true, force: true }) };
}

/** Applies the patch to the index `env` names and returns the tree it then holds. */
async function applyToIndex(patch: string, env: Record<string, string>, signal?: AbortSignal): Promise<string> {
  try {
    // --cached: only the index; nothing is written as files, so no path can escape.
    await runGit(["apply", "--cached", "--whitespace=nowarn", "-"], { env, signal, input: patch, timeoutMs: 120_000 });
  } catch (err) {
    if (err instanceof GitError) throw describeFailure(err.stderr);
    throw err;
  }
  return (await runGit(["write-tree"], { env, signal })).trim();
}

/** git apply's first complaint, with the file it names. */
function describeFailure(stderr: string): PatchError {
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
