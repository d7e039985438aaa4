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
      await job!.moveToCompleted({ answered: true }, "dying-worker", false);
      await waitFor(async () => (received.length > 0 ? true : undefined), 15_000, "the webhook");
      expect(JSON.parse(received[0]!)).toMatchObject({ id: jobId, status: "succeeded" });
    } finally {
      await taker.close();
      await own.close();
      receiver.close();
    }
  }, 40_000);
});

describe("webhooks to a receiver that never answers", () => {
  const config = testConfig({ WEBHOOK_SECRET: "webhook-secret-0123456789abcdef", ALLOW_PRIVATE_HOSTS: "true" });
  let worker: RunningWorker | undefined;
  afterAll(async () => {
    await worker?.close();
    await dropPrefix(config.QUEUE_PREFIX);
  });

  it("hold a few of the worker's deliveries, not all of them: another receiver's webhook is delivered meanwhile", async () => {
    // Accepts and never answers (each delivery waits out its 10 s).
    const held: Socket[] = [];
    const silent = createServer((socket) => {
      held.push(socket);
      socket.on("error", () => undefined);
    });
    const healthy = await collectingReceiver();
    const received = healthy.received;
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    const silentUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/hook`;
    const healthyUrl = healthy.url;
    const own = storeOf(config, 1);
    const { store } = own;
    try {
      // Ended jobs (answered from the cache, say): 40 for the silent receiver, then one for the healthy one.
      const ended = async (url: string) => {
        const jobId = randomUUID();
        const payload = { jobId, repo: { url: "file:///x", commit: "a".repeat(40) }, issue: "x", options: { policy: "baseline" as const }, owner: "t", submittedAt: new Date().toISOString(), callbackUrl: url };
        await store.putStatic(newJobView(payload, { status: "succeeded", cached: true }));
        await store.notifyEnded(jobId, url);
        return jobId;
      };
      for (let i = 0; i < 40; i++) await ended(silentUrl);
      const healthyJob = await ended(healthyUrl);
      worker = await startWorker(config, { logger: pino({ level: "silent" }) });
      const t = Date.now();
      await waitFor(async () => (received.length > 0 ? true : undefined), 20_000, "the healthy receiver's webhook");
      // Well before the silent receiver's deliveries time out (10 s each), which held all 32 slots.
      expect(Date.now() - t).toBeLessThan(8_000);
      expect(JSON.parse(received[0]!)).toMatchObject({ id: healthyJob });
      expect(held.length).toBeLessThanOrEqual(4);
    } finally {
      for (const s of held) s.destroy();
      silent.close();
      healthy.close();
      await own.close();
    }
  }, 60_000);
});
