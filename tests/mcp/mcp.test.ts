import { randomBytes } from "node:crypto";
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { execFile, execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { CallToolResultSchema, ListRootsRequestSchema, PingRequestSchema, type Progress } from "@modelcontextprotocol/sdk/types.js";
import { startFakeModel, type FakeModel, type RecordedRequest, type ScriptedReply } from "../helpers/fakeModel.js";
import { makeGitFixture, SAMPLE_FILES, writtenSha, type GitFixture } from "../helpers/gitFixture.js";
import { containersOf, freePort, serviceEnv, startProcess, waitFor, type ServiceProcess } from "../helpers/processes.js";
import { testConfig } from "../helpers/config.js";
import { TreeStore } from "../../src/repos/trees.js";
import { withinAny } from "../../src/mcp/roots.js";
import { dropPrefix } from "../helpers/redis.js";

/**
 * The MCP server through real MCP clients: the SDK's own client over Streamable HTTP (the
 * API's /mcp) and over stdio (bin/codescout-mcp.mjs as a coding agent would start it), the
 * MCP Inspector's CLI, and the conformance suite's server checks. Real API and worker
 * processes, Redis, Docker and git; only the model is scripted.
 */
const run = promisify(execFile);
const KEY = "mcp-test-key-0123456789";
const config = testConfig();
let model: FakeModel;
let repo: GitFixture;
let api: ServiceProcess;
let openApi: ServiceProcess;
let worker: ServiceProcess;
let base: string;
let openBase: string;
let apiEnv: Record<string, string>;
const scratch: string[] = [];
const cacheDir = mkdtempSync(join(tmpdir(), "codescout-client-cache-"));
scratch.push(cacheDir);

/** The scripted model answers by the issue it is asked about. */
function scriptByIssue(answers: Record<string, ScriptedReply[]>) {
  model.script((req: RecordedRequest) => {
    const user = String(req.body.messages.find((m) => m.role === "user")?.content ?? "");
    const key = Object.keys(answers).find((k) => user.includes(k));
    const replies = key ? answers[key]! : [{ content: "no script" }];
    const turn = req.body.messages.filter((m) => m.role === "assistant").length;
    return replies[Math.min(turn, replies.length - 1)]!;
  });
}

const finish = (locations: Array<Record<string, string>>): ScriptedReply => ({ toolCalls: [{ name: "localization_finish", arguments: { locations } }] });
const grep = (command: string): ScriptedReply => ({ toolCalls: [{ name: "terminal", arguments: { command, security_risk: "LOW" } }] });

beforeAll(async () => {
  model = await startFakeModel();
  scriptByIssue({
    "PARSE-ISSUE": [grep('rg -n "def parse" -t py'), grep("sed -n '1,30p' pkg/parser.py"), finish([{ file: "pkg/parser.py", class_name: "Parser", function_name: "parse" }, { file: "pkg/parser.py", function_name: "parse_file" }])],
    "EDIT-ISSUE": [grep('rg -n "only_in_the_edit"'), finish([{ file: "pkg/util.py", function_name: "only_in_the_edit" }])],
    // A name with an escape sequence (clear the screen) and a bidirectional override in it.
    "ESCAPE-ISSUE": [finish([{ file: "pkg/parser.py", class_name: "Parser\u001b[2J", function_name: "parse\u202e" }])],
    // Asked in the checkout's package: the model's tree is that directory.
    "SCOPED-ISSUE": [grep('rg -n "only_in_the_edit"'), finish([{ file: "util.py", function_name: "only_in_the_edit" }])],
    "SLOW-ISSUE": [grep("sleep 1"), { hang: true }],
    "LEADS-ISSUE": [finish([{ file: "pkg/util.py", function_name: "helper" }])],
    "NO-ANSWER-ISSUE": [{ content: "I could not find it." }],
    // The model server answers 503 to every request of this issue.
    "AWAY-ISSUE": [{ status: 503 }],
    // A model that thinks for a while before it answers: the job is quiet meanwhile.
    "QUIET-ISSUE": [{ delayMs: 7_000, then: finish([{ file: "pkg/parser.py", class_name: "Parser", function_name: "parse" }]) }],
  });
  repo = makeGitFixture();
  const port = await freePort();
  const openPort = await freePort();
  base = `http://127.0.0.1:${port}`;
  openBase = `http://localhost:${openPort}`;
  const env = serviceEnv(config, { ALLOW_PRIVATE_HOSTS: "true", MODEL_BASE_URL: model.baseURL, MODEL_MAX_RETRIES: "0", LOG_LEVEL: "warn" });
  apiEnv = { ...env, AUTH_MODE: "api_key", API_KEYS: `agent:${KEY},other:other-key-0123456789` };
  worker = startProcess("src/worker/main.ts", { ...env, WORKER_CONCURRENCY: "4" });
  api = startProcess("src/api/server.ts", { ...apiEnv, API_PORT: String(port) });
  // A second API on the same queue, without auth, for clients that cannot send a key; it takes
  // small uploads only, so a refusal for size is cheap to bring about.
  openApi = startProcess("src/api/server.ts", { ...env, API_PORT: String(openPort), UPLOAD_MAX_ARCHIVE_BYTES: String(64 << 10) });
  await waitFor(async () => ((await fetch(`${base}/readyz`)).ok ? true : undefined), 60_000, "the service to be ready");
  await waitFor(async () => ((await fetch(`${openBase}/healthz`)).ok ? true : undefined), 60_000, "the open API");
}, 90_000);

afterAll(async () => {
  await Promise.all([api?.stop(), openApi?.stop(), worker?.stop()]);
  await model?.close();
  repo?.cleanup();
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
  await dropPrefix(config.QUEUE_PREFIX);
});

/** A POST with headers fetch will not send as given (Host). */
function rawPost(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((res, rej) => {
    const req = request(url, { method: "POST", headers }, (r) => {
      r.resume();
      res(r.statusCode ?? 0);
    });
    req.on("error", rej);
    req.end("{}");
  });
}

/** The job once it is no longer running, as its key reads it. */
function jobEnded(jobId: string): Promise<{ status: string; error?: { code: string } }> {
  return waitFor(
    async () => {
      const job = await (await fetch(`${base}/v1/jobs/${jobId}`, { headers: { authorization: `Bearer ${KEY}` } })).json();
      return job.status === "running" ? undefined : job;
    },
    30_000,
    "the job to end",
  );
}

async function httpClient(key = KEY): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const transport = new StreamableHTTPClientTransport(new URL(`${base}/mcp`), { requestInit: { headers: { authorization: `Bearer ${key}` } } });
  const client = new Client({ name: "codescout-test", version: "1.0.0" });
  await client.connect(transport);
  return { client, transport };
}

async function stdioClient(env: Record<string, string>, args: string[] = [], roots?: string[]): Promise<Client> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [resolve("bin/codescout-mcp.mjs"), ...args],
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root", CODESCOUT_CACHE_DIR: cacheDir, ...env },
    stderr: "pipe",
  });
  // A client that says which directories are its workspace, as MCP's roots do.
  const client = new Client({ name: "codescout-test", version: "1.0.0" }, roots ? { capabilities: { roots: {} } } : {});
  if (roots) client.setRequestHandler(ListRootsRequestSchema, () => ({ roots: roots.map((dir) => ({ uri: pathToFileURL(dir).href })) }));
  await client.connect(transport);
  return client;
}

/** A clone of the fixture with an uncommitted edit: a function that exists only in the edit. */
function checkoutWithEdit(options: { remote: boolean }): string {
  const dir = mkdtempSync(join(tmpdir(), "codescout-checkout-"));
  scratch.push(dir);
  if (options.remote) execFileSync("git", ["clone", "-q", repo.url, dir]);
  else {
    execFileSync("git", ["init", "-q", "-b", "main", dir]);
    for (const [path, content] of Object.entries(SAMPLE_FILES)) {
      execFileSync("mkdir", ["-p", join(dir, path, "..")]);
      writeFileSync(join(dir, path), content);
    }
    execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "local only", "--allow-empty"], { cwd: dir });
    execFileSync("git", ["add", "-A"], { cwd: dir });
    execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "files"], { cwd: dir });
  }
  writeFileSync(join(dir, "pkg/util.py"), "def helper():\n    return 42\n\n\n@staticmethod\ndef only_in_the_edit(x):\n    return x * 2\n");
  writeFileSync(join(dir, ".gitignore"), ".env\n");
  writeFileSync(join(dir, ".env"), "SECRET=never-leaves-the-machine\n");
  return dir;
}

describe("MCP over Streamable HTTP (/mcp)", () => {
  it("lists the localize tool with its schemas and annotations, behind the API key", async () => {
    const { client } = await httpClient();
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toEqual(["localize"]);
    const tool = tools[0]!;
    expect(tool.annotations).toMatchObject({ readOnlyHint: true, idempotentHint: true, destructiveHint: false });
    expect(Object.keys(tool.inputSchema.properties ?? {})).toEqual(expect.arrayContaining(["issue", "repo_url", "commit", "max_turns", "policy"]));
    expect(tool.inputSchema.properties).not.toHaveProperty("path");
    expect(tool.outputSchema?.properties).toHaveProperty("locations");
    // The same as a prompt, which clients such as Claude Code offer as a slash command.
    const { prompts } = await client.listPrompts();
    expect(prompts.map((p) => p.name)).toEqual(["localize"]);
    expect(prompts[0]!.arguments).toEqual([expect.objectContaining({ name: "issue", required: true })]);
    const prompt = await client.getPrompt({ name: "localize", arguments: { issue: "Parser.parse drops values\n\nTraceback: ..." } });
    const text = (prompt.messages[0]!.content as { text: string }).text;
    expect(text).toContain("call the `localize` tool with its whole text in the repository (give repo_url and commit, and your uncommitted changes as patch)");
    expect(text).toMatch(/<issue>\nParser\.parse drops values\n\nTraceback: \.\.\.\n<\/issue>$/);
    expect(text).toMatch(/^Before changing any code for the issue below, call the `localize` tool/);
    // The server's instructions, which clients give the calling model beside the tool: when to call it and how to read it.
    expect(client.getInstructions()).toMatch(/^CodeScout finds where in a repository an issue needs changes.*\nBefore changing any code for an issue, call the `localize` tool with its whole text in the repository \(give repo_url/);
    await client.close();

    const noKey = await fetch(`${base}/mcp`, { method: "POST", headers: { "content-type": "application/json", accept: "application/json, text/event-stream" }, body: "{}" });
    expect(noKey.status).toBe(401);
    // DNS rebinding: a page whose name resolves to 127.0.0.1 reaches the port under its own name.
    const evil = await rawPost(`${base}/mcp`, { host: "evil.example.com", authorization: `Bearer ${KEY}`, "content-type": "application/json" });
    expect(evil).toBe(403);
  });

  it("localizes with progress per turn, structured output and line ranges", async () => {
    const { client } = await httpClient();
    const progress: Progress[] = [];
    const result = await client.callTool(
      { name: "localize", arguments: { issue: "PARSE-ISSUE: the parser drops values", repo_url: repo.url, commit: repo.commits[0]!, policy: "codescout" } },
      CallToolResultSchema,
      { onprogress: (p) => progress.push(p) },
    );
    expect(result.isError).toBeFalsy();
    const out = result.structuredContent as { status: string; locations: Array<Record<string, unknown>>; job_id: string; finish_reason: string };
    expect(out.status).toBe("succeeded");
    expect(out.finish_reason).toBe("finish_tool");
    // A repository's paths are its own: there is no local directory to name.
    expect(out).not.toHaveProperty("root");
    // The model's locations, each with what the model-free ranking made of its file (here the only one it ranks).
    const agreed = ["the model-free ranking's first file too, at confidence 1.00"];
    expect(out.locations).toEqual([
      { file: "pkg/parser.py", class_name: "Parser", function_name: "parse", start_line: 10, end_line: 15, valid: true, evidence: agreed },
      { file: "pkg/parser.py", function_name: "parse_file", start_line: 18, end_line: 20, valid: true, evidence: agreed },
    ]);
    const text = (result.content as Array<{ type: string; text: string }>)[0]!.text;
    expect(text).toContain("pkg/parser.py:10-15  Parser.parse  (the model-free ranking's first file too, at confidence 1.00)");
    // Said once per file: the second location of pkg/parser.py does not repeat it.
    expect(text).toMatch(/^pkg\/parser\.py:18-20 {2}parse_file$/m);
    const messages = progress.map((p) => p.message);
    expect(messages).toEqual(expect.arrayContaining([`queued: job ${out.job_id}`, "turn 1/10", "turn 2/10", "turn 3/10", "finished"]));
    expect(progress.map((p) => p.progress)).toEqual([...progress.map((p) => p.progress)].sort((a, b) => a - b));
    // Removed once the answer is out (worker/cleanups.ts), not before.
    await waitFor(async () => (containersOf(out.job_id) === "" ? true : undefined), 15_000, "the job's container to be removed");

    // Where the model's answer and the baseline's ranking part, the calling model is told where else to read.
    const issue = "LEADS-ISSUE: values of parsed lines are wrong\n\nThe values read from each line come out wrong, and a helper is involved too.";
    const led = await client.callTool({ name: "localize", arguments: { issue, repo_url: repo.url, commit: repo.commits[0]!, policy: "codescout" } }, CallToolResultSchema);
    const ledOut = led.structuredContent as { locations: Array<{ file: string }>; alternatives?: Array<{ file: string }> };
    expect(ledOut.locations.map((l) => l.file)).toEqual(["pkg/util.py"]);
    expect(ledOut.alternatives?.[0]).toMatchObject({ file: "pkg/parser.py", function_name: "parse_file", start_line: 18, end_line: 20, valid: true });
    const ledText = (led.content as Array<{ text: string }>)[0]!.text;
    expect(ledText).toMatch(/\nAlso considered, by the model-free ranking \(leads, not part of the model's answer\):\npkg\/parser\.py:18-20 {2}parse_file {2}\[confidence: file 0\.\d\d/);
    // A model that gives no answer still leaves the calling model somewhere to start.
    const none = await client.callTool({ name: "localize", arguments: { issue: issue.replace("LEADS-ISSUE", "NO-ANSWER-ISSUE"), repo_url: repo.url, commit: repo.commits[0]!, policy: "codescout" } }, CallToolResultSchema);
    expect(none.structuredContent).toMatchObject({ answered: false, locations: [], alternatives: [{ file: "pkg/parser.py" }, { file: "pkg/util.py" }] });
    expect((none.content as Array<{ text: string }>)[0]!.text).toMatch(/^No locations found \(codescout, \w+ in [\d.]+ s\)\. Where the model-free ranking would start reading \(leads, not an answer\):\npkg\/parser\.py:18-20 {2}parse_file/);
    // The text an agent's user may see printed shows control characters as escapes; the structured answer keeps them.
    const escaped = await client.callTool({ name: "localize", arguments: { issue: "ESCAPE-ISSUE: the parser", repo_url: repo.url, commit: repo.commits[0]!, policy: "codescout" } }, CallToolResultSchema);
    const escapedText = (escaped.content as Array<{ text: string }>)[0]!.text;
    expect(escapedText).not.toMatch(/[\u001b\u202e]/);
    expect(escapedText).toContain("Parser\\x1b[2J.parse\\u202e");
    expect(escaped.structuredContent).toMatchObject({ locations: [{ class_name: "Parser\u001b[2J", function_name: "parse\u202e" }] });
    // A model server that is away: the baseline answers a call that named no policy, and says so.
    const away = await client.callTool({ name: "localize", arguments: { issue: "AWAY-ISSUE: `Parser.parse` loses values that contain '='", repo_url: repo.url, commit: repo.commits[0]! } }, CallToolResultSchema);
    expect(away.isError).toBeFalsy();
    expect(away.structuredContent).toMatchObject({ status: "succeeded", policy: "baseline", fallback: { from: "codescout", reason: "llm_unavailable" }, locations: [{ file: "pkg/parser.py" }] });
    expect((away.content as Array<{ text: string }>)[0]!.text).toMatch(/^\d locations? \(baseline, as the model server could not be reached, finish_tool in [\d.]+ s\):\npkg\/parser\.py:/);
    await client.close();
  });

  it("localizes a remote agent's tree as its commit and the diff it passes (patch)", async () => {
    const dir = checkoutWithEdit({ remote: true });
    const commit = execFileSync("git", ["rev-parse", "HEAD"], { cwd: dir, encoding: "utf8" }).trim();
    const patch = execFileSync("git", ["diff", "HEAD"], { cwd: dir, encoding: "utf8" });
    const { client } = await httpClient();
    const { tools } = await client.listTools();
    expect(tools[0]!.inputSchema.properties).toHaveProperty("patch");
    const args = { issue: "only_in_the_edit doubles where it should triple", repo_url: repo.url, commit, policy: "baseline", snippets: true };
    const result = await client.callTool({ name: "localize", arguments: { ...args, patch } }, CallToolResultSchema);
    expect(result.isError, JSON.stringify(result.content)).toBeFalsy();
    expect((result.structuredContent as { locations: unknown[] }).locations[0]).toMatchObject({ file: "pkg/util.py", function_name: "only_in_the_edit", valid: true, snippet: "@staticmethod\ndef only_in_the_edit(x):\n    return x * 2" });
    // Without it, the commit as it is: the function is not there to find.
    const bare = await client.callTool({ name: "localize", arguments: args }, CallToolResultSchema);
    expect((bare.structuredContent as { locations: Array<{ function_name?: string }> }).locations.map((l) => l.function_name)).not.toContain("only_in_the_edit");
    const bad = await client.callTool({ name: "localize", arguments: { ...args, patch: "make it triple" } }, CallToolResultSchema);
    expect(bad.isError).toBe(true);
    expect((bad.content as Array<{ text: string }>)[0]!.text).toMatch(/^The request was refused \(patch\): .*\[invalid_patch\]$/);

    // A tree the service cannot fetch: sent first as the tool's description says, then named by its upload id.
    const archive = execFileSync("sh", ["-c", "git ls-files -co --exclude-standard -z | tar --null -T - -czf -"], { cwd: dir });
    const sent = await fetch(`${base}/v1/uploads`, { method: "POST", headers: { authorization: `Bearer ${KEY}`, "content-type": "application/gzip" }, body: archive });
    expect(sent.status).toBe(201);
    const { upload_id } = (await sent.json()) as { upload_id: string };
    const { repo_url: _url, commit: _commit, ...rest } = args;
    const uploaded = await client.callTool({ name: "localize", arguments: { ...rest, upload: upload_id } }, CallToolResultSchema);
    expect(uploaded.isError, JSON.stringify(uploaded.content)).toBeFalsy();
    expect((uploaded.structuredContent as { commit_sha: string; locations: unknown[] }).commit_sha).toBe(upload_id);
    expect((uploaded.structuredContent as { locations: unknown[] }).locations[0]).toMatchObject({ file: "pkg/util.py", function_name: "only_in_the_edit", valid: true });
    const neither = await client.callTool({ name: "localize", arguments: rest }, CallToolResultSchema);
    expect(neither.isError).toBe(true);
    expect((neither.content as Array<{ text: string }>)[0]!.text).toBe(
      "The request was refused (repo_url): give repo_url (a repository the service fetches) or upload (a tree sent with POST /v1/uploads) [invalid_repository]",
    );
    await client.close();
  });

  it("answers a bad request with a tool error naming the argument, and keeps sessions to their key", async () => {
    const { client, transport } = await httpClient();
    const bad = await client.callTool({ name: "localize", arguments: { issue: "x", repo_url: "ftp://example.com/r.git" } });
    expect(bad.isError).toBe(true);
    expect((bad.content as Array<{ text: string }>)[0]!.text).toMatch(/repo_url.*scheme ftp/);
    // An argument only the stdio server takes (a local path) is refused by name, not dropped
    // to then be asked for a repo_url.
    const local = await client.callTool({ name: "localize", arguments: { issue: "x", path: "/home/me/project" } });
    expect(local.isError).toBe(true);
    expect((local.content as Array<{ text: string }>)[0]!.text).toMatch(/Unrecognized key.*"path"/);
    // A body that is not JSON is answered as JSON-RPC answers it, not in the REST shape.
    const garbled = await fetch(`${base}/mcp`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json", accept: "application/json, text/event-stream" },
      body: "{not json",
    });
    expect(garbled.status).toBe(400);
    expect(await garbled.json()).toMatchObject({ jsonrpc: "2.0", id: null, error: { code: -32700 } });
    const stolen = await fetch(`${base}/mcp`, {
      method: "POST",
      headers: { authorization: "Bearer other-key-0123456789", "mcp-session-id": transport.sessionId!, "content-type": "application/json", accept: "application/json, text/event-stream" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 9, method: "tools/list" }),
    });
    expect(stolen.status).toBe(404);
    await client.close();
  });

  it("says a quiet job's last step again while it is quiet (a long model call), over HTTP and over stdio, and pings a client that asked for no progress", async () => {
    const { client: http } = await httpClient();
    const stdio = await stdioClient({ CODESCOUT_URL: base, CODESCOUT_API_KEY: KEY });
    const ask = async (client: Client, tag: string) => {
      const messages: string[] = [];
      const result = await client.callTool(
        { name: "localize", arguments: { issue: `QUIET-ISSUE: the parser is slow to blame (${tag})`, repo_url: repo.url, commit: repo.commits[0]!, policy: "codescout" } },
        CallToolResultSchema,
        { onprogress: (p) => messages.push(p.message ?? "") },
      );
      expect(result.isError, tag).toBeFalsy();
      return messages;
    };
    // A client that asks for no progress is pinged on the call's stream instead.
    const { client: silent } = await httpClient();
    let pinged = 0;
    silent.setRequestHandler(PingRequestSchema, () => {
      pinged++;
      return {};
    });
    const quietCall = silent.callTool({ name: "localize", arguments: { issue: "QUIET-ISSUE: the parser is slow to blame (no progress)", repo_url: repo.url, commit: repo.commits[0]!, policy: "codescout" } }, CallToolResultSchema);
    const [overHttp, overStdio, unasked] = await Promise.all([ask(http, "http"), ask(stdio, "stdio"), quietCall]);
    // The model takes 7 s to answer its first turn: the turn is said at its start, and ~5 s on that nothing has happened since.
    for (const messages of [overHttp, overStdio]) {
      expect(messages, messages.join(" | ")).toContain("turn 1/10");
      expect(messages.some((m) => /^turn 1\/10 \(nothing new for [4-9] s\)$/.test(m)), messages.join(" | ")).toBe(true);
    }
    expect(unasked.isError).toBeFalsy();
    expect(pinged).toBeGreaterThanOrEqual(1);
    await Promise.all([http.close(), stdio.close(), silent.close()]);
  });

  it("cancels the job when the client cancels the call", async () => {
    const { client } = await httpClient();
    const controller = new AbortController();
    let jobSeen = false;
    let jobId = "";
    const call = client.callTool(
      { name: "localize", arguments: { issue: "SLOW-ISSUE: it hangs", repo_url: repo.url, commit: repo.commits[0]!, policy: "codescout" } },
      CallToolResultSchema,
      {
        signal: controller.signal,
        onprogress: (p) => {
          jobId ||= /^queued: job (\S+)$/.exec(p.message ?? "")?.[1] ?? "";
          // Cancel once the model has been asked twice (the second request hangs).
          if (p.message === "turn 2/10" && !jobSeen) {
            jobSeen = true;
            setTimeout(() => controller.abort("the agent moved on"), 300);
          }
        },
      },
    );
    await expect(call).rejects.toThrow();
    expect(jobSeen).toBe(true);
    const ended = await jobEnded(jobId);
    expect(ended).toMatchObject({ status: "cancelled", error: { code: "cancelled" } });
    // Removed once the answer is out (worker/cleanups.ts), not before.
    await waitFor(async () => (containersOf(jobId) === "" ? true : undefined), 15_000, "the job's container to be removed");
    await client.close();
  });
  it("keeps an agent's session across an API restart: the SDK's client, which does not start a new session on a 404, goes on calling under its session id, with progress and cancellation", async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const start = async () => {
      const p = startProcess("src/api/server.ts", { ...apiEnv, API_PORT: String(port) });
      await waitFor(async () => ((await fetch(`${url}/healthz`).catch(() => null))?.ok ? true : undefined), 60_000, "the API to start");
      return p;
    };
    let restarted = await start();
    try {
      const transport = new StreamableHTTPClientTransport(new URL(`${url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${KEY}` } } });
      const client = new Client({ name: "codescout-test", version: "1.0.0" });
      await client.connect(transport);
      const id = transport.sessionId;
      expect(id).toMatch(/^[0-9a-f-]{36}$/);
      expect((await client.listTools()).tools.map((t) => t.name)).toEqual(["localize"]);

      // Its open GET stream ends as the API starts closing: the restart does not wait out the grace (20 s) on it.
      const stopping = performance.now();
      await restarted.stop();
      expect(performance.now() - stopping).toBeLessThan(15_000);
      restarted = await start();
      const progress: Progress[] = [];
      const result = await client.callTool(
        { name: "localize", arguments: { issue: "PARSE-ISSUE: after the restart the parser drops values", repo_url: repo.url, commit: repo.commits[0]!, policy: "codescout" } },
        CallToolResultSchema,
        { onprogress: (p) => progress.push(p) },
      );
      expect(result.isError).toBeFalsy();
      expect(result.structuredContent).toMatchObject({ status: "succeeded", locations: [{ file: "pkg/parser.py", class_name: "Parser", function_name: "parse", valid: true }, { file: "pkg/parser.py", function_name: "parse_file" }] });
      expect(progress.map((p) => p.message)).toEqual(expect.arrayContaining(["turn 1/10", "turn 2/10"]));
      expect(transport.sessionId).toBe(id);
      expect(restarted.output()).not.toMatch(/"level":50/);

      // Made again for the key that sent it, and for that key alone; an id the service never hands out is not made.
      const post = (key: string, session: string) =>
        fetch(`${url}/mcp`, {
          method: "POST",
          headers: { authorization: `Bearer ${key}`, "mcp-session-id": session, "content-type": "application/json", accept: "application/json, text/event-stream" },
          body: JSON.stringify({ jsonrpc: "2.0", id: 9, method: "tools/list" }),
        });
      expect((await post("other-key-0123456789", id!)).status).toBe(404);
      expect((await post(KEY, "not-a-session-of-ours")).status).toBe(404);

      // Cancelling a call in the session made again cancels its job: the call is held where the cancel arrives.
      const controller = new AbortController();
      let jobId = "";
      const call = client.callTool({ name: "localize", arguments: { issue: "SLOW-ISSUE: it hangs after the restart", repo_url: repo.url, commit: repo.commits[0]!, policy: "codescout" } }, CallToolResultSchema, {
        signal: controller.signal,
        onprogress: (p) => {
          jobId ||= /^queued: job (\S+)$/.exec(p.message ?? "")?.[1] ?? "";
          if (p.message === "turn 2/10") setTimeout(() => controller.abort("the agent moved on"), 300);
        },
      });
      await expect(call).rejects.toThrow();
      const ended = await waitFor(
        async () => {
          const job = await (await fetch(`${url}/v1/jobs/${jobId}`, { headers: { authorization: `Bearer ${KEY}` } })).json();
          return job.status === "running" || job.status === "queued" ? undefined : job;
        },
        30_000,
        "the job to end",
      );
      expect(ended).toMatchObject({ status: "cancelled", error: { code: "cancelled" } });
      await client.close();
    } finally {
      await restarted.stop();
    }
  });
  it("cancels a call's job when the client's cancellation reaches another API process than the call (no routing by session)", async () => {
    const port = await freePort();
    const otherUrl = `http://127.0.0.1:${port}`;
    const other = startProcess("src/api/server.ts", { ...apiEnv, API_PORT: String(port) });
    try {
      await waitFor(async () => ((await fetch(`${otherUrl}/healthz`).catch(() => null))?.ok ? true : undefined), 60_000, "the second API to start");
      // The JSON-RPC id the SDK's client gives the tool call, read from what it sends.
      const callIds: Array<string | number> = [];
      const recording: typeof fetch = (input, init) => {
        const body = typeof init?.body === "string" ? JSON.parse(init.body) : undefined;
        if (body?.method === "tools/call") callIds.push(body.id);
        return fetch(input, init);
      };
      const transport = new StreamableHTTPClientTransport(new URL(`${base}/mcp`), { requestInit: { headers: { authorization: `Bearer ${KEY}` } }, fetch: recording });
      const client = new Client({ name: "codescout-test", version: "1.0.0" });
      await client.connect(transport);
      let jobId = "";
      let sent: Promise<Response> | undefined;
      const call = client
        .callTool({ name: "localize", arguments: { issue: "SLOW-ISSUE: it hangs, cancelled elsewhere", repo_url: repo.url, commit: repo.commits[0]!, policy: "codescout" } }, CallToolResultSchema, {
          onprogress: (p) => {
            jobId ||= /^queued: job (\S+)$/.exec(p.message ?? "")?.[1] ?? "";
            // The cancellation goes to the other process, as a load balancer that ignores the session may send it.
            if (p.message === "turn 2/10" && !sent)
              sent = fetch(`${otherUrl}/mcp`, {
                method: "POST",
                headers: { authorization: `Bearer ${KEY}`, "mcp-session-id": transport.sessionId!, "content-type": "application/json", accept: "application/json, text/event-stream" },
                body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: callIds[0], reason: "the agent moved on" } }),
              });
          },
        })
        .catch((err: unknown) => err);
      const ended = await waitFor(
        async () => {
          if (!jobId) return undefined;
          const job = await (await fetch(`${base}/v1/jobs/${jobId}`, { headers: { authorization: `Bearer ${KEY}` } })).json();
          return job.status === "running" || job.status === "queued" ? undefined : job;
        },
        30_000,
        "the job to end",
      );
      expect(callIds).toHaveLength(1);
      expect((await sent!).status).toBe(202);
      expect(ended).toMatchObject({ status: "cancelled", error: { code: "cancelled" } });
      // The process that holds the call answers it with the job as it ended.
      expect(await call).toMatchObject({ structuredContent: { job_id: jobId, status: "cancelled" } });
      await client.close();
    } finally {
      await other.stop();
    }
  });
});

describe("the tool without MCP (POST /v1/tools/localize)", () => {
  const call = (body: unknown, headers: Record<string, string> = {}, signal?: AbortSignal) =>
    fetch(`${base}/v1/tools/localize`, { method: "POST", headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json", ...headers }, body: JSON.stringify(body), signal });

  it("takes the arguments a model gave the tool and answers what the MCP tool answers, once the job has ended", async () => {
    const args = { issue: "PARSE-ISSUE: the parser drops values (asked without MCP)", repo_url: repo.url, commit: repo.commits[0]!, policy: "codescout" };
    const res = await call(args);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { text: string; is_error: boolean; result: { job_id: string; status: string; locations: unknown[] } };
    expect(body.is_error).toBe(false);
    expect(res.headers.get("location")).toBe(`/v1/jobs/${body.result.job_id}`);
    expect(body.result.status).toBe("succeeded");
    const { client } = await httpClient();
    const viaMcp = await client.callTool({ name: "localize", arguments: args }, CallToolResultSchema);
    await client.close();
    const mcpText = (viaMcp.content as Array<{ text: string }>)[0]!.text;
    // The same road: the same locations, and the same text but for the seconds each job took.
    const untimed = (t: string) => t.replace(/ in [\d.]+ s\)/, " in N s)");
    expect(body.result.locations).toEqual((viaMcp.structuredContent as { locations: unknown[] }).locations);
    expect(untimed(body.text)).toBe(untimed(mcpText));
    expect(body.text).toMatch(/^2 locations \(codescout, finish_tool in [\d.]+ s\):\npkg\/parser\.py:10-15 {2}Parser\.parse/);
  });

  it("answers a job that stayed quiet for a while with its status first, then blanks, then the body: valid JSON", async () => {
    const res = await call({ issue: "QUIET-ISSUE: the parser is slow to blame", repo_url: repo.url, commit: repo.commits[0]!, policy: "codescout" });
    expect(res.status).toBe(200);
    const raw = await res.text();
    expect(raw).toMatch(/^ +\{"text":"1 location \(codescout/);
    expect(JSON.parse(raw)).toMatchObject({ is_error: false, result: { status: "succeeded", locations: [{ file: "pkg/parser.py", function_name: "parse", valid: true }] } });
  });

  it("refuses what the tool does not take, naming the argument as the tool does, behind the API key", async () => {
    // The REST body's shape sent here: the unknown field is named, not the object holding it.
    const rest = await call({ issue: "x fails", repo: { url: repo.url } });
    expect(rest.status).toBe(422);
    expect(await rest.json()).toEqual({ error: { code: "validation_failed", message: "repo: not a field this request takes", field: "repo" } });
    const scheme = await call({ issue: "x fails", repo_url: "ftp://example.com/r.git" });
    expect(scheme.status).toBe(422);
    expect(await scheme.json()).toMatchObject({ error: { code: "invalid_repository", field: "repo_url" } });
    const neither = await call({ issue: "x fails" });
    expect(neither.status).toBe(422);
    expect(await neither.json()).toMatchObject({ error: { code: "invalid_repository", field: "repo_url" } });
    const turns = await call({ issue: "x fails", repo_url: repo.url, max_turns: 99 });
    expect(await turns.json()).toMatchObject({ error: { code: "validation_failed", field: "max_turns" } });
    const anonymous = await fetch(`${base}/v1/tools/localize`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ issue: "x fails", repo_url: repo.url }) });
    expect(anonymous.status).toBe(401);
  });

  it("keeps a quiet call's connection alive, leaves the job running when a client with an Idempotency-Key hangs up, and its retry follows that job to its end", async () => {
    const args = { issue: "SLOW-ISSUE: it hangs, and the client hangs up", repo_url: repo.url, commit: repo.commits[0]!, policy: "codescout" };
    const key = { "idempotency-key": `hang-up-${Date.now()}` };
    const asked = () => model.requests.filter((r) => JSON.stringify(r.body.messages).includes("the client hangs up")).length;
    const controller = new AbortController();
    // A job that stays quiet (the second request to the model hangs) still sends its status and
    // then blanks, which JSON allows before the body: a proxy in front sees a live connection.
    const res = await call(args, key, controller.signal);
    expect(res.status).toBe(200);
    expect(res.headers.get("location")).toMatch(/^\/v1\/jobs\/[0-9a-f-]{36}$/);
    const reader = res.body!.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toMatch(/^ +$/);
    await waitFor(async () => (asked() >= 2 ? true : undefined), 30_000, "the model to be asked twice");
    controller.abort("the connection dropped");
    await expect(reader.read()).rejects.toThrow();
    const jobId = res.headers.get("location")!.split("/").pop()!;
    const auth = { authorization: `Bearer ${KEY}` };
    // The retry follows the same job, still running; cancelled here (a DELETE), it reads that end.
    const again = call(args, key);
    await new Promise((r) => setTimeout(r, 500));
    expect(((await (await fetch(`${base}/v1/jobs/${jobId}`, { headers: auth })).json()) as { status: string }).status).toBe("running");
    expect((await fetch(`${base}/v1/jobs/${jobId}`, { method: "DELETE", headers: auth })).status).toBe(202);
    const body = (await (await again).json()) as { text: string; is_error: boolean; result: { job_id: string; status: string } };
    expect(body).toMatchObject({ is_error: true, result: { job_id: jobId, status: "cancelled", error: { code: "cancelled" } } });
    expect(asked()).toBe(2);
    await waitFor(async () => (containersOf(body.result.job_id) === "" ? true : undefined), 15_000, "the job's container to be removed");

    // Without an Idempotency-Key, hanging up is giving up: the job is cancelled.
    const plain = new AbortController();
    const gone = await call({ ...args, issue: `${args.issue} (no key)` }, {}, plain.signal);
    const plainId = gone.headers.get("location")!.split("/").pop()!;
    plain.abort("the agent moved on");
    await waitFor(async () => (((await (await fetch(`${base}/v1/jobs/${plainId}`, { headers: auth })).json()) as { status: string }).status === "cancelled" ? true : undefined), 20_000, "the job to be cancelled");
  });
});

describe("MCP over stdio (codescout-mcp)", () => {
  it("cancels the jobs of calls still held when the agent quits (its stdin closes)", async () => {
    const client = await stdioClient({ CODESCOUT_URL: base, CODESCOUT_API_KEY: KEY });
    let jobId = "";
    const asked = new Promise<void>((resolve) => {
      void client
        .callTool({ name: "localize", arguments: { issue: "SLOW-ISSUE: it hangs, and the agent quits", repo_url: repo.url, commit: repo.commits[0]!, policy: "codescout" } }, CallToolResultSchema, {
          onprogress: (p) => {
            jobId ||= /job (\S{36})/.exec(p.message ?? "")?.[1] ?? "";
            if (p.message === "turn 2/10") resolve();
          },
        })
        .catch(() => undefined);
    });
    await asked;
    expect(jobId).toMatch(/^[0-9a-f-]{36}$/);
    await client.close();
    const ended = await jobEnded(jobId);
    expect(ended).toMatchObject({ status: "cancelled", error: { code: "cancelled" } });
  });

  it("localizes a local checkout against its uncommitted edit, sending url + commit + patch; from a directory below the top, in that directory, naming the top its paths are relative to", async () => {
    const dir = checkoutWithEdit({ remote: true });
    const client = await stdioClient({ CODESCOUT_URL: base, CODESCOUT_API_KEY: KEY });
    const { tools } = await client.listTools();
    expect(tools[0]!.inputSchema.properties).toHaveProperty("path");
    const prompt = await client.getPrompt({ name: "localize", arguments: { issue: "the edit doubles wrongly" } });
    expect((prompt.messages[0]!.content as { text: string }).text).toContain("call the `localize` tool with its whole text in this checkout.");
    expect(client.getInstructions()).toContain("call the `localize` tool with its whole text in this checkout.");
    const progress: string[] = [];
    const result = await client.callTool(
      // An agent started in a package of the checkout (a monorepo's) gives that directory.
      { name: "localize", arguments: { issue: "SCOPED-ISSUE: the edit doubles wrongly", path: join(dir, "pkg"), policy: "codescout" } },
      CallToolResultSchema,
      { onprogress: (p) => progress.push(p.message ?? "") },
    );
    const out = result.structuredContent as { locations: Array<Record<string, unknown>>; root: string; scope: string };
    expect(out.root).toBe(realpathSync(dir));
    expect(out.scope).toBe("pkg");
    expect((result.content as Array<{ text: string }>)[0]!.text).toMatch(new RegExp(`^1 location \\(codescout, finish_tool in [\\d.]+ s; searched in pkg/ only; paths are relative to ${realpathSync(dir)}\\):\\npkg/util\\.py:5-7  only_in_the_edit`));
    // The edit's function is read from the edited tree, by the model and by the ranking beside it,
    // both in pkg/ alone, and answered as the checkout's path.
    expect(progress).toContain(`localizing in pkg/ only, the directory given (give ${realpathSync(dir)} to search the whole checkout)`);
    expect(out.locations).toEqual([
      { file: "pkg/util.py", function_name: "only_in_the_edit", start_line: 5, end_line: 7, valid: true, evidence: ["the model-free ranking's first file too, at confidence 1.00"] },
    ]);
    expect(progress.some((m) => m.includes("with the uncommitted changes"))).toBe(true);
    expect(progress.some((m) => m.startsWith("uploading"))).toBe(false);
    // A relative path is the client's, from its root (here --path), not from the server's working directory.
    const rooted = await stdioClient({ CODESCOUT_URL: base, CODESCOUT_API_KEY: KEY }, ["--path", dir]);
    const relative = await rooted.callTool({ name: "localize", arguments: { issue: "SCOPED-ISSUE: the edit doubles wrongly", path: "pkg", policy: "codescout" } }, CallToolResultSchema);
    expect(relative.structuredContent).toMatchObject({ root: realpathSync(dir), scope: "pkg" });
    await rooted.close();
    // A checkout's changes come from it: a diff passed beside it is refused, naming the argument.
    const both = await client.callTool({ name: "localize", arguments: { issue: "x", path: dir, patch: "diff --git a/x b/x\n" } }, CallToolResultSchema);
    expect(both.isError).toBe(true);
    expect((both.content as Array<{ text: string }>)[0]!.text).toContain("The request was refused (patch): patch goes with repo_url");
    const otherCommit = await client.callTool({ name: "localize", arguments: { issue: "x", path: dir, commit: "v1.0" } }, CallToolResultSchema);
    expect((otherCommit.content as Array<{ text: string }>)[0]!.text).toContain("The request was refused (commit): commit goes with repo_url");
    await client.close();
  });

  it("uploads a checkout no remote holds (nothing ignored leaves the machine), and dedupes it the second time", async () => {
    const dir = checkoutWithEdit({ remote: false });
    const client = await stdioClient({ CODESCOUT_URL: base, CODESCOUT_API_KEY: KEY }, ["--path", dir]);
    const progress: string[] = [];
    const args = { issue: "EDIT-ISSUE: doubling is wrong", policy: "codescout", snippets: true };
    const result = await client.callTool({ name: "localize", arguments: args }, CallToolResultSchema, { onprogress: (p) => progress.push(p.message ?? "") });
    const out = result.structuredContent as { locations: Array<Record<string, unknown>>; commit_sha: string };
    expect(result.isError, JSON.stringify(result.content)).toBeFalsy();
    expect(out.locations[0]).toMatchObject({ file: "pkg/util.py", function_name: "only_in_the_edit", valid: true, snippet: "@staticmethod\ndef only_in_the_edit(x):\n    return x * 2" });
    expect(progress.some((m) => m.startsWith("uploading"))).toBe(true);
    // The upload holds the tree git sees: .env is ignored, so it is not in it.
    const upload = await (await fetch(`${base}/v1/uploads/${out.commit_sha}`, { headers: { authorization: `Bearer ${KEY}` } })).json();
    expect(upload.files).toBe(Object.keys(SAMPLE_FILES).length + 1);
    // In the fast place, or on the cache's own disk while other caches' trees fill the fast place's budget.
    const tree = await new TreeStore({ cacheDir: config.REPO_CACHE_DIR }).find(join("uploads", out.commit_sha));
    expect(tree).toBeDefined();
    expect(execFileSync("find", [tree!, "-name", ".env"], { encoding: "utf8" })).toBe("");

    const again: string[] = [];
    await client.callTool({ name: "localize", arguments: { ...args, snippets: false } }, CallToolResultSchema, { onprogress: (p) => again.push(p.message ?? "") });
    expect(again.some((m) => m.includes("already holds this tree"))).toBe(true);

    // Edited since: the tree the service holds, and a patch of the changes since, without .env.
    writeFileSync(join(dir, "pkg/util.py"), `${readFileSync(join(dir, "pkg/util.py"), "utf8")}\n\ndef only_after_the_upload(y):\n    return y - 1\n`);
    writeFileSync(join(dir, ".env"), "SECRET=changed-and-still-never-leaves\n");
    const third: string[] = [];
    const edited = await client.callTool(
      { name: "localize", arguments: { issue: "only_after_the_upload subtracts one too many", policy: "baseline", snippets: true } },
      CallToolResultSchema,
      { onprogress: (p) => third.push(p.message ?? "") },
    );
    expect(edited.isError, JSON.stringify(edited.content)).toBeFalsy();
    expect(third.some((m) => /^the service holds this checkout as it was last sent \(\d+ files\); sending the changes since \(\d+ bytes of patch\)$/.test(m)), third.join("\n")).toBe(true);
    expect(third.some((m) => m.startsWith("uploading"))).toBe(false);
    const after = edited.structuredContent as { locations: Array<Record<string, unknown>>; commit_sha: string };
    expect(after.commit_sha).toBe(out.commit_sha);
    expect(after.locations[0]).toMatchObject({ file: "pkg/util.py", function_name: "only_after_the_upload", valid: true, snippet: "def only_after_the_upload(y):\n    return y - 1" });
    const trees = new TreeStore({ cacheDir: config.REPO_CACHE_DIR });
    const places = [...new Set([trees.dir, trees.spillDir])].filter((d) => existsSync(d));
    expect(places.length).toBeGreaterThan(0);
    for (const place of places) expect(execFileSync("find", [place, "-name", ".env"], { encoding: "utf8" })).toBe("");
    await client.close();
  });

  it("says with the answer what of the checkout it does not show as it is on disk: a submodule, edits git is told to ignore, a file a sparse checkout leaves out", async () => {
    const dir = checkoutWithEdit({ remote: false });
    const git = (...args: string[]) => execFileSync("git", args, { cwd: dir, encoding: "utf8" }).trim();
    // A submodule (its gitlink), an edit the user told git to ignore, and a file left out of the work tree.
    git("update-index", "--add", "--cacheinfo", `160000,${git("rev-parse", "HEAD")},libs/vend`);
    mkdirSync(join(dir, "libs/vend"), { recursive: true });
    writeFileSync(join(dir, "pkg/util.py"), "# a local setting\ndef helper():\n    return 42\n");
    git("update-index", "--assume-unchanged", "pkg/util.py");
    git("update-index", "--skip-worktree", "pkg/parser.py");
    unlinkSync(join(dir, "pkg/parser.py"));
    // Many files named as credentials (a test suite's certificates): said in one line.
    mkdirSync(join(dir, "certs"));
    for (let i = 0; i < 7; i++) writeFileSync(join(dir, "certs", `c${i}.pem`), "TEST CERT\n");
    const client = await stdioClient({ CODESCOUT_URL: base, CODESCOUT_API_KEY: KEY }, ["--path", dir]);
    const progress: string[] = [];
    const result = await client.callTool({ name: "localize", arguments: { issue: "`Parser.parse` loses values that contain '='", policy: "baseline" } }, CallToolResultSchema, {
      onprogress: (p) => progress.push(p.message ?? ""),
    });
    expect(result.isError, JSON.stringify(result.content)).toBeFalsy();
    const out = result.structuredContent as { locations: Array<Record<string, unknown>>; notes: string[] };
    expect(out.locations[0]).toMatchObject({ file: "pkg/parser.py", class_name: "Parser", function_name: "parse", valid: true });
    const notes = [
      "not searched: libs/vend, a submodule (another repository: give its directory as the path to search it)",
      "edits on disk not sent: pkg/util.py, which git is told to assume unchanged (--assume-unchanged or --skip-worktree); line ranges in it are the index's",
    ];
    expect(out.notes, JSON.stringify(result.content)).toBeDefined();
    expect(progress).toEqual(expect.arrayContaining(notes));
    expect(progress).toContain("left out 7 files whose names say they hold credentials: certs/c0.pem, certs/c1.pem, certs/c2.pem, certs/c3.pem, certs/c4.pem and 2 more");
    expect(out.notes).toEqual([...notes, "not in the work tree: pkg/parser.py (outside a sparse checkout?); the commit's copy was read"]);
    expect((result.content as Array<{ text: string }>)[0]!.text).toContain("\nNote: not searched: libs/vend, a submodule");
    await client.close();
  });

  it("uploads only the directory below the top it was given, when no remote holds the checkout, and answers in it", async () => {
    const dir = checkoutWithEdit({ remote: false });
    const client = await stdioClient({ CODESCOUT_URL: base, CODESCOUT_API_KEY: KEY });
    // Each call asks in words of its own, so that none is answered from the result cache: a
    // progress notification written just before the result can be dropped by the SDK's client
    // (it handles notifications a microtask after the response that ends the call), and the
    // client's own lines would be that last notification on a cached answer.
    let calls = 0;
    const ask = async () => {
      const progress: string[] = [];
      const args = { issue: `the edit doubles wrongly in only_in_the_edit (call ${++calls})`, path: join(dir, "pkg"), policy: "baseline" };
      const result = await client.callTool({ name: "localize", arguments: args }, CallToolResultSchema, { onprogress: (p) => progress.push(p.message ?? "") });
      expect(result.isError, JSON.stringify(result.content)).toBeFalsy();
      return { progress, out: result.structuredContent as { locations: Array<Record<string, unknown>>; commit_sha: string; root: string } };
    };
    const { progress, out } = await ask();
    expect(progress).toContain("uploading pkg/ of the tree");
    // The baseline's steps say what they do, not the sandbox's directory.
    expect(progress).toContain("$ python3 <repository scan>");
    expect(progress.join("\n")).not.toContain("/tmp/testbed");
    // pkg/__init__.py, parser.py and util.py: not README.md, tests/ or the ignored .env.
    const upload = await (await fetch(`${base}/v1/uploads/${out.commit_sha}`, { headers: { authorization: `Bearer ${KEY}` } })).json();
    expect(upload.files).toBe(3);
    expect(out.locations[0]).toMatchObject({ file: "pkg/util.py", function_name: "only_in_the_edit", valid: true, start_line: 5, end_line: 7 });
    expect(out.root).toBe(realpathSync(dir));
    const again = await ask();
    expect(again.progress, again.progress.join("\n")).toContain("the service already holds pkg/ of the tree (3 files)");
    // An edit outside pkg/ changes nothing the job reads; one inside it goes as a patch on the upload.
    writeFileSync(join(dir, "README.md"), "# edited outside the package\n");
    const outside = await ask();
    expect(outside.progress, outside.progress.join("\n")).toContain("the service holds this checkout as it was last sent (3 files), and nothing it would send has changed since");
    writeFileSync(join(dir, "pkg/parser.py"), "class Parser:\n    pass\n");
    const edited = await ask();
    expect(edited.progress.some((m) => /^the service holds this checkout as it was last sent \(3 files\); sending the changes since \(\d+ bytes of patch\)$/.test(m)), edited.progress.join("\n")).toBe(true);
    expect(edited.out.locations[0]).toMatchObject({ file: "pkg/util.py", function_name: "only_in_the_edit", valid: true });
    await client.close();
  });

  it("over stdio, names what the calling model or its user can mend: the scope, the server's key, a service that is down", async () => {
    const dir = checkoutWithEdit({ remote: false });
    const text = async (env: Record<string, string>, args: Record<string, unknown>) => {
      const client = await stdioClient(env, ["--path", dir]);
      try {
        const result = await client.callTool({ name: "localize", arguments: { issue: "the edit doubles wrongly", policy: "baseline", ...args } }, CallToolResultSchema);
        expect(result.isError).toBe(true);
        return (result.content as Array<{ text: string }>)[0]!.text;
      } finally {
        await client.close();
      }
    };
    expect(await text({ CODESCOUT_URL: base, CODESCOUT_API_KEY: KEY }, { scope: "nope/dir" })).toBe("The request was refused (scope): nope/dir/ holds no file git would send (tracked, or untracked and not ignored) [invalid_scope]");
    // A directory on disk that git ignores: nothing in it is ever sent, and the call says why.
    mkdirSync(join(dir, "build", "gen"), { recursive: true });
    writeFileSync(join(dir, "build", "gen", "out.py"), "def generated():\n    pass\n");
    writeFileSync(join(dir, ".gitignore"), ".env\nbuild/\n");
    expect(await text({ CODESCOUT_URL: base, CODESCOUT_API_KEY: KEY }, { path: join(dir, "build", "gen") })).toBe(
      "The request was refused (path): build/gen/ is ignored by git (.gitignore:2:build/): nothing in it is sent; give a directory git tracks, or the checkout's top [invalid_path]",
    );
    expect(await text({ CODESCOUT_URL: base, CODESCOUT_API_KEY: "not-the-key" }, {})).toMatch(/^The request was refused: the service refused the API key codescout-mcp sent \(.*\): set CODESCOUT_API_KEY in the env of this MCP server's entry in the client's config \[invalid_api_key\]$/);
    // A port nothing listens on (not 9: fetch refuses the discard port itself, as a "bad port").
    const down = `http://127.0.0.1:${await freePort()}`;
    const said = await text({ CODESCOUT_URL: down }, {});
    expect(said.startsWith(`The service could not be reached: cannot reach the service at ${down}: `), said).toBe(true);
    expect(said).toMatch(/ECONNREFUSED[^(]*\(is it running\? CODESCOUT_URL names it\) \[service_unreachable\]$/);
  });

  it("reads the checkout of the client's roots when a call names none, and refuses one outside them", async () => {
    const inside = checkoutWithEdit({ remote: false });
    const outside = checkoutWithEdit({ remote: false });
    const client = await stdioClient({ CODESCOUT_URL: base, CODESCOUT_API_KEY: KEY }, [], [inside]);
    try {
      const own = await client.callTool({ name: "localize", arguments: { issue: "only_in_the_edit doubles wrongly", policy: "baseline" } }, CallToolResultSchema);
      expect(own.isError, JSON.stringify(own.content)).toBeFalsy();
      expect(own.structuredContent).toMatchObject({ root: realpathSync(inside), locations: [{ file: "pkg/util.py", function_name: "only_in_the_edit" }] });
      const below = await client.callTool({ name: "localize", arguments: { issue: "only_in_the_edit doubles wrongly", policy: "baseline", path: join(inside, "pkg") } }, CallToolResultSchema);
      expect(below.isError, JSON.stringify(below.content)).toBeFalsy();
      const other = await client.callTool({ name: "localize", arguments: { issue: "only_in_the_edit doubles wrongly", policy: "baseline", path: outside } }, CallToolResultSchema);
      expect(other.isError).toBe(true);
      expect((other.content as Array<{ text: string }>)[0]!.text).toBe(
        `The request was refused (path): ${outside} is outside the directories the client gave this server as its roots (${inside}): give a checkout inside them [invalid_path]`,
      );
    } finally {
      await client.close();
    }
    // A client that declares a workspace and gives none: an empty one, not an open one.
    const none = await stdioClient({ CODESCOUT_URL: base, CODESCOUT_API_KEY: KEY }, [], []);
    try {
      const refused = await none.callTool({ name: "localize", arguments: { issue: "only_in_the_edit doubles wrongly", policy: "baseline", path: outside } }, CallToolResultSchema);
      expect((refused.content as Array<{ text: string }>)[0]!.text).toMatch(/^The request was refused \(path\): the client declares a workspace \(roots\) but gave this server none it can read/);
    } finally {
      await none.close();
    }
  });

  it("asks a client that says when its roots change for them once, until they change; and compares a path with them as directories, not spellings", async () => {
    const first = checkoutWithEdit({ remote: false });
    const second = checkoutWithEdit({ remote: false });
    let roots = [first];
    let asked = 0;
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [resolve("bin/codescout-mcp.mjs")],
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root", CODESCOUT_CACHE_DIR: cacheDir, CODESCOUT_URL: base, CODESCOUT_API_KEY: KEY },
      stderr: "pipe",
    });
    const client = new Client({ name: "codescout-test", version: "1.0.0" }, { capabilities: { roots: { listChanged: true } } });
    client.setRequestHandler(ListRootsRequestSchema, () => {
      asked++;
      return { roots: roots.map((dir) => ({ uri: pathToFileURL(dir).href })) };
    });
    await client.connect(transport);
    const call = (path?: string) => client.callTool({ name: "localize", arguments: { issue: "only_in_the_edit doubles wrongly", policy: "baseline", ...(path ? { path } : {}) } }, CallToolResultSchema);
    try {
      expect((await call()).isError).toBeFalsy();
      expect((await call(join(first, "pkg"))).isError).toBeFalsy();
      expect(asked).toBe(1);
      expect((await call(second)).isError).toBe(true);
      roots = [second];
      await client.sendRootsListChanged();
      await waitFor(async () => ((await call(second)).isError ? undefined : true), 10_000, "the new root taken");
      expect(asked).toBe(2);
    } finally {
      await client.close();
    }
    // A root is a directory, not a spelling: the same directory through a link is in it, a sibling
    // spelled alike but for case (two directories on a case-sensitive volume) is not, and a path
    // not on disk yet is judged by where it would be. (macOS's either case and Unicode form for one
    // directory is its file system's to say: one inode.)
    mkdirSync(join(first, "Proj", "pkg"), { recursive: true });
    mkdirSync(join(first, "proj", "secret"), { recursive: true });
    symlinkSync(join(first, "Proj"), join(second, "linked"));
    expect(withinAny(join(first, "Proj", "pkg"), [join(second, "linked")])).toBe(true);
    expect(withinAny(join(first, "Proj", "not-yet", "x.py"), [join(first, "Proj")])).toBe(true);
    expect(withinAny(join(first, "proj", "secret"), [join(first, "Proj")])).toBe(false);
    expect(withinAny(join(first, "Proj", "..", "proj"), [join(first, "Proj")])).toBe(false);
    // A root with no identity to compare (not on disk; a volume that gives no file ids) is compared as spelled.
    expect(withinAny(join(first, "gone", "x.py"), [join(first, "gone")])).toBe(true);
    expect(withinAny(join(first, "gone2", "x.py"), [join(first, "gone")])).toBe(false);
    // A link inside a root that leads out of it is judged by where it leads.
    symlinkSync(join(first, "proj"), join(first, "Proj", "out"));
    expect(withinAny(join(first, "Proj", "out", "secret"), [join(first, "Proj")])).toBe(false);
  });

  it("says where the bulk of a tree the service refuses as too large is, and how to leave it out", async () => {
    const dir = checkoutWithEdit({ remote: false });
    mkdirSync(join(dir, "fixtures"));
    // Past the service's cap on an archive (64 KiB) compressed too: the client sends a tree refused uncompressed once more compressed.
    writeFileSync(join(dir, "fixtures", "recording.json"), randomBytes(150_000).toString("base64"));
    const client = await stdioClient({ CODESCOUT_URL: openBase }, ["--path", dir]);
    const result = await client.callTool({ name: "localize", arguments: { issue: "EDIT-ISSUE: doubling is wrong", policy: "codescout" } }, CallToolResultSchema);
    expect(result.isError).toBe(true);
    const text = JSON.stringify(result.content);
    expect(text).toContain("upload_too_large");
    expect(text).toMatch(/the largest parts: fixtures\/ \(0\.2 MiB\), pkg\/ \(0\.0 MiB, tracked\)/);
    expect(text).toContain("What is untracked and not source can go in .gitignore");
    // Committed, the bulk is git's to send whatever an ignore file says: a directory below the top is what is left.
    execFileSync("git", ["add", "fixtures"], { cwd: dir });
    execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "recording"], { cwd: dir });
    const tracked = JSON.stringify((await client.callTool({ name: "localize", arguments: { issue: "EDIT-ISSUE: doubling is wrong", policy: "codescout" } }, CallToolResultSchema)).content);
    expect(tracked).toMatch(/the largest parts: fixtures\/ \(0\.2 MiB, tracked\)/);
    expect(tracked).toContain("What is tracked is always sent: give a directory below the top as the path to send that directory alone");
    expect(tracked).not.toContain(".gitignore");
    await client.close();
  });

  it("sends what the commit an issue names changed, read from the local history, with an upload (the service has none for it)", async () => {
    const dir = checkoutWithEdit({ remote: false });
    const commit = (message: string) => execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qam", message], { cwd: dir });
    writeFileSync(join(dir, "pkg/util.py"), "def helper():\n    return 41\n");
    commit("a change that broke it");
    const culprit = execFileSync("git", ["rev-parse", "HEAD"], { cwd: dir, encoding: "utf8" }).trim();
    writeFileSync(join(dir, "README.md"), "# sample, later\n");
    commit("docs");
    const client = await stdioClient({ CODESCOUT_URL: base, CODESCOUT_API_KEY: KEY }, ["--path", dir]);
    const progress: string[] = [];
    const issue = `The answer is off by one\n\nRegression in ${writtenSha(culprit)}.`;
    const result = await client.callTool({ name: "localize", arguments: { issue, policy: "baseline" } }, CallToolResultSchema, { onprogress: (p) => progress.push(p.message ?? "") });
    expect(result.isError, JSON.stringify(result.content)).toBeFalsy();
    expect(progress.some((m) => m.startsWith("uploading"))).toBe(true);
    expect(progress).toContain("sending what the commit the issue names changed, read from the local history");
    const out = result.structuredContent as { locations: Array<{ file: string; function_name?: string; evidence?: string[] }> };
    expect(out.locations[0]).toMatchObject({ file: "pkg/util.py", function_name: "helper" });
    expect(out.locations[0]!.evidence).toContain(`changed in commit ${writtenSha(culprit)}, which the issue names`);
    await client.close();
  });

  it("localizes in a TypeScript checkout with the baseline: the method, its line range, its code fenced as TypeScript", async () => {
    const dir = mkdtempSync(join(tmpdir(), "codescout-checkout-"));
    scratch.push(dir);
    execFileSync("git", ["init", "-q", "-b", "main", dir]);
    execFileSync("mkdir", ["-p", join(dir, "src")]);
    writeFileSync(join(dir, "src/retry.ts"), "export class Backoff {\n  delay(attempt: number): number {\n    return 100 * 2 ** attempt;\n  }\n}\n");
    writeFileSync(join(dir, "src/client.ts"), "export async function send(url: string) {\n  return fetch(url);\n}\n");
    writeFileSync(join(dir, "src/jitter.ts"), "// Spreads each retry delay a little, so clients do not retry together.\nexport function jitter(delay: number): number {\n  return delay * (0.9 + Math.random() / 5);\n}\n");
    execFileSync("git", ["add", "-A"], { cwd: dir });
    execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "files"], { cwd: dir });
    const client = await stdioClient({ CODESCOUT_URL: base, CODESCOUT_API_KEY: KEY }, ["--path", dir]);
    const issue = "`Backoff.delay` grows without a cap: the retry delay after attempt 20 is hours";
    const result = await client.callTool({ name: "localize", arguments: { issue, policy: "baseline", snippets: true } }, CallToolResultSchema);
    expect(result.isError, JSON.stringify(result.content)).toBeFalsy();
    const out = result.structuredContent as { locations: Array<Record<string, unknown>> };
    expect(out.locations[0]).toMatchObject({ file: "src/retry.ts", class_name: "Backoff", function_name: "delay", start_line: 2, end_line: 4, valid: true });
    const text = (result.content as Array<{ text: string }>)[0]!.text;
    expect(text).toContain("src/retry.ts:2-4  Backoff.delay");
    expect(text).toContain("```ts\n  delay(attempt: number): number {");
    // How sure the baseline is, for programs and for the calling model alike.
    const confidence = out.locations[0]!.confidence as { file: number; function: number };
    expect(confidence.file).toBeGreaterThan(0.5);
    expect(text).toContain(`Backoff.delay  [confidence: file ${confidence.file.toFixed(2)}, function ${confidence.function.toFixed(2)}]`);
    const vague = await client.callTool({ name: "localize", arguments: { issue: "Clients retry together\n\nAfter an outage every client retries at the same moment.", policy: "baseline" } }, CallToolResultSchema);
    // A vaguer issue: the answer is less sure, and the next files come as leads, checked and with their line ranges.
    const leads = vague.structuredContent as { locations: Array<{ file: string; confidence: { file: number } }>; alternatives: Array<Record<string, unknown>> };
    expect(leads.locations.map((l) => l.file)).toEqual(["src/jitter.ts"]);
    expect(leads.alternatives[0]).toMatchObject({ file: "src/retry.ts", class_name: "Backoff", function_name: "delay", start_line: 2, end_line: 4, valid: true });
    expect((leads.alternatives[0]!.confidence as { file: number }).file).toBeLessThan(leads.locations[0]!.confidence.file);
    const vagueText = (vague.content as Array<{ text: string }>)[0]!.text;
    expect(vagueText).toMatch(/\nAlso considered, less likely .*\nsrc\/retry\.ts:2-4 {2}Backoff\.delay {2}\[confidence: file 0\.\d\d\]/);
    expect(text).not.toContain("Also considered");
    // The answer alone, when the caller asks for no leads: the same answer, nothing beside it.
    const alone = await client.callTool({ name: "localize", arguments: { issue: "Clients retry together\n\nAfter an outage every client retries at the same moment.", policy: "baseline", alternatives: false } }, CallToolResultSchema);
    const aloneOut = alone.structuredContent as { locations: Array<{ file: string }>; alternatives?: unknown };
    expect(aloneOut.locations.map((l) => l.file)).toEqual(["src/jitter.ts"]);
    expect(aloneOut.alternatives).toBeUndefined();
    expect((alone.content as Array<{ text: string }>)[0]!.text).not.toContain("Also considered");
    await client.close();
  });
});

describe("clients nobody here wrote", () => {
  it("the MCP Inspector CLI lists and calls the tool over HTTP and stdio", async () => {
    const inspector = resolve("node_modules/.bin/mcp-inspector");
    const listed = await run(inspector, ["--cli", `${base}/mcp`, "--transport", "http", "--header", `Authorization: Bearer ${KEY}`, "--method", "tools/list"], { timeout: 60_000 });
    expect(JSON.parse(listed.stdout).tools[0].name).toBe("localize");
    const called = await run(
      inspector,
      ["--cli", `${base}/mcp`, "--transport", "http", "--header", `Authorization: Bearer ${KEY}`, "--method", "tools/call", "--tool-name", "localize",
        "--tool-arg", "issue=PARSE-ISSUE: from the inspector", `repo_url=${repo.url}`, `commit=${repo.commits[0]}`, "policy=codescout"],
      { timeout: 120_000 },
    );
    const result = JSON.parse(called.stdout);
    expect(result.structuredContent.locations[0]).toMatchObject({ file: "pkg/parser.py", class_name: "Parser", start_line: 10 });

    const stdio = await run(inspector, ["--cli", "-e", `CODESCOUT_URL=${base}`, "-e", `CODESCOUT_API_KEY=${KEY}`, process.execPath, resolve("bin/codescout-mcp.mjs"), "--method", "tools/list"], { timeout: 60_000 });
    expect(JSON.parse(stdio.stdout).tools[0].inputSchema.properties).toHaveProperty("path");
  }, 240_000);

  it("passes the conformance suite's server checks that apply (initialize, ping, tools/list, DNS rebinding)", async () => {
    const conformance = resolve("node_modules/.bin/conformance");
    for (const scenario of ["server-initialize", "ping", "tools-list", "dns-rebinding-protection"]) {
      // Exits non-zero when a check fails.
      const { stdout } = await run(conformance, ["server", "--url", `${openBase}/mcp`, "--scenario", scenario], { timeout: 60_000 });
      expect(stdout, scenario).toMatch(/Passed: (\d+)\/\1, 0 failed/);
      expect(stdout, scenario).not.toMatch(/FAILURE/);
    }
  }, 240_000);
});
