/**
 * Why a worker takes no job, each held apart (its Redis full, its Docker engine unusable): it
 * takes jobs again once none holds, not as soon as the first that ends says so.
 */
export class Pauses {
  private readonly held = new Set<string>();

  constructor(private readonly worker: { pause(doNotWaitActive?: boolean): Promise<void>; resume(): void }) {}

  /** The pause and resume of one reason, as a watcher of that reason calls them. */
  for(reason: string): { pause(): Promise<void>; resume(): void } {
    return {
      pause: async () => {
        const first = this.held.size === 0;
        this.held.add(reason);
        // Jobs already running go on; only new ones are not taken.
        if (first) await this.worker.pause(true);
      },
      resume: () => {
        if (this.held.delete(reason) && this.held.size === 0) this.worker.resume();
      },
    };
  }
}
