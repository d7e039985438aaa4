import type { Redis } from "ioredis";
import type { Keys } from "../store/keys.js";
import type { JobStore } from "../store/jobStore.js";
import { ApiError } from "./errors.js";

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

  /** Counts `cost` submissions (jobs or uploads) against the key's budget. */
  async takeRequest(owner: string, cost = 1): Promise<void> {
    await this.take("submit", owner, cost, this.settings.submitPerMinute, "submissions");
  }

  async takePoll(owner: string): Promise<void> {
    await this.take("poll", owner, 1, this.settings.pollPerMinute, "reads");
  }

  private async take(kind: string, owner: string, cost: number, perMinute: number, what: string): Promise<void> {
    if (perMinute <= 0) return;
    const now = Date.now();
    const window = Math.floor(now / 60_000);
    const key = this.keys.rate(`${kind}:${owner}`, window);
    const [[, count]] = (await this.redis.multi().incrby(key, cost).expire(key, 120).exec()) as [[null, number], unknown];
    if (count > perMinute) {
      const retry = Math.max(1, Math.ceil(((window + 1) * 60_000 - now) / 1000));
      throw new ApiError(429, "rate_limited", `more than ${perMinute} ${what} a minute for this API key`, undefined, { "retry-after": String(retry) });
    }
  }

  /** Throws when `owner` already has maxOpen jobs queued or running (jobs that ended are pruned). */
  async assertRoom(owner: string, adding: number): Promise<void> {
    const maxOpen = this.settings.maxOpen;
    if (maxOpen <= 0) return;
    const key = this.keys.ownerOpenJobs(owner);
    // The set also holds jobs that have ended since; it is pruned only when it looks full,
    // so an ordinary request costs one SCARD.
    if ((await this.redis.scard(key)) + adding <= maxOpen) return;
    const ids = await this.redis.smembers(key);
    let open = 0;
    for (const id of ids) {
      const view = await this.store.get(id);
      if (view && (view.status === "queued" || view.status === "running")) open++;
      else await this.redis.srem(key, id);
    }
    if (open + adding > maxOpen) {
      throw new ApiError(429, "too_many_open_jobs", `this API key has ${open} jobs queued or running; the limit is ${maxOpen}`, undefined, { "retry-after": "5" });
    }
  }

  async opened(owner: string, ids: string[], ttlS: number): Promise<void> {
    if (this.settings.maxOpen <= 0 || ids.length === 0) return;
    const key = this.keys.ownerOpenJobs(owner);
    await this.redis.multi().sadd(key, ...ids).expire(key, ttlS).exec();
  }
}
