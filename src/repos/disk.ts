import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, statfsSync, type StatsFs } from "node:fs";
import { rename, rm, utimes } from "node:fs/promises";
import { join } from "node:path";

/** Filesystem helpers the tree store and the mirror budget share. */

/**
 * Bytes of disk (or tmpfs) a directory takes, in blocks: what it costs the host, which for a
 * tree of small files is up to twice its content. `du` is one C walk, ~30 ms for django's
 * 6,800 files on tmpfs; a walk in JavaScript would stat every file through libuv's pool.
 */
export function diskUsage(path: string): Promise<number> {
  return new Promise((done, fail) =>
    execFile("du", ["-s", "-B1", "--", path], { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", LC_ALL: "C" } }, (err, out) => {
      const bytes = Number(out.split("\t")[0]);
      if (err || !Number.isFinite(bytes)) fail(err ?? new Error(`du ${path}: ${out}`));
      else done(bytes);
    }),
  );
}

/** The filesystem `path` will be on: that of its nearest existing ancestor (null if unreadable). */
export function filesystemOf(path: string): StatsFs | null {
  try {
    let d = path;
    while (!existsSync(d)) d = join(d, "..");
    return statfsSync(d);
  } catch {
    return null;
  }
}

/** Bytes free on the filesystem `dir` will be on (null if unreadable). */
export function freeBytes(dir: string): number | null {
  const st = filesystemOf(dir);
  return st ? st.bavail * st.bsize : null;
}

/**
 * Removes a directory, renamed first so that a concurrent reader never sees it half-deleted.
 * One that cannot be removed (another process's, gone already) is left: a budget is not worth
 * a failed job.
 */
export async function removeDir(path: string): Promise<void> {
  const doomed = `${path}.tmp-evict-${randomBytes(3).toString("hex")}`;
  await rename(path, doomed).catch(() => undefined);
  await rm(doomed, { recursive: true, force: true }).catch(() => undefined);
}

/** Marks a tree or mirror as just used: its directory's mtime is its last use. */
export async function touch(path: string): Promise<void> {
  const now = new Date();
  await utimes(path, now, now).catch(() => undefined);
}

/** Dates `path`'s last use `idleMs` (and a second) ago, so it counts as idle now. */
/** How much further than the idle time `backdate` sets a tree back. */
export const BACKDATE_MARGIN_MS = 1000;

export async function backdate(path: string, idleMs: number): Promise<void> {
  const then = new Date(Date.now() - idleMs - BACKDATE_MARGIN_MS);
  await utimes(path, then, then).catch(() => undefined);
}
