import { afterAll, describe, expect, it } from "vitest";
import { Redis } from "ioredis";
import { EventHub } from "../../src/store/eventHub.js";
import { keys } from "../../src/store/keys.js";
import { dropPrefix } from "../helpers/redis.js";

/**
 * Followers reading one job's events through the shared reader, on real Redis: whatever place
 * each reads from, and whenever it joins, it gets every event after it, once.
 */
const url = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const prefix = `cstest-hub-${process.pid}-${Date.now()}`;
const redis = new Redis(url);
// A long shared read, so that a follower joins while one is in flight.
const hub = new EventHub(new Redis(url), redis, prefix, 2_000);
afterAll(async () => {
  hub.close();
  redis.disconnect();
  await dropPrefix(prefix, url);
});

const event = (n: number) => ["e", JSON.stringify({ type: "turn", at: new Date().toISOString(), data: { turn: n } })];

describe("the shared event reader", () => {
  it("gives a follower that joins during a read, from further back, what lies between too", async () => {
    const job = "3f6c2a9e-8d41-4b7a-9c25-61e0d7b4f8a2";
    const key = keys(prefix).events(job);
    await redis.xadd(key, "100-0", ...event(1));
    const ahead = hub.read(job, "1000-0", 5_000);
    await new Promise((r) => setTimeout(r, 100));
    const behind = hub.read(job, "100-0", 5_000);
    await new Promise((r) => setTimeout(r, 100));
    await redis.xadd(key, "500-0", ...event(2));
    await redis.xadd(key, "1500-0", ...event(3));
    expect((await ahead).events.map((e) => e.id)).toEqual(["1500-0"]);
    expect((await behind).events.map((e) => e.id)).toEqual(["500-0", "1500-0"]);
  });

  it("reads on past an entry that is not one of ours, instead of reading it again", async () => {
    const job = "7d0b5a1c-2e34-4f6a-8b9c-0d1e2f3a4b5c";
    const key = keys(prefix).events(job);
    await redis.xadd(key, "10-0", "e", JSON.stringify({ type: "a_newer_workers_event", at: "x" }));
    const read = await hub.read(job, "0", 1_000);
    expect(read).toEqual({ events: [], last: "10-0" });
  });
});
