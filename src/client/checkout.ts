import { existsSync, realpathSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { isAbsolute, parse, resolve } from "node:path";
import { normalScope, scopeSchema, type NamedCommitRef } from "../queue/contract.js";
import { httpsFormOf } from "../queue/repoUrl.js";
import type { JobEvent } from "../store/events.js";
import type { JobView } from "../store/jobStore.js";
import type { UploadInfo } from "../uploads/store.js";
import { checkoutCommits } from "./history.js";
import { printable } from "./printable.js";
import { ServiceRefused, type ServiceClient } from "./service.js";
import { git, MAX_NEW_FILE_BYTES, PatchNotText, Snapshot, TreeCache } from "./snapshot.js";
import { UnfetchableRemotes } from "./unfetchable.js";

/**
 * Localizing in a developer's own checkout, edits included. When HEAD is on a remote the
 * service can fetch, the request names that commit and carries the uncommitted changes as
 * a patch (small, and the service reuses its cached mirror); when HEAD has commits of its own
 * on top of one (a branch not pushed yet), it names that commit and the patch carries those
 * commits too. Otherwise, or when the service cannot fetch the remote or take the patch, the
 * tree itself is uploaded: the tracked files and the untracked ones git does not ignore, so
 * nothing ignored (.env, node_modules) leaves the machine. Once uploaded, an edited tree is
 * sent as that upload and a patch of the changes since.
 */

export class CheckoutError extends Error {
  override name = "CheckoutError";
  /** The argument at fault: the checkout's path, or the scope asked for within it. */
  constructor(message: string, readonly field: "path" | "scope" = "path") {
    super(message);
  }
}

export interface Checkout {
  root: string;
  /** Its git directory (where its history is). */
  gitDir: string;
  /** HEAD's sha; null in a repository with no commit yet. */
  head: string | null;
  /**
   * The URL of a remote whose branches contain `base` (credentials removed); null when none does.
   */
  remoteUrl: string | null;
  /**
   * The commit the service is asked for: HEAD when a remote holds it, else where HEAD's own
   * commits begin (its merge base with the upstream or the remote's default branch); null
   * when no remote holds any commit of HEAD's past.
   */
  base: string | null;
}

export async function describeCheckout(dir: string, home = homedir()): Promise<Checkout> {
  const checkout = await findCheckout(dir);
  // A home directory made a repository (or the root): not a project, and what git would send
  // of it is the user's own files. Reached by a client started there with no path given, say.
  const real = (p: string) => {
    try {
      return realpathSync(p);
    } catch {
      return resolve(p);
    }
  };
  const top = real(checkout.root);
  // A drive's root (C:\) as well as "/".
  const isRoot = parse(top).root === top;
  if (isRoot || (home && top === real(home))) {
    throw new CheckoutError(`${checkout.root} is ${isRoot ? "the filesystem's root" : "your home directory"}, not a project's checkout: give the checkout you work in as the path`);
  }
  return checkout;
}

async function findCheckout(dir: string): Promise<Checkout> {
  const cwd = resolve(dir);
  // The usual case in two processes: the branch's upstream is on origin and is HEAD itself
  // (edits not committed yet), so no remote branch needs asking whether it contains HEAD.
  const [usual, urls] = await Promise.all([
    git(cwd, ["rev-parse", "--show-toplevel", "--absolute-git-dir", "HEAD", "@{upstream}", "--symbolic-full-name", "@{upstream}"]).then(
      (o) => o.trim().split("\n"),
      () => null,
    ),
    git(cwd, ["config", "--get-regexp", "^(remote\\..*\\.url|url\\..*\\.insteadof)$"]).catch(() => ""),
  ]);
  const lines = urls.split("\n").map((l) => l.trim());
  const pairs = (re: RegExp) => lines.map((l) => re.exec(l)).filter((m): m is RegExpExecArray => m !== null);
  // url.<base>.insteadOf <short>: what git itself fetches for a remote written `gh:team/app`.
  const aliases = pairs(/^url\.(.+)\.insteadof (.+)$/).map((m) => ({ base: m[1]!, short: m[2]! }));
  const urlOf = new Map(pairs(/^remote\.(.+)\.url (.*)$/).map((m) => [m[1]!, expandAlias(m[2]!, aliases)]));
  // The branch's upstream as the look above found it; none when that look failed (no upstream, or no HEAD).
  const upstreamRef = usual?.length === 5 ? usual[4]! : "";
  if (usual?.length === 5) {
    const [root = "", gitDir = "", head = "", upstream = ""] = usual;
    const url = head === upstream && upstreamRef.startsWith("refs/remotes/origin/") ? serviceUrlOf(urlOf.get("origin") ?? "", root) : null;
    if (url) return { root, gitDir, head, remoteUrl: url, base: head };
  }
  return scanRemotes(cwd, dir, urlOf, upstreamRef);
}

/** A remote's URL as git fetches it: the longest insteadOf prefix it starts with replaced by its base. */
function expandAlias(url: string, aliases: Array<{ base: string; short: string }>): string {
  const alias = aliases.filter((a) => url.startsWith(a.short)).sort((a, b) => b.short.length - a.short.length)[0];
  return alias ? alias.base + url.slice(alias.short.length) : url;
}

/** Any other case: HEAD, and origin or else the first remote (by name) with a branch that contains it. */
async function scanRemotes(cwd: string, dir: string, urlOf: Map<string, string>, upstreamRef: string): Promise<Checkout> {
  let root: string;
  let gitDir: string;
  try {
    [root = "", gitDir = ""] = (await git(cwd, ["rev-parse", "--show-toplevel", "--absolute-git-dir"])).trim().split("\n");
  } catch (err) {
    const kind = statSync(cwd, { throwIfNoEntry: false });
    if (!kind) throw new CheckoutError(`${dir} does not exist`);
    if (!kind.isDirectory()) throw new CheckoutError(`${dir} is not a directory (give the checkout's directory)`);
    // No git to ask (not on the PATH this process has, or macOS's stub without the command line tools) is not "no checkout".
    const failed = err as { code?: unknown; stderr?: unknown };
    if (failed.code === "ENOENT" || /xcrun: error|xcode-select/.test(String(failed.stderr ?? ""))) {
      throw new CheckoutError(`git could not be run here (${failed.code === "ENOENT" ? "no git on this process's PATH" : "macOS's git needs the command line tools: xcode-select --install"}): the checkout is read with git; install it, or give its directory on the PATH in the env of this client's entry`);
    }
    throw new CheckoutError(`${dir} is not inside a git work tree: give the git checkout of the project you work in as the path (git tells the files to send from those it ignores)`);
  }
  const [head, branches] = await Promise.all([
    git(root, ["rev-parse", "--verify", "--quiet", "HEAD"]).then((o) => o.trim() || null, () => null),
    git(root, ["for-each-ref", "--contains", "HEAD", "--format=%(refname:lstrip=2)", "refs/remotes"]).catch(() => ""),
  ]);
  if (!head) return { root, gitDir, head, remoteUrl: null, base: null };
  const remotes = [...new Set(branches.split("\n").map((b) => b.trim()).filter((b) => b && !b.endsWith("/HEAD")).map((b) => b.split("/")[0]!))].sort((a, b) =>
    a === "origin" ? -1 : b === "origin" ? 1 : a.localeCompare(b),
  );
  for (const remote of remotes) {
    const url = serviceUrlOf(urlOf.get(remote) ?? "", root);
    if (url) return { root, gitDir, head, remoteUrl: url, base: head };
  }
  return { root, gitDir, head, ...(await forkPoint(root, urlOf, upstreamRef)) };
}

/**
 * Where HEAD's own commits begin, on a remote: its merge base with the branch's upstream, else
 * with origin's default branch (or main, or master). The commits since travel in the patch.
 */
async function forkPoint(root: string, urlOf: Map<string, string>, upstreamRef: string): Promise<{ remoteUrl: string | null; base: string | null }> {
  const candidates = [...(upstreamRef.startsWith("refs/remotes/") ? [upstreamRef] : []), "refs/remotes/origin/HEAD", "refs/remotes/origin/main", "refs/remotes/origin/master"];
  for (const ref of candidates) {
    const base = await git(root, ["merge-base", "HEAD", ref]).then((o) => o.trim(), () => "");
    if (!base) continue;
    const url = serviceUrlOf(urlOf.get(ref.split("/")[2] ?? "") ?? "", root);
    if (url) return { remoteUrl: url, base };
  }
  return { remoteUrl: null, base: null };
}

/**
 * A remote URL as the service would fetch it: https for scp-like and ssh forms (the
 * service fetches over https only), file:// for a local path, and never with credentials.
 */
export function serviceUrlOf(raw: string, root: string): string | null {
  if (!raw) return null;
  // A Windows path (C:\repos\app.git, C:/repos/app.git) is a local one, as git reads it, not host "C".
  if (/^[A-Za-z]:[\\/]/.test(raw)) return `file:///${raw.replaceAll("\\", "/")}`;
  const ssh = httpsFormOf(raw);
  if (ssh) return ssh.url;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(raw)) {
    try {
      const u = new URL(raw);
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
 * Sends the tree unless the service already holds it. A tree sent before (the same git tree,
 * as the snapshot captured it) is asked for by its content address first; a new one is
 * streamed at once, and the address the service gives it is remembered. With `under`, only that
 * directory is sent (a job scoped to it needs no more: a monorepo's package, where the whole tree
 * may be past the service's limits).
 */
export async function uploadCheckout(
  client: ServiceClient,
  snapshot: Snapshot,
  say: (line: string) => void,
  cache = new TreeCache(),
  under?: string,
  signal?: AbortSignal,
  // Over loopback, compressing costs more time than it saves.
  compress = !isLoopbackUrl(client.baseUrl),
  // Whether to ask first if the service holds the tree: not when it said so and then did not find it.
  ask = true,
): Promise<UploadInfo> {
  const treeId = await snapshot.treeId();
  const key = under ? `${treeId}:${under}` : treeId;
  const what = under ? `${under}/ of the tree` : "the tree";
  const known = ask ? await cache.get(key) : undefined;
  // An empty upload remembered (one a client before this check sent) is not asked for: it is refused below.
  const held = known?.files ? await client.upload(known.sha256) : null;
  if (held) {
    say(`the service already holds ${under ? what : "this tree"} (${held.files} files)`);
    await rememberLast(cache, snapshot, under, treeId, held);
    return held;
  }
  // Said here rather than answered as "no locations": there was nothing to search.
  if ((await snapshot.sentFiles(under)) === 0) throw new CheckoutError(`${under ? `${under}/` : snapshot.root} holds no file git would send (tracked, or untracked and not ignored)`);
  await sayLeftOut(snapshot, say);
  const skipped = await snapshot.escapingLinks(under);
  for (const path of skipped) say(`left out ${path}: a symlink that points outside the tree`);
  say(`uploading ${what}`);
  const send = (gzip: boolean) => client.sendUpload(() => snapshot.archive(gzip, under), signal);
  const sent = send(compress).catch((err: unknown) => {
    if (!(err instanceof ServiceRefused)) throw err;
    // Files of one byte repeated (a SQL dump, generated fixtures) compress past the ratio the
    // service takes for a bomb's; the same tree uncompressed is no bomb.
    if (compress && err.code === "upload_compression_ratio") {
      say("the tree compresses past the service's limit on compression; sending it uncompressed");
      return send(false);
    }
    // Over loopback a tree goes uncompressed, which a tree past the service's limit on an archive
    // (UPLOAD_MAX_ARCHIVE_BYTES), or past the key's share of the store, but not on the files in it
    // passes compressed: the local setup refused what a remote one took.
    if (!compress && (err.code === "upload_too_large" || err.code === "upload_quota_exceeded")) {
      say(`the tree uncompressed is past the service's limit on ${err.code === "upload_too_large" ? "an archive" : "this key's uploads"}; sending it compressed`);
      return send(true);
    }
    throw err;
  });
  const info = await sent.catch(async (err: unknown) => {
    if (!(err instanceof ServiceRefused) || (err.code !== "upload_too_large" && err.code !== "upload_too_many_files")) throw err;
    // What to leave out is the user's call: say where the bulk is, and how to leave it out.
    const { bySize, byCount, tracked, untracked } = await snapshot.largestParts(3, under);
    const largest = err.code === "upload_too_large" ? `the largest parts: ${bySize.join(", ")}` : `the parts with most files: ${byCount.join(", ")}`;
    const advice = [
      ...(untracked ? ["what is untracked and not source can go in .gitignore (or .git/info/exclude): ignored files are never sent"] : []),
      // git sends what it tracks whatever an ignore file says: a directory of the tree is what is left to choose.
      ...(tracked ? ["what is tracked is always sent: give a directory below the top as the path to send that directory alone"] : []),
    ];
    throw new CheckoutError(`the service refused the tree of ${snapshot.root} (${err.code}: ${err.message}); ${largest}. ${advice.join("; ").replace(/^w/, "W")}`);
  });
  say(`uploaded ${info.files} file${info.files === 1 ? "" : "s"} (${(info.bytes / 1e6).toFixed(1)} MB)`);
  // What was sent is the snapshot's tree itself, whatever was edited meanwhile: its address holds.
  await cache.put(key, { sha256: info.sha256, files: info.files, bytes: info.bytes });
  await rememberLast(cache, snapshot, under, treeId, info);
  return info;
}

/** The cache's entry for the last tree of this checkout (of `under` in it) the service took. */
const lastKey = (root: string, under?: string) => `last:${root}:${under ?? ""}`;

async function rememberLast(cache: TreeCache, snapshot: Snapshot, under: string | undefined, tree: string, info: UploadInfo): Promise<void> {
  const key = lastKey(snapshot.root, under);
  if ((await cache.get(key))?.tree === tree) return;
  // Without its objects kept, a later patch is an upload again; that is all a failure here costs.
  await snapshot.keepTree(tree, under).catch(() => undefined);
  await cache.put(key, { sha256: info.sha256, files: info.files, bytes: info.bytes, tree });
}

/**
 * The checkout as the last upload the service still holds, with the changes since as a patch: an
 * edit to a checkout no remote holds then costs its diff, not the whole tree again. Null when
 * there is none, or when the changes are over 64 KiB and half the tree's bytes (an upload then
 * costs about as much, and the next patches start from it).
 */
export async function changesSinceUpload(client: ServiceClient, snapshot: Snapshot, cache = new TreeCache(), under?: string): Promise<{ upload: UploadInfo; patch: string } | null> {
  const last = await cache.get(lastKey(snapshot.root, under));
  if (!last?.tree || !last.files || last.tree === (await snapshot.treeId())) return null;
  const [held, patch] = await Promise.all([client.upload(last.sha256), snapshot.changesSince(last.tree, under)]);
  if (!held || patch === null) return null;
  const bytes = Buffer.byteLength(patch);
  if (bytes > 64 << 10 && bytes > held.bytes / 2) return null;
  return { upload: held, patch };
}

/** Each said once per snapshot: an upload after a refused patch leaves out those files again (and the commit's copies of credentials). */
const toldLeftOut = new WeakMap<Snapshot, Set<string>>();

/** Says what is not sent of the snapshot: of a patch on `base`, or (no base) of an upload. */
async function sayLeftOut(snapshot: Snapshot, say: (line: string) => void, base?: string): Promise<void> {
  const told = toldLeftOut.get(snapshot) ?? new Set<string>();
  toldLeftOut.set(snapshot, told);
  const untold = (await snapshot.leftOut(base)).filter((f) => !told.has(f.path));
  for (const f of untold) told.add(f.path);
  const credentials = untold.filter((f) => f.why === "credentials").map((f) => f.path);
  const theirs = base ? " (the service reads the commit's own copy, if it has one)" : "";
  // A tree may hold thousands (a test suite's certificates): said in one line then.
  if (credentials.length > NOTED) say(`left out ${credentials.length} files whose names say they hold credentials: ${listed(credentials)}${theirs}`);
  else for (const path of credentials) say(`left out ${path}: its name says it holds credentials${theirs}`);
  for (const f of untold) {
    if (f.why === "credentials") continue;
    else if (f.why === "name") say(`left out ${JSON.stringify(f.path)}: the service takes no path with a line break or a backslash`);
    else if (f.why === "size") say(`left out ${f.path}: ${(f.bytes / 2 ** 20).toFixed(0)} MiB and not in HEAD (new files over ${MAX_NEW_FILE_BYTES / 2 ** 20} MiB are not sent)`);
    else say(`left out ${f.path}: installed packages or a cache${f.files ? `, ${f.files} files` : ""} HEAD does not hold`);
  }
}

/**
 * The ignore rule that leaves out `dir` (a directory of the checkout), as `source:line:pattern`;
 * null when git sends something of it: not ignored, un-ignored by a `!` rule (which -v names
 * too), or holding files git tracks (force-added under an ignored directory).
 */
export async function ignoredBy(root: string, dir: string): Promise<string | null> {
  const rule = (await git(root, ["check-ignore", "-v", "--", dir]).catch(() => "")).split("\t")[0]!;
  if (!rule || /^[^:]*:\d+:!/.test(rule)) return null;
  return (await git(root, ["ls-files", "-z", "--", `:(literal)${dir}`]).catch(() => "")) ? null : rule;
}

/**
 * `dir` as a directory of its checkout (`services/api`), or undefined for the top itself, spelled
 * as git's index spells it: on macOS and Windows a directory typed in another case, or named in
 * the other Unicode form (Finder's decomposed accents), is the same directory, and a scope
 * spelled as the path was matched no file.
 */
export async function scopeOf(dir: string): Promise<string | undefined> {
  const prefix = (await git(resolve(dir), ["rev-parse", "--show-prefix"])).trim().replace(/\/$/, "");
  return prefix || undefined;
}

function isLoopbackUrl(url: string): boolean {
  const host = new URL(url).hostname.replace(/^\[|\]$/g, "");
  return host === "localhost" || host === "::1" || /^127\./.test(host);
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
const UPLOAD_AFTER = new Set(["repository_unavailable", "commit_not_found", "invalid_repository", "patch_does_not_apply", "upload_not_found"]);

/** Job failures that say the service cannot fetch the remote at all (not this commit, not this patch). */
const UNFETCHABLE = new Set(["repository_unavailable", "invalid_repository"]);

function sayCommits(commits: unknown[], say: (line: string) => void): void {
  if (commits.length) say(`sending what ${commits.length === 1 ? "the commit" : `the ${commits.length} commits`} the issue names changed, read from the local history`);
}

/**
 * The job on the last upload with the changes since; null when the service refused them or could
 * not apply them, and the tree is to be uploaded instead.
 */
async function submitChangesSince(
  client: ServiceClient,
  since: { upload: UploadInfo; patch: string },
  commits: NamedCommitRef[],
  issue: string,
  options: Record<string, unknown>,
  hooks: CheckoutHooks,
): Promise<JobView | null> {
  try {
    hooks.signal?.throwIfAborted();
    const repo = { upload: since.upload.upload_id, ...(since.patch ? { patch: since.patch } : {}), ...(commits.length ? { commits } : {}) };
    const view = await client.submit({ repo, issue, options });
    const changes = since.patch ? `; sending the changes since (${Buffer.byteLength(since.patch)} bytes of patch)` : ", and nothing it would send has changed since";
    hooks.say(`the service holds this checkout as it was last sent (${since.upload.files} files)${changes}`);
    const final = await client.follow(view, hooks);
    if (final.status !== "failed" || !UPLOAD_AFTER.has(final.error?.code ?? "")) return final;
    hooks.say(`the service could not apply the changes to the tree it holds (${final.error?.code}); uploading the tree instead`);
  } catch (err) {
    // A service before API 0.8.0 takes no patch with an upload (invalid_repository, naming repo.patch).
    if (!(err instanceof ServiceRefused && (UPLOAD_INSTEAD.has(err.code) || err.code === "upload_not_found"))) throw err;
    hooks.say(`the service refused the changes since the last upload (${err.code}: ${err.message}); uploading the tree instead`);
  }
  return null;
}

/**
 * Submits a remote's commit with what the branch's own commits the issue names changed; a
 * service before API 0.9.0 takes those with an upload only (invalid_repository, naming
 * repo.commits), and is asked again without them.
 */
async function submitWithCommits(
  client: ServiceClient,
  request: { repo: Record<string, unknown>; issue: string; options: Record<string, unknown> },
  commits: NamedCommitRef[],
  say: (line: string) => void,
): Promise<JobView> {
  if (commits.length === 0) return client.submit(request);
  try {
    const view = await client.submit({ ...request, repo: { ...request.repo, commits } });
    sayCommits(commits, say);
    return view;
  } catch (err) {
    if (!(err instanceof ServiceRefused && err.field === "repo.commits")) throw err;
    return client.submit(request);
  }
}

/**
 * The job on the remote's commit with the checkout's changes since as a patch, at its end; null
 * when the tree is to be uploaded instead: a change that cannot travel as a patch, or the service
 * refused the remote or the patch, or could not use them (a remote it cannot fetch is remembered).
 */
async function submitOnRemote(
  client: ServiceClient,
  checkout: Checkout & { remoteUrl: string; base: string },
  snapshot: Snapshot,
  unfetchable: UnfetchableRemotes,
  request: CheckoutRequest,
  under: string | undefined,
  hooks: CheckoutHooks,
): Promise<JobView | null> {
  const own = checkout.head && checkout.base !== checkout.head ? checkout.head : undefined;
  const [patch, ahead, commits] = await Promise.all([
    // A scoped job reads its directory alone: edits elsewhere in the checkout stay on the machine.
    snapshot.patch(checkout.base, under).catch((err: unknown) => (err instanceof PatchNotText ? err : Promise.reject(err as Error))),
    own ? git(checkout.root, ["rev-list", "--count", `${checkout.base}..HEAD`]).then((o) => Number(o.trim()) || 0) : 0,
    // The commits the patch carries are in no history the service reads: what those the issue
    // names changed goes with it, read from the branch's own commits only.
    own ? checkoutCommits(checkout, own, request.issue, hooks.signal, { after: checkout.base }) : Promise.resolve([]),
  ]);
  await sayLeftOut(snapshot, hooks.say, checkout.base);
  hooks.signal?.throwIfAborted();
  if (patch instanceof PatchNotText) {
    hooks.say(`${patch.message}; uploading the tree instead`);
    return null;
  }
  const repo = { url: checkout.remoteUrl, commit: checkout.base, ...(patch ? { patch } : {}) };
  try {
    const view = await submitWithCommits(client, { repo, issue: request.issue, options: request.options }, patch ? commits : [], hooks.say);
    const mine = ahead ? `the ${ahead === 1 ? "commit" : `${ahead} commits`} no remote holds yet and the uncommitted changes` : "the uncommitted changes";
    hooks.say(`localizing ${checkout.remoteUrl} at ${checkout.base.slice(0, 12)}${patch ? ` with ${mine} (${Buffer.byteLength(patch)} bytes of patch)` : ""}`);
    const final = await client.follow(view, hooks);
    if (final.status !== "failed" || !UPLOAD_AFTER.has(final.error?.code ?? "")) return final;
    if (UNFETCHABLE.has(final.error?.code ?? "")) await unfetchable.add(client.baseUrl, checkout.remoteUrl).catch(() => undefined);
    hooks.say(`the service could not use ${checkout.remoteUrl} (${final.error?.code}); uploading the tree instead`);
  } catch (err) {
    if (!(err instanceof ServiceRefused && UPLOAD_INSTEAD.has(err.code))) throw err;
    // A URL the service will not fetch from (a private host, one that does not resolve) is
    // refused the same way next time; a refused commit or patch is this call's own.
    if (err.code === "invalid_repository" && err.field === "repo.url") await unfetchable.add(client.baseUrl, checkout.remoteUrl).catch(() => undefined);
    hooks.say(`the service refused ${checkout.remoteUrl} (${err.code}: ${err.message}); uploading the tree instead`);
  }
  return null;
}

/** A local checkout's job at its end, and the directory its answer's paths are relative to. */
export interface CheckoutJob {
  view: JobView;
  /** The checkout's top level (`git rev-parse --show-toplevel`), which `dir` may be below. */
  root: string;
  /** What the answer does not show of the checkout (a submodule not searched, edits not sent, a file not on disk): said beside it. */
  notes: string[];
}

/** Notes that name files, at most this many each. */
const NOTED = 5;

const listed = (paths: string[]) => paths.slice(0, NOTED).join(", ") + (paths.length > NOTED ? ` and ${paths.length - NOTED} more` : "");

/** What of the checkout is not sent as it is on disk, whatever the answer: said before the job, and with its answer. */
async function unsentNotes(snapshot: Snapshot, under?: string): Promise<string[]> {
  const inside = (p: string) => !under || p.startsWith(`${under}/`);
  const [submodules, hidden] = await Promise.all([snapshot.submodules(), snapshot.hiddenEdits()]);
  const notes: string[] = [];
  const subs = submodules.filter(inside);
  if (subs.length) notes.push(`not searched: ${listed(subs)}, ${subs.length === 1 ? "a submodule" : "submodules"} (another repository: give its directory as the path to search it)`);
  const edits = hidden.filter(inside);
  if (edits.length)
    notes.push(`edits on disk not sent: ${listed(edits)}, which git is told to assume unchanged (--assume-unchanged or --skip-worktree); line ranges in ${edits.length === 1 ? "it" : "them"} are the index's`);
  return notes.map((n) => printable(n));
}

/** The answer's files that are not on disk (a sparse checkout leaves them out): the commit's copies were read. */
function absentNotes(root: string, view: JobView): string[] {
  const files = [...new Set([...(view.result?.locations ?? []), ...(view.result?.alternatives ?? [])].map((l) => l.file))];
  const absent = files.filter((f) => !existsSync(resolve(root, f)));
  return absent.length ? [printable(`not in the work tree: ${listed(absent)} (outside a sparse checkout?); the commit's ${absent.length === 1 ? "copy was" : "copies were"} read`)] : [];
}

/** Localizes in the checkout at `dir`, as it is on disk now; resolves with the job's end. */
export async function localizeCheckout(client: ServiceClient, dir: string, request: CheckoutRequest, hooks: CheckoutHooks): Promise<CheckoutJob> {
  const checkout = await describeCheckout(dir);
  // A directory below the top (an agent started in a monorepo's package) is where to look, as
  // the agent's own searches do; a scope the caller gave is theirs.
  const scope = request.options.scope === undefined ? await scopeOf(dir) : undefined;
  const options = scope ? { ...request.options, scope } : request.options;
  if (scope) {
    // Nothing under an ignored directory is sent: said so here, rather than as a directory the service cannot find.
    const rule = await ignoredBy(checkout.root, scope);
    if (rule) throw new CheckoutError(`${scope}/ is ignored by git (${printable(rule)}): nothing in it is sent; give a directory git tracks, or the checkout's top`);
    hooks.say(`localizing in ${scope}/ only, the directory given (give ${checkout.root} to search the whole checkout)`);
  }
  // A scope the service would refuse is its to name (422, options.scope): the whole tree is sent then.
  const under = typeof options.scope === "string" && scopeSchema.safeParse(options.scope).success ? normalScope(options.scope) : undefined;
  const snapshot = await Snapshot.take(checkout.root);
  const unfetchable = new UnfetchableRemotes();
  try {
    const unsent = await unsentNotes(snapshot, under);
    for (const note of unsent) hooks.say(note);
    const ended = (view: JobView): CheckoutJob => ({ view, root: checkout.root, notes: [...unsent, ...absentNotes(checkout.root, view)] });
    const failedBefore = checkout.remoteUrl ? await unfetchable.since(client.baseUrl, checkout.remoteUrl) : null;
    if (failedBefore) hooks.say(`the service could not use ${checkout.remoteUrl} at ${failedBefore.toTimeString().slice(0, 5)}; sending the tree instead (it is asked again after an hour)`);
    if (checkout.remoteUrl && checkout.base && !failedBefore) {
      const final = await submitOnRemote(client, { ...checkout, remoteUrl: checkout.remoteUrl, base: checkout.base }, snapshot, unfetchable, { issue: request.issue, options }, under, hooks);
      if (final) return ended(final);
    }
    // Read while the tree is sent: a long history's log walks cost the upload no time.
    const reading = checkout.head ? checkoutCommits(checkout, checkout.head, request.issue, hooks.signal) : Promise.resolve([]);
    const cache = new TreeCache();
    const since = await changesSinceUpload(client, snapshot, cache, under);
    if (since) {
      sayCommits(await reading, hooks.say);
      const final = await submitChangesSince(client, since, await reading, request.issue, options, hooks);
      if (final) return ended(final);
    }
    const upload = await uploadCheckout(client, snapshot, hooks.say, cache, under, hooks.signal).catch((err: unknown) => {
      // Nothing to send under a scope the caller gave: the scope is what to mend, not the path.
      throw err instanceof CheckoutError && under && request.options.scope !== undefined ? new CheckoutError(err.message, "scope") : err;
    });
    const commits = await reading;
    if (!since) sayCommits(commits, hooks.say);
    const submit = (sent: UploadInfo) => {
      // Given up while the tree was read or sent: no job is queued only to be cancelled.
      hooks.signal?.throwIfAborted();
      return client.submit({ repo: { upload: sent.upload_id, ...(commits.length ? { commits } : {}) }, issue: request.issue, options });
    };
    const view = await submit(upload).catch(async (err: unknown) => {
      // Held, or just taken, and then not found for the job: an API replica of another version
      // beside this one (0.9.4 kept no record of which key sent a tree), or the upload expired in
      // between. Sent once more, without asking first.
      if (!(err instanceof ServiceRefused) || err.code !== "upload_not_found") throw err;
      hooks.say("the service did not find the tree for the job; sending it again");
      return submit(await uploadCheckout(client, snapshot, hooks.say, cache, under, hooks.signal, undefined, false));
    });
    return ended(await client.follow(view, hooks));
  } finally {
    await snapshot.dispose();
  }
}
