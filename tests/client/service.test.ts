import { afterAll, describe, expect, it } from "vitest";
import { Redis } from "ioredis";
import { buildApiServer } from "../../src/api/build.js";
import { ServiceClient, type ServiceRefused } from "../../src/client/service.js";
import { closeRedis } from "../../src/queue/connection.js";
import { createLocalizeQueue } from "../../src/queue/producer.js";
import { testConfig } from "../helpers/config.js";
import { dropPrefix, ownRedis } from "../helpers/redis.js";
import { PUBLIC_NAMES, scriptedResolver } from "../helpers/resolver.js";

/**
 * The local client against the real API, whose Redis (a server of this test's own) goes away
 * and comes back: the CLI and the stdio MCP server ride out what the service says is passing.
 */
const config = testConfig();
afterAll(async () => {
  await dropPrefix(config.QUEUE_PREFIX);
});

const body = {
  repo: { url: "https://github.com/psf/requests.git", commit: "091991be0da19de9108dbe5e3752917fea3d7fdc" },
  issue: "Session.request breaks on binary method names",
};

describe("ServiceClient", () => {
  it("asks again after Retry-After while the service's Redis is away, and submits the job once (one Idempotency-Key)", async () => {
    const redis = await ownRedis();
    redis.start();
    const api = await buildApiServer({ ...config, REDIS_URL: redis.url }, { logger: false, resolver: scriptedResolver(PUBLIC_NAMES).resolve });
    try {
      const client = new ServiceClient(await api.fastify.listen({ port: 0, host: "127.0.0.1" }));
      redis.stop();
      const submitting = client.submit(body);
      // Back within the first Retry-After (5 s): the second attempt is accepted.
      setTimeout(() => redis.start(), 1500);
      const job = await submitting;
      expect(job.status).toBe("queued");
      expect((await client.job(job.id)).id).toBe(job.id);
      const connection = new Redis(redis.url);
      const queue = createLocalizeQueue(connection, { prefix: config.QUEUE_PREFIX, retentionS: 60 });
      try {
        expect(await queue.getJobCountByTypes("waiting", "active", "delayed", "prioritized")).toBe(1);
      } finally {
        await queue.close();
        await closeRedis(connection);
      }
      // What no wait mends is not asked again.
      await expect(client.submit({ ...body, issue: "" })).rejects.toMatchObject({ status: 422, code: "validation_failed" } satisfies Partial<ServiceRefused>);
    } finally {
      await api.close();
      redis.stop();
    }
  });
});
