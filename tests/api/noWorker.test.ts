import { describe, it, expect, beforeAll, afterAll } from "vitest";
import type { AddressInfo } from "node:net";
import { buildApiServer, type ApiServer } from "../../src/api/build.js";
import { ServiceClient } from "../../src/client/service.js";
import { Queue, Worker } from "bullmq";
import { createRedis, redisOptions } from "../../src/queue/connection.js";
import { QUEUES } from "../../src/queue/contract.js";
import { JobEvents, type JobEvent } from "../../src/store/events.js";
import { keys } from "../../src/store/keys.js";
import { Heartbeat } from "../../src/worker/heartbeat.js";
import { PUBLIC_NAMES, scriptedResolver } from "../helpers/resolver.js";
import { testConfig } from "../helpers/config.js";
import { dropPrefix, ownRedis } from "../helpers/redis.js";
import { waitFor } from "../helpers/processes.js";
import { toolResponseSchema } from "../../src/mcp/toolRoute.js";

/**
 * A call held for an agent whose job no worker takes: an API on real Redis with no worker
 * behind it (its own queue prefix). The agent is told why and the job is cancelled with that
 * reason, instead of the call waiting for a worker that may never start; with a worker's
 * heartbeat in Redis, the job just waits its turn.
 */
const config = testConfig({ NO_WORKER_WAIT_S: "1" });
let api: ApiServer;
let base: string;

beforeAll(async () => {
  api = await buildApiServer(config, { logger: false, resolver: scriptedResolver(PUBLIC_NAMES).resolve });
  await api.fastify.listen({ port: 0, host: "127.0.0.1" });
  base = `http://127.0.0.1:${(api.fastify.server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await api.close();
  await dropPrefix(config.QUEUE_PREFIX);
});

const repo = { url: "https://github.com/psf/requests.git", commit: "091991be0da19de9108dbe5e3752917fea3d7fdc" };

describe("no worker to take the job", () => {
  it("ends a tool call with no_worker, saying what to start, and records the job as cancelled for that reason", async () => {
    const res = await fetch(`${base}/v1/tools/localize`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ issue: "Session.request breaks on binary method names", repo_url: repo.url, commit: repo.commit }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { text: string; is_error: boolean; result: { job_id: string; status: string; error?: { code: string } } };
    expect(body).toMatchObject({ is_error: true, result: { status: "cancelled", error: { code: "no_worker" } } });
    expect(body.text).toMatch(/^Localization cancelled \(no_worker: no worker is running: the job waited \d+ s and none took it; start one \(`npm run worker`/);
    const job = (await (await fetch(`${base}/v1/jobs/${body.result.job_id}`)).json()) as { status: string; error: { code: string } };
    expect(job).toMatchObject({ status: "cancelled", error: { code: "no_worker" } });
  });

  it("ends the REST client's follow (the CLI's and codescout-mcp's) the same way, with the event on the stream", async () => {
    const client = new ServiceClient(base);
    const seen: JobEvent[] = [];
    const final = await client.follow(await client.submit({ repo, issue: "Session.request breaks on binary method names (the CLI)" }), { onEvent: (e) => seen.push(e) });
    expect(final).toMatchObject({ status: "cancelled", error: { code: "no_worker", message: expect.stringContaining("start one") } });
    expect(seen.map((e) => e.type)).toEqual(expect.arrayContaining(["queued", "no_worker"]));
  });

  it("tells the followers of a running job whose worker died, and leaves the job to go on when a worker starts: held calls end saying so", async () => {
    // A worker that took the job and died: BullMQ holds it active, and no heartbeat says a worker is alive.
    const taker = new Worker(QUEUES.localize, null, { connection: redisOptions(config.REDIS_URL), prefix: config.QUEUE_PREFIX, autorun: false });
    try {
      // An agent's held call, whose job the dead worker took.
      const held = fetch(`${base}/v1/tools/localize`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ issue: "Session.request breaks on binary method names (its worker died)", repo_url: repo.url, commit: repo.commit }),
      });
      const taken = await waitFor(async () => (await taker.getNextJob("dead-worker-token")) ?? undefined, 10_000, "the job to take");
      const res = await held;
      const body = (await res.json()) as { text: string; result: { job_id: string; status: string; error?: { code: string } } };
      expect(body.result).toMatchObject({ job_id: taken.id, status: "running", error: { code: "no_worker" } });
      expect(body.text).toContain("the worker running the job stopped");
      // The REST client's follow (the CLI's, codescout-mcp's) the same way.
      const client = new ServiceClient(base);
      const final = await client.follow(await client.job(taken.id!));
      expect(final).toMatchObject({ status: "running", error: { code: "no_worker", message: expect.stringContaining("the worker running the job stopped") } });
      // Not cancelled: a worker that starts takes it up.
      expect((await client.job(taken.id!)).status).toBe("running");
    } finally {
      await taker.close();
    }
  }, 40_000);

  it("answers a held tool call whose job it lost (its Redis gone) with the documented body, `result` included", async () => {
    const own = await ownRedis();
    own.start();
    const ownConfig = testConfig({ REDIS_URL: own.url, NO_WORKER_WAIT_S: "30" });
    const ownApi = await buildApiServer(ownConfig, { logger: false, resolver: scriptedResolver(PUBLIC_NAMES).resolve });
    try {
      await ownApi.fastify.listen({ port: 0, host: "127.0.0.1" });
      const at = `http://127.0.0.1:${(ownApi.fastify.server.address() as AddressInfo).port}`;
      const res = await fetch(`${at}/v1/tools/localize`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ issue: "Session.request breaks on binary method names (its Redis goes)", repo_url: repo.url, commit: repo.commit }),
      });
      // The status goes out once the call has been quiet a few seconds; then the Redis goes.
      expect(res.status).toBe(200);
      own.stop();
      const body: unknown = await res.json();
      const parsed = toolResponseSchema.parse(body);
      expect(parsed).toMatchObject({ is_error: true, result: { answered: false, locations: [], error: { code: "internal" } } });
      expect(parsed.result.error?.message).toMatch(/the service lost the job .*GET \/v1\/jobs\//);
    } finally {
      await ownApi.close().catch(() => undefined);
      try {
        own.stop();
      } catch {
        // stopped above
      }
    }
  }, 60_000);

  it("leaves a job waiting its turn while a worker is alive, and tells the follower once the last one has gone", async () => {
    const redis = createRedis(config.REDIS_URL, "producer");
    // A worker's own heartbeat, as a worker writes it; nothing takes the job.
    const beat = new Heartbeat(redis, keys(config.QUEUE_PREFIX), "test-worker", async () => ({ docker: true, model: "none" }));
    await beat.start();
    try {
      const client = new ServiceClient(base);
      const seen: Array<{ type: string; at: number }> = [];
      // Past NO_WORKER_WAIT_S and two of the follower's looks (every 5 s while nothing happens), then the worker goes.
      let goneAt = Infinity;
      setTimeout(() => void beat.stop().then(() => (goneAt = Date.now())), 11_000);
      const final = await client.follow(await client.submit({ repo, issue: "Session.request breaks on binary method names (a worker is up)" }), { onEvent: (e) => seen.push({ type: e.type, at: Date.now() }) });
      expect(final).toMatchObject({ status: "cancelled", error: { code: "no_worker" } });
      expect(seen.find((e) => e.type === "no_worker")!.at).toBeGreaterThan(goneAt);
    } finally {
      await beat.stop();
      redis.disconnect();
    }
  }, 40_000);
});

/** An API of a describe's own, with its own settings: `base` once it listens. */
function ownApi(env: Record<string, string>) {
  const own = { config: testConfig(env), base: "", api: undefined as ApiServer | undefined };
  beforeAll(async () => {
    own.api = await buildApiServer(own.config, { logger: false, resolver: scriptedResolver(PUBLIC_NAMES).resolve });
    await own.api.fastify.listen({ port: 0, host: "127.0.0.1" });
    own.base = `http://127.0.0.1:${(own.api.fastify.server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await own.api?.close();
    await dropPrefix(own.config.QUEUE_PREFIX);
  });
  return own;
}

describe("a queued job being cancelled", () => {
  const own = ownApi({ POLL_RATE_LIMIT_PER_MIN: "0", NO_WORKER_WAIT_S: "3600", WEBHOOK_SECRET: "webhook-secret-0123456789abcdef" });
  const polled = own.config;

  it("is found by every read while its cancel is under way: queued, then cancelled, never missing", async () => {
    const statuses = new Map<string, number>();
    for (let round = 0; round < 25; round++) {
      const post = await fetch(`${own.base}/v1/localize`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ repo, issue: `Session.request breaks (round ${round})`, options: { cache: false } }) });
      const { id } = (await post.json()) as { id: string };
      let cancelling = true;
      const readers = Array.from({ length: 4 }, async () => {
        while (cancelling) {
          const res = await fetch(`${own.base}/v1/jobs/${id}`);
          const key = res.ok ? ((await res.json()) as { status: string }).status : String(res.status);
          statuses.set(key, (statuses.get(key) ?? 0) + 1);
        }
      });
      await new Promise((r) => setTimeout(r, 5));
      expect((await fetch(`${own.base}/v1/jobs/${id}`, { method: "DELETE" })).status).toBe(202);
      await new Promise((r) => setTimeout(r, 5));
      cancelling = false;
      await Promise.all(readers);
    }
    expect([...statuses.keys()].sort()).toEqual(["cancelled", "queued"]);
  }, 60_000);

  it("queues the webhook of a job with a callback_url cancelled while queued (no worker ends it, so none would)", async () => {
    const post = await fetch(`${own.base}/v1/localize`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ repo, issue: "Session.request breaks (a hook)", callback_url: "https://hooks.example.com/codescout", options: { cache: false } }) });
    const { id } = (await post.json()) as { id: string };
    expect((await fetch(`${own.base}/v1/jobs/${id}`, { method: "DELETE" })).status).toBe(202);
    const webhooks = new Queue(QUEUES.webhook, { connection: redisOptions(polled.REDIS_URL), prefix: polled.QUEUE_PREFIX });
    try {
      expect((await webhooks.getJobs(["waiting", "delayed"])).map((j) => j.data)).toEqual([{ jobId: id, url: "https://hooks.example.com/codescout" }]);
    } finally {
      await webhooks.close();
    }
  });
});

describe("jobs followed at once", () => {
  const own = ownApi({ MAX_FOLLOWERS_PER_KEY: "2", NO_WORKER_WAIT_S: "3600" });

  it("are capped per key: past the cap 503 with Retry-After, and a stream that ends gives its place back", async () => {
    const post = await fetch(`${own.base}/v1/localize`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ repo, issue: "Session.request breaks (followed)", options: { cache: false } }) });
    const { id } = (await post.json()) as { id: string };
    const streams = [new AbortController(), new AbortController()];
    const open = await Promise.all(streams.map((s) => fetch(`${own.base}/v1/jobs/${id}/events`, { signal: s.signal })));
    expect(open.map((r) => r.status)).toEqual([200, 200]);
    const third = await fetch(`${own.base}/v1/jobs/${id}/events`);
    expect(third.status).toBe(503);
    expect(third.headers.get("retry-after")).toBe("5");
    expect(((await third.json()) as { error: { code: string } }).error.code).toBe("too_many_streams");
    streams[0]!.abort();
    await new Promise((r) => setTimeout(r, 300));
    const again = new AbortController();
    expect((await fetch(`${own.base}/v1/jobs/${id}/events`, { signal: again.signal })).status).toBe(200);
    again.abort();
    streams[1]!.abort();
  });
});

describe("jobs followed at once, many", () => {
  it("share one blocking Redis connection, and each gets its own job's events as they come", async () => {
    // A Redis of the test's own: its clients are the API's alone.
    const own = await ownRedis();
    own.start();
    const config = testConfig({ REDIS_URL: own.url, MAX_FOLLOWERS_PER_KEY: "500", NO_WORKER_WAIT_S: "3600" });
    const api = await buildApiServer(config, { logger: false, resolver: scriptedResolver(PUBLIC_NAMES).resolve });
    const redis = createRedis(own.url, "producer");
    const streams: AbortController[] = [];
    try {
      await api.fastify.listen({ port: 0, host: "127.0.0.1" });
      const base = `http://127.0.0.1:${(api.fastify.server.address() as AddressInfo).port}`;
      const ids: string[] = [];
      for (let i = 0; i < 4; i++) {
        const post = await fetch(`${base}/v1/localize`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ repo, issue: `Session.request breaks (followed ${i})`, options: { cache: false } }) });
        ids.push(((await post.json()) as { id: string }).id);
      }
      const clientsBefore = ((await redis.client("LIST")) as string).trim().split("\n").length;
      // 200 streams, 50 on each job.
      const bodies = await Promise.all(
        Array.from({ length: 200 }, async (_, i) => {
          const ctl = new AbortController();
          streams.push(ctl);
          const res = await fetch(`${base}/v1/jobs/${ids[i % 4]}/events`, { signal: ctl.signal });
          expect(res.status).toBe(200);
          return res.body!.getReader();
        }),
      );
      await new Promise((r) => setTimeout(r, 500));
      const clientsDuring = ((await redis.client("LIST")) as string).trim().split("\n").length;
      // One blocking reader for all of them, not one each.
      expect(clientsDuring - clientsBefore).toBeLessThanOrEqual(1);
      // An event on one job reaches its 50 followers, and none of the others'.
      const events = new JobEvents(redis, config.QUEUE_PREFIX, 600);
      await events.publish(ids[1]!, "started", { policy: "baseline" });
      const seen = await Promise.all(
        bodies.map(async (reader, i) => {
          let text = "";
          const deadline = Date.now() + (i % 4 === 1 ? 5_000 : 1_000);
          while (Date.now() < deadline && !text.includes("event: started")) {
            const chunk = await Promise.race([reader.read(), new Promise<null>((r) => setTimeout(() => r(null), deadline - Date.now()))]);
            if (!chunk || chunk.done) break;
            text += new TextDecoder().decode(chunk.value);
          }
          return text.includes("event: started");
        }),
      );
      expect(seen.filter((s, i) => s && i % 4 === 1)).toHaveLength(50);
      expect(seen.filter((s, i) => s && i % 4 !== 1)).toHaveLength(0);
    } finally {
      for (const s of streams) s.abort();
      redis.disconnect();
      await api.close();
      own.stop();
    }
  }, 60_000);
});
