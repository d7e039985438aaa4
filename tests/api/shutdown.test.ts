import { describe, it, expect, afterAll } from "vitest";
import type { AddressInfo } from "node:net";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { CallToolResultSchema } from "@modelcontextprotocol/sdk/types.js";
import { buildApiServer } from "../../src/api/build.js";
import { PUBLIC_NAMES, scriptedResolver } from "../helpers/resolver.js";
import { testConfig } from "../helpers/config.js";
import { dropPrefix } from "../helpers/redis.js";
import { getEventListeners } from "node:events";
import { ApiShutdown, untilEither } from "../../src/api/shutdown.js";

/**
 * An API stopping (SIGTERM runs the same close) while it holds an agent's calls, on real Redis
 * with no worker behind it, so every job stays queued: its event streams end at once, the calls
 * held for an agent answer with their job as it stands once the grace is over, no job is
 * cancelled, and closing ends instead of waiting on them until the process is killed.
 */
const config = testConfig({ API_SHUTDOWN_GRACE_S: "1", NO_WORKER_WAIT_S: "3600" });
afterAll(async () => {
  await dropPrefix(config.QUEUE_PREFIX);
});

const repo = { url: "https://github.com/psf/requests.git", commit: "091991be0da19de9108dbe5e3752917fea3d7fdc" };
const build = () => buildApiServer(config, { logger: false, resolver: scriptedResolver(PUBLIC_NAMES).resolve });

describe("an API that stops while it holds calls", () => {
  it("ends event streams first, answers held calls with their queued jobs after the grace, cancels none, and closes", async () => {
    const api = await build();
    await api.fastify.listen({ port: 0, host: "127.0.0.1" });
    const base = `http://127.0.0.1:${(api.fastify.server.address() as AddressInfo).port}`;
    const ended: Record<string, number> = {};
    const mark = (what: string) => (ended[what] = performance.now());

    const submit = async (issue: string) => {
      const res = await fetch(`${base}/v1/localize`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ repo, issue }) });
      return ((await res.json()) as { id: string }).id;
    };
    const streamed = await submit("Session.request breaks on binary method names (streamed)");
    const stream = await fetch(`${base}/v1/jobs/${streamed}/events`);
    const reader = stream.body!.getReader();
    await reader.read();
    const streamEnd = (async () => {
      while (!(await reader.read()).done);
      mark("stream");
    })();

    const waited = await submit("Session.request breaks on binary method names (waited)");
    const wait = fetch(`${base}/v1/jobs/${waited}?wait=60`).then(async (r) => (mark("wait"), (await r.json()) as { id: string; status: string }));
    const tool = fetch(`${base}/v1/tools/localize`, {
      method: "POST",
      headers: { "content-type": "application/json", "idempotency-key": "shutdown-tool-call" },
      body: JSON.stringify({ issue: "Session.request breaks on binary method names (tool route)", repo_url: repo.url, commit: repo.commit }),
    }).then(async (r) => (mark("tool"), { status: r.status, body: (await r.json()) as { text: string; is_error: boolean; result: { job_id: string; status: string; error?: { code: string } } } }));
    const client = new Client({ name: "codescout-test", version: "1.0.0" });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${base}/mcp`)));
    const mcp = client
      .callTool({ name: "localize", arguments: { issue: "Session.request breaks on binary method names (MCP)", repo_url: repo.url, commit: repo.commit } }, CallToolResultSchema, { timeout: 60_000 })
      .then((r) => (mark("mcp"), r));
    // Every call is held (no worker takes the jobs); then the API stops.
    await new Promise((r) => setTimeout(r, 500));
    await api.close();
    await streamEnd;

    const toolAnswer = await tool;
    expect(toolAnswer.status).toBe(200);
    expect(toolAnswer.body).toMatchObject({ is_error: true, result: { status: "queued", error: { code: "service_restarting" } } });
    expect(toolAnswer.body.text).toMatch(/^Localization not finished \(the service is restarting; job \S+ is still queued and goes on: make the same call again for its answer\)\.$/);
    expect(await wait).toMatchObject({ id: waited, status: "queued" });
    const mcpAnswer = await mcp;
    expect(mcpAnswer.isError).toBe(true);
    expect(mcpAnswer.structuredContent).toMatchObject({ status: "queued", error: { code: "service_restarting" } });
    const mcpJob = (mcpAnswer.structuredContent as { job_id: string }).job_id;
    await client.close();
    // The streams went first; the held calls waited out the grace.
    expect(ended.stream).toBeLessThan(Math.min(ended.tool!, ended.wait!, ended.mcp!));

    // Another API process reads the jobs: all still queued, none cancelled by the stop.
    const next = await build();
    try {
      for (const id of [streamed, waited, toolAnswer.body.result.job_id, mcpJob]) {
        const res = await next.fastify.inject({ method: "GET", url: `/v1/jobs/${id}` });
        expect(res.json()).toMatchObject({ id, status: "queued" });
      }
    } finally {
      await next.close();
    }
  }, 30_000);
});

describe("a held request's signal", () => {
  /** What the process-long signal keeps of the signals made from it (Node's own record of them), 0 when none. */
  const kept = (signal: AbortSignal) => {
    const sym = Object.getOwnPropertySymbols(signal).find((s) => s.description === "kDependantSignals");
    return sym ? ((signal as unknown as Record<symbol, Set<unknown> | undefined>)[sym]?.size ?? 0) : 0;
  };

  it("ends with the request or the API, and the API's keeps nothing of it once the request is done", () => {
    const api = new AbortController();
    for (let i = 0; i < 1000; i++) {
      const request = new AbortController();
      const until = untilEither(request.signal, api.signal);
      if (i === 0) {
        request.abort();
        expect(until.signal.aborted).toBe(true);
      }
      until.dispose();
    }
    expect(getEventListeners(api.signal, "abort")).toHaveLength(0);
    expect(kept(api.signal)).toBe(0);
    const held = untilEither(new AbortController().signal, api.signal);
    api.abort();
    expect(held.signal.aborted).toBe(true);
    // What AbortSignal.any did on Node 20, where the API's signal kept one per request for ever.
    const other = new AbortController();
    for (let i = 0; i < 10; i++) AbortSignal.any([new AbortController().signal, other.signal]);
    if (process.versions.node.startsWith("20.")) expect(kept(other.signal)).toBe(10);
  });

  it("holds many requests on the API's signals without Node's warning of a leak (which misled operators past ten)", async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on("warning", onWarning);
    try {
      const shutdown = new ApiShutdown();
      const held = Array.from({ length: 50 }, () => untilEither(new AbortController().signal, shutdown.closing));
      await new Promise((r) => setImmediate(r));
      expect(warnings.filter((w) => w === "MaxListenersExceededWarning")).toEqual([]);
      for (const h of held) h.dispose();
    } finally {
      process.off("warning", onWarning);
    }
  });
});
