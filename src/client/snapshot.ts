import { execFile, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { copyFile, link, lstat, mkdir, open, readFile, readdir, readlink, rename, rm, stat, utimes, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { delimiter, isAbsolute, join, posix, resolve } from "node:path";
import { promisify } from "node:util";
import { createGzip } from "node:zlib";
import { PassThrough, type Readable } from "node:stream";
import { isUtf8 } from "node:buffer";
import { printable } from "./printable.js";
import { AS_COMMITTED } from "../repos/treeWrite.js";

/**
 * The work tree of a checkout as git sees it right now (tracked files with their edits,
 * untracked files git does not ignore), captured in a scratch index whose new objects go to
 * a scratch object directory: the user's index and repository are only read. git does the
 * heavy part in C with its stat cache, so a second look at an unchanged tree costs little.
 */
const run = promisify(execFile);
/**
 * A patch the service's `git apply` takes, whatever the user's config: the blobs as stored, not
 * as a textconv driver shows them (git-crypt's shows the plaintext of what the upload sends
 * encrypted), and the a/ b/ prefixes apply expects (`diff.noprefix` drops them).
 */
const DIFF = ["diff", "--cached", "--binary", "--no-color", "--no-ext-diff", "--no-textconv", "--no-renames", "--src-prefix=a/", "--dst-prefix=b/"];
const GIT_ENV = { GIT_TERMINAL_PROMPT: "0", GIT_OPTIONAL_LOCKS: "0", LC_ALL: "C" };

/** How every git of the client runs: the user's environment with ours over it, and room for a large tree's listings. */
const gitOptions = (cwd: string, env: Record<string, string>) => ({ cwd, env: { ...process.env, ...GIT_ENV, ...env }, maxBuffer: 1 << 30 });

export async function git(cwd: string, args: string[], env: Record<string, string> = {}, input?: string): Promise<string> {
  const child = run("git", args, { ...gitOptions(cwd, env), encoding: "utf8" });
  if (input !== undefined) child.child.stdin?.end(input);
  const { stdout } = await child;
  return stdout;
}

/** git's output as bytes, as it printed them. */
async function gitBytes(cwd: string, args: string[], env: Record<string, string>): Promise<Buffer> {
  return (await run("git", args, { ...gitOptions(cwd, env), encoding: "buffer" })).stdout;
}

/**
 * A diff as text, which a patch must be to travel in JSON. One of a file that is not UTF-8 (a
 * Latin-1 source) would arrive with its bytes replaced, and apply to nothing.
 */
async function diffText(cwd: string, args: string[], env: Record<string, string>): Promise<string> {
  const stdout = await gitBytes(cwd, args, env);
  if (isUtf8(stdout)) return stdout.toString("utf8");
  // The file by its place among the diff's files: its header quotes or cuts an odd name.
  const sections = stdout.toString("latin1").split(/^diff --git /m).slice(1);
  const at = sections.findIndex((section) => !isUtf8(Buffer.from(section, "latin1")));
  const paths = args.indexOf("--");
  const listing = [...args.slice(0, paths), "--name-only", "-z", ...args.slice(paths)];
  const names = await gitBytes(cwd, listing, env).then(
    (out) => out.toString("utf8").split("\0").filter(Boolean),
    () => [] as string[],
  );
  throw new PatchNotText(printable(names[at] ?? ""));
}

/** The changes hold a file that is not UTF-8 text: the tree is uploaded instead. */
export class PatchNotText extends Error {
  override name = "PatchNotText";
  constructor(readonly path: string) {
    super(`the changes to ${path || "a file"} are not UTF-8 text, which a patch must be`);
  }
}

/** Where the client keeps what it remembers between calls: never inside the checkout. */
export function clientCacheDir(): string {
  return process.env.CODESCOUT_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "codescout");
}

export interface TreeSummary {
  /** The tree's content address, as the service computed it (uploads/digest.ts). */
  sha256: string;
  files: number;
  bytes: number;
  /** git's id of the tree sent (in the checkout's last upload's entry, which a patch is made against). */
  tree?: string;
}

interface Staged {
  mode: string;
  blob: string;
  path: string;
  /** git's tag for the entry (`ls-files -v`): lowercase for assume-unchanged, S for skip-worktree. */
  tag: string;
}

/** The set (under a checkout's scratch sets) that keeps the last tree sent of `key`'s directory: not one dropStale removes. */
const keptSet = (key: string) => (key ? `objects-kept-${createHash("sha256").update(key).digest("hex").slice(0, 16)}` : "objects-kept");

/** Scratch indexes of an older base are kept this long: a snapshot started before the change may still use them. */
const STALE_SCRATCH_MS = 10 * 60_000;

/**
 * Files HEAD does not hold (untracked, or added but not committed) larger than this are left out
 * of what is sent: a dataset or a build's output that nobody ignored is not code a localization
 * reads, and would push an upload or a patch past the service's limits (a 100 MB archive by
 * default) for nothing. Files HEAD holds always go.
 */
export const MAX_NEW_FILE_BYTES = 8 << 20;

/** Something the tree holds that is not sent: a directory (ends in `/`) or a file. */
export interface LeftOut {
  path: string;
  files: number;
  bytes: number;
  why: "environment" | "size" | "credentials" | "name";
}

/** Names the service refuses in an upload (uploads/archive.ts): a line break, a backslash. */
const UNSENDABLE_NAME = /[\n\r\\]/;

/**
 * Names that hold credentials wherever they are: never sent, committed or not. A patch leaves
 * out their changes (the service reads the copy the commit it fetches holds, if any), an upload
 * leaves them out. Committed is no sign of public: a commit not pushed yet, or a repository with
 * no remote, holds what its user wrote there, and an edit to a committed template
 * (`credentials.json` filled in) is the secret itself. An ignore file is the user's to write, and
 * a project with none yet (`git init` a moment ago, or a home directory made a repository) would
 * otherwise send its .env, or ~/.ssh and ~/.aws, to the service.
 */
const CREDENTIAL_DIRS = new Set([".ssh", ".aws", ".gnupg", ".azure", ".kube", ".docker", ".password-store"]);
const CREDENTIAL_FILE =
  /^(\.env(\..*)?|\.envrc|\.netrc|_netrc|\.npmrc|\.pypirc|\.pgpass|\.git-credentials|\.vault-token|\.htpasswd|kubeconfig|credentials(\.json)?|id_(rsa|dsa|ecdsa|ed25519)(_sk)?|.*\.(pem|key|p12|pfx|jks|keystore|kdbx|ppk|tfvars|tfvars\.json|tfstate|tfstate\.backup))$/i;
/** Templates of a .env, which hold no secret and say what the code reads. */
const ENV_TEMPLATE = /^\.env\.(example|sample|template|dist|defaults)$/i;

/** Whether a path names credentials (see CREDENTIAL_FILE), by its directories or its own name. */
export function namesCredentials(path: string): boolean {
  const parts = path.split("/");
  const name = parts[parts.length - 1]!;
  return parts.slice(0, -1).some((p) => CREDENTIAL_DIRS.has(p)) || (CREDENTIAL_FILE.test(name) && !ENV_TEMPLATE.test(name));
}

/**
 * Directories of installed packages and caches: never code to localize (the service's scan skips
 * them too), and a virtualenv or node_modules nobody ignored is most of an upload.
 */
const ENVIRONMENT_DIRS = new Set(["node_modules", "site-packages", "__pycache__", ".tox", ".nox"]);

/** The outermost environment directories among these paths, each ending in `/`. */
function environmentDirs(paths: string[]): string[] {
  const found = new Set<string>();
  for (const path of paths) {
    const parts = path.split("/");
    const named = parts.findIndex((p, i) => i < parts.length - 1 && ENVIRONMENT_DIRS.has(p));
    if (named >= 0) found.add(`${parts.slice(0, named + 1).join("/")}/`);
    // A virtualenv, whatever its name (`.venv`, `env`): its root holds pyvenv.cfg.
    if (parts.length > 1 && parts[parts.length - 1] === "pyvenv.cfg") found.add(`${parts.slice(0, -1).join("/")}/`);
  }
  const dirs = [...found].sort((a, b) => a.length - b.length);
  return dirs.filter((d, i) => !dirs.slice(0, i).some((outer) => d.startsWith(outer)));
}

/**
 * Environment directories in the top two levels of the tree (where `python -m venv .venv` and
 * `npm install` put them) that git would send whole, untracked and not ignored: a virtualenv,
 * known by its pyvenv.cfg, or a directory named as ENVIRONMENT_DIRS (a project that commits its
 * node_modules has no whole one). They are left out of `git add` itself, which would otherwise
 * hash every file of one (a 16,700-file virtualenv: 9.4 s; a 23,400-file node_modules: 8.1 s)
 * only for leftOut to drop it. Deeper ones are left to leftOut.
 */
async function environmentRoots(root: string): Promise<string[]> {
  const isVenv = (path: string) => lstat(join(root, path, "pyvenv.cfg")).then((st) => st.isFile(), () => false);
  const named: string[] = [];
  const visit = async (rel: string, depth: number): Promise<string[]> => {
    const entries = await readdir(join(root, rel), { withFileTypes: true }).catch(() => []);
    const found = await Promise.all(
      entries
        .filter((e) => e.isDirectory() && e.name !== ".git")
        .map(async (e) => {
          const path = rel ? `${rel}/${e.name}` : e.name;
          if (ENVIRONMENT_DIRS.has(e.name)) {
            named.push(path);
            return [];
          }
          // A second level's directories are many (a test suite's): only venv-like names are asked.
          if ((depth === 1 || VENV_NAME.test(e.name)) && (await isVenv(path))) return [path];
          return depth < 2 ? visit(path, depth + 1) : [];
        }),
    );
    return found.flat();
  };
  const venvs = await visit("", 1);
  const top = await ignoreLines(root, ".gitignore");
  const candidates = (await Promise.all([...venvs, ...named].map(async (d) => ((await plainlyIgnored(root, d, top)) ? [] : [d])))).flat();
  if (!candidates.length) return [];
  // One look, without descending: git lists a directory it would send whole as `dir/`, a tracked
  // file under one by its path, and an ignored one not at all.
  const listed = (await git(root, ["ls-files", "-z", "-c", "-o", "--exclude-standard", "--directory", "--", ...candidates.map((d) => `:(literal)${d}`)]).catch(() => ""))
    .split("\0")
    .filter(Boolean);
  const whole = new Set(listed.filter((p) => p.endsWith("/")));
  // Only those: `git add` refuses a pathspec, even an excluding one, that names an ignored path.
  return candidates.filter((d) => whole.has(`${d}/`)).sort();
}

/**
 * Whether an ignore file plainly ignores this directory: a line naming it in the `.gitignore`
 * beside it or at the top (`node_modules/`, `/.venv`), or a `*` in its own (uv's and Python
 * 3.13's virtualenvs ignore themselves). Spares the usual case, an ignored node_modules, a git
 * process per snapshot; what it misses, git is asked.
 */
async function plainlyIgnored(root: string, dir: string, top: string[]): Promise<boolean> {
  const slash = dir.lastIndexOf("/");
  const name = dir.slice(slash + 1);
  if ((await ignoreLines(root, `${dir}/.gitignore`)).includes("*")) return true;
  const naming = new Set([name, `${name}/`, `/${name}`, `/${name}/`, `**/${name}`, `**/${name}/`]);
  const beside = slash < 0 ? [] : await ignoreLines(root, `${dir.slice(0, slash)}/.gitignore`);
  // `top` is the top .gitignore's lines, where `/name` is the top's own directory only.
  return beside.some((l) => naming.has(l)) || top.some((l) => naming.has(l) && (slash < 0 || !l.startsWith("/")));
}

/** An ignore file's lines, trimmed ([] when there is none). */
async function ignoreLines(root: string, path: string): Promise<string[]> {
  return (await readFile(join(root, path), "utf8").catch(() => "")).split("\n").map((l) => l.trim());
}

const VENV_NAME = /^\.?(venv|env|virtualenv)\b/i;

/** The promise `cache` keeps under `key`, made on the first ask: a snapshot reads each thing once. */
function once<T>(cache: Map<string, Promise<T>>, key: string, make: () => Promise<T>): Promise<T> {
  let found = cache.get(key);
  if (!found) cache.set(key, (found = make()));
  return found;
}

/** A submodule's index entry. */
const GITLINK = "160000";
/** Files git is told not to look at, compared with what is sent: a repository that flags them all for speed is not read whole. */
const MAX_HIDDEN_CHECKED = 2_000;

export class Snapshot {
  private tree: Promise<string> | undefined;

  private constructor(
    readonly root: string,
    /** This checkout's scratch sets (indexes and objects), under the client's cache. */
    private readonly dir: string,
    private readonly env: Record<string, string>,
    /** The scratch index, kept for the next snapshot of this checkout when this one is done. */
    private readonly keep: { index: string; as: string },
    private readonly maxNewFileBytes: number,
    /** Environment directories `git add` was told to leave alone (environmentRoots): git would have sent them whole. */
    private readonly unread: string[],
  ) {}

  /** git's id of the captured tree: a key for the client's cache only, never sent. */
  treeId(): Promise<string> {
    this.tree ??= git(this.root, ["write-tree"], this.env).then((o) => o.trim());
    return this.tree;
  }

  /**
   * Captures the checkout at `root`. The scratch index and objects live under `cacheDir`, one
   * set per checkout and per state of the user's own index, and outlast the snapshot: the next
   * one starts from git's stat cache and tree cache as this one left them, so an unchanged tree
   * is recognized without reading a file or writing an object. A change to the user's index
   * (a commit, a `git add -f`) starts a fresh set from it, since that index says what is tracked.
   */
  static async take(root: string, cacheDir = clientCacheDir(), maxNewFileBytes = MAX_NEW_FILE_BYTES): Promise<Snapshot> {
    // Looked for beside the scratch index's set-up, which waits on the disk too.
    const environments = environmentRoots(root);
    environments.catch(() => undefined);
    const { objects, index } = await gitPaths(root);
    const base = await indexChecksum(index);
    const dir = join(cacheDir, "snapshots", createHash("sha256").update(resolve(root)).digest("hex").slice(0, 16));
    const scratchObjects = join(dir, `objects-${base}`);
    const kept = join(dir, `index-${base}`);
    const working = join(dir, `index.${process.pid}.${randomBytes(4).toString("hex")}`);
    await mkdir(scratchObjects, { recursive: true });
    // Concurrent snapshots of one checkout each work on a copy; the last one done is kept.
    const copied = await copyIndex(kept, working);
    if (!copied) await copyIndex(index, working);
    const env = { GIT_INDEX_FILE: working, GIT_OBJECT_DIRECTORY: scratchObjects, GIT_ALTERNATE_OBJECT_DIRECTORIES: objects };
    let unread: string[] = [];
    try {
      if (copied) await forgetIgnored(root, env);
      // Environments near the top are not even read: git would hash every file of a virtualenv
      // nobody ignored (16,700 files: 9.4 s) only for leftOut to drop them.
      unread = await environments;
      // core.safecrlf guards the user's own commits: a CRLF file it would warn of is sent as it is.
      await git(root, ["-c", "core.safecrlf=false", "add", "-A", "--", ".", ...unread.map((d) => `:(exclude,literal)${d}`)], env);
    } catch (err) {
      await rm(working, { force: true });
      throw err;
    }
    if (!copied) {
      await dropStale(dir, base);
      await dropUnusedCheckouts(join(cacheDir, "snapshots"));
    }
    return new Snapshot(root, dir, env, { index: working, as: kept }, maxNewFileBytes, unread);
  }

  async dispose(): Promise<void> {
    await rename(this.keep.index, this.keep.as).catch(() => rm(this.keep.index, { force: true }));
  }

  /**
   * The difference from `base` (HEAD, or a commit of its past: then the commits since are in it
   * too), as `git diff --binary` prints it ("" when there is none), without what is left out; of
   * the directory `under` alone when given.
   */
  async patch(base = "HEAD", under?: string): Promise<string> {
    return diffText(this.root, [...DIFF, base, "--", ...(await this.sentPathspecs(under, false, base))], this.env);
  }

  /**
   * The changes since an earlier snapshot's tree of this checkout (one the service took as an
   * upload), limited to what an upload of `under` would send now; null when that tree is no
   * longer here. An earlier tree's objects stay in its own scratch set until dropStale takes it.
   */
  async changesSince(tree: string, under?: string): Promise<string | null> {
    const sets = (await readdir(this.dir).catch(() => [] as string[])).filter((n) => n.startsWith("objects-")).map((n) => join(this.dir, n));
    // Git splits the list as it splits PATH: on ";" on Windows, where ":" is a drive's.
    const env = { ...this.env, GIT_ALTERNATE_OBJECT_DIRECTORIES: [this.env.GIT_ALTERNATE_OBJECT_DIRECTORIES, ...sets].join(delimiter) };
    if (!(await git(this.root, ["cat-file", "-e", `${tree}^{tree}`], env).then(() => true, () => false))) return null;
    // A blob of that tree gone since (one the kept set lacks): the tree is sent whole instead.
    // A file not UTF-8 among the changes too: the tree is uploaded again, bytes and all.
    return diffText(this.root, [...DIFF, tree, "--", ...(await this.sentPathspecs(under))], env).catch(() => null);
  }

  /**
   * Pathspecs of what is sent: `under` (or the whole tree) without what is left out and, where
   * the tree itself or its changes since an upload are sent, without symlinks that leave it.
   * Literal: a file named `*.csv` or `:x` means itself; a directory, all under it.
   */
  private async sentPathspecs(under?: string, withoutEscapingLinks = true, base?: string): Promise<string[]> {
    const excluded = (path: string) => `:(exclude,literal)${path.replace(/\/$/, "")}`;
    const links = withoutEscapingLinks ? await this.escapingLinks(under) : [];
    return [under ? `:(literal)${under}` : ".", ...(await this.leftOut(base)).map((f) => excluded(f.path)), ...links.map(excluded)];
  }

  /**
   * Keeps what git would need of `tree` (one of this snapshot's, which the service now holds)
   * beyond the checkout's own repository: its new trees and the blobs of edited and untracked
   * files, hard-linked from the scratch set into one that dropStale leaves alone (`key` names
   * it: one per directory sent). Any change to the user's index (a commit, a checkout, an
   * editor's `git status` refreshing it) starts a new scratch set and drops the old one ten
   * minutes on; without this the last upload would stop being a base for patches then. The
   * set is made again for each tree kept, so it holds one tree's objects at a time.
   */
  async keepTree(tree: string, key = ""): Promise<void> {
    const listing = await git(this.root, ["ls-tree", "-r", "-t", "-z", tree], this.env);
    const wanted = new Set([tree, ...listing.split("\0").filter(Boolean).map((l) => l.split(/\s/)[2]!)]);
    const kept = join(this.dir, keptSet(key));
    await rm(kept, { recursive: true, force: true });
    const scratch = this.env.GIT_OBJECT_DIRECTORY!;
    const keep = async (dir: string, names: string[]) => {
      if (!names.length) return;
      await mkdir(join(kept, dir), { recursive: true });
      for (const n of names) await link(join(scratch, dir, n), join(kept, dir, n)).catch(() => copyFile(join(scratch, dir, n), join(kept, dir, n)));
    };
    // git add and write-tree write loose objects, but for a file over core.bigFileThreshold,
    // which goes straight into a pack (kept whole); the rest of the tree is in the user's repository.
    for (const dir of await readdir(scratch).catch(() => [] as string[])) {
      const names = await readdir(join(scratch, dir)).catch(() => [] as string[]);
      if (dir === "pack") await keep(dir, names);
      else if (/^[0-9a-f]{2}$/.test(dir)) await keep(dir, names.filter((n) => wanted.has(dir + n)));
    }
  }

  private notSent = new Map<string, Promise<LeftOut[]>>();

  /**
   * What is not sent: files named as holding credentials (namesCredentials), and of what HEAD
   * does not hold, installed packages and caches (a directory named as ENVIRONMENT_DIRS, or
   * holding a virtualenv's pyvenv.cfg, none of whose files HEAD holds) and files over
   * MAX_NEW_FILE_BYTES. For a patch on `base`, the credentials' files its diff would carry (the
   * service has the base's own copies); for an upload (no base), all of them. Asked only when a
   * patch or an archive is made (the scratch index has them: `git add` hashed them once, and its
   * stat cache spares them after), so a tree the service already holds costs no more.
   */
  leftOut(base?: string): Promise<LeftOut[]> {
    return once(this.notSent, base ?? "", () => this.readLeftOut(base));
  }

  private async readLeftOut(base?: string): Promise<LeftOut[]> {
    const allPaths = async () => (await this.staged()).map((e) => e.path);
    const changedSince = (commit: string, filter: string[]) =>
      git(this.root, ["diff", "--cached", "--name-only", ...filter, "--no-renames", "-z", commit], this.env).then((o) => o.split("\0").filter(Boolean), allPaths);
    // Against HEAD's tree, without a look at the work tree; with no commit yet, every file is new.
    const added = await changedSince("HEAD", ["--diff-filter=A"]);
    const isNew = new Set(added);
    const sent = base ? await changedSince(base, []) : await allPaths();
    const secrets = sent.filter(namesCredentials);
    const out: LeftOut[] = [];
    for (const dir of this.unread) out.push({ path: `${dir}/`, files: 0, bytes: 0, why: "environment" });
    const envDirs = environmentDirs(added).filter((d) => !this.unread.some((u) => d.startsWith(`${u}/`)));
    const staged = envDirs.length ? await allPaths() : [];
    for (const dir of envDirs) {
      const under = staged.filter((p) => p.startsWith(dir));
      // A directory HEAD holds files of is the project's own (vendored packages, say): it goes.
      if (under.every((p) => isNew.has(p))) out.push({ path: dir, files: under.length, bytes: 0, why: "environment" });
    }
    const dirs = out.map((d) => d.path);
    const outside = (path: string) => !dirs.some((d) => path.startsWith(d));
    // lstat: a symlink's own size; its target is not what would be sent.
    const size = (path: string) => lstat(join(this.root, path)).catch(() => null);
    for (const path of secrets.filter(outside)) out.push({ path, files: 1, bytes: (await size(path))?.size ?? 0, why: "credentials" });
    // A name an upload may not hold would refuse the whole tree: the file goes, the rest is sent.
    // A patch carries such a name as git quotes it, which the service applies.
    if (!base) for (const path of sent.filter((p) => outside(p) && !namesCredentials(p) && UNSENDABLE_NAME.test(p))) out.push({ path, files: 1, bytes: 0, why: "name" });
    for (const path of added.filter((p) => outside(p) && !namesCredentials(p) && (base || !UNSENDABLE_NAME.test(p)))) {
      const st = await size(path);
      if (st?.isFile() && st.size > this.maxNewFileBytes) out.push({ path, files: 1, bytes: st.size, why: "size" });
    }
    return out.sort((a, b) => (a.path < b.path ? -1 : 1));
  }

  /**
   * Whether a path is sent: under `under` (a directory of the tree, when only it is sent) and
   * not under or at anything left out (a directory left alone may hold what an older snapshot read).
   */
  private async sendsPath(under?: string): Promise<(path: string) => boolean> {
    const out = (await this.leftOut()).map((f) => f.path);
    // Files by a set: a tree may leave thousands out (committed test certificates), asked of each of its files.
    const files = new Set(out.filter((f) => !f.endsWith("/")));
    const dirs = out.filter((f) => f.endsWith("/"));
    const inside = under ? (path: string) => path.startsWith(`${under}/`) : () => true;
    return (path) => inside(path) && !files.has(path) && !dirs.some((d) => path.startsWith(d));
  }

  private entries: Promise<Staged[]> | undefined;

  /** The captured index's entries; read once, since the snapshot does not change. */
  private staged(): Promise<Staged[]> {
    this.entries ??= this.readStaged();
    return this.entries;
  }

  private async readStaged(): Promise<Staged[]> {
    return (await this.indexEntries()).filter((e) => e.mode !== GITLINK);
  }

  private index: Promise<Staged[]> | undefined;

  /** Every entry of the captured index, submodules' (gitlinks) too, with its tag: one listing for all that reads the index. */
  private indexEntries(): Promise<Staged[]> {
    this.index ??= git(this.root, ["ls-files", "-s", "-v", "-z"], this.env).then((out) =>
      out
        .split("\0")
        .filter(Boolean)
        .map((line) => {
          // The path may hold a tab itself (-z leaves it unquoted): only the first one ends the meta.
          const tab = line.indexOf("\t");
          const [meta, path] = [line.slice(0, tab), line.slice(tab + 1)];
          const [tag = "", mode = "", blob = ""] = meta.split(" ");
          return { tag, mode, blob, path };
        }),
    );
    return this.index;
  }

  /** Submodules (gitlinks): other repositories, whose files are not part of this tree, nor sent. */
  async submodules(): Promise<string[]> {
    return (await this.indexEntries()).filter((e) => e.mode === GITLINK).map((e) => e.path);
  }

  /**
   * Files whose edits on disk are not sent because the user told git not to look at them
   * (`git update-index --assume-unchanged` or `--skip-worktree`, often to keep a local config
   * out of commits): they go as the index holds them, which the user chose, and the answer's
   * lines in them are the index's. Files absent from disk (a sparse checkout's) are no edit.
   */
  async hiddenEdits(): Promise<string[]> {
    const flagged = (await this.staged()).filter((e) => /^([a-z]|S)$/.test(e.tag));
    if (!flagged.length) return [];
    const blobs = new Map(flagged.map((e) => [e.path, e.blob]));
    const present: string[] = [];
    for (const { path } of flagged.slice(0, MAX_HIDDEN_CHECKED)) {
      // One path a line to hash-object: a name holding a line break is not asked.
      if (!path.includes("\n") && (await lstat(join(this.root, path)).catch(() => null))?.isFile()) present.push(path);
    }
    if (!present.length) return [];
    // hash-object applies the path's filters (CRLF, clean), as `git add` would have.
    const hashes = (await git(this.root, ["hash-object", "--stdin-paths"], this.env, present.join("\n")).catch(() => "")).split("\n");
    return present.filter((path, i) => hashes[i] !== undefined && hashes[i] !== "" && hashes[i] !== blobs.get(path));
  }

  private links = new Map<string, Promise<string[]>>();

  /**
   * Symlinks that point outside the tree: left out of the archive (the service would refuse them).
   * Read once per directory sent: the upload names them, then the archive leaves them out.
   */
  escapingLinks(under?: string): Promise<string[]> {
    return once(this.links, under ?? "", () => this.readEscapingLinks(under));
  }

  private async readEscapingLinks(under?: string): Promise<string[]> {
    const out: string[] = [];
    // A virtualenv's python -> /usr/bin/python3 goes with its directory, said once for all.
    const sent = await this.sendsPath(under);
    for (const e of await this.staged()) {
      if (e.mode !== "120000" || !sent(e.path)) continue;
      const target = await linkTarget(join(this.root, e.path));
      if (target === null || isAbsolute(target) || posix.normalize(posix.join(posix.dirname(e.path), target)).startsWith("..")) out.push(e.path);
    }
    return out;
  }

  /**
   * The sent tree's largest parts (top-level directories and files) by bytes and by files, for
   * a refusal to say what to ignore; only read when the service refused the tree as too large.
   * A part HEAD holds is said to be tracked: an ignore file cannot leave it out.
   */
  async largestParts(n = 3, under?: string): Promise<{ bySize: string[]; byCount: string[]; tracked: boolean; untracked: boolean }> {
    const parts = new Map<string, { bytes: number; files: number; heldBytes: number; heldFiles: number }>();
    const sent = await this.sendsPath(under);
    const from = under ? under.length + 1 : 0;
    const held = new Set(
      (await git(this.root, ["ls-tree", "-r", "-z", "--name-only", "HEAD", "--", under ? `${under}/` : "."]).catch(() => ""))
        .split("\0")
        .filter(Boolean),
    );
    for (const e of (await this.staged()).filter((s) => sent(s.path))) {
      const slash = e.path.indexOf("/", from);
      const part = slash < 0 ? e.path : `${e.path.slice(0, slash)}/`;
      const size = (await lstat(join(this.root, e.path)).catch(() => null))?.size ?? 0;
      const p = parts.get(part) ?? { bytes: 0, files: 0, heldBytes: 0, heldFiles: 0 };
      p.bytes += size;
      p.files += 1;
      if (held.has(e.path)) {
        p.heldBytes += size;
        p.heldFiles += 1;
      }
      parts.set(part, p);
    }
    // Tracked when HEAD holds most of it: a directory with one committed README and a dataset
    // beside it is the dataset's, which an ignore file can leave out.
    const isTracked = (part: string) => {
      const p = parts.get(part);
      return !!p && p.heldBytes * 2 >= p.bytes && p.heldFiles * 2 >= p.files;
    };
    const mark = (part: string) => (isTracked(part) ? ", tracked" : "");
    const all = [...parts];
    const mb = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
    const bySize = all.sort((a, b) => b[1].bytes - a[1].bytes).slice(0, n);
    const byCount = all.sort((a, b) => b[1].files - a[1].files).slice(0, n);
    const named = [...bySize, ...byCount].map(([k]) => k);
    return {
      bySize: bySize.map(([k, v]) => `${k} (${mb(v.bytes)}${mark(k)})`),
      byCount: byCount.map(([k, v]) => `${k} (${v.files} files${mark(k)})`),
      tracked: named.some(isTracked),
      untracked: named.some((k) => !isTracked(k)),
    };
  }

  /** How many files the archive holds (of `under` alone, when given). */
  async sentFiles(under?: string): Promise<number> {
    const sent = await this.sendsPath(under);
    return (await this.staged()).filter((e) => sent(e.path)).length;
  }

  /**
   * The captured tree, or its directory `under` alone (paths still from the top), as a tar stream
   * made by `git archive` from the snapshot's objects (C, and git's own: no particular tar
   * needed, so macOS's bsdtar does as well as GNU tar), gzip-compressed when asked. What is sent
   * is the tree `treeId` names, whatever is edited meanwhile; left-out files and symlinks that
   * leave the tree are not in it. Owners and times are not carried.
   */
  async archive(compress: boolean, under?: string): Promise<Readable> {
    const [tree, gitDir, pathspecs] = await Promise.all([this.treeId(), archiveGitDir(this.dir), this.sentPathspecs(under)]);
    const env: NodeJS.ProcessEnv = { ...process.env, ...GIT_ENV, GIT_DIR: gitDir, GIT_OBJECT_DIRECTORY: this.env.GIT_OBJECT_DIRECTORY, GIT_ALTERNATE_OBJECT_DIRECTORIES: this.env.GIT_ALTERNATE_OBJECT_DIRECTORIES };
    for (const k of ["GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_NAMESPACE"]) delete env[k];
    const archiver = spawn("git", ["-c", "tar.umask=022", "archive", "--format=tar", tree, "--", ...pathspecs], {
      cwd: this.dir,
      stdio: ["ignore", "pipe", "pipe"],
      env,
    });
    let err = "";
    archiver.stderr.on("data", (d: Buffer) => (err = (err + d.toString()).slice(-1000)));
    // Through a stream of our own: a child's pipe that has closed before the request reads
    // it counts as used, and fetch refuses it. Level 1: most of gzip's saving on source
    // code for a fraction of its time. Ended by git's exit, not by its output: a git that
    // fails part-way (an object gone) has written a well-formed tar of the files before, and
    // that would be sent, and remembered, as the tree.
    const out = compress ? createGzip({ level: 1 }) : new PassThrough({ highWaterMark: 1 << 20 });
    archiver.stdout.pipe(out, { end: false });
    archiver.on("error", (e) => out.destroy(new CheckoutReadError(`git archive could not start: ${e.message}`)));
    archiver.on("close", (code) => {
      if (code === 0) out.end();
      else out.destroy(new CheckoutReadError(`git archive could not read the checkout: ${err.trim() || `exit ${code}`}`));
    });
    return out;
  }
}

/**
 * Takes out of a kept scratch index the paths the checkout ignores now and the user's own index
 * does not track: a `.env` sent before it was added to .gitignore. Editing .gitignore leaves the
 * user's index as it was, so the kept index is used again, and `git add -A` updates a path an
 * index holds even when it is ignored: such a file would go on being sent. One the user tracks
 * (`git add -f`) stays.
 */
async function forgetIgnored(root: string, env: Record<string, string>): Promise<void> {
  const ignored = async (e?: Record<string, string>) => (await git(root, ["ls-files", "-z", "--cached", "--ignored", "--exclude-standard"], e)).split("\0").filter(Boolean);
  const held = await ignored(env);
  if (held.length === 0) return;
  const tracked = new Set(await ignored());
  const gone = held.filter((p) => !tracked.has(p)).map((p) => `:(literal)${p}`);
  for (let i = 0; i < gone.length; i += 500) await git(root, ["rm", "--cached", "-q", "--ignore-unmatch", "--", ...gone.slice(i, i + 500)], env);
}

/**
 * A git directory of the client's own, beside a checkout's scratch sets, for `git archive` to run
 * in: its attributes outrank the tree's `.gitattributes`, and turn off what archiving would
 * otherwise do to the tree (leave out `export-ignore` paths, which are often the tests; expand
 * `export-subst`; run filters such as Git LFS's, or convert line endings). The objects come from
 * the snapshot's set and the checkout's, so nothing of the checkout's own config or hooks runs.
 */
async function archiveGitDir(setsDir: string): Promise<string> {
  const dir = join(setsDir, "archive.git");
  const attributes = join(dir, "info", "attributes");
  if (await stat(attributes).then(() => false, () => true)) {
    await git(setsDir, ["init", "-q", "--bare", "--template="], { GIT_DIR: dir });
    await mkdir(join(dir, "info"), { recursive: true });
    await writeFile(attributes, AS_COMMITTED);
  }
  return dir;
}

/**
 * The checkout's object directory and index. A plain `.git` directory (the usual case) needs
 * no git process, and this runs on every call; worktrees, submodules and GIT_* overrides ask git.
 */
async function gitPaths(root: string): Promise<{ objects: string; index: string }> {
  const overridden = ["GIT_DIR", "GIT_OBJECT_DIRECTORY", "GIT_INDEX_FILE", "GIT_COMMON_DIR"].some((k) => process.env[k]);
  const dotGit = join(root, ".git");
  if (!overridden && (await stat(dotGit).catch(() => null))?.isDirectory()) {
    return { objects: join(dotGit, "objects"), index: join(dotGit, "index") };
  }
  const [objectsPath = "", indexPath = ""] = (await git(root, ["rev-parse", "--git-path", "objects", "--git-path", "index"])).split("\n");
  return { objects: resolve(root, objectsPath.trim()), index: resolve(root, indexPath.trim()) };
}

/**
 * Copies an index keeping its modification time (rounded down to the second); false when there
 * is none. git trusts a file's cached stat only when the file is older than the index holding
 * it; a copy stamped "now" would make an edit made in the same second as the index was
 * written, at the same size, look unchanged ("racy git"). Rounding down only re-reads more.
 */
async function copyIndex(index: string, to: string): Promise<boolean> {
  const st = await stat(index).catch(() => null);
  if (!st) return false;
  try {
    await copyFile(index, to);
  } catch (err) {
    // Gone since the stat (a concurrent snapshot replaced it): as if it had not been there.
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw err;
  }
  const t = Math.floor(st.mtimeMs / 1000);
  await utimes(to, t, t);
  return true;
}

/**
 * What identifies this state of the user's index: the checksum git writes at its end, which
 * changes whenever the index does. With `index.skipHash` (git 2.40+, `feature.manyFiles`) that
 * checksum is all zeros, so the file's identity and time stand in for it.
 */
async function indexChecksum(index: string): Promise<string> {
  const file = await open(index, "r").catch(() => null);
  if (!file) return "none";
  try {
    const st = await file.stat({ bigint: true });
    const size = Number(st.size);
    const tail = Buffer.alloc(Math.min(size, 32));
    await file.read(tail, 0, tail.length, size - tail.length);
    const sum = tail.subarray(-20);
    if (sum.some((b) => b !== 0)) return sum.toString("hex");
    return createHash("sha256").update(`${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`).digest("hex").slice(0, 40);
  } finally {
    await file.close();
  }
}

/** Scratch indexes and objects made from an earlier state of the user's index, once nothing can be using them. */
async function dropStale(dir: string, base: string): Promise<void> {
  const cutoff = Date.now() - STALE_SCRATCH_MS;
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (name.endsWith(base) || !/^(index|objects)-([0-9a-f]+|none)$|^index\.\d+\.[0-9a-f]+$/.test(name)) continue;
    const st = await stat(join(dir, name)).catch(() => null);
    // ctime, not mtime: a working copy carries its source index's mtime (copyIndex), which git
    // add leaves as it is when nothing changed, so a snapshot in use of a clean checkout whose
    // index is old would look stale (its tree then read as empty). ctime moves on every copy,
    // utimes and rename, and nothing can set it back.
    if (st && st.ctimeMs < cutoff) await rm(join(dir, name), { recursive: true, force: true });
  }
}

/** Scratch sets of checkouts not looked at for this long (moved, deleted, forgotten) are removed. */
const UNUSED_CHECKOUT_MS = 30 * 24 * 3600_000;

async function dropUnusedCheckouts(snapshots: string): Promise<void> {
  const cutoff = Date.now() - UNUSED_CHECKOUT_MS;
  for (const name of await readdir(snapshots).catch(() => [] as string[])) {
    if (!/^[0-9a-f]{16}$/.test(name)) continue;
    // The directory's mtime moves each time a snapshot keeps its index there.
    const st = await stat(join(snapshots, name)).catch(() => null);
    if (st && st.mtimeMs < cutoff) await rm(join(snapshots, name), { recursive: true, force: true });
  }
}

export class CheckoutReadError extends Error {
  override name = "CheckoutReadError";
}

/**
 * What the client remembers between calls, under the user's cache directory (never in the
 * checkout): the content address the service gave each tree it was sent, by git's id of
 * that tree, so the same tree is asked for by hash instead of sent again.
 */
export class TreeCache {
  private trees = new Map<string, TreeSummary>();
  private loaded = false;
  private readonly file: string;

  constructor(readonly dir = clientCacheDir()) {
    this.file = join(dir, "trees.json");
  }

  private async load(): Promise<void> {
    if (this.loaded) return;
    this.loaded = true;
    const raw = await readFile(this.file, "utf8").catch(() => null);
    try {
      if (raw) this.trees = new Map(Object.entries(JSON.parse(raw) as Record<string, TreeSummary>));
    } catch {
      /* a damaged cache is an empty one */
    }
  }

  async get(treeId: string): Promise<TreeSummary | undefined> {
    await this.load();
    return this.trees.get(treeId);
  }

  async put(treeId: string, summary: TreeSummary): Promise<void> {
    await this.load();
    this.trees.delete(treeId);
    this.trees.set(treeId, summary);
    // Bounded: the oldest entries go first (a Map keeps insertion order).
    while (this.trees.size > 10_000) this.trees.delete(this.trees.keys().next().value!);
    await mkdir(join(this.file, ".."), { recursive: true });
    // Of this write alone: two calls at once in one process (an agent's parallel calls) shared a pid's name, and one's rename failed.
    const tmp = `${this.file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
    await writeFile(tmp, JSON.stringify(Object.fromEntries(this.trees)));
    await rename(tmp, this.file);
  }
}

/**
 * What a symlink of the index points at, with "/" between its parts. Where git writes links as
 * plain files holding their target (core.symlinks=false, Git for Windows' default) that text is
 * the target: read as a failed readlink, every link was left out as one leaving the tree.
 */
async function linkTarget(path: string): Promise<string | null> {
  const st = await lstat(path).catch(() => null);
  if (st?.isSymbolicLink()) return (await readlink(path).catch(() => null))?.replaceAll("\\", "/") ?? null;
  // A link's text is a path: a larger file is no link's.
  if (!st?.isFile() || st.size > 4096) return null;
  return (await readFile(path, "utf8").catch(() => null))?.replaceAll("\\", "/") ?? null;
}
