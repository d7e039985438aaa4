import { spawn } from "node:child_process";
import { Readable } from "node:stream";
import { readArchive, type ArchiveLimits, type ArchiveSummary } from "./archive.js";

/**
 * Extracts an upload into `dest` (an empty directory the caller made). The archive is read
 * into memory once and its entries are checked again (a worker does not trust the store
 * more than the API trusted the client); only then does GNU tar, in C and off the event
 * loop, extract the same bytes. Owners and permission bits from the archive are not kept.
 * The contents are not hashed again: what makes an entry unsafe is all in its header, and
 * the worker keys the tree by the id it was given, not by a digest it computes.
 */
export async function extractArchive(archive: Buffer, dest: string, limits: ArchiveLimits, signal?: AbortSignal): Promise<ArchiveSummary> {
  // In 64 KiB pieces, as it would stream: the tar reader copies less than with one large buffer.
  const pieces = (function* () {
    for (let i = 0; i < archive.length; i += 1 << 16) yield archive.subarray(i, i + (1 << 16));
  })();
  const summary = await readArchive(Readable.from(pieces), limits, { hashContents: false });
  const gzip = archive[0] === 0x1f && archive[1] === 0x8b;
  await new Promise<void>((resolve, reject) => {
    const tar = spawn("tar", ["-x", ...(gzip ? ["-z"] : []), "--no-same-owner", "--no-same-permissions", "--no-overwrite-dir", "-f", "-", "-C", dest], {
      stdio: ["pipe", "ignore", "pipe"],
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", LC_ALL: "C" },
      signal,
    });
    let err = "";
    tar.stderr.on("data", (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
    tar.stdin.on("error", () => undefined);
    tar.on("error", reject);
    tar.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`tar exited with ${code}: ${err.trim().slice(-500)}`))));
    tar.stdin.end(archive);
  });
  return summary;
}
