import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { spawn } from "node:child_process";
import { request as httpRequest, Agent } from "node:http";
import { resolve } from "node:path";
import type { AddressInfo } from "node:net";
import { buildApiServer, type ApiServer } from "../../src/api/build.js";
import { ServiceClient } from "../../src/client/service.js";
import { PUBLIC_NAMES, scriptedResolver } from "../helpers/resolver.js";
import { testConfig } from "../helpers/config.js";
import { dropPrefix } from "../helpers/redis.js";
import { Redis } from "ioredis";

/**
 * A client that hangs up: the call it made is cancelled however early it went (the API's own
 * checks of the request, here a slow DNS answer for the repository's host, come before the job
 * is followed), and the requests a kept-alive connection carries one after another leave nothing
 * behind on it. A real API on real Redis, no worker behind it; its resolver answers github.com
 * after 400 ms. The `localize` CLI, interrupted, cancels its job before it exits.
 */
const config = testConfig({ NO_WORKER_WAIT_S: "3" });
const resolver = scriptedResolver(PUBLIC_NAMES);
let api: ApiServer;
let port: number;

beforeAll(async () => {
  api = await buildApiServer(config, { logger: false, resolver: async (host) => (await new Promise((r) => setTimeout(r, 400)), resolver.resolve(host)) });
  await api.fastify.listen({ port: 0, host: "127.0.0.1" });
  port = (api.fastify.server.address() as AddressInfo).port;
});
afterAll(async () => {
  await api.close();
  await dropPrefix(config.QUEUE_PREFIX);
});

const call = { issue: "Session.request breaks on binary method names", repo_url: "https://github.com/psf/requests.git", commit: "091991be0da19de9108dbe5e3752917fea3d7fdc" };

/** POSTs a tool call and returns its parsed body (or, with `hangUpAfterMs`, hangs up then and returns null). */
function toolCall(key: string | undefined, options: { agent?: Agent; hangUpAfterMs?: number } = {}): Promise<{ result: { status: string; error?: { code: string } } } | null> {
  return new Promise((done, fail) => {
    const headers = { "content-type": "application/json", ...(key ? { "idempotency-key": key } : {}) };
    const req = httpRequest({ port, host: "127.0.0.1", method: "POST", path: "/v1/tools/localize", agent: options.agent, headers }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (c: string) => (body += c)).on("end", () => done(JSON.parse(body)));
    });
    req.on("error", (err) => (options.hangUpAfterMs !== undefined ? done(null) : fail(err)));
    req.end(JSON.stringify(call));
    if (options.hangUpAfterMs !== undefined) setTimeout(() => req.destroy(), options.hangUpAfterMs);
  });
}

describe("a client that hangs up", () => {
  it("has its call's job cancelled even when it hung up before the job was queued, and a kept-alive connection's calls leave no listener behind", async () => {
    // Gone while the API still resolves the repository's host: the job is queued after that, and
    // cancelled then, not left queued until nobody took it (no_worker, 3 s).
    expect(await toolCall(undefined, { hangUpAfterMs: 100 })).toBeNull();
    await new Promise((r) => setTimeout(r, 1000));
    const redis = new Redis(config.REDIS_URL);
    try {
      const ended = await Promise.all((await redis.keys(`${config.QUEUE_PREFIX}:localize:static:*`)).map(async (k) => JSON.parse((await redis.get(k))!) as { status: string; error: { code: string } }));
      expect(ended).toMatchObject([{ status: "cancelled", error: { code: "cancelled" } }]);
    } finally {
      redis.disconnect();
    }
    // With an Idempotency-Key a retry may come: the job is left for it, and the same call again
    // follows it to its end (here: nobody took it, no_worker).
    expect(await toolCall("gone-early", { hangUpAfterMs: 100 })).toBeNull();
    const again = await toolCall("gone-early");
    expect(again?.result).toMatchObject({ status: "cancelled", error: { code: "no_worker" } });

    // Twelve calls in a row on one connection, each answered at once (the job has ended).
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on("warning", onWarning);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let i = 0; i < 12; i++) expect((await toolCall("gone-early", { agent }))?.result.status).toBe("cancelled");
      await new Promise((r) => setTimeout(r, 100));
    } finally {
      agent.destroy();
      process.off("warning", onWarning);
    }
    expect(warnings).not.toContain("MaxListenersExceededWarning");
  });
});

describe("the REST client, given up on its job (the CLI's Ctrl-C, codescout-mcp's cancellation)", () => {
  it("has the job cancelled by the time its follow returns", async () => {
    const client = new ServiceClient(`http://127.0.0.1:${port}`);
    const view = await client.submit({ repo: { url: call.repo_url, commit: call.commit }, issue: "given up on" });
    const stop = new AbortController();
    const followed = client.follow(view, { signal: stop.signal, onEvent: (e) => e.type === "queued" && stop.abort() });
    expect((await followed).status).toBe("cancelled");
    // What a process that exits on that answer leaves behind: the job itself says so.
    expect(await client.job(view.id)).toMatchObject({ status: "cancelled", error: { code: "cancelled" } });
  });
});

describe("the localize CLI, interrupted", () => {
  // Bundled, in one process; and run from the sources through tsx, where the terminal's Ctrl-C
  // reaches the whole process group (the parent and the CLI) and the parent forwards it too.
  it.each([
    ["bundled", {}],
    ["from the sources", { CODESCOUT_FROM_SOURCE: "1" }],
  ])("cancels its job before it exits (%s)", async (_, extraEnv) => {
    const cli = spawn(process.execPath, [resolve("bin/localize.mjs"), "--api", `http://127.0.0.1:${port}`, "--repo", call.repo_url, "--commit", call.commit, "--issue", "Ctrl-C while it waits"], {
      env: { ...process.env, CODESCOUT_API_KEY: "", ...extraEnv },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    let err = "";
    const queued = await new Promise<string>((done, fail) => {
      cli.stderr.setEncoding("utf8").on("data", (c: string) => {
        err += c;
        const m = /job (\S+) queued/.exec(err);
        if (m) done(m[1]!);
      });
      cli.on("exit", () => fail(new Error(`the CLI exited before its job was queued: ${err}`)));
    });
    const exited = new Promise<number | null>((done) => cli.on("exit", (code) => done(code)));
    // As a terminal sends it: to the process group.
    process.kill(-cli.pid!, "SIGINT");
    expect(await exited).toBe(1);
    // Read at once, well before nobody-took-it (3 s) would end it.
    const job = (await (await fetch(`http://127.0.0.1:${port}/v1/jobs/${queued}`)).json()) as { status: string; error: { code: string } | null };
    expect(job).toMatchObject({ status: "cancelled", error: { code: "cancelled" } });
  });
});
