import { execFileSync } from "node:child_process";
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { readFileSync } from "node:fs";
import { connect, createServer as createNetServer, type AddressInfo } from "node:net";
import { buildApiServer, type ApiServer } from "../../src/api/build.js";
import { PUBLIC_NAMES, scriptedResolver } from "../helpers/resolver.js";
import { renderOpenAiTool } from "../../src/cli/openaiTool.js";
import { renderOpenApi } from "../../src/api/openapiDocument.js";
import { jobSchema } from "../../src/api/schemas.js";
import { loadConfig } from "../../src/config/env.js";
import { testConfig } from "../helpers/config.js";
import { dropPrefix, ownRedis } from "../helpers/redis.js";

const config = testConfig();
let api: ApiServer;

beforeAll(async () => {
  api = await buildApiServer(config, { logger: false, resolver: scriptedResolver(PUBLIC_NAMES).resolve });
});
afterAll(async () => {
  await api.close();
  await dropPrefix(config.QUEUE_PREFIX);
});

const validBody = {
  repo: { url: "https://github.com/psf/requests.git", commit: "091991be0da19de9108dbe5e3752917fea3d7fdc" },
  issue: "Session.request breaks on binary method names",
};

describe("POST /v1/localize", () => {
  it("queues a job, answers 202 with its id, and GET /v1/jobs/:id reads it back", async () => {
    const res = await api.fastify.inject({ method: "POST", url: "/v1/localize", payload: validBody });
    expect(res.statusCode).toBe(202);
    const job = res.json();
    expect(job).toMatchObject({ status: "queued", repo: validBody.repo, result: null, error: null });
    expect(res.headers.location).toBe(`/v1/jobs/${job.id}`);

    const got = await api.fastify.inject({ method: "GET", url: `/v1/jobs/${job.id}` });
    expect(got.statusCode).toBe(200);
    expect(got.json()).toMatchObject({ id: job.id, status: "queued" });
  });

  it("serves POST /localize as the same operation", async () => {
    const res = await api.fastify.inject({ method: "POST", url: "/localize", payload: validBody });
    expect(res.statusCode).toBe(202);
    expect(res.json().status).toBe("queued");
  });

  it("refuses the model's policy where no model server is configured, naming the field, and queues nothing", async () => {
    const res = await api.fastify.inject({ method: "POST", url: "/v1/localize", payload: { ...validBody, options: { policy: "codescout" } } });
    expect(res.statusCode).toBe(422);
    expect(res.json().error).toMatchObject({ code: "model_disabled", field: "options.policy" });
    expect(res.json().error.message).toContain("MODEL_BASE_URL is not set");
  });

  it("refuses an issue that is only a reference to one, and takes one that says anything, or points at code", async () => {
    for (const issue of ["Fix https://github.com/psf/requests/issues/6000", "see #123", "(https://code.djangoproject.com/ticket/30408)"]) {
      const res = await api.fastify.inject({ method: "POST", url: "/v1/localize", payload: { ...validBody, issue } });
      expect(res.statusCode, issue).toBe(422);
      expect(res.json().error).toMatchObject({ code: "issue_is_a_reference", field: "issue" });
      expect(res.json().error.message).toContain("the service follows no link: send the issue's title and text");
    }
    for (const issue of ["Sessions leak sockets, see https://github.com/psf/requests/issues/6000", "Regression https://github.com/psf/requests/commit/abc1234", "https://github.com/psf/requests/blob/main/src/requests/models.py#L401"]) {
      const res = await api.fastify.inject({ method: "POST", url: "/v1/localize", payload: { ...validBody, issue } });
      expect(res.statusCode, issue).toBe(202);
    }
  });

  it("reads a remote written for ssh (as `git remote get-url` prints it) as its https form, and refuses one with a password", async () => {
    const https = "https://github.com/psf/requests.git";
    for (const url of ["git@github.com:psf/requests.git", "ssh://git@github.com:2222/psf/requests.git", "git+ssh://github.com/psf/requests.git", "git://github.com/psf/requests.git"]) {
      const res = await api.fastify.inject({ method: "POST", url: "/v1/localize", payload: { ...validBody, repo: { ...validBody.repo, url } } });
      expect(res.statusCode, url).toBe(202);
      expect(res.json().repo.url, url).toBe(https);
    }
    // One spelling per repository: without a trailing slash, and GitHub's with `.git`.
    for (const url of ["https://github.com/psf/requests", "https://github.com/psf/requests/", "https://github.com/psf/requests.git/"]) {
      const spelled = await api.fastify.inject({ method: "POST", url: "/v1/localize", payload: { ...validBody, issue: `${validBody.issue} (${url})`, repo: { ...validBody.repo, url } } });
      expect([url, spelled.statusCode, spelled.json().repo.url]).toEqual([url, 202, https]);
    }
    const other = await api.fastify.inject({ method: "POST", url: "/v1/localize", payload: { ...validBody, issue: `${validBody.issue} (elsewhere)`, repo: { ...validBody.repo, url: "https://example.com/git/tool/" } } });
    expect(other.json().repo.url).toBe("https://example.com/git/tool");
    // Azure DevOps' addresses as its clone button and `git remote get-url` give them.
    for (const [url, as] of [
      ["git@ssh.dev.azure.com:v3/myorg/proj/repo", "https://dev.azure.com/myorg/proj/_git/repo"],
      ["https://myorg@dev.azure.com/myorg/proj/_git/repo", "https://dev.azure.com/myorg/proj/_git/repo"],
      ["https://MyOrg@dev.azure.com/myorg/proj/_git/repo", "https://dev.azure.com/myorg/proj/_git/repo"],
    ]) {
      const azure = await api.fastify.inject({ method: "POST", url: "/v1/localize", payload: { ...validBody, issue: `${validBody.issue} ${url}`, repo: { ...validBody.repo, url } } });
      expect([url, azure.statusCode, azure.json().repo?.url ?? azure.json().error]).toEqual([url, 202, as]);
    }
    // A user name that is not the organization's may be a token (GitHub takes one so): refused.
    const token = await api.fastify.inject({ method: "POST", url: "/v1/localize", payload: { ...validBody, repo: { ...validBody.repo, url: "https://ghp_abc123@github.com/psf/requests.git" } } });
    expect([token.statusCode, token.json().error.field]).toEqual([422, "repo.url"]);
    // A page of the repository (a branch's, a file's) names the repository's address to give instead.
    for (const [url, as] of [
      ["https://github.com/psf/requests/tree/main", "https://github.com/psf/requests.git"],
      ["https://github.com/psf/requests/blob/main/src/requests/models.py", "https://github.com/psf/requests.git"],
      ["https://example.com/group/sub/project/-/tree/main", "https://example.com/group/sub/project.git"],
      ["https://github.com./psf/requests/tree/main", "https://github.com/psf/requests.git"],
    ]) {
      const page = await api.fastify.inject({ method: "POST", url: "/v1/localize", payload: { ...validBody, repo: { ...validBody.repo, url } } });
      expect([url, page.statusCode, page.json().error.field, page.json().error.message]).toEqual([url, 422, "repo.url", expect.stringContaining(`give ${as}`)]);
    }
    const res = await api.fastify.inject({ method: "POST", url: "/v1/localize", payload: { ...validBody, repo: { ...validBody.repo, url: "ssh://git:hunter2@github.com/psf/requests.git" } } });
    expect(res.statusCode).toBe(422);
    expect(res.json().error).toMatchObject({ code: "invalid_repository", field: "repo.url" });
    expect(res.json().error.message).toContain("credentials");
  });

  it("takes a scope as a shell completes it (./pkg/): the same directory", async () => {
    const res = await api.fastify.inject({ method: "POST", url: "/v1/localize", payload: { ...validBody, options: { scope: "./pkg/" } } });
    expect(res.statusCode).toBe(202);
  });

  it("takes any branch name git allows, and a pull request's ref", async () => {
    for (const commit of ["fix#12", "feature/résumé", "fix+plus", "refs/pull/7/head", "main~1"]) {
      const res = await api.fastify.inject({ method: "POST", url: "/v1/localize", payload: { ...validBody, issue: `${validBody.issue} (${commit})`, repo: { ...validBody.repo, commit } } });
      expect([commit, res.statusCode]).toEqual([commit, 202]);
    }
  });

  it.each([
    [{ ...validBody, repo: { url: "https://x/y.git" } }, "repo.commit"],
    [{ ...validBody, issue: "" }, "issue"],
    [{ ...validBody, repo: { ...validBody.repo, url: "https://user:secret@github.com/a/b.git" } }, "repo.url"],
    [{ ...validBody, repo: { ...validBody.repo, url: "ftp://example.com/r.git" } }, "repo.url"],
    [{ ...validBody, repo: { ...validBody.repo, commit: "--upload-pack=x" } }, "repo.commit"],
    [{ ...validBody, repo: { ...validBody.repo, commit: "main branch" } }, "repo.commit"],
    [{ ...validBody, repo: { ...validBody.repo, commit: "origin:main" } }, "repo.commit"],
    [{ ...validBody, options: { max_turns: 0 } }, "options.max_turns"],
    [{ ...validBody, options: { policy: "gpt" } }, "options.policy"],
    [{ ...validBody, options: { alternatives: "no" } }, "options.alternatives"],
    // A scope is a directory inside the repository, however it is spelled.
    [{ ...validBody, options: { scope: "../other" } }, "options.scope"],
    [{ ...validBody, options: { scope: "pkg/../../etc" } }, "options.scope"],
    [{ ...validBody, options: { scope: "/etc" } }, "options.scope"],
    [{ ...validBody, options: { scope: "pkg//core" } }, "options.scope"],
    [{ ...validBody, options: { scope: "pkg\\..\\.." } }, "options.scope"],
    [{ ...validBody, options: { scope: "" } }, "options.scope"],
    // An unknown field is named itself, at any depth.
    [{ ...validBody, extra: 1 }, "extra"],
    [{ ...validBody, repo: { ...validBody.repo, branch: "main" } }, "repo.branch"],
  ])("refuses a bad request with 422 naming the field (%#)", async (payload, field) => {
    const res = await api.fastify.inject({ method: "POST", url: "/v1/localize", payload });
    expect(res.statusCode).toBe(422);
    const body = res.json();
    expect(body.error.code).toMatch(/^(validation_failed|invalid_repository|invalid_commit)$/);
    if (field) expect(body.error.field).toBe(field);
  });

  it("names the budget's own limit for any number past it, however large", async () => {
    for (const max_turns of [51, 1e9, 1e308]) {
      const res = await api.fastify.inject({ method: "POST", url: "/v1/localize", payload: { ...validBody, options: { max_turns } } });
      expect(res.statusCode, String(max_turns)).toBe(422);
      expect(res.json().error, String(max_turns)).toMatchObject({ field: "options.max_turns", message: expect.stringContaining("<=50") });
    }
  });

  it("refuses an over-long issue and malformed JSON with clear errors", async () => {
    const small = await buildApiServer({ ...config, ISSUE_MAX_CHARS: 100 }, { logger: false, resolver: scriptedResolver(PUBLIC_NAMES).resolve });
    try {
      const long = await small.fastify.inject({ method: "POST", url: "/v1/localize", payload: { ...validBody, issue: "x".repeat(101) } });
      expect(long.statusCode).toBe(422);
      expect(long.json().error).toMatchObject({ code: "issue_too_long", field: "issue" });
      const bad = await small.fastify.inject({ method: "POST", url: "/v1/localize", payload: "{not json", headers: { "content-type": "application/json" } });
      expect(bad.statusCode).toBe(400);
      expect(bad.json().error).toMatchObject({ code: "invalid_json", field: "body", message: expect.stringContaining("request body is not valid JSON") });
      // Valid JSON with a key that reaches a prototype is refused saying so, not only called invalid.
      const proto = await small.fastify.inject({ method: "POST", url: "/v1/localize", payload: '{"constructor":{"prototype":{}},"issue":"x"}', headers: { "content-type": "application/json" } });
      expect(proto.json().error).toMatchObject({ code: "invalid_json", field: "body", message: expect.stringContaining("__proto__ or constructor.prototype") });
      // No body at all is named as the body.
      const none = await small.fastify.inject({ method: "POST", url: "/v1/localize" });
      expect(none.statusCode).toBe(422);
      expect(none.json().error).toMatchObject({ code: "validation_failed", field: "body" });
    } finally {
      await small.close();
    }
  });

  it("answers a path the router cannot take (a bad %-escape, an over-long id) in the same error shape, without echoing it", async () => {
    const bad = await api.fastify.inject({ method: "GET", url: "/v1/jobs/%zz" });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.code).toBe("bad_url");
    const long = await api.fastify.inject({ method: "GET", url: `/v1/jobs/${"a".repeat(5000)}` });
    expect(long.statusCode).toBe(414);
    expect(long.json().error.code).toBe("uri_too_long");
    expect(long.body.length).toBeLessThan(300);
  });

  it("answers 503 with Retry-After, not 500, while its Redis is away, and takes jobs again once it is back", async () => {
    const redis = await ownRedis();
    redis.start();
    const own = await buildApiServer({ ...config, REDIS_URL: redis.url }, { logger: false, resolver: scriptedResolver(PUBLIC_NAMES).resolve });
    try {
      expect((await own.fastify.inject({ method: "POST", url: "/v1/localize", payload: validBody })).statusCode).toBe(202);
      redis.stop();
      for (const req of [{ method: "POST" as const, url: "/v1/localize", payload: { ...validBody, issue: "another issue" } }, { method: "GET" as const, url: "/v1/jobs/0b4c5a6e-0000-4000-8000-000000000000" }]) {
        const res = await own.fastify.inject(req);
        expect(res.statusCode, req.url).toBe(503);
        expect(res.headers["retry-after"]).toBe("5");
        expect(res.json().error.code).toBe("unavailable");
      }
      redis.start();
      await expect.poll(async () => (await own.fastify.inject({ method: "POST", url: "/v1/localize", payload: { ...validBody, issue: "a third issue" } })).statusCode, { timeout: 15_000, interval: 500 }).toBe(202);
    } finally {
      await own.close();
      redis.stop();
    }
  });

  it("answers 503, not 500, while its Redis is full (maxmemory, noeviction), and loses no job it took", async () => {
    const redis = await ownRedis();
    redis.start();
    const port = new URL(redis.url).port;
    const cli = (...args: string[]) => execFileSync("redis-cli", ["-p", port, ...args], { encoding: "utf8" });
    const own = await buildApiServer({ ...config, REDIS_URL: redis.url }, { logger: false, resolver: scriptedResolver(PUBLIC_NAMES).resolve });
    try {
      const taken = await own.fastify.inject({ method: "POST", url: "/v1/localize", payload: validBody });
      expect(taken.statusCode).toBe(202);
      cli("config", "set", "maxmemory-policy", "noeviction");
      cli("config", "set", "maxmemory", "1");
      const full = await own.fastify.inject({ method: "POST", url: "/v1/localize", payload: { ...validBody, issue: "another issue" } });
      expect(full.statusCode).toBe(503);
      expect(full.headers["retry-after"]).toBe("60");
      expect(full.json().error).toMatchObject({ code: "unavailable", message: expect.stringContaining("is full") });
      // Reads go on: the job taken before is there.
      expect((await own.fastify.inject({ method: "GET", url: `/v1/jobs/${taken.json().id}` })).json().status).toBe("queued");
      // Readiness and metrics say why (the workers' heartbeats, writes too, would soon read as none alive).
      const ready = await own.fastify.inject({ method: "GET", url: "/readyz" });
      expect(ready.statusCode).toBe(503);
      expect(ready.json().checks).toMatchObject({ redis: true, redis_full: true });
      expect((await own.fastify.inject({ method: "GET", url: "/metrics" })).body).toMatch(/^codescout_redis_full 1$/m);
      cli("config", "set", "maxmemory", "0");
      expect((await own.fastify.inject({ method: "POST", url: "/v1/localize", payload: { ...validBody, issue: "a third issue" } })).statusCode).toBe(202);
    } finally {
      await own.close();
      redis.stop();
    }
  });

  it("answers 503 within its bounds while its Redis hangs (stopped, not gone), and /readyz says not ready at once", async () => {
    const redis = await ownRedis();
    redis.start();
    const port = new URL(redis.url).port;
    const pid = Number(/process_id:(\d+)/.exec(execFileSync("redis-cli", ["-p", port, "info", "server"], { encoding: "utf8" }))![1]);
    const own = await buildApiServer({ ...config, REDIS_URL: redis.url }, { logger: false, resolver: scriptedResolver(PUBLIC_NAMES).resolve });
    try {
      const taken = await own.fastify.inject({ method: "POST", url: "/v1/localize", payload: validBody });
      expect(taken.statusCode).toBe(202);
      process.kill(pid, "SIGSTOP");
      try {
        // Redis stays stopped until both have answered: a request without its bound would hold the test to its timeout.
        const [ready, read] = await Promise.all([own.fastify.inject({ method: "GET", url: "/readyz" }), own.fastify.inject({ method: "GET", url: `/v1/jobs/${taken.json().id}` })]);
        expect(ready.statusCode).toBe(503);
        expect(ready.json().checks).toMatchObject({ redis: false });
        expect(read.statusCode).toBe(503);
        expect(read.headers["retry-after"]).toBe("5");
      } finally {
        process.kill(pid, "SIGCONT");
      }
      expect((await own.fastify.inject({ method: "GET", url: `/v1/jobs/${taken.json().id}` })).statusCode).toBe(200);
    } finally {
      await own.close();
      redis.stop();
    }
  }, 60_000);

  it("keeps an Idempotency-Key's claim when the job's enqueue timed out, so the retry finds the job Redis ran late instead of queueing a second", async () => {
    const redis = await ownRedis();
    redis.start();
    // Between the API and Redis: the command that carries the job's data (its issue's marker) is held 12 s, past the API's 10 s.
    const proxy = await holdingProxy(Number(new URL(redis.url).port), "SLOW-ENQUEUE");
    const own = await buildApiServer({ ...config, REDIS_URL: proxy.url }, { logger: false, resolver: scriptedResolver(PUBLIC_NAMES).resolve });
    try {
      const body = { ...validBody, issue: "SLOW-ENQUEUE: Session.request breaks on binary method names" };
      const headers = { "idempotency-key": "slow-enqueue-1" };
      const first = await own.fastify.inject({ method: "POST", url: "/v1/localize", payload: body, headers });
      expect(first.statusCode).toBe(503);
      // Redis runs the held command after all; the retry follows the job it made.
      await new Promise((r) => setTimeout(r, 3_000));
      const retry = await own.fastify.inject({ method: "POST", url: "/v1/localize", payload: body, headers });
      expect([200, 202]).toContain(retry.statusCode);
      const jobs = execFileSync("redis-cli", ["-p", new URL(redis.url).port, "--scan", "--pattern", `${config.QUEUE_PREFIX}:localize:*`], { encoding: "utf8" })
        .split("\n")
        .filter((k) => /:localize:[0-9a-f-]{36}$/.test(k));
      expect(jobs).toEqual([`${config.QUEUE_PREFIX}:localize:${retry.json().id}`]);
    } finally {
      await own.close();
      proxy.close();
      redis.stop();
    }
  }, 60_000);

  it("frees the Idempotency-Key when a read timed out (nothing was made): the retry is taken, not refused as still being accepted", async () => {
    const redis = await ownRedis();
    redis.start();
    // The result cache's read is held 12 s: the request fails before it queues anything.
    const proxy = await holdingProxy(Number(new URL(redis.url).port), `${config.QUEUE_PREFIX}:localize:cache:`);
    const own = await buildApiServer({ ...config, REDIS_URL: proxy.url }, { logger: false, resolver: scriptedResolver(PUBLIC_NAMES).resolve });
    try {
      const headers = { "idempotency-key": "slow-read-1" };
      const body = { ...validBody, issue: "a slow cache read" };
      expect((await own.fastify.inject({ method: "POST", url: "/v1/localize", payload: body, headers })).statusCode).toBe(503);
      const retry = await own.fastify.inject({ method: "POST", url: "/v1/localize", payload: body, headers });
      expect(retry.statusCode).toBe(202);
    } finally {
      await own.close();
      proxy.close();
      redis.stop();
    }
  }, 60_000);

  it("starts and stops while its Redis is away (a SIGTERM then does not wait for Redis forever)", async () => {
    const redis = await ownRedis();
    const away = await buildApiServer({ ...config, REDIS_URL: redis.url }, { logger: false, resolver: scriptedResolver(PUBLIC_NAMES).resolve });
    const res = await away.fastify.inject({ method: "POST", url: "/v1/localize", payload: validBody });
    expect(res.statusCode).toBe(503);
    const closed = away.close().then(() => "closed");
    await expect(Promise.race([closed, new Promise((r) => setTimeout(() => r("still closing"), 10_000))])).resolves.toBe("closed");
    // Redis up at last, so what the bounded close left waiting for it finishes, then down again.
    redis.start();
    await new Promise((r) => setTimeout(r, 2000));
    redis.stop();
  });

  it("answers 404 in the same error shape for unknown jobs and routes", async () => {
    const job = await api.fastify.inject({ method: "GET", url: "/v1/jobs/nope" });
    expect(job.statusCode).toBe(404);
    expect(job.json().error.code).toBe("job_not_found");
    // BullMQ's own records share the jobs' prefix: none of them reads as a job, whatever it holds.
    for (const [method, url] of [["GET", "/v1/jobs/meta"], ["DELETE", "/v1/jobs/meta"], ["GET", "/v1/jobs/events"], ["GET", "/v1/jobs/wait/events"], ["GET", "/v1/jobs/id/trajectory"]] as const) {
      const res = await api.fastify.inject({ method, url });
      expect([url, res.statusCode, res.json().error.code]).toEqual([url, 404, "job_not_found"]);
    }
    const route = await api.fastify.inject({ method: "GET", url: "/v2/what" });
    expect(route.statusCode).toBe(404);
    expect(route.json().error.code).toBe("not_found");
  });
});

describe("documentation", () => {
  it("serves Swagger UI and the spec, and openapi/openapi.json matches what the code generates", async () => {
    const docs = await api.fastify.inject({ method: "GET", url: "/docs" });
    expect([200, 302]).toContain(docs.statusCode);
    const spec = await api.fastify.inject({ method: "GET", url: "/openapi.json" });
    expect(spec.json().paths["/v1/localize"].post.operationId).toBe("localize");
    expect(spec.json().paths["/localize"].post).toBeDefined();
    // The webhook a receiver implements: its body is the job view, its headers the signature and the job's id.
    const hook = spec.json().webhooks.jobEnded.post;
    expect(hook.parameters.map((p: { name: string }) => p.name)).toEqual(["X-CodeScout-Signature", "X-CodeScout-Key-Signature", "X-CodeScout-Job"]);
    expect(Object.keys(hook.requestBody.content["application/json"].schema.properties)).toEqual(expect.arrayContaining(["id", "status", "result", "error"]));
    const committed = readFileSync("openapi/openapi.json", "utf8");
    expect(committed, "openapi/openapi.json is stale: run `npm run openapi`").toBe(await renderOpenApi(loadConfig({})));
  });

  it("gives every response a description and a real example, so Swagger UI shows no placeholders", async () => {
    const spec = (await api.fastify.inject({ method: "GET", url: "/openapi.json" })).json() as {
      paths: Record<string, Record<string, { responses: Record<string, { description: string; content?: Record<string, { example?: unknown; examples?: Record<string, { value: unknown }> }> }> }>>;
    };
    const missing: string[] = [];
    for (const [path, ops] of Object.entries(spec.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        for (const [status, res] of Object.entries(op.responses)) {
          const where = `${method.toUpperCase()} ${path} ${status}`;
          if (!res.description || res.description === "Default Response") missing.push(`${where}: description`);
          // A HEAD's answers have no body to show.
          if (method === "head") {
            if (res.content) missing.push(`${where}: a body`);
          } else if (!res.content || Object.values(res.content).some((c) => c.example === undefined && c.examples === undefined)) missing.push(`${where}: example`);
        }
      }
    }
    expect(missing).toEqual([]);
    // Swagger UI fills an integer without a lower bound with -(2^53 - 1).
    expect(JSON.stringify(spec)).not.toContain("-9007199254740991");
    const ok = spec.paths["/v1/localize"]!.post!.responses["200"]!.content!["application/json"]!.example as { id: string; result: { locations: Array<{ start_line: number }> } };
    expect(ok.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(ok.result.locations[0]!.start_line).toBeGreaterThan(0);
    // A job read back: the model's answer and the baseline's (with its confidence and alternatives), each a valid job.
    const jobs = Object.values(spec.paths["/v1/jobs/{id}"]!.get!.responses["200"]!.content!["application/json"]!.examples!).map((e) => e.value);
    expect(jobs.map((j) => jobSchema.safeParse(j).success)).toEqual([true, true]);
    expect(jobs[1]).toMatchObject({ result: { policy: "baseline", locations: [{ confidence: { file: 0.84 } }], alternatives: [{ confidence: { file: 0.09 } }] } });
  });

  it("documents the headers a client acts on (Retry-After, Location) and the batch's bound, where the service sends them", async () => {
    type Doc = { paths: Record<string, Record<string, { responses: Record<string, { headers?: Record<string, { schema: { type: string } }> }>; requestBody?: { content: Record<string, { schema: { properties: { jobs: { maxItems?: number } } } }> } }>> };
    const spec = (await api.fastify.inject({ method: "GET", url: "/openapi.json" })).json() as Doc;
    const headersOf = (path: string, method: string, status: string) => Object.keys(spec.paths[path]![method]!.responses[status]!.headers ?? {});
    expect(headersOf("/v1/localize", "post", "202")).toEqual(["Location"]);
    expect(headersOf("/v1/localize", "post", "429")).toEqual(["Retry-After"]);
    expect(headersOf("/v1/localize", "post", "409")).toEqual(["Retry-After"]);
    expect(headersOf("/v1/jobs/{id}/events", "get", "503")).toEqual(["Retry-After"]);
    // A cancel's 409 (the job ended) is final, and /readyz's 503 a state to probe, not a request to retry.
    expect(headersOf("/v1/jobs/{id}", "delete", "409")).toEqual([]);
    expect(headersOf("/readyz", "get", "503")).toEqual([]);
    expect(spec.paths["/v1/localize/batch"]!.post!.requestBody!.content["application/json"]!.schema.properties.jobs.maxItems).toBe(config.BATCH_MAX);

    // What the document says of a 429, the service does.
    const limited = await buildApiServer({ ...config, RATE_LIMIT_PER_MIN: 1 }, { logger: false, resolver: scriptedResolver(PUBLIC_NAMES).resolve });
    try {
      await limited.fastify.inject({ method: "POST", url: "/v1/localize", payload: validBody });
      const refused = await limited.fastify.inject({ method: "POST", url: "/v1/localize", payload: { ...validBody, issue: `${validBody.issue} again` } });
      expect(refused.statusCode).toBe(429);
      expect(Number(refused.headers["retry-after"])).toBeGreaterThan(0);
    } finally {
      await limited.close();
    }
  });

  it("documents what is not JSON as what it is, both ways of sending a key, and a job's created_at as read back", async () => {
    type Op = { requestBody?: { content: Record<string, unknown> }; responses: Record<string, { content?: Record<string, unknown>; headers?: Record<string, unknown> }>; security?: unknown[] };
    const spec = (await api.fastify.inject({ method: "GET", url: "/openapi.json" })).json() as { paths: Record<string, Record<string, Op>>; components: { securitySchemes: Record<string, { name?: string }> } };
    const op = (path: string, method: string) => spec.paths[path]![method]!;
    expect(Object.keys(op("/v1/jobs/{id}/events", "get").responses["200"]!.content!)).toEqual(["text/event-stream"]);
    expect(Object.keys(op("/metrics", "get").responses["200"]!.content!)).toEqual(["text/plain; version=0.0.4"]);
    const metrics = await api.fastify.inject({ method: "GET", url: "/metrics" });
    expect(metrics.headers["content-type"]).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(Object.keys(op("/v1/uploads", "post").requestBody!.content)).toEqual(["application/gzip", "application/x-tar"]);
    expect(Object.keys(op("/v1/tools/localize", "post").responses["200"]!.headers ?? {})).toEqual(["Location"]);
    expect(spec.components.securitySchemes.apiKeyHeader).toMatchObject({ type: "apiKey", in: "header", name: "X-API-Key" });
    expect(op("/v1/localize", "post").security).toEqual([{ bearerAuth: [] }, { apiKeyHeader: [] }]);
    // What any route answers before its own code: a foreign origin (403), a path part too long (414).
    expect(Object.keys(op("/v1/localize", "post").responses)).toContain("403");
    expect(Object.keys(op("/v1/jobs/{id}", "get").responses)).toEqual(expect.arrayContaining(["400", "403", "414"]));
    expect(Object.keys(op("/v1/uploads/{id}", "get").responses)).toContain("503");
    // The HEAD a client asks before sending a tree is an operation of its own, answering the GET's statuses.
    expect(spec.paths["/v1/uploads/{id}"]!.head).toMatchObject({ operationId: "headUpload", security: op("/v1/uploads/{id}", "get").security });
    expect(Object.keys(op("/v1/uploads/{id}", "head").responses)).toEqual(Object.keys(op("/v1/uploads/{id}", "get").responses));
    const long = await api.fastify.inject({ method: "GET", url: `/v1/jobs/${"a".repeat(120)}` });
    expect([long.statusCode, long.json().error.code]).toEqual([414, "uri_too_long"]);
    // One job, one creation time: the POST's answer and every read agree.
    for (let i = 0; i < 5; i++) {
      const posted = (await api.fastify.inject({ method: "POST", url: "/v1/localize", payload: { ...validBody, issue: `${validBody.issue} (created ${i})` } })).json() as { id: string; created_at: string };
      const read = (await api.fastify.inject({ method: "GET", url: `/v1/jobs/${posted.id}` })).json() as { created_at: string };
      expect(read.created_at).toBe(posted.created_at);
    }
  });

  it("keeps docs/openai-tool.json, the tool for frameworks without MCP, what the code generates", () => {
    expect(readFileSync("docs/openai-tool.json", "utf8"), "docs/openai-tool.json is stale: run `npm run openai-tool`").toBe(renderOpenAiTool());
    const tool = JSON.parse(renderOpenAiTool());
    expect(tool.function.parameters.required).toEqual(["issue", "repo_url"]);
  });

  it("answers /healthz", async () => {
    const res = await api.fastify.inject({ method: "GET", url: "/healthz" });
    expect(res.json()).toEqual({ status: "ok" });
  });
});

/**
 * A TCP proxy to Redis that holds the first command carrying `marker`, and everything after it in
 * order, for 12 s (past the API's 10 s command bound), as a Redis that stalls would.
 */
async function holdingProxy(redisPort: number, marker: string): Promise<{ url: string; close(): void }> {
  const proxy = createNetServer((client) => {
    const upstream = connect(redisPort, "127.0.0.1");
    let held: Buffer[] | null = null;
    let done = false;
    client.on("data", (chunk: Buffer) => {
      if (held) held.push(chunk);
      else if (!done && chunk.includes(marker)) {
        done = true;
        held = [chunk];
        setTimeout(() => {
          for (const c of held ?? []) upstream.write(c);
          held = null;
        }, 12_000);
      } else upstream.write(chunk);
    });
    upstream.pipe(client);
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.destroy());
    client.on("close", () => upstream.end());
  });
  await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
  return { url: `redis://127.0.0.1:${(proxy.address() as AddressInfo).port}`, close: () => proxy.close() };
}
