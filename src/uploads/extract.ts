import { spawn } from "node:child_process";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import { extract as tarExtract, pack as tarPack } from "tar-stream";
import { entryPath, readArchive, type ArchiveLimits, type ArchiveSummary } from "./archive.js";

/**
 * Extracts an upload into `dest` (an empty directory the caller made). The archive is read
 * into memory once and its entries are checked again (a worker does not trust the store
 * more than the API trusted the client); only then does GNU tar, in C and off the event
 * loop, extract them. Not the bytes as sent: GNU tar and the checks' reader (tar-stream) read
 * some headers differently (a global pax header, an old GNU long name, a malformed size, a
 * lone zero block), and a crafted archive could show the checks one tree and tar another,
 * with a symlink out of it or a `.git`. So the entries the checks read are written again as a
 * plain archive, and that is what tar extracts. Owners and permission bits from the archive
 * are not kept. The contents are not hashed again: what makes an entry unsafe is all in its
 * header, and the worker keys the tree by the id it was given, not by a digest it computes.
 */
export async function extractArchive(archive: Buffer, dest: string, limits: ArchiveLimits, signal?: AbortSignal): Promise<ArchiveSummary> {
  // In 64 KiB pieces, as it would stream: the tar reader copies less than with one large buffer.
  const pieces = function* () {
    for (let i = 0; i < archive.length; i += 1 << 16) yield archive.subarray(i, i + (1 << 16));
  };
  const summary = await readArchive(Readable.from(pieces()), limits, { hashContents: false });
  const gzip = archive[0] === 0x1f && archive[1] === 0x8b;

  const tar = spawn("tar", ["-x", "--no-same-owner", "--no-same-permissions", "--no-overwrite-dir", "-f", "-", "-C", dest], {
    stdio: ["pipe", "ignore", "pipe"],
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", LC_ALL: "C" },
    signal,
  });
  let err = "";
  tar.stderr.on("data", (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
  const exited = new Promise<void>((resolve, reject) => {
    tar.on("error", reject);
    tar.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`tar exited with ${code}: ${err.trim().slice(-500)}`))));
  });

  const reader = tarExtract();
  const packer = tarPack();
  reader.on("entry", (header, entry, next) => {
    const path = entryPath(header);
    const done = (e?: Error | null) => (e ? reader.destroy(e) : next());
    if (path !== null && header.type === "file") {
      entry.pipe(packer.entry({ name: path, type: "file", size: header.size ?? 0, mode: (header.mode ?? 0) & 0o111 ? 0o755 : 0o644 }, done));
      return;
    }
    if (path !== null && header.type === "directory") packer.entry({ name: path, type: "directory", mode: 0o755 });
    if (path !== null && header.type === "symlink") packer.entry({ name: path, type: "symlink", linkname: header.linkname ?? "" });
    // Nothing else passed the checks.
    entry.once("end", () => done());
    entry.resume();
  });
  reader.once("finish", () => packer.finalize());
  try {
    await Promise.all([
      gzip ? pipeline(Readable.from(pieces()), createGunzip(), reader) : pipeline(Readable.from(pieces()), reader),
      pipeline(packer, tar.stdin),
      exited,
    ]);
  } catch (e) {
    tar.kill();
    reader.destroy();
    packer.destroy();
    throw e;
  }
  return summary;
}
