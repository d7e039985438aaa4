import { afterAll, describe, expect, it } from "vitest";
import { closeRedis, createRedis } from "../../src/queue/connection.js";
import { keys } from "../../src/store/keys.js";
import { deploymentScope, liveSandboxOwners, WorkerPresence } from "../../src/store/workers.js";
import { Heartbeat } from "../../src/worker/heartbeat.js";
import { dropPrefix } from "../helpers/redis.js";

const url = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const prefix = `test-workers-${process.pid}-${Date.now()}`;

/** Whether any worker is alive, as the API's followers ask it, against real Redis and real heartbeats. */
describe("worker presence", () => {
  const redis = createRedis(url, "producer");
  const k = keys(prefix);
  // Asked afresh every time: the test reads each change at once.
  const presence = new WorkerPresence(redis, k, 0);
  afterAll(async () => {
    await dropPrefix(prefix);
    await closeRedis(redis);
  });

  it("sees a worker from its heartbeat, then none once the last one stops; and a worker of an earlier version, which beats without the shared key", async () => {
    expect(await presence.anyAlive()).toBe(false);
    const a = new Heartbeat(redis, k, "a", async () => ({ docker: true, model: "none" }));
    const b = new Heartbeat(redis, k, "b", async () => ({ docker: true, model: "none" }));
    await a.start();
    await b.start();
    expect(await presence.anyAlive()).toBe(true);
    await a.stop();
    // One of two stopped: the other still counts, and the shared key stays.
    expect(await presence.anyAlive()).toBe(true);
    expect(await redis.exists(k.workersAlive)).toBe(1);
    await b.stop();
    expect(await redis.exists(k.workersAlive)).toBe(0);
    expect(await presence.anyAlive()).toBe(false);
    // An earlier version's worker: its own heartbeat key alone, as it wrote it.
    await redis.set(k.workerHeartbeat("old"), JSON.stringify({ id: "old", at: new Date().toISOString(), docker: true, model: "none" }), "EX", 30);
    expect(await presence.anyAlive()).toBe(true);
  });

  it("beats while its probe hangs (an engine that does not answer), so its sandboxes never look a dead worker's", async () => {
    // Its first probe at start answers; the later ones hang.
    let first = true;
    const probing = new Heartbeat(redis, k, "probing", () => (first ? ((first = false), Promise.resolve({ docker: true, model: "none" as const })) : new Promise(() => undefined)), "host:2:bb:1");
    await probing.start();
    await redis.del(k.workerHeartbeat("probing"));
    // A beat whose probe hangs still says the worker is alive, at once.
    const beating = probing.beat();
    await new Promise((r) => setTimeout(r, 200));
    expect(JSON.parse((await redis.get(k.workerHeartbeat("probing")))!)).toMatchObject({ id: "probing", docker: true, sandboxOwner: "host:2:bb:1" });
    expect(await liveSandboxOwners(redis, k)).toContain("host:2:bb:1");
    // Past the probe's time, the engine that does not answer is said to be down; the worker lives on.
    await beating;
    expect(JSON.parse((await redis.get(k.workerHeartbeat("probing")))!)).toMatchObject({ id: "probing", docker: false, sandboxOwner: "host:2:bb:1" });
    await probing.stop();
  }, 15_000);

  it("gives each deployment its own scope, kept in its Redis, however its URL is spelled", async () => {
    const other = keys(`${prefix}-other`);
    const a = await deploymentScope(redis, k);
    expect(await deploymentScope(redis, k)).toBe(a);
    // The same Redis reached by another spelling of its URL: the same id, so the same scope.
    const spelled = createRedis(url.replace("127.0.0.1", "localhost"), "producer");
    try {
      expect(await deploymentScope(spelled, k)).toBe(a);
    } finally {
      await closeRedis(spelled);
    }
    // Another queue (or another Redis: another id) is another deployment.
    expect(await deploymentScope(redis, other)).not.toBe(a);
    await dropPrefix(`${prefix}-other`);
  });
});
