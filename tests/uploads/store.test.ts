import { afterAll, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { DirUploadStore } from "../../src/uploads/store.js";

/** The directory store as the API and a worker use it at once: real files, two processes. */
const root = mkdtempSync(join(tmpdir(), "codescout-uploads-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("DirUploadStore", () => {
  it("never shows a worker an upload as gone while the API renews it in another process", async () => {
    // Three clients sent the same tree at once: the API renewed the upload's lifetime for each
    // while the worker read it, and the meta file, rewritten in place, read as no upload.
    const dir = join(root, "race");
    const store = new DirUploadStore(dir, 3600);
    const id = "a".repeat(64);
    const bytes = Buffer.from("an archive");
    const staged = await store.stage();
    await staged.write(bytes);
    expect((await staged.commit({ sha256: id, files: 1, bytes: bytes.length, archiveBytes: bytes.length })).created).toBe(true);

    const renewer = join(root, "renew.mts");
    writeFileSync(
      renewer,
      `import { DirUploadStore } from ${JSON.stringify(pathToFileURL(resolve("src/uploads/store.ts")).href)};\n` +
        `const store = new DirUploadStore(${JSON.stringify(dir)}, 3600);\nprocess.stdout.write("ready\\n");\n` +
        `const end = Date.now() + 1500;\nwhile (Date.now() < end) if (!(await store.touch(${JSON.stringify(id)}))) process.exitCode = 2;\n`,
    );
    const child = spawn(process.execPath, ["--import", "tsx", renewer], { stdio: ["ignore", "pipe", "inherit"] });
    const exited = new Promise<number | null>((res) => child.on("exit", res));
    await new Promise<void>((res) => child.stdout.once("data", () => res()));
    let reads = 0;
    let gone = 0;
    while (child.exitCode === null) {
      const got = await store.read(id);
      reads++;
      if (!got?.equals(bytes)) gone++;
    }
    expect(await exited).toBe(0);
    expect(reads).toBeGreaterThan(100);
    expect(gone).toBe(0);
    // Nothing half-written is left beside the upload.
    expect(readdirSync(dir).sort()).toEqual([".incoming", `${id}.archive`, `${id}.json`]);
    expect(readdirSync(join(dir, ".incoming"))).toEqual([]);
  });
});
