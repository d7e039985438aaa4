import { afterAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { Worker } from "bullmq";
import { pino } from "pino";
import { buildApiServer, type ApiServer } from "../../src/api/build.js";
import { createRedis, redisOptions } from "../../src/queue/connection.js";
import { QUEUES } from "../../src/queue/contract.js";
import { createLocalizeQueue, enqueueLocalize, type LocalizeQueue } from "../../src/queue/producer.js";
import { keys } from "../../src/store/keys.js";
import { startWorker } from "../../src/worker/build.js";
import type { Config } from "../../src/config/env.js";
import { testConfig } from "../helpers/config.js";
import { makeGitFixture } from "../helpers/gitFixture.js";
import { waitFor } from "../helpers/processes.js";
import { dropPrefix } from "../helpers/redis.js";

/**
 * Three API keys' jobs in one queue, taken one at a time: a key's backlog does not hold the
 * other keys' jobs behind it (BullMQ alone takes them first in, first out).
 */
const fx = makeGitFixture();
const KEYS = { alice: "key-alice-1234", bob: "key-bob-12345", carol: "key-carol-1234" } as const;
const prefixes: string[] = [];
afterAll(async () => {
  fx.cleanup();
  await Promise.all(prefixes.map((p) => dropPrefix(p)));
});

/** An API with three keys on a queue of its own, and how to send a job as one of them. */
async function service(): Promise<{ config: Config; api: ApiServer; queue: LocalizeQueue; submit(who: keyof typeof KEYS, tag: string): Promise<string>; priority(id: string): Promise<number>; close(): Promise<void> }> {
  const config = testConfig({ ALLOW_FILE_URLS: "true", AUTH_MODE: "api_key", API_KEYS: Object.entries(KEYS).map(([n, k]) => `${n}:${k}`).join(","), WORKER_CONCURRENCY: "1" });
  prefixes.push(config.QUEUE_PREFIX);
  const api = await buildApiServer(config, { logger: false });
  const redis = createRedis(config.REDIS_URL, "producer");
  const queue = createLocalizeQueue(redis, { prefix: config.QUEUE_PREFIX, retentionS: 600 });
  return {
    config,
    api,
    queue,
    async submit(who, tag) {
      const res = await api.fastify.inject({
        method: "POST",
        url: "/v1/localize",
        headers: { authorization: `Bearer ${KEYS[who]}` },
        payload: { repo: { url: fx.url, commit: fx.commits[0]! }, issue: `\`helper\` should return 43 (${who} ${tag})`, options: { policy: "baseline", cache: false } },
      });
      expect(res.statusCode).toBe(202);
      return res.json().id as string;
    },
    priority: async (id) => (await queue.getJob(id))?.opts.priority ?? 0,
    async close() {
      await api.close();
      await queue.close();
      redis.disconnect();
    },
  };
}

/** A worker that only starts jobs, as one of an earlier version would (it knows nothing of turns): `n` of them, in the queue's order. */
async function startJobs(config: Config, n: number): Promise<string[]> {
  const taker = new Worker(QUEUES.localize, null, { connection: redisOptions(config.REDIS_URL), prefix: config.QUEUE_PREFIX, autorun: false });
  try {
    const taken: string[] = [];
    for (let i = 0; i < n; i++) {
      const job = await taker.getNextJob(`taker-${i}`);
      if (job) taken.push(job.id!);
    }
    return taken;
  } finally {
    await taker.close();
  }
}

describe("API keys' turns in the queue", () => {
  it("takes each key's first waiting job first, then the keys' backlogs a job of each in turn; a key with nothing waiting is first again", async () => {
    const s = await service();
    let worker: Awaited<ReturnType<typeof startWorker>> | undefined;
    try {
      // Alice's batch first, then Bob's one job, then Carol's two: no worker yet.
      const ids: string[] = [];
      for (let i = 0; i < 4; i++) ids.push(await s.submit("alice", String(i)));
      ids.push(await s.submit("bob", "0"));
      for (let i = 0; i < 2; i++) ids.push(await s.submit("carol", String(i)));

      worker = await startWorker(s.config, { logger: pino({ level: "silent" }) });
      const jobs = await waitFor(async () => {
        const all = await Promise.all(ids.map((id) => s.queue.getJob(id)));
        return all.every((j) => j?.finishedOn) ? all : undefined;
      }, 120_000, "every job answered");
      const order = jobs.sort((a, b) => a!.processedOn! - b!.processedOn!).map((j) => `${j!.data.owner} ${j!.data.issue.slice(-2, -1)}`);
      expect(order).toEqual(["alice 0", "bob 0", "carol 0", "alice 1", "carol 1", "alice 2", "alice 3"]);
      await worker.close();
      worker = undefined;
      // All started: Alice's next job is queued as a first one; cancelled while queued, it waits no more.
      const next = await s.submit("alice", "9");
      expect(await s.priority(next)).toBe(0);
      await s.api.fastify.inject({ method: "DELETE", url: `/v1/jobs/${next}`, headers: { authorization: `Bearer ${KEYS.alice}` } });
      expect(await s.priority(await s.submit("alice", "10"))).toBe(0);
    } finally {
      await worker?.close();
      await s.close();
    }
  }, 180_000);

  it("reads which jobs wait from the jobs: those a worker of an earlier version started, or an API of one queued, count for nothing", async () => {
    const s = await service();
    try {
      // An earlier API's jobs (queued with no turn), then Alice's own through this API.
      for (let i = 0; i < 3; i++) {
        await enqueueLocalize(s.queue, { jobId: randomUUID(), repo: { url: fx.url, commit: fx.commits[0]! }, issue: `earlier ${i}`, options: { policy: "baseline" }, owner: "alice", submittedAt: new Date().toISOString() });
      }
      const mine = [await s.submit("alice", "a"), await s.submit("alice", "b")];
      expect(await Promise.all(mine.map(s.priority))).toEqual([0, 1]);
      // Kept as long as a job may wait (JOB_TTL_S), not a day: a backlog waiting longer kept no turn.
      const records = createRedis(s.config.REDIS_URL, "producer");
      expect(await records.ttl(keys(s.config.QUEUE_PREFIX).ownerTurn("alice"))).toBeGreaterThan(s.config.JOB_TTL_S - 60);
      records.disconnect();
      // An earlier worker starts everything; it tells no one.
      expect(await startJobs(s.config, 5)).toHaveLength(5);
      // Nothing of Alice's waits: her next call is a first one again, ahead of Bob's backlog.
      const bob = [await s.submit("bob", "0"), await s.submit("bob", "1"), await s.submit("bob", "2")];
      expect(await Promise.all(bob.map(s.priority))).toEqual([0, 1, 2]);
      expect(await s.priority(await s.submit("alice", "c"))).toBe(0);
    } finally {
      await s.close();
    }
  });

  it("never gives a priority BullMQ refuses: a backlog at the last round is served first in, first out, not refused", async () => {
    const s = await service();
    const redis = createRedis(s.config.REDIS_URL, "producer");
    try {
      await s.submit("alice", "first");
      // As a backlog never empty for two million rounds leaves it.
      await redis.set(keys(s.config.QUEUE_PREFIX).ownerTurn("alice"), String(2 ** 21 - 2), "EX", 600);
      const late = [await s.submit("alice", "x"), await s.submit("alice", "y"), await s.submit("alice", "z")];
      expect(await Promise.all(late.map(s.priority))).toEqual([2 ** 21 - 1, 2 ** 21 - 1, 2 ** 21 - 1]);
    } finally {
      redis.disconnect();
      await s.close();
    }
  });

  it("gives a key that comes to a long backlog the round now served, not the first, and keeps each key's own order", async () => {
    const s = await service();
    try {
      const alice: string[] = [];
      for (let i = 0; i < 20; i++) alice.push(await s.submit("alice", `q${i}`));
      expect(await Promise.all(alice.map(s.priority))).toEqual(Array.from({ length: 20 }, (_, i) => i));
      // Nineteen of them started: round 19 is served next.
      await startJobs(s.config, 19);
      const bob = [await s.submit("bob", "0"), await s.submit("bob", "1"), await s.submit("bob", "2")];
      const late = await s.submit("alice", "late");
      // Bob's first goes first; his next ones take turns with Alice's from round 19, not before it.
      expect(await Promise.all(bob.map(s.priority))).toEqual([0, 19, 20]);
      expect(await s.priority(late)).toBe(20);
    } finally {
      await s.close();
    }
  });
});
