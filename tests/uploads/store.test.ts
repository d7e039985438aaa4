import { afterAll, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { DirUploadStore, RedisUploadStore, type UploadStore } from "../../src/uploads/store.js";
import { createRedis, closeRedis } from "../../src/queue/connection.js";

/** The directory store as the API and a worker use it at once: real files, two processes. */
const root = mkdtempSync(join(tmpdir(), "codescout-uploads-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("DirUploadStore", () => {
  it("takes an upload only with room for it past the disk kept free (the host's own reading, or what the test says)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "codescout-upload-room-"));
    try {
      const mib = 2 ** 20;
      const full = new DirUploadStore(dir, 3600, { minFree: 2048 * mib, reserve: 100 * mib, freeBytes: () => 2100 * mib });
      await expect(full.stage()).rejects.toThrow("the disk holding uploads has 2100 MiB free, under the 2048 MiB kept free plus room for one upload");
      const roomy = new DirUploadStore(dir, 3600, { minFree: 2048 * mib, reserve: 100 * mib, freeBytes: () => 2200 * mib });
      await (await roomy.stage()).abort();
      // The host's own reading of this disk: it has the room (the machine the tests run on does).
      await (await new DirUploadStore(dir, 3600, { minFree: mib, reserve: mib }).stage()).abort();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

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

describe("an upload whose bytes are gone", () => {
  const summary = (id: string, bytes: Buffer) => ({ sha256: id, files: 1, bytes: bytes.length, archiveBytes: bytes.length });
  async function put(store: UploadStore, id: string, bytes: Buffer) {
    const staged = await store.stage();
    await staged.write(bytes);
    return (await staged.commit(summary(id, bytes))).created;
  }

  it("is no upload, in either store: asked for, it is not renewed, and the tree sent again is kept", async () => {
    const redis = createRedis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379", "producer");
    const prefix = `cstest-up-${process.pid}-${Date.now()}`;
    const dir = join(root, "gone");
    const stores: Array<[UploadStore, (id: string) => Promise<unknown>]> = [
      [new DirUploadStore(dir, 3600), async (id) => rmSync(join(dir, `${id}.archive`))],
      // Evicted under maxmemory, say: the larger key goes first.
      [new RedisUploadStore(redis, prefix, 3600, 1 << 20), (id) => redis.del(`${prefix}:upload:${id}:archive`)],
    ];
    try {
      for (const [store, lose] of stores) {
        const id = "b".repeat(64);
        const bytes = Buffer.from("an archive");
        expect(await put(store, id, bytes)).toBe(true);
        await lose(id);
        expect(await store.touch(id)).toBeNull();
        expect(await store.read(id)).toBeNull();
        expect(await put(store, id, bytes)).toBe(true);
        expect((await store.read(id))?.equals(bytes)).toBe(true);
      }
      // An archive whose record never came (its process died between the two) goes once it is an hour old.
      const orphan = join(dir, `${"c".repeat(64)}.archive`);
      writeFileSync(orphan, "bytes");
      const old = new Date(Date.now() - 3_700_000);
      utimesSync(orphan, old, old);
      expect(await new DirUploadStore(dir, 3600).sweep()).toBe(1);
      expect(existsSync(orphan)).toBe(false);
      expect(existsSync(join(dir, `${"b".repeat(64)}.archive`))).toBe(true);
    } finally {
      for (const k of await redis.keys(`${prefix}:*`)) await redis.del(k);
      await closeRedis(redis);
    }
  });
});

describe("the Redis store's budget", () => {
  it("counts kept and arriving archives, and frees what expired", async () => {
    const redis = createRedis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379", "producer");
    const prefix = `cstest-upbudget-${process.pid}-${Date.now()}`;
    const summary = (id: string, bytes: number) => ({ sha256: id, files: 1, bytes, archiveBytes: bytes });
    try {
      const store = new RedisUploadStore(redis, prefix, 1, 1000, 1000);
      const keep = async (id: string, bytes: number) => {
        const staged = await store.stage();
        await staged.write(Buffer.alloc(bytes, 1));
        return staged.commit(summary(id, bytes));
      };
      expect((await keep("a".repeat(64), 600)).created).toBe(true);
      await expect(keep("b".repeat(64), 600)).rejects.toThrow(/the Redis upload store holds .* MiB budget \(UPLOAD_REDIS_MAX_MB\)/);
      // What arrives counts too: two uploads in flight cannot pass the budget between them.
      const one = await store.stage();
      const two = await store.stage();
      await one.write(Buffer.alloc(700));
      await expect(two.write(Buffer.alloc(700))).rejects.toThrow(/UPLOAD_REDIS_MAX_MB/);
      await one.abort();
      await two.abort();
      // Once the kept one expired, its bytes no longer count.
      await new Promise((r) => setTimeout(r, 1100));
      expect((await keep("b".repeat(64), 600)).created).toBe(true);
      expect(Number(await redis.get(`${prefix}:uploads:bytes`))).toBe(600);
      // The same tree committed twice at once (a retry, two agents on one checkout) counts once.
      const twice = await Promise.all([store.stage(), store.stage()]);
      for (const t of twice) await t.write(Buffer.alloc(100, 2));
      await Promise.all(twice.map((t) => t.commit(summary("c".repeat(64), 100))));
      expect(Number(await redis.get(`${prefix}:uploads:bytes`))).toBe(700);
      await redis.del(`${prefix}:upload:${"c".repeat(64)}:archive`);
      expect(await store.touch("c".repeat(64))).toBeNull();
      // One whose bytes were lost leaves the count when asked for.
      await redis.del(`${prefix}:upload:${"b".repeat(64)}:archive`);
      expect(await store.touch("b".repeat(64))).toBeNull();
      expect(Number(await redis.get(`${prefix}:uploads:bytes`))).toBe(0);
    } finally {
      for (const k of await redis.keys(`${prefix}:*`)) await redis.del(k);
      await closeRedis(redis);
    }
  });
});
