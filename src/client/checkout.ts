import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFile, lstat, mkdtemp, mkdir, readFile, readlink, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
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

export interface PackedTree {
  sha256: string;
  files: number;
  bytes: number;
  archive: Buffer;
  /** Symlinks left out because they point outside the tree (the service would refuse them). */
  skipped: string[];
}

/** The tracked and untracked-not-ignored files as a tar.gz, and the tree's content address. */
export async function packCheckout(root: string): Promise<PackedTree> {
  const listed = (await git(root, ["ls-files", "-z", "--cached", "--others", "--exclude-standard"])).split("\0").filter(Boolean);
  const paths = [...new Set(listed)].sort();
  const entries: TreeEntry[] = [];
  const tar = pack();
  const chunks: Buffer[] = [];
  tar.on("data", (c) => chunks.push(c as Buffer));
  const ended = new Promise<void>((r) => tar.on("end", () => r()));
  const skipped: string[] = [];
  let bytes = 0;
  const add = (header: Parameters<typeof tar.entry>[0], body?: Buffer) =>
    new Promise<void>((res, rej) => {
      const cb = (err?: Error | null) => (err ? rej(err) : res());
      if (body) tar.entry(header, body, cb);
      else tar.entry(header, cb);
    });
  for (const path of paths) {
    const full = join(root, path);
    const st = await lstat(full).catch(() => null);
    // Deleted in the work tree, or a submodule's directory: not part of this tree.
    if (!st || st.isDirectory()) continue;
    if (st.isSymbolicLink()) {
      const target = await readlink(full);
      const inside = !isAbsolute(target) && !posix.normalize(posix.join(posix.dirname(path), target)).startsWith("..");
      if (!inside) {
        skipped.push(path);
        continue;
      }
      entries.push({ kind: "link", path, target });
      await add({ name: path, type: "symlink", linkname: target, mtime: new Date(0) });
      continue;
    }
    if (!st.isFile()) continue;
    const content = await readFile(full);
    const executable = (st.mode & 0o111) !== 0;
    bytes += content.length;
    entries.push({ kind: "file", path, executable, sha256: createHash("sha256").update(content).digest("hex") });
    await add({ name: path, size: content.length, mode: executable ? 0o755 : 0o644, mtime: new Date(0) }, content);
  }
  tar.finalize();
  await ended;
  // Level 1: most of gzip's saving on source code for a fraction of its time.
  const archive = await promisify(gzip)(Buffer.concat(chunks), { level: 1 });
  return { sha256: treeDigest(entries), files: entries.filter((e) => e.kind === "file").length, bytes, archive, skipped };
}

/** Sends the tree unless the service already holds it (asked by its content address first). */
export async function uploadCheckout(client: ServiceClient, root: string, say: (line: string) => void): Promise<UploadInfo> {
  const packed = await packCheckout(root);
  for (const path of packed.skipped) say(`left out ${path}: a symlink that points outside the tree`);
  const known = await client.upload(packed.sha256);
  if (known) {
    say(`the service already holds this tree (${packed.files} files)`);
    return known;
  }
  say(`uploading ${packed.files} files (${(packed.archive.length / 1e6).toFixed(1)} MB compressed)`);
  const info = await client.sendUpload(packed.archive);
  if (info.upload_id !== packed.sha256) throw new CheckoutError(`the service computed another id for the tree (${info.upload_id}, here ${packed.sha256})`);
  return info;
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
