import { randomBytes } from "node:crypto";
import { existsSync, statfsSync } from "node:fs";
import { chmod, mkdir, open, readFile, readdir, rename, rm, stat, writeFile, type FileHandle } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { Redis } from "ioredis";
import { z } from "zod";
import { UPLOAD_ID_RE } from "../queue/contract.js";
import type { ArchiveSummary } from "./archive.js";

/**
 * Where uploaded archives wait for a worker. The API writes, a worker on any host reads,
 * so the store is the one thing both reach: a directory for a single host (or a shared
 * volume), or Redis, which every deployment already shares, for archives under a cap.
 * Archives are content-addressed (digest.ts): the same tree is stored once, and asking by
 * id renews its lifetime.
 */

export const uploadInfoSchema = z.object({
  upload_id: z.string().describe("The tree's content address; pass it as repo.upload."),
  sha256: z.string().describe("SHA-256 over the tree's sorted entries (the same value as upload_id)."),
  files: z.number().int().min(0),
  bytes: z.number().int().min(0).describe("Sum of file sizes."),
  archive_bytes: z.number().int().min(0).describe("Size of the archive as stored."),
  expires_at: z.string().describe("When the upload is dropped unless used or asked for again."),
});
export type UploadInfo = z.infer<typeof uploadInfoSchema>;

export interface StagedUpload {
  /** Takes the archive's bytes exactly as they arrive. */
  write(chunk: Buffer): Promise<void>;
  /** Keeps the archive under the summary's id; `created` is false when it was there already. */
  commit(summary: ArchiveSummary): Promise<{ info: UploadInfo; created: boolean }>;
  /** Drops what was written; nothing stays behind. */
  abort(): Promise<void>;
}

export interface UploadStore {
  /** The upload's info with its lifetime renewed; null when absent or expired. */
  touch(id: string): Promise<UploadInfo | null>;
  stage(): Promise<StagedUpload>;
  /** The archive's bytes (read once, so they cannot change between check and use); null when absent or expired. */
  read(id: string): Promise<Buffer | null>;
  /** Removes what expired, where nothing removes it by itself (a directory; Redis expires its keys); how many. */
  sweep?(): Promise<number>;
}

export class UploadStoreFull extends Error {
  override name = "UploadStoreFull";
}

/** Bytes free on the filesystem holding `dir` (or its nearest existing parent); null when unreadable. */
function freeBytesOf(dir: string): number | null {
  try {
    let d = dir;
    while (!existsSync(d)) d = join(d, "..");
    const fs = statfsSync(d);
    return fs.bavail * fs.bsize;
  } catch {
    return null;
  }
}

/** The store could not keep an upload (its disk full or failing, its Redis away): the service's fault, not the archive's. */
export class UploadStoreFailed extends Error {
  override name = "UploadStoreFailed";
  constructor(cause: unknown) {
    super(`the upload store could not keep the upload: ${(cause as Error)?.message ?? String(cause)}`, { cause });
  }
}

const storeFailed = (err: unknown): never => {
  throw err instanceof UploadStoreFull || err instanceof UploadStoreFailed ? err : new UploadStoreFailed(err);
};

const infoOf = (summary: ArchiveSummary, archiveBytes: number, ttlS: number): UploadInfo => ({
  upload_id: summary.sha256,
  sha256: summary.sha256,
  files: summary.files,
  bytes: summary.bytes,
  archive_bytes: archiveBytes,
  expires_at: new Date(Date.now() + ttlS * 1000).toISOString(),
});

const validId = (id: string) => UPLOAD_ID_RE.test(id);

const WRITE_BATCH_BYTES = 4 << 20;

/** Archives as files: `<id>.archive` beside `<id>.json`; expired ones are swept as new ones arrive. */
export class DirUploadStore implements UploadStore {
  readonly dir: string;
  private lastSweep = 0;

  constructor(
    dir: string,
    private readonly ttlS: number,
    /**
     * Disk left free, whatever the uploads: with room for `reserve` (the largest archive) past
     * `minFree` only is one taken. Uploads had no overall cap: 120 of 100 MB a minute from one
     * key would fill the disk the mirrors and trees share in minutes.
     */
    private readonly space: { minFree: number; reserve: number; freeBytes?: (dir: string) => number | null } = { minFree: 0, reserve: 0 },
  ) {
    this.dir = resolve(dir);
  }

  private roomFor(): void {
    if (!this.space.minFree) return;
    const free = (this.space.freeBytes ?? freeBytesOf)(this.dir);
    if (free !== null && free < this.space.minFree + this.space.reserve) {
      throw new Error(`the disk holding uploads has ${Math.floor(free / 2 ** 20)} MiB free, under the ${Math.floor(this.space.minFree / 2 ** 20)} MiB kept free plus room for one upload`);
    }
  }

  private unlisted = false;

  /**
   * The staging directory, made with the store's own unlistable by other users of the host: the
   * archives are theirs to read alone (0600), and the names listed were the upload ids, which
   * name the trees a worker makes of them.
   */
  private async makeIncoming(incoming: string): Promise<void> {
    await mkdir(incoming, { recursive: true, mode: 0o700 });
    if (this.unlisted) return;
    this.unlisted = true;
    await chmod(this.dir, 0o700).catch(() => undefined);
  }

  private paths(id: string) {
    return { archive: join(this.dir, `${id}.archive`), meta: join(this.dir, `${id}.json`) };
  }

  async touch(id: string): Promise<UploadInfo | null> {
    if (!validId(id)) return null;
    const { meta, archive } = this.paths(id);
    let info: UploadInfo;
    try {
      info = uploadInfoSchema.parse(JSON.parse(await readFile(meta, "utf8")));
    } catch {
      return null;
    }
    if (Date.parse(info.expires_at) < Date.now()) return null;
    // A record whose bytes are gone (removed by hand, a crash) is no upload: renewed, it would
    // turn every upload of that tree away as already held, and fail every job on it.
    if (!existsSync(archive)) {
      await rm(meta, { force: true });
      return null;
    }
    const renewed = { ...info, expires_at: new Date(Date.now() + this.ttlS * 1000).toISOString() };
    await this.writeMeta(meta, renewed);
    return renewed;
  }

  /**
   * Replaces an upload's meta file at once: the API renews it while a worker on the same
   * directory reads it, and a file rewritten in place is empty or half-written for a moment,
   * which a reader in another process took for no upload (upload_not_found).
   */
  private async writeMeta(meta: string, info: UploadInfo): Promise<void> {
    const incoming = join(this.dir, ".incoming");
    await this.makeIncoming(incoming);
    const tmp = join(incoming, `meta-${randomBytes(8).toString("hex")}`);
    try {
      await writeFile(tmp, JSON.stringify(info), { mode: 0o600 });
      await rename(tmp, meta);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  async stage(): Promise<StagedUpload> {
    await this.sweep().catch(() => 0);
    this.roomFor();
    const incoming = join(this.dir, ".incoming");
    await this.makeIncoming(incoming);
    const tmp = join(incoming, randomBytes(8).toString("hex"));
    const file = await open(tmp, "wx", 0o600);
    // Chunks arrive at 64 KiB; writing them in batches, one batch in flight while the next
    // fills, cost a third of a write per chunk (a 50 MB upload: ~100 ms less).
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let inFlight: Promise<unknown> = Promise.resolve();
    let written = 0;
    const flush = async () => {
      const batch = pending;
      pending = [];
      pendingBytes = 0;
      await inFlight;
      inFlight = writeAll(file, batch);
      // Awaited by the next flush or by close; never left to reject unobserved.
      inFlight.catch(() => undefined);
    };
    let closed = false;
    const close = async () => {
      if (closed) return;
      closed = true;
      try {
        await flush();
        await inFlight;
      } finally {
        await file.close();
      }
    };
    return {
      write: async (chunk) => {
        written += chunk.length;
        pending.push(chunk);
        pendingBytes += chunk.length;
        if (pendingBytes >= WRITE_BATCH_BYTES) await flush().catch(storeFailed);
      },
      commit: async (summary) => {
        try {
          await close();
          const existing = await this.touch(summary.sha256);
          if (existing) {
            await rm(tmp, { force: true });
            return { info: existing, created: false };
          }
          const { archive, meta } = this.paths(summary.sha256);
          await rename(tmp, archive);
          const info = infoOf(summary, written, this.ttlS);
          await this.writeMeta(meta, info);
          return { info, created: true };
        } catch (err) {
          return storeFailed(err);
        }
      },
      abort: async () => {
        pending = [];
        await close().catch(() => undefined);
        await rm(tmp, { force: true });
      },
    };
  }

  async read(id: string): Promise<Buffer | null> {
    if (!(await this.touch(id))) return null;
    return readFile(this.paths(id).archive).catch(() => null);
  }

  /** Removes expired uploads and incoming files abandoned by a crashed process. */
  async sweep(): Promise<number> {
    if (Date.now() - this.lastSweep < 60_000) return 0;
    this.lastSweep = Date.now();
    let removed = 0;
    for (const name of await readdir(this.dir).catch(() => [] as string[])) {
      const m = /^([0-9a-f]{64})\.json$/.exec(name);
      if (!m) continue;
      const info = await readFile(join(this.dir, name), "utf8").then((t) => uploadInfoSchema.safeParse(JSON.parse(t)), () => null);
      if (info?.success && Date.parse(info.data.expires_at) >= Date.now()) continue;
      await rm(this.paths(m[1]!).archive, { force: true });
      await rm(join(this.dir, name), { force: true });
      removed++;
    }
    // An archive whose record never came (its process died between the two): nothing reads it.
    for (const name of await readdir(this.dir).catch(() => [] as string[])) {
      const m = /^([0-9a-f]{64})\.archive$/.exec(name);
      if (!m || existsSync(this.paths(m[1]!).meta)) continue;
      const st = await stat(join(this.dir, name)).catch(() => null);
      if (st && Date.now() - st.mtimeMs > 3_600_000) {
        await rm(join(this.dir, name), { force: true });
        removed++;
      }
    }
    const incoming = join(this.dir, ".incoming");
    for (const name of await readdir(incoming).catch(() => [] as string[])) {
      const st = await stat(join(incoming, name)).catch(() => null);
      if (st && Date.now() - st.mtimeMs > 3_600_000) await rm(join(incoming, name), { force: true });
    }
    return removed;
  }
}

/**
 * Keeps an archive and its record, and counts its bytes against the store's budget, in one
 * step: concurrent commits cannot all pass the check. The count is kept as a sorted set of the
 * kept ids by expiry (what expired leaves the count here, as its keys leave Redis) beside
 * their sizes and the running total, so a check costs the expired ones, not every upload.
 * Times are Redis's own, whichever host's clock runs ahead. The same tree committed twice at
 * once (a retry, two agents on one checkout) counts once.
 * KEYS: by expiry, sizes, total, archive, meta. ARGV: id, budget, ttl s, bytes, meta.
 */
const KEEP_WITHIN_BUDGET = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
for _, id in ipairs(expired) do
  redis.call('DECRBY', KEYS[3], tonumber(redis.call('HGET', KEYS[2], id) or '0'))
  redis.call('HDEL', KEYS[2], id)
  redis.call('ZREM', KEYS[1], id)
end
local size = string.len(ARGV[4])
local before = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
local held = tonumber(redis.call('GET', KEYS[3]) or '0')
if held - before + size > tonumber(ARGV[2]) then return held end
redis.call('SET', KEYS[4], ARGV[4], 'EX', ARGV[3])
redis.call('SET', KEYS[5], ARGV[5], 'EX', ARGV[3])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]) * 1000, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], size)
redis.call('INCRBY', KEYS[3], size - before)
return -1
`;

/**
 * Renews an upload (its bytes, its record, its place in the count) in one step, or, its bytes
 * gone, drops its record and its count. An archive the count lost (kept before the count was,
 * or renewed just as it expired from the count) is counted again here, by its size in Redis.
 * KEYS: by expiry, sizes, total, archive, meta. ARGV: id, ttl s, meta. Returns 1 when renewed.
 */
const RENEW = `
if redis.call('EXPIRE', KEYS[4], ARGV[2]) == 1 then
  redis.call('SET', KEYS[5], ARGV[3], 'EX', ARGV[2])
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local size = redis.call('STRLEN', KEYS[4])
  local before = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
  if before ~= size then
    redis.call('HSET', KEYS[2], ARGV[1], size)
    redis.call('INCRBY', KEYS[3], size - before)
  end
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]) * 1000, ARGV[1])
  return 1
end
redis.call('DEL', KEYS[5])
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  redis.call('DECRBY', KEYS[3], tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0'))
  redis.call('HDEL', KEYS[2], ARGV[1])
end
return 0
`;

/**
 * Archives as Redis strings with a TTL: shared by every API and worker host, capped in size
 * each and in all. Redis holds the queue too, so uploads left uncapped would fill its memory
 * (under noeviction, as BullMQ asks, every job's write then fails) or, under an eviction
 * policy, evict the queue's own keys. While an upload arrives it is buffered in this process;
 * this process's buffers are held to the same number apart, so concurrent uploads cannot
 * exhaust the API's memory either.
 */
export class RedisUploadStore implements UploadStore {
  private buffered = 0;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly ttlS: number,
    private readonly maxArchiveBytes: number,
    private readonly budgetBytes: number = Number.MAX_SAFE_INTEGER,
  ) {}

  private keys(id: string) {
    return { archive: `${this.prefix}:upload:${id}:archive`, meta: `${this.prefix}:upload:${id}:meta` };
  }

  private countKeys(): string[] {
    return [`${this.prefix}:uploads:by-expiry`, `${this.prefix}:uploads:sizes`, `${this.prefix}:uploads:bytes`];
  }

  private full(held: number): UploadStoreFailed {
    const mib = (n: number) => (n / 2 ** 20).toFixed(1);
    return new UploadStoreFailed(new Error(`the Redis upload store holds ${mib(held)} MiB of its ${mib(this.budgetBytes)} MiB budget (UPLOAD_REDIS_MAX_MB); uploads expire after UPLOAD_TTL_S unused`));
  }

  async touch(id: string): Promise<UploadInfo | null> {
    if (!validId(id)) return null;
    const k = this.keys(id);
    const raw = await this.redis.get(k.meta);
    if (raw === null) return null;
    const parsed = uploadInfoSchema.safeParse(JSON.parse(raw));
    if (!parsed.success) return null;
    const info = { ...parsed.data, expires_at: new Date(Date.now() + this.ttlS * 1000).toISOString() };
    // The bytes gone (evicted under maxmemory, the larger key first; expired a moment before
    // the meta): no upload, rather than one renewed for ever that every job fails on.
    const renewed = await this.redis.eval(RENEW, 5, ...this.countKeys(), k.archive, k.meta, id, this.ttlS, JSON.stringify(info));
    return renewed === 1 ? info : null;
  }

  async stage(): Promise<StagedUpload> {
    const parts: Buffer[] = [];
    let size = 0;
    const release = () => {
      this.buffered -= size;
      size = 0;
      parts.length = 0;
    };
    return {
      write: async (chunk) => {
        if (size + chunk.length > this.maxArchiveBytes) throw new UploadStoreFull(`archives kept in Redis are at most ${this.maxArchiveBytes} bytes`);
        if (this.buffered + chunk.length > this.budgetBytes) throw this.full(this.buffered);
        size += chunk.length;
        this.buffered += chunk.length;
        parts.push(chunk);
      },
      commit: async (summary) => {
        try {
          const existing = await this.touch(summary.sha256);
          if (existing) return { info: existing, created: false };
          const k = this.keys(summary.sha256);
          const info = infoOf(summary, size, this.ttlS);
          // Archive and record together, with one lifetime: a reader that finds the meta finds the bytes.
          const held = await this.redis.eval(KEEP_WITHIN_BUDGET, 5, ...this.countKeys(), k.archive, k.meta,
            summary.sha256, this.budgetBytes, this.ttlS, Buffer.concat(parts), JSON.stringify(info));
          if (Number(held) >= 0) throw this.full(Number(held));
          return { info, created: true };
        } catch (err) {
          return storeFailed(err);
        } finally {
          release();
        }
      },
      abort: async () => {
        release();
      },
    };
  }

  async read(id: string): Promise<Buffer | null> {
    if (!(await this.touch(id))) return null;
    return this.redis.getBuffer(this.keys(id).archive);
  }
}

/**
 * Every byte of `batch`, or the failure: writev may write only part (a file-size limit, a disk
 * filling up) and say so in its count rather than fail; the rest is written again, which fails
 * if the cause is still there. A short write unnoticed would keep a cut archive under the id of
 * the whole one.
 */
async function writeAll(file: FileHandle, batch: Buffer[]): Promise<void> {
  const total = batch.reduce((n, b) => n + b.length, 0);
  let { bytesWritten } = await file.writev(batch);
  if (bytesWritten >= total) return;
  const whole = Buffer.concat(batch);
  while (bytesWritten < total) {
    const { bytesWritten: more } = await file.write(whole, bytesWritten, total - bytesWritten);
    if (more === 0) throw new Error(`wrote ${bytesWritten} of ${total} bytes`);
    bytesWritten += more;
  }
}
