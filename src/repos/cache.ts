import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readdir, rename, rm, chmod, stat, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { isIP } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import pRetry from "p-retry";
import { gitConfigEnv, isTransientGitFailure, runGit, transportConfig, GitError } from "./git.js";
import { HostGuard, HostPolicyError } from "../queue/hostPolicy.js";
import { REF_RE, SHA_RE, UPLOAD_ID_RE } from "../queue/contract.js";
import { ArchiveError, type ArchiveLimits } from "../uploads/archive.js";
import { extractArchive } from "../uploads/extract.js";
import type { UploadStore } from "../uploads/store.js";
import { applyPatch, applyPatchToCopy, PatchError } from "./patch.js";
import { parseRepoUrl, type RepoUrlPolicy, type RepoIdentity } from "../queue/repoUrl.js";
import { makeTreeDir, TreeStore, type TreeStoreOptions } from "./trees.js";
import { touch } from "./disk.js";
import { MirrorBudget, MirrorTooLarge } from "./mirrors.js";
import { commitChanges, type CommitChange } from "./history.js";
import { archiveAsCommitted, archiveInto, deriveInto, linkTree, NotDerivable, TreeTooLarge } from "./treeWrite.js";

/**
 * Repository cache on the host: one bare mirror per repository URL, fetched once and then
 * only topped up, and one materialized tree per (repository, commit) shared by every job
 * at that commit. Knows nothing of containers.
 */

/**
 * A cache's settings. Per-commit trees (TreeStore): creating thousands of small files is the
 * cost of a warm preparation, and it is ~20-40x cheaper on tmpfs than on a VM's disk
 * (BENCHMARKS.md), so by default trees go to the host's tmpfs when it has room, under one
 * budget shared by the user's caches on the host, and spill to <dir>/trees beyond it. Bare
 * mirrors (MirrorBudget) are bounded on disk. A tree or mirror is idle, and may be removed,
 * when no job has asked for it for `treeIdleMs` (a tree also once every job that prepared it
 * released it): jobs are capped by the sandbox wall-clock limit, so the worker passes that
 * limit plus a margin.
 */
export interface RepoCacheOptions extends RepoUrlPolicy, Omit<TreeStoreOptions, "cacheDir"> {
  dir: string;
  /** Bytes of mirrors kept; the least recently used idle ones beyond it are removed (default 0: no fixed limit). */
  maxMirrorBytes?: number;
  /**
   * Idle mirrors are also removed while their filesystem has less than this free, and a clone
   * or fetch stops below half of it (default 2 GiB; 0: never). Bytes, not a share of the disk:
   * 5% of a large disk that is nearly full is still room for many clones.
   */
  mirrorMinFreeBytes?: number;
  /** How often a clone or fetch in progress is measured against those limits (default 1 s). */
  mirrorWatchEveryMs?: number;
  /** Bytes free on the mirrors' filesystem, which the floor is measured against (default: what the filesystem says). */
  mirrorFreeBytes?: (dir: string) => number | null;
  gitTimeoutMs?: number;
  /**
   * A repository's first clone still running this long after a job asked for it (default 3 s):
   * the job is answered from its commit alone, fetched shallow (`--depth=1`, django's ~12 MB
   * against the ~230 MB of its history), while the clone goes on for the jobs after it. What a
   * job reads from the history (history.ts) waits for the clone, so the answer is the one the
   * whole mirror gives. Infinity: every first job waits for its clone.
   */
  shallowAfterMs?: number;
  /**
   * A clone, fetch or access check whose remote failed in a way it may not fail again (HTTP
   * 5xx or 429, a connection refused or cut short: git.ts) runs again up to `retries` times,
   * `minTimeoutMs` after the first failure and twice as long after each next one (default 2
   * and 2 s). A large repository's first clone is what meets a remote's bad minute, and every
   * job waiting for that clone would fail with it.
   */
  gitRetries?: { retries: number; minTimeoutMs: number };
  /** Told of each such failure before the step runs again (the worker logs it). */
  onGitRetry?: (retry: { url: string; attempt: number; retriesLeft: number; error: string }) => void;
  /**
   * Checks a remote's host right before git connects and returns the addresses to pin.
   * Default: public addresses only, resolved by the system.
   */
  hosts?: HostGuard;
  /** Where uploaded trees are read from, and the caps they are checked against again. */
  uploads?: { store: UploadStore; limits: ArchiveLimits };
}

export interface PrepareRequest {
  url: string;
  /** A 40-hex sha, or a ref (branch, tag) that is resolved to one. */
  commit: string;
  /**
   * Access token for a private repository. It reaches git only through the environment
   * (never argv, never the mirror's config), so it is neither in `ps` nor on disk.
   */
  token?: string;
  /** A unified diff applied on top of the commit, in a tree of its own. */
  patch?: string;
}

export interface PreparedTree extends RepoIdentity {
  sha: string;
  treePath: string;
  /** Which path got the tree: a tree already there, a mirror that had the commit, or a fetch. */
  cache: "hot" | "warm" | "cold";
  durationMs: number;
  /**
   * Says the job is done with the tree, so the cache may reuse its room before the idle time
   * (TreeStore.hold). Not calling it is safe: the tree then stays in use for the idle time.
   */
  release(): Promise<void>;
}

type Unheld = Omit<PreparedTree, "release">;

export class RepoError extends Error {
  override name = "RepoError";
  constructor(
    readonly reason: "invalid_url" | "fetch_failed" | "commit_not_found" | "materialize_failed" | "patch_does_not_apply" | "upload_not_found" | "invalid_upload",
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}


/** git's failure when a remote over HTTP asks for a login it was not given. */
const ASKS_FOR_CREDENTIALS = /could not read (Username|Password)|terminal prompts disabled|Authentication failed|HTTP Basic: Access denied/;

export class RepoCache {
  readonly dir: string;
  readonly trees: TreeStore;
  private readonly mirrors: MirrorBudget;
  private readonly locks = new Map<string, Promise<unknown>>();
  /** First clones in progress, by mirror key: they outlive the job that started them, not the cache (close). */
  private readonly cloning = new Map<string, { landed: Promise<void>; startedAt: number }>();
  private readonly closing = new AbortController();
  /**
   * Repositories whose clone was stopped for the room it took, why, and until when: their jobs
   * are answered from their commits alone meanwhile, rather than each starting a clone that is
   * stopped again.
   */
  private readonly tooLarge = new Map<string, { limit: MirrorTooLarge["limit"]; until: number }>();
  /** Submodules by mirror key and commit (submodules()). */
  private readonly gitlinks = new Map<string, string[]>();
  private readonly hosts: HostGuard;
  /** Disk kept free under the cache, mirrors and spilled trees alike. */
  private readonly diskFloor: number;

  constructor(private readonly options: RepoCacheOptions) {
    this.dir = resolve(options.dir);
    this.diskFloor = options.mirrorMinFreeBytes ?? 2 * 2 ** 30;
    this.trees = new TreeStore({
      ...options,
      cacheDir: this.dir,
      spillMinFreeBytes: this.diskFloor,
      spillFreeBytes: options.mirrorFreeBytes,
    });
    this.mirrors = new MirrorBudget(join(this.dir, "mirrors"), {
      maxBytes: options.maxMirrorBytes ?? 0,
      minFreeBytes: this.diskFloor,
      idleMs: options.treeIdleMs ?? 3_600_000,
      watchEveryMs: options.mirrorWatchEveryMs,
      freeBytes: options.mirrorFreeBytes,
    });
    this.hosts = options.hosts ?? new HostGuard({ allowedHosts: [], allowPrivate: false });
  }

  /**
   * The environment of a git command that reaches the network, made right before it runs:
   * only https (http and file where allowed), no redirects (a redirect could lead to any
   * host, with the token), and the remote's name pinned to the addresses just checked, so
   * git cannot resolve it again to something else. Fails closed when the name does not
   * resolve.
   */
  private async networkEnv(url: string, token: string | undefined): Promise<Record<string, string>> {
    const pairs = transportConfig({ http: this.options.allowHttpUrls ?? false, file: this.options.allowFileUrls });
    const u = new URL(url);
    if (u.protocol === "http:" || u.protocol === "https:") {
      let checked;
      try {
        checked = await this.hosts.check(u);
      } catch (err) {
        if (err instanceof HostPolicyError) throw new RepoError(err.reason === "unresolvable" ? "fetch_failed" : "invalid_url", err.message);
        throw err;
      }
      if (!isIP(checked.host)) {
        const addresses = checked.addresses.map((a) => (isIP(a) === 6 ? `[${a}]` : a)).join(",");
        pairs.push(["http.curloptResolve", `${checked.host}:${checked.port}:${addresses}`]);
      }
      if (token) pairs.push(["http.extraHeader", `Authorization: Basic ${Buffer.from(`x-access-token:${token}`).toString("base64")}`]);
    }
    return gitConfigEnv(pairs);
  }

  identify(url: string): RepoIdentity {
    return parseRepoUrl(url, this.options);
  }

  async prepare(req: PrepareRequest, signal?: AbortSignal): Promise<PreparedTree> {
    return this.held(() => this.prepareTree(req, signal));
  }

  async prepareUpload(uploadId: string, signal?: AbortSignal, patch?: string): Promise<PreparedTree> {
    if (!patch) return this.held(() => this.prepareUploadTree(uploadId, signal));
    // The upload's own tree is held while the patched one is made from it, then let go.
    const base = await this.held(() => this.prepareUploadTree(uploadId, signal));
    try {
      return await this.held(() => this.preparePatchedUpload(uploadId, base.treePath, patch, signal));
    } finally {
      await base.release();
    }
  }

  /**
   * Stops the clones no job waits on any more (prepareShallow answered their jobs), so that a
   * process that stops leaves no git behind downloading for nobody; each removes its half-made
   * mirror. The cache is not used after.
   */
  async close(): Promise<void> {
    this.closing.abort(new Error("the repository cache is closing"));
    await Promise.all([...this.cloning.values()].map((c) => c.landed.catch(() => undefined)));
  }

  /** A prepared tree with a hold on it; prepared again if it was evicted before the hold took. */
  private async held(prepare: () => Promise<Unheld>): Promise<PreparedTree> {
    for (let attempt = 0; ; attempt++) {
      const tree = await prepare();
      const release = await this.trees.hold(tree.treePath);
      if (release) return { ...tree, release };
      if (attempt === 2) throw new RepoError("materialize_failed", `the tree of ${tree.sha} was removed as it was prepared, three times`);
    }
  }

  private async prepareTree(req: PrepareRequest, signal?: AbortSignal): Promise<Unheld> {
    const started = performance.now();
    let id: RepoIdentity;
    try {
      id = this.identify(req.url);
    } catch (err) {
      throw new RepoError("invalid_url", (err as Error).message);
    }
    if (!SHA_RE.test(req.commit) && !REF_RE.test(req.commit)) {
      throw new RepoError("commit_not_found", "commit must be a 40-hex sha or a ref name");
    }
    const { key, mirror } = this.mirrorOf(id.url);
    // Made once per preparation, and only when git has to reach the remote.
    let envPromise: Promise<Record<string, string>> | undefined;
    const env = () => (envPromise ??= this.networkEnv(id.url, req.token));

    // What was fetched with a token is served again only to a request that can read the
    // repository itself: its own credentials (or none) must pass `git ls-remote`. Asked once
    // the mirror is there (a clone made with a token is marked before it is in place), and
    // again after a wait in which it may have come.
    let authorized = false;
    const authorizeIfPrivate = async () => {
      if (authorized || !existsSync(join(mirror, PRIVATE_MARK))) return;
      await this.authorize(id.url, env, signal, req.token !== undefined);
      authorized = true;
    };

    // A tree at a full sha needs no git at all when it is already there, as long as its
    // mirror is: the mirror holds the mark above and the history a job reads (history.ts).
    // Without it, a tree fetched with a token would be served to anyone, and an issue
    // naming a commit would be answered without it.
    if (existsSync(join(mirror, "HEAD"))) {
      await authorizeIfPrivate();
      if (SHA_RE.test(req.commit) && !req.patch) {
        const treePath = await this.trees.find(join(treesOf(key), req.commit));
        if (treePath) return { ...id, sha: req.commit, treePath, cache: "hot", durationMs: performance.now() - started };
      }
    }

    return this.withLock(key, async () => {
      let cache: PreparedTree["cache"] = "warm";
      await this.mirrors.touch(mirror);
      if (!existsSync(join(mirror, "HEAD"))) {
        const tooLarge = () => {
          const stopped = this.tooLarge.get(key);
          return stopped && stopped.until > Date.now() ? stopped.limit : undefined;
        };
        // Too large to mirror (see startClone): no clone, the commit alone.
        const clone = tooLarge() ? undefined : this.startClone(id.url, key, mirror, env, req.token !== undefined);
        const landed = clone ? await this.landsInTime(clone, signal).catch((err: unknown) => (tooLarge() ? false : Promise.reject(err))) : false;
        if (!landed) {
          const seeded = await this.prepareShallow(id, key, mirror, req, env, started, signal);
          if (seeded) return seeded;
          const stopped = tooLarge();
          if (!clone || stopped) {
            const why = stopped === "disk" ? `the disk has no room for ${id.url}'s history` : `${id.url} is larger than the mirror budget`;
            throw new RepoError("fetch_failed", `${why}, and ${req.commit} cannot be fetched by itself: name a commit by its full sha, a branch or a tag`);
          }
          await settlesBy(clone.landed, Infinity, signal);
        }
        // A clone made with this request's own credentials has asked the remote already.
        authorized ||= clone?.ours ?? false;
        cache = "cold";
      }
      // The mirror may have come while this request waited for the lock or for the clone.
      await authorizeIfPrivate();
      if (req.token) await writeFile(join(mirror, PRIVATE_MARK), "fetched with credentials\n");
      // A name (a branch, a tag, HEAD) is asked of the remote each time, unless the mirror was
      // cloned for this request: a mirror's refs are as old as its last fetch, and a branch
      // moved since answered the commit it had then, for good.
      const named = !SHA_RE.test(req.commit);
      const before = await this.resolve(mirror, req.commit, signal);
      let sha = named && cache !== "cold" ? await this.resolveOnRemote(id.url, mirror, req.commit, env, signal) : null;
      // No name the remote has: a sha, even cut short (`abc1234~1`), is the same commit wherever it is read.
      if (sha === null && (!named || cache === "cold" || ABBREVIATED_SHA.test(req.commit))) {
        sha = before;
        if (!sha) {
          await this.fetch(id.url, mirror, req.commit, env, signal);
          sha = await this.resolve(mirror, req.commit, signal);
          // A ref a clone does not bring (a pull request's `refs/pull/7/head`).
          if (!sha && named && cache === "cold") sha = await this.resolveOnRemote(id.url, mirror, req.commit, env, signal);
        }
      }
      if (sha !== before && cache === "warm") cache = "cold";
      // Only a clone or a fetch makes the mirrors bigger.
      if (cache === "cold") await this.mirrors.evict().catch(() => 0);
      // Most often a caller's own commit, not pushed: the message says how to send it instead.
      if (!sha) {
        throw new RepoError(
          "commit_not_found",
          `commit ${req.commit} not found in ${id.url}; for commits only your checkout holds, send the commit your branch starts from on the remote (git merge-base HEAD @{upstream}) with everything since as the patch (git diff --binary <that commit>)`,
        );
      }
      if (req.patch) return this.preparePatched(id, key, mirror, sha, req.patch, cache, started, signal);
      const found = await this.trees.find(join(treesOf(key), sha));
      if (found) return { ...id, sha, treePath: found, cache: cache === "cold" ? cache : "hot", durationMs: performance.now() - started };
      const treePath = await this.materialize(mirror, sha, join(treesOf(key), sha), signal);
      await this.evict().catch(() => 0);
      return { ...id, sha, treePath, cache, durationMs: performance.now() - started };
    });
  }

  /**
   * The submodules of a tree's commit: the entries of its `.gitmodules` that the tree holds as
   * submodules (gitlinks), each an empty directory of the tree, since the service fetches none. A
   * job says so rather than answer as if their code were not there. None for an upload (its
   * client says), or where the commit's mirror is not here yet (a commit fetched alone, while the
   * clone runs).
   */
  async submodules(tree: PreparedTree, signal?: AbortSignal): Promise<string[]> {
    if (!SHA_RE.test(tree.sha)) return [];
    const { key, mirror } = this.mirrorOf(tree.url);
    const known = this.gitlinks.get(`${key}/${tree.sha}`);
    if (known) return known;
    if (!existsSync(join(mirror, "HEAD"))) return [];
    const git = (args: string[]) => runGit(["--git-dir", mirror, ...args], { signal });
    let paths: string[];
    try {
      // No .gitmodules (most commits): none. Only git's own "does not exist" says so: a run stopped
      // or failed says nothing, and is not remembered.
      const hasModules = await git(["cat-file", "-e", `${tree.sha}:.gitmodules`]).then(
        () => true,
        (err: unknown) => (err instanceof GitError && /does not exist/.test(err.stderr) ? false : Promise.reject(err)),
      );
      const listed = hasModules
        ? await git(["config", "--blob", `${tree.sha}:.gitmodules`, "--get-regexp", String.raw`^submodule\..*\.path$`]).catch((err: unknown) => (err instanceof GitError && err.exitCode === 1 ? "" : Promise.reject(err)))
        : "";
      const named = listed
        .split("\n")
        .map((line) => line.slice(line.indexOf(" ") + 1).trim())
        .filter(Boolean);
      // Those the tree holds as submodules: an entry .gitmodules kept for one removed names nothing.
      const entries = named.length ? await git(["ls-tree", "-z", "--full-tree", tree.sha, "--", ...named.map((p) => `:(literal)${p}`)]) : "";
      paths = entries
        .split("\0")
        .filter((e) => e.startsWith("160000 "))
        .map((e) => e.slice(e.indexOf("\t") + 1))
        .sort();
    } catch {
      // Not known (the job stopped meanwhile, git failed): said as none, and asked again next time.
      return [];
    }
    if (signal?.aborted) return paths;
    // A memo of the trees asked lately: a tree's submodules never change.
    if (this.gitlinks.size >= 1000) this.gitlinks.clear();
    this.gitlinks.set(`${key}/${tree.sha}`, paths);
    return paths;
  }

  /**
   * What the commits an issue names changed, among the prepared tree's ancestors (see
   * history.ts). An upload has no history: it answers nothing, as a hint that is not there.
   * The tree's mirror was used by its preparation, so the budget does not count it idle yet.
   */
  async namedCommits(tree: PreparedTree, refs: string[], signal?: AbortSignal, options: { waitUntil?: number } = {}): Promise<CommitChange[]> {
    if (refs.length === 0 || !SHA_RE.test(tree.sha)) return [];
    const { key, mirror } = this.mirrorOf(tree.url);
    // A tree made from its commit alone (prepareShallow): the history is the clone's, still
    // coming. Waited for until `waitUntil` (performance.now()'s clock: a job's time limit less
    // what its answer needs), then answered without, as for an upload.
    const clone = this.cloning.get(key);
    if (clone && !(await settlesBy(clone.landed.catch(() => undefined), options.waitUntil ?? Infinity, signal))) return [];
    if (!existsSync(join(mirror, "HEAD"))) return [];
    await this.mirrors.touch(mirror);
    return commitChanges(mirror, tree.sha, refs, tree, signal);
  }

  private mirrorOf(url: string): { key: string; mirror: string } {
    const key = createHash("sha256").update(url).digest("hex").slice(0, 24);
    return { key, mirror: join(this.dir, "mirrors", `${key}.git`) };
  }

  /**
   * The commit with the caller's changes on top, in a tree named by its git tree id (never
   * the commit's own tree): the same edit on the same commit is prepared once.
   */
  private async preparePatched(
    id: RepoIdentity,
    key: string,
    mirror: string,
    sha: string,
    patch: string,
    cache: PreparedTree["cache"],
    started: number,
    signal?: AbortSignal,
  ): Promise<Unheld> {
    let patched;
    try {
      patched = await applyPatch(mirror, sha, patch, join(this.dir, "scratch"), signal);
    } catch (err) {
      if (err instanceof PatchError) throw new RepoError("patch_does_not_apply", err.message);
      throw err;
    }
    try {
      const rel = join(treesOf(key), `patched-${patched.treeId}`);
      const found = await this.trees.find(rel);
      if (found) return { ...id, sha, treePath: found, cache: cache === "cold" ? cache : "hot", durationMs: performance.now() - started };
      const treePath = await this.materialize(mirror, patched.treeId, rel, signal, patched.env, true);
      await this.evict().catch(() => 0);
      return { ...id, sha, treePath, cache, durationMs: performance.now() - started };
    } finally {
      await patched.dispose();
    }
  }

  /**
   * An uploaded working tree, extracted once per content address and checked again entry by
   * entry on the way: the store is not trusted more than the client was.
   */
  private async prepareUploadTree(uploadId: string, signal?: AbortSignal): Promise<Unheld> {
    const uploads = this.options.uploads;
    if (!uploads) throw new RepoError("upload_not_found", "this worker has no upload store");
    if (!UPLOAD_ID_RE.test(uploadId)) throw new RepoError("upload_not_found", `${uploadId} is not an upload id`);
    const bytes = async () => (await uploads.store.touch(uploadId))?.bytes ?? 0;
    return this.uploadTree(uploadId, join("uploads", uploadId), bytes, async (tmp) => {
      const archive = await uploads.store.read(uploadId);
      if (!archive) throw new RepoError("upload_not_found", `upload ${uploadId} is gone (expired?); upload the tree again`);
      await makeTreeDir(tmp);
      try {
        await extractArchive(archive, tmp, uploads.limits, signal);
      } catch (err) {
        if (err instanceof ArchiveError) throw new RepoError("invalid_upload", `upload ${uploadId} was refused: ${err.message}`);
        throw new RepoError("materialize_failed", `could not extract upload ${uploadId}: ${(err as Error).message}`);
      }
    });
  }

  /**
   * An upload with the caller's changes since on top (a checkout with no remote, edited after
   * it was sent): a tree of its own beside the upload's, named by the patch's hash.
   */
  private async preparePatchedUpload(uploadId: string, baseTree: string, patch: string, signal?: AbortSignal): Promise<Unheld> {
    const rel = join("uploads", `${uploadId}-patch-${createHash("sha256").update(patch).digest("hex").slice(0, 32)}`);
    return this.uploadTree(uploadId, rel, () => this.trees.bytesOf(baseTree), async (tmp) => {
      try {
        await applyPatchToCopy(baseTree, tmp, patch, signal);
      } catch (err) {
        if (err instanceof PatchError) throw new RepoError("patch_does_not_apply", err.message);
        throw new RepoError("materialize_failed", `could not apply the patch to upload ${uploadId}: ${(err as Error).message}`);
      }
    });
  }

  /**
   * A tree of an upload at `rel`: the one there, else written by `write` into a fresh directory
   * (which it creates) that becomes the tree once whole; nothing half made is left behind.
   * `bytes` says beforehand how large it will be, for where it goes.
   */
  private async uploadTree(uploadId: string, rel: string, bytes: () => Promise<number>, write: (tmp: string) => Promise<void>): Promise<Unheld> {
    const started = performance.now();
    const identity: RepoIdentity = { url: `upload:${uploadId}`, owner: "local", name: "workspace" };
    const ready = (treePath: string, cache: PreparedTree["cache"]) => ({ ...identity, sha: uploadId, treePath, cache, durationMs: performance.now() - started });
    const hot = await this.trees.find(rel);
    if (hot) return ready(hot, "hot");
    return this.withLock(`upload:${rel}`, async () => {
      const found = await this.trees.find(rel);
      if (found) return ready(found, "hot");
      // Its size is known before it is written: larger than its place allows, it goes to the
      // cache's disk, as a commit's tree does, and not there either when it would fill it.
      const size = await bytes();
      let treePath = await this.trees.place(rel);
      if (size > this.trees.limitFor(treePath)) treePath = this.trees.spillPath(rel);
      if (size > this.trees.limitFor(treePath)) throw this.noRoomOnDisk(`upload ${uploadId}`);
      const tmp = `${treePath}.tmp-${randomBytes(4).toString("hex")}`;
      try {
        await write(tmp);
        await this.trees.recordSize(treePath, tmp);
        await rename(tmp, treePath).catch(async (err) => {
          if (!existsSync(treePath)) throw err;
          await rm(tmp, { recursive: true, force: true });
        });
      } catch (err) {
        await rm(tmp, { recursive: true, force: true });
        throw err instanceof RepoError ? err : new RepoError("materialize_failed", `could not write the tree of upload ${uploadId}: ${(err as Error).message}`);
      }
      await this.evict().catch(() => 0);
      return ready(treePath, "warm");
    });
  }

  /**
   * Removes half-made mirrors and trees (`*.tmp-*`) that a crashed worker left behind, and
   * trees of caches whose directory is gone. Only old half-made ones: a live worker on the
   * same host may be writing a fresh one right now.
   */
  async sweep(olderThanMs = 15 * 60_000): Promise<number> {
    // Mirrors made before they were kept from other users of the host (createMirror).
    await chmod(join(this.dir, "mirrors"), 0o700).catch(() => undefined);
    await this.trees.guard();
    let removed = 0;
    const cutoff = Date.now() - olderThanMs;
    for (const dir of [join(this.dir, "mirrors"), join(this.dir, "scratch")]) {
      for (const name of await readdir(dir).catch(() => [] as string[])) {
        if (!name.includes(".tmp-")) continue;
        const path = join(dir, name);
        const st = await stat(path).catch(() => null);
        if (st && st.mtimeMs < cutoff) {
          await rm(path, { recursive: true, force: true });
          removed++;
        }
      }
    }
    return removed + (await this.trees.sweep(olderThanMs));
  }

  /**
   * Removes the least recently used idle trees while there are more than `maxTrees` or
   * they hold more than `maxTreeBytes`; returns how many. A tree in use (touched within its
   * cache's idle time) is never removed; new trees spill to disk instead.
   */
  evict(): Promise<number> {
    return this.trees.evict();
  }

  /** A step that reaches the remote, run again while its failure says the remote may answer next time. */
  private retried<T>(url: string, signal: AbortSignal | undefined, step: () => Promise<T>): Promise<T> {
    const { retries, minTimeoutMs } = this.options.gitRetries ?? { retries: 2, minTimeoutMs: 2_000 };
    return pRetry(step, {
      retries,
      minTimeout: minTimeoutMs,
      factor: 2,
      ...(signal ? { signal } : {}),
      onFailedAttempt: ({ error, attemptNumber, retriesLeft }) => {
        if (retriesLeft > 0 && isTransientGitFailure(error)) this.options.onGitRetry?.({ url, attempt: attemptNumber, retriesLeft, error: error.message });
      },
      shouldRetry: ({ error }) => isTransientGitFailure(error) && !signal?.aborted,
    });
  }

  private async authorize(url: string, env: () => Promise<Record<string, string>>, signal: AbortSignal | undefined, withToken: boolean) {
    try {
      const netEnv = await env();
      await this.retried(url, signal, () => runGit(["ls-remote", "--quiet", "--exit-code", "--", url, "HEAD"], { timeoutMs: 60_000, env: netEnv, signal }));
    } catch (err) {
      if (err instanceof RepoError) throw err;
      // A remote that kept failing has not said the credentials are wrong.
      if (isTransientGitFailure(err)) throw new RepoError("fetch_failed", `could not reach ${url}: ${(err as Error).message}`);
      throw credentialsRefused(url, withToken);
    }
  }

  /**
   * The repository's first clone, started once and shared by every job that finds no mirror:
   * not tied to any job's signal, since the jobs after it want it too. A clone that fails is
   * forgotten, and the next job starts another.
   */
  private startClone(url: string, key: string, mirror: string, env: () => Promise<Record<string, string>>, withToken: boolean) {
    let clone = this.cloning.get(key);
    const ours = !clone;
    if (!clone) {
      const landed = this.createMirror(url, mirror, env, this.closing.signal, withToken)
        .then(() => this.mirrors.evict().then(() => undefined, () => undefined))
        .catch((err: unknown) => {
          // Cloned again, it would be stopped again: for a while its jobs go without a mirror.
          // Over the budget it stays over; the disk may have room sooner, as mirrors and trees go idle.
          if (err instanceof RepoError && err.cause instanceof MirrorTooLarge) {
            const { limit } = err.cause;
            const forMs = limit === "budget" ? (this.options.treeIdleMs ?? 3_600_000) : DISK_SHORT_RETRY_MS;
            this.tooLarge.set(key, { limit, until: Date.now() + forMs });
          }
          throw err;
        })
        .finally(() => this.cloning.delete(key));
      // Nobody may be waiting on it any more (its jobs were answered shallow): its failure is the next job's to meet.
      landed.catch(() => undefined);
      clone = { landed, startedAt: performance.now() };
      this.cloning.set(key, clone);
    }
    return { ...clone, ours };
  }

  /** True once the clone is in place, false when it is still running `shallowAfterMs` after it started; rejects with its failure. */
  private landsInTime(clone: { landed: Promise<void>; startedAt: number }, signal?: AbortSignal): Promise<boolean> {
    return settlesBy(clone.landed, clone.startedAt + (this.options.shallowAfterMs ?? 3_000), signal);
  }

  /**
   * The tree of the commit alone, fetched shallow into a repository of its own next to the
   * mirror still being cloned, with the requester's own credentials (so a private commit is
   * read only by who may). Null when the remote will not give a commit that way (a sha it does
   * not serve by itself, a ref with `~`): the job then waits for the clone.
   */
  private async prepareShallow(id: RepoIdentity, key: string, mirror: string, req: PrepareRequest, env: () => Promise<Record<string, string>>, started: number, signal?: AbortSignal): Promise<Unheld | null> {
    const netEnv = await env();
    const seed = `${mirror}.tmp-seed-${randomBytes(4).toString("hex")}`;
    try {
      await runGit(["init", "--bare", "--quiet", "--", seed], { signal });
      try {
        await this.retried(id.url, signal, () =>
          // Not a mirror (removed once its tree is made): the disk's floor bounds it, not the mirrors' budget.
          this.mirrors.watch(seed, signal, (watched) => runGit(["--git-dir", seed, "fetch", "--quiet", "--depth=1", "--no-tags", "--", id.url, req.commit], { timeoutMs: this.options.gitTimeoutMs, env: netEnv, signal: watched }), { kept: false }),
        );
      } catch (err) {
        if (err instanceof MirrorTooLarge) throw new RepoError("fetch_failed", `could not fetch ${req.commit} of ${id.url}: ${err.message}`, { cause: err });
        if (signal?.aborted || !(err instanceof GitError)) throw err;
        return null;
      }
      const sha = await this.resolve(seed, "FETCH_HEAD", signal);
      if (!sha) return null;
      if (req.patch) return await this.preparePatched(id, key, seed, sha, req.patch, "cold", started, signal);
      const found = await this.trees.find(join(treesOf(key), sha));
      if (found) return { ...id, sha, treePath: found, cache: "cold", durationMs: performance.now() - started };
      const treePath = await this.materialize(seed, sha, join(treesOf(key), sha), signal);
      await this.evict().catch(() => 0);
      return { ...id, sha, treePath, cache: "cold", durationMs: performance.now() - started };
    } finally {
      await rm(seed, { recursive: true, force: true });
    }
  }

  private async createMirror(url: string, mirror: string, env: () => Promise<Record<string, string>>, signal?: AbortSignal, withToken = false) {
    const netEnv = await env();
    // Read by git on this host alone: no other user of the host lists or clones them (a private
    // repository's among them).
    await mkdir(join(this.dir, "mirrors"), { recursive: true, mode: 0o700 });
    await chmod(join(this.dir, "mirrors"), 0o700);
    try {
      await this.retried(url, signal, async () => {
        // A clone cut short leaves a partial repository: each attempt starts in a place of its own.
        const tmp = `${mirror}.tmp-${randomBytes(4).toString("hex")}`;
        try {
          // Branches and tags only (MIRRORED_REFS), not `clone --mirror`.
          await this.mirrors.watch(tmp, signal, (watched) => runGit(["clone", "--bare", "--quiet", "--", url, tmp], { timeoutMs: this.options.gitTimeoutMs, env: netEnv, signal: watched }));
          // Marked before it is in place: no job may find it unmarked (prepareTree's check).
          if (withToken) await writeFile(join(tmp, PRIVATE_MARK), "fetched with credentials\n");
          await rename(tmp, mirror).catch(async (err) => {
            // Another process made the mirror first: theirs is as good as ours.
            if (!existsSync(join(mirror, "HEAD"))) throw err;
            await rm(tmp, { recursive: true, force: true });
          });
        } catch (err) {
          await rm(tmp, { recursive: true, force: true });
          throw err;
        }
      });
    } catch (err) {
      // git's words for a remote that wants credentials ("could not read Username ... terminal
      // prompts disabled") say neither that none were sent nor how to send them.
      if (ASKS_FOR_CREDENTIALS.test((err as Error).message)) {
        throw credentialsRefused(url, withToken, err);
      }
      // The service follows no redirect (it could lead anywhere, with the token): a renamed or transferred repository's old address answers 301.
      if (/returned error: 30[1278]\b/.test((err as Error).message)) {
        throw new RepoError("fetch_failed", `could not mirror ${url}: the host says the repository moved (an HTTP redirect, as for a renamed or transferred repository), and the service follows none: give its new address`, { cause: err });
      }
      throw new RepoError("fetch_failed", `could not mirror ${url}: ${(err as Error).message}`, { cause: err });
    }
  }

  private async resolve(mirror: string, commit: string, signal?: AbortSignal): Promise<string | null> {
    try {
      const out = await runGit(["--git-dir", mirror, "rev-parse", "--verify", "--quiet", "--end-of-options", `${commit}^{commit}`], { signal });
      const sha = out.trim();
      return SHA_RE.test(sha) ? sha : null;
    } catch (err) {
      if (err instanceof GitError) return null;
      throw err;
    }
  }

  /**
   * The commit a name stands for on the remote now: the name alone (`main`, `v1.2`, `HEAD`,
   * `refs/pull/7/head`) is fetched into a ref of this request's own, and what follows it (`~2`,
   * `^{}`) is read here. Null when the remote has no such name. A remote that cannot be reached
   * fails the request: the mirror's copy of a name may be any age.
   */
  private async resolveOnRemote(url: string, mirror: string, commit: string, env: () => Promise<Record<string, string>>, signal?: AbortSignal): Promise<string | null> {
    const [, written = commit, rest = ""] = /^([^~^]+)(.*)$/.exec(commit) ?? [];
    // A reflog's `main@{1}` names nothing on a remote; `@` is HEAD.
    if (written.includes("@{")) return this.resolve(mirror, commit, signal);
    const name = written === "@" ? "HEAD" : written;
    // Kept, one ref per name: the next fetch tells the remote what the mirror holds of it, and is
    // sent only what is new (with the ref dropped after each job, each fetch of a moved branch
    // brought again all its history since the clone). Named by a digest of the name: `a` and
    // `a/b` never collide, and a long name (each part under git's limit) is no longer file name.
    const kept = `refs/codescout/named/${createHash("sha256").update(name).digest("hex").slice(0, 40)}`;
    const netEnv = await env();
    const fetchOnce = () =>
      this.mirrors.watch(mirror, signal, (watched) =>
        runGit(["--git-dir", mirror, "fetch", "--quiet", "--no-tags", "origin", "--", `+${name}:${kept}`], { timeoutMs: this.options.gitTimeoutMs, env: netEnv, signal: watched }),
      );
    try {
      // Another worker on the same cache fetching the same name holds the ref's lock a moment.
      await this.retried(url, signal, () => fetchOnce().catch(async (err: unknown) => (err instanceof GitError && /cannot lock ref/.test(err.stderr) ? sleep(200).then(fetchOnce) : Promise.reject(err))));
    } catch (err) {
      if (signal?.aborted) throw err;
      if (err instanceof GitError && /couldn't find remote ref|invalid refspec|not a valid ref/i.test(err.stderr)) {
        // A branch deleted on the remote: what its kept ref held goes with the next repack.
        await runGit(["--git-dir", mirror, "update-ref", "-d", kept]).catch(() => undefined);
        return null;
      }
      throw new RepoError("fetch_failed", `could not ask ${url} which commit ${name} is now (a name may have moved since the last fetch; a full sha is served from the cache): ${(err as Error).message}`, { cause: err });
    }
    return this.resolve(mirror, `${kept}${rest}`, signal);
  }

  private async fetch(url: string, mirror: string, commit: string, env: () => Promise<Record<string, string>>, signal?: AbortSignal) {
    const netEnv = await env();
    try {
      await this.retried(url, signal, () => this.fetchOnce(mirror, commit, netEnv, signal));
    } catch (err) {
      throw new RepoError("fetch_failed", `could not fetch: ${(err as Error).message}`);
    }
  }

  private fetchOnce(mirror: string, commit: string, netEnv: Record<string, string>, signal?: AbortSignal): Promise<void> {
    return this.mirrors.watch(mirror, signal, async (watched) => {
      const opts = { timeoutMs: this.options.gitTimeoutMs, env: netEnv, signal: watched };
      // Asking for the one commit is cheap where the server allows it (GitHub does);
      // otherwise bring the mirror up to date with all refs.
      if (SHA_RE.test(commit)) {
        try {
          await runGit(["--git-dir", mirror, "fetch", "--quiet", "origin", "--", commit], opts);
          return;
        } catch (err) {
          if (watched.aborted) throw err;
        }
      }
      // The refspecs are spelled out: a bare clone records none, and a mirror made by an
      // earlier version (`clone --mirror`) records every ref, pull requests' included.
      await runGit(["--git-dir", mirror, "fetch", "--quiet", "--prune", "origin", ...MIRRORED_REFS], opts);
    });
  }

  /** A tree that would take the cache's disk below half its free-space floor: the host's state, not the request's. */
  private noRoomOnDisk(what: string): RepoError {
    const floorMb = Math.round(this.diskFloor / 2 ** 20);
    return new RepoError("materialize_failed", `no room for the tree of ${what}: the repository cache's disk would fall below half its ${floorMb} MiB floor (REPO_MIRROR_MIN_FREE_MB)`);
  }

  /**
   * Writes the tree of `sha` where the tree store places `rel`, and returns its path. A tree
   * larger than its place allows is written again on the cache's own disk. A patched tree
   * (`patched`) leaves the commit's tree it is made from in place: the next edit starts there.
   */
  private async materialize(mirror: string, sha: string, rel: string, signal?: AbortSignal, env: Record<string, string> = {}, patched = false): Promise<string> {
    const treePath = await this.trees.place(rel);
    const spilled = this.trees.spillPath(rel);
    try {
      await this.writeTree(mirror, sha, treePath, this.trees.limitFor(treePath), patched, signal, env);
      return treePath;
    } catch (err) {
      if (!(err instanceof RepoError && err.cause instanceof TreeTooLarge)) throw err;
      // Placed on the disk already: written there again, it would stop at the same limit.
      if (treePath === spilled) throw this.noRoomOnDisk(sha);
      try {
        await this.writeTree(mirror, sha, spilled, this.trees.limitFor(spilled), patched, signal, env);
      } catch (e) {
        if (e instanceof RepoError && e.cause instanceof TreeTooLarge) throw this.noRoomOnDisk(sha);
        throw e;
      }
      return spilled;
    }
  }

  /**
   * Writes the tree into a fresh directory renamed to `treePath` once complete: derived from
   * the newest commit's tree of the same repository beside it when there is one (treeWrite.ts),
   * else whole. A commit's tree takes that tree over when no job uses it, as eviction would;
   * a patched one only links to it.
   */
  private async writeTree(mirror: string, object: string, treePath: string, maxBytes: number, patched: boolean, signal?: AbortSignal, env: Record<string, string> = {}) {
    await archiveAsCommitted(mirror);
    const neighbour = await this.trees.newestBeside(treePath, (name) => SHA_RE.test(name));
    let pages: number | undefined;
    if (neighbour) {
      const tmp = `${treePath}.tmp-${randomBytes(4).toString("hex")}`;
      let release: (() => Promise<void>) | undefined;
      const base = async () => {
        if (!patched && (await this.trees.take(neighbour, tmp))) return;
        release = await this.trees.hold(neighbour);
        if (!release) throw new NotDerivable("the tree went");
        await linkTree(neighbour, tmp, signal);
        // Eviction renames a tree before it deletes it: still there, it was whole throughout.
        if (!existsSync(neighbour)) throw new NotDerivable(`${neighbour} was removed while it was linked`);
      };
      const from = neighbour.slice(neighbour.lastIndexOf("/") + 1);
      const fromPages = await this.trees.bytesOf(neighbour);
      try {
        await this.finishTree(object, treePath, tmp, () => deriveInto(mirror, from, fromPages, object, tmp, maxBytes, base, signal, env));
        return;
      } catch (err) {
        // Anything else, the tree is written whole: that way has its own checks (tar's).
        if (signal?.aborted || (err instanceof RepoError && err.cause instanceof TreeTooLarge)) throw err;
        if (err instanceof RepoError && err.cause instanceof NotDerivable) pages = err.cause.pages;
      } finally {
        await release?.();
      }
    }
    const tmp = `${treePath}.tmp-${randomBytes(4).toString("hex")}`;
    await makeTreeDir(tmp);
    await this.finishTree(object, treePath, tmp, () => archiveInto(mirror, object, tmp, maxBytes, signal, env, pages));
  }

  /** Runs `write` into `tmp`, then records the tree's size and moves it to `treePath`. */
  private async finishTree(object: string, treePath: string, tmp: string, write: () => Promise<number>): Promise<void> {
    try {
      await this.trees.recordBytes(treePath, await write());
      await chmod(tmp, 0o755);
      // Its last use is now: a tree made from an idle one (or linked, `cp -a` keeps the times)
      // would otherwise look idle, and the budget could take it before its job holds it.
      await touch(tmp);
      await rename(tmp, treePath).catch(async (err) => {
        if (!existsSync(treePath)) throw err;
        await rm(tmp, { recursive: true, force: true });
      });
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      throw new RepoError("materialize_failed", `could not materialize ${object}: ${(err as Error).message}`, { cause: err });
    }
  }

  private async withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(key) ?? Promise.resolve();
    const next = prev.catch(() => undefined).then(fn);
    this.locks.set(key, next);
    try {
      return await next;
    } finally {
      if (this.locks.get(key) === next) this.locks.delete(key);
    }
  }
}

/**
 * What a mirror keeps: branches and tags. GitHub also advertises a head and a merge commit for
 * every pull request (refs/pull/*), which `clone --mirror` would bring: much of what a mirror
 * downloads and keeps in a repository with thousands of them (BENCHMARKS.md). A commit only a
 * pull request holds is still fetched by its sha when a job names it.
 */
/**
 * Where a repository's trees are, by its mirror's key: a directory of their own since trees are
 * written as committed (AS_COMMITTED). An earlier tree lacks its export-ignore paths, and a tree
 * derived from it would too: under the old name it is neither found nor derived from, and goes
 * as idle trees go.
 */
const treesOf = (key: string) => `${key}-as-committed`;

/** A commit's sha cut short, as `git log --oneline` prints it, and what may follow it (`~1`). */
const ABBREVIATED_SHA = /^[0-9a-f]{4,39}([~^].*)?$/i;

const MIRRORED_REFS = ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"];

const PRIVATE_MARK = "codescout-private";

/**
 * How long a repository whose clone left the disk short of its floor goes without a mirror
 * before a clone is tried again: mirrors and trees idle out, and operators free room, on that
 * scale; meanwhile its jobs fetch their commits alone, a fraction of the history's size.
 */
const DISK_SHORT_RETRY_MS = 10 * 60_000;

/**
 * Whether `promise` resolves before `until` (performance.now()'s clock; Infinity: whenever it
 * does). Rejects with its failure, or with the signal's reason once the signal aborts: a job
 * stops waiting on what other jobs share, which goes on.
 */
async function settlesBy(promise: Promise<unknown>, until: number, signal?: AbortSignal): Promise<boolean> {
  // An abort listener added now would never fire: a job already given up would wait out the clone, under the repository's lock.
  signal?.throwIfAborted();
  const left = until - performance.now();
  if (left <= 0) return false;
  const timer = new AbortController();
  const stop = signal ? AbortSignal.any([signal, timer.signal]) : timer.signal;
  const late = Number.isFinite(left) ? sleep(left, false, { signal: stop }) : new Promise<never>((_, reject) => stop.addEventListener("abort", () => reject(stop.reason), { once: true }));
  try {
    return await Promise.race([promise.then(() => true), late]);
  } catch (err) {
    if (signal?.aborted) throw signal.reason ?? err;
    throw err;
  } finally {
    timer.abort();
  }
}

/**
 * A remote that wants credentials: those sent were refused, or none were sent. The same words
 * whether or not the service holds a copy fetched with another caller's credentials: two told a
 * key without access that some other key had used the repository.
 */
function credentialsRefused(url: string, withToken: boolean, cause?: unknown): RepoError {
  const host = new URL(url).hostname;
  return new RepoError(
    "fetch_failed",
    withToken
      ? `cannot read ${url} with the credentials given: the remote refused them (the request's repo.token, or GIT_CREDENTIALS for ${host})`
      : `could not read ${url}: the remote asks for credentials, and none were sent: give repo.token, or set GIT_CREDENTIALS for ${host} on the workers`,
    cause === undefined ? undefined : { cause },
  );
}
