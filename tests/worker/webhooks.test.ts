import { describe, it, expect, afterAll } from "vitest";
import { createServer, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { deliverWebhook } from "../../src/worker/webhooks.js";
import { HostGuard } from "../../src/queue/hostPolicy.js";
import { JobStore, newJobView, type JobView } from "../../src/store/jobStore.js";
import { randomUUID } from "node:crypto";
import { createServer as createHttpServer } from "node:http";
import { Worker } from "bullmq";
import { pino } from "pino";
import { createRedis, redisOptions } from "../../src/queue/connection.js";
import { QUEUES } from "../../src/queue/contract.js";
import { createLocalizeQueue, createWebhookQueue, enqueueLocalize } from "../../src/queue/producer.js";
import { startWorker, type RunningWorker } from "../../src/worker/build.js";
import { testConfig } from "../helpers/config.js";
import { waitFor } from "../helpers/processes.js";
import { dropPrefix } from "../helpers/redis.js";
import { finishedJobExample } from "../../src/api/schemas.js";

/** A receiver that answers a byte every 300 ms: never idle long enough for the socket's timeout. */
const sockets: Socket[] = [];
const trickler = createServer((socket) => {
  sockets.push(socket);
  const reply = "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
  let i = 0;
  const timer = setInterval(() => (i < reply.length ? socket.write(reply[i++]!) : clearInterval(timer)), 300);
  socket.on("close", () => clearInterval(timer));
  socket.on("error", () => undefined);
});
afterAll(() => {
  for (const s of sockets) s.destroy();
  trickler.close();
});

describe("webhook delivery", () => {
  it("gives up on a receiver that keeps the connection busy but never answers, within the delivery's time", async () => {
    await new Promise<void>((r) => trickler.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(trickler.address() as AddressInfo).port}/hook`;
    const t = Date.now();
    const delivered = deliverWebhook(url, { id: "3f6c2a9e-8d41-4b7a-9c25-61e0d7b4f8a2" } as JobView, "secret", new HostGuard({ allowedHosts: [], allowPrivate: true }), 1_000);
    await expect(delivered).rejects.toThrow("callback did not answer within 1000 ms");
    expect(Date.now() - t).toBeLessThan(3_000);
  });
});

/** A webhook receiver on loopback that answers 200 and keeps each body it is sent. */
async function collectingReceiver(): Promise<{ url: string; received: string[]; close(): void }> {
  const received: string[] = [];
  const server = createHttpServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      received.push(body);
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, received, close: () => server.close() };
}

/** A job store of its own on the config's Redis, with the webhook queue the API and worker use. */
function storeOf(config: { REDIS_URL: string; QUEUE_PREFIX: string }, attempts: number) {
  const redis = createRedis(config.REDIS_URL, "producer");
  const queue = createLocalizeQueue(redis, { prefix: config.QUEUE_PREFIX, retentionS: 600 });
  const webhooks = createWebhookQueue(redis, { prefix: config.QUEUE_PREFIX, retentionS: 600, attempts });
  return {
    queue,
    store: new JobStore(queue, redis, 600, webhooks),
    close: async () => {
      await queue.close();
      await webhooks.close();
      redis.disconnect();
    },
  };
}

describe("a webhook queued before its job's end is recorded", () => {
  const config = testConfig({ WEBHOOK_SECRET: "webhook-secret-0123456789abcdef", WEBHOOK_MAX_ATTEMPTS: "1", ALLOW_PRIVATE_HOSTS: "true" });
  let worker: RunningWorker | undefined;
  afterAll(async () => {
    await worker?.close();
    await dropPrefix(config.QUEUE_PREFIX);
  });

  it("waits for the record, spending no attempt, and is delivered once the job ends", async () => {
    const receiver = await collectingReceiver();
    const { url, received } = receiver;
    const own = storeOf(config, 1);
    const { queue, store } = own;
    // A job running on a worker that announced its end and died before recording it (the job's retry will).
    const taker = new Worker(QUEUES.localize, null, { connection: redisOptions(config.REDIS_URL), prefix: config.QUEUE_PREFIX, autorun: false });
    try {
      const jobId = randomUUID();
      await enqueueLocalize(queue, { jobId, repo: { url: "file:///x", commit: "a".repeat(40) }, issue: "x", options: { policy: "baseline" }, owner: "t", submittedAt: new Date().toISOString(), callbackUrl: url });
      const job = await taker.getNextJob("dying-worker");
      expect(job?.id).toBe(jobId);
      await store.notifyEnded(jobId, url);
      worker = await startWorker(config, { logger: pino({ level: "silent" }) });
      // With one attempt, a delivery that found the job running used to fail for good here.
      await new Promise((r) => setTimeout(r, 3_000));
      expect(received).toEqual([]);
      await job!.moveToCompleted(finishedJobExample.result, "dying-worker", false);
      await waitFor(async () => (received.length > 0 ? true : undefined), 15_000, "the webhook");
      expect(JSON.parse(received[0]!)).toMatchObject({ id: jobId, status: "succeeded" });
    } finally {
      await taker.close();
      await own.close();
      receiver.close();
    }
  }, 40_000);
});

describe("a webhook given up", () => {
  const config = testConfig({ WEBHOOK_SECRET: "webhook-secret-0123456789abcdef", WEBHOOK_MAX_ATTEMPTS: "1", ALLOW_PRIVATE_HOSTS: "true" });
  afterAll(async () => {
    await dropPrefix(config.QUEUE_PREFIX);
  });

  it("is logged once its last attempt failed, naming the job and the receiver's host, and retries wait from 15 s", async () => {
    const failing = createHttpServer((_req, res) => res.writeHead(500).end());
    await new Promise<void>((r) => failing.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(failing.address() as AddressInfo).port}/hook`;
    const own = storeOf(config, 1);
    const lines: Array<Record<string, unknown>> = [];
    const logger = pino({ level: "info" }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    let worker: RunningWorker | undefined;
    try {
      // A receiver back from a deploy's minute still gets it: the retries span minutes, not seconds.
      const sixAttempts = createWebhookQueue(own.store.redis, { prefix: config.QUEUE_PREFIX, retentionS: 600, attempts: 6 });
      expect(sixAttempts.defaultJobOptions.backoff).toEqual({ type: "exponential", delay: 15_000 });
      await sixAttempts.close();
      const jobId = randomUUID();
      const payload = { jobId, repo: { url: "file:///x", commit: "a".repeat(40) }, issue: "x", options: { policy: "baseline" as const }, owner: "t", submittedAt: new Date().toISOString(), callbackUrl: url };
      await own.store.putStatic(newJobView(payload, { status: "succeeded", cached: true }));
      await own.store.notifyEnded(jobId, url);
      worker = await startWorker(config, { logger });
      const given = await waitFor(async () => lines.find((l) => l.msg === "webhook given up"), 15_000, "the webhook to be given up");
      expect(given).toMatchObject({ level: 40, jobId, receiver: "127.0.0.1", attempts: 1, err: "callback answered 500" });
      // A job gone before its webhook could be delivered (past JOB_TTL_S): given up, and said, not counted delivered.
      const gone = randomUUID();
      await own.store.notifyEnded(gone, url);
      const goneLine = await waitFor(async () => lines.find((l) => l.msg === "webhook given up" && l.jobId === gone), 15_000, "the gone job's webhook to be given up");
      expect(goneLine).toMatchObject({ level: 40, err: "the job is gone (kept JOB_TTL_S), so there is nothing to deliver" });
    } finally {
      await worker?.close();
      await own.close();
      failing.close();
    }
  });
});

/** Receivers that accept and never answer (each delivery waits out its 10 s). */
async function silentReceivers(n: number): Promise<{ urls: string[]; held: Socket[]; close(): void }> {
  const held: Socket[] = [];
  const servers = await Promise.all(
    Array.from({ length: n }, async () => {
      const server = createServer((socket) => {
        held.push(socket);
        socket.on("error", () => undefined);
      });
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
      return server;
    }),
  );
  return {
    urls: servers.map((server) => `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`),
    held,
    close: () => {
      for (const socket of held) socket.destroy();
      for (const server of servers) server.close();
    },
  };
}

describe("webhooks to receivers that never answer", () => {
  const config = testConfig({ WEBHOOK_SECRET: "webhook-secret-0123456789abcdef", ALLOW_PRIVATE_HOSTS: "true" });
  afterAll(async () => {
    await dropPrefix(config.QUEUE_PREFIX);
  });

  /**
   * Ended jobs (answered from the cache, say) whose webhooks go to silent receivers, then one
   * to a healthy receiver from another key, and a worker of its own: how soon the healthy one is
   * delivered, and how many of the silent receivers' deliveries were held meanwhile.
   */
  async function healthyAfterSilent(receivers: number, perReceiver: number, silentOwner: string, healthyOwner = "someone-else") {
    const silent = await silentReceivers(receivers);
    const healthy = await collectingReceiver();
    const own = storeOf(config, 1);
    let worker: RunningWorker | undefined;
    try {
      const ended = async (url: string, owner: string) => {
        const jobId = randomUUID();
        const payload = { jobId, repo: { url: "file:///x", commit: "a".repeat(40) }, issue: "x", options: { policy: "baseline" as const }, owner, submittedAt: new Date().toISOString(), callbackUrl: url };
        await own.store.putStatic(newJobView(payload, { status: "succeeded", cached: true }));
        await own.store.notifyEnded(jobId, url);
        return jobId;
      };
      for (const url of silent.urls) for (let i = 0; i < perReceiver; i++) await ended(url, silentOwner);
      const healthyJob = await ended(healthy.url, healthyOwner);
      worker = await startWorker(config, { logger: pino({ level: "silent" }) });
      const t = Date.now();
      await waitFor(async () => (healthy.received.length > 0 ? true : undefined), 20_000, "the healthy receiver's webhook");
      expect(JSON.parse(healthy.received[0]!)).toMatchObject({ id: healthyJob });
      return { ms: Date.now() - t, held: silent.held.length };
    } finally {
      // The silent receivers' held deliveries fail at once, so the worker stops without waiting them out.
      silent.close();
      await worker?.close();
      healthy.close();
      await own.close();
    }
  }

  it("hold a few of the worker's deliveries, not all of them: another receiver's webhook is delivered meanwhile", async () => {
    const { ms, held } = await healthyAfterSilent(1, 40, "t");
    // Well before the silent receiver's deliveries time out (10 s each), which held all 32 slots.
    expect(ms).toBeLessThan(8_000);
    expect(held).toBeLessThanOrEqual(4);
  }, 60_000);

  it("one key's many silent receivers hold 8 of the worker's deliveries, and another key's webhook goes out meanwhile", async () => {
    // 10 receivers × 4 deliveries each: past the worker's 32 slots, were only receivers capped.
    const { ms, held } = await healthyAfterSilent(10, 4, "mallory");
    expect(ms).toBeLessThan(8_000);
    expect(held).toBeLessThanOrEqual(8);
  }, 60_000);

  it("with auth off (every job anonymous) caps receivers alone: two silent receivers do not hold every delivery", async () => {
    const { ms, held } = await healthyAfterSilent(2, 4, "anonymous", "anonymous");
    expect(ms).toBeLessThan(8_000);
    expect(held).toBeLessThanOrEqual(8);
  }, 60_000);
});
