import type { Redis } from "ioredis";
import type { Keys } from "./keys.js";

/**
 * Which API keys may use an upload. An upload's id is its tree's content address, and the store
 * keeps one copy of a tree for all keys; without this, any key holding an id (or the tree) could
 * read the tree through a job, learn that another key had sent it (its GET answered 200), and
 * keep another key's upload alive for ever. A key is granted an upload by sending it (sending a
 * tree already stored costs nothing and grants it), for as long as the upload lives.
 */
export class UploadGrants {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly ttlS: number,
  ) {}

  /** `stored`: the tree was stored anew (it had expired): grants to the keys that sent it before go with it. */
  async grant(id: string, owner: string, stored = false): Promise<void> {
    const key = this.keys.uploadOwners(id);
    const tx = this.redis.multi();
    if (stored) tx.del(key);
    await tx.sadd(key, owner).expire(key, this.ttlS).exec();
  }

  /** Whether `owner` may use the upload; its use renews the grants, as it renews the upload (another key's asking, neither). */
  async holds(id: string, owner: string): Promise<boolean> {
    return (await this.redis.eval(HOLDS, 1, this.keys.uploadOwners(id), owner, this.ttlS)) === 1;
  }
}

const HOLDS = `
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
`;
