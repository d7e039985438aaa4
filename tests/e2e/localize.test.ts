import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { createServer, type Server } from "node:http";
import { mkdtempSync, readdirSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execFile, execFileSync } from "node:child_process";
import { promisify } from "node:util";
import { createHmac } from "node:crypto";
import { startFakeModel, type FakeModel } from "../helpers/fakeModel.js";
import { makeGitFixture, writtenSha, type GitFixture } from "../helpers/gitFixture.js";
import { containersOf, freePort, serviceEnv, startProcess, waitFor, type ServiceProcess } from "../helpers/processes.js";
import { testConfig } from "../helpers/config.js";
import { dropPrefix } from "../helpers/redis.js";
import { TreeStore } from "../../src/repos/trees.js";

/**
 * The whole road with real processes: the API and a worker started from their entry
 * points, real Redis, a real Docker engine, a git repository made here, and the scripted
 * model server. Only the model is a stand-in.
 */
const config = testConfig();
let model: FakeModel;
let repo: GitFixture;
let api: ServiceProcess;
let worker: ServiceProcess;
let base: string;
let hooks: Server;
/** The issue files the command-line client reads. */
let issues: string;
const received: Array<{ headers: Record<string, unknown>; body: string }> = [];
const WEBHOOK_SECRET = "e2e-webhook-secret-0123456789";

beforeAll(async () => {
  model = await startFakeModel();
  repo = makeGitFixture();
  issues = mkdtempSync(join(tmpdir(), "codescout-issues-"));
  hooks = createServer((req, res) => {
    let body = "";
    req.on("data", (d: Buffer) => (body += d));
    req.on("end", () => {
      received.push({ headers: req.headers, body });
      res.writeHead(received.length === 1 ? 503 : 200).end();
    });
  });
  await new Promise<void>((r) => hooks.listen(0, "127.0.0.1", r));
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const env = serviceEnv(config, {
    ALLOW_PRIVATE_HOSTS: "true",
    MODEL_BASE_URL: model.baseURL,
    MODEL_MAX_RETRIES: "1",
    WEBHOOK_SECRET,
    API_PORT: String(port),
    LOG_LEVEL: "info",
  });
  worker = startProcess("src/worker/main.ts", env);
  api = startProcess("src/api/server.ts", env);
  await waitFor(async () => ((await fetch(`${base}/readyz`)).ok ? true : undefined), 60_000, "the service to be ready");
}, 90_000);

afterAll(async () => {
  await Promise.all([api?.stop(), worker?.stop()]);
  await model?.close();
  hooks?.close();
  repo?.cleanup();
  if (issues) rmSync(issues, { recursive: true, force: true });
  await dropPrefix(config.QUEUE_PREFIX);
});

describe("end to end", () => {
  it("localizes an issue in a local repository with the scripted model, and leaves no container", async () => {
    model.script([
      { toolCalls: [{ name: "terminal", arguments: { command: 'rg -n "def parse" -t py', security_risk: "LOW" } }] },
      { toolCalls: [{ name: "terminal", arguments: { command: "sed -n '1,40p' pkg/parser.py", security_risk: "LOW" } }] },
      {
        toolCalls: [
          {
            name: "localization_finish",
            arguments: {
              locations: [
                { file: "pkg/parser.py", class_name: "Parser", function_name: "parse" },
                { file: "./pkg/parser.py", class_name: "Parser", function_name: "parse" },
                { file: "pkg/missing.py" },
              ],
            },
          },
        ],
      },
    ]);
    const post = await fetch(`${base}/v1/localize`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        repo: { url: repo.url, commit: repo.commits[0] },
        issue: "Parser.parse drops values containing '='",
        callback_url: `http://127.0.0.1:${(hooks.address() as { port: number }).port}/hook`,
      }),
    });
    expect(post.status).toBe(202);
    const { id } = (await post.json()) as { id: string };

    const done = await waitFor(
      async () => {
        const job = (await (await fetch(`${base}/v1/jobs/${id}`)).json()) as { status: string };
        return ["succeeded", "failed", "cancelled"].includes(job.status) ? job : undefined;
      },
      60_000,
      "the job to end",
    );
    expect(done, worker.output().slice(-3000)).toMatchObject({
      status: "succeeded",
      result: {
        policy: "codescout",
        finish_reason: "finish_tool",
        commit_sha: repo.commits[0],
        locations: [
          { file: "pkg/parser.py", class_name: "Parser", function_name: "parse", valid: true },
          { file: "pkg/missing.py", valid: false, problem: "file not found" },
        ],
        files: ["pkg/parser.py", "pkg/missing.py"],
        modules: ["pkg/parser.py:Parser"],
        entities: ["pkg/parser.py:Parser.parse"],
        turns: 3,
        usage: { model_calls: 3 },
      },
    });
    // Removed once the answer is out (worker/cleanups.ts), not before.
    await waitFor(async () => (containersOf(id) === "" ? true : undefined), 15_000, "the job's container to be removed");
    // The worker is done with the tree: it holds it no longer, so the cache may reuse its room.
    const holds = join(new TreeStore({ cacheDir: config.REPO_CACHE_DIR }).dir, ".holds");
    await waitFor(async () => (readdirSync(holds, { recursive: true, withFileTypes: true }).some((e) => e.isFile()) ? undefined : true), 15_000, "the tree to be released");
    expect(readdirSync(holds).length).toBeGreaterThan(0); // ... and did hold it

    const events = await (await fetch(`${base}/v1/jobs/${id}/events`)).text();
    const types = [...events.matchAll(/^event: (\w+)$/gm)].map((m) => m[1]);
    expect(types).toEqual(["queued", "started", "repository_ready", "sandbox_ready", "turn", "command", "turn", "command", "turn", "finished"]);

    const trajectory = (await (await fetch(`${base}/v1/jobs/${id}/trajectory`)).json()) as { trajectory: { steps: Array<{ kind: string; observation?: string }> } };
    const observations = trajectory.trajectory.steps.filter((s) => s.kind === "tool" && s.observation).map((s) => s.observation!);
    expect(observations[1]).toContain("class Parser:");

    // The webhook: first delivery refused (503), retried, signed.
    await waitFor(async () => (received.length >= 2 ? true : undefined), 30_000, "the webhook retry");
    const hook = received[1]!;
    const [t, v1] = String(hook.headers["x-codescout-signature"]).split(",").map((p) => p.split("=")[1]);
    expect(v1).toBe(createHmac("sha256", WEBHOOK_SECRET).update(`${t}.${hook.body}`).digest("hex"));
    expect(JSON.parse(hook.body)).toMatchObject({ id, status: "succeeded" });

    // The same request again is answered from the result cache, without the model.
    const calls = model.requests.length;
    const again = await fetch(`${base}/v1/localize`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ repo: { url: repo.url, commit: repo.commits[0] }, issue: "Parser.parse drops values containing '='" }),
    });
    expect(again.status).toBe(200);
    expect(await again.json()).toMatchObject({ status: "succeeded", cached: true });
    expect(model.requests.length).toBe(calls);
    // Answered from the cache, with no worker involved, it still has its webhook.
    const hooked = await fetch(`${base}/v1/localize`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ repo: { url: repo.url, commit: repo.commits[0] }, issue: "Parser.parse drops values containing '='", callback_url: `http://127.0.0.1:${(hooks.address() as { port: number }).port}/hook` }),
    });
    const cachedId = ((await hooked.json()) as { id: string }).id;
    await waitFor(async () => (received.some((r) => (JSON.parse(r.body) as { id: string }).id === cachedId) ? true : undefined), 30_000, "the cached answer's webhook");
    // The first job's webhook was queued twice (by the worker before it recorded the end, and
    // once BullMQ had): delivered once, the refused attempt and its retry.
    expect(received.filter((r) => (JSON.parse(r.body) as { id: string }).id === id)).toHaveLength(2);
  });

  it("cancels a running job: the model request is aborted and the container removed", async () => {
    model.script([{ hang: true }]);
    const post = await fetch(`${base}/v1/localize`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ repo: { url: repo.url, commit: repo.commits[0] }, issue: "cancel me", options: { cache: false } }),
    });
    const { id } = (await post.json()) as { id: string };
    await waitFor(async () => {
      const job = (await (await fetch(`${base}/v1/jobs/${id}`)).json()) as { progress?: { phase: string; turn: number } };
      return job.progress?.phase === "localizing" && job.progress.turn >= 1 ? true : undefined;
    }, 30_000, "the job to reach the model");
    const del = await fetch(`${base}/v1/jobs/${id}`, { method: "DELETE" });
    expect(del.status).toBe(202);
    const ended = await waitFor(async () => {
      const job = (await (await fetch(`${base}/v1/jobs/${id}`)).json()) as { status: string; error: unknown };
      return job.status === "cancelled" ? job : undefined;
    }, 20_000, "the job to be cancelled");
    expect(ended.error).toMatchObject({ code: "cancelled" });
    // Removed once the answer is out (worker/cleanups.ts), not before.
    await waitFor(async () => (containersOf(id) === "" ? true : undefined), 15_000, "the job's container to be removed");
  });

  it("ends a job's event stream only once the job reads as ended, with its result", async () => {
    // The worker announces the end a moment before BullMQ records it: a client that reads the job
    // on the final event found it still running, without a result (4 of 100 in the race review).
    const seen: string[] = [];
    for (let i = 0; i < 20; i++) {
      const post = await fetch(`${base}/v1/localize`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ repo: { url: repo.url, commit: repo.commits[0] }, issue: `helper returns the wrong number (${i})`, options: { policy: "baseline", cache: false } }) });
      const { id } = (await post.json()) as { id: string };
      const stream = await (await fetch(`${base}/v1/jobs/${id}/events`)).text();
      const job = (await (await fetch(`${base}/v1/jobs/${id}`)).json()) as { status: string; result: unknown };
      seen.push(`${[...stream.matchAll(/^event: (\w+)$/gm)].at(-1)?.[1]} -> ${job.status}${job.result ? "" : " without a result"}`);
    }
    expect(new Set(seen)).toEqual(new Set(["finished -> succeeded"]));
  }, 120_000);

  it("ends a baseline job cancelled during its scan as cancelled, not with the scan's answer", async () => {
    // A tree whose scan takes a while: the DELETE lands while it runs.
    const body = Array.from({ length: 60 }, (_, k) => `class C${k}:\n    def helper_${k}(self, value):\n        return value + ${k}\n`).join("\n");
    const big = makeGitFixture(Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`pkg/m${Math.floor(i / 100)}/mod_${i}.py`, body.replace(/helper_/g, `helper${i}_`)])));
    try {
      const post = await fetch(`${base}/v1/localize`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ repo: { url: big.url, commit: big.commits[0] }, issue: "helper1234_5 returns the wrong number", options: { policy: "baseline", cache: false } }),
      });
      const { id } = (await post.json()) as { id: string };
      await waitFor(async () => {
        const job = (await (await fetch(`${base}/v1/jobs/${id}`)).json()) as { progress?: { phase: string } };
        return job.progress?.phase === "localizing" ? true : undefined;
      }, 60_000, "the job to start its scan");
      expect((await fetch(`${base}/v1/jobs/${id}`, { method: "DELETE" })).status).toBe(202);
      const ended = (await (await fetch(`${base}/v1/jobs/${id}?wait=60`)).json()) as { status: string; error: unknown; result: unknown };
      expect(ended).toMatchObject({ status: "cancelled", error: { code: "cancelled" }, result: null });
      await waitFor(async () => (containersOf(id) === "" ? true : undefined), 15_000, "the job's container to be removed");
    } finally {
      big.cleanup();
    }
  }, 120_000);

  it("serves the command-line client: submit, follow progress, print the locations", async () => {
    model.script([
      { toolCalls: [{ name: "terminal", arguments: { command: "rg -n helper", security_risk: "LOW" } }] },
      { toolCalls: [{ name: "localization_finish", arguments: { locations: [{ file: "pkg/util.py", function_name: "helper" }] } }] },
    ]);
    const issueFile = join(issues, "issue.md");
    writeFileSync(issueFile, "helper() returns 42 instead of 43");
    // Asynchronously: the scripted model answers from this very process.
    const run = async (...extra: string[]) =>
      (await promisify(execFile)("npx", ["tsx", "src/cli/localize.ts", "--api", base, "--repo", repo.url, "--commit", repo.commits[0]!, "--issue-file", issueFile, "--no-cache", ...extra], { encoding: "utf8" })).stdout;
    const table = await run();
    expect(table).toMatch(/^location\s+class\s+function/m);
    // The model's location has no confidence: under it, where the model-free ranking put its file.
    expect(table).toMatch(/^pkg\/util\.py:1-2\s+helper\n {4}the model-free ranking's first file too, at confidence [01]\.\d\d$/m);
    const json = JSON.parse(await run("--json", "--quiet")) as { status: string; result: { entities: string[] } };
    expect(json).toMatchObject({ status: "succeeded", result: { entities: ["pkg/util.py:helper"] } });
    const refused = await promisify(execFile)("npx", ["tsx", "src/cli/localize.ts", "--api", base, "--repo", repo.url], { encoding: "utf8" }).catch((err: { stderr: string }) => err);
    expect(refused.stderr).toContain("--commit is required");
    // A diff on top of the commit (a pull request's, an edit not pushed), from stdin.
    const patched = promisify(execFile)(
      "npx",
      ["tsx", "src/cli/localize.ts", "--api", base, "--repo", repo.url, "--commit", repo.commits[0]!, "--patch-file", "-", "--issue", "helper_in_the_diff() returns 44", "--policy", "baseline", "--no-cache", "--json", "--quiet"],
      { encoding: "utf8" },
    );
    patched.child.stdin!.end("--- a/pkg/util.py\n+++ b/pkg/util.py\n@@ -1,2 +1,6 @@\n def helper():\n     return 42\n+\n+\n+def helper_in_the_diff():\n+    return 44\n");
    const patchedView = JSON.parse((await patched).stdout) as { repo: { patch_sha256?: string }; result: { locations: Array<{ function_name?: string }> } };
    expect(patchedView.repo.patch_sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(patchedView.result.locations[0]).toMatchObject({ function_name: "helper_in_the_diff" });
    const both = await promisify(execFile)("npx", ["tsx", "src/cli/localize.ts", "--api", base, "--path", ".", "--patch-file", "x.diff", "--issue", "x"], { encoding: "utf8" }).catch((err: { stderr: string }) => err);
    expect(both.stderr).toContain("--path sends the checkout's own changes; --patch-file goes with --repo/--commit");
    const twice = await promisify(execFile)("npx", ["tsx", "src/cli/localize.ts", "--api", base, "--path", ".", "--issue", "x", "--issue-file", issueFile], { encoding: "utf8" }).catch((err: { stderr: string }) => err);
    expect(twice.stderr).toContain("give the issue once");
    // Nothing listens on the discard port: the message says what to start or set.
    const down = await promisify(execFile)("npx", ["tsx", "src/cli/localize.ts", "--api", "http://127.0.0.1:9", "--repo", repo.url, "--commit", repo.commits[0]!, "--issue", "x"], { encoding: "utf8" }).catch((err: { stderr: string }) => err);
    expect(down.stderr).toMatch(/^localize: cannot reach the service at http:\/\/127\.0\.0\.1:9: .* \(is it running\? `npm start` in the codescout-service checkout starts one; --api or CODESCOUT_URL names another\)$/m);

    // The baseline's table has its confidence, and the files it would read next under it.
    // The issue given as text on the command line.
    const vague = "Values of parsed lines are wrong\n\nThe values read from each line come out wrong, and a helper is involved too.";
    const leads = (await promisify(execFile)("npx", ["tsx", "src/cli/localize.ts", "--api", base, "--repo", repo.url, "--commit", repo.commits[0]!, "--issue", vague, "--policy", "baseline", "--no-cache"], { encoding: "utf8" })).stdout;
    expect(leads).toMatch(/^location\s+class\s+function\s+confidence$/m);
    expect(leads).toMatch(/^pkg\/parser\.py:18-20\s+parse_file\s+0\.\d\d \/ 0\.\d\d$/m);
    expect(leads).toMatch(/^also considered, less likely:\npkg\/util\.py:1-2 {2}helper {2}0\.\d\d$/m);

    // What the model emits reaches the user's terminal as text: an escape sequence in its command
    // (OSC 52 sets the clipboard) or in a name it answers (clear the screen) is shown, not acted on.
    const steps = [
      { toolCalls: [{ name: "terminal", arguments: { command: "printf '\u001b]52;c;cm0gLXJmIH4=\u0007'", security_risk: "LOW" } }] },
      { toolCalls: [{ name: "localization_finish", arguments: { locations: [{ file: "pkg/util.py\u001b[2J", function_name: "helper\u202e" }] } }] },
    ];
    model.script((req) => steps[Math.min(1, req.body.messages.filter((m) => m.role === "assistant").length)]!);
    const hostile = await promisify(execFile)("npx", ["tsx", "src/cli/localize.ts", "--api", base, "--repo", repo.url, "--commit", repo.commits[0]!, "--issue-file", issueFile, "--no-cache"], { encoding: "utf8" });
    expect(hostile.stdout + hostile.stderr).not.toMatch(/[\u001b\u0007\u202e]/);
    expect(hostile.stderr).toContain("$ printf '\\x1b]52;c;cm0gLXJmIH4=\\x07'");
    expect(hostile.stdout).toMatch(/^pkg\/util\.py\\x1b\[2J\s+helper\\u202e\s+\(not found\)$/m);
  });

  it("serves a local checkout from the command-line client: its edits as a patch, an upload where the service cannot fetch, and remotes it cannot use remembered", async () => {
    // --path: a local checkout with an uncommitted edit is localized as it is on disk.
    const checkout = join(repo.dir, "..", `checkout-${Date.now()}`);
    execFileSync("git", ["clone", "-q", repo.url, checkout]);
    writeFileSync(join(checkout, "pkg/util.py"), "# edited\n\n\ndef helper():\n    return 43\n");
    // The issue from stdin, as an agent pipes it (`gh issue view … | localize --issue-file -`), from a directory below the top.
    const piped = promisify(execFile)("npx", ["tsx", "src/cli/localize.ts", "--api", base, "--path", join(checkout, "pkg"), "--issue-file", "-", "--no-cache", "--json", "--quiet", "--policy", "baseline"], { encoding: "utf8" });
    piped.child.stdin!.end("helper() returns 42 instead of 43");
    const local = JSON.parse(
      (await piped).stdout,
    ) as { status: string; repo: { patch_sha256?: string }; result: { locations: Array<{ file: string; start_line: number }>; scope?: string }; root: string };
    expect(local.status).toBe("succeeded");
    // Searched in pkg/ alone (the directory given), answered as the checkout's paths, the top named.
    expect(local.result.locations.map((l) => l.file)).toEqual(["pkg/util.py"]);
    expect(local.result.scope).toBe("pkg");
    expect(local.root).toBe(realpathSync(checkout));
    expect(local.repo.patch_sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(local.result.locations[0]!.start_line).toBe(4);

    // The edit committed on a branch no remote holds, and edited again: the request names the
    // commit the remote holds, and the patch carries the local commit and the new edit.
    const pushed = execFileSync("git", ["rev-parse", "HEAD"], { cwd: checkout, encoding: "utf8" }).trim();
    execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@localhost", "commit", "-qam", "local"], { cwd: checkout });
    const localCommit = execFileSync("git", ["rev-parse", "HEAD"], { cwd: checkout, encoding: "utf8" }).trim();
    writeFileSync(join(checkout, "pkg/util.py"), "# edited\n# twice\n\n\ndef helper():\n    return 43\n");
    // The issue names the local commit, which only the checkout's history holds: what it changed goes with the patch.
    const aheadIssue = `helper() returns 42 instead of 43\n\nRegression in ${writtenSha(localCommit)}.`;
    const ahead = await promisify(execFile)("npx", ["tsx", "src/cli/localize.ts", "--api", base, "--path", checkout, "--issue", aheadIssue, "--no-cache", "--json", "--policy", "baseline"], { encoding: "utf8" });
    expect(ahead.stderr).toContain(`localizing ${repo.url} at ${pushed.slice(0, 12)} with the commit no remote holds yet and the uncommitted changes`);
    expect(ahead.stderr).toContain("sending what the commit the issue names changed, read from the local history");
    expect(ahead.stderr).not.toContain("uploading");
    const aheadView = JSON.parse(ahead.stdout) as { status: string; repo: { commit?: string; patch_sha256?: string }; result: { locations: Array<{ file: string; start_line: number; evidence: string[] }> } };
    expect(aheadView).toMatchObject({ status: "succeeded", repo: { commit: pushed } });
    expect(aheadView.result.locations[0]).toMatchObject({ file: "pkg/util.py", start_line: 5 });
    expect(aheadView.result.locations[0]!.evidence).toContain(`changed in commit ${writtenSha(localCommit)}, which the issue names`);

    // A remote the service cannot fetch (a private repository; here a path that is not there):
    // the first call's job fails and the tree is uploaded; after an edit, the next call goes
    // straight to that upload with a patch of the edit, and asks nothing of the remote.
    const gone = `file://${join(repo.dir, "..", `gone-${Date.now()}.git`)}`;
    execFileSync("git", ["remote", "set-url", "origin", gone], { cwd: checkout });
    const env = { ...process.env, CODESCOUT_CACHE_DIR: join(issues, `client-cache-${Date.now()}`) };
    const fromHere = (issue: string) =>
      promisify(execFile)("npx", ["tsx", "src/cli/localize.ts", "--api", base, "--path", checkout, "--issue", issue, "--no-cache", "--json", "--policy", "baseline"], { encoding: "utf8", env });
    const first = await fromHere("helper() returns 42 instead of 43");
    expect(first.stderr).toContain(`the service could not use ${gone} (repository_unavailable); uploading the tree instead`);
    expect(JSON.parse(first.stdout)).toMatchObject({ status: "succeeded", repo: { upload: expect.stringMatching(/^[0-9a-f]{64}$/) } });
    writeFileSync(join(checkout, "pkg/util.py"), "# edited\n# twice\n\n\ndef helper():\n    return 43\n\n\ndef helper_added_later():\n    return 44\n");
    const next = await fromHere("helper_added_later() returns 44");
    expect(next.stderr).toMatch(new RegExp(`the service could not use ${gone} at \\d\\d:\\d\\d; sending the tree instead`));
    expect(next.stderr).toMatch(/the service holds this checkout as it was last sent \(\d+ files\); sending the changes since \(\d+ bytes of patch\)/);
    expect(next.stderr).not.toContain("uploading");
    const nextView = JSON.parse(next.stdout) as { status: string; repo: { upload?: string; patch_sha256?: string }; result: { locations: Array<{ file: string; function_name?: string }> } };
    expect(nextView).toMatchObject({ status: "succeeded", repo: { upload: JSON.parse(first.stdout).repo.upload, patch_sha256: expect.stringMatching(/^[0-9a-f]{64}$/) } });
    expect(nextView.result.locations[0]).toMatchObject({ file: "pkg/util.py", function_name: "helper_added_later" });
    // A remote the service refuses outright (plain http, which it does not fetch): refused once, then not asked.
    const internal = "http://127.0.0.1:1/private/repo.git";
    execFileSync("git", ["remote", "set-url", "origin", internal], { cwd: checkout });
    const refusedRemote = await fromHere("helper_added_later() returns 44");
    expect(refusedRemote.stderr).toContain(`the service refused ${internal} (invalid_repository: `);
    expect(JSON.parse(refusedRemote.stdout)).toMatchObject({ status: "succeeded" });
    const notAsked = await fromHere("helper_added_later() returns 44");
    expect(notAsked.stderr).toMatch(new RegExp(`the service could not use ${internal} at \\d\\d:\\d\\d; sending the tree instead`));
    expect(notAsked.stderr).not.toContain("the service refused");
    rmSync(checkout, { recursive: true, force: true });
  });

  it("gives the model's answer, and a model that did not answer, the baseline's next files as leads", async () => {
    type Lead = { file: string; function_name?: string; valid: boolean; evidence?: string[]; confidence?: { file: number; function?: number } };
    type Done = { id: string; status: string; result: { answered: boolean; finish_reason: string; files: string[]; locations: Lead[]; alternatives?: Lead[] } };
    const ask = async (issue: string): Promise<Done> => {
      const post = await fetch(`${base}/v1/localize?wait=60`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ repo: { url: repo.url, commit: repo.commits[0] }, issue, options: { cache: false, finish_policy: "strict" } }),
      });
      return (await post.json()) as Done;
    };
    const vague = "Values of parsed lines are wrong\n\nThe values read from each line come out wrong, and a helper is involved too.";

    // The model answers the helper; the baseline would have answered the parser: that is the lead.
    model.script([{ toolCalls: [{ name: "localization_finish", arguments: { locations: [{ file: "pkg/util.py", function_name: "helper" }] } }] }]);
    const answered = await ask(vague);
    expect(answered, worker.output().slice(-3000)).toMatchObject({ status: "succeeded", result: { answered: true, files: ["pkg/util.py"] } });
    const leads = answered.result.alternatives ?? [];
    expect(leads[0]).toMatchObject({ file: "pkg/parser.py", function_name: "parse_file", valid: true, confidence: { file: expect.any(Number) } });
    expect(leads.map((l) => l.file)).not.toContain("pkg/util.py");
    // The model's own location says where that ranking put its file: second, behind the parser.
    expect(answered.result.locations[0]!.evidence).toEqual([expect.stringMatching(/^the model-free ranking's file 2 of \d, at confidence 0\.\d\d$/)]);
    // Ranked after the answer, outside the model's terminal: a step after the model's last, and
    // no progress events of its own.
    const trajectory = (await (await fetch(`${base}/v1/jobs/${answered.id}/trajectory`)).json()) as { trajectory: { steps: Array<Record<string, unknown>> } };
    expect(trajectory.trajectory.steps.at(-1)).toMatchObject({ kind: "tool", name: "leads", policy: "baseline", files: leads.map((l) => l.file) });
    const events = await (await fetch(`${base}/v1/jobs/${answered.id}/events`)).text();
    expect(events).not.toContain("repository scan");
    // The command-line client lists them under the model's table, as the ranking's, not the model's.
    const issueFile = join(issues, "leads.md");
    writeFileSync(issueFile, vague);
    const table = (await promisify(execFile)("npx", ["tsx", "src/cli/localize.ts", "--api", base, "--repo", repo.url, "--commit", repo.commits[0]!, "--issue-file", issueFile, "--no-cache"], { encoding: "utf8" })).stdout;
    expect(table).toMatch(/^pkg\/util\.py:1-2\s+helper\n {4}the model-free ranking's file 2 of \d, at confidence 0\.\d\d$/m);
    expect(table).toMatch(/^also considered, by the model-free ranking:\npkg\/parser\.py:18-20 {2}parse_file {2}0\.\d\d$/m);

    // A model that ends without an answer still leaves the caller somewhere to start.
    model.script([{ content: "I could not find it." }]);
    const unanswered = await ask(vague);
    expect(unanswered).toMatchObject({ status: "succeeded", result: { answered: false, finish_reason: "text_reply", locations: [], files: [] } });
    expect((unanswered.result.alternatives ?? []).map((l) => l.file)).toEqual(["pkg/parser.py", "pkg/util.py"]);
  });

  it("answers with the baseline while the model server is away, says so, keeps that answer out of the cache, and fails a request that named the model", async () => {
    type Done = { id: string; status: string; cached?: boolean; error?: { code: string }; result: { policy: string; answered: boolean; files: string[]; fallback?: { from: string; reason: string } } };
    const ask = async (options: Record<string, unknown>): Promise<Done> => {
      const post = await fetch(`${base}/v1/localize?wait=60`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ repo: { url: repo.url, commit: repo.commits[0] }, issue: "`Parser.parse` loses values that contain '=' (model away)", options }),
      });
      return (await post.json()) as Done;
    };
    // Every request answered 503: the client's own retry included.
    model.script([{ status: 503 }]);
    const before = model.requests.length;
    const fellBack = await ask({});
    expect(fellBack, worker.output().slice(-3000)).toMatchObject({ status: "succeeded", result: { policy: "baseline", fallback: { from: "codescout", reason: "llm_unavailable" }, answered: true, files: ["pkg/parser.py"] } });
    expect(model.requests.length - before).toBe(2);
    // The job succeeded: the operator learns of the model server from the counter (and the worker's log).
    await waitFor(async () => ((await (await fetch(`${base}/metrics`)).text()).includes('codescout_jobs_fallback_total{from="codescout",reason="llm_unavailable"} 1') ? true : undefined), 10_000, "the fallback counted");
    const trajectory = (await (await fetch(`${base}/v1/jobs/${fellBack.id}/trajectory`)).json()) as { trajectory: { policy: string; steps: Array<Record<string, unknown>> } };
    // In the order it happened: the model's request, the fallback, then the baseline's steps.
    expect(trajectory.trajectory.steps[0]).toMatchObject({ kind: "request", role: "system" });
    expect(trajectory.trajectory.steps.find((s) => s.name === "fallback")).toMatchObject({ kind: "tool", from: "codescout", reason: "llm_unavailable" });
    // Followers are told as it happens, before the answer.
    const stream = await (await fetch(`${base}/v1/jobs/${fellBack.id}/events`)).text();
    expect(stream).toMatch(/event: fallback\ndata: \{"type":"fallback",[^\n]*"data":\{"from":"codescout","reason":"llm_unavailable"\}\}\n[\s\S]*event: finished/);
    // The command-line client says who answered and why.
    const issueFile = join(issues, "away.md");
    writeFileSync(issueFile, "`Parser.parse` loses values that contain '=' (model away, CLI)");
    const { stdout, stderr } = await promisify(execFile)("npx", ["tsx", "src/cli/localize.ts", "--api", base, "--repo", repo.url, "--commit", repo.commits[0]!, "--issue-file", issueFile, "--no-cache"], { encoding: "utf8" });
    expect(`${stdout}${stderr}`).toContain("(baseline, as the model server could not be reached, finish_tool)");

    // The model is back: the same request is the model's to answer, not the cache's.
    model.script([{ toolCalls: [{ name: "localization_finish", arguments: { locations: [{ file: "pkg/util.py", function_name: "helper" }] } }] }]);
    const back = await ask({});
    expect(back).toMatchObject({ status: "succeeded", cached: false, result: { policy: "codescout", files: ["pkg/util.py"] } });
    expect(back.result.fallback).toBeUndefined();

    // A request that names the model gets it or its failure, and its trajectory says what the model was asked before.
    model.script([{ status: 503 }]);
    const failed = await ask({ policy: "codescout", cache: false });
    expect(failed).toMatchObject({ status: "failed", error: { code: "llm_unavailable" } });
    const failedSteps = (await (await fetch(`${base}/v1/jobs/${failed.id}/trajectory`)).json()) as { trajectory: { failure: string; finish_reason: null; steps: Array<Record<string, unknown>> } };
    expect(failedSteps.trajectory).toMatchObject({ policy: "codescout", failure: "llm_unavailable", finish_reason: null });
    expect(failedSteps.trajectory.steps.map((s) => s.role)).toEqual(["system", "user"]);
    // A model server that refuses the request (a wrong model name) is a failure to see, not a fallback.
    model.script([{ status: 400 }]);
    expect(await ask({ cache: false })).toMatchObject({ status: "failed", error: { code: "llm_bad_request" } });
  });

  it("fails a job with a clear reason when the commit does not exist", async () => {
    const post = await fetch(`${base}/v1/localize?wait=30`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ repo: { url: repo.url, commit: "f".repeat(40) }, issue: "x" }),
    });
    expect(post.status).toBe(200);
    const failed = await post.json();
    expect(failed, JSON.stringify(failed.error)).toMatchObject({ status: "failed", error: { code: "commit_not_found" } });
    // A scope the commit does not hold is that job's failure, named.
    const scoped = await fetch(`${base}/v1/localize?wait=30`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ repo: { url: repo.url, commit: repo.commits[0] }, issue: "x", options: { policy: "baseline", scope: "pkg/nope" } }),
    });
    expect(await scoped.json()).toMatchObject({ status: "failed", error: { code: "scope_not_found", message: `options.scope: pkg/nope is not a directory of the repository at ${repo.commits[0]!.slice(0, 12)}` } });
  });

  it("answers in a repository whose owner and name are as long as the service takes them (64 characters each)", async () => {
    const root = mkdtempSync(join(tmpdir(), "codescout-long-"));
    try {
      const long = join(root, "o".repeat(64), `${"n".repeat(64)}.git`);
      execFileSync("git", ["clone", "-q", "--bare", repo.dir, long]);
      const post = await fetch(`${base}/v1/localize?wait=60`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ repo: { url: `file://${long}`, commit: repo.commits[0] }, issue: "helper() returns the wrong answer", options: { policy: "baseline" } }),
      });
      const job = await post.json();
      // The sandbox's working directory is named after them, in the training layout, within its 200 characters.
      expect(job, JSON.stringify(job.error)).toMatchObject({ status: "succeeded", result: { files: ["pkg/util.py"] } });
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it("reads the commit an issue names from the repository's history, on the worker's mirror", async () => {
    const culprit = repo.commit({ "pkg/util.py": "def helper():\n    return 41\n" }, "a change that broke it");
    const at = repo.commit({ "README.md": "# sample, later\n" }, "docs");
    const post = await fetch(`${base}/v1/localize?wait=60`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        repo: { url: repo.url, commit: at },
        issue: `The answer is off by one\n\nRegression in ${writtenSha(culprit)}.`,
        options: { policy: "baseline", cache: false },
      }),
    });
    const done = await post.json();
    expect(done, JSON.stringify(done).slice(0, 1500)).toMatchObject({ status: "succeeded", result: { policy: "baseline" } });
    expect(done.result.locations[0]).toMatchObject({ file: "pkg/util.py", function_name: "helper" });
    expect(done.result.locations[0].evidence).toContain(`changed in commit ${writtenSha(culprit)}, which the issue names`);
  });
});
