import { createWriteStream } from "node:fs";
import { mkdir, symlink } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { readArchive, type ArchiveLimits, type ArchiveSummary, type EntrySink } from "./archive.js";

/**
 * Extracts an upload into `dest` (an empty directory the caller made), re-checking every
 * entry on the way: a worker does not trust what the store hands it any more than the API
 * trusted the client. Files are created exclusively (never through an existing path or
 * link) with plain modes; nothing is owned by anyone but the worker.
 */
export async function extractArchive(source: Readable, dest: string, limits: ArchiveLimits): Promise<ArchiveSummary> {
  const sink: EntrySink = {
    async directory(path) {
      await mkdir(join(dest, path), { recursive: true, mode: 0o755 });
    },
    async file(path, executable, content) {
      const full = join(dest, path);
      await mkdir(join(full, ".."), { recursive: true, mode: 0o755 });
      await pipeline(content, createWriteStream(full, { flags: "wx", mode: executable ? 0o755 : 0o644 }));
    },
    async symlink(path, target) {
      const full = join(dest, path);
      await mkdir(join(full, ".."), { recursive: true, mode: 0o755 });
      await symlink(target, full);
    },
  };
  return readArchive(source, limits, sink);
}
