import { afterAll, describe, expect, it } from "vitest";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { pino } from "pino";
import { Redis } from "ioredis";
import { keys } from "../../src/store/keys.js";
import { liveWorkers } from "../../src/store/workers.js";
import { startWorker } from "../../src/worker/build.js";
import { createDockerSandboxProvider } from "../../src/sandbox/docker.js";
import { sandboxOptionsFromConfig } from "../../src/sandbox/config.js";
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

async function beatOf(overrides: Record<string, string>, ping?: (real: () => Promise<void>) => Promise<void>): Promise<{ docker?: boolean; model?: string }> {
  const config = testConfig(overrides);
  prefixes.push(config.QUEUE_PREFIX);
  // The engine, answering its ping as `ping` says (slowly, or never).
  // Its owners unknown (null): it reaps no other test's sandboxes.
  const real = createDockerSandboxProvider({ ...sandboxOptionsFromConfig(config), owners: { scope: `probe-${config.QUEUE_PREFIX}`, alive: async () => null } });
  const sandboxes = ping ? Object.assign(Object.create(real) as typeof real, { ping: () => ping(() => real.ping()) }) : undefined;
  const worker = await startWorker(config, { logger: pino({ level: "silent" }), ...(sandboxes ? { sandboxes } : {}) });
  try {
    const redis = new Redis(config.REDIS_URL);
    const [beat] = await liveWorkers(redis, keys(config.QUEUE_PREFIX)).finally(() => redis.disconnect());
    return { docker: beat?.docker, model: beat?.model };
  } finally {
    await worker.close();
  }
}

const modelSeen = async (overrides: Record<string, string>) => (await beatOf(overrides)).model;

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
      // A model server that never answers is down; the engine, which answers in 2.5 s, is not said down with it.
      const hung = createServer(() => undefined);
      await new Promise<void>((r) => hung.listen(0, "127.0.0.1", r));
      try {
        const slowly = (real: () => Promise<void>) => new Promise<void>((r) => setTimeout(r, 2_500)).then(real);
        expect(await beatOf({ MODEL_BASE_URL: `http://127.0.0.1:${(hung.address() as AddressInfo).port}/v1` }, slowly)).toEqual({ docker: true, model: "down" });
        // A list past 1 MiB is no list: not read on (the worker's memory), and the server is down.
        const flood = createServer((_req, res) => {
          res.writeHead(200, { "content-type": "application/json" });
          res.end(`{"data":[${'{"id":"x","owned_by":"vllm"},'.repeat(60_000)}{"id":"OpenHands/CodeScout-4B","owned_by":"vllm"}]}`);
        });
        await new Promise<void>((r) => flood.listen(0, "127.0.0.1", r));
        try {
          expect(await modelSeen({ MODEL_BASE_URL: `http://127.0.0.1:${(flood.address() as AddressInfo).port}/v1` })).toBe("down");
        } finally {
          await new Promise((r) => flood.close(r));
        }
        // An engine that never answers: the worker starts all the same, saying so.
        expect(await beatOf({}, () => new Promise<void>(() => undefined))).toEqual({ docker: false, model: "none" });
      } finally {
        hung.closeAllConnections();
        await new Promise((r) => hung.close(r));
      }
    } finally {
      await model.close();
      await new Promise((r) => locked.close(r));
      await new Promise((r) => lenient.close(r));
    }
  });
});
