import { afterAll, describe, expect, it } from "vitest";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { pino } from "pino";
import { Redis } from "ioredis";
import { keys } from "../../src/store/keys.js";
import { liveWorkers } from "../../src/store/workers.js";
import { startWorker } from "../../src/worker/build.js";
import { testConfig } from "../helpers/config.js";
import { startFakeModel } from "../helpers/fakeModel.js";
import { freePort } from "../helpers/processes.js";
import { dropPrefix } from "../helpers/redis.js";

/**
 * What a real worker's heartbeat says of its model server, which /readyz reports: a server that
 * answers but refuses this service (its key, or it serves no model of MODEL_NAME) is not "ok".
 */
const prefixes: string[] = [];
afterAll(async () => {
  await Promise.all(prefixes.map((p) => dropPrefix(p)));
});

async function modelSeen(overrides: Record<string, string>): Promise<string | undefined> {
  const config = testConfig(overrides);
  prefixes.push(config.QUEUE_PREFIX);
  const worker = await startWorker(config, { logger: pino({ level: "silent" }) });
  try {
    const redis = new Redis(config.REDIS_URL);
    const [beat] = await liveWorkers(redis, keys(config.QUEUE_PREFIX)).finally(() => redis.disconnect());
    return beat?.model;
  } finally {
    await worker.close();
  }
}

describe("the worker's look at its model server", () => {
  it("says ok for a server that serves MODEL_NAME, refused for a vLLM that does not or a server that refuses the key, down for none", async () => {
    const model = await startFakeModel();
    // A gateway that wants another key.
    const locked = createServer((_req, res) => res.writeHead(401, { "content-type": "application/json" }).end('{"error":{"message":"invalid key"}}'));
    await new Promise<void>((r) => locked.listen(0, "127.0.0.1", r));
    // A server that lists a file's path and answers whatever model a request names (llama.cpp's).
    const lenient = createServer((_req, res) => res.writeHead(200, { "content-type": "application/json" }).end('{"object":"list","data":[{"id":"/models/codescout-4b.gguf","owned_by":"llamacpp"}]}'));
    await new Promise<void>((r) => lenient.listen(0, "127.0.0.1", r));
    try {
      expect(await modelSeen({ MODEL_BASE_URL: model.baseURL, MODEL_NAME: "OpenHands/CodeScout-4B" })).toBe("ok");
      expect(await modelSeen({ MODEL_BASE_URL: model.baseURL, MODEL_NAME: "OpenHands/CodeScout-4b-typo" })).toBe("refused");
      expect(await modelSeen({ MODEL_BASE_URL: `http://127.0.0.1:${(locked.address() as AddressInfo).port}/v1` })).toBe("refused");
      expect(await modelSeen({ MODEL_BASE_URL: `http://127.0.0.1:${(lenient.address() as AddressInfo).port}/v1` })).toBe("ok");
      expect(await modelSeen({ MODEL_BASE_URL: `http://127.0.0.1:${await freePort()}/v1` })).toBe("down");
    } finally {
      await model.close();
      await new Promise((r) => locked.close(r));
      await new Promise((r) => lenient.close(r));
    }
  });
});
