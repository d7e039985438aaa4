import { afterAll, describe, expect, it } from "vitest";
import { pino } from "pino";
import { buildApiServer } from "../../src/api/build.js";
import { createRedis } from "../../src/queue/connection.js";
import { createLocalizeQueue } from "../../src/queue/producer.js";
import { keys } from "../../src/store/keys.js";
import { startWorker } from "../../src/worker/build.js";
import { testConfig } from "../helpers/config.js";
import { makeGitFixture } from "../helpers/gitFixture.js";
import { waitFor } from "../helpers/processes.js";
import { dropPrefix } from "../helpers/redis.js";

/**
 * Three API keys' jobs in one queue, taken by one worker one at a time: a key's backlog does not
 * hold the other keys' jobs behind it (BullMQ alone takes them first in, first out).
 */
const fx = makeGitFixture();
const config = testConfig({ ALLOW_FILE_URLS: "true", AUTH_MODE: "api_key", API_KEYS: "alice:key-alice-1234,bob:key-bob-12345,carol:key-carol-1234", WORKER_CONCURRENCY: "1" });
afterAll(async () => {
  fx.cleanup();
  await dropPrefix(config.QUEUE_PREFIX);
});

describe("API keys' turns in the queue", () => {
  it("takes each key's first waiting job first, then the keys' backlogs a job of each in turn, and counts nothing once all have started", async () => {
    const api = await buildApiServer(config, { logger: false });
    const redis = createRedis(config.REDIS_URL, "producer");
    const queue = createLocalizeQueue(redis, { prefix: config.QUEUE_PREFIX, retentionS: 600 });
    let worker: Awaited<ReturnType<typeof startWorker>> | undefined;
    try {
      const submit = async (who: string, n: number) => {
        const res = await api.fastify.inject({
          method: "POST",
          url: "/v1/localize",
          headers: { authorization: `Bearer ${{ alice: "key-alice-1234", bob: "key-bob-12345", carol: "key-carol-1234" }[who]}` },
          payload: { repo: { url: fx.url, commit: fx.commits[0]! }, issue: `\`helper\` should return 43 (${who} ${n})`, options: { policy: "baseline", cache: false } },
        });
        expect(res.statusCode).toBe(202);
        return res.json().id as string;
      };
      // Alice's batch first, then Bob's one job, then Carol's two: no worker yet.
      const ids: string[] = [];
      for (let i = 0; i < 4; i++) ids.push(await submit("alice", i));
      ids.push(await submit("bob", 0));
      for (let i = 0; i < 2; i++) ids.push(await submit("carol", i));

      worker = await startWorker(config, { logger: pino({ level: "silent" }) });
      const jobs = await waitFor(async () => {
        const all = await Promise.all(ids.map((id) => queue.getJob(id)));
        return all.every((j) => j?.finishedOn) ? all : undefined;
      }, 120_000, "every job answered");
      const order = jobs.sort((a, b) => a!.processedOn! - b!.processedOn!).map((j) => `${j!.data.owner} ${j!.data.issue.slice(-2, -1)}`);
      expect(order).toEqual(["alice 0", "bob 0", "carol 0", "alice 1", "carol 1", "alice 2", "alice 3"]);
      // All started: no key has a job waiting, and Alice's next job is queued as a first one.
      for (const owner of ["alice", "bob", "carol"]) expect(Number(await redis.get(keys(config.QUEUE_PREFIX).ownerWaiting(owner)))).toBe(0);
      await worker.close();
      worker = undefined;
      const next = await queue.getJob(await submit("alice", 9));
      expect(next?.opts.priority ?? 0).toBe(0);
      // Cancelled while queued, it waits no more.
      await api.fastify.inject({ method: "DELETE", url: `/v1/jobs/${next!.id}`, headers: { authorization: "Bearer key-alice-1234" } });
      expect(Number(await redis.get(keys(config.QUEUE_PREFIX).ownerWaiting("alice")))).toBe(0);

      // A key's own jobs keep their order while new ones come: jobs taken from the middle of its
      // backlog (cancelled) does not let the next new job pass those before it.
      const backlog: string[] = [];
      for (let i = 0; i < 4; i++) backlog.push(await submit("alice", i + 10));
      for (const id of backlog.slice(1, 3)) await api.fastify.inject({ method: "DELETE", url: `/v1/jobs/${id}`, headers: { authorization: "Bearer key-alice-1234" } });
      const late = await submit("alice", 20);
      const priorities = await Promise.all([...backlog, late].map(async (id) => (await queue.getJob(id))?.opts.priority ?? 0));
      expect(priorities[4]).toBeGreaterThanOrEqual(priorities[3]!);
    } finally {
      await worker?.close();
      await api.close();
      await queue.close();
      redis.disconnect();
    }
  }, 180_000);
});
