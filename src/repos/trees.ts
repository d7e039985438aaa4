import { createHash, randomBytes } from "node:crypto";
import { accessSync, constants, existsSync, statfsSync } from "node:fs";
import { chmod, mkdir, readFile, readdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { BACKDATE_MARGIN_MS, backdate, diskUsage, filesystemOf, freeBytes, removeDir, touch } from "./disk.js";

/**
 * Where materialized trees live, and how much of the host they may take. Trees go to a fast
 * place first (by default one directory per cache under a root on the host's tmpfs, shared by
 * every cache on the host) and spill to the cache's own disk when the fast place is full of
 * trees still in use: memory is bounded even when every tree is busy, and no running job loses
 * its tree. Knows nothing of git.
 */

export interface TreeStoreOptions {
  /** The repository cache's directory; spilled trees go to <cacheDir>/trees. */
  cacheDir: string;
  /** An explicit directory for this cache's trees (budget over that directory alone). */
  treeDir?: string;
  /**
   * A directory shared by the caches of one host, one subdirectory each, all under one budget
   * (default: defaultTreeRoot(), the host's tmpfs when it has room). Ignored with `treeDir`.
   */
  treeRoot?: string;
  /** Trees kept; beyond this the least recently used idle ones are removed (default: no limit). */
  maxTrees?: number;
  /** Bytes of trees in the fast place (default: defaultTreeBudget; 0: no limit). */
  maxTreeBytes?: number;
  /** A tree is idle, and may be removed, once its jobs released it, or when untouched this long (default 1 h). */
  treeIdleMs?: number;
  /**
   * Disk kept free where trees spill (the cache's own disk, which its mirrors share): idle
   * spilled trees are removed below it, and a tree written there stops at half of it, as a
   * clone does (default 0: none). Only a count bounded them: 200 trees of 500 MB uploads fill
   * most disks.
   */
  spillMinFreeBytes?: number;
  /** Bytes free on that disk (default: what the filesystem says). */
  spillFreeBytes?: (dir: string) => number | null;
  /**
   * Trees made of what a client sent (an upload, a patch) are removed once unused this long,
   * within the limits or not (default: only over them): the code a client sent stayed in the
   * trees, readable on the host, long after the upload itself was dropped.
   */
  sentMaxIdleMs?: number;
}

/** A tree made of what a client sent: an upload's (`uploads/<id>`, `uploads/<id>-patch-…`), or a commit with a patch (`patched-…`). */
const isSent = (path: string) => basename(dirname(path)) === "uploads" || basename(path).startsWith("patched-");

interface Tree {
  path: string;
  /** When a job last touched it; HELD (never idle) while a job holds it. */
  used: number;
  bytes: number;
  idleMs: number;
  fast: boolean;
  /** Where its holds are. */
  holds: string;
}

export class TreeStore {
  /** Where new trees go while there is room. */
  readonly dir: string;
  /** Where they go when there is not: the cache's own disk. */
  readonly spillDir: string;
  /** The shared root `dir` is one subdirectory of, when shared. */
  readonly root: string | undefined;
  readonly maxBytes: number;
  private readonly cacheDir: string;
  private readonly idleMs: number;
  /** What each tree's size file said, by path (a tree at a path is always the same tree). */
  private sizes = new Map<string, number>();

  constructor(private readonly options: TreeStoreOptions) {
    this.cacheDir = resolve(options.cacheDir);
    this.spillDir = join(this.cacheDir, "trees");
    this.idleMs = options.treeIdleMs ?? 3_600_000;
    const root = options.treeDir ? undefined : (options.treeRoot ?? defaultTreeRoot());
    this.root = root === undefined ? undefined : resolve(root);
    this.dir = options.treeDir ? resolve(options.treeDir) : this.root ? join(this.root, cacheId(this.cacheDir)) : this.spillDir;
    this.maxBytes = options.maxTreeBytes ?? defaultTreeBudget(this.dir);
  }

  /** The tree at `rel` (e.g. `<repo key>/<sha>`) if it is in either place, marked as just used. */
  async find(rel: string): Promise<string | undefined> {
    for (const base of this.places()) {
      const path = join(base, rel);
      if (existsSync(path)) {
        await touch(path);
        return path;
      }
    }
    return undefined;
  }

  /**
   * Marks the tree at `treePath` as used by one job until the returned release runs. Released
   * and held by no other job, the tree is idle at once instead of after the idle time, so the
   * budget can make room with it rather than send the next new tree to disk (an eval writes a
   * tree per instance and uses each for seconds). A holder that dies without releasing holds
   * the tree for the idle time, as a plain use does. Undefined when the tree went meanwhile.
   */
  async hold(treePath: string): Promise<(() => Promise<void>) | undefined> {
    const { holds, name } = this.holdsOf(treePath);
    // Named after the trees jobs use: listed, they named trees to read by path.
    await mkdir(holds, { recursive: true, mode: TREE_PARENT_MODE });
    const file = join(holds, `${name}.${randomBytes(6).toString("hex")}`);
    await writeFile(file, "");
    await touch(treePath);
    if (!existsSync(treePath)) {
      await rm(file, { force: true });
      return undefined;
    }
    let released = false;
    return async () => {
      if (released) return;
      released = true;
      await rm(file, { force: true });
      if (!(await liveHolds(holds, this.idleMs)).has(name)) await backdate(treePath, this.idleMs);
    };
  }

  /** A tree's holds live in its cache's fast directory (spilled trees' too), beside no tree. */
  private holdsOf(treePath: string): { holds: string; name: string } {
    const parts = treePath.split("/");
    return { holds: join(this.dir, HOLDS_DIR, parts.at(-2)!), name: parts.at(-1)! };
  }

  /**
   * Where a new tree at `rel` goes: the fast place when, idle trees removed, the trees there
   * hold less than the budget and the tmpfs keeps a margin free; else the spill directory.
   */
  async place(rel: string): Promise<string> {
    await this.guard();
    if (this.dir === this.spillDir) return join(this.dir, rel);
    const fastBytes = await this.trim();
    const full = (this.maxBytes > 0 && fastBytes >= this.maxBytes) || !tmpfsHasRoom(this.dir);
    if (full) return join(this.spillDir, rel);
    await this.claim();
    return join(this.dir, rel);
  }

  /**
   * The most a single tree written at `treePath` may take: in the fast place, the whole budget
   * (one repository of huge files must not take the host's memory); on disk, what keeps half
   * the disk's floor free.
   */
  limitFor(treePath: string): number {
    const fast = this.dir !== this.spillDir && treePath.startsWith(`${this.dir}/`);
    if (fast) return this.maxBytes > 0 ? this.maxBytes : Infinity;
    const floor = this.options.spillMinFreeBytes ?? 0;
    return floor > 0 ? Math.max(0, floor / 2 - this.diskShortOf(floor)) : Infinity;
  }

  /** How many bytes the spill disk lacks to have `want` free (≤ 0: none, or unreadable). */
  private diskShortOf(want: number): number {
    const free = (this.options.spillFreeBytes ?? freeBytes)(this.spillDir);
    return free === null ? -Infinity : want - free;
  }

  /**
   * The most recently used complete tree in the directory a new tree at `treePath` goes to
   * (the same repository, the same filesystem) whose name `accept`s, if any: what a new tree
   * can be derived from.
   */
  async newestBeside(treePath: string, accept: (name: string) => boolean): Promise<string | undefined> {
    const dir = treePath.slice(0, treePath.lastIndexOf("/"));
    let newest: { path: string; used: number } | undefined;
    for (const name of await list(dir)) {
      if (name.includes(".tmp-") || !accept(name) || join(dir, name) === treePath) continue;
      const st = await stat(join(dir, name)).catch(() => null);
      if (st?.isDirectory() && (!newest || st.mtimeMs > newest.used)) newest = { path: join(dir, name), used: st.mtimeMs };
    }
    return newest?.path;
  }

  /** The bytes recorded for the tree at `treePath` (0: none recorded). */
  async bytesOf(treePath: string): Promise<number> {
    return this.sizes.get(treePath) ?? treeBytes(treePath);
  }

  /**
   * Moves the tree at `treePath` to `dest`, for a new tree to be made of it, when no job uses
   * it (idle, no live hold); false when one does or it is gone.
   */
  async take(treePath: string, dest: string): Promise<boolean> {
    return (await moveIfUnused(treePath, dest, this.holdsOf(treePath).holds, this.idleMs)) === "moved";
  }

  /** Where a tree at `rel` goes on the cache's own disk. */
  spillPath(rel: string): string {
    return join(this.spillDir, rel);
  }

  /**
   * Records what a new tree, still at `builtAt`, costs the host (for the budget) before it is
   * renamed to `treePath`. Blocks, not bytes: on a tmpfs a tree of small files takes up to
   * twice its size (a page per file at least).
   */
  async recordSize(treePath: string, builtAt: string): Promise<void> {
    // Without `du` (a minimal image) the tree goes uncounted rather than the job failing.
    await this.recordBytes(treePath, await diskUsage(builtAt).catch(() => 0));
  }

  /** The same, for a tree whose cost is known without reading it back (a git tree: its files' pages). */
  async recordBytes(treePath: string, bytes: number): Promise<void> {
    await writeFile(`${treePath}${SIZE_SUFFIX}`, String(bytes));
  }

  /** Removes idle trees over the limits; returns how many. */
  async evict(): Promise<number> {
    let removed = 0;
    await this.trim(() => removed++);
    return removed;
  }

  /**
   * Removes what nobody will use again: half-made trees (`*.tmp-*`) older than `olderThanMs`
   * that a crashed worker left, under a shared root the trees of caches whose directory is
   * gone, and trees in the layout before the shared root. Returns how many.
   */
  async sweep(olderThanMs: number): Promise<number> {
    let removed = 0;
    const cutoff = Date.now() - olderThanMs;
    for (const base of this.places()) {
      for (const repo of await list(base)) {
        for (const name of await list(join(base, repo))) {
          if (!name.includes(".tmp-")) continue;
          const path = join(base, repo, name);
          const st = await stat(path).catch(() => null);
          if (st && st.mtimeMs < cutoff) {
            await rm(path, { recursive: true, force: true }).catch(() => undefined);
            removed++;
          }
        }
      }
    }
    // Holds whose job died without releasing them: they count no longer than the idle time.
    const holds = join(this.dir, HOLDS_DIR);
    for (const repo of await list(holds)) {
      for (const name of await list(join(holds, repo))) {
        const st = await stat(join(holds, repo, name)).catch(() => null);
        if (st && st.mtimeMs < Date.now() - this.idleMs) await rm(join(holds, repo, name), { force: true }).catch(() => undefined);
      }
    }
    // Before the shared root, each cache had a tmpfs directory of its own beside it: this
    // cache's goes now, any other once every tree in it is idle (an older worker may still run).
    if (this.root) {
      const parent = join(this.root, "..");
      for (const name of await list(parent)) {
        if (!LEGACY_RE.test(name)) continue;
        const legacy = join(parent, name);
        if (name !== `codescout-trees-${cacheId(this.cacheDir)}` && !(await allIdle(legacy, this.idleMs))) continue;
        await removeDir(legacy);
        removed++;
      }
    }
    await this.trim(() => removed++);
    return removed;
  }

  private places(): string[] {
    return this.dir === this.spillDir ? [this.dir] : [this.dir, this.spillDir];
  }

  /**
   * Removes orphaned caches' idle trees, then the least recently used idle trees while the limits
   * are exceeded, each judged idle by its own cache's idle time (written beside its trees),
   * so one cache never takes a tree another is using. Returns the bytes left in the fast place.
   */
  private async trim(onRemove: () => void = () => undefined): Promise<number> {
    let trees: Tree[] = [];
    const sizes = new Map<string, number>();
    // `owner`: the cache directory whose holds say which of these trees jobs still use.
    // Every tree's stat read at once, and its size file read once by this store (a tree
    // never changes once in place): one after another they took ~0.25 ms a tree, twice per
    // new tree, and a budget of trees on a large tmpfs is a thousand of them.
    const scan = async (base: string, idleMs: number, fast: boolean, owner: string) => {
      const repos = (await list(base)).filter((repo) => !repo.startsWith("."));
      const found = await Promise.all(
        repos.map(async (repo) => {
          const holds = join(owner, HOLDS_DIR, repo);
          const [held, names] = await Promise.all([liveHolds(holds, idleMs), list(join(base, repo))]);
          const local = names.filter((name) => !name.includes(".tmp-") && !name.endsWith(SIZE_SUFFIX));
          return Promise.all(
            local.map(async (name): Promise<Tree | undefined> => {
              const path = join(base, repo, name);
              const [st, bytes] = await Promise.all([stat(path).catch(() => null), this.bytesOf(path)]);
              if (!st?.isDirectory()) return undefined;
              if (bytes > 0) sizes.set(path, bytes);
              return { path, used: held.has(name) ? HELD : st.mtimeMs, bytes, idleMs, fast, holds };
            }),
          );
        }),
      );
      for (const tree of found.flat()) if (tree) trees.push(tree);
    };
    if (this.root) {
      for (const id of await list(this.root)) {
        const dir = join(this.root, id);
        // Only caches' directories: whatever else an operator keeps there is not ours to take.
        if (dir === this.dir || !CACHE_ID_RE.test(id)) continue;
        const owner = await readOwner(dir);
        const before = trees.length;
        await scan(dir, owner?.idleMs ?? this.idleMs, true, dir);
        // An orphan goes whole once its trees are idle too: a worker in another mount namespace
        // may see its cache directory where this process does not.
        const own = trees.slice(before);
        if (owner && !existsSync(owner.cacheDir) && own.every((t) => t.used <= Date.now() - t.idleMs)) {
          await removeDir(dir);
          trees = trees.slice(0, before);
          onRemove();
        }
      }
    }
    await scan(this.dir, this.idleMs, this.dir !== this.spillDir, this.dir);
    if (this.dir !== this.spillDir) await scan(this.spillDir, this.idleMs, false, this.dir);
    // Only the trees still there: the map stays as small as the store.
    this.sizes = sizes;

    const sentMaxIdle = this.options.sentMaxIdleMs;
    if (sentMaxIdle) {
      const cut = Date.now() - sentMaxIdle;
      const kept: Tree[] = [];
      for (const t of trees) {
        // A tree its last job let go of reads as used `idleMs` before (hold's release backdates
        // it, so the budget takes it first): its last use is at most that much later.
        if (t.used === HELD || t.used + t.idleMs + BACKDATE_MARGIN_MS > cut || !isSent(t.path)) {
          kept.push(t);
          continue;
        }
        if ((await removeIfUnused(t, onRemove)) === "in use") kept.push(t);
      }
      trees = kept;
    }

    const maxTrees = this.options.maxTrees || Infinity;
    const maxBytes = this.maxBytes || Infinity;
    // The byte budget is the fast place's (all trees' when there is no other place): a tree
    // spilled to disk is not in it, and an idle tree in memory must not go to make room for one.
    const budgeted = (t: Tree) => t.fast || this.dir === this.spillDir;
    let count = trees.length;
    let bytes = trees.reduce((sum, t) => sum + (budgeted(t) ? t.bytes : 0), 0);
    let fastBytes = trees.reduce((sum, t) => sum + (t.fast ? t.bytes : 0), 0);
    const floor = this.options.spillMinFreeBytes ?? 0;
    let diskShort = floor > 0 ? this.diskShortOf(floor) : 0;
    const over = () => count > maxTrees || bytes > maxBytes || diskShort > 0;
    if (!over()) return fastBytes;
    const now = Date.now();
    for (const t of trees.sort((a, b) => a.used - b.used)) {
      if (!over()) break;
      // Only the bytes or the disk are over: a tree counted in neither would not bring them under.
      if (count <= maxTrees && !(bytes > maxBytes && budgeted(t)) && !(diskShort > 0 && !t.fast)) continue;
      if (t.used > now - t.idleMs) continue;
      if ((await removeIfUnused(t, onRemove)) === "in use") continue;
      count--;
      if (budgeted(t)) bytes -= t.bytes;
      if (t.fast) fastBytes -= t.bytes;
      else diskShort -= t.bytes;
    }
    return fastBytes;
  }

  private guarded = false;

  /**
   * The directories above the trees are passed through, not listed, by anyone but their owner:
   * a tree's own mode lets the sandbox's user read it (mounted, it is the sandbox's top), and
   * listed from above, another user of the host read every tree, a private repository's and
   * the code clients sent among them. A tree's name is a commit's sha or a content address.
   */
  async guard(): Promise<void> {
    if (this.guarded) return;
    this.guarded = true;
    for (const dir of [this.root, this.dir, this.spillDir]) {
      if (!dir) continue;
      await chmod(dir, TREE_PARENT_MODE).catch(() => undefined);
      if (dir === this.root) continue;
      // Each repository's directory of trees too, and of holds, made before (0755): their names are computed from a URL.
      for (const parent of [dir, join(dir, HOLDS_DIR)]) {
        const entries = await readdir(parent, { withFileTypes: true }).catch(() => []);
        for (const e of entries) if (e.isDirectory() && !e.name.startsWith(".")) await chmod(join(parent, e.name), TREE_PARENT_MODE).catch(() => undefined);
      }
      await chmod(join(dir, HOLDS_DIR), TREE_PARENT_MODE).catch(() => undefined);
    }
  }

  /** Marks this cache's directory under the shared root with its owner and idle time. */
  private async claim() {
    if (!this.root || existsSync(join(this.dir, OWNER_FILE))) return;
    // The owner must exist before its trees do, or another cache would take them for orphans.
    await mkdir(this.cacheDir, { recursive: true });
    // Made unlistable as it is made (guard() closes those made before).
    await mkdir(this.dir, { recursive: true, mode: TREE_PARENT_MODE });
    await writeFile(join(this.dir, OWNER_FILE), JSON.stringify({ cacheDir: this.cacheDir, idleMs: this.idleMs }));
  }
}

/** Directories holding trees: entered by anyone (a rootless engine mounting a tree), listed by their owner alone. */
export const TREE_PARENT_MODE = 0o711;

/** Where a tree is written, `tmp` (then renamed to its place): its parents made (or kept) unlistable, itself readable. */
export async function makeTreeDir(tmp: string, mode = 0o755): Promise<void> {
  await mkdir(dirname(tmp), { recursive: true, mode: TREE_PARENT_MODE });
  await chmod(dirname(tmp), TREE_PARENT_MODE);
  await mkdir(tmp, { mode });
}

/** Beside each tree, a small file with its size, for the byte budget. */
const SIZE_SUFFIX = ".bytes";
/** In a cache's directory: <repo>/<tree>.<id>, one empty file per job holding the tree. */
const HOLDS_DIR = ".holds";
/** A held tree's last use: later than any, and finite, so that sorting by it stays consistent. */
const HELD = Number.MAX_SAFE_INTEGER;
const OWNER_FILE = ".owner.json";

const treeBytes = async (path: string) => Number(await readFile(`${path}${SIZE_SUFFIX}`, "utf8").catch(() => "0")) || 0;

const list = (dir: string) => readdir(dir).catch(() => [] as string[]);

/** The trees in one repository's holds directory that a job holds (a hold older than `idleMs` lapsed). */
async function liveHolds(holds: string, idleMs: number): Promise<Set<string>> {
  const cutoff = Date.now() - idleMs;
  const files = await list(holds);
  const times = await Promise.all(files.map((file) => stat(join(holds, file)).then((st) => st.mtimeMs, () => 0)));
  return new Set(files.filter((_, i) => times[i]! > cutoff).map((file) => file.slice(0, file.lastIndexOf("."))));
}

async function readOwner(dir: string): Promise<{ cacheDir: string; idleMs: number } | undefined> {
  try {
    const owner = JSON.parse(await readFile(join(dir, OWNER_FILE), "utf8")) as { cacheDir?: unknown; idleMs?: unknown };
    if (typeof owner.cacheDir === "string" && typeof owner.idleMs === "number") return { cacheDir: owner.cacheDir, idleMs: owner.idleMs };
  } catch {
    /* not claimed yet, or not ours */
  }
  return undefined;
}

const LEGACY_RE = /^codescout-trees-[0-9a-f]{12}$/;

/** True when no tree in an old-layout directory (<dir>/<repo>/<tree>) was used within `idleMs`. */
async function allIdle(dir: string, idleMs: number): Promise<boolean> {
  const cutoff = Date.now() - idleMs;
  for (const repo of await list(dir)) {
    for (const name of await list(join(dir, repo))) {
      const st = await stat(join(dir, repo, name)).catch(() => null);
      if (st && st.mtimeMs > cutoff) return false;
    }
  }
  return true;
}

const CACHE_ID_RE = /^[0-9a-f]{12}(\.tmp-evict-[0-9a-f]{6})?$/;
const cacheId = (cacheDir: string) => createHash("sha256").update(resolve(cacheDir)).digest("hex").slice(0, 12);

const TMPFS_MAGIC = 0x01021994;
/** A tmpfs with less room than this is left alone (e.g. a container's 64 MB /dev/shm). */
const TMPFS_MIN_FREE = 1 << 30;

/** False when `dir` is on a tmpfs with less than TMPFS_MIN_FREE left (whoever filled it). */
function tmpfsHasRoom(dir: string): boolean {
  const st = filesystemOf(dir);
  return !st || st.type !== TMPFS_MAGIC || st.bavail * st.bsize >= TMPFS_MIN_FREE;
}

/**
 * The shared root for trees when the operator did not say: <shm>/codescout-trees-u<uid> when
 * `shm` is a writable tmpfs with at least 1 GiB free; else none (trees stay under each cache).
 * One root per user: another user's root could not be written, nor its trees removed.
 */
export function defaultTreeRoot(shm = "/dev/shm"): string | undefined {
  try {
    const st = statfsSync(shm);
    if (st.type === TMPFS_MAGIC && st.bavail * st.bsize >= TMPFS_MIN_FREE) {
      accessSync(shm, constants.W_OK);
      return join(shm, `codescout-trees-u${process.getuid?.() ?? 0}`);
    }
  } catch {
    /* no tmpfs here */
  }
  return undefined;
}

/** Where a cache's trees go by default (its directory under the shared root, or beside its mirrors). */
export function defaultTreeDir(cacheDir: string, shm = "/dev/shm"): string {
  const root = defaultTreeRoot(shm);
  return root ? join(root, cacheId(cacheDir)) : join(resolve(cacheDir), "trees");
}

/** The default byte budget for trees: a quarter of the tmpfs they live on, or none on disk. */
export function defaultTreeBudget(treeDir: string): number {
  const st = filesystemOf(treeDir);
  return st?.type === TMPFS_MAGIC ? Math.floor((st.blocks * st.bsize) / 4) : 0;
}

/**
 * Moves the tree at `path` to `dest` when no job uses it (untouched for `idleMs`, no live hold
 * in `holds`), its size record dropped. A job that holds the tree as it moves gets it back:
 * hold() writes its hold before it looks for the tree, and this looks for holds again after
 * the move, so one of the two sees the other.
 */
/**
 * Removes a listed tree unless a job uses it: looked at again as it is moved out of the way, since
 * a job may have taken the tree up since the listing.
 */
async function removeIfUnused(t: Tree, onRemove: () => void): Promise<"moved" | "in use" | "gone"> {
  const doomed = `${t.path}.tmp-evict-${randomBytes(3).toString("hex")}`;
  const moved = await moveIfUnused(t.path, doomed, t.holds, t.idleMs);
  if (moved === "moved") {
    await removeDir(doomed);
    onRemove();
  }
  return moved;
}

async function moveIfUnused(path: string, dest: string, holds: string, idleMs: number): Promise<"moved" | "in use" | "gone"> {
  const st = await stat(path).catch(() => null);
  if (!st?.isDirectory()) return "gone";
  if (st.mtimeMs > Date.now() - idleMs) return "in use";
  const name = path.slice(path.lastIndexOf("/") + 1);
  if ((await liveHolds(holds, idleMs)).has(name)) return "in use";
  if (!(await rename(path, dest).then(() => true, () => false))) return "gone";
  if ((await liveHolds(holds, idleMs)).has(name)) {
    await rename(dest, path).catch(() => undefined);
    return "in use";
  }
  await rm(`${path}${SIZE_SUFFIX}`, { force: true }).catch(() => undefined);
  return "moved";
}
