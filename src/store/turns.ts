import type { Redis } from "ioredis";
import type { Keys } from "./keys.js";

/** BullMQ's lowest priority. */
const PRIORITY_LIMIT = 2 ** 21;

/** A key's count lives a day past its last job: one a crash left too high heals. */
const COUNT_TTL_S = 86_400;

/**
 * Each API key's turn in the queue. BullMQ takes jobs first in, first out, so one key's batch of
 * 500 held every other key's job behind it for as long as it ran. A key's only waiting job is
 * queued as before (priority 0, taken before any other); its second waiting job gets priority 1,
 * its third 2, and so on, and BullMQ takes equal priorities in order: the keys' backlogs are
 * served a job of each in turn, and an agent's single call waits for no one's backlog.
 */
export class Turns {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {}

  /** Counts a job of `owner` as waiting, and gives the priority to queue it with. */
  async take(owner: string): Promise<number> {
    const priority = Number(await this.redis.eval(TAKE, 2, this.keys.ownerWaiting(owner), this.keys.ownerTurn(owner), COUNT_TTL_S));
    return Math.min(Math.max(0, priority), PRIORITY_LIMIT);
  }

  /** A job of `owner` stopped waiting: started for the first time, cancelled while queued, or never queued. */
  async left(owner: string): Promise<void> {
    await this.redis.eval(LEAVE, 2, this.keys.ownerWaiting(owner), this.keys.ownerTurn(owner));
  }
}

/**
 * KEYS: the owner's waiting count, and the priority its last job got. Never lower than that one
 * while any of its jobs waits: a key's own jobs keep their order, where a new job with fewer
 * waiting before it would pass the older ones, for as long as new ones came.
 */
const TAKE = `
local n = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
local p = math.max(n - 1, tonumber(redis.call('GET', KEYS[2]) or '0'))
redis.call('SET', KEYS[2], p, 'EX', ARGV[1])
return p
`;

/** Never below 0: a count a crash left short stays right from then on. None waiting, the key starts afresh. */
const LEAVE = `
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n > 1 then return redis.call('DECR', KEYS[1]) end
redis.call('DEL', KEYS[1], KEYS[2])
return 0
`;
