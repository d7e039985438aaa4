import { statfs } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/**
 * What one worker process sees and the API cannot: each request to the model server (the API
 * sees only a job's sum of them), webhook deliveries, the remote's retries, the disk under the
 * repository cache, and the process itself (memory, event loop). The job counters and phase
 * histograms stay the API's, which sees every job end.
 */
export class WorkerMetrics {
  readonly registry = new Registry();
  private readonly modelAttempts: Histogram<"outcome">;
  private readonly webhooks: Counter<"outcome">;
  private readonly gitRetries: Counter;
  private readonly reaped: Counter;
  private readonly running: Gauge;

  constructor(opts: { concurrency: number }) {
    collectDefaultMetrics({ register: this.registry, prefix: "codescout_worker_" });
    const registers = [this.registry];
    this.modelAttempts = new Histogram({
      name: "codescout_worker_model_request_seconds",
      help: "Requests to the model server, each attempt by its outcome: ok, or the failure's reason (llm_unavailable, llm_timeout, llm_bad_request, context_length, cancelled); a retry is an attempt of its own",
      labelNames: ["outcome"],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300],
      registers,
    });
    this.webhooks = new Counter({
      name: "codescout_worker_webhook_deliveries_total",
      help: "Webhook deliveries by outcome: delivered, retry (an attempt failed, another follows), given_up (the job's answer did not reach its receiver)",
      labelNames: ["outcome"],
      registers,
    });
    this.gitRetries = new Counter({ name: "codescout_worker_git_retries_total", help: "Fetches from a repository's remote tried again after a failure", registers });
    this.reaped = new Counter({ name: "codescout_worker_sandboxes_reaped_total", help: "Sandboxes a crashed worker left behind, removed by this one", registers });
    this.running = new Gauge({ name: "codescout_worker_jobs_running", help: "Jobs this worker runs now (at most codescout_worker_concurrency)", registers });
    new Gauge({ name: "codescout_worker_concurrency", help: "Jobs this worker runs at once at most (WORKER_CONCURRENCY)", registers }).set(opts.concurrency);
  }

  /** The free space under each of these directories, read at each scrape: a full disk fails every job as it fetches or writes a tree, so the alert belongs before it. */
  watchDisks(dirs: Record<string, string>): void {
    const disks = Object.entries(dirs);
    new Gauge({
      name: "codescout_worker_disk_free_bytes",
      help: "Free bytes on the file system of each of the worker's directories (repository cache, trees)",
      labelNames: ["dir"],
      registers: [this.registry],
      async collect() {
        for (const [dir, path] of disks) {
          const s = await statfs(path).catch(() => null);
          if (s) this.set({ dir }, s.bavail * s.bsize);
        }
      },
    });
  }

  modelAttempt(outcome: string, seconds: number): void {
    this.modelAttempts.observe({ outcome }, seconds);
  }

  webhook(outcome: "delivered" | "retry" | "given_up"): void {
    this.webhooks.inc({ outcome });
  }

  gitRetry(): void {
    this.gitRetries.inc();
  }

  sandboxesReaped(n: number): void {
    if (n > 0) this.reaped.inc(n);
  }

  /** Counts a job as running while `run` does. */
  async counting<T>(run: () => Promise<T>): Promise<T> {
    this.running.inc();
    try {
      return await run();
    } finally {
      this.running.dec();
    }
  }
}

/**
 * GET /metrics for Prometheus, and nothing else: a plain listener, since the worker serves no
 * other HTTP and a framework would be all weight here.
 */
export async function serveMetrics(metrics: WorkerMetrics, host: string, port: number): Promise<Server & { port: number }> {
  const server = createServer((req, res) => {
    if (req.method !== "GET" || (req.url ?? "").split("?")[0] !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found: GET /metrics\n");
      return;
    }
    metrics.registry.metrics().then(
      (body) => res.writeHead(200, { "content-type": metrics.registry.contentType }).end(body),
      (err: Error) => res.writeHead(500, { "content-type": "text/plain" }).end(`metrics failed: ${err.message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) => reject(new Error(`WORKER_METRICS_PORT: cannot listen on ${host}:${port} (${err.code ?? err.message})`)));
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  return Object.assign(server, { port: typeof address === "object" && address ? address.port : port });
}
