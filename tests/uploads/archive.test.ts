import { describe, it, expect } from "vitest";
import { existsSync, mkdtempSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { gzipSync } from "node:zlib";
import { ArchiveError, readArchive, type ArchiveLimits } from "../../src/uploads/archive.js";
import { extractArchive } from "../../src/uploads/extract.js";
import { sparseBomb, tarOf, type TarEntry } from "../helpers/tarball.js";

const LIMITS: ArchiveLimits = { maxBytes: 10 << 20, maxFiles: 100, maxPathBytes: 256, maxRatio: 50 };
const read = (buf: Buffer, limits = LIMITS) => readArchive(Readable.from([buf]), limits);

const TREE: TarEntry[] = [
  { name: "pkg/", type: "directory" },
  { name: "pkg/__init__.py", body: "" },
  { name: "pkg/core.py", body: "def run():\n    return 1\n" },
  { name: "bin/tool", body: "#!/bin/sh\n", mode: 0o755 },
  { name: "pkg/alias.py", type: "symlink", linkname: "core.py" },
];

async function refusal(entries: TarEntry[] | Buffer, limits = LIMITS): Promise<ArchiveError> {
  const buf = Buffer.isBuffer(entries) ? entries : await tarOf(entries);
  const err = await read(buf, limits).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ArchiveError);
  return err as ArchiveError;
}

describe("upload archives", () => {
  it("summarizes a tree with a digest that ignores packing, order, times and compression", async () => {
    const plain = await read(await tarOf(TREE));
    expect(plain).toMatchObject({ files: 3, bytes: 34 });
    expect(plain.sha256).toMatch(/^[0-9a-f]{64}$/);
    const shuffled = [...TREE].reverse().map((e) => ({ ...e, mtime: new Date(0), uid: 1234, uname: "someone" }));
    const again = await read(await tarOf(shuffled, { gzip: true }));
    expect(again.sha256).toBe(plain.sha256);
    const changed = await read(await tarOf(TREE.map((e) => (e.name === "pkg/core.py" ? { ...e, body: "def run():\n    return 2\n" } : e))));
    expect(changed.sha256).not.toBe(plain.sha256);
    const notExecutable = await read(await tarOf(TREE.map((e) => (e.name === "bin/tool" ? { ...e, mode: 0o644 } : e))));
    expect(notExecutable.sha256).not.toBe(plain.sha256);
  });

  it("refuses every hostile entry with a message naming it", async () => {
    const cases: Array<[TarEntry[], ArchiveError["code"], RegExp]> = [
      [[{ name: "../../x", body: "x" }], "unsafe_path", /\.\.\/\.\.\/x/],
      [[{ name: "a/../../x", body: "x" }], "unsafe_path", /\.\./],
      [[{ name: "/etc/cron.d/evil", body: "x" }], "unsafe_path", /absolute/],
      [[{ name: "etc", type: "symlink", linkname: "/etc" }, { name: "etc/cron.d/evil", body: "x" }], "unsafe_path", /absolute path/],
      [[{ name: "up", type: "symlink", linkname: "../.." }], "unsafe_path", /leaves the tree/],
      [[{ name: "d", type: "symlink", linkname: "sub" }, { name: "d/evil.py", body: "x" }], "unsafe_path", /parent d is a symlink/],
      [[{ name: "a.py", body: "x" }, { name: "hard", type: "link", linkname: "a.py" }], "unsupported_entry", /hard link/],
      [[{ name: "tty", type: "character-device", devmajor: 4, devminor: 1 }], "unsupported_entry", /device/],
      [[{ name: "sda", type: "block-device", devmajor: 8, devminor: 0 }], "unsupported_entry", /device/],
      [[{ name: "pipe", type: "fifo" }], "unsupported_entry", /fifo/],
      [[{ name: "su", body: "x", mode: 0o4755 }], "unsupported_entry", /setuid/],
      [[{ name: ".git/hooks/post-checkout", body: "x" }], "unsafe_path", /\.git/],
      [[{ name: "a.py", body: "1" }, { name: "a.py", body: "2" }], "unsafe_path", /twice/],
      [[{ name: `${"d/".repeat(130)}x.py`, body: "x" }], "path_too_long", /longer than 256/],
    ];
    for (const [entries, code, message] of cases) {
      const err = await refusal(entries);
      expect(err.code, entries[entries.length - 1]!.name).toBe(code);
      expect(err.message).toMatch(message);
    }
  });

  it("refuses archives past the caps: bytes, files, compression ratio, a 10 GB sparse bomb", async () => {
    expect((await refusal([{ name: "big.bin", body: Buffer.alloc(11 << 20) }])).code).toBe("too_large");
    const many = Array.from({ length: 101 }, (_, i) => ({ name: `f${i}.py`, body: "x" }));
    expect((await refusal(many)).code).toBe("too_many_files");
    // 9 MB of zeros gzip to ~9 KB: far past a 50× ratio, though under the byte cap.
    const zeros = gzipSync(await tarOf([{ name: "zeros.bin", body: Buffer.alloc(9 << 20) }]));
    expect((await refusal(zeros)).code).toBe("compression_ratio");
    const bomb = sparseBomb(10 * 1024 ** 3);
    expect(bomb.length).toBeLessThan(1 << 20);
    const err = await refusal(bomb, { ...LIMITS, maxBytes: 1 << 40 });
    expect(err.code).toBe("unsupported_entry");
    expect(err.message).toMatch(/sparse/);
    expect((await refusal(Buffer.from("this is not an archive at all, just text"))).code).toBe("invalid_archive");
  });

  it("extracts an accepted tree with plain modes and in-tree links, and writes nothing outside it for a hostile one", async () => {
    const parent = mkdtempSync(join(tmpdir(), "codescout-extract-"));
    try {
      const dest = join(parent, "tree");
      mkdirSync(dest);
      const summary = await extractArchive(await tarOf(TREE, { gzip: true }), dest, LIMITS);
      expect(summary.files).toBe(3);
      expect(readFileSync(join(dest, "pkg/core.py"), "utf8")).toContain("def run");
      expect(statSync(join(dest, "bin/tool")).mode & 0o777).toBe(0o755);
      expect(statSync(join(dest, "pkg/core.py")).mode & 0o777).toBe(0o644);
      expect(readlinkSync(join(dest, "pkg/alias.py"))).toBe("core.py");

      for (const hostile of [
        [{ name: "ok.py", body: "x" }, { name: "../escaped.py", body: "x" }],
        [{ name: "etc", type: "symlink", linkname: "/etc" } as TarEntry, { name: "etc/evil", body: "x" }],
        [{ name: "link", type: "symlink", linkname: "." } as TarEntry, { name: "link/../../escaped2.py", body: "x" }],
      ]) {
        const box = join(parent, `hostile-${Math.random().toString(16).slice(2)}`);
        mkdirSync(box);
        await expect(extractArchive(await tarOf(hostile), box, LIMITS)).rejects.toBeInstanceOf(ArchiveError);
        expect(readdirSync(box)).toEqual([]);
      }
      expect(existsSync(join(parent, "escaped.py"))).toBe(false);
      expect(existsSync(join(parent, "escaped2.py"))).toBe(false);
      expect(readdirSync(parent).sort().filter((n) => !n.startsWith("hostile-"))).toEqual(["tree"]);
    } finally {
      rmSync(parent, { recursive: true, force: true });
    }
  });
});
