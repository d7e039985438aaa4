import type { Redis } from "ioredis";
import type { Keys } from "../store/keys.js";
import type { JobStore } from "../store/jobStore.js";
import { ApiError } from "./errors.js";
import { isRedisFull } from "../queue/connection.js";

/**
 * Per-key limits, shared by every API replica through Redis: submissions per minute and
 * reads per minute (each a fixed window), and jobs open at once. All answer 429 with
 * Retry-After. Reads have their own budget because a client that follows its jobs closely
 * (polls, event streams) must not spend the budget it needs to submit.
 */
export interface LimitSettings {
  /** Jobs submitted (a batch counts each job) and uploads, per minute. */
  submitPerMinute: number;
  /** Reads of jobs and uploads (status, wait, events, trajectory, cancel), per minute. */
  pollPerMinute: number;
  maxOpen: number;
}

export class Limits {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly store: JobStore,
    private readonly settings: LimitSettings,
  ) {}

  /**
   * Counts `cost` submissions (jobs or uploads) against the key's budget; what is given back of
   * them (a request refused, jobs of a batch already queued by its first sending) goes back to
   * the minute they were counted in, never below nothing, whenever it is given.
   */
  async takeRequest(owner: string, cost = 1): Promise<Charge> {
    const key = await this.take("submit", owner, cost, this.settings.submitPerMinute, "submissions");
    let left = cost;
    return {
      refund: async (n = left) => {
        const back = Math.min(n, left);
        if (!key || back <= 0) return;
        left -= back;
        await this.redis.eval(REFUND, 1, key, back).catch(() => undefined);
      },
    };
  }

  /** Counts a request body's bytes against the key's budget of them (bodyCharge.ts); 0 bytes: refused only when it is spent. */
  async takeBodyBytes(owner: string, bytes: number, perMinute: number): Promise<void> {
    await this.take("body", owner, bytes, perMinute, "bytes of request bodies");
  }

  /** Counts bytes already read (a body sent without a length) against that budget, past it or not. */
  async addBodyBytes(owner: string, bytes: number): Promise<void> {
    if (bytes > 0) await this.take("body", owner, bytes, Infinity, "bytes of request bodies");
  }

  async takePoll(owner: string): Promise<void> {
    // A Redis full to its maxmemory refuses the count's write: reads go on uncounted, so a
    // client still gets the answers of the jobs it was given (submissions are refused, 503).
    await this.take("poll", owner, 1, this.settings.pollPerMinute, "reads").catch((err: Error) => {
      if (!isRedisFull(err)) throw err;
    });
  }

  /** The window's key the cost was counted under (null when the limit is off). */
  private async take(kind: string, owner: string, cost: number, perMinute: number, what: string): Promise<string | null> {
    if (perMinute <= 0) return null;
    const now = Date.now();
    const window = Math.floor(now / 60_000);
    const key = this.keys.rate(`${kind}:${owner}`, window);
    const [[, count]] = (await this.redis.multi().incrby(key, cost).expire(key, 120).exec()) as [[null, number], unknown];
    if (count > perMinute) {
      // Refused here, before any work: it spends nothing, or a batch too large for what is left of
      // the minute would use it up, and the key's next requests with it.
      await this.redis.decrby(key, cost).catch(() => undefined);
      const retry = Math.max(1, Math.ceil(((window + 1) * 60_000 - now) / 1000));
      // The wait in the words too: an agent shown only the message asks again at once otherwise.
      throw new ApiError(429, "rate_limited", `more than ${perMinute} ${what} a minute for this API key: retry in ${retry} s`, undefined, { "retry-after": String(retry) });
    }
    return key;
  }

  /**
   * Counts `ids` among `owner`'s open jobs, or throws when that would make more than maxOpen
   * queued or running. The check and the adding are one step in Redis: concurrent requests
   * (a batch, an agent's parallel calls, several replicas) cannot all pass a check made before
   * any of them added its job. Jobs that ended are pruned only when the set looks full, so an
   * ordinary request costs one script; an id with no job yet is one being accepted, unless it
   * was reserved long ago. `release` takes back ids whose job was not queued.
   */
  async reserve(owner: string, ids: string[], ttlS: number): Promise<void> {
    const maxOpen = this.settings.maxOpen;
    if (maxOpen <= 0 || ids.length === 0) return;
    const key = this.keys.ownerOpenJobs(owner);
    if (await this.tryReserve(key, ids, maxOpen, ttlS)) return;
    const members = await this.redis.zrange(key, 0, -1, "WITHSCORES");
    let open = 0;
    for (let i = 0; i < members.length; i += 2) {
      const [id, at] = [members[i]!, Number(members[i + 1])];
      const view = await this.store.get(id);
      if (view ? view.status === "queued" || view.status === "running" : at > Date.now() - ACCEPTING_MS) open++;
      else await this.redis.zrem(key, id);
    }
    if (await this.tryReserve(key, ids, maxOpen, ttlS)) return;
    throw new ApiError(429, "too_many_open_jobs", `this API key has ${open} jobs queued or running; the limit is ${maxOpen}`, undefined, { "retry-after": "5" });
  }

  async release(owner: string, ids: string[]): Promise<void> {
    if (this.settings.maxOpen <= 0 || ids.length === 0) return;
    await this.redis.zrem(this.keys.ownerOpenJobs(owner), ...ids);
  }

  private async tryReserve(key: string, ids: string[], maxOpen: number, ttlS: number): Promise<boolean> {
    return (await this.redis.eval(RESERVE, 1, key, maxOpen, ttlS, Date.now(), ...ids)) === 1;
  }
}

/** Submissions counted by takeRequest, to give back (all that is left of them by default). */
export interface Charge {
  refund(n?: number): Promise<void>;
}

/** KEYS[1]: a minute's count; ARGV[1]: what to give back. Only to a count still there, and never below 0. */
const REFUND = `
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n <= 0 then return 0 end
return redis.call('DECRBY', KEYS[1], math.min(n, tonumber(ARGV[1])))
`;

/** How long a reserved id may go without a job before it counts as a request that never finished. */
const ACCEPTING_MS = 60_000;

/** KEYS[1]: the owner's open jobs; ARGV: the cap, the set's lifetime, now, then the ids to add. */
const RESERVE = `
if redis.call('ZCARD', KEYS[1]) + #ARGV - 3 > tonumber(ARGV[1]) then return 0 end
for i = 4, #ARGV do redis.call('ZADD', KEYS[1], ARGV[3], ARGV[i]) end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
`;
