import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, readFile, realpath, rename, rmdir, unlink, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { runGit } from "./git.js";

/**
 * Writes a commit's tree (or a patched tree) into a directory as plain files without .git,
 * so nothing of the mirror leaks in. Two ways, the same files:
 * - whole, `git archive | tar -x` (archiveInto);
 * - from a tree of another commit of the same repository already on the host (deriveInto),
 *   with what `git diff-tree` says changed written from the archive. Writing django's 5,800
 *   files takes ~0.6 s, and successive jobs on one repository ask for commits weeks apart
 *   (tens to a few hundred changed files).
 * Knows nothing of the tree store.
 */

export class TreeTooLarge extends Error {
  override name = "TreeTooLarge";
}

/**
 * The neighbour cannot give this tree exactly, or not cheaply: write it whole instead.
 * `pages`: the tree's size where it was read already (archiveInto need not read it again).
 */
export class NotDerivable extends Error {
  override name = "NotDerivable";
  constructor(
    message: string,
    readonly pages?: number,
  ) {
    super(message);
  }
}

const gitEnv = (extra: Record<string, string>) => ({ PATH: process.env.PATH ?? "/usr/bin:/bin", GIT_CONFIG_NOSYSTEM: "1", GIT_CONFIG_GLOBAL: "/dev/null", LC_ALL: "C", ...extra });

/**
 * Attributes for a git directory's `info/attributes`, which outrank a tree's own
 * `.gitattributes`: an archive is then the tree as committed, with its `export-ignore` paths
 * (often the tests, or a PHP package's bin/), `export-subst` not expanded, and no filter (Git
 * LFS's) or line-ending conversion run. A tree by URL and the same tree uploaded (whose client
 * archives with these too) are then the same files.
 */
export const AS_COMMITTED = "* -export-ignore -export-subst -filter -text -eol -ident -working-tree-encoding\n";

/** Gives a mirror (or a seed fetched beside it) AS_COMMITTED, once; mirrors made before it get it on their next tree. */
export async function archiveAsCommitted(gitDir: string): Promise<void> {
  const path = join(gitDir, "info", "attributes");
  if ((await readFile(path, "utf8").catch(() => "")) === AS_COMMITTED) return;
  await mkdir(dirname(path), { recursive: true });
  // Renamed into place: another job archiving from the same mirror never reads it half written.
  const tmp = `${path}.tmp-${randomBytes(4).toString("hex")}`;
  await writeFile(tmp, AS_COMMITTED);
  await rename(tmp, path);
}

/**
 * `git archive | tar -x`. Beside it, `git ls-tree -l` sizes the tree from its objects: both
 * are stopped once the tree passes `maxBytes` (as tar would count it, headers included).
 * Resolves to the pages its files take, what it costs a tmpfs (within 0.1% of `du` on
 * django's tree, which took 70 ms more).
 */
export function archiveInto(mirror: string, object: string, dest: string, maxBytes: number, signal?: AbortSignal, extraEnv: Record<string, string> = {}, knownPages?: number): Promise<number> {
  const extraction = extract(mirror, [object], dest, extraEnv, signal);
  // Sized already (and within maxBytes) by a derivation that gave up.
  if (knownPages !== undefined) return extraction.done.then(() => knownPages);
  let tooLarge = false;
  const listing = listTree(mirror, object, maxBytes, signal, extraEnv, () => {
    tooLarge = true;
    extraction.kill();
  });
  return Promise.allSettled([listing, extraction.done]).then(([size, extracted]) => {
    if (size.status === "rejected") throw size.reason;
    if (extracted.status === "rejected") throw tooLarge ? tooLargeError(maxBytes) : extracted.reason;
    return size.value.pages;
  });
}

/**
 * `git archive <args> | tar -x -C <dest>`, a plain tree without .git. git writes into tar's
 * pipe itself (passed through this process, django's 45 MB took 0.17 s more).
 */
function extract(mirror: string, args: string[], dest: string, extraEnv: Record<string, string>, signal?: AbortSignal): { done: Promise<void>; kill(): void } {
  const env = gitEnv(extraEnv);
  const tar = spawn("tar", ["-x", "--no-same-owner", "--no-same-permissions", "-C", dest], { env, stdio: ["pipe", "ignore", "pipe"], signal });
  const git = spawn("git", ["--git-dir", mirror, "archive", "--format=tar", ...args], { env, stdio: ["ignore", tar.stdin, "pipe"], signal });
  // git has its own copy of the pipe: tar sees the end of the archive when git exits.
  tar.stdin.destroy();
  return {
    done: Promise.all([exited(git), exited(tar)]).then(() => undefined),
    kill: () => [git, tar].forEach((child) => child.kill("SIGKILL")),
  };
}

/**
 * The tree of `object` written into `dest` from the tree of `from` (another commit's, or the
 * same commit's for a patched tree), whose files take `fromPages` bytes (0: not known):
 * `base` puts that tree's files at `dest` (hard links, or the tree itself moved there), then
 * what `git diff-tree` says changed is unlinked and written from `git archive` as in
 * archiveInto. Nobody writes a tree's files (they are read-only to jobs, and a changed file is
 * unlinked before it is written), so linked trees stay apart. A file's archived bytes are its
 * blob's alone (the mirror archives AS_COMMITTED: no export-subst, no filter), so an unchanged
 * blob is an unchanged file. Throws NotDerivable, before `base` runs, when the result could
 * differ from archiveInto's: submodules, a path that is not a plain relative one; also when more than one file in eight changed (one per eight
 * pages of the neighbour, when its size is known), where writing the tree whole costs as much
 * (pylint, 900 of 3,900 files changed: 0.36-0.40 s derived, 0.20-0.24 s whole). Resolves to
 * the tree's pages.
 */
export async function deriveInto(
  mirror: string,
  from: string,
  fromPages: number,
  object: string,
  dest: string,
  maxBytes: number,
  base: () => Promise<void>,
  signal?: AbortSignal,
  extraEnv: Record<string, string> = {},
): Promise<number> {
  const diff = await runGit(["--git-dir", mirror, "diff-tree", "-r", "-z", "--no-renames", "--no-commit-id", "--end-of-options", from, object], { env: extraEnv, signal }).catch((err: Error) => {
    throw new NotDerivable(`no diff from ${from}: ${err.message}`);
  });
  // runGit keeps the first MiB of output: a diff that long is not worth deriving anyway.
  if (diff.length >= 1_000_000) throw new NotDerivable("the diff is too long");
  const changes = parseRawDiff(diff);
  // Writing a tree whole costs about what its pages do (git inflates every blob): the
  // neighbour's pages say, before the new tree is read, when a diff is too large to pay.
  if (fromPages > 0 && changes.length * MAX_CHANGED_SHARE * PAGE > fromPages) throw new NotDerivable(`${changes.length} files changed, in a tree of ${fromPages / PAGE} pages`);
  const tree = await listTree(mirror, object, maxBytes, signal, extraEnv);
  // A refusal from here on hands the tree's size on: archiveInto need not read it again.
  let written: string[];
  try {
    written = checkChanges(tree, changes, fromPages);
  } catch (err) {
    throw err instanceof NotDerivable ? new NotDerivable(err.message, tree.pages) : err;
  }

  await base();
  const root = await realpath(dest);
  // A parent that is a symlink (a crafted tree) would take an unlink or a write outside the
  // tree: each directory is checked once, and all at once, as are the unlinks (pylint's 900
  // changed files one after another took longer than writing the tree whole).
  const plainDirs = async (paths: string[]) => {
    const checked = new Map<string, Promise<boolean>>();
    for (const path of paths) if (!checked.has(dirname(path))) checked.set(dirname(path), underPlainDirs(root, path));
    if ((await Promise.all(checked.values())).includes(false)) throw new NotDerivable("a changed path is not under plain directories");
  };
  const gone = changes.filter((c) => c.oldMode !== ABSENT).map((c) => c.path);
  await plainDirs(gone);
  await Promise.all(
    gone.map((path) =>
      unlink(join(root, path)).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== "ENOENT") throw err;
      }),
    ),
  );
  // The archive has no empty directories: neither may the derived tree. Only a deletion can
  // leave one (a changed file is written again); deepest first.
  const emptied = new Set<string>();
  for (const c of changes) if (c.newMode === ABSENT) for (let d = dirname(c.path); d !== "."; d = dirname(d)) emptied.add(d);
  for (const d of [...emptied].sort((a, b) => b.length - a.length)) await rmdir(join(root, d)).catch(() => undefined);
  if (written.length > 0) {
    // tar replaces a symlink where it needs a directory, but a crafted tree gets no benefit of the doubt.
    await plainDirs(written);
    await extract(mirror, [object, "--", ...written], dest, { ...extraEnv, GIT_LITERAL_PATHSPECS: "1" }, signal).done;
  }
  return tree.pages;
}

/**
 * deriveInto's checks once the new tree is listed: the paths to write. Throws NotDerivable
 * where the tree must be written whole.
 */
function checkChanges(tree: Listing, changes: Change[], fromPages: number): string[] {
  if (fromPages === 0 && changes.length * MAX_CHANGED_SHARE > tree.paths.length) throw new NotDerivable(`${changes.length} of ${tree.paths.length} files changed`);
  for (const c of changes) {
    if (c.oldMode === GITLINK || c.newMode === GITLINK) throw new NotDerivable(`${c.path} is a submodule`);
    if (!safePath(c.path)) throw new NotDerivable(`${JSON.stringify(c.path)} is not a plain relative path`);
  }
  const written = changes.filter((c) => c.newMode !== ABSENT).map((c) => c.path);
  if (written.reduce((n, p) => n + p.length + 1, 0) > MAX_PATHSPEC_BYTES) throw new NotDerivable("too many paths for one command");
  return written;
}

/** Hard links to every file of the tree at `from`, in `dest` (which must not exist yet). */
export function linkTree(from: string, dest: string, signal?: AbortSignal): Promise<void> {
  return exited(spawn("cp", ["-al", "--", from, dest], { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", LC_ALL: "C" }, stdio: ["ignore", "ignore", "pipe"], signal }));
}

/** A copy of a tree, for where hard links cannot go (another file system). */
export function copyTree(from: string, dest: string, signal?: AbortSignal): Promise<void> {
  return exited(spawn("cp", ["-a", "--", from, dest], { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", LC_ALL: "C" }, stdio: ["ignore", "ignore", "pipe"], signal }));
}

/** Resolves when the process exits 0; otherwise rejects with the end of what it wrote on stderr. */
function exited(child: ChildProcess): Promise<void> {
  let err = "";
  return new Promise((done, fail) => {
    child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
    child.on("error", fail);
    child.on("close", (code) => (code === 0 ? done() : fail(new Error(err.trim().slice(-500) || `exit ${code}`))));
  });
}

const ABSENT = "000000";
const PAGE = 4096;
/** A tree is derived where at most one file in this many changed (or one page's worth: fromPages). */
const MAX_CHANGED_SHARE = 8;
const GITLINK = "160000";
/** Well under the kernel's limit on one command's arguments (2 MiB with the environment). */
const MAX_PATHSPEC_BYTES = 256 * 1024;

interface Change {
  oldMode: string;
  newMode: string;
  path: string;
}

/** `git diff-tree -r -z` without renames: ":<old mode> <new mode> <old> <new> <status>\0<path>\0" per change. */
function parseRawDiff(out: string): Change[] {
  const fields = out.split("\0");
  const changes: Change[] = [];
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const [oldMode = "", newMode = ""] = fields[i]!.replace(/^:/, "").split(" ");
    changes.push({ oldMode, newMode, path: fields[i + 1]! });
  }
  return changes;
}

/** True when the nearest existing directory above `rel` in the tree at `root` is reached through no symlink. */
async function underPlainDirs(root: string, rel: string): Promise<boolean> {
  for (let dir = dirname(join(root, rel)); dir.startsWith(root); dir = dirname(dir)) {
    const real = await realpath(dir).catch(() => undefined);
    if (real !== undefined) return real === dir;
  }
  return false;
}

/** A repository path as git writes a sane tree's: relative, no empty, `.` or `..` parts. */
const safePath = (path: string) => path.split("/").every((part) => part !== "" && part !== "." && part !== "..");

interface Listing {
  /** Bytes of pages the files take. */
  pages: number;
  /** The files' paths. */
  paths: string[];
}

/**
 * `git ls-tree -r -l` of the tree: its size and files. Rejects with
 * TreeTooLarge (after `onTooLarge`, so a caller can stop what it started beside it) once the
 * tree passes `maxBytes` as tar would count it.
 */
function listTree(mirror: string, object: string, maxBytes: number, signal?: AbortSignal, extraEnv: Record<string, string> = {}, onTooLarge = () => {}): Promise<Listing> {
  return new Promise((done, fail) => {
    const sizes = spawn("git", ["--git-dir", mirror, "ls-tree", "-r", "-l", "-z", "--full-tree", object], { env: gitEnv(extraEnv), stdio: ["ignore", "pipe", "pipe"], signal });
    const listing: Listing = { pages: 0, paths: [] };
    let tarBytes = 0;
    let partial = "";
    let tooLarge = false;
    let err = "";
    sizes.stdout.on("data", (d: Buffer) => {
      const entries = (partial + d.toString("utf8")).split("\0");
      partial = entries.pop() ?? "";
      for (const entry of entries) {
        // "<mode> <type> <object> <size>\t<path>"; a submodule's size is "-" and it is not archived.
        const tab = entry.indexOf("\t");
        const [, type, , size] = entry.slice(0, tab).split(/ +/);
        const n = Number(size);
        if (type !== "blob" || !Number.isFinite(n)) continue;
        tarBytes += 512 + Math.ceil(n / 512) * 512;
        listing.pages += Math.ceil(n / PAGE) * PAGE;
        const path = entry.slice(tab + 1);
        listing.paths.push(path);
      }
      if (tarBytes > maxBytes && !tooLarge) {
        tooLarge = true;
        sizes.kill("SIGKILL");
        onTooLarge();
      }
    });
    sizes.stderr.on("data", (d: Buffer) => (err += d.toString()));
    sizes.on("error", fail);
    sizes.on("close", (code) => {
      if (tooLarge) fail(tooLargeError(maxBytes));
      else if (code !== 0) fail(new Error(err.trim().slice(-500) || `git ls-tree exited with ${code}`));
      else done(listing);
    });
  });
}

const tooLargeError = (maxBytes: number) => new TreeTooLarge(`the tree is larger than ${Math.round(maxBytes / 2 ** 20)} MB`);

