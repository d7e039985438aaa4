import { afterAll, describe, expect, it } from "vitest";
import { randomBytes, randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { testConfig } from "../helpers/config.js";
import { freePort, serviceEnv, startProcess, waitFor, type ServiceProcess } from "../helpers/processes.js";
import { ownRedis } from "../helpers/redis.js";

/**
 * The service's Redis password, when Redis refuses it (a password rotated, a user disabled, a
 * failover to a node without the user): ioredis' errors carry the AUTH command's arguments, and
 * the API and worker log their errors. Run as an operator runs them, against a Redis user of the
 * test's own, disabled mid-run.
 */
// A Redis of the test's own: its users are not the shared one's.
const own = await ownRedis();
own.start();
const config = testConfig({ REDIS_URL: own.url });
const admin = new Redis(own.url);
const user = `cstest-${randomBytes(4).toString("hex")}`;
const password = `pw-${randomBytes(12).toString("hex")}`;
const processes: ServiceProcess[] = [];
afterAll(async () => {
  await Promise.all(processes.map((p) => p.stop("SIGKILL")));
  admin.disconnect();
  own.stop();
});

describe("Redis refusing the service's login", () => {
  it("never logs the password, and answers 503 naming the login, not 500", async () => {
    await admin.call("ACL", "SETUSER", user, "on", `>${password}`, "~*", "&*", "+@all");
    const port = await freePort();
    const env = serviceEnv(config, { REDIS_URL: `redis://${user}:${password}@127.0.0.1:${new URL(own.url).port}`, API_PORT: String(port), LOG_LEVEL: "info" });
    const api = startProcess("src/api/server.ts", env);
    const worker = startProcess("src/worker/main.ts", env);
    processes.push(api, worker);
    const base = `http://127.0.0.1:${port}`;
    await waitFor(async () => ((await fetch(`${base}/healthz`)).ok ? true : undefined), 60_000, "the API");
    await waitFor(async () => (worker.output().includes("worker ready") ? true : undefined), 60_000, "the worker");

    await admin.call("ACL", "SETUSER", user, "off");
    await admin.call("CLIENT", "KILL", "USER", user);
    const refused = await waitFor(
      async () => {
        const res = await fetch(`${base}/v1/jobs/${randomUUID()}`);
        return res.status === 404 ? undefined : res;
      },
      30_000,
      "a read refused",
    );
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).toBe("30");
    expect(await refused.json()).toEqual({ error: { code: "unavailable", message: "the service's job store (Redis) refused the service's login; retry later" } });
    // Both processes have met the refusal by now, and logged it.
    await waitFor(async () => (/WRONGPASS|NOPERM|NOAUTH|disabled/.test(worker.output()) ? true : undefined), 30_000, "the worker's line of the refusal");
    for (const [name, p] of [["api", api], ["worker", worker]] as const) expect(p.output(), name).not.toContain(password);
  }, 180_000);
});
