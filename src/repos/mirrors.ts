import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { diskUsage, freeBytes, removeDir, touch } from "./disk.js";

/** A clone or fetch stopped for the room it took: the budget, or the disk's free-space floor. */
export class MirrorTooLarge extends Error {
  override name = "MirrorTooLarge";
  constructor(
    /** `budget`: the repository alone outgrew it, and will again; `disk`: the disk was short, which eviction may mend. */
    readonly limit: "budget" | "disk",
    message: string,
  ) {
    super(message);
  }
}

export interface MirrorBudgetOptions {
  /** Bytes of mirrors kept (0: no fixed limit). */
  maxBytes: number;
  /** Below this many bytes free on the filesystem, idle mirrors go whatever they hold (0: never). */
  minFreeBytes: number;
  /** A mirror no preparation has used for this long is idle. */
  idleMs: number;
  /** How often a clone or fetch in progress is measured (default 1 s). */
  watchEveryMs?: number;
  /** Bytes free on the filesystem holding a directory (default: statfs; null when unreadable). */
  freeBytes?: (dir: string) => number | null;
}

/**
 * Bounds the disk the bare mirrors take: every repository a client names is a clone kept for
 * good, so without a bound the cache grows until the disk is full. The least recently used
 * mirrors go first, and only idle ones, so a mirror is never removed under a preparation in
 * progress. A removed mirror costs its next job a clone.
 */
export class MirrorBudget {
  constructor(
    private readonly mirrorsDir: string,
    private readonly options: MirrorBudgetOptions,
  ) {}

  /** Marks a mirror as just used (its directory's mtime is its last use). */
  touch(mirror: string): Promise<void> {
    return touch(mirror);
  }

  /**
   * Runs a clone or fetch into `path` and stops it when `path` alone outgrows the budget, or
   * the disk falls below half the free-space floor: one client naming a huge repository must
   * not fill the disk before the budget is next looked at. `kept: false` (a fetch into a place
   * removed right after, not a mirror) leaves the budget out, not the floor.
   */
  async watch<T>(path: string, signal: AbortSignal | undefined, run: (signal: AbortSignal) => Promise<T>, options: { kept?: boolean } = {}): Promise<T> {
    const { minFreeBytes } = this.options;
    const maxBytes = options.kept === false ? 0 : this.options.maxBytes;
    if (maxBytes <= 0 && minFreeBytes <= 0) return run(signal ?? new AbortController().signal);
    const stop = new AbortController();
    let reason: { limit: MirrorTooLarge["limit"]; message: string } | undefined;
    const timer = setInterval(() => {
      void (async () => {
        if (minFreeBytes > 0 && this.shortOfFree(minFreeBytes / 2) > 0) reason = { limit: "disk", message: `the disk has less than ${Math.round(minFreeBytes / 2 ** 21)} MB free` };
        else if (maxBytes > 0 && (await diskUsage(path).catch(() => 0)) > maxBytes) reason = { limit: "budget", message: `the repository is larger than the mirror budget (${Math.round(maxBytes / 2 ** 20)} MB)` };
        if (reason) stop.abort();
      })();
    }, this.options.watchEveryMs ?? 1000);
    try {
      return await run(signal ? AbortSignal.any([signal, stop.signal]) : stop.signal);
    } catch (err) {
      throw reason ? new MirrorTooLarge(reason.limit, reason.message) : err;
    } finally {
      clearInterval(timer);
    }
  }

  /** Removes the least recently used idle mirrors while over the budget or the free-space floor; returns how many. */
  async evict(): Promise<number> {
    const { maxBytes, minFreeBytes, idleMs } = this.options;
    let short = minFreeBytes > 0 ? this.shortOfFree(minFreeBytes) : 0;
    if (maxBytes <= 0 && short <= 0) return 0;
    const mirrors: Array<{ path: string; used: number; bytes: number }> = [];
    for (const name of await readdir(this.mirrorsDir).catch(() => [] as string[])) {
      if (!name.endsWith(".git")) continue;
      const path = join(this.mirrorsDir, name);
      const st = await stat(path).catch(() => null);
      // A bare mirror is a few pack files: `du` is cheap even for a large repository.
      if (st?.isDirectory()) mirrors.push({ path, used: st.mtimeMs, bytes: await diskUsage(path).catch(() => 0) });
    }
    let bytes = mirrors.reduce((sum, m) => sum + m.bytes, 0);
    const over = () => (maxBytes > 0 && bytes > maxBytes) || short > 0;
    let removed = 0;
    const idleBefore = Date.now() - idleMs;
    for (const m of mirrors.sort((a, b) => a.used - b.used)) {
      if (!over()) break;
      if (m.used > idleBefore) continue;
      // A preparation that starts now finds no mirror and clones a new one.
      await removeDir(m.path);
      bytes -= m.bytes;
      short -= m.bytes;
      removed++;
    }
    return removed;
  }

  /** How many bytes the mirrors' filesystem lacks to have `want` bytes free (≤ 0: none). */
  private shortOfFree(want: number): number {
    const free = (this.options.freeBytes ?? freeBytes)(this.mirrorsDir);
    return free === null ? 0 : want - free;
  }
}
