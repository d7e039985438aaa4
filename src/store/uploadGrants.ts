import type { Redis } from "ioredis";
import type { Keys } from "./keys.js";

/**
 * Which API keys may use an upload. An upload's id is its tree's content address, and the store
 * keeps one copy of a tree for all keys; without this, any key holding an id (or the tree) could
 * read the tree through a job, learn that another key had sent it (its GET answered 200), and
 * keep another key's upload alive for ever. A key is granted an upload by sending it (sending a
 * tree already stored costs nothing and grants it), for as long as the upload lives.
 *
 * A key's uploads count against its own share of the store (`maxBytes`, the archives' bytes of
 * every upload it holds, whoever stored them): one key sending tree after tree filled the store
 * every other key's uploads went to.
 */
export class UploadGrants {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly ttlS: number,
    /** 0: no share of its own. */
    private readonly maxBytes = 0,
  ) {}

  /**
   * Counts an upload the key is about to hold against its share, before the store keeps it.
   * Holding it already costs nothing more. Refused: the bytes the key holds, and when the first of
   * its uploads is dropped.
   */
  async charge(id: string, owner: string, bytes: number): Promise<{ ok: true; undo: () => Promise<void> } | { ok: false; held: number; freedAt: number }> {
    if (this.maxBytes <= 0) return { ok: true, undo: async () => undefined };
    const keys = [this.keys.ownerUploads(owner), this.keys.ownerUploadBytes(owner)];
    const [code, held, freedAt] = (await this.redis.eval(CHARGE, 2, ...keys, id, bytes, this.maxBytes, Date.now(), this.ttlS)) as [number, number, number];
    if (code === 0) return { ok: false, held, freedAt };
    // Only a charge the key did not hold before is taken back: the store failing must not cost a key its share.
    const undo = code === 2 ? async () => void (await this.redis.eval(UNCHARGE, 2, ...keys, id).catch(() => undefined)) : async () => undefined;
    return { ok: true, undo };
  }

  /** `stored`: the tree was stored anew (it had expired): grants to the keys that sent it before go with it. */
  async grant(id: string, owner: string, stored = false): Promise<void> {
    const key = this.keys.uploadOwners(id);
    const tx = this.redis.multi();
    if (stored) tx.del(key);
    await tx.sadd(key, owner).expire(key, this.ttlS).exec();
  }

  /** Whether `owner` may use the upload; its use renews the grants, as it renews the upload (another key's asking, neither). */
  async holds(id: string, owner: string): Promise<boolean> {
    const keys = [this.keys.uploadOwners(id), this.keys.ownerUploads(owner), this.keys.ownerUploadBytes(owner)];
    return (await this.redis.eval(HOLDS, 3, ...keys, owner, this.ttlS, id, Date.now())) === 1;
  }
}

// The key's share is renewed with the grant, so it is counted for as long as the key holds the upload.
const HOLDS = `
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('EXPIRE', KEYS[1], ARGV[2])
if redis.call('ZADD', KEYS[2], 'XX', tonumber(ARGV[4]) + tonumber(ARGV[2]) * 1000, ARGV[3]) then
  redis.call('EXPIRE', KEYS[2], ARGV[2])
  redis.call('EXPIRE', KEYS[3], ARGV[2])
end
return 1
`;

// KEYS: the key's uploads (id -> when its hold ends, ms), their bytes (id -> bytes, and "total").
// ARGV: id, bytes, max, now (ms), ttl (s). Holds that ended are dropped first, a bounded number a
// call (what is left is dropped by the next). Returns {0, held, first end} refused, {1} held
// before, {2} new.
const CHARGE = `
local ended = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[4], 'LIMIT', 0, 500)
local total = tonumber(redis.call('HGET', KEYS[2], 'total') or '0')
for _, old in ipairs(ended) do
  total = total - tonumber(redis.call('HGET', KEYS[2], old) or '0')
  redis.call('HDEL', KEYS[2], old)
  redis.call('ZREM', KEYS[1], old)
end
if total < 0 then total = 0 end
local before = redis.call('HGET', KEYS[2], ARGV[1])
if not before then
  local bytes = tonumber(ARGV[2])
  if total + bytes > tonumber(ARGV[3]) then
    redis.call('HSET', KEYS[2], 'total', total)
    local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    return {0, total, tonumber(first[2] or ARGV[4])}
  end
  total = total + bytes
  redis.call('HSET', KEYS[2], ARGV[1], bytes)
end
redis.call('HSET', KEYS[2], 'total', total)
redis.call('ZADD', KEYS[1], tonumber(ARGV[4]) + tonumber(ARGV[5]) * 1000, ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('EXPIRE', KEYS[2], ARGV[5])
if before then return {1} end
return {2}
`;

const UNCHARGE = `
local bytes = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '-1')
if bytes < 0 then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HINCRBY', KEYS[2], 'total', -bytes)
return 1
`;
