import { afterAll, describe, expect, it } from "vitest";
import { createHmac } from "node:crypto";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { buildApiServer, type ApiServer } from "../../src/api/build.js";
import { finishedJobExample } from "../../src/api/schemas.js";
import { HostGuard } from "../../src/queue/hostPolicy.js";
import type { JobView } from "../../src/store/jobStore.js";
import { deliverWebhook } from "../../src/worker/webhooks.js";
import { testConfig } from "../helpers/config.js";
import { dropPrefix } from "../helpers/redis.js";

/**
 * Each API key's own webhook secret: what its receiver checks, which signs that key's webhooks
 * alone. With WEBHOOK_SECRET alone, every key holding it could forge every other key's webhooks.
 */
const WEBHOOK_SECRET = "webhook-secret-0123456789abcdef";
const apis: ApiServer[] = [];
const prefixes: string[] = [];
afterAll(async () => {
  for (const api of apis) await api.close();
  await Promise.all(prefixes.map((p) => dropPrefix(p)));
});

async function api(env: Record<string, string>) {
  const config = testConfig(env);
  prefixes.push(config.QUEUE_PREFIX);
  const built = await buildApiServer(config, { logger: false });
  apis.push(built);
  return (key?: string) => built.fastify.inject({ method: "GET", url: "/v1/webhook-secret", headers: key ? { authorization: `Bearer ${key}` } : {} });
}

const verifies = (header: string | string[] | undefined, body: string, secret: string) => {
  const [t, v1] = String(header).split(",").map((p) => p.split("=")[1]);
  return v1 === createHmac("sha256", secret).update(`${t}.${body}`).digest("hex");
};

describe("an API key's own webhook secret", () => {
  it("is given to that key alone, and signs the webhooks of its jobs, which another key's secret does not verify", async () => {
    const ask = await api({ AUTH_MODE: "api_key", API_KEYS: "alice:key-alice-1234,bob:key-bob-12345", WEBHOOK_SECRET });
    const alice = await ask("key-alice-1234");
    const bob = await ask("key-bob-12345");
    expect(alice.statusCode).toBe(200);
    expect(alice.json()).toMatchObject({ header: "X-CodeScout-Key-Signature" });
    expect(alice.headers["cache-control"]).toBe("no-store");
    expect(alice.json().secret).not.toBe(bob.json().secret);
    expect(alice.json().secret).not.toBe(WEBHOOK_SECRET);
    expect((await ask()).statusCode).toBe(401);

    const received: Array<{ headers: IncomingHttpHeaders; body: string }> = [];
    const receiver = createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        received.push({ headers: req.headers, body });
        res.end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
    try {
      const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
      const view = { ...finishedJobExample, owner: "alice" } as unknown as JobView;
      await deliverWebhook(url, view, WEBHOOK_SECRET, new HostGuard({ allowedHosts: [], allowPrivate: true }));
      const [hook] = received;
      expect(verifies(hook!.headers["x-codescout-key-signature"], hook!.body, alice.json().secret)).toBe(true);
      expect(verifies(hook!.headers["x-codescout-key-signature"], hook!.body, bob.json().secret)).toBe(false);
      // The signature under WEBHOOK_SECRET goes on as before, for receivers the operator gave it to.
      expect(verifies(hook!.headers["x-codescout-signature"], hook!.body, WEBHOOK_SECRET)).toBe(true);
    } finally {
      receiver.close();
    }
  });

  it("is no one's where the server sends no webhooks, or has no keys (every caller would learn it)", async () => {
    const off = await (await api({ WEBHOOK_SECRET }))();
    expect([off.statusCode, off.json().error.code]).toEqual([404, "webhooks_disabled"]);
    const none = await (await api({ AUTH_MODE: "api_key", API_KEYS: "alice:key-alice-1234" }))("key-alice-1234");
    expect([none.statusCode, none.json().error.code]).toEqual([404, "webhooks_disabled"]);
  });
});
