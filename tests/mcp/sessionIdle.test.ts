import { describe, it, expect, beforeAll, afterAll } from "vitest";
import type { AddressInfo } from "node:net";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { CallToolResultSchema } from "@modelcontextprotocol/sdk/types.js";
import { buildApiServer, type ApiServer } from "../../src/api/build.js";
import { testConfig } from "../helpers/config.js";
import { makeGitFixture, type GitFixture } from "../helpers/gitFixture.js";
import { dropPrefix } from "../helpers/redis.js";

/**
 * Sessions idle past MCP_SESSION_IDLE_S (its least, 10 s) are closed; one with a call in
 * progress is not idle, however long its job waits (no worker here: a backlog).
 */
const config = testConfig({ MCP_SESSION_IDLE_S: "10", NO_WORKER_WAIT_S: "3600", ALLOW_FILE_URLS: "true" });
let api: ApiServer;
let base: string;
let repo: GitFixture;

beforeAll(async () => {
  repo = makeGitFixture();
  api = await buildApiServer(config, { logger: false });
  await api.fastify.listen({ port: 0, host: "127.0.0.1" });
  base = `http://127.0.0.1:${(api.fastify.server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await api.close();
  repo.cleanup();
  await dropPrefix(config.QUEUE_PREFIX);
});

describe("an MCP session's idle time", () => {
  it("does not run while a call is held: the call's job stays queued past the idle time, and its call goes on", async () => {
    const client = new Client({ name: "codescout-test", version: "1.0.0" });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${base}/mcp`)));
    let job: string | undefined;
    const call = client
      .callTool({ name: "localize", arguments: { issue: "helper returns 42", repo_url: repo.url, commit: repo.commits[0]!, policy: "baseline" } }, CallToolResultSchema, {
        timeout: 120_000,
        onprogress: (p) => (job ??= /job ([0-9a-f-]{36})/.exec(p.message ?? "")?.[1]),
      })
      .then(
        () => "answered",
        (err: unknown) => `failed: ${String(err)}`,
      );
    // Two sweeps (every 10 s) pass with the session's last request 20 s old.
    await new Promise((r) => setTimeout(r, 21_000));
    expect(job).toBeDefined();
    expect(((await (await fetch(`${base}/v1/jobs/${job}`)).json()) as { status: string }).status).toBe("queued");
    expect(await Promise.race([call, new Promise((r) => setTimeout(() => r("pending"), 100))])).toBe("pending");
    await client.close();
  }, 60_000);
});
