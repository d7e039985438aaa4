import type { Redis } from "ioredis";
import type { Keys } from "./keys.js";

/** BullMQ's lowest priority (it refuses 2^21, and the job with it). */
const PRIORITY_LIMIT = 2 ** 21 - 1;

/** A job recorded as waiting whose job is not there yet is being queued, for this long at most. */
const QUEUEING_MS = 60_000;

/**
 * Each API key's turn in the queue. BullMQ takes jobs first in, first out, so one key's batch of
 * 500 held every other key's job behind it for as long as it ran. A key with no job waiting has
 * its job queued as before (priority 0: taken before any other); a key's further waiting jobs go
 * in rounds (start-time fair queuing): each one round after the key's last, and never before the
 * round now being served (the lowest priority waiting), so keys with backlogs are served a job
 * of each in turn, a key's own jobs keep their order, and a key that comes late waits for no
 * backlog's earlier rounds, nor is held behind its own old ones.
 *
 * Which of a key's jobs still wait is read from the jobs themselves (BullMQ's job record: gone, or
 * started, `processedOn`), not counted up and down: a count went wrong for good where a worker or
 * API of an earlier version, which counts nothing, ran beside this one, or a process died between.
 */
export class Turns {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    /** How long a key's records live past its last job: as long as a job may wait (JOB_TTL_S). */
    private readonly recordTtlS: number,
  ) {}

  /** Records `jobId` of `owner` as waiting, and gives the priority to queue it with. */
  async take(owner: string, jobId: string): Promise<number> {
    const k = this.keys;
    return Number(await this.redis.eval(TAKE, 3, k.ownerWaiting(owner), k.ownerTurn(owner), k.prioritized, jobId, this.recordTtlS, k.jobPrefix, QUEUEING_MS, PRIORITY_LIMIT));
  }

  /** `jobId` of `owner` waits no more (cancelled, or never queued): at once, not at the key's next job. */
  async left(owner: string, jobId: string): Promise<void> {
    await this.redis.zrem(this.keys.ownerWaiting(owner), jobId);
  }
}

/**
 * KEYS: the owner's waiting jobs (id → when recorded), the round of its last, BullMQ's prioritized
 * set (score: priority × 2^32 + a counter). ARGV: the job's id, the records' lifetime, the prefix
 * of BullMQ's job records, how long a job may be queueing, the lowest priority (a backlog never
 * empty for ~2 million rounds reaches it, and is then served first in, first out, never refused).
 * Whether any job waits is all that is asked: the oldest records are read until one still waits,
 * and those that do not are dropped, each once, so a submission costs the same beside 10 waiting
 * jobs or 10,000 (a key's jobs start oldest first).
 */
const TAKE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local waiting = false
while true do
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  if not first[1] then break end
  local job = ARGV[3] .. first[1]
  local there = redis.call('EXISTS', job) == 1
  if (there and redis.call('HEXISTS', job, 'processedOn') == 0) or ((not there) and now - tonumber(first[2]) < tonumber(ARGV[4])) then
    waiting = true
    break
  end
  redis.call('ZREM', KEYS[1], first[1])
end
local p = 0
if waiting then
  local round = 1
  local next = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
  if next[2] then round = math.max(1, math.floor(tonumber(next[2]) / 4294967296)) end
  p = math.min(math.max(tonumber(redis.call('GET', KEYS[2]) or '0') + 1, round), tonumber(ARGV[5]))
end
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('SET', KEYS[2], p, 'EX', ARGV[2])
return p
`;
