import { describe, it, expect, afterEach } from "vitest";
import { connect, type Socket } from "node:net";
import { buildApiServer, type ApiServer } from "../../src/api/build.js";
import { testConfig } from "../helpers/config.js";
import { dropPrefix } from "../helpers/redis.js";
import { PUBLIC_NAMES, scriptedResolver } from "../helpers/resolver.js";

/**
 * A JSON body costs its API key before it is read: a key flooding the API with bodies of the
 * largest size (each refused once read) stalled every other key's requests, and one holding
 * bodies all but sent kept them in the process's memory. Real HTTP, real Redis.
 */
const KEYS = { AUTH_MODE: "api_key", API_KEYS: "alice:key-alice-1234,bob:key-bob-12345" };
const servers: Array<{ api: ApiServer; prefix: string }> = [];
afterEach(async () => {
  for (const { api, prefix } of servers.splice(0)) {
    await api.close();
    await dropPrefix(prefix);
  }
});

async function start(env: Record<string, string>, keys: Record<string, string> = KEYS) {
  const config = testConfig({ ...keys, ...env });
  const api = await buildApiServer(config, { logger: false, resolver: scriptedResolver(PUBLIC_NAMES).resolve });
  servers.push({ api, prefix: config.QUEUE_PREFIX });
  const base = await api.fastify.listen({ port: 0, host: "127.0.0.1" });
  return { base, port: Number(new URL(base).port) };
}

const job = { repo: { url: "https://github.com/psf/requests", commit: "a".repeat(40) }, issue: "Session.request drops the timeout" };
/** Sockets each sending headers and all but the last byte of a body, as `key`; what each was answered, as it comes. */
async function holdBodies(port: number, key: string | undefined, n: number, body: string): Promise<{ sockets: Socket[]; answers: string[] }> {
  const answers: string[] = [];
  const sockets = await Promise.all(
    Array.from({ length: n }, async () => {
      const socket = connect(port, "127.0.0.1");
      socket.on("error", () => undefined);
      socket.on("data", (d: Buffer) => answers.push(d.toString("latin1").split("\r\n")[0]!));
      await new Promise((r) => socket.once("connect", r));
      socket.write(`POST /v1/localize HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n${key ? `authorization: Bearer ${key}\r\n` : ""}content-length: ${body.length}\r\n\r\n${body.slice(0, -1)}`);
      return socket;
    }),
  );
  return { sockets, answers };
}

const post = (base: string, key: string, body: string) =>
  fetch(`${base}/v1/localize`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${key}` }, body });

describe("request bodies charged to their key", () => {
  it("refuses a key's bodies past its bytes a minute before reading them (429, Retry-After), whatever they hold, and not another key's", async () => {
    const { base } = await start({ BODY_MB_PER_MIN: "1" });
    // 2 MB each, refused once read (an unknown field): the budget is one largest body at least (~4.4 MB).
    const big = JSON.stringify({ ...job, padding: "x".repeat(2 << 20) });
    expect((await post(base, "key-alice-1234", big)).status).toBe(422);
    expect((await post(base, "key-alice-1234", big)).status).toBe(422);
    const refused = await post(base, "key-alice-1234", big);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(((await refused.json()) as { error: { message: string } }).error.message).toMatch(/bytes of request bodies a minute for this API key: retry in \d+ s/);
    expect((await post(base, "key-bob-12345", JSON.stringify(job))).status).toBe(202);
  });

  it("holds a key to its bodies at once when they arrive together, gives back the place of a connection cut as it sends, and charges a body sent without a length what it was", async () => {
    const { base, port } = await start({ BODIES_AT_ONCE_PER_KEY: "5", BODY_MB_PER_MIN: "1" });
    const body = JSON.stringify(job);
    // Ten at once: five held, five refused.
    const burst = await holdBodies(port, "key-alice-1234", 10, body);
    const deadline = Date.now() + 10_000;
    while (burst.answers.length < 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(burst.answers).toEqual(Array(5).fill("HTTP/1.1 429 Too Many Requests"));
    for (const s of burst.sockets) s.destroy();
    // Cut as they send, again and again: no place is kept by a connection gone.
    for (let round = 0; round < 4; round++) for (const s of (await holdBodies(port, "key-alice-1234", 10, body)).sockets) s.destroy();
    await new Promise((r) => setTimeout(r, 500));
    // Sent chunked (no length): charged what they hold, not the largest a body may be (~4.4 MB each, the minute's budget).
    for (let i = 0; i < 5; i++) {
      const chunked = await fetch(`${base}/v1/localize`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: "Bearer key-alice-1234" },
        body: new Blob([JSON.stringify({ ...job, issue: `${job.issue} (chunked ${i})` })]).stream(),
        duplex: "half",
      } as RequestInit);
      expect(chunked.status).toBe(202);
    }
  });

  it("charges a body sent without a length what it was however its parsing ends (malformed JSON too)", async () => {
    const { base } = await start({ BODY_MB_PER_MIN: "1" });
    // 1 MB each, chunked, a brace short: refused as it is parsed (400), and counted all the same (the budget: ~4.4 MB).
    const malformed = `${JSON.stringify({ ...job, padding: "x".repeat(1 << 20) }).slice(0, -1)}`;
    const send = () =>
      fetch(`${base}/v1/localize`, { method: "POST", headers: { "content-type": "application/json", authorization: "Bearer key-alice-1234" }, body: new Blob([malformed]).stream(), duplex: "half" } as RequestInit);
    const statuses: number[] = [];
    for (let i = 0; i < 8 && statuses.at(-1) !== 429; i++) {
      statuses.push((await send()).status);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(statuses.slice(0, 4)).toEqual([400, 400, 400, 400]);
    expect(statuses.at(-1)).toBe(429);
  });

  it("charges nothing with AUTH_MODE=off, where every caller is one key", async () => {
    const { base, port } = await start({ BODIES_AT_ONCE_PER_KEY: "1" }, {});
    const held = await holdBodies(port, undefined, 2, JSON.stringify(job));
    await new Promise((r) => setTimeout(r, 300));
    try {
      expect((await fetch(`${base}/v1/localize`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(job) })).status).toBe(202);
      expect(held.answers).toEqual([]);
    } finally {
      for (const s of held.sockets) s.destroy();
    }
  });

  it("refuses a key's body while it is sending its limit of them to the process at once, and takes it again once they end; another key's go on", async () => {
    const { base, port } = await start({ BODIES_AT_ONCE_PER_KEY: "2" });
    const body = JSON.stringify(job);
    // Bodies all but sent: the process holds them until their time runs out.
    const held: Socket[] = [];
    for (let i = 0; i < 2; i++) {
      const socket = connect(port, "127.0.0.1");
      await new Promise((r) => socket.once("connect", r));
      socket.write(`POST /v1/localize HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\nauthorization: Bearer key-alice-1234\r\ncontent-length: ${body.length}\r\n\r\n${body.slice(0, -1)}`);
      held.push(socket);
    }
    // Refused once the process has the two (their headers read): asked until then, each a job of its own.
    let refused: Response | undefined;
    for (let i = 0; i < 50 && refused?.status !== 429; i++) {
      refused = await post(base, "key-alice-1234", JSON.stringify({ ...job, issue: `${job.issue} (${i})` }));
      if (refused.status !== 429) await new Promise((r) => setTimeout(r, 200));
    }
    expect([refused!.status, refused!.headers.get("retry-after")]).toEqual([429, "1"]);
    expect((await post(base, "key-bob-12345", body)).status).toBe(202);
    for (const s of held) s.destroy();
    await new Promise((r) => setTimeout(r, 300));
    expect((await post(base, "key-alice-1234", JSON.stringify({ ...job, issue: `${job.issue} again` }))).status).toBe(202);
  });
});
