import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { randomUUID } from "node:crypto";
import { connect, type AddressInfo } from "node:net";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { buildApiServer, type ApiServer } from "../../src/api/build.js";
import { PUBLIC_NAMES, scriptedResolver } from "../helpers/resolver.js";
import { testConfig } from "../helpers/config.js";
import { dropPrefix } from "../helpers/redis.js";

/**
 * An API process at its cap of MCP sessions (two here), with two keys: one key opening
 * sessions must not lock the other out. The SDK's own client, over real HTTP.
 */
const config = testConfig({ AUTH_MODE: "api_key", API_KEYS: "agent:agent-key-0123456789,other:other-key-0123456789", MCP_MAX_SESSIONS: "2", MCP_UNREAD_ANSWER_S: "1" });
let api: ApiServer;
let base: string;
const clients: Client[] = [];

beforeAll(async () => {
  api = await buildApiServer(config, { logger: false, resolver: scriptedResolver(PUBLIC_NAMES).resolve });
  await api.fastify.listen({ port: 0, host: "127.0.0.1" });
  base = `http://127.0.0.1:${(api.fastify.server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
  await api.close();
  await dropPrefix(config.QUEUE_PREFIX);
});

async function openSession(key: string): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const transport = new StreamableHTTPClientTransport(new URL(`${base}/mcp`), { requestInit: { headers: { authorization: `Bearer ${key}` } } });
  const client = new Client({ name: "codescout-test", version: "1.0.0" });
  await client.connect(transport);
  clients.push(client);
  return { client, transport };
}

/** A POST to /mcp as another key, whose answer its socket (paused) never reads. */
function postUnread(session: string | undefined, body: string) {
  const { port } = new URL(base);
  const socket = connect(Number(port), "127.0.0.1");
  socket.on("error", () => undefined);
  socket.pause();
  socket.write(`POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer other-key-0123456789\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nMcp-Session-Id: ${session}\r\nMcp-Protocol-Version: 2025-06-18\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  return socket;
}

describe("an API process at its cap of MCP sessions", () => {
  it("is not held at the cap by sessions whose clients do not read their (large) answers: only a tool call in progress keeps a session", async () => {
    // A batch of listings with 44 KB ids, echoed back: an answer of ~5 MB its client never reads.
    const body = JSON.stringify(Array.from({ length: 100 }, (_, i) => ({ jsonrpc: "2.0", id: `${i}-${"x".repeat(44_000)}`, method: "tools/list" })));
    const unread = [0, 1].map(() => postUnread(randomUUID(), body));
    try {
      await new Promise((r) => setTimeout(r, 2000));
      const agent = await openSession("agent-key-0123456789");
      expect((await agent.client.listTools()).tools.map((t) => t.name)).toEqual(["localize"]);
    } finally {
      for (const socket of unread) socket.destroy();
    }
  });

  it("cuts an answer its client reads none of, so a tool call among pings with huge ids (busy while its answer waits) does not hold a session at the cap for ever", async () => {
    const pinned = await Promise.all(
      [0, 1].map(async () => {
        // A session of its own first: a call is only taken within one.
        const { transport } = await openSession("other-key-0123456789");
        const body = JSON.stringify([
          { jsonrpc: "2.0", id: "call", method: "tools/call", params: { name: "no_such_tool", arguments: {} } },
          ...Array.from({ length: 99 }, (_, i) => ({ jsonrpc: "2.0", id: `${i}-${"x".repeat(44_000)}`, method: "ping" })),
        ]);
        return postUnread(transport.sessionId, body);
      }),
    );
    try {
      // Cut within its unread time and a check (1 s, a quarter of it): then the sessions are free to close for another key's.
      await new Promise((r) => setTimeout(r, 3000));
      const agent = await openSession("agent-key-0123456789");
      expect((await agent.client.listTools()).tools.map((t) => t.name)).toEqual(["localize"]);
    } finally {
      for (const socket of pinned) socket.destroy();
    }
  });

  it("makes room by closing the session unused longest, which its client's next request makes again, instead of refusing every new one", async () => {
    const agent = await openSession("agent-key-0123456789");
    const id = agent.transport.sessionId;
    expect((await agent.client.listTools()).tools.map((t) => t.name)).toEqual(["localize"]);
    // Another key opens three sessions, one past the cap: each is made.
    for (let i = 0; i < 3; i++) {
      const other = await openSession("other-key-0123456789");
      expect((await other.client.listTools()).tools).toHaveLength(1);
    }
    // The agent's session was the one unused longest; it goes on, under the same id.
    expect((await agent.client.listTools()).tools.map((t) => t.name)).toEqual(["localize"]);
    expect(agent.transport.sessionId).toBe(id);
  });
});
