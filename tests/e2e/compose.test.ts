import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { makeGitFixture, SAMPLE_FILES } from "../helpers/gitFixture.js";
import { tarOf } from "../helpers/tarball.js";
import { freePort, waitFor } from "../helpers/processes.js";

/**
 * The deployment as people run it: images built without a registry, the compose file
 * validated, redis + api + worker brought up with Debian's docker-compose (v1), one job
 * localized end to end with the baseline policy, then `down -v`.
 */
const project = `cstest${randomBytes(4).toString("hex")}`;
const data = `/tmp/${project}-data`;
let env: NodeJS.ProcessEnv;
let base: string;

const compose = (...args: string[]) =>
  execFileSync("docker-compose", ["-p", project, "-f", "docker-compose.yml", ...args], { env, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 120_000 });

beforeAll(async () => {
  execFileSync("bash", ["docker/build-images.sh"], { stdio: "ignore", timeout: 600_000 });
  mkdirSync(join(data, "fixtures"), { recursive: true });
  chmodSync(data, 0o777);
  const fx = makeGitFixture();
  execFileSync("git", ["clone", "-q", "--bare", fx.dir, join(data, "fixtures", "repo.git")]);
  fx.cleanup();
  // The worker runs as uid 10002; git refuses repositories owned by another user.
  execFileSync("chown", ["-R", "10002:10002", data]);
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  env = {
    ...process.env,
    CODESCOUT_DATA: data,
    API_PORT: String(port),
    DOCKER_GID: String(statSync("/var/run/docker.sock").gid),
    ALLOW_FILE_URLS: "true",
    MODEL_BASE_URL: "",
  };
  execFileSync("docker-compose", ["-p", project, "-f", "docker-compose.yml", "up", "-d", "redis", "api", "worker"], { env, stdio: "ignore", timeout: 300_000 });
  // docker-proxy accepts connections before the API listens: every probe has its own timeout.
  await waitFor(async () => ((await fetch(`${base}/readyz`, { signal: AbortSignal.timeout(2000) })).ok ? true : undefined), 120_000, "the compose stack to be ready");
}, 900_000);

afterAll(() => {
  try {
    compose("down", "-v", "--remove-orphans");
  } finally {
    rmSync(data, { recursive: true, force: true });
  }
}, 120_000);

describe("docker-compose stack", () => {
  it("validates, and localizes a job with the baseline policy", async () => {
    expect(() => compose("config", "-q")).not.toThrow();
    expect(() => compose("--profile", "gpu", "config", "-q")).not.toThrow();
    const commit = execFileSync("git", ["--git-dir", join(data, "fixtures", "repo.git"), "rev-parse", "HEAD"], { encoding: "utf8" }).trim();
    const post = await fetch(`${base}/v1/localize?wait=60`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ repo: { url: `file://${data}/fixtures/repo.git`, commit }, issue: "`Parser.parse` drops values that contain '='" }),
    });
    const job = (await post.json()) as { status: string; result?: { policy: string; locations: Array<{ file: string }> } };
    expect(job, JSON.stringify(job).slice(0, 1500)).toMatchObject({ status: "succeeded", result: { policy: "baseline" } });
    expect(job.result?.locations[0]).toMatchObject({ file: "pkg/parser.py", class_name: "Parser", function_name: "parse" });
  });

  it("takes an uploaded tree in the API container and localizes it in the worker container (through Redis)", async () => {
    const archive = await tarOf(Object.entries(SAMPLE_FILES).map(([name, body]) => ({ name, body })), { gzip: true });
    const up = await fetch(`${base}/v1/uploads`, { method: "POST", headers: { "content-type": "application/gzip" }, body: new Uint8Array(archive) });
    expect(up.status).toBe(201);
    const { upload_id } = (await up.json()) as { upload_id: string };
    const post = await fetch(`${base}/v1/localize?wait=60`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ repo: { upload: upload_id }, issue: "`Parser.parse` drops values that contain '='" }),
    });
    const job = (await post.json()) as { status: string; result?: { commit_sha: string; locations: Array<{ file: string }> } };
    expect(job, JSON.stringify(job).slice(0, 1500)).toMatchObject({ status: "succeeded", result: { commit_sha: upload_id } });
    expect(job.result?.locations[0]).toMatchObject({ file: "pkg/parser.py", class_name: "Parser", function_name: "parse" });
  });
});

describe("the service image's PID 1", () => {
  it("reaps the processes orphaned in the container (a git killed at its timeout leaves its helpers behind)", async () => {
    const worker = compose("ps", "-q", "worker").trim();
    // The inner shell exits at once: its sleep is orphaned to PID 1, which must collect it when it ends.
    execFileSync("docker", ["exec", worker, "sh", "-c", 'sh -c "sleep 0.3 &"']);
    const zombies = () =>
      execFileSync("docker", ["exec", worker, "sh", "-c", 'for s in /proc/[0-9]*/stat; do read -r pid comm state rest < "$s" && [ "$state" = Z ] && echo "$pid $comm"; done; true'], { encoding: "utf8" }).trim();
    await new Promise((r) => setTimeout(r, 1500));
    expect(zombies()).toBe("");
  });
});
