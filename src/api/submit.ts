import { createHash, randomUUID } from "node:crypto";
import type { Config } from "../config/env.js";
import { resultCacheKey } from "../queue/cacheKey.js";
import { REF_RE, SHA_RE, type LocalizePayload, type PublicRepoRef, type RepoRef } from "../queue/contract.js";
import { HostGuard, parseHostList, type Resolver } from "../queue/hostPolicy.js";
import { enqueueLocalize, type LocalizeQueue } from "../queue/producer.js";
import { parseRepoUrl } from "../queue/repoUrl.js";
import { sealSecret } from "../queue/secrets.js";
import type { JobEvents } from "../store/events.js";
import { newJobView, type JobStore, type JobView } from "../store/jobStore.js";
import type { ResultCache } from "../store/resultCache.js";
import type { UploadStore } from "../uploads/store.js";
import { ApiError } from "./errors.js";
import { onlyAnIssueReference } from "./issueReference.js";
import type { Limits } from "./limits.js";
import type { LocalizeBody } from "./schemas.js";
import { ANSWER_REVISION } from "../version.js";
import type { UploadGrants } from "../store/uploadGrants.js";
import type { ServiceMetrics } from "./metrics.js";
import { isCommandTimeout } from "../queue/connection.js";

/**
 * Turns an accepted request into a job: checks what the schema cannot (issue size, URL
 * and host policy, commit form, what needs a configured secret), then answers from an
 * idempotency key or the result cache, or enqueues. The API never runs a job itself.
 */

export interface Prepared {
  payload: LocalizePayload;
  cacheKey: string | null;
  bodyHash: string;
}

export interface SubmitDeps {
  config: Config;
  queue: LocalizeQueue;
  store: JobStore;
  cache: ResultCache;
  events: JobEvents;
  uploads: UploadStore;
  uploadGrants: UploadGrants;
  limits: Limits;
  resolver: Resolver;
  metrics: Pick<ServiceMetrics, "cacheHit">;
}

export class Submitter {
  private readonly repoHosts: HostGuard;
  private readonly callbackHosts: HostGuard;

  constructor(private readonly deps: SubmitDeps) {
    const { config, resolver } = deps;
    // Early answers for the client; the worker checks again where it connects, and pins.
    const options = { timeoutMs: config.DNS_TIMEOUT_MS, cacheTtlMs: 60_000 };
    this.repoHosts = new HostGuard({ allowedHosts: parseHostList(config.REPO_ALLOWED_HOSTS), allowPrivate: config.ALLOW_PRIVATE_HOSTS }, resolver, options);
    this.callbackHosts = new HostGuard({ allowedHosts: [], allowPrivate: config.ALLOW_PRIVATE_HOSTS }, resolver, options);
  }

  /** Validates one request; `at` prefixes field names (e.g. "jobs.3."). */
  async prepare(body: LocalizeBody, owner: string, at = ""): Promise<Prepared> {
    const { config } = this.deps;
    if (body.issue.length > config.ISSUE_MAX_CHARS) {
      throw new ApiError(422, "issue_too_long", `issue has ${body.issue.length} characters; the limit is ${config.ISSUE_MAX_CHARS}`, `${at}issue`);
    }
    const reference = onlyAnIssueReference(body.issue);
    if (reference) {
      throw new ApiError(422, "issue_is_a_reference", `issue holds only a reference to an issue (${reference}), and the service follows no link: send the issue's title and text (for a GitHub issue, \`gh issue view <number> --json title,body\` prints them)`, `${at}issue`);
    }
    const source = await this.source(body.repo, owner, `${at}repo.`);
    if (body.callback_url) {
      if (!config.WEBHOOK_SECRET) throw new ApiError(422, "webhooks_disabled", "this server sends no webhooks (WEBHOOK_SECRET is not set)", `${at}callback_url`);
      try {
        const u = new URL(body.callback_url);
        if (u.protocol !== "https:" && u.protocol !== "http:") throw new Error("callback_url must be http(s)");
        if (u.username || u.password) throw new Error("callback_url must not carry credentials");
        await this.callbackHosts.check(u, "callback_url");
      } catch (err) {
        throw new ApiError(422, "invalid_callback_url", (err as Error).message, `${at}callback_url`);
      }
    }
    // A job that can only fail is not queued: without a model server the model's policy has nothing to ask.
    if (body.options?.policy === "codescout" && !config.MODEL_BASE_URL) {
      throw new ApiError(422, "model_disabled", "policy codescout needs a model server and this service has none (MODEL_BASE_URL is not set); ask for policy baseline, or leave policy out", `${at}options.policy`);
    }
    const options = { ...body.options, policy: body.options?.policy ?? (config.MODEL_BASE_URL ? "codescout" : "baseline") } as LocalizePayload["options"];
    const token = body.repo.token;
    const payload: LocalizePayload = {
      jobId: randomUUID(),
      repo: source.repo,
      ...(token && config.SECRET_KEY ? { sealedToken: sealSecret(token, config.SECRET_KEY) } : {}),
      ...(body.repo.patch ? { patch: body.repo.patch } : {}),
      ...(body.repo.commits?.length ? { commits: body.repo.commits } : {}),
      issue: body.issue,
      options,
      policyChosenBy: body.options?.policy ? "request" : "service",
      owner,
      ...(body.callback_url ? { callbackUrl: body.callback_url } : {}),
      submittedAt: new Date().toISOString(),
    };
    const cacheKey =
      source.identity && options.cache !== false && !token
        ? resultCacheKey({ ...source.identity, patch: source.repo.patch_sha256, commits: body.repo.commits, issue: body.issue, options, model: config.MODEL_NAME, service: ANSWER_REVISION })
        : null;
    return { payload, cacheKey, bodyHash: bodyHashOf(body) };
  }

  /**
   * The tree a request names: an upload, or a repository at a commit with an optional patch.
   * `identity` is what the result cache may key on (a full sha or an upload id), or null.
   */
  private async source(repo: RepoRef, owner: string, at: string): Promise<{ repo: PublicRepoRef; identity: { url: string; sha: string } | null }> {
    const { config, uploads, uploadGrants } = this.deps;
    if (repo.upload !== undefined) {
      const extra = (["url", "commit", "token"] as const).find((k) => repo[k] !== undefined);
      if (extra) throw new ApiError(422, "invalid_repository", `repo.upload names a whole tree; it is not combined with repo.${extra}`, `${at}${extra}`);
      const patchSha = repo.patch === undefined ? undefined : this.checkedPatch(repo.patch, at);
      // Another key's upload is no upload to this one, in the same words.
      if (!(await uploadGrants.holds(repo.upload, owner)) || !(await uploads.touch(repo.upload))) {
        throw new ApiError(422, "upload_not_found", `no upload ${repo.upload} (never sent, or expired): send the tree with POST /v1/uploads`, `${at}upload`);
      }
      return { repo: { upload: repo.upload, ...(patchSha ? { patch_sha256: patchSha } : {}) }, identity: { url: `upload:${repo.upload}`, sha: repo.upload } };
    }
    // A repository's history is read here; a patch may carry commits no history here holds.
    if (repo.commits !== undefined && repo.patch === undefined) {
      throw new ApiError(
        422,
        "invalid_repository",
        "repo.commits goes with repo.upload, or with repo.patch for the commits the patch carries: the service reads a repository's own history",
        `${at}commits`,
      );
    }
    if (repo.url === undefined) {
      throw new ApiError(422, "invalid_repository", "give repo.url and repo.commit (a repository at a commit), or repo.upload (an uploaded tree)", `${at}url`);
    }
    if (repo.commit === undefined) throw new ApiError(422, "invalid_commit", "repo.commit is required with repo.url", `${at}commit`);
    let url: string;
    try {
      url = parseRepoUrl(repo.url, { allowFileUrls: config.ALLOW_FILE_URLS, allowHttpUrls: config.ALLOW_HTTP_URLS }).url;
      if (!url.startsWith("file:")) await this.repoHosts.check(new URL(url));
    } catch (err) {
      throw new ApiError(422, "invalid_repository", (err as Error).message, `${at}url`);
    }
    if (!SHA_RE.test(repo.commit) && !REF_RE.test(repo.commit)) {
      throw new ApiError(422, "invalid_commit", "commit must be a 40-hex sha or a name git resolves (a branch, a tag, HEAD): no spaces, control characters, \":?*[\\\" or \"..\", and no leading \"-\"", `${at}commit`);
    }
    if (repo.token && !config.SECRET_KEY) {
      throw new ApiError(422, "tokens_disabled", "this server takes no repository tokens (SECRET_KEY is not set)", `${at}token`);
    }
    const patchSha = repo.patch === undefined ? undefined : this.checkedPatch(repo.patch, at);
    const publicRepo: PublicRepoRef = { url, commit: repo.commit, ...(patchSha ? { patch_sha256: patchSha } : {}) };
    return { repo: publicRepo, identity: SHA_RE.test(repo.commit) ? { url, sha: repo.commit } : null };
  }

  /** A patch within the limit that reads as a unified diff: its SHA-256, for the job's record and the result cache. */
  private checkedPatch(patch: string, at: string): string {
    const bytes = Buffer.byteLength(patch);
    if (bytes > this.deps.config.PATCH_MAX_BYTES) {
      throw new ApiError(422, "patch_too_large", `the patch has ${bytes} bytes; the limit is ${this.deps.config.PATCH_MAX_BYTES} (send a larger change as an upload)`, `${at}patch`);
    }
    if (patch.includes("\0") || !/^(diff --git |--- |@@ )/m.test(patch)) {
      throw new ApiError(422, "invalid_patch", "the patch is not a unified diff (as `git diff --binary HEAD` prints it)", `${at}patch`);
    }
    return sha256(patch);
  }

  /**
   * One job accepted from a client, limits included: what POST /v1/localize and the MCP
   * `localize` tool both do.
   */
  async accept(body: LocalizeBody, owner: string, idempotencyKey?: string): Promise<JobView> {
    const { limits, config } = this.deps;
    // Counted whatever becomes of it: a refused request has resolved the hosts it names.
    await limits.takeRequest(owner);
    const prepared = await this.prepare(body, owner);
    // A retry (an agent's, after a restart) follows the job it made, whatever the key's open
    // jobs: it opens none.
    if (idempotencyKey) {
      const earlier = await this.earlier(this.idempotencyKeyOf(owner, idempotencyKey), prepared);
      if (earlier) return earlier;
    }
    const ids = [prepared.payload.jobId];
    try {
      await limits.reserve(owner, ids, config.JOB_TTL_S);
    } catch (err) {
      // At the cap, the same key's request at the same moment may have taken the last place:
      // that job is this request's too (or it is still being accepted: 409, asked again).
      const earlier = idempotencyKey ? await this.earlier(this.idempotencyKeyOf(owner, idempotencyKey), prepared) : null;
      if (earlier) return earlier;
      throw err;
    }
    try {
      const { view } = await this.submit(prepared, idempotencyKey);
      // A retry that came at the same moment made the job.
      if (view.id !== prepared.payload.jobId) await limits.release(owner, ids);
      return view;
    } catch (err) {
      await limits.release(owner, ids);
      throw err;
    }
  }

  /**
   * A batch accepted whole, in order: POST /v1/localize/batch. With an Idempotency-Key each job
   * of it is keyed by its place, so a retry (after a timeout, a 503 part-way through) follows the
   * jobs the first attempt queued and queues only the rest; without one, a failure part-way
   * leaves the jobs queued before it, which the client cannot name.
   */
  async acceptBatch(bodies: LocalizeBody[], owner: string, idempotencyKey?: string): Promise<JobView[]> {
    const { limits, config } = this.deps;
    // The jobs a first sending with this key queued are followed, not counted again: a retry
    // of a batch that used most of the minute is not refused for the jobs it already made.
    const keyOf = (i: number) => (idempotencyKey ? `${idempotencyKey}\u0000batch\u0000${bodies.length}\u0000${i}` : undefined);
    const views: Array<JobView | null> = [];
    for (const [i, body] of bodies.entries()) {
      const key = keyOf(i);
      views.push(key ? await this.earlier(this.idempotencyKeyOf(owner, key), { bodyHash: bodyHashOf(body) }) : null);
    }
    const fresh = bodies.flatMap((_, i) => (views[i] ? [] : [i]));
    // Replays are reads of the key's own jobs: counted as one, as a GET of them would be.
    if (fresh.length < bodies.length) await limits.takePoll(owner);
    if (fresh.length === 0) return views as JobView[];
    // Counted before any job is prepared (each may resolve a host), and given back but one when
    // the batch is refused before anything of it was queued (422, 429): such a batch costs a
    // request, as a refused single one does (its lookups were made), not its jobs.
    const charge = await limits.takeRequest(owner, fresh.length);
    const prepared: Prepared[] = [];
    try {
      for (const i of fresh) prepared[i] = await this.prepare(bodies[i]!, owner, `jobs.${i}.`);
    } catch (err) {
      await charge.refund(fresh.length - 1);
      throw err;
    }
    const ids = fresh.map((i) => prepared[i]!.payload.jobId);
    try {
      if (idempotencyKey) await this.keyForBatch(this.idempotencyKeyOf(owner, idempotencyKey), bodies);
      await limits.reserve(owner, ids, config.JOB_TTL_S);
    } catch (err) {
      await charge.refund(fresh.length - 1);
      throw err;
    }
    let done = 0;
    try {
      for (const i of fresh) {
        const { view } = await this.submit(prepared[i]!, keyOf(i));
        views[i] = view;
        done++;
        // A retry that came at the same moment made this job.
        if (view.id !== prepared[i]!.payload.jobId) await limits.release(owner, [prepared[i]!.payload.jobId]);
      }
    } catch (err) {
      // The jobs queued before the failure stay counted; the others never were, and cost nothing.
      await limits.release(owner, ids.slice(done));
      await charge.refund(fresh.length - done);
      throw err;
    }
    return views as JobView[];
  }

  /**
   * The key itself names the batch it was first sent with (its jobs are keyed by their places):
   * the same key on a single job, or on a batch of another length, made new jobs instead of
   * being refused as a key used for a different request.
   */
  private async keyForBatch(idemKey: string, bodies: LocalizeBody[]): Promise<void> {
    const { redis } = this.deps.store;
    const batch = sha256(JSON.stringify(bodies.map(bodyHashOf)));
    if ((await redis.set(idemKey, JSON.stringify({ batch }), "EX", this.deps.config.JOB_TTL_S, "NX")) !== null) return;
    const raw = await redis.get(idemKey);
    if (raw !== null && (JSON.parse(raw) as { batch?: string }).batch !== batch) {
      throw new ApiError(422, "idempotency_key_reused", "this Idempotency-Key was used for a different request", "idempotency-key");
    }
  }

  private idempotencyKeyOf(owner: string, idempotencyKey: string): string {
    return this.deps.store.keys.idempotency(createHash("sha256").update(`${owner}\u0000${idempotencyKey}`).digest("hex"));
  }

  /**
   * The job an earlier request with this Idempotency-Key made, if there was one: refused when
   * that request was another, or is still being accepted.
   */
  private async earlier(idemKey: string, prepared: Pick<Prepared, "bodyHash">): Promise<JobView | null> {
    const raw = await this.deps.store.redis.get(idemKey);
    if (raw === null) return null;
    const prior = JSON.parse(raw) as { jobId?: string; bodyHash?: string };
    if (prior.bodyHash !== prepared.bodyHash) {
      throw new ApiError(422, "idempotency_key_reused", "this Idempotency-Key was used for a different request", "idempotency-key");
    }
    const redis = this.deps.store.redis;
    const view = prior.jobId ? await this.deps.store.get(prior.jobId) : null;
    const ttl = await redis.ttl(idemKey);
    if (!view) {
      if (ttl === -2) return null;
      // Kept past the accepting (its job was there), and the job is gone (expired): the key is
      // free again. Within the accepting, the request may still be queueing its job.
      if (ttl > ACCEPT_CLAIM_S) {
        await redis.eval("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0", 1, idemKey, raw);
        return null;
      }
      throw stillAccepting();
    }
    // The request that made it died before it kept the key for the job's lifetime.
    if (ttl >= 0 && ttl <= ACCEPT_CLAIM_S) await redis.expire(idemKey, this.deps.config.JOB_TTL_S);
    return view;
  }

  /** Returns the job for a prepared request, and whether a new job was queued. */
  async submit(prepared: Prepared, idempotencyKey?: string): Promise<{ view: JobView; queued: boolean }> {
    const { store, queue, cache, events, config } = this.deps;
    const { payload } = prepared;
    let idemKey: string | null = null;
    if (idempotencyKey) {
      idemKey = this.idempotencyKeyOf(payload.owner, idempotencyKey);
      // Claimed for the time accepting takes, then kept for the job's lifetime once the job is
      // there: an API that dies in between (or loses Redis) leaves a claim that names no job,
      // which answered every retry "still being accepted" (409) for the job's whole lifetime.
      const claim = () => store.redis.set(idemKey!, JSON.stringify({ jobId: payload.jobId, bodyHash: prepared.bodyHash }), "EX", ACCEPT_CLAIM_S, "NX");
      if ((await claim()) === null) {
        // No earlier job (its record expired in between, or it is gone for good): the key is free.
        const view = await this.earlier(idemKey, prepared);
        if (view) return { view, queued: false };
        if ((await claim()) === null) throw stillAccepting();
      }
    }
    // Set once the job may exist: from then on a failure keeps the claim that names it.
    let made = false;
    const mayHaveLanded = (err: Error): never => {
      made = isCommandTimeout(err);
      throw err;
    };
    try {
      if (prepared.cacheKey) {
        const hit = await cache.get(prepared.cacheKey);
        if (hit) {
          const now = new Date().toISOString();
          const view = newJobView(payload, { status: "succeeded", started_at: now, finished_at: now, cached: true, result: hit });
          await store.putStatic(view).catch(mayHaveLanded);
          made = true;
          if (idemKey) await store.redis.expire(idemKey, config.JOB_TTL_S).catch(() => undefined);
          await events.publish(payload.jobId, "finished", { cached: true });
          this.deps.metrics.cacheHit();
          // The answer stands whatever becomes of its webhook.
          await store.notifyEnded(payload.jobId, payload.callbackUrl).catch(() => undefined);
          return { view, queued: false };
        }
      }
      // No "queued" event is stored: the event stream opens with one made from the job itself.
      const priority = await store.turns.take(payload.owner, payload.jobId);
      await enqueueLocalize(queue, payload, priority).catch((err: Error) => {
        // Not queued: it does not wait (one that may have landed, a timeout, is read from its record).
        if (!isCommandTimeout(err)) void store.turns.left(payload.owner, payload.jobId).catch(() => undefined);
        return mayHaveLanded(err);
      });
    } catch (err) {
      // A write Redis took too long to answer may still land (the job queued after its 503), and a
      // cached job whose record was written is there: the claim, which names the job, stays for
      // its minute, and a retry finds the job if it came. A read that failed made nothing: the
      // key is free again.
      if (idemKey && !made) await store.redis.del(idemKey);
      throw err;
    }
    // The job is there: a failure here must not free the key (a retry would queue a second
    // job); the claim's minute then runs out, or a retry that finds the job keeps it.
    if (idemKey) await store.redis.expire(idemKey, config.JOB_TTL_S).catch(() => undefined);
    return { view: newJobView(payload), queued: true };
  }
}

/** How long an Idempotency-Key is held for a request still being accepted (a claim naming no job yet). */
export const ACCEPT_CLAIM_S = 60;

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

/** What an Idempotency-Key's later requests are compared by: the request as sent, its token by digest. */
function bodyHashOf(body: LocalizeBody): string {
  const token = body.repo.token;
  return sha256(JSON.stringify({ ...body, repo: { ...body.repo, token: token ? sha256(token) : null } }));
}

const stillAccepting = () => new ApiError(409, "idempotency_conflict", "a request with this Idempotency-Key is still being accepted; retry shortly", "idempotency-key", { "retry-after": "1" });
