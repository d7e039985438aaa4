import { afterAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { SandboxError } from "../../src/sandbox/types.js";
import { makeTree, provider, spec, testServiceLabel } from "./helpers.js";

/**
 * A sandbox the engine stops says so (stopped_outside), also to a command sent in the moment
 * after, while the engine is asked why: that command failed as the terminal's own death
 * ("could not write"), which failed the job where it would have been run again.
 */
const label = testServiceLabel("stopped-outside");
const sandboxes = provider({ serviceLabel: label });
afterAll(() => {
  const ids = execFileSync("docker", ["ps", "-aq", "--filter", `label=codescout.service=${label}`], { encoding: "utf8" }).trim();
  if (ids) execFileSync("docker", ["rm", "-f", ...ids.split("\n")]);
});

describe("a sandbox stopped by the engine", () => {
  it("fails a command sent just after the stop as stopped from outside, not as its terminal's own death", async () => {
    const reasons: string[] = [];
    for (let i = 0; i < 3; i++) {
      const tree = await makeTree();
      const box = await sandboxes.create(spec(tree, `stopped-${randomBytes(4).toString("hex")}`));
      try {
        await box.terminal.run({ command: "echo ready" });
        execFileSync("docker", ["stop", "-t", "0", box.id]);
        // The stream's close is seen first; the engine is still being asked why.
        await new Promise((r) => setTimeout(r, i));
        const [exec, command] = await Promise.all([box.exec(["true"]).catch((e: unknown) => e), box.terminal.run({ command: "echo again" }).catch((e: unknown) => e)]);
        for (const err of [exec, command]) reasons.push(err instanceof SandboxError ? err.reason : String(err));
      } finally {
        await box.destroy().catch(() => undefined);
        tree.cleanup();
      }
    }
    expect(reasons).toEqual(Array.from({ length: 6 }, () => "stopped_outside"));
  }, 90_000);
});
