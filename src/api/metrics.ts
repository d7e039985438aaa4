import type { QueueEvents } from "bullmq";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { localizeResultSchema } from "../queue/contract.js";
import { decodeFailure } from "../queue/failure.js";
import type { LocalizeQueue } from "../queue/producer.js";
import { within } from "../queue/connection.js";

/** How long a scrape waits for the queue's counts. */
const QUEUE_COUNTS_WAIT_MS = 2_000;

/**
 * Prometheus metrics, computed where the API can see them without running jobs: queue
 * gauges read from Redis at scrape time, and phase histograms observed from every job's
 * result as BullMQ announces it. Each API replica sees every job: the job counters and
 * histograms are the service's, the same on every replica (aggregate replicas with max, not
 * sum); `codescout_api_*` are the replica's own (sum them).
 */
export class ServiceMetrics {
  readonly registry = new Registry();
  private readonly phases: Histogram<"phase">;
  private readonly failedPhases: Histogram<"phase" | "code">;
  private readonly tokens: Counter<"kind">;
  private readonly failures: Counter<"code">;
  private readonly finished: Counter<"policy" | "finish_reason">;
  private readonly fallbacks: Counter<"from" | "reason">;
  private readonly cacheHits: Counter;

  constructor(queue: LocalizeQueue) {
    collectDefaultMetrics({ register: this.registry, prefix: "codescout_api_" });
    const registers = [this.registry];
    new Gauge({
      name: "codescout_queue_jobs",
      help: "Jobs in the localize queue by state",
      labelNames: ["state"],
      registers,
      async collect() {
        // Bounded: with Redis away the queue waits for a connection that may never come, and a
        // scrape held for ever (each one a request left open). The counts then stay as last read.
        const counts = await within(queue.getJobCounts("waiting", "prioritized", "delayed", "active", "completed", "failed"), QUEUE_COUNTS_WAIT_MS);
        for (const [state, n] of Object.entries(counts ?? {})) this.set({ state }, n);
      },
    });
    // The queue's depth says how many wait, not for how long: a stuck queue (no worker takes
    // jobs) and a busy one read alike by it. The oldest waiting job's age tells them apart.
    new Gauge({
      name: "codescout_queue_oldest_waiting_seconds",
      help: "How long the oldest of the jobs next in line has waited: the first waiting job of each API key, and the next of the keys' backlogs (0 when none waits)",
      registers,
      async collect() {
        // The oldest first-of-its-key job, and the backlogs' next (store/turns.ts); unread in time
        // (Redis away), it keeps its last value, as the counts do.
        const next = await within(Promise.all([queue.getJobs(["wait"], 0, 0, true), queue.getJobs(["prioritized"], 0, 0, true)]), QUEUE_COUNTS_WAIT_MS);
        if (!next) return;
        const times = next.flat().flatMap((job) => (job ? [job.timestamp] : []));
        this.set(times.length ? Math.max(0, (Date.now() - Math.min(...times)) / 1000) : 0);
      },
    });
    this.phases = new Histogram({
      name: "codescout_job_phase_seconds",
      help: "Time per job phase: queue_wait, repository, sandbox, model, tools, policy, total",
      labelNames: ["phase"],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900],
      registers,
    });
    // Apart from the succeeded jobs' histogram, whose meaning dashboards rely on: a failed job's
    // time (a job_timeout is the slowest of all) was in no histogram, so latency read better than it was.
    this.failedPhases = new Histogram({
      name: "codescout_failed_job_phase_seconds",
      help: "Time per phase of jobs that failed on a worker (cancelled while running included; cancelled while queued, not), by failure code: queue_wait, repository, sandbox, total (the phases each came to)",
      labelNames: ["phase", "code"],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900],
      registers,
    });
    this.tokens = new Counter({ name: "codescout_tokens_total", help: "Model tokens by kind", labelNames: ["kind"], registers });
    this.failures = new Counter({
      name: "codescout_jobs_failed_total",
      help: "Failed jobs by reason (sandbox_failed and job_timeout are sandbox failures)",
      labelNames: ["code"],
      registers,
    });
    this.finished = new Counter({ name: "codescout_jobs_succeeded_total", help: "Succeeded jobs (a job run; answers from the result cache: codescout_api_cache_hits_total)", labelNames: ["policy", "finish_reason"], registers });
    // The jobs succeed, so only this says the model server is away (MODEL_FALLBACK): alert on it.
    this.fallbacks = new Counter({
      name: "codescout_jobs_fallback_total",
      help: "Jobs the baseline answered because the model server could not be reached (llm_unavailable) or did not answer in time (llm_timeout)",
      labelNames: ["from", "reason"],
      registers,
    });
    // No job runs for these, so no worker announces them: the replica that answered counts them.
    this.cacheHits = new Counter({
      name: "codescout_api_cache_hits_total",
      help: "Requests this API replica answered from the result cache, no job run (the job counters do not see them)",
      registers,
    });
  }

  /** A request answered from the result cache. */
  cacheHit(): void {
    this.cacheHits.inc();
  }

  /**
   * Gauges of what the replica sees at scrape time, each read bounded as the queue's counts
   * are: whether Redis answers, and the workers alive (their heartbeats).
   */
  watch(probes: { redisUp: () => Promise<boolean>; redisFull: () => Promise<boolean>; workersAlive: () => Promise<number> }): void {
    const registers = [this.registry];
    /** A gauge read at the scrape, bounded; one not read in time keeps its last value, or `unread`. */
    const scraped = (name: string, help: string, read: () => Promise<number>, unread?: number) =>
      new Gauge({
        name,
        help,
        registers,
        async collect() {
          const value = (await within(read(), QUEUE_COUNTS_WAIT_MS)) ?? unread;
          if (value !== undefined) this.set(value);
        },
      });
    const flag = (probe: () => Promise<boolean>) => () => probe().then((b) => (b ? 1 : 0));
    scraped("codescout_redis_up", "1 when this API replica's Redis answers (the queue gauges keep their last values while it does not)", flag(probes.redisUp), 0);
    scraped(
      "codescout_redis_full",
      "1 when Redis is at its maxmemory: new jobs are refused until old ones expire (and workers' heartbeats fail, so codescout_workers_alive falls)",
      flag(probes.redisFull),
    );
    // 0, not the last count, when Redis does not answer in time: no worker is known to be alive then, and an alert on 0 must fire.
    scraped("codescout_workers_alive", "Workers with a heartbeat in Redis in the last 30 s (0 while Redis cannot be read)", probes.workersAlive, 0);
  }

  /** Observes every job end announced on the queue's event stream. */
  follow(events: QueueEvents): void {
    events.on("completed", ({ returnvalue }) => {
      const raw = typeof returnvalue === "string" ? safeJson(returnvalue) : returnvalue;
      const parsed = localizeResultSchema.safeParse(raw);
      if (!parsed.success) return;
      const r = parsed.data;
      const t = r.timings;
      const s = (ms: number) => ms / 1000;
      this.phases.observe({ phase: "queue_wait" }, s(t.queue_wait_ms));
      this.phases.observe({ phase: "repository" }, s(t.repo_ms));
      this.phases.observe({ phase: "sandbox" }, s(t.sandbox_ms));
      this.phases.observe({ phase: "model" }, s(t.model_ms));
      this.phases.observe({ phase: "tools" }, s(t.tool_ms));
      this.phases.observe({ phase: "policy" }, s(t.policy_ms));
      this.phases.observe({ phase: "total" }, s(t.total_ms));
      this.tokens.inc({ kind: "prompt" }, r.usage.prompt_tokens);
      this.tokens.inc({ kind: "completion" }, r.usage.completion_tokens);
      this.finished.inc({ policy: r.policy, finish_reason: r.finish_reason });
      if (r.fallback) this.fallbacks.inc({ from: r.fallback.from, reason: r.fallback.reason });
    });
    events.on("failed", ({ failedReason }) => {
      const { code, timings } = decodeFailure(failedReason);
      this.failures.inc({ code });
      for (const [phase, ms] of [
        ["queue_wait", timings?.queue_wait_ms],
        ["repository", timings?.repo_ms],
        ["sandbox", timings?.sandbox_ms],
        ["total", timings?.total_ms],
      ] as const) {
        if (ms !== undefined) this.failedPhases.observe({ phase, code }, ms / 1000);
      }
    });
  }
}

function safeJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return null;
  }
}
