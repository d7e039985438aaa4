import { afterAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Redis } from "ioredis";
import { pino } from "pino";
import { createRedis } from "../../src/queue/connection.js";
import { createLocalizeQueue, enqueueLocalize } from "../../src/queue/producer.js";
import { startWorker } from "../../src/worker/build.js";
import { testConfig } from "../helpers/config.js";
import { startFakeModel } from "../helpers/fakeModel.js";
import { makeGitFixture } from "../helpers/gitFixture.js";
import { createDockerSandboxProvider } from "../../src/sandbox/docker.js";
import { sandboxOptionsFromConfig } from "../../src/sandbox/config.js";
import { freePort, waitFor } from "../helpers/processes.js";
import { dropPrefix } from "../helpers/redis.js";

/**
 * The worker's own GET /metrics, scraped as Prometheus would: what only the worker sees (each
 * request to the model server, webhook deliveries, its disk), after a job whose model server
 * failed once and whose receiver took the webhook.
 */
const fx = makeGitFixture();
const prefixes: string[] = [];
afterAll(async () => {
  fx.cleanup();
  await Promise.all(prefixes.map((p) => dropPrefix(p)));
});

/** A sample's value from the exposition text, or undefined. */
const sample = (text: string, name: string) => {
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
};

describe("the worker's /metrics", () => {
  it("counts each model request by outcome, webhook deliveries and running jobs, and reads its disk", async () => {
    const model = await startFakeModel();
    let n = 0;
    // The server away once (a retry), then an answer.
    model.script(() => (++n === 1 ? { status: 503, headers: { "retry-after-ms": "10" } } : { toolCalls: [{ name: "localization_finish", arguments: { locations: [{ file: "pkg/parser.py" }] } }] }));
    const hooks: string[] = [];
    const receiver = createServer((req, res) => {
      hooks.push(String(req.headers["x-codescout-job"]));
      res.writeHead(204).end();
    });
    await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
    const config = testConfig({
      ALLOW_FILE_URLS: "true",
      MODEL_BASE_URL: model.baseURL,
      MODEL_ALTERNATIVES: "false",
      WEBHOOK_SECRET: "webhook-secret-0123456789abcdef",
      ALLOW_PRIVATE_HOSTS: "true",
      WORKER_METRICS_PORT: "0",
    });
    prefixes.push(config.QUEUE_PREFIX);
    const redis = createRedis(config.REDIS_URL, "producer");
    const queue = createLocalizeQueue(redis, { prefix: config.QUEUE_PREFIX, retentionS: 600 });
    const worker = await startWorker(config, { logger: pino({ level: "silent" }) });
    try {
      expect(worker.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      const jobId = randomUUID();
      const callbackUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
      await enqueueLocalize(queue, { jobId, repo: { url: fx.url, commit: fx.commits[0]! }, issue: "`helper` should return 43", options: { policy: "codescout" }, owner: "alice", submittedAt: new Date().toISOString(), callbackUrl });
      await waitFor(async () => hooks.includes(jobId) || undefined, 60_000, "the job's webhook");

      const text = await waitFor(async () => {
        const t = await (await fetch(worker.metricsUrl!)).text();
        return sample(t, "codescout_worker_webhook_deliveries_total{outcome=\"delivered\"}") === 1 ? t : undefined;
      }, 10_000, "the delivery counted");
      expect(sample(text, 'codescout_worker_model_request_seconds_count{outcome="llm_unavailable"}')).toBe(1);
      expect(sample(text, 'codescout_worker_model_request_seconds_count{outcome="ok"}')).toBe(1);
      expect(sample(text, "codescout_worker_jobs_running")).toBe(0);
      expect(sample(text, "codescout_worker_concurrency")).toBeGreaterThan(0);
      expect(sample(text, 'codescout_worker_disk_free_bytes{dir="repo_cache"}')).toBeGreaterThan(0);
      expect(sample(text, "codescout_worker_process_resident_memory_bytes")).toBeGreaterThan(0);
      // Nothing but GET /metrics is served.
      expect((await fetch(worker.metricsUrl!.replace(/metrics$/, "jobs"))).status).toBe(404);
      // A second worker given the same port does not start, and says which setting.
      const taken = Number(new URL(worker.metricsUrl!).port);
      await expect(startWorker({ ...config, WORKER_METRICS_PORT: taken }, { logger: pino({ level: "silent" }) })).rejects.toThrow(/WORKER_METRICS_PORT: cannot listen on 127\.0\.0\.1:\d+ \(EADDRINUSE\)/);
    } finally {
      await worker.close();
      await queue.close();
      redis.disconnect();
      await model.close();
      await new Promise((r) => receiver.close(r));
    }
    // Closed with the worker.
    await expect(fetch(worker.metricsUrl!)).rejects.toThrow();
  }, 120_000);

  it("leaves no listener open when the start fails after it (an engine that cannot be asked for its orphans)", async () => {
    const port = await freePort();
    const config = testConfig({ WORKER_METRICS_PORT: String(port) });
    prefixes.push(config.QUEUE_PREFIX);
    const real = createDockerSandboxProvider({ ...sandboxOptionsFromConfig(config), owners: { scope: `metrics-${config.QUEUE_PREFIX}`, alive: async () => null } });
    const failing = Object.assign(Object.create(real) as typeof real, { reapOrphans: async () => Promise.reject(new Error("docker unreachable")) });
    await expect(startWorker(config, { logger: pino({ level: "silent" }), sandboxes: failing })).rejects.toThrow("docker unreachable");
    await expect(fetch(`http://127.0.0.1:${port}/metrics`)).rejects.toThrow();
    // Nor a heartbeat: no worker is alive for the API to count.
    const redis = new Redis(config.REDIS_URL);
    try {
      expect(await redis.keys(`${config.QUEUE_PREFIX}:*worker*`)).toEqual([]);
    } finally {
      redis.disconnect();
    }
  });
});
