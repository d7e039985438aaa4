import { afterAll, describe, expect, it } from "vitest";
import { pino } from "pino";
import { buildApiServer, type ApiServer } from "../../src/api/build.js";
import { sandboxOptionsFromConfig } from "../../src/sandbox/config.js";
import { createDockerSandboxProvider } from "../../src/sandbox/docker.js";
import type { Sandbox, SandboxProvider } from "../../src/sandbox/types.js";
import { startWorker, type RunningWorker } from "../../src/worker/build.js";
import { testConfig } from "../helpers/config.js";
import { makeGitFixture } from "../helpers/gitFixture.js";
import { containersOf } from "../helpers/processes.js";
import { dropPrefix } from "../helpers/redis.js";

/**
 * A job's answer does not wait for its sandbox to be removed, and a stopping worker does.
 * The real API and worker in-process, real Redis and Docker; the Docker provider is wrapped
 * only so that the test decides when a sandbox's removal may begin.
 */
const config = testConfig();
const repo = makeGitFixture();
let api: ApiServer | undefined;
let worker: RunningWorker | undefined;

afterAll(async () => {
  await worker?.close();
  await api?.close();
  repo.cleanup();
  await dropPrefix(config.QUEUE_PREFIX);
});

/** The Docker provider, with each sandbox's destroy held until `open()`. */
function gatedProvider(): { provider: SandboxProvider; open(): void; destroyed: () => number } {
  const docker = createDockerSandboxProvider(sandboxOptionsFromConfig(config));
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  let destroyed = 0;
  const provider: SandboxProvider = {
    reapOrphans: () => docker.reapOrphans(),
    ping: () => docker.ping(),
    async create(spec, signal): Promise<Sandbox> {
      const box = await docker.create(spec, signal);
      return {
        id: box.id,
        workingDir: box.workingDir,
        terminal: box.terminal,
        exec: (argv, options) => box.exec(argv, options),
        yieldCpu: (yielding) => box.yieldCpu(yielding),
        destroy: async () => {
          await gate;
          await box.destroy();
          destroyed++;
        },
      };
    },
  };
  return { provider, open, destroyed: () => destroyed };
}

describe("a job's cleanup", () => {
  it("answers before the sandbox is removed, and the worker removes it before it stops", async () => {
    const gated = gatedProvider();
    api = await buildApiServer(config, { logger: false });
    worker = await startWorker(config, { logger: pino({ level: "silent" }), sandboxes: gated.provider });
    const post = await api.fastify.inject({
      method: "POST",
      url: "/v1/localize",
      payload: { repo: { url: repo.url, commit: repo.commits[0] }, issue: "helper returns the wrong number", options: { policy: "baseline", cache: false } },
    });
    expect(post.statusCode).toBe(202);
    const id = (post.json() as { id: string }).id;

    // The answer is out while the sandbox's removal has not even begun.
    const done = (await api.fastify.inject({ method: "GET", url: `/v1/jobs/${id}?wait=60` })).json() as { status: string; result: { files: string[] } };
    expect(done.status).toBe("succeeded");
    expect(done.result.files.length).toBeGreaterThan(0);
    expect(containersOf(id)).not.toBe("");

    // Stopping waits for the removal...
    let closed = false;
    const closing = worker.close().then(() => (closed = true));
    await new Promise((r) => setTimeout(r, 1_000));
    expect(closed).toBe(false);
    expect(containersOf(id)).not.toBe("");
    // ...and once it may go on, the container is gone by the time the worker has stopped.
    gated.open();
    await closing;
    worker = undefined;
    expect(gated.destroyed()).toBe(1);
    expect(containersOf(id)).toBe("");
  }, 90_000);
});
