import { describe, it, expect, afterEach } from "vitest";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { request as httpRequest } from "node:http";
import { connect, type AddressInfo } from "node:net";
import { Redis } from "ioredis";
import { buildApiServer, type ApiServer } from "../../src/api/build.js";
import { resultCacheKey } from "../../src/queue/cacheKey.js";
import { ANSWER_REVISION, ANSWERS_OF } from "../../src/version.js";
import type { LocalizeResult } from "../../src/queue/contract.js";
import { ResultCache } from "../../src/store/resultCache.js";
import { keys } from "../../src/store/keys.js";
import { JobEvents } from "../../src/store/events.js";
import { Queue, Worker } from "bullmq";
import { JobFailedError } from "../../src/queue/failure.js";
import { QUEUES } from "../../src/queue/contract.js";
import { redisOptions } from "../../src/queue/connection.js";
import { testConfig } from "../helpers/config.js";
import { dropPrefix, ownRedis } from "../helpers/redis.js";
import { freePort, serviceEnv, startProcess, waitFor } from "../helpers/processes.js";
import { PUBLIC_NAMES, scriptedResolver } from "../helpers/resolver.js";
import { commonErrors } from "../../src/api/schemas.js";

const servers: Array<{ api?: ApiServer; prefix: string }> = [];
afterEach(async () => {
  for (const { api, prefix } of servers.splice(0)) {
    await api?.close();
    await dropPrefix(prefix);
  }
});

async function start(env: Record<string, string> = {}) {
  const config = testConfig(env);
  // Its prefix is dropped even when the API refuses to start.
  const entry: { api?: ApiServer; prefix: string } = { prefix: config.QUEUE_PREFIX };
  servers.push(entry);
  const api = await buildApiServer(config, { logger: false, resolver: scriptedResolver(PUBLIC_NAMES).resolve });
  entry.api = api;
  return { api, config, inject: api.fastify.inject.bind(api.fastify) };
}

/** Jobs waiting in the queue: a key's first in BullMQ's list, the rest by their turn (store/turns.ts). */
const waitingIn = async (redis: Redis, prefix: string) => (await redis.llen(`${prefix}:localize:wait`)) + (await redis.zcard(`${prefix}:localize:prioritized`));

const SHA = "091991be0da19de9108dbe5e3752917fea3d7fdc";
const body = (issue = "Session.request breaks on binary method names") => ({
  repo: { url: "https://github.com/psf/requests.git", commit: SHA },
  issue,
  options: { policy: "baseline" as const },
});

describe("idempotency", () => {
  it("returns the same job for the same key, and refuses the key for a different request", async () => {
    const { inject } = await start();
    const headers = { "idempotency-key": "abc-123" };
    const first = await inject({ method: "POST", url: "/v1/localize", payload: body(), headers });
    const again = await inject({ method: "POST", url: "/v1/localize", payload: body(), headers });
    expect(first.statusCode).toBe(202);
    expect(again.json().id).toBe(first.json().id);
    const other = await inject({ method: "POST", url: "/v1/localize", payload: body("another issue"), headers });
    expect(other.statusCode).toBe(422);
    expect(other.json().error).toMatchObject({ code: "idempotency_key_reused", field: "idempotency-key" });
    const noKey = await inject({ method: "POST", url: "/v1/localize", payload: body() });
    expect(noKey.json().id).not.toBe(first.json().id);
  });

  it("takes a key whose job has gone (expired) for a new request, instead of answering 409 until the key expires too", async () => {
    const { inject, config } = await start();
    const headers = { "idempotency-key": "outlived" };
    const first = await inject({ method: "POST", url: "/v1/localize", payload: body("outlived"), headers });
    expect(first.statusCode).toBe(202);
    // The job's record goes, as JOB_TTL_S takes it, while the key (renewed by a retry) is still there.
    const queue = new Queue(QUEUES.localize, { connection: redisOptions(config.REDIS_URL), prefix: config.QUEUE_PREFIX });
    try {
      await queue.remove(first.json().id);
    } finally {
      await queue.close();
    }
    const again = await inject({ method: "POST", url: "/v1/localize", payload: body("outlived"), headers });
    expect(again.statusCode).toBe(202);
    expect(again.json().id).not.toBe(first.json().id);
  });

  it("claims a key only for the time accepting takes, then for the job's lifetime: a claim an API died holding frees the key within a minute", async () => {
    const { inject, config } = await start();
    // What the API sends Redis, as redis-cli's MONITOR prints it: `<time> [0 addr] "set" "key" ...`.
    const monitor = spawn("redis-cli", ["-u", config.REDIS_URL, "monitor"], { stdio: ["ignore", "pipe", "ignore"] });
    let printed = "";
    monitor.stdout.on("data", (d: Buffer) => (printed += d.toString()));
    await waitFor(async () => printed.includes("OK") || undefined, 5_000, "MONITOR to start");
    const seen = () => printed.split("\n").map((l) => [...l.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!.replace(/\\"/g, '"')));
    try {
      const first = await inject({ method: "POST", url: "/v1/localize", payload: body("claimed"), headers: { "idempotency-key": "crash-window" } });
      expect(first.statusCode).toBe(202);
      await new Promise((r) => setTimeout(r, 200));
      // The claim, as a request that dies before queueing leaves it: it names a job not made yet, for at most ACCEPT_CLAIM_S.
      const claim = seen().find((a) => a[0]?.toLowerCase() === "set" && a.includes("NX") && a[2]?.includes(first.json().id));
      expect(claim, printed.slice(-2000)).toBeDefined();
      expect(Number(claim![claim!.indexOf("EX") + 1])).toBeLessThanOrEqual(60);
      // Once the job is queued, the key is kept for the job's lifetime.
      const redis = new Redis(config.REDIS_URL);
      try {
        expect(await redis.ttl(claim![1]!)).toBeGreaterThan(config.JOB_TTL_S - 60);
      } finally {
        redis.disconnect();
      }
    } finally {
      monitor.kill();
    }
  });
});

describe("result cache", () => {
  it("keeps an Idempotency-Key on a cached answer whose record was written when what follows it fails: the retry gets that job, not a second", async () => {
    // A Redis user that may do all but append to a stream: the cached job's record is written,
    // its "finished" event is refused.
    const admin = new Redis(testConfig().REDIS_URL);
    const user = `cstest-${createHash("sha256").update(String(Math.random())).digest("hex").slice(0, 8)}`;
    try {
      await admin.call("ACL", "SETUSER", user, "on", ">pw-no-streams", "~*", "&*", "+@all", "-xadd");
      const url = new URL(testConfig().REDIS_URL);
      const { inject, config } = await start({ REDIS_URL: `redis://${user}:pw-no-streams@${url.host}` });
      const request = body("a cached answer whose event Redis refuses");
      const key = resultCacheKey({ url: request.repo.url, sha: SHA, issue: request.issue, options: request.options, model: config.MODEL_NAME, service: ANSWER_REVISION });
      await new ResultCache(admin, config.QUEUE_PREFIX, 60).put(key, {
        policy: "baseline", finish_reason: "finish_tool", commit_sha: SHA, repo_cache: "hot", answered: true,
        locations: [{ file: "requests/sessions.py", valid: true }], files: ["requests/sessions.py"], modules: [], entities: [], turns: 1,
        timings: { queue_wait_ms: 1, repo_ms: 1, sandbox_ms: 1, policy_ms: 1, model_ms: 0, tool_ms: 1, total_ms: 5 },
        usage: { model_calls: 0, prompt_tokens: 0, completion_tokens: 0 },
      });
      const headers = { "idempotency-key": "cached-then-refused" };
      const first = await inject({ method: "POST", url: "/v1/localize", payload: request, headers });
      expect(first.statusCode).toBeGreaterThanOrEqual(500);
      const retried = await inject({ method: "POST", url: "/v1/localize", payload: request, headers });
      expect(retried.statusCode).toBe(200);
      expect(retried.json()).toMatchObject({ status: "succeeded", cached: true });
      // One job: the record the first attempt wrote is the one the retry follows.
      expect(await admin.keys(`${config.QUEUE_PREFIX}:*static:*`)).toEqual([keys(config.QUEUE_PREFIX).staticView(retried.json().id)]);
    } finally {
      await admin.call("ACL", "DELUSER", user);
      admin.disconnect();
    }
  });

  it("answers a repeated request at once from the cache, unless the request opts out", async () => {
    const { inject, config } = await start();
    const redis = new Redis(config.REDIS_URL);
    try {
      const cached: LocalizeResult = {
        policy: "baseline",
        finish_reason: "finish_tool",
        commit_sha: SHA,
        repo_cache: "hot",
        answered: true,
        locations: [{ file: "requests/sessions.py", class_name: "Session", function_name: "request", valid: true }],
        files: ["requests/sessions.py"],
        modules: ["requests/sessions.py:Session"],
        entities: ["requests/sessions.py:Session.request"],
        turns: 3,
        // The run that made it (another key's, maybe): its time and model use are not this request's.
        timings: { queue_wait_ms: 12, repo_ms: 900, sandbox_ms: 100, policy_ms: 30_000, model_ms: 28_000, tool_ms: 1_000, total_ms: 31_012 },
        usage: { model_calls: 4, prompt_tokens: 12_000, completion_tokens: 800 },
      };
      const key = resultCacheKey({ url: "https://github.com/psf/requests.git", sha: SHA, issue: body().issue, options: body().options, model: config.MODEL_NAME, service: ANSWER_REVISION });
      await new ResultCache(redis, config.QUEUE_PREFIX, 60).put(key, cached);
      // Asking for the leads, the default, is the same request; asking for none is another answer.
      const keyWith = (alternatives: boolean) =>
        resultCacheKey({ url: "https://github.com/psf/requests.git", sha: SHA, issue: body().issue, options: { ...body().options, alternatives }, model: config.MODEL_NAME, service: ANSWER_REVISION });
      expect(keyWith(true)).toBe(key);
      expect(keyWith(false)).not.toBe(key);
      // A scope is another answer; the same directory written with a slash, or as a shell completes it, is the same one.
      const keyIn = (scope: string) => resultCacheKey({ url: "https://github.com/psf/requests.git", sha: SHA, issue: body().issue, options: { ...body().options, scope }, model: config.MODEL_NAME, service: ANSWER_REVISION });
      expect(keyIn("requests")).not.toBe(key);
      expect(keyIn("requests/")).toBe(keyIn("requests"));
      expect(keyIn("./requests/")).toBe(keyIn("requests"));
      expect(keyIn(".")).toBe(key);

      const hit = await inject({ method: "POST", url: "/v1/localize", payload: body() });
      expect(hit.statusCode).toBe(200);
      expect(hit.json()).toMatchObject({ status: "succeeded", cached: true, result: { entities: cached.entities } });
      expect(hit.json().result.usage).toEqual({ model_calls: 0, prompt_tokens: 0, completion_tokens: 0 });
      expect(hit.json().result.timings).toEqual({ queue_wait_ms: 0, repo_ms: 0, sandbox_ms: 0, policy_ms: 0, model_ms: 0, tool_ms: 0, total_ms: 0 });
      const read = await inject({ method: "GET", url: `/v1/jobs/${hit.json().id}` });
      expect(read.json().status).toBe("succeeded");
      // No job ran for it, so no job counter sees it: the replica counts it.
      expect((await inject({ method: "GET", url: "/metrics" })).body).toMatch(/^codescout_api_cache_hits_total 1$/m);

      // What an older service cached is not this one's answer: it may lack what this one adds.
      const older = { ...body(), issue: `${body().issue} (asked of an older service)` };
      const olderKey = resultCacheKey({ url: "https://github.com/psf/requests.git", sha: SHA, issue: older.issue, options: older.options, model: config.MODEL_NAME, service: "0.2.0" });
      await new ResultCache(redis, config.QUEUE_PREFIX, 60).put(olderKey, cached);
      const miss = await inject({ method: "POST", url: "/v1/localize", payload: older });
      expect(miss.statusCode).toBe(202);
      expect(miss.json().cached).toBe(false);
      // Nor is what another fit of the baseline cached under this version.
      const refit = { ...body(), issue: `${body().issue} (asked before a refit)` };
      const refitKey = resultCacheKey({ url: "https://github.com/psf/requests.git", sha: SHA, issue: refit.issue, options: refit.options, model: config.MODEL_NAME, service: `${ANSWERS_OF}+000000000000` });
      await new ResultCache(redis, config.QUEUE_PREFIX, 60).put(refitKey, cached);
      const refitMiss = await inject({ method: "POST", url: "/v1/localize", payload: refit });
      expect(refitMiss.statusCode).toBe(202);
      expect(refitMiss.json().cached).toBe(false);

      const optOut = await inject({ method: "POST", url: "/v1/localize", payload: { ...body(), options: { policy: "baseline", cache: false } } });
      expect(optOut.statusCode).toBe(202);
      expect(optOut.json().cached).toBe(false);
    } finally {
      redis.disconnect();
    }
  });
});

describe("batch", () => {
  it("queues many jobs, and names the first invalid one by index without queueing any", async () => {
    const { inject, config } = await start({ BATCH_MAX: "3" });
    const ok = await inject({ method: "POST", url: "/v1/localize/batch", payload: { jobs: [body("a"), body("b")] } });
    expect(ok.statusCode).toBe(202);
    expect(ok.json().jobs).toHaveLength(2);
    const bad = await inject({
      method: "POST",
      url: "/v1/localize/batch",
      payload: { jobs: [body("c"), { ...body("d"), repo: { url: "ftp://x/y", commit: SHA } }] },
    });
    expect(bad.statusCode).toBe(422);
    expect(bad.json().error.field).toBe("jobs.1.repo.url");
    const tooMany = await inject({ method: "POST", url: "/v1/localize/batch", payload: { jobs: [body(), body(), body(), body()] } });
    expect(tooMany.json().error.code).toBe("batch_too_large");
    // Counted before any request of it is read: a huge batch costs no validation of each.
    const tooManyToRead = await inject({ method: "POST", url: "/v1/localize/batch", payload: { jobs: [1, 2, 3, 4] } });
    expect([tooManyToRead.statusCode, tooManyToRead.json().error.code]).toEqual([422, "batch_too_large"]);
    const redis = new Redis(config.REDIS_URL);
    const waiting = await waitingIn(redis, config.QUEUE_PREFIX);
    redis.disconnect();
    expect(waiting).toBe(2);
  });

  it("counts a batch refused for one bad job as one submission, not as its jobs", async () => {
    const { inject } = await start({ RATE_LIMIT_PER_MIN: "10", BATCH_MAX: "10" });
    const bad = { jobs: [...Array.from({ length: 4 }, (_, i) => body(`ok ${i}`)), { ...body("bad"), repo: { url: "ftp://x/y", commit: SHA } }] };
    for (let i = 0; i < 2; i++) expect((await inject({ method: "POST", url: "/v1/localize/batch", payload: bad })).statusCode).toBe(422);
    // Two refused batches of five spent two of the minute's ten, not all of them: a job is still taken.
    expect((await inject({ method: "POST", url: "/v1/localize", payload: body("after the refused batches") })).statusCode).toBe(202);
  });

  it("counts a request refused for what it names: its hosts were looked up, so refusals cannot be sent for free", async () => {
    const { inject } = await start({ RATE_LIMIT_PER_MIN: "3" });
    const refused = { ...body("a refused one"), repo: { url: "ftp://x/y", commit: SHA } };
    const codes = [];
    for (let i = 0; i < 4; i++) codes.push((await inject({ method: "POST", url: "/v1/localize", payload: refused })).json().error.code);
    expect(codes).toEqual(["invalid_repository", "invalid_repository", "invalid_repository", "rate_limited"]);
  });
});

describe("an operator's key", () => {
  it("reads any key's job by its id (status, events), cancels only its own, and must name a key", async () => {
    const keysEnv = { AUTH_MODE: "api_key", API_KEYS: "alice:key-alice-1234,bob:key-bob-123456,oncall:key-oncall-1234", API_OPERATORS: "oncall" };
    const { inject } = await start(keysEnv);
    const as = (key: string) => ({ authorization: `Bearer ${key}` });
    const job = (await inject({ method: "POST", url: "/v1/localize", headers: as("key-bob-123456"), payload: body("bob's job") })).json();
    expect((await inject({ method: "GET", url: `/v1/jobs/${job.id}`, headers: as("key-oncall-1234") })).json()).toMatchObject({ id: job.id, status: "queued" });
    // Another ordinary key still reads it as no job, and the operator cannot cancel it.
    expect((await inject({ method: "GET", url: `/v1/jobs/${job.id}`, headers: as("key-alice-1234") })).statusCode).toBe(404);
    expect((await inject({ method: "DELETE", url: `/v1/jobs/${job.id}`, headers: as("key-oncall-1234") })).json().error.code).toBe("job_not_found");
    await expect(start({ ...keysEnv, API_OPERATORS: "on-call" })).rejects.toThrow('API_OPERATORS: "on-call" names no key of API_KEYS or API_KEYS_FILE');
  });
});

describe("batches a program retries", () => {
  it("follows the jobs a batch with an Idempotency-Key queued when it is sent again, and queues only what is missing", async () => {
    // Four submissions a minute: the batch's three, and its replays and refusals spend none.
    const { inject, config } = await start({ RATE_LIMIT_PER_MIN: "4" });
    const headers = { "idempotency-key": "batch-1" };
    const jobs = [body("batch a"), body("batch b"), body("batch c")];
    const first = await inject({ method: "POST", url: "/v1/localize/batch", headers, payload: { jobs } });
    expect(first.statusCode).toBe(202);
    const again = await inject({ method: "POST", url: "/v1/localize/batch", headers, payload: { jobs } });
    expect(again.json().jobs.map((j: { id: string }) => j.id)).toEqual(first.json().jobs.map((j: { id: string }) => j.id));
    // Another batch under the key is refused by the job that differs; nothing of it is queued.
    const other = await inject({ method: "POST", url: "/v1/localize/batch", headers, payload: { jobs: [jobs[0], jobs[1], body("batch d")] } });
    expect([other.statusCode, other.json().error.code]).toEqual([422, "idempotency_key_reused"]);
    // The minute has one submission left: a single job takes it, the same batch without a key is three more.
    expect((await inject({ method: "POST", url: "/v1/localize", payload: body("one more") })).statusCode).toBe(202);
    expect((await inject({ method: "POST", url: "/v1/localize/batch", payload: { jobs } })).json().error.code).toBe("rate_limited");
    const redis = new Redis(config.REDIS_URL);
    const waiting = await waitingIn(redis, config.QUEUE_PREFIX);
    redis.disconnect();
    expect(waiting).toBe(4);
  });

  it("refuses one Idempotency-Key for a single job and a batch, or for batches of other lengths, as a key used for a different request", async () => {
    const { inject, config } = await start();
    const reused = (r: { statusCode: number; json: () => { error?: { code?: string } } }) => [r.statusCode, r.json().error?.code];
    const single = { "idempotency-key": "single-then-batch" };
    expect((await inject({ method: "POST", url: "/v1/localize", headers: single, payload: body("kept a") })).statusCode).toBe(202);
    expect(reused(await inject({ method: "POST", url: "/v1/localize/batch", headers: single, payload: { jobs: [body("kept a")] } }))).toEqual([422, "idempotency_key_reused"]);
    const batch = { "idempotency-key": "batch-then-other" };
    const jobs = [body("kept b"), body("kept c")];
    expect((await inject({ method: "POST", url: "/v1/localize/batch", headers: batch, payload: { jobs } })).statusCode).toBe(202);
    expect(reused(await inject({ method: "POST", url: "/v1/localize", headers: batch, payload: body("kept b") }))).toEqual([422, "idempotency_key_reused"]);
    expect(reused(await inject({ method: "POST", url: "/v1/localize/batch", headers: batch, payload: { jobs: [...jobs, body("kept d")] } }))).toEqual([422, "idempotency_key_reused"]);
    // The same batch again still follows its jobs.
    expect((await inject({ method: "POST", url: "/v1/localize/batch", headers: batch, payload: { jobs } })).statusCode).toBe(202);
    const redis = new Redis(config.REDIS_URL);
    const waiting = await waitingIn(redis, config.QUEUE_PREFIX);
    redis.disconnect();
    expect(waiting).toBe(3);
  });

  it("refuses a batch the key's limits could never let through as too large (422), and a batch over what is left of the minute spends none of it", async () => {
    const { inject } = await start({ RATE_LIMIT_PER_MIN: "10", MAX_OPEN_JOBS_PER_KEY: "5" });
    const six = await inject({ method: "POST", url: "/v1/localize/batch", payload: { jobs: Array.from({ length: 6 }, (_, i) => body(`six ${i}`)) } });
    expect([six.statusCode, six.json().error]).toEqual([422, { code: "batch_too_large", message: "this API key may have at most 5 jobs queued or running at once: split the batch", field: "jobs" }]);
    // Five of the ten: then five more than are left to open (429), which spends none of the minute.
    expect((await inject({ method: "POST", url: "/v1/localize/batch", payload: { jobs: Array.from({ length: 5 }, (_, i) => body(`five ${i}`)) } })).statusCode).toBe(202);
    const full = await inject({ method: "POST", url: "/v1/localize/batch", payload: { jobs: Array.from({ length: 5 }, (_, i) => body(`more ${i}`)) } });
    expect([full.statusCode, full.json().error.code]).toEqual([429, "too_many_open_jobs"]);
    const rate = await start({ RATE_LIMIT_PER_MIN: "10", MAX_OPEN_JOBS_PER_KEY: "0" });
    expect((await rate.inject({ method: "POST", url: "/v1/localize/batch", payload: { jobs: Array.from({ length: 8 }, (_, i) => body(`eight ${i}`)) } })).statusCode).toBe(202);
    const over = await rate.inject({ method: "POST", url: "/v1/localize/batch", payload: { jobs: Array.from({ length: 3 }, (_, i) => body(`three ${i}`)) } });
    expect([over.statusCode, over.json().error.code]).toEqual([429, "rate_limited"]);
    // When to ask again, in the words an agent reads as well as in Retry-After.
    expect(over.json().error.message).toBe(`more than 10 submissions a minute for this API key: retry in ${over.headers["retry-after"]} s`);
    // The refused three spent nothing: two single jobs still fit the minute.
    for (const n of [1, 2]) expect((await rate.inject({ method: "POST", url: "/v1/localize", payload: body(`single ${n}`) })).statusCode).toBe(202);
  });
});

describe("cancel and events", () => {
  it("cancels a queued job; its event stream replays queued then cancelled and ends", async () => {
    const { inject, config } = await start();
    const job = (await inject({ method: "POST", url: "/v1/localize", payload: body() })).json();
    const del = await inject({ method: "DELETE", url: `/v1/jobs/${job.id}` });
    expect(del.statusCode).toBe(202);
    expect(del.json()).toMatchObject({ status: "cancelled", error: { code: "cancelled" } });
    expect((await inject({ method: "GET", url: `/v1/jobs/${job.id}` })).json().status).toBe("cancelled");
    const again = await inject({ method: "DELETE", url: `/v1/jobs/${job.id}` });
    expect(again.statusCode).toBe(409);
    // Its events are kept for an hour now that it has ended, not the job's week.
    const redis = new Redis(config.REDIS_URL);
    try {
      const ttl = await redis.ttl(keys(config.QUEUE_PREFIX).events(job.id));
      expect(ttl).toBeGreaterThan(3500);
      expect(ttl).toBeLessThanOrEqual(3600);
    } finally {
      redis.disconnect();
    }

    const sse = await inject({ method: "GET", url: `/v1/jobs/${job.id}/events` });
    expect(sse.headers["content-type"]).toContain("text/event-stream");
    const types = [...sse.body.matchAll(/^event: (\w+)$/gm)].map((m) => m[1]);
    expect(types).toEqual(["queued", "cancelled"]);
    // Resumed after the first event, the stream has the rest; an id it never sent is refused, naming the header.
    const resumed = await inject({ method: "GET", url: `/v1/jobs/${job.id}/events`, headers: { "last-event-id": "0-0" } });
    expect([...resumed.body.matchAll(/^event: (\w+)$/gm)].map((m) => m[1])).toEqual(["cancelled"]);
    for (const id of ["abc", "99999999999999999999999-0", `${"0".repeat(130)}1-0`]) {
      const bad = await inject({ method: "GET", url: `/v1/jobs/${job.id}/events`, headers: { "last-event-id": id } });
      expect(bad.statusCode).toBe(422);
      expect(bad.json().error).toMatchObject({ code: "validation_failed", field: "headers.last-event-id", message: expect.stringContaining("an event's id") });
    }
    // A HEAD of the stream is no stream: answered at once, holding no follower's place.
    expect((await inject({ method: "HEAD", url: `/v1/jobs/${job.id}/events` })).statusCode).toBe(404);
  });

  it("does not end a stream on an end the job's record never came to say (its worker died between the two), and ends it with the record's", async () => {
    const { inject, config } = await start();
    const job = (await inject({ method: "POST", url: "/v1/localize", payload: body("an end announced, never recorded") })).json();
    // What a worker killed right after announcing the job's end leaves on its stream.
    const redis = new Redis(config.REDIS_URL);
    try {
      await new JobEvents(redis, config.QUEUE_PREFIX, 60).publish(job.id, "failed", { code: "commit_not_found" });
    } finally {
      redis.disconnect();
    }
    // The record comes to say cancelled, 6 s on (past the follower's wait for the record).
    setTimeout(() => void inject({ method: "DELETE", url: `/v1/jobs/${job.id}` }), 6_000);
    const sse = await inject({ method: "GET", url: `/v1/jobs/${job.id}/events` });
    expect([...sse.body.matchAll(/^event: (\w+)$/gm)].map((m) => m[1])).toEqual(["queued", "cancelled"]);
  }, 30_000);

  it("takes ?wait= in decimal seconds, and refuses a number written otherwise, naming it", async () => {
    const { inject } = await start();
    const job = (await inject({ method: "POST", url: "/v1/localize", payload: body() })).json();
    for (const wait of ["0x10", "1e3", "ten", "-1"]) {
      const res = await inject({ method: "GET", url: `/v1/jobs/${job.id}?wait=${wait}` });
      expect(res.statusCode, wait).toBe(422);
      expect(res.json().error.field, wait).toBe("querystring.wait");
    }
    // As the OpenAPI document's example of the refusal says it.
    const ten = await inject({ method: "GET", url: `/v1/jobs/${job.id}?wait=ten` });
    expect(ten.json().error).toEqual((commonErrors.invalidParams.meta()?.examples as Array<{ error: unknown }>)[0]!.error);
    for (const wait of ["", "0", "0.2"]) expect((await inject({ method: "GET", url: `/v1/jobs/${job.id}?wait=${wait}` })).statusCode, wait).toBe(200);
  });

  it("holds GET ?wait= until the time is up when the job does not end", async () => {
    const { inject } = await start({ WAIT_MAX_S: "1" });
    const job = (await inject({ method: "POST", url: "/v1/localize", payload: body() })).json();
    const t = Date.now();
    const res = await inject({ method: "GET", url: `/v1/jobs/${job.id}?wait=30` });
    expect(Date.now() - t).toBeGreaterThanOrEqual(900);
    expect(res.json().status).toBe("queued");
  });
});

describe("auth and limits", () => {
  it("requires a valid key, scopes jobs to their key, and never stores keys in clear", async () => {
    const { inject, config } = await start({ AUTH_MODE: "api_key", API_KEYS: "alice:key-alice-123,bob:key-bob-45678" });
    expect((await inject({ method: "POST", url: "/v1/localize", payload: body() })).statusCode).toBe(401);
    const wrong = await inject({ method: "POST", url: "/v1/localize", payload: body(), headers: { authorization: "Bearer nope" } });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json().error.code).toBe("invalid_api_key");
    const mine = await inject({ method: "POST", url: "/v1/localize", payload: body(), headers: { authorization: "Bearer key-alice-123" } });
    expect(mine.statusCode).toBe(202);
    expect(mine.json().owner).toBe("alice");
    const theirs = await inject({ method: "GET", url: `/v1/jobs/${mine.json().id}`, headers: { "x-api-key": "key-bob-45678" } });
    // Another key's job answers exactly as a job that does not exist.
    expect(theirs.statusCode).toBe(404);
    const unknown = await inject({ method: "GET", url: `/v1/jobs/${"0".repeat(36)}`, headers: { "x-api-key": "key-bob-45678" } });
    expect(theirs.json()).toEqual({ error: { ...unknown.json().error, message: `no job ${mine.json().id}` } });
    expect((await inject({ method: "GET", url: "/healthz" })).statusCode).toBe(200);
    const redis = new Redis(config.REDIS_URL);
    const dump = [];
    for (const k of await redis.keys(`${config.QUEUE_PREFIX}:*`)) if ((await redis.type(k)) === "hash") dump.push(JSON.stringify(await redis.hgetall(k)));
    redis.disconnect();
    expect(dump.join("\n")).not.toContain("key-alice-123");
    // The name of every request with auth off, which reads every job, names no key.
    await expect(start({ AUTH_MODE: "api_key", API_KEYS: "alice:key-alice-123,anonymous:key-pub-78901" })).rejects.toThrow(/API_KEYS: "anonymous" .* cannot name a key/);
  });

  it("takes a key file's `name:key` lines as written, and refuses at boot what would be a guessable or unusable key, naming the line but not the key", async () => {
    const dir = mkdtempSync(join(tmpdir(), "codescout-keys-"));
    try {
      const file = join(dir, "keys");
      writeFileSync(file, ["# the team's keys", "", "carol : key-carol-0123456", `dave:sha256:${createHash("sha256").update("key-dave-0123456").digest("hex")}`, ""].join("\n"));
      const { inject } = await start({ AUTH_MODE: "api_key", API_KEYS_FILE: file });
      // Spaces around the colon are the writer's layout, not part of the name or the key.
      for (const [key, owner] of [["key-carol-0123456", "carol"], ["key-dave-0123456", "dave"]]) {
        const res = await inject({ method: "POST", url: "/v1/localize", payload: body(owner), headers: { authorization: `Bearer ${key}` } });
        expect(res.statusCode, owner).toBe(202);
        expect(res.json().owner).toBe(owner);
      }
      const refused: Array<[string, RegExp]> = [
        // A name whose key was left out used to be a key equal to the name.
        ["erin", new RegExp(`line 2: expected \`name:key\`.*earlier versions named it key-${createHash("sha256").update("erin").digest("hex").slice(0, 8)}`)],
        ["erin:x", /line 2: a key is at least 12 characters/],
        ["erin:key with spaces", /line 2: a key is at least 12 characters, none of them spaces/],
        ["er in:key-erin-0123456", /line 2: a key's name is/],
        ["erin:sha256:abc", /line 2: a hashed key is/],
      ];
      for (const [line, message] of refused) {
        writeFileSync(file, `# keys\n${line}\n`);
        const attempt = start({ AUTH_MODE: "api_key", API_KEYS_FILE: file });
        await expect(attempt, line).rejects.toThrow(message);
        // What follows the line's place (the file's path is random, and may hold any letter).
        const said = ((await attempt.catch((err: Error) => err)) as Error).message.split(": line 2: ")[1];
        expect(said, line).not.toContain(line.split(":").pop()!);
      }
      await expect(start({ AUTH_MODE: "api_key", API_KEYS: "alice:key-alice-123,bob" })).rejects.toThrow(/API_KEYS: entry 2: expected `name:key`/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("says on one line why the API process cannot start", async () => {
    const config = testConfig();
    const api = startProcess("src/api/server.ts", serviceEnv(config, { API_PORT: String(await freePort()), AUTH_MODE: "api_key", API_KEYS_FILE: "/nonexistent/keys" }));
    try {
      await waitFor(async () => (api.child.exitCode !== null ? true : undefined), 30_000, "the API to exit");
      expect(api.child.exitCode).toBe(1);
      expect(api.output().trim()).toMatch(/^api: could not start: API_KEYS_FILE: cannot read \/nonexistent\/keys: ENOENT[^\n]*$/);
    } finally {
      // Its queue was made before the key file was read.
      await dropPrefix(config.QUEUE_PREFIX);
    }
  });

  it("logs a request's path without its query (where a client may put a key), and takes no repository URL with a query", async () => {
    const config = testConfig({ LOG_LEVEL: "info" });
    const port = await freePort();
    const api = startProcess("src/api/server.ts", serviceEnv(config, { API_PORT: String(port), LOG_LEVEL: "info", ALLOW_FILE_URLS: "true" }));
    try {
      const base = `http://127.0.0.1:${port}`;
      await waitFor(async () => ((await fetch(`${base}/healthz`).catch(() => null))?.ok ? true : undefined), 60_000, "the API");
      await fetch(`${base}/v1/jobs/${"0".repeat(36)}?api_key=sk-alice-SECRET-111&wait=1`);
      const tokened = await fetch(`${base}/v1/localize`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ ...body(), repo: { url: "https://github.com/psf/requests.git?private_token=ghp_QUERYSECRET", commit: SHA } }),
      });
      expect(tokened.status).toBe(422);
      expect(((await tokened.json()) as { error: { field: string; message: string } }).error).toMatchObject({ field: "repo.url", message: expect.stringContaining("query") });
      // A repository this machine can name (github.com does not resolve here).
      const local = { ...body("a job to find in the log"), repo: { url: "file:///srv/repo.git", commit: SHA } };
      const accepted = await fetch(`${base}/v1/localize`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(local) });
      expect(accepted.status).toBe(202);
      const jobId = ((await accepted.json()) as { id: string }).id;
      await waitFor(async () => (api.output().includes(`/v1/jobs/${"0".repeat(36)}`) && api.output().includes(jobId) ? true : undefined), 10_000, "the request's log lines");
      expect(api.output()).not.toContain("SECRET");
      // The job's id and the refusal's code on the lines of the requests that made them.
      const lines = api
        .output()
        .split("\n")
        .flatMap((l) => (l.startsWith("{") ? [JSON.parse(l) as Record<string, unknown>] : []));
      expect(lines.find((l) => l.msg === "job accepted")).toMatchObject({ jobId, owner: "anonymous", status: "queued", cached: false });
      // The load balancer's probes (this test's wait for the API) leave no line at info.
      expect(lines.filter((l) => (l.req as { url?: string } | undefined)?.url === "/healthz")).toEqual([]);
      expect(lines.filter((l) => l.msg === "request refused").map((l) => [l.code, l.field])).toEqual([
        ["job_not_found", "id"],
        ["invalid_repository", "repo.url"],
      ]);
    } finally {
      await api.stop();
      await dropPrefix(config.QUEUE_PREFIX);
    }
  });

  it("answers what Node's HTTP parser refuses in the one error shape", async () => {
    const { api } = await start();
    await api.fastify.listen({ port: 0, host: "127.0.0.1" });
    const { port } = api.fastify.server.address() as AddressInfo;
    const raw = (request: string) =>
      new Promise<string>((done, fail) => {
        const socket = connect(port, "127.0.0.1", () => socket.write(request));
        let got = "";
        socket.on("data", (d: Buffer) => (got += d.toString()));
        socket.on("close", () => done(got));
        socket.on("error", fail);
      });
    const badLength = await raw("POST /v1/localize HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -1\r\n\r\n");
    expect(badLength).toMatch(/^HTTP\/1\.1 400 /);
    expect(JSON.parse(badLength.split("\r\n\r\n")[1]!)).toMatchObject({ error: { code: "bad_request" } });
    const bigHeaders = await raw(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${"x".repeat(20_000)}\r\n\r\n`);
    expect(bigHeaders).toMatch(/^HTTP\/1\.1 431 /);
    expect(JSON.parse(bigHeaders.split("\r\n\r\n")[1]!)).toMatchObject({ error: { code: "headers_too_large" } });
  });

  it("times a failed job's phases, by its failure's code, apart from the succeeded jobs'", async () => {
    const { inject, config } = await start();
    const job = (await inject({ method: "POST", url: "/v1/localize", payload: body("a job that fails") })).json();
    // A worker that fails the job as ours do: the failure's code and where its time went, in its reason.
    const failing = new Worker(
      QUEUES.localize,
      async () => {
        const failure = new JobFailedError("job_timeout", "the job ran out of time");
        failure.spent = { queue_wait_ms: 20, repo_ms: 250_000, total_ms: 300_000 };
        throw failure;
      },
      { connection: redisOptions(config.REDIS_URL), prefix: config.QUEUE_PREFIX },
    );
    try {
      const scraped = await waitFor(async () => {
        const body = (await inject({ method: "GET", url: "/metrics" })).body;
        return /codescout_failed_job_phase_seconds_count\{phase="total",code="job_timeout"\} 1/.test(body) ? body : undefined;
      }, 15_000, "the failed job in the metrics");
      expect((await inject({ method: "GET", url: `/v1/jobs/${job.id}` })).json().error.code).toBe("job_timeout");
      expect(scraped).toMatch(/^codescout_failed_job_phase_seconds_bucket\{le="300",phase="repository",code="job_timeout"\} 1$/m);
      expect(scraped).toMatch(/^codescout_failed_job_phase_seconds_bucket\{le="120",phase="repository",code="job_timeout"\} 0$/m);
      expect(scraped).toMatch(/^codescout_failed_job_phase_seconds_sum\{phase="total",code="job_timeout"\} 300$/m);
      // Not a phase it never came to, and not in the succeeded jobs' histogram.
      expect(scraped).not.toMatch(/codescout_failed_job_phase_seconds_count\{phase="sandbox"/);
      expect(scraped).not.toMatch(/codescout_job_phase_seconds_count\{phase="total"\} [1-9]/);
    } finally {
      await failing.close();
    }
  });

  it("scrapes no live worker while its Redis does not answer, not the last count", async () => {
    const own = await ownRedis();
    own.start();
    const config = testConfig({ REDIS_URL: own.url });
    const api = await buildApiServer(config, { logger: false });
    try {
      const redis = new Redis(own.url);
      await redis.set(keys(config.QUEUE_PREFIX).workerHeartbeat("w1"), JSON.stringify({ id: "w1", at: new Date().toISOString(), docker: true, model: "none" }), "EX", 30);
      redis.disconnect();
      const scrape = async () => (await api.fastify.inject({ method: "GET", url: "/metrics" })).body;
      expect(await scrape()).toMatch(/^codescout_workers_alive 1$/m);
      own.stop();
      // Past the one-second cache of the workers' statuses.
      await new Promise((r) => setTimeout(r, 1_100));
      expect(await scrape()).toMatch(/^codescout_workers_alive 0$/m);
    } finally {
      await api.close().catch(() => undefined);
    }
  }, 30_000);

  it("closes every connection it opened when it refuses to start", async () => {
    const own = await ownRedis();
    own.start();
    try {
      const config = testConfig({ REDIS_URL: own.url, AUTH_MODE: "api_key", API_KEYS: "anonymous:key-pub-78901" });
      await expect(buildApiServer(config, { logger: false })).rejects.toThrow(/API_KEYS/);
      const redis = new Redis(own.url);
      try {
        // This connection alone: the refused API's queue, events reader and store connection are gone.
        await waitFor(async () => ((await redis.client("LIST")) as string).trim().split("\n").length === 1 || undefined, 5_000, "the refused API's connections to close");
      } finally {
        redis.disconnect();
      }
    } finally {
      own.stop();
    }
  });

  it("refuses a request without a valid key before reading its body (one that never ends is refused all the same)", async () => {
    const { api } = await start({ AUTH_MODE: "api_key", API_KEYS: "alice:key-alice-123" });
    await api.fastify.listen({ port: 0, host: "127.0.0.1" });
    const { port } = api.fastify.server.address() as AddressInfo;
    for (const headers of [{}, { authorization: "Bearer not-a-key" }]) {
      const status = await new Promise<number>((done, fail) => {
        const req = httpRequest({ port, host: "127.0.0.1", method: "POST", path: "/v1/localize", headers: { ...headers, "content-type": "application/json", "content-length": 4_000_000 } }, (res) => {
          done(res.statusCode ?? 0);
          req.destroy();
        });
        req.on("error", fail);
        // A few bytes of four million, and then nothing: the body the API would have waited for.
        req.write('{"issue": "');
      });
      expect(status).toBe(401);
    }
  });

  it("answers 429 with Retry-After past the per-key rate and the open-job cap", async () => {
    const rate = await start({ RATE_LIMIT_PER_MIN: "2" });
    await rate.inject({ method: "POST", url: "/v1/localize", payload: body("1") });
    await rate.inject({ method: "POST", url: "/v1/localize", payload: body("2") });
    const limited = await rate.inject({ method: "POST", url: "/v1/localize", payload: body("3") });
    expect(limited.statusCode).toBe(429);
    expect(Number(limited.headers["retry-after"])).toBeGreaterThan(0);

    const open = await start({ MAX_OPEN_JOBS_PER_KEY: "1" });
    expect((await open.inject({ method: "POST", url: "/v1/localize", payload: body("1") })).statusCode).toBe(202);
    const capped = await open.inject({ method: "POST", url: "/v1/localize", payload: body("2") });
    expect(capped.statusCode).toBe(429);
    expect(capped.json().error.code).toBe("too_many_open_jobs");

    // Submitted at once (an agent's parallel calls), no more pass than the cap allows.
    const three = await start({ MAX_OPEN_JOBS_PER_KEY: "3" });
    const burst = await Promise.all(Array.from({ length: 8 }, (_, i) => three.inject({ method: "POST", url: "/v1/localize", payload: body(`burst ${i}`) })));
    expect(burst.map((r) => r.statusCode).sort()).toEqual([202, 202, 202, 429, 429, 429, 429, 429]);
  });

  it("answers a retry with its Idempotency-Key with the job it made, even with the key at its cap of open jobs", async () => {
    const { inject } = await start({ MAX_OPEN_JOBS_PER_KEY: "1" });
    const first = await inject({ method: "POST", url: "/v1/localize", headers: { "idempotency-key": "agent-call-7" }, payload: body("keyed") });
    expect(first.statusCode).toBe(202);
    const retried = await inject({ method: "POST", url: "/v1/localize", headers: { "idempotency-key": "agent-call-7" }, payload: body("keyed") });
    expect([retried.statusCode, retried.json().id]).toEqual([202, first.json().id]);
    // Another request is still held to the cap.
    expect((await inject({ method: "POST", url: "/v1/localize", payload: body("another") })).statusCode).toBe(429);
    // The same request twice at once with one place left: the one that lost the place is the other's retry, not over the cap.
    for (let i = 0; i < 5; i++) {
      const { inject: fresh } = await start({ MAX_OPEN_JOBS_PER_KEY: "1" });
      const both = await Promise.all([0, 1].map(() => fresh({ method: "POST", url: "/v1/localize", headers: { "idempotency-key": `agent-call-${i}` }, payload: body(`twice ${i}`) })));
      expect(both.map((r) => r.statusCode)).toEqual([202, 202]);
      expect(new Set(both.map((r) => r.json().id)).size).toBe(1);
    }
  });

  it("limits reads apart from submissions, so following jobs never costs a submission", async () => {
    const { inject } = await start({ RATE_LIMIT_PER_MIN: "2", POLL_RATE_LIMIT_PER_MIN: "5" });
    const job = (await inject({ method: "POST", url: "/v1/localize", payload: body("1") })).json();
    for (let i = 0; i < 5; i++) expect((await inject({ method: "GET", url: `/v1/jobs/${job.id}` })).statusCode).toBe(200);
    const polled = await inject({ method: "GET", url: `/v1/jobs/${job.id}` });
    expect(polled.statusCode).toBe(429);
    expect(polled.json().error.message).toMatch(/more than 5 reads a minute/);
    expect(Number(polled.headers["retry-after"])).toBeGreaterThan(0);
    expect((await inject({ method: "POST", url: "/v1/localize", payload: body("2") })).statusCode).toBe(202);
    const submitted = await inject({ method: "POST", url: "/v1/localize", payload: body("3") });
    expect(submitted.statusCode).toBe(429);
    expect(submitted.json().error.message).toMatch(/more than 2 submissions a minute/);
  });

  it("answers 415 to a body that is not JSON", async () => {
    const { inject } = await start();
    const res = await inject({ method: "POST", url: "/v1/localize", payload: JSON.stringify(body()), headers: { "content-type": "text/plain" } });
    expect(res.statusCode).toBe(415);
    expect(res.json().error.code).toBe("unsupported_media_type");
  });

  it("quotes at most 100 characters of a header it refuses", async () => {
    const { inject } = await start();
    const long = `text/${"x".repeat(8000)}`;
    const media = await inject({ method: "POST", url: "/v1/localize", payload: JSON.stringify(body()), headers: { "content-type": long } });
    expect(media.statusCode).toBe(415);
    expect(media.json().error.message).toContain(`"text/${"x".repeat(94)}…"`);
    expect(media.body.length).toBeLessThan(400);
    const host = await inject({ method: "GET", url: "/v1/jobs/x", headers: { host: `${"a".repeat(8000)}.example` } });
    expect(host.statusCode).toBe(403);
    expect(host.json().error).toMatchObject({ code: "host_not_allowed", field: "host" });
    expect(host.body.length).toBeLessThan(400);
    const origin = await inject({ method: "GET", url: "/v1/jobs/x", headers: { origin: `https://${"b".repeat(8000)}.example` } });
    expect(origin.statusCode).toBe(403);
    expect(origin.json().error.code).toBe("origin_not_allowed");
    expect(origin.body.length).toBeLessThan(400);
  });

  it("refuses private-network repository URLs unless configured", async () => {
    const { inject } = await start({ ALLOW_FILE_URLS: "false" });
    for (const url of ["http://127.0.0.1/r.git", "https://10.1.2.3/r.git", "http://[::1]/r.git", "https://localhost/r.git", "http://169.254.169.254/latest"]) {
      const res = await inject({ method: "POST", url: "/v1/localize", payload: { ...body(), repo: { url, commit: SHA } } });
      expect(res.statusCode, url).toBe(422);
      expect(res.json().error.field).toBe("repo.url");
    }
    const allowed = await start({ ALLOW_PRIVATE_HOSTS: "true", ALLOW_HTTP_URLS: "true" });
    const res = await allowed.inject({ method: "POST", url: "/v1/localize", payload: { ...body(), repo: { url: "http://127.0.0.1/r.git", commit: SHA } } });
    expect(res.statusCode).toBe(202);
  });

  it("takes a repository token only when it can seal it, and never stores it in clear", async () => {
    const plain = await start();
    const refused = await plain.inject({ method: "POST", url: "/v1/localize", payload: { ...body(), repo: { ...body().repo, token: "ghp_secret_value" } } });
    expect(refused.json().error).toMatchObject({ code: "tokens_disabled", field: "repo.token" });

    const sealed = await start({ SECRET_KEY: "k".repeat(40) });
    const res = await sealed.inject({ method: "POST", url: "/v1/localize", payload: { ...body(), repo: { ...body().repo, token: "ghp_secret_value" } } });
    expect(res.statusCode).toBe(202);
    expect(res.body).not.toContain("ghp_secret_value");
    const redis = new Redis(sealed.config.REDIS_URL);
    const data = await redis.hget(`${sealed.config.QUEUE_PREFIX}:localize:${res.json().id}`, "data");
    redis.disconnect();
    expect(data).toContain("sealedToken");
    expect(data).not.toContain("ghp_secret_value");
  });
});

describe("operations", () => {
  it("is not ready without a live worker, ready with one, and serves Prometheus metrics", async () => {
    const { inject, config } = await start();
    const down = await inject({ method: "GET", url: "/readyz" });
    expect(down.statusCode).toBe(503);
    expect(down.json().checks).toMatchObject({ redis: true, workers: 0, docker: false });
    const redis = new Redis(config.REDIS_URL);
    await redis.set(keys(config.QUEUE_PREFIX).workerHeartbeat("w1"), JSON.stringify({ id: "w1", at: new Date().toISOString(), docker: true, model: "none" }), "EX", 30);
    redis.disconnect();
    // Workers are read at most once a second (the route is open to anyone, and each read scans Redis).
    const again = await inject({ method: "GET", url: "/readyz" });
    expect(again.json().checks.workers).toBe(0);
    await new Promise((r) => setTimeout(r, 1_050));
    const up = await inject({ method: "GET", url: "/readyz" });
    expect(up.statusCode).toBe(200);
    expect(up.json()).toMatchObject({ status: "ready", checks: { workers: 1, docker: true, model: "none" } });

    // A model server down while the baseline answers for it degrades the answers, not the service.
    const withModel = await start({ MODEL_BASE_URL: "http://model.example/v1" });
    const pulse = new Redis(config.REDIS_URL);
    await pulse.set(keys(withModel.config.QUEUE_PREFIX).workerHeartbeat("w2"), JSON.stringify({ id: "w2", at: new Date().toISOString(), docker: true, model: "down" }), "EX", 30);
    pulse.disconnect();
    const degraded = await withModel.inject({ method: "GET", url: "/readyz" });
    expect(degraded.statusCode).toBe(200);
    expect(degraded.json()).toMatchObject({ status: "degraded", checks: { workers: 1, model: "down" } });
    const strict = await start({ MODEL_BASE_URL: "http://model.example/v1", MODEL_FALLBACK: "none", QUEUE_PREFIX: withModel.config.QUEUE_PREFIX });
    const notReady = await strict.inject({ method: "GET", url: "/readyz" });
    expect(notReady.statusCode).toBe(503);
    expect(notReady.json()).toMatchObject({ status: "not_ready", checks: { model: "down" } });
    // A model server that refuses the service (its key, a MODEL_NAME it does not serve) fails every job: not ready, whatever the fallback.
    const refusing = await start({ MODEL_BASE_URL: "http://model.example/v1" });
    const beat = new Redis(config.REDIS_URL);
    await beat.set(keys(refusing.config.QUEUE_PREFIX).workerHeartbeat("w3"), JSON.stringify({ id: "w3", at: new Date().toISOString(), docker: true, model: "refused" }), "EX", 30);
    beat.disconnect();
    const refused = await refusing.inject({ method: "GET", url: "/readyz" });
    expect(refused.statusCode).toBe(503);
    expect(refused.json()).toMatchObject({ status: "not_ready", checks: { model: "refused" } });

    await inject({ method: "POST", url: "/v1/localize", payload: body() });
    const metrics = await inject({ method: "GET", url: "/metrics" });
    expect(metrics.body).toMatch(/codescout_queue_jobs\{state="waiting"\} 1/);
    // How long the oldest of them has waited: the one job queued above, a moment ago.
    const waited = Number(/^codescout_queue_oldest_waiting_seconds (\S+)$/m.exec(metrics.body)?.[1]);
    expect(waited).toBeGreaterThan(0);
    expect(waited).toBeLessThan(60);
    expect(metrics.body).toMatch(/^codescout_workers_alive 1$/m);
    expect(metrics.body).toMatch(/^codescout_redis_up 1$/m);
    expect(metrics.body).toContain("codescout_job_phase_seconds");
  });
});
