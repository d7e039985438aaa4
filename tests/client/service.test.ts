import { afterAll, describe, expect, it } from "vitest";
import { Redis } from "ioredis";
import { buildApiServer } from "../../src/api/build.js";
import { ServiceClient, ServiceUnreachable, type ServiceRefused } from "../../src/client/service.js";
import { closeRedis } from "../../src/queue/connection.js";
import { createLocalizeQueue } from "../../src/queue/producer.js";
import { testConfig } from "../helpers/config.js";
import { dropPrefix, ownRedis } from "../helpers/redis.js";
import { PUBLIC_NAMES, scriptedResolver } from "../helpers/resolver.js";
import { freePort } from "../helpers/processes.js";
import { tarOf } from "../helpers/tarball.js";

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

  it("follows a job through a restart of the API: the stream drops, the service is unreachable for a while, the stream resumes once it is back", async () => {
    const first = await buildApiServer(config, { logger: false, resolver: scriptedResolver(PUBLIC_NAMES).resolve });
    const url = await first.fastify.listen({ port: 0, host: "127.0.0.1" });
    const port = Number(new URL(url).port);
    const client = new ServiceClient(url);
    const job = await client.submit(body);
    const events: string[] = [];
    const following = client.follow(job, { onEvent: (e) => events.push(e.type) });
    // The stream is open (no worker here: the job stays queued), then the API process goes
    // away as a killed one does: its connections cut, nothing more said.
    await new Promise((r) => setTimeout(r, 500));
    first.fastify.server.closeAllConnections();
    await first.close();
    await new Promise((r) => setTimeout(r, 2500));
    const second = await buildApiServer(config, { logger: false, resolver: scriptedResolver(PUBLIC_NAMES).resolve });
    try {
      await second.fastify.listen({ port, host: "127.0.0.1" });
      // The job ends while the client holds a GET open on the new process.
      await new Promise((r) => setTimeout(r, 1500));
      await new ServiceClient(url).cancel(job.id);
      const ended = await following;
      expect(ended).toMatchObject({ id: job.id, status: "cancelled" });
      // The stream was resumed on the new process after the last event seen: the job's end came
      // on it, and nothing was said twice.
      expect(events).toEqual(["queued", "cancelled"]);
    } finally {
      await second.close();
    }
  });

  it("waits out a restart of a service that answered it before, on a submission and an upload, and says at once that one never reached cannot be", async () => {
    const first = await buildApiServer(config, { logger: false, resolver: scriptedResolver(PUBLIC_NAMES).resolve });
    const url = await first.fastify.listen({ port: 0, host: "127.0.0.1" });
    const port = Number(new URL(url).port);
    const client = new ServiceClient(url);
    await client.submit({ ...body, issue: `${body.issue} (before the restart)` });
    await first.close();
    // Down for two seconds, as a deploy's restart is: the calls made meanwhile are answered once it is back.
    let second: Awaited<ReturnType<typeof buildApiServer>> | undefined;
    const restarted = new Promise<void>((done) =>
      setTimeout(async () => {
        second = await buildApiServer(config, { logger: false, resolver: scriptedResolver(PUBLIC_NAMES).resolve });
        await second.fastify.listen({ port, host: "127.0.0.1" });
        done();
      }, 2000),
    );
    try {
      const [job, upload] = await Promise.all([
        client.submit({ ...body, issue: `${body.issue} (during the restart)` }),
        client.sendUpload(async () => tarOf([{ name: "app/main.py", body: "def main():\n    return 0\n" }], { gzip: true })),
      ]);
      expect(job.status).toBe("queued");
      expect(upload.files).toBe(1);
      expect(client.reached).toBe(true);
      // Never answered: not a restart, and said at once.
      const never = new ServiceClient(`http://127.0.0.1:${await freePort()}`);
      const t = Date.now();
      await expect(never.submit(body)).rejects.toBeInstanceOf(ServiceUnreachable);
      expect(Date.now() - t).toBeLessThan(1_000);
      expect(never.reached).toBe(false);
    } finally {
      await restarted;
      await second?.close();
    }
  });

  it("does not ride out what is not passing: a job the service does not know", async () => {
    const api = await buildApiServer(config, { logger: false, resolver: scriptedResolver(PUBLIC_NAMES).resolve });
    try {
      const client = new ServiceClient(await api.fastify.listen({ port: 0, host: "127.0.0.1" }));
      const job = await client.submit(body);
      await expect(client.follow({ ...job, id: "0".repeat(32) })).rejects.toMatchObject({ status: 404 });
    } finally {
      await api.close();
    }
  });
});
