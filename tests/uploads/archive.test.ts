import { describe, it, expect } from "vitest";
import { existsSync, mkdtempSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { gzipSync } from "node:zlib";
import { ArchiveError, readArchive, type ArchiveLimits } from "../../src/uploads/archive.js";
import { extractArchive } from "../../src/uploads/extract.js";
import { raw, sparseBomb, tarOf, type TarEntry } from "../helpers/tarball.js";

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
      // A newline in a path could forge a line of the tree's digest: two trees, one id.
      [[{ name: "a\nF 644 0000 b", body: "x" }], "unsafe_path", /line breaks/],
      [[{ name: "a", body: "x" }, { name: "a/", type: "directory" }], "unsafe_path", /a directory where a file was/],
      // A path under a file, in either order: GNU tar refuses both at the worker.
      [[{ name: "pkg/a.py", body: "x" }, { name: "pkg/a.py/b.py", body: "y" }], "unsafe_path", /pkg\/a\.py\/b\.py: its parent pkg\/a\.py is a file/],
      [[{ name: "pkg/a.py/b.py", body: "y" }, { name: "pkg/a.py", body: "x" }], "unsafe_path", /pkg\/a\.py: a file where a directory was/],
      // Each stays in the tree as text; followed through the other, the second is the tree's parent.
      [[{ name: "d", type: "symlink", linkname: "." }, { name: "s", type: "symlink", linkname: "d/.." }], "unsafe_path", /s: a symlink to d\/\.\. leaves the tree through another symlink/],
      [[{ name: "s", type: "symlink", linkname: "x/d/.." }, { name: "x/d", type: "symlink", linkname: ".." }], "unsafe_path", /leaves the tree through another symlink/],
      [[{ name: "a", type: "symlink", linkname: "b" }, { name: "b", type: "symlink", linkname: "a" }], "unsafe_path", /longer than 40, or a loop/],
    ];
    for (const [entries, code, message] of cases) {
      const err = await refusal(entries);
      expect(err.code, entries[entries.length - 1]!.name).toBe(code);
      expect(err.message).toMatch(message);
    }    // Links whose following would take more steps than an archive is given (each step was a copy
    // of the path: 300 such links in 6.5 KB of gzip held the event loop 6.5 s).
    const long = Array.from({ length: 600 }, (_, i) => ({ name: `l${i}`, type: "symlink", linkname: Array(2000).fill("x").join("/") }) as TarEntry);
    const slow = await refusal(long);
    expect([slow.code, slow.message]).toEqual(["unsafe_path", "the archive's symlinks take too many steps to follow"]);
    // A chain that stays in the tree, through a linked directory too, is a tree's own business.
    const chained = [{ name: "src/lib/x.py", body: "x" }, { name: "lib", type: "symlink", linkname: "src/lib" }, { name: "alias.py", type: "symlink", linkname: "lib/x.py" }, { name: "up", type: "symlink", linkname: "lib/../.." }] as TarEntry[];
    expect((await read(await tarOf(chained))).files).toBe(1);
  });

  it("refuses a directory that claims contents, at once (tar-stream would never end it, and the upload would hang)", async () => {
    const inner = raw.entry("hidden", "zz");
    const err = await refusal(Buffer.concat([raw.header("d/", "5", inner.length), inner, raw.entry("after", "q"), raw.end]));
    expect([err.code, err.message]).toEqual(["unsupported_entry", "d: a directory entry with contents"]);
  });

  it("extracts what the checks read, where GNU tar would read the same bytes as another tree", async () => {
    const parent = mkdtempSync(join(tmpdir(), "codescout-extract-"));
    const extracted = async (archive: Buffer) => {
      const dest = join(parent, `t-${Math.random().toString(16).slice(2)}`);
      mkdirSync(dest);
      await extractArchive(archive, dest, LIMITS);
      return dest;
    };
    try {
      // A global pax header: tar-stream leaves it out, GNU tar would give the link its target (/etc).
      const global = await extracted(Buffer.concat([raw.pax([["linkpath", "/etc"]], "g"), raw.entry("lnk", "", "2", { linkname: "ok" }), raw.end]));
      expect(readlinkSync(join(global, "lnk"))).toBe("ok");
      // An old GNU 'N' name: tar-stream reads it as the next entry's name (a link that stays
      // inside); GNU tar would make the link at the top, where ../../.. leaves the tree.
      const named = await extracted(Buffer.concat([raw.entry("././@LongLink", "inside/deep/deeper/l\0", "N"), raw.entry("l", "", "2", { linkname: "../../.." }), raw.end]));
      expect(readlinkSync(join(named, "inside/deep/deeper/l"))).toBe("../../..");
      expect(existsSync(join(named, "l"))).toBe(false);
      // A malformed pax size: tar-stream reads it leniently (the next entry is the file's
      // contents), GNU tar would read on and write the hidden .git/config.
      const hidden = raw.entry(".git/config", "[core]\n\tfsmonitor = touch /tmp/codescout-pwned\n");
      const sized = await extracted(Buffer.concat([raw.pax([["size", `${hidden.length}x`]]), raw.entry("a", ""), hidden, raw.end]));
      expect(readdirSync(sized)).toEqual(["a"]);
      expect(statSync(join(sized, "a")).size).toBe(hidden.length);
      // A lone zero block: GNU tar would stop there, tar-stream reads on; the tree has both files.
      const zero = await extracted(Buffer.concat([raw.entry("a", "x"), Buffer.alloc(512), raw.entry("b", "y"), raw.end]));
      expect(readdirSync(zero).sort()).toEqual(["a", "b"]);
    } finally {
      rmSync(parent, { recursive: true, force: true });
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
