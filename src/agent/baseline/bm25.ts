/** Okapi BM25 pieces over sparse term counts: the field scores of the baseline's ranking. */

export const K1 = 1.2;
export const B = 0.75;

/** Inverse document frequency, never negative (a key in every file scores ~0). */
export function idf(df: number, n: number): number {
  return Math.log(1 + (n - df + 0.5) / (df + 0.5));
}

/**
 * Σ over keys of weight · idf · saturated tf, with length normalization. `length` and
 * `avgLength` are in any unit (lines, tokens) as long as both agree.
 */
export function bm25(tf: Map<string, number>, weights: Map<string, number>, idfs: Map<string, number>, length: number, avgLength: number): number {
  let s = 0;
  const norm = 1 - B + B * (avgLength > 0 ? length / avgLength : 1);
  for (const [key, n] of tf) {
    const w = weights.get(key);
    if (!w || n <= 0) continue;
    s += w * (idfs.get(key) ?? 0) * ((n * (K1 + 1)) / (n + K1 * norm));
  }
  return s;
}
