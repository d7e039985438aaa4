import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { execFileSync } from "node:child_process";
import { createServer, type Server } from "node:http";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { pino } from "pino";
import { buildApiServer, type ApiServer } from "../../src/api/build.js";
import { createRedis } from "../../src/queue/connection.js";
import { createLocalizeQueue, enqueueLocalize, type LocalizeQueue } from "../../src/queue/producer.js";
import { gitConfigEnv, runGit, transportConfig } from "../../src/repos/git.js";
import { startWorker, type RunningWorker } from "../../src/worker/build.js";
import { testConfig } from "../helpers/config.js";
import { makeGitFixture, type GitFixture } from "../helpers/gitFixture.js";
import { startGitHttpServer, type GitHttpServer } from "../helpers/gitHttp.js";
import { dropPrefix } from "../helpers/redis.js";
import { scriptedResolver, type ScriptedResolver } from "../helpers/resolver.js";

/**
 * No URL a client sends makes the service reach its own network. Real git against git's own
 * http-backend on 127.0.0.1 (the "internal" service an attacker wants to reach), a "public"
 * host on an address added to this machine's loopback interface, the real API and worker
 * in-process with a resolver the test controls. Every case asserts that the internal
 * backend received no request at all, not only that the job failed.
 */
const PUBLIC_IP = "11.22.33.44";
const TOKEN = "tok-never-follows-a-redirect";
let addedAlias = false;
let fx: GitFixture;
let root: string;
let internal: GitHttpServer;
let publicGit: GitHttpServer;
let redirecting: GitHttpServer;
let metadataRedirect: GitHttpServer;
let hooksInternal: Server;
let hooksPublic: Server;
const hookHits = { internal: 0, public: 0 };
let dns: ScriptedResolver;
let api: ApiServer;
let worker: RunningWorker;
let queue: LocalizeQueue;
const config = testConfig({
  ALLOW_HTTP_URLS: "true",
  ALLOW_FILE_URLS: "false",
  DNS_TIMEOUT_MS: "300",
  WEBHOOK_SECRET: "security-webhook-secret-0123",
  WEBHOOK_MAX_ATTEMPTS: "1",
  SECRET_KEY: "security-test-secret-key-0123456789abcdef",
});

async function listen(server: Server, host: string): Promise<number> {
  await new Promise<void>((r) => server.listen(0, host, r));
  return (server.address() as { port: number }).port;
}

beforeAll(async () => {
  // A "public" address on this machine: routable locally, outside every blocked range.
  if (!execFileSync("ip", ["-4", "addr", "show", "dev", "lo"], { encoding: "utf8" }).includes(`${PUBLIC_IP}/32`)) {
    execFileSync("ip", ["addr", "add", `${PUBLIC_IP}/32`, "dev", "lo"]);
    addedAlias = true;
  }
  fx = makeGitFixture();
  root = mkdtempSync(join(tmpdir(), "codescout-security-"));
  execFileSync("git", ["clone", "-q", "--bare", fx.dir, join(root, "repo.git")]);
  internal = await startGitHttpServer({ root });
  publicGit = await startGitHttpServer({ root, host: PUBLIC_IP });
  redirecting = await startGitHttpServer({ root, host: PUBLIC_IP, redirectTo: `http://127.0.0.1:${internal.port}` });
  metadataRedirect = await startGitHttpServer({ root, host: PUBLIC_IP, redirectTo: "http://169.254.169.254/latest/meta-data" });
  hooksInternal = createServer((_q, s) => void (hookHits.internal++, s.writeHead(200).end()));
  hooksPublic = createServer((_q, s) => void (hookHits.public++, s.writeHead(200).end()));
  const hookInternalPort = await listen(hooksInternal, "127.0.0.1");
  const hookPublicPort = await listen(hooksPublic, PUBLIC_IP);
  dns = scriptedResolver({
    "git.public.test": [[PUBLIC_IP]],
    "rebind.test": [[PUBLIC_IP], ["127.0.0.1"]],
    "redirect.public.test": [[PUBLIC_IP]],
    "internal.test": [["10.0.0.5"]],
    "mapped.test": [["::ffff:169.254.169.254"]],
    "nat64.test": [["64:ff9b::a9fe:a9fe"]],
    "mixed.test": [["93.184.215.14", "127.0.0.1"]],
    "slow.test": ["hang"],
    "hook.rebind.test": [[PUBLIC_IP], ["127.0.0.1"]],
    "hook.public.test": [[PUBLIC_IP]],
  });
  Object.assign(hookPorts, { internal: hookInternalPort, public: hookPublicPort });
  api = await buildApiServer(config, { logger: false, resolver: dns.resolve });
  worker = await startWorker(config, { logger: pino({ level: "silent" }), resolver: dns.resolve });
  queue = createLocalizeQueue(createRedis(config.REDIS_URL, "producer"), { prefix: config.QUEUE_PREFIX, retentionS: 600 });
}, 60_000);

const hookPorts = { internal: 0, public: 0 };

afterAll(async () => {
  await worker?.close();
  await api?.close();
  await queue?.close();
  await Promise.all([internal, publicGit, redirecting, metadataRedirect].map((s) => s?.close()));
  hooksInternal?.close();
  hooksPublic?.close();
  if (addedAlias) execFileSync("ip", ["addr", "del", `${PUBLIC_IP}/32`, "dev", "lo"]);
  fx?.cleanup();
  rmSync(root, { recursive: true, force: true });
  await dropPrefix(config.QUEUE_PREFIX);
});

const post = (repo: Record<string, string>, extra: Record<string, unknown> = {}) =>
  api.fastify.inject({ method: "POST", url: "/v1/localize", payload: { repo, issue: "parse drops values", options: { policy: "baseline" }, ...extra } });

const job = async (id: string, wait = 30) => (await api.fastify.inject({ method: "GET", url: `/v1/jobs/${id}?wait=${wait}` })).json();

/** A job put straight on the queue, as a compromised or buggy API could: the worker must refuse on its own. */
async function enqueued(url: string): Promise<{ status: string; error: { code: string; message: string } | null }> {
  const jobId = randomUUID();
  await enqueueLocalize(queue, { jobId, repo: { url, commit: "main" }, issue: "x", options: { policy: "baseline" }, owner: "anonymous", submittedAt: new Date().toISOString() });
  return job(jobId);
}

describe("repository URLs that lead back into the service's network", () => {
  const p = () => internal.port;
  const spellings = () => [
    `http://localhost.:${p()}/repo.git`,
    `http://LOCALHOST:${p()}/repo.git`,
    `http://sub.localhost:${p()}/repo.git`,
    `http://ⓛⓞⓒⓐⓛⓗⓞⓢⓣ:${p()}/repo.git`,
    `http://127.0.0.1:${p()}/repo.git`,
    `http://127.1:${p()}/repo.git`,
    `http://0177.0.0.1:${p()}/repo.git`,
    `http://0x7f.1:${p()}/repo.git`,
    `http://0x7f000001:${p()}/repo.git`,
    `http://2130706433:${p()}/repo.git`,
    `http://017700000001:${p()}/repo.git`,
    `http://0:${p()}/repo.git`,
    `http://0.0.0.0:${p()}/repo.git`,
    `http://[::1]:${p()}/repo.git`,
    `http://[::]:${p()}/repo.git`,
    `http://[::ffff:127.0.0.1]:${p()}/repo.git`,
    `http://[::ffff:7f00:1]:${p()}/repo.git`,
    `http://[0:0:0:0:0:ffff:7f00:1]:${p()}/repo.git`,
    `http://[::ffff:0:7f00:1]:${p()}/repo.git`, // IPv4-translated (SIIT)
    `http://[::ffff:0:10.0.0.1]:${p()}/repo.git`,
    `http://[::127.0.0.1]:${p()}/repo.git`,
    `http://[64:ff9b::7f00:1]:${p()}/repo.git`,
    `http://[2002:7f00:1::1]:${p()}/repo.git`,
    `http://[fe80::1]:${p()}/repo.git`,
    `http://[fc00::1]:${p()}/repo.git`,
    `http://[ff02::1]:${p()}/repo.git`,
    `http://[2001:db8::1]:${p()}/repo.git`,
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.1/repo.git",
    "http://172.16.0.1/repo.git",
    "http://192.168.1.1/repo.git",
    "http://100.64.0.1/repo.git",
    "http://192.0.0.1/repo.git",
    "http://192.0.2.1/repo.git",
    "http://198.18.0.1/repo.git",
    "http://198.51.100.1/repo.git",
    "http://203.0.113.1/repo.git",
    "http://224.0.0.1/repo.git",
    "http://240.0.0.1/repo.git",
    "http://255.255.255.255/repo.git",
    `http://internal.test:${p()}/repo.git`,
    `http://mapped.test:${p()}/repo.git`,
    `http://nat64.test:${p()}/repo.git`,
    `http://mixed.test:${p()}/repo.git`,
  ];

  it("refuses every spelling at the API (422 on repo.url) and again at the worker, and git never connects", async () => {
    for (const url of spellings()) {
      const res = await post({ url, commit: "main" });
      expect(res.statusCode, url).toBe(422);
      expect(res.json().error.field, url).toBe("repo.url");
    }
    for (const url of spellings()) {
      const end = await enqueued(url);
      expect(end.status, url).toBe("failed");
      expect(end.error!.code, `${url}: ${end.error?.message}`).toBe("invalid_repository");
      expect(end.error!.message, url).toMatch(/private|loopback|reserved|not a valid host/);
    }
    expect(internal.requests).toEqual([]);
  });

  it("refuses git's other transports at the API and the worker, and git itself refuses them even if one slips through", async () => {
    const marker = join(tmpdir(), `codescout-pwned-${randomUUID()}`);
    const forms = [`ext::sh -c touch% ${marker}`, "fd::17", `ssh://git@127.0.0.1:${internal.port}/repo.git`, `git://127.0.0.1:${internal.port}/repo.git`, "git@127.0.0.1:repo.git", `file://${root}/repo.git`];
    for (const url of forms) {
      expect((await post({ url, commit: "main" })).statusCode, url).toBe(422);
      expect((await enqueued(url)).error?.code, url).toBe("invalid_repository");
    }
    // The transport allow-list the worker hands git, tried on git directly.
    const env = gitConfigEnv(transportConfig({ http: false, file: false }));
    for (const url of [`ext::sh -c touch% ${marker}`, "fd::17", `ssh://git@127.0.0.1:${internal.port}/repo.git`, `http://127.0.0.1:${internal.port}/repo.git`, `file://${root}/repo.git`]) {
      await expect(runGit(["ls-remote", "--", url], { env, timeoutMs: 10_000 }), url).rejects.toThrow(/transport .* not allowed|not allowed/);
    }
    expect(existsSync(marker)).toBe(false);
    expect(internal.requests).toEqual([]);
  });

  it("pins the checked address for git: a name only the service's resolver knows is fetched from exactly that address", async () => {
    const res = await post({ url: `http://git.public.test:${publicGit.port}/repo.git`, commit: "main" });
    expect(res.statusCode).toBe(202);
    const end = await job(res.json().id, 60);
    expect(end.status).toBe("succeeded");
    expect(publicGit.requests.length).toBeGreaterThan(0);
    expect(internal.requests).toEqual([]);
  });

  it("refuses a name that answers a public address first and loopback next (DNS rebinding)", async () => {
    const res = await post({ url: `http://rebind.test:${internal.port}/repo.git`, commit: "main" });
    expect(res.statusCode).toBe(202);
    const end = await job(res.json().id);
    expect(end.error, JSON.stringify(end.error)).toMatchObject({ code: "invalid_repository" });
    expect(end.error.message).toMatch(/rebind\.test resolves to a private, loopback, link-local or reserved address \(127\.0\.0\.1\)/);
    expect(dns.lookups.filter((h) => h === "rebind.test")).toHaveLength(2);
    expect(internal.requests).toEqual([]);
  });

  it("does not follow redirects, to loopback or to the metadata address, and the token goes nowhere else", async () => {
    const res = await post({ url: `http://redirect.public.test:${redirecting.port}/repo.git`, commit: "main", token: TOKEN });
    expect(res.statusCode).toBe(202);
    const end = await job(res.json().id);
    expect(end.status).toBe("failed");
    expect(end.error.code).toBe("repository_unavailable");
    // As a renamed repository's old address answers: the message says to give the new one.
    expect(end.error.message).toContain("the host says the repository moved");
    expect(redirecting.requests.length).toBeGreaterThan(0);
    expect(internal.requests).toEqual([]);

    const meta = await post({ url: `http://git.public.test:${metadataRedirect.port}/repo.git`, commit: "main" });
    expect((await job(meta.json().id)).status).toBe("failed");
    expect(metadataRedirect.requests.length).toBeGreaterThan(0);
    expect(internal.requests).toEqual([]);
  });

  it("fails closed when a name does not resolve, or resolves too slowly", async () => {
    const nx = await post({ url: "https://nxdomain.test/repo.git", commit: "main" });
    expect(nx.statusCode).toBe(422);
    expect(nx.json().error.message).toMatch(/does not resolve/);
    const slow = await post({ url: "https://slow.test/repo.git", commit: "main" });
    expect(slow.statusCode).toBe(422);
    expect(slow.json().error.message).toMatch(/did not resolve within 300 ms/);
    for (const [url, why] of [
      ["https://nxdomain.test/repo.git", /does not resolve/],
      ["https://slow.test/repo.git", /did not resolve within/],
    ] as const) {
      const end = await enqueued(url);
      expect(end.error, url).toMatchObject({ code: "repository_unavailable" });
      expect(end.error!.message).toMatch(why);
    }
  });
});

describe("webhook URLs", () => {
  it("re-checks and pins the callback at delivery: a rebinding name delivers nothing, a public one is delivered to its checked address", async () => {
    const commit = fx.commits[0]!;
    const rebind = await post({ url: `http://git.public.test:${publicGit.port}/repo.git`, commit }, { callback_url: `http://hook.rebind.test:${hookPorts.internal}/hook`, options: { policy: "baseline", cache: false } });
    expect(rebind.statusCode).toBe(202);
    const good = await post({ url: `http://git.public.test:${publicGit.port}/repo.git`, commit }, { callback_url: `http://hook.public.test:${hookPorts.public}/hook`, options: { policy: "baseline", cache: false } });
    expect(good.statusCode).toBe(202);
    await job(rebind.json().id, 60);
    await job(good.json().id, 60);
    // Both deliveries tried: the public one's hit, and the rebinding one's name asked again (the two are delivered apart, in either order).
    const rebindLookups = () => dns.lookups.filter((h) => h === "hook.rebind.test").length;
    await new Promise<void>((resolve, reject) => {
      const deadline = Date.now() + 20_000;
      const tick = () => (hookHits.public > 0 && rebindLookups() >= 2 ? resolve() : Date.now() > deadline ? reject(new Error("no delivery")) : setTimeout(tick, 100));
      tick();
    });
    // Time for a wrongly pinned delivery to reach the internal address after its lookup.
    await new Promise((r) => setTimeout(r, 500));
    expect(hookHits.public).toBe(1);
    expect(hookHits.internal).toBe(0);
    expect(dns.lookups.filter((h) => h === "hook.rebind.test").length).toBeGreaterThanOrEqual(2);
  });
});
