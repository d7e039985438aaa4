import { describe, it, expect, afterAll } from "vitest";
import { startFakeModel, type FakeModel } from "../helpers/fakeModel.js";
import { makeGitFixture } from "../helpers/gitFixture.js";
import { containersOf, freePort, serviceEnv, startProcess, waitFor, type ServiceProcess } from "../helpers/processes.js";
import { testConfig } from "../helpers/config.js";
import { dropPrefix, ownRedis } from "../helpers/redis.js";

/** SIGTERM: the API drains and exits; a worker past its grace hands its job back and removes its container. */
const config = testConfig();
const procs: ServiceProcess[] = [];
let model: FakeModel | undefined;
const repo = makeGitFixture();

afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop("SIGKILL")));
  await model?.close();
  repo.cleanup();
  await dropPrefix(config.QUEUE_PREFIX);
});

describe("graceful shutdown", () => {
  it("hands a running job back at the end of the grace period, and another worker finishes it", async () => {
    model = await startFakeModel([{ hang: true }]);
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const env = serviceEnv(config, {
      MODEL_BASE_URL: model.baseURL,
      MODEL_MAX_RETRIES: "0",
      WORKER_SHUTDOWN_GRACE_S: "1",
      API_PORT: String(port),
    });
    const first = startProcess("src/worker/main.ts", env);
    const api = startProcess("src/api/server.ts", env);
    procs.push(first, api);
    await waitFor(async () => ((await fetch(`${base}/readyz`)).ok ? true : undefined), 30_000, "the service");
    const post = await fetch(`${base}/v1/localize`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ repo: { url: repo.url, commit: repo.commits[0] }, issue: "helper returns the wrong number" }),
    });
    const { id } = (await post.json()) as { id: string };
    await waitFor(async () => (model!.requests.length > 0 ? true : undefined), 30_000, "the job to reach the model");

    const t = Date.now();
    expect(await first.stop("SIGTERM")).toBe(0);
    expect(Date.now() - t).toBeLessThan(15_000);
    expect(containersOf(id)).toBe("");
    const handedBack = (await (await fetch(`${base}/v1/jobs/${id}`)).json()) as { status: string };
    expect(handedBack.status).toBe("queued");

    model.script([{ toolCalls: [{ name: "localization_finish", arguments: { locations: [{ file: "pkg/util.py", function_name: "helper" }] } }] }]);
    const second = startProcess("src/worker/main.ts", env);
    procs.push(second);
    const done = await waitFor(
      async () => {
        const job = (await (await fetch(`${base}/v1/jobs/${id}`)).json()) as { status: string };
        return job.status === "succeeded" ? job : undefined;
      },
      30_000,
      "the second worker to finish the job",
    );
    expect(done).toMatchObject({ status: "succeeded", result: { entities: ["pkg/util.py:helper"] } });

    expect(await api.stop("SIGTERM")).toBe(0);
  });

  it("with Redis away: the worker refuses to start, naming it on one line; the API starts, answers 503 and stops on SIGTERM", async () => {
    const away = `redis://127.0.0.1:${await freePort()}`;
    const port = await freePort();
    const env = serviceEnv({ ...config, REDIS_URL: away }, { API_PORT: String(port) });
    const worker = startProcess("src/worker/main.ts", env);
    const api = startProcess("src/api/server.ts", env);
    procs.push(worker, api);
    expect(await waitFor(async () => worker.child.exitCode ?? undefined, 30_000, "the worker to give up")).toBe(1);
    expect(worker.output()).toContain(`worker: could not start: `);
    expect(worker.output()).toContain(`(Redis at ${new URL(away).host} is unreachable)`);
    expect(worker.output()).not.toMatch(/^\s+at /m);
    const res = await waitFor(async () => fetch(`http://127.0.0.1:${port}/v1/localize`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ repo: { url: repo.url, commit: "main" }, issue: "x" }) }).catch(() => undefined), 30_000, "the API");
    expect(res.status).toBe(503);
    // A scrape is answered, not held for ever waiting for the queue's counts.
    const scraped = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(10_000) });
    expect(scraped.status).toBe(200);
    const scrape = await scraped.text();
    expect(scrape).toContain("codescout_api_process_cpu_seconds_total");
    expect(scrape).toMatch(/^codescout_redis_up 0$/m);
    const t = Date.now();
    expect(await api.stop("SIGTERM")).toBe(0);
    expect(Date.now() - t).toBeLessThan(15_000);
  });

  it("a worker whose Redis goes away stops on SIGTERM all the same, within its grace and the Redis bounds", async () => {
    const redis = await ownRedis();
    redis.start();
    try {
      const worker = startProcess("src/worker/main.ts", serviceEnv({ ...config, REDIS_URL: redis.url }, { WORKER_SHUTDOWN_GRACE_S: "1" }));
      procs.push(worker);
      await waitFor(async () => (worker.output().includes("worker ready") ? true : undefined), 30_000, "the worker");
      redis.stop();
      const t = Date.now();
      expect(await worker.stop("SIGTERM")).toBe(0);
      // Its grace (1 s) and one Redis bound (5 s) for all that waits on Redis, and the connections'
      // last second: ~8 s. Each wait bounded in turn took 13 s here, and ~44 s at the default grace.
      expect(Date.now() - t).toBeLessThan(10_500);
    } finally {
      // Still up only when the test failed before stopping it.
      try {
        redis.stop();
      } catch {
        // already stopped
      }
    }
  });
});
