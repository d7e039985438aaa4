import { hasEnded, type JobStore, type JobView } from "../store/jobStore.js";

/**
 * Holds a request until the job ends or the time is up. Polling the job record (not the
 * event stream) also catches endings no worker announced, such as a job failed as stalled.
 */
export async function waitForEnd(store: JobStore, view: JobView, seconds: number, signal: AbortSignal): Promise<JobView> {
  const deadline = Date.now() + seconds * 1000;
  let current = view;
  let delay = 50;
  while (!hasEnded(current) && Date.now() < deadline && !signal.aborted) {
    await new Promise((r) => setTimeout(r, Math.min(delay, Math.max(0, deadline - Date.now()))));
    delay = Math.min(delay * 2, 500);
    current = (await store.get(view.id)) ?? current;
  }
  return current;
}
