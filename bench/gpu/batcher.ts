/**
 * A continuous-batching GPU, as vLLM runs one: a model of time, not of numbers. It decides
 * when each request's reply is ready; what the reply says is someone else's business.
 *
 * Each engine step decodes one token for every running sequence and prefills up to
 * `maxBatchedTokens` prompt tokens of sequences being admitted (chunked prefill). A step
 * costs a fixed part (weights read once per step, launch and sampling), a part per token of
 * context held by the running batch (the KV cache read by attention), and a part per
 * prefilled token (compute-bound). Prefix caching: a conversation's earlier prompt and reply
 * stay in the KV cache while it waits on its tools, so only the new suffix is prefilled,
 * unless the cache needed the room and evicted it (least recently used first). Requests
 * wait when `maxNumSeqs` sequences run or the KV cache cannot hold their context.
 *
 * The same class runs against the wall clock (bench/gpu/server.ts) and in virtual time
 * (`simulateIdeal`), so the ideal an actual run is compared with uses identical rules.
 */

export interface GpuParams {
  /** Fixed cost of one decode step, ms. */
  stepFixedMs: number;
  /** Cost per token of context held by the running batch, per step, ms. */
  kvReadMsPerToken: number;
  /** Cost per prefilled prompt token, ms. */
  prefillMsPerToken: number;
  /** Prompt tokens prefilled per step at most (vLLM's max_num_batched_tokens). */
  maxBatchedTokens: number;
  maxNumSeqs: number;
  /** KV cache capacity in tokens. */
  kvCapacityTokens: number;
  /** Tokens every conversation shares (system prompt and tools), cached once for all. */
  sharedPrefixTokens: number;
}

/**
 * CodeScout-4B (Qwen3-4B: 4.02 B parameters, 36 layers, 8 KV heads × 128, bf16) on one H100
 * SXM 80 GB. Derivation and sources in BENCHMARKS.md.
 */
export const H100_CODESCOUT_4B: GpuParams = {
  // 8.05 GB of weights read per step at 3.35 TB/s × 0.75 achieved = 3.2 ms, + ~1.8 ms of
  // scheduling, sampling and launch overhead per step.
  stepFixedMs: 5,
  // 147,456 B of KV per token (36 × 8 × 128 × 2 × 2 B) at 3.35 TB/s × 0.75 achieved.
  kvReadMsPerToken: 147_456 / (3.35e12 * 0.75) * 1000,
  // 2 × 4.02 GFLOP per token at 989 TFLOPS bf16 dense × 0.5 MFU.
  prefillMsPerToken: (2 * 4.02e9) / (989e12 * 0.5) * 1000,
  maxBatchedTokens: 8192,
  maxNumSeqs: 256,
  // 80 GB × 0.9 − 8.05 GB weights − ~4 GB activations and CUDA graphs ≈ 60 GB / 144 KiB.
  kvCapacityTokens: 400_000,
  sharedPrefixTokens: 1_500,
};

export interface GpuRequest {
  conversation: string;
  promptTokens: number;
  completionTokens: number;
  /** Called with the time (ms, the batcher's clock) the reply is complete. */
  done: (at: number) => void;
}

interface Seq {
  req: GpuRequest;
  /** Prompt tokens still to prefill. */
  toPrefill: number;
  generated: number;
  arrived: number;
}

export interface GpuStats {
  steps: number;
  busyMs: number;
  tokensGenerated: number;
  tokensPrefilled: number;
  tokensFromPrefixCache: number;
  maxRunning: number;
  maxWaiting: number;
  /** Sum over steps of running sequences, for the mean batch size. */
  runningSum: number;
  queueWaitMs: number[];
}

export class Batcher {
  readonly stats: GpuStats = { steps: 0, busyMs: 0, tokensGenerated: 0, tokensPrefilled: 0, tokensFromPrefixCache: 0, maxRunning: 0, maxWaiting: 0, runningSum: 0, queueWaitMs: [] };
  private waiting: Seq[] = [];
  private running: Seq[] = [];
  /** Idle conversations' cached context, least recently used first (Map keeps insertion order). */
  private cached = new Map<string, number>();
  private cachedTokens = 0;
  private runningTokens = 0;

  constructor(readonly params: GpuParams) {}

  get idle() {
    return this.waiting.length === 0 && this.running.length === 0;
  }

  submit(req: GpuRequest, now: number) {
    this.waiting.push({ req, toPrefill: 0, generated: 0, arrived: now });
    this.stats.maxWaiting = Math.max(this.stats.maxWaiting, this.waiting.length);
  }

  /** Admits what fits, then runs one step; returns its duration in ms (0 when idle). */
  step(now: number): number {
    const p = this.params;
    while (this.waiting.length && this.running.length < p.maxNumSeqs) {
      const seq = this.waiting[0]!;
      const need = seq.req.promptTokens + seq.req.completionTokens;
      const own = this.cached.get(seq.req.conversation);
      // The conversation's own cached prefix moves into the running batch.
      if (own !== undefined) {
        this.cached.delete(seq.req.conversation);
        this.cachedTokens -= own;
      }
      while (this.runningTokens + this.cachedTokens + need > p.kvCapacityTokens && this.cached.size) {
        const [conv, tokens] = this.cached.entries().next().value as [string, number];
        this.cached.delete(conv);
        this.cachedTokens -= tokens;
      }
      if (this.runningTokens + this.cachedTokens + need > p.kvCapacityTokens) {
        if (own !== undefined) {
          this.cached.set(seq.req.conversation, own);
          this.cachedTokens += own;
        }
        break;
      }
      this.waiting.shift();
      const hit = Math.min(seq.req.promptTokens, Math.max(own ?? 0, p.sharedPrefixTokens));
      seq.toPrefill = seq.req.promptTokens - hit;
      this.stats.tokensFromPrefixCache += hit;
      this.stats.queueWaitMs.push(now - seq.arrived);
      this.running.push(seq);
      this.runningTokens += need;
    }
    if (!this.running.length) return 0;

    let budget = p.maxBatchedTokens;
    let prefilled = 0;
    let context = 0;
    for (const seq of this.running) {
      if (seq.toPrefill > 0 && budget > 0) {
        const n = Math.min(seq.toPrefill, budget);
        seq.toPrefill -= n;
        budget -= n;
        prefilled += n;
      }
      context += seq.req.promptTokens - seq.toPrefill + seq.generated;
    }
    const duration = p.stepFixedMs + context * p.kvReadMsPerToken + prefilled * p.prefillMsPerToken;
    const end = now + duration;
    const still: Seq[] = [];
    for (const seq of this.running) {
      if (seq.toPrefill === 0) {
        seq.generated++;
        this.stats.tokensGenerated++;
      }
      if (seq.generated >= seq.req.completionTokens) {
        const tokens = seq.req.promptTokens + seq.req.completionTokens;
        this.runningTokens -= tokens;
        this.cached.set(seq.req.conversation, tokens);
        this.cachedTokens += tokens;
        seq.req.done(end);
      } else still.push(seq);
    }
    this.stats.steps++;
    this.stats.busyMs += duration;
    this.stats.tokensPrefilled += prefilled;
    this.stats.runningSum += this.running.length;
    this.stats.maxRunning = Math.max(this.stats.maxRunning, this.running.length);
    this.running = still;
    return duration;
  }

  /** A conversation that ended: its cache entry is only dead weight now. */
  forget(conversation: string) {
    const own = this.cached.get(conversation);
    if (own !== undefined) {
      this.cached.delete(conversation);
      this.cachedTokens -= own;
    }
  }
}

/** One episode as the GPU saw it: per turn, the prompt and completion sizes in tokens. */
export type EpisodeTrace = Array<{ promptTokens: number; completionTokens: number }>;

/**
 * The GPU's throughput with a scaffold that adds no time at all: `inFlight` episodes, each
 * sending its next turn the instant the previous reply is complete, replaying `traces`
 * (each once). Returns episodes per minute and the GPU's busy fraction.
 */
export function simulateIdeal(params: GpuParams, traces: EpisodeTrace[], inFlight: number) {
  const b = new Batcher(params);
  let now = 0;
  let next = 0;
  let finished = 0;
  const start = (i: number, turn: number) => {
    const t = traces[i]![turn]!;
    b.submit(
      {
        conversation: `e${i}`,
        ...t,
        done: (at) => {
          if (turn + 1 < traces[i]!.length) pending.push([at, () => start(i, turn + 1)]);
          else {
            finished++;
            b.forget(`e${i}`);
            // The index is taken now: several episodes may end in one step.
            if (next < traces.length) {
              const j = next++;
              pending.push([at, () => start(j, 0)]);
            }
          }
        },
      },
      now,
    );
  };
  const pending: Array<[number, () => void]> = [];
  while (next < Math.min(inFlight, traces.length)) start(next++, 0);
  while (finished < traces.length) {
    for (const [, go] of pending.splice(0)) go();
    const d = b.step(now);
    if (d === 0) throw new Error("simulateIdeal: nothing to run");
    now += d;
  }
  return { episodesPerMin: (traces.length / now) * 60_000, busyFraction: b.stats.busyMs / now, wallMs: now, meanBatch: b.stats.runningSum / b.stats.steps };
}
