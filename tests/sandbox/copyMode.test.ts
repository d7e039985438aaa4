import { describe, it, expect, afterAll } from "vitest";
import { randomBytes } from "node:crypto";
import { makeTree, provider, spec, testServiceLabel, type Tree } from "./helpers.js";
import { containersOf } from "../helpers/processes.js";

const trees: Tree[] = [];
afterAll(() => trees.forEach((t) => t.cleanup()));

/**
 * Copy mode streams the tree into the container; the copy inside can die before the tree has
 * all gone in. Here the tree (40 MB) outgrows the sandbox's memory (32 MB; its tmpfs pages
 * count there), and the engine's OOM kill ends the container mid-copy.
 */
describe("copy mode", () => {
  it("fails the sandbox's start at once, naming why, when the copy inside dies mid-stream", async () => {
    const tree = await makeTree({ "big.bin": randomBytes(30 << 20).toString("base64"), "pkg/util.py": "def helper():\n    return 42\n" });
    trees.push(tree);
    const p = provider({ serviceLabel: testServiceLabel("copy-dies"), mountMode: "copy", memoryMb: 32, copyTmpfsMb: 1024 });
    // Before, the host's tar waited for ever on a socket nobody read, and the socket's error ended the test process.
    await expect(p.create(spec(tree, "copy-dies"))).rejects.toMatchObject({ reason: "create_failed", message: expect.stringContaining("copying the tree into the sandbox failed") });
    // And its container is gone.
    expect(containersOf("copy-dies")).toBe("");
  }, 60_000);
});
