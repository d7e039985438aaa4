import { ApiError } from "./errors.js";

/**
 * How many jobs this API process follows at once (event streams, calls held for agents): each
 * holds a response, timers and a look at its job every few seconds. They once held a Redis
 * connection each (one client opened 600 streams in half a second, and at Redis's cap a worker
 * starting could not connect); they share one now (EventHub), and the cap bounds the rest.
 * Past either limit, 503 with Retry-After.
 */
export class FollowerSlots {
  private total = 0;
  private readonly byOwner = new Map<string, number>();

  constructor(
    private readonly max: number,
    private readonly perKey: number,
  ) {}

  /** A place for one follower of `owner`; call what it returns when the follower ends. */
  take(owner: string): () => void {
    const mine = this.byOwner.get(owner) ?? 0;
    if (mine >= this.perKey) throw new ApiError(503, "too_many_streams", `this API key follows ${mine} jobs at once (event streams and held calls); the limit is ${this.perKey}`, undefined, { "retry-after": "5" });
    if (this.total >= this.max) throw new ApiError(503, "too_many_streams", `this API process follows its maximum of ${this.max} jobs at once; retry shortly`, undefined, { "retry-after": "5" });
    this.total++;
    this.byOwner.set(owner, mine + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.total--;
      const left = (this.byOwner.get(owner) ?? 1) - 1;
      if (left > 0) this.byOwner.set(owner, left);
      else this.byOwner.delete(owner);
    };
  }
}
