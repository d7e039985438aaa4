import { Queue, type JobsOptions } from "bullmq";
import type { Redis } from "ioredis";
import { QUEUES, type LocalizePayload, type LocalizeResult, type WebhookPayload } from "./contract.js";

export type LocalizeQueue = Queue<LocalizePayload, LocalizeResult, "localize">;

export interface QueueSettings {
  prefix: string;
  /** Seconds a finished job (and its result) is kept. */
  retentionS: number;
}

export function createLocalizeQueue(connection: Redis, settings: QueueSettings): LocalizeQueue {
  return new Queue<LocalizePayload, LocalizeResult, "localize">(QUEUES.localize, {
    connection,
    prefix: settings.prefix,
    defaultJobOptions: jobOptions(settings),
  });
}

export function jobOptions(settings: QueueSettings): JobsOptions {
  return {
    // A job is retried only when a worker died under it (stalled); a job that failed on its
    // own merits fails once, with its reason.
    attempts: 1,
    removeOnComplete: { age: settings.retentionS },
    removeOnFail: { age: settings.retentionS },
  };
}

/** `priority`: its owner's turn (store/turns.ts); 0, the default, is taken first. */
export async function enqueueLocalize(queue: LocalizeQueue, payload: LocalizePayload, priority = 0): Promise<void> {
  await queue.add("localize", payload, { jobId: payload.jobId, ...(priority > 0 ? { priority } : {}) });
}

export type WebhookQueue = Queue<WebhookPayload, { status: number }, "webhook">;

/** A webhook's first retry comes this long after its failed delivery; each later one waits twice the last. */
export const WEBHOOK_FIRST_RETRY_MS = 15_000;

export function createWebhookQueue(connection: Redis, settings: QueueSettings & { attempts: number }): WebhookQueue {
  return new Queue<WebhookPayload, { status: number }, "webhook">(QUEUES.webhook, {
    connection,
    prefix: settings.prefix,
    defaultJobOptions: {
      // Receivers go down, for a deploy's minute or more: delivery is retried with exponential
      // backoff from 15 s (15 s, 30 s, 1 min, 2 min, 4 min: the default 6 attempts span ~8 min;
      // from 1 s they spanned 31 s, less than a receiver's restart).
      attempts: settings.attempts,
      backoff: { type: "exponential", delay: WEBHOOK_FIRST_RETRY_MS },
      removeOnComplete: { age: settings.retentionS },
      removeOnFail: { age: settings.retentionS },
    },
  });
}
