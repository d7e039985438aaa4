import { execFileSync } from "node:child_process";
import { Redis } from "ioredis";
import { freePort } from "./processes.js";

/** Deletes every key under a test's queue prefix, so runs leave Redis as they found it. */
export async function dropPrefix(prefix: string, url = process.env.REDIS_URL ?? "redis://127.0.0.1:6379"): Promise<void> {
  const redis = new Redis(url);
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
}

/**
 * A Redis server of a test's own (the real one, on a free port), to stop and start under the
 * service: what the shared Redis cannot be put through without failing every other test.
 */
export async function ownRedis(): Promise<{ url: string; start(): void; stop(): void }> {
  const port = await freePort();
  return {
    url: `redis://127.0.0.1:${port}`,
    start: () => void execFileSync("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--daemonize", "yes", "--save", "", "--appendonly", "no"]),
    stop: () => void execFileSync("redis-cli", ["-p", String(port), "shutdown", "nosave"]),
  };
}
