import type { JobEvents } from "../store/events.js";
import type { JobStore } from "../store/jobStore.js";

/**
 * Cancels a job for a client (REST DELETE, or an MCP client cancelling its tool call). A
 * queued job ends here, so its event stream is told here; a running one is signalled and
 * its worker announces the end.
 */
export async function cancelJob(store: JobStore, events: JobEvents, id: string, options?: Parameters<JobStore["cancel"]>[1]): ReturnType<JobStore["cancel"]> {
  const outcome = await store.cancel(id, options);
  if (outcome === "cancelled") await events.publish(id, "cancelled", { while: "queued", ...(options?.why ? { code: options.why.code } : {}) });
  return outcome;
}
