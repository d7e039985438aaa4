import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { Worker } from "bullmq";
import { pino, type Logger } from "pino";
import { workerConcurrency, type Config } from "../config/env.js";
import { BaselinePolicy } from "../agent/baseline.js";
import type { Policy } from "../agent/policy.js";
import { QUEUES, type FailureCode, type LocalizePayload, type LocalizeResult, type WebhookPayload } from "../queue/contract.js";
import { decodeFailure, JobFailedError } from "../queue/failure.js";
import { readCapped } from "../agent/codescout/modelClient.js";
import { atMost, closeRedis, createRedis, evictionLine, evictionPolicy, isRedisUnreachable, redisAwayReporter, settleConnections, within } from "../queue/connection.js";
import { createLocalizeQueue, createWebhookQueue } from "../queue/producer.js";
import { openSecret } from "../queue/secrets.js";
import { HostGuard, parseHostList, systemResolver, type Resolver } from "../queue/hostPolicy.js";
import { RepoCache } from "../repos/cache.js";
import { createDockerSandboxProvider } from "../sandbox/docker.js";
import { sandboxOptionsFromConfig } from "../sandbox/config.js";
import type { SandboxProvider } from "../sandbox/types.js";
import { JobEvents } from "../store/events.js";
import { JobStore } from "../store/jobStore.js";
import { deploymentScope, liveSandboxOwners, type ModelState } from "../store/workers.js";
import { ResultCache } from "../store/resultCache.js";
import { archiveLimitsFromConfig, uploadStoreFromConfig } from "../uploads/fromConfig.js";
import { Heartbeat } from "./heartbeat.js";
import { watchEngine } from "./engineWatch.js";
import { dropEndedJobs } from "./retention.js";
import { Pauses } from "./pauses.js";
import { createPolicySelector } from "./policies.js";
import { Cleanups } from "./cleanups.js";
import { createProcessor } from "./processor.js";
import { webhookProcessor } from "./webhooks.js";
import { serveMetrics, WorkerMetrics } from "./metrics.js";
import { ERROR_SERIALIZERS } from "../queue/logSafe.js";
import { watchRedis } from "./redisWatch.js";

/** How long a close that needs Redis may wait for it once the jobs are done. */
const REDIS_CLOSE_MS = 5000;

export interface RunningWorker {
  id: string;
  worker: Worker<LocalizePayload, LocalizeResult>;
  logger: Logger;
  /** Where GET /metrics answers (WORKER_METRICS_PORT), if it does. */
  metricsUrl?: string;
  /** Stops taking jobs, lets running ones finish within the grace period, hands back the rest. */
  close(): Promise<void>;
}

export const REDACT = ["*.apiKey", "*.api_key", "*.token", "*.sealedToken", "*.authorization", "*.password", "*.MODEL_API_KEY", "*.SECRET_KEY"];

export interface WorkerOptions {
  logger?: Logger;
  /** Host name resolution for the URL policy (git remotes, webhooks); the system's unless injected. */
  resolver?: Resolver;
  /** Where sandboxes come from; Docker, configured from `config`, unless injected. */
  sandboxes?: SandboxProvider;
  /** How often what crashed workers left is removed while this one runs (default 5 min). */
  upkeepEveryMs?: number;
  /** The upkeep's one extra run soon after the start (default 90 s: a predecessor's heartbeat and the reaping's grace). */
  upkeepSoonAfterMs?: number;
  /** How often it looks at its Redis: full (it takes no job while it is), come back empty (default 10 s). */
  redisWatchEveryMs?: number;
  /** How often a worker whose engine could not start a sandbox asks it again (default 10 s). */
  engineWatchEveryMs?: number;
}

/** Wires one worker process: the localize consumer, webhook delivery, cancellation, heartbeat. */
export async function startWorker(config: Config, options: WorkerOptions = {}): Promise<RunningWorker> {
  const logger = options.logger ?? pino({ level: config.LOG_LEVEL, redact: REDACT, serializers: ERROR_SERIALIZERS });
  const resolver = options.resolver ?? systemResolver;
  // At the point of connection: no cached answers, the lookup's own answer is what gets pinned.
  const guard = (allowedHosts: string[]) => new HostGuard({ allowedHosts, allowPrivate: config.ALLOW_PRIVATE_HOSTS }, resolver, { timeoutMs: config.DNS_TIMEOUT_MS });
  const callbackHosts = guard([]);
  const id = `${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`;
  const redisDown = redisAwayReporter(config.REDIS_URL, (fields, line) => logger.warn(fields, line));
  // Redis away at the start is said at once (main.ts: one line, exit 1); the connections below
  // wait for a Redis that goes away later instead.
  // What the connection met is kept: the ping's own error says only that it gave up (a TLS
  // certificate not trusted read as "unreachable", its cause never said).
  let metOnConnecting: Error | undefined;
  const first = createRedis(config.REDIS_URL, "producer", (err) => (metOnConnecting = err));
  try {
    await first.ping().catch((err: Error) => {
      if (metOnConnecting && metOnConnecting.message !== err.message) err.message = `${err.message}; the connection's last error: ${metOnConnecting.message}`;
      throw err;
    });
    const evicting = evictionLine((await within(evictionPolicy(first), 2_000)) ?? "noeviction");
    if (evicting) logger.error(evicting);
  } finally {
    first.disconnect();
  }
  const concurrency = workerConcurrency(config);
  const metrics = new WorkerMetrics({ concurrency });
  // Before anything that must be closed again: a port taken fails the start with nothing left running.
  const metricsServer = config.WORKER_METRICS_PORT === undefined ? null : await serveMetrics(metrics, config.WORKER_METRICS_HOST, config.WORKER_METRICS_PORT);
  let heartbeat: Heartbeat | undefined;
  try {
    const connection = createRedis(config.REDIS_URL, "worker", redisDown);
    // A job's own writes (its trajectory, events, the result cache) wait for a Redis that restarts,
    // as BullMQ's do: given up after three tries, a blip in a job's last step failed it as internal.
    const redis = createRedis(config.REDIS_URL, "worker", redisDown);
    const subscriber = createRedis(config.REDIS_URL, "worker", redisDown);
    const queue = createLocalizeQueue(redis, { prefix: config.QUEUE_PREFIX, retentionS: config.JOB_TTL_S });
    const webhooks = createWebhookQueue(redis, { prefix: config.QUEUE_PREFIX, retentionS: config.JOB_TTL_S, attempts: config.WEBHOOK_MAX_ATTEMPTS });
    const store = new JobStore(queue, redis, config.JOB_TTL_S, webhooks);
    const events = new JobEvents(redis, config.QUEUE_PREFIX, config.JOB_TTL_S);
    const cache = new ResultCache(redis, config.QUEUE_PREFIX, config.RESULT_CACHE_TTL_S);
    const uploads = uploadStoreFromConfig(config, redis);
    const repos = new RepoCache({
      dir: config.REPO_CACHE_DIR,
      treeDir: config.REPO_TREE_DIR,
      allowFileUrls: config.ALLOW_FILE_URLS,
      allowHttpUrls: config.ALLOW_HTTP_URLS,
      hosts: guard(parseHostList(config.REPO_ALLOWED_HOSTS)),
      maxTrees: config.REPO_MAX_TREES,
      ...(config.REPO_TREE_MAX_MB !== undefined ? { maxTreeBytes: config.REPO_TREE_MAX_MB * 1024 * 1024 } : {}),
      treeIdleMs: (config.SANDBOX_JOB_TIMEOUT_S + 300) * 1000,
      // What a client sent goes from the trees when its upload goes from the store.
      sentMaxIdleMs: config.UPLOAD_TTL_S * 1000,
      ...(config.REPO_MIRROR_MAX_MB !== undefined ? { maxMirrorBytes: config.REPO_MIRROR_MAX_MB * 1024 * 1024 } : {}),
      mirrorMinFreeBytes: config.REPO_MIRROR_MIN_FREE_MB * 1024 * 1024,
      shallowAfterMs: config.REPO_SHALLOW_FIRST_AFTER_S === "off" ? Infinity : config.REPO_SHALLOW_FIRST_AFTER_S * 1000,
      uploads: { store: uploads, limits: archiveLimitsFromConfig(config) },
      onGitRetry: (r) => {
        metrics.gitRetry();
        logger.warn(r, "the remote failed; trying again");
      },
    });
    metrics.watchDisks({ repo_cache: config.REPO_CACHE_DIR, trees: repos.trees.dir });
    const owners = {
      // The heartbeats' own place: this Redis and this queue, by an id kept there (not by its URL's text).
      scope: await deploymentScope(redis, store.keys),
      // Bounded: this connection waits for a Redis that is away, and the upkeep must not.
      alive: async () => (await within(liveSandboxOwners(redis, store.keys), REDIS_CLOSE_MS)) ?? null,
    };
    const sandboxes = options.sandboxes ?? createDockerSandboxProvider({ ...sandboxOptionsFromConfig(config), owners });
    heartbeat = new Heartbeat(redis, store.keys, id, () => probe(config, sandboxes), sandboxes.ownerId);
    await heartbeat.start();
    for (const line of (await sandboxes.checkLimits?.()) ?? []) logger.error(line);
    const reaped = await sandboxes.reapOrphans();
    metrics.sandboxesReaped(reaped);
    if (reaped > 0) logger.warn({ reaped }, "removed sandboxes left behind by a crashed worker");
    const swept = await repos.sweep();
    if (swept > 0) logger.warn({ swept }, "removed what no job will use: half-made mirrors and trees a crashed worker left, trees of caches whose directory is gone, idle trees over the budget");
    // And again while it runs: what another worker on the host left when it died (its sandboxes,
    // a half-made mirror or tree, in RAM on the tmpfs) waited for the next worker's start, which
    // under a long-running worker may never come. Past the longest a job or a git command runs,
    // a half-made one is no live writer's.
    const halfMadeAfterMs = Math.max(15 * 60_000, (config.SANDBOX_JOB_TIMEOUT_S + 300) * 1000);
    const upkeepOnce = () => {
      void (async () => {
        const reapedNow = await sandboxes.reapOrphans();
        metrics.sandboxesReaped(reapedNow);
        if (reapedNow > 0) logger.warn({ reaped: reapedNow }, "removed sandboxes left behind by a crashed worker");
        const sweptNow = await repos.sweep(halfMadeAfterMs);
        if (sweptNow > 0) logger.warn({ swept: sweptNow }, "removed half-made mirrors and trees a crashed worker left");
        // Expired uploads in a directory went only as new ones arrived: with none coming, never.
        const expired = (await uploads.sweep?.()) ?? 0;
        if (expired > 0) logger.info({ expired }, "removed expired uploads");
      })().catch((err: unknown) => logger.warn({ err }, "upkeep failed"));
      // Apart: an engine or a disk failing above must not keep ended jobs' data past its time.
      void dropEndedJobs(redis, [queue, webhooks], config.JOB_TTL_S * 1000).then(
        (ended) => ended > 0 && logger.info({ ended }, "removed jobs ended more than JOB_TTL_S ago"),
        (err: unknown) => logger.warn({ err }, "removing ended jobs failed"),
      );
    };
    const upkeep = setInterval(upkeepOnce, options.upkeepEveryMs ?? UPKEEP_EVERY_MS);
    upkeep.unref();
    // Once more soon after the start: a worker restarted in place starts within its predecessor's
    // heartbeat (30 s), whose sandboxes the start's reaping must leave until it lapses.
    const soon = setTimeout(upkeepOnce, options.upkeepSoonAfterMs ?? UPKEEP_SOON_AFTER_MS);
    soon.unref();

    const hostCredentials = parseCredentials(config.GIT_CREDENTIALS);
    const tokenFor = (payload: LocalizePayload): string | undefined => {
      if (payload.sealedToken && config.SECRET_KEY) return openSecret(payload.sealedToken, config.SECRET_KEY);
      const host = payload.repo.url ? safeHost(payload.repo.url) : undefined;
      return host ? hostCredentials[host] : undefined;
    };

    const shutdown = new AbortController();
    const cleanups = new Cleanups(concurrency, (err) => logger.error({ err }, "job cleanup failed"));
    const policyFor = createPolicySelector(config, (): Policy => new BaselinePolicy(), undefined, (outcome, seconds) => metrics.modelAttempt(outcome, seconds));
    const processor = createProcessor({
      repos,
      sandboxes,
      store,
      events,
      cache,
      model: config.MODEL_NAME,
      tokenFor,
      policyFor,
      jobTimeoutS: config.SANDBOX_JOB_TIMEOUT_S,
      defaultMaxTurns: config.MAX_TURNS,
      snippetMaxLines: config.SNIPPET_MAX_LINES,
      logger,
      shutdownSignal: shutdown.signal,
      cleanups,
      lockMs: config.WORKER_LOCK_MS,
      engineDown: (err) => engine.down(err),
    });
    const worker = new Worker<LocalizePayload, LocalizeResult>(QUEUES.localize, (job, token, signal) => metrics.counting(() => processor(job, token, signal)), {
      connection,
      prefix: config.QUEUE_PREFIX,
      concurrency,
      // A worker that dies mid-job loses its lock after lockDuration; the job is then picked
      // up again (once) by another worker.
      lockDuration: config.WORKER_LOCK_MS,
      stalledInterval: config.WORKER_LOCK_MS,
      maxStalledCount: 1,
    });
    // Each reason to take no job held apart: the one that ends first does not resume the worker for the other.
    const pauses = new Pauses(worker);
    const engine = watchEngine(pauses.for("engine"), () => sandboxes.ping?.() ?? Promise.resolve(), logger, options.engineWatchEveryMs ?? 10_000);

    const notify = (job: { id?: string; data: LocalizePayload } | undefined) => {
      if (!job?.id || !job.data.callbackUrl) return;
      void store.notifyEnded(job.id, job.data.callbackUrl).catch((err) => logger.error({ err, jobId: job.id }, "webhook enqueue failed"));
    };
    worker.on("completed", (job) => notify(job));
    worker.on("failed", (job, err) => {
      // The code as a field, and the caller's own mistakes and cancels at info: warn is for what
      // the operator may have to act on (a sandbox, the model server, a fault).
      const { code, message } = decodeFailure(err.message);
      const level = CALLERS_FAILURES.has(code) ? "info" : "warn";
      const timings = err instanceof JobFailedError ? err.spent : undefined;
      logger[level]({ jobId: job?.id, code, message, owner: job?.data.owner, attempt: job?.attemptsMade, ...(timings ? { timings } : {}) }, "job failed");
      notify(job);
    });
    worker.on("error", (err) => (isRedisUnreachable(err) ? redisDown(err) : logger.error({ err }, "worker error")));
    // A job whose worker died, or lost Redis past WORKER_LOCK_MS: retried here, which nothing said before.
    worker.on("stalled", (jobId) => logger.warn({ jobId }, "job stalled (its worker stopped renewing its lock: it died, or lost Redis longer than WORKER_LOCK_MS), retried"));
    // A connection of its own, passed in, so BullMQ counts it shared and leaves it open: closed below.
    const webhookConnection = config.WEBHOOK_SECRET ? connection.duplicate() : null;
    const webhookWorker = webhookConnection
      ? new Worker<WebhookPayload, { status: number }>(
          QUEUES.webhook,
          webhookProcessor(store, config.WEBHOOK_SECRET!, callbackHosts),
          // Deliveries wait on receivers (up to 10 s each): at 4, a few receivers that never answer
          // held every slot, and everyone's webhooks queued behind them (a healthy one 238 s late).
          { connection: webhookConnection, prefix: config.QUEUE_PREFIX, concurrency: 32 },
        )
      : null;

    // A webhook given up is the operator's to know of: its job's answer did not reach the receiver.
    webhookWorker?.on("completed", () => metrics.webhook("delivered"));
    webhookWorker?.on("failed", (job, err) => {
      const last = job && (job.attemptsMade >= (job.opts.attempts ?? 1) || err.name === "UnrecoverableError");
      metrics.webhook(last ? "given_up" : "retry");
      if (job && last) logger.warn({ jobId: job.data.jobId, receiver: safeHost(job.data.url), attempts: job.attemptsMade, err: err.message }, "webhook given up");
    });

    // Cancellation reaches whichever worker runs the job; the others ignore the message.
    await subscriber.subscribe(store.keys.cancelChannel);
    subscriber.on("message", (_channel, jobId: string) => {
      if (worker.cancelJob(jobId, "cancelled")) logger.info({ jobId }, "cancelling job");
    });

    await worker.waitUntilReady();
    const stopRedisWatch = watchRedis(pauses.for("redis_full"), redis, store.keys.deployment, logger, options.redisWatchEveryMs ?? 10_000);
    const metricsUrl = metricsServer ? `http://${config.WORKER_METRICS_HOST.includes(":") ? `[${config.WORKER_METRICS_HOST}]` : config.WORKER_METRICS_HOST}:${metricsServer.port}/metrics` : undefined;
    logger.info({ id, concurrency, defaultPolicy: config.MODEL_BASE_URL ? "codescout" : "baseline", ...(metricsUrl ? { metrics: metricsUrl } : {}) }, "worker ready");

    return {
      id,
      worker,
      logger,
      ...(metricsUrl ? { metricsUrl } : {}),
      async close() {
        // Finish what is running for the grace period, then hand the rest back; each job's
        // own cleanup removes its container either way.
        clearInterval(upkeep);
        clearTimeout(soon);
        stopRedisWatch();
        engine.stop();
        const grace = setTimeout(() => shutdown.abort(), config.WORKER_SHUTDOWN_GRACE_S * 1000);
        // What waits on Redis shares one deadline: with Redis away BullMQ's closes wait for it for
        // ever, and bounded one after another they added up to a minute, past the orchestrator's
        // stop grace (compose's 45 s), whose SIGKILL would leave the jobs' containers behind. The
        // containers' removal (cleanups) does not wait on Redis and is never cut short.
        const deadline = Date.now() + config.WORKER_SHUTDOWN_GRACE_S * 1000 + REDIS_CLOSE_MS;
        const left = (atLeast: number) => Math.max(atLeast, deadline - Date.now());
        await settleConnections([worker, webhookWorker, queue, webhooks], Math.min(2000, left(0)));
        await atMost(worker.close(), left(0));
        clearTimeout(grace);
        await cleanups.settle();
        await repos.close();
        await atMost(Promise.all([webhookWorker?.close(), heartbeat?.stop(), queue.close(), webhooks.close()]), left(1000));
        subscriber.disconnect();
        metricsServer?.closeAllConnections();
        metricsServer?.close();
        await Promise.all([closeRedis(redis), closeRedis(connection), webhookConnection ? closeRedis(webhookConnection) : undefined]);
      },
    };
  } catch (err) {
    // A start that fails past the listener leaves nothing open: the listener neither. Nor its
    // heartbeat, begun before the reaping (which reads it): a worker restarted on a broken
    // engine every few seconds kept one alive, so workers_alive never fell to 0 and no job
    // waiting for a worker was ended.
    metricsServer?.close();
    await heartbeat?.stop().catch(() => undefined);
    throw err;
  }
}

/** Failures that are the request's (or its caller's choice), not the service's: logged at info. */
const CALLERS_FAILURES: ReadonlySet<FailureCode> = new Set(["invalid_repository", "commit_not_found", "patch_does_not_apply", "upload_not_found", "invalid_upload", "scope_not_found", "cancelled"]);

/** How often a running worker removes what crashed workers left. */
const UPKEEP_EVERY_MS = 5 * 60_000;
const UPKEEP_SOON_AFTER_MS = 90_000;

/**
 * The engine and the model server, looked at side by side and each within its own time: a model
 * server that hangs must not make a healthy engine read as down (the heartbeat's bound on the
 * whole is for an engine that does not answer).
 */
async function probe(config: Config, sandboxes: { ping?: () => Promise<void> }) {
  const docker = sandboxes.ping ? within(sandboxes.ping().then(() => true, () => false), DOCKER_PROBE_MS).then((up) => up ?? false) : Promise.resolve(true);
  let model: Promise<ModelState> = Promise.resolve("none");
  if (config.MODEL_BASE_URL) {
    const headers: Record<string, string> = config.MODEL_API_KEY ? { authorization: `Bearer ${config.MODEL_API_KEY}` } : {};
    model = fetch(`${config.MODEL_BASE_URL.replace(/\/$/, "")}/models`, { headers, redirect: "manual", signal: AbortSignal.timeout(3000) }).then(
      (r) => modelState(r, config.MODEL_NAME),
      () => "down" as const,
    );
  }
  return { docker: await docker, model: await model };
}

/** The engine's ping within this, or it counts as not answering (under the heartbeat's 5 s for the whole probe). */
const DOCKER_PROBE_MS = 4_000;

/**
 * A server that answers but refuses this service's key (401, 403), or a vLLM that serves no model
 * of MODEL_NAME, fails every job (llm_bad_request: no fallback): said as refused, not as up. Only
 * vLLM's list is taken at its word: it answers 404 for any other name, where some servers
 * (llama.cpp's) list a file's path and answer whatever name a request gives.
 */
async function modelState(r: Response, name: string): Promise<ModelState> {
  if (r.status === 401 || r.status === 403) return "refused";
  if (!r.ok) return "down";
  // A list of models is a few hundred bytes: a reply past 1 MiB is no list, and is not read on.
  const body = await readCapped(r, 1 << 20).catch(() => null);
  if (body === null) return "down";
  const listed = (() => {
    try {
      return JSON.parse(body.toString("utf8")) as { data?: unknown } | null;
    } catch {
      return null;
    }
  })();
  const models = Array.isArray(listed?.data) ? (listed.data as Array<{ id?: unknown; owned_by?: unknown } | null>) : [];
  const vllm = models.length > 0 && models.every((m) => m?.owned_by === "vllm");
  return vllm && !models.some((m) => m?.id === name) ? "refused" : "ok";
}

function parseCredentials(raw: string | undefined): Record<string, string> {
  if (!raw) return {};
  const parsed = JSON.parse(raw) as unknown;
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error("GIT_CREDENTIALS must be a JSON object of host → token");
  return Object.fromEntries(Object.entries(parsed as Record<string, unknown>).filter((e): e is [string, string] => typeof e[1] === "string").map(([h, t]) => [h.toLowerCase(), t]));
}

function safeHost(url: string): string | undefined {
  try {
    return new URL(url).hostname.toLowerCase();
  } catch {
    return undefined;
  }
}
