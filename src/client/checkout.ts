import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFile, lstat, mkdtemp, mkdir, readFile, readlink, rename, rm, writeFile } from "node:fs/promises";
import type { BigIntStats } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { isAbsolute, join, posix, resolve } from "node:path";
import { promisify } from "node:util";
import { gzip } from "node:zlib";
import { pack } from "tar-stream";
import type { JobEvent } from "../store/events.js";
import type { JobView } from "../store/jobStore.js";
import { treeDigest, type TreeEntry } from "../uploads/digest.js";
import type { UploadInfo } from "../uploads/store.js";
import { ServiceRefused, type ServiceClient } from "./service.js";

/**
 * Localizing in a developer's own checkout, edits included. When HEAD is on a remote the
 * service can fetch, the request names that commit and carries the uncommitted changes as
 * a patch (small, and the service reuses its cached mirror). Otherwise, or when the service
 * cannot fetch the remote, the tree itself is uploaded: the tracked files and the untracked
 * ones git does not ignore, so nothing ignored (.env, node_modules) leaves the machine.
 */

const run = promisify(execFile);
const GIT_ENV = { GIT_TERMINAL_PROMPT: "0", GIT_OPTIONAL_LOCKS: "0", LC_ALL: "C" };

async function git(cwd: string, args: string[], env: Record<string, string> = {}): Promise<string> {
  const { stdout } = await run("git", args, { cwd, env: { ...process.env, ...GIT_ENV, ...env }, maxBuffer: 1 << 30, encoding: "utf8" });
  return stdout;
}

export class CheckoutError extends Error {
  override name = "CheckoutError";
}

export interface Checkout {
  root: string;
  /** HEAD's sha; null in a repository with no commit yet. */
  head: string | null;
  /** The URL of a remote whose branches contain HEAD (credentials removed); null when none does. */
  remoteUrl: string | null;
}

export async function describeCheckout(dir: string): Promise<Checkout> {
  let root: string;
  try {
    root = (await git(resolve(dir), ["rev-parse", "--show-toplevel"])).trim();
  } catch {
    throw new CheckoutError(`${dir} is not inside a git work tree (localizing a local checkout needs git to tell tracked files from ignored ones)`);
  }
  const head = (await git(root, ["rev-parse", "--verify", "--quiet", "HEAD"]).catch(() => "")).trim() || null;
  if (!head) return { root, head, remoteUrl: null };
  const branches = (await git(root, ["branch", "-r", "--contains", "HEAD", "--format=%(refname:short)"]).catch(() => ""))
    .split("\n")
    .map((b) => b.trim())
    .filter((b) => b && !b.endsWith("/HEAD"));
  const remotes = [...new Set(branches.map((b) => b.split("/")[0]!))].sort((a, b) => (a === "origin" ? -1 : b === "origin" ? 1 : a.localeCompare(b)));
  for (const remote of remotes) {
    const raw = (await git(root, ["remote", "get-url", remote]).catch(() => "")).trim();
    const url = serviceUrlOf(raw, root);
    if (url) return { root, head, remoteUrl: url };
  }
  return { root, head, remoteUrl: null };
}

/**
 * A remote URL as the service would fetch it: https for scp-like and ssh forms (the
 * service fetches over https only), file:// for a local path, and never with credentials.
 */
export function serviceUrlOf(raw: string, root: string): string | null {
  if (!raw) return null;
  const scp = /^(?:[^@/]+@)?([^:/]+):(?!\/)(.+)$/.exec(raw);
  if (scp && !/^[a-z]+:\/\//i.test(raw)) return `https://${scp[1]}/${scp[2]!.replace(/^\/+/, "")}`;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(raw)) {
    try {
      const u = new URL(raw);
      if (u.protocol === "ssh:" || u.protocol === "git:") return `https://${u.hostname}${u.pathname}`;
      u.username = "";
      u.password = "";
      return u.toString();
    } catch {
      return null;
    }
  }
  return `file://${isAbsolute(raw) ? raw : resolve(root, raw)}`;
}

/**
 * The work tree's difference from HEAD, untracked-but-not-ignored files included, as
 * `git diff --binary` prints it. Built in a scratch index and object directory, so the
 * user's index and repository are never written to.
 */
export async function workingPatch(root: string): Promise<string> {
  const scratch = await mkdtemp(join(tmpdir(), "codescout-patch-"));
  try {
    const objects = resolve(root, (await git(root, ["rev-parse", "--git-path", "objects"])).trim());
    const index = resolve(root, (await git(root, ["rev-parse", "--git-path", "index"])).trim());
    await mkdir(join(scratch, "objects"));
    const env = { GIT_INDEX_FILE: join(scratch, "index"), GIT_OBJECT_DIRECTORY: join(scratch, "objects"), GIT_ALTERNATE_OBJECT_DIRECTORIES: objects };
    // A copy of the real index keeps git's stat cache: unchanged files are not re-read.
    await copyFile(index, env.GIT_INDEX_FILE).catch(() => git(root, ["read-tree", "HEAD"], env));
    await git(root, ["add", "-A", "--", "."], env);
    return await git(root, ["diff", "--cached", "--binary", "--no-color", "--no-ext-diff", "HEAD"], env);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** One file or symlink of the tree to send, with what its content hash needs. */
interface ListedEntry {
  entry: TreeEntry;
  size: number;
}

export interface ListedTree {
  root: string;
  sha256: string;
  files: number;
  bytes: number;
  entries: ListedEntry[];
  /** Symlinks left out because they point outside the tree (the service would refuse them). */
  skipped: string[];
}

/**
 * The tracked and untracked-not-ignored files with their content hashes, and the tree's
 * content address. Hashes of files unchanged since the last call (same size, mtime, inode)
 * come from a small cache, as git's index does it, so asking "does the service have this
 * tree?" again costs a stat per file, not a read.
 */
export async function listCheckout(root: string, cache = new HashCache(root)): Promise<ListedTree> {
  const listed = (await git(root, ["ls-files", "-z", "--cached", "--others", "--exclude-standard"])).split("\0").filter(Boolean);
  const paths = [...new Set(listed)].sort();
  await cache.load();
  const entries: ListedEntry[] = [];
  const skipped: string[] = [];
  let bytes = 0;
  await Promise.all(
    chunk(paths, 64).map(async (group) => {
      for (const path of group) {
        const full = join(root, path);
        const st = await lstat(full, { bigint: true }).catch(() => null);
        // Deleted in the work tree, or a submodule's directory: not part of this tree.
        if (!st || st.isDirectory()) continue;
        if (st.isSymbolicLink()) {
          const target = await readlink(full);
          const inside = !isAbsolute(target) && !posix.normalize(posix.join(posix.dirname(path), target)).startsWith("..");
          if (inside) entries.push({ entry: { kind: "link", path, target }, size: 0 });
          else skipped.push(path);
          continue;
        }
        if (!st.isFile()) continue;
        const executable = (Number(st.mode) & 0o111) !== 0;
        const sha256 = cache.get(path, st) ?? cache.put(path, st, createHash("sha256").update(await readFile(full)).digest("hex"));
        bytes += Number(st.size);
        entries.push({ entry: { kind: "file", path, executable, sha256 }, size: Number(st.size) });
      }
    }),
  );
  await cache.save();
  entries.sort((x, y) => (x.entry.path < y.entry.path ? -1 : 1));
  return { root, sha256: treeDigest(entries.map((e) => e.entry)), files: entries.filter((e) => e.entry.kind === "file").length, bytes, entries, skipped };
}

/** The listed tree as a tar (gzip-compressed unless the service is on this machine). */
export async function packTree(tree: ListedTree, compress: boolean): Promise<Buffer> {
  const tar = pack();
  const chunks: Buffer[] = [];
  tar.on("data", (c) => chunks.push(c as Buffer));
  const ended = new Promise<void>((r) => tar.on("end", () => r()));
  for (const { entry } of tree.entries) {
    if (entry.kind === "link") {
      await new Promise<void>((res, rej) => tar.entry({ name: entry.path, type: "symlink", linkname: entry.target, mtime: new Date(0) }, (e) => (e ? rej(e) : res())));
      continue;
    }
    const content = await readFile(join(tree.root, entry.path));
    // A file changed since it was listed would not match the digest: the service would refuse the id.
    if (createHash("sha256").update(content).digest("hex") !== entry.sha256) throw new CheckoutError(`${entry.path} changed while it was being sent; try again`);
    await new Promise<void>((res, rej) =>
      tar.entry({ name: entry.path, size: content.length, mode: entry.executable ? 0o755 : 0o644, mtime: new Date(0) }, content, (e) => (e ? rej(e) : res())),
    );
  }
  tar.finalize();
  await ended;
  const raw = Buffer.concat(chunks);
  // Level 1: most of gzip's saving on source code for a fraction of its time.
  return compress ? await promisify(gzip)(raw, { level: 1 }) : raw;
}

/** Sends the tree unless the service already holds it (asked by its content address first). */
export async function uploadCheckout(client: ServiceClient, root: string, say: (line: string) => void): Promise<UploadInfo> {
  const tree = await listCheckout(root);
  for (const path of tree.skipped) say(`left out ${path}: a symlink that points outside the tree`);
  const known = await client.upload(tree.sha256);
  if (known) {
    say(`the service already holds this tree (${tree.files} files)`);
    return known;
  }
  // Over loopback, compressing costs more time than it saves.
  const archive = await packTree(tree, !isLoopbackUrl(client.baseUrl));
  say(`uploading ${tree.files} files (${(archive.length / 1e6).toFixed(1)} MB)`);
  const info = await client.sendUpload(archive);
  if (info.upload_id !== tree.sha256) throw new CheckoutError(`the service computed another id for the tree (${info.upload_id}, here ${tree.sha256})`);
  return info;
}

function isLoopbackUrl(url: string): boolean {
  const host = new URL(url).hostname.replace(/^\[|\]$/g, "");
  return host === "localhost" || host === "::1" || /^127\./.test(host);
}

/** `list` cut into at most `groups` runs, read concurrently. */
function chunk<T>(list: T[], groups: number): T[][] {
  const size = Math.max(1, Math.ceil(list.length / groups));
  const out: T[][] = [];
  for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
  return out;
}

/**
 * Content hashes of a checkout's files by (size, mtime, ctime, inode), kept under the user's
 * cache directory (never in the checkout). A file touched within the last two seconds is not
 * cached: its timestamp could still be shared by a later change.
 */
export class HashCache {
  private entries = new Map<string, [string, string]>();
  private dirty = false;
  private readonly file: string;

  constructor(root: string, dir = process.env.CODESCOUT_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "codescout")) {
    this.file = join(dir, "trees", `${createHash("sha256").update(root).digest("hex").slice(0, 32)}.json`);
  }

  private static key(st: BigIntStats): string {
    return `${st.size}:${st.mtimeNs}:${st.ctimeNs}:${st.ino}`;
  }

  async load(): Promise<void> {
    const raw = await readFile(this.file, "utf8").catch(() => null);
    if (!raw) return;
    try {
      this.entries = new Map(Object.entries(JSON.parse(raw) as Record<string, [string, string]>));
    } catch {
      this.entries = new Map();
    }
  }

  get(path: string, st: BigIntStats): string | undefined {
    const hit = this.entries.get(path);
    return hit && hit[0] === HashCache.key(st) ? hit[1] : undefined;
  }

  put(path: string, st: BigIntStats, sha256: string): string {
    if (Date.now() - Number(st.mtimeNs / 1_000_000n) > 2_000) {
      this.entries.set(path, [HashCache.key(st), sha256]);
      this.dirty = true;
    }
    return sha256;
  }

  async save(): Promise<void> {
    if (!this.dirty) return;
    await mkdir(join(this.file, ".."), { recursive: true });
    const tmp = `${this.file}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(Object.fromEntries(this.entries)));
    await rename(tmp, this.file);
    this.dirty = false;
  }
}

export interface CheckoutRequest {
  issue: string;
  options: Record<string, unknown>;
}

export interface CheckoutHooks {
  signal?: AbortSignal;
  onEvent?: (event: JobEvent) => void;
  /** Lines about what the client itself does (fallbacks, uploads). */
  say: (line: string) => void;
}

/** Refusals after which the tree is uploaded instead: the service cannot use the remote, or the patch. */
const UPLOAD_INSTEAD = new Set(["invalid_repository", "invalid_commit", "patch_too_large", "invalid_patch", "tokens_disabled"]);
/** Job failures after which the tree is uploaded instead: the service could not fetch, or apply. */
const UPLOAD_AFTER = new Set(["repository_unavailable", "commit_not_found", "invalid_repository", "patch_does_not_apply"]);

/** Localizes in the checkout at `dir`, as it is on disk now; resolves with the job's end. */
export async function localizeCheckout(client: ServiceClient, dir: string, request: CheckoutRequest, hooks: CheckoutHooks): Promise<JobView> {
  const checkout = await describeCheckout(dir);
  if (checkout.remoteUrl && checkout.head) {
    const patch = await workingPatch(checkout.root);
    const repo = { url: checkout.remoteUrl, commit: checkout.head, ...(patch ? { patch } : {}) };
    try {
      const view = await client.submit({ repo, issue: request.issue, options: request.options });
      hooks.say(`localizing ${checkout.remoteUrl} at ${checkout.head.slice(0, 12)}${patch ? ` with the uncommitted changes (${Buffer.byteLength(patch)} bytes of patch)` : ""}`);
      const final = await client.follow(view, hooks);
      if (final.status !== "failed" || !UPLOAD_AFTER.has(final.error?.code ?? "")) return final;
      hooks.say(`the service could not use ${checkout.remoteUrl} (${final.error?.code}); uploading the tree instead`);
    } catch (err) {
      if (!(err instanceof ServiceRefused && UPLOAD_INSTEAD.has(err.code))) throw err;
      hooks.say(`the service refused ${checkout.remoteUrl} (${err.code}: ${err.message}); uploading the tree instead`);
    }
  }
  const upload = await uploadCheckout(client, checkout.root, hooks.say);
  const view = await client.submit({ repo: { upload: upload.upload_id }, issue: request.issue, options: request.options });
  return client.follow(view, hooks);
}
