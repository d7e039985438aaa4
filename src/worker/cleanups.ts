/**
 * A job's cleanup (removing its sandbox, then releasing its tree) runs after the job's result
 * is stored, not before: the engine takes ~0.1-0.2 s to remove a container, and a caller
 * waiting on the result should not wait for that. The number of cleanups in flight is
 * bounded, so an engine slow to remove containers slows the jobs down instead of letting
 * containers pile up; `settle` lets a stopping worker finish every cleanup before it exits.
 */
export class Cleanups {
  private readonly pending = new Set<Promise<void>>();

  constructor(
    /** Cleanups left running in the background at once; beyond this the job waits for its own. */
    private readonly max: number,
    private readonly onError: (err: unknown) => void,
  ) {}

  /** Starts `cleanup`; resolves at once while fewer than `max` run, else when it is done. */
  async run(cleanup: () => Promise<void>): Promise<void> {
    const done = cleanup().catch((err: unknown) => void this.onError(err));
    if (this.pending.size >= this.max) return done;
    const tracked = done.finally(() => this.pending.delete(tracked));
    this.pending.add(tracked);
  }

  /** How many cleanups are running in the background. */
  get size(): number {
    return this.pending.size;
  }

  /** Resolves when every background cleanup has finished. */
  async settle(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }
}
