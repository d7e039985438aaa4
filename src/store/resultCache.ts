import type { Redis } from "ioredis";
import { localizeResultSchema, type LocalizeResult } from "../queue/contract.js";
import { keys } from "./keys.js";

const NO_TIME = { queue_wait_ms: 0, repo_ms: 0, sandbox_ms: 0, policy_ms: 0, model_ms: 0, tool_ms: 0, total_ms: 0 };
const NO_USE = { model_calls: 0, prompt_tokens: 0, completion_tokens: 0 };

/** Finished results by cache key (see queue/cacheKey.ts), kept for a configured TTL. */
export class ResultCache {
  private readonly k;

  constructor(
    private readonly redis: Redis,
    prefix: string,
    private readonly ttlS: number,
  ) {
    this.k = keys(prefix);
  }

  async get(key: string): Promise<LocalizeResult | null> {
    if (this.ttlS <= 0) return null;
    const raw = await this.redis.get(this.k.resultCache(key));
    if (raw === null) return null;
    const parsed = localizeResultSchema.safeParse(JSON.parse(raw));
    // The answer, not the run that made it: that job's time and model use (another key's, it may
    // be) are no part of this request's, which made no model call.
    return parsed.success ? { ...parsed.data, timings: NO_TIME, usage: NO_USE } : null;
  }

  async put(key: string, result: LocalizeResult): Promise<void> {
    if (this.ttlS <= 0) return;
    await this.redis.set(this.k.resultCache(key), JSON.stringify(result), "EX", this.ttlS);
  }
}
