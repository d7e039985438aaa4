/**
 * Runs `look` every `everyMs`, never two at once (a look held up by what it asks, a Redis or an
 * engine that is slow, is not stacked on); the timer keeps no process alive. Returns the stop.
 */
export function every(everyMs: number, look: () => Promise<void>): () => void {
  let looking = false;
  const timer = setInterval(() => {
    if (looking) return;
    looking = true;
    void look().finally(() => (looking = false));
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
