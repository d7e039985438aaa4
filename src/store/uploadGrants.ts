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

  async grant(id: string, owner: string): Promise<void> {
    const key = this.keys.uploadOwners(id);
    await this.redis.multi().sadd(key, owner).expire(key, this.ttlS).exec();
  }

  /** Whether `owner` may use the upload; renews the grants with the upload's own renewal. */
  async holds(id: string, owner: string): Promise<boolean> {
    const key = this.keys.uploadOwners(id);
    const [[, member]] = (await this.redis.multi().sismember(key, owner).expire(key, this.ttlS).exec()) as [[Error | null, number], unknown];
    return member === 1;
  }
}
