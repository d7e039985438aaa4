import { FILE_FEATURES, FUNCTION_FEATURES, RERANK_FEATURES, type Candidate, type FileFeature, type FunctionFeature, type RerankFeature } from "./features.js";

/**
 * A linear score per candidate (weights fitted offline, see bench/baseline/train.ts) and
 * the rule for how many candidates to answer: the best one, and the next ones only while
 * their softmax probability stays within a ratio of the best (precision counts as much as
 * recall in F1).
 */

export interface Weights {
  file: Record<FileFeature, number>;
  fn: Record<FunctionFeature, number>;
  /** The second look at the outlined files (see rerank.ts). */
  rerank: Record<RerankFeature, number>;
  /** A further file is answered when its probability is at least this share of the best. */
  fileRatio: number;
  maxFiles: number;
  fnRatio: number;
  maxFunctionsPerFile: number;
}

export function score<F extends string>(features: Record<F, number>, weights: Record<F, number>): number {
  let s = 0;
  for (const k in weights) s += (weights[k] ?? 0) * (features[k] ?? 0);
  return s;
}

export interface Scored<C> {
  item: C;
  score: number;
  /** Softmax probability among the candidates. */
  p: number;
}

/** Scores, sorts (ties broken by `key`, so the order is deterministic) and adds probabilities. */
export function rank<F extends string, C extends Candidate<F>>(cands: C[], weights: Record<F, number>, key: (c: C) => string): Scored<C>[] {
  const scored = cands.map((item) => ({ item, score: score(item.features, weights), p: 0 }));
  scored.sort((a, b) => b.score - a.score || (key(a.item) < key(b.item) ? -1 : key(a.item) > key(b.item) ? 1 : 0));
  const top = scored[0]?.score ?? 0;
  const z = scored.reduce((s, x) => s + Math.exp(x.score - top), 0);
  for (const x of scored) x.p = Math.exp(x.score - top) / z;
  return scored;
}

/** The best candidate, and the next ones while their probability is ≥ ratio × the best's. */
export function choose<C>(ranked: Scored<C>[], ratio: number, max: number): Scored<C>[] {
  const top = ranked[0];
  if (!top) return [];
  return ranked.slice(0, max).filter((x, i) => i === 0 || x.p >= ratio * top.p);
}

export function zeroWeights(): Pick<Weights, "file" | "fn" | "rerank"> {
  return {
    file: Object.fromEntries(FILE_FEATURES.map((f) => [f, 0])) as Record<FileFeature, number>,
    fn: Object.fromEntries(FUNCTION_FEATURES.map((f) => [f, 0])) as Record<FunctionFeature, number>,
    rerank: Object.fromEntries(RERANK_FEATURES.map((f) => [f, 0])) as Record<RerankFeature, number>,
  };
}
