/** A seeded linear congruential generator: the same "random" strings on every run. */
export function seeded(seed: number): () => number {
  return () => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
}
