import { randomUUID } from "node:crypto";
import { pino } from "pino";
import type { Redis } from "ioredis";
import { createRedis } from "../../src/queue/connection.js";
import { createLocalizeQueue, enqueueLocalize, type LocalizeQueue } from "../../src/queue/producer.js";
import { JobStore } from "../../src/store/jobStore.js";
import { startWorker } from "../../src/worker/build.js";
import type { Config } from "../../src/config/env.js";
import { startFakeModel, type FakeModel, type RecordedRequest, type ScriptedReply } from "./fakeModel.js";
import { waitFor } from "./processes.js";

export interface ModelJob {
  jobId: string;
  model: FakeModel;
  redis: Redis;
  queue: LocalizeQueue;
  store: JobStore;
  lines: Array<Record<string, unknown>>;
}

/** A worker on a scripted model server, a job of its own queued on it, and what both said: handed to `check`, then all closed. */
export async function withModelJob(config: Config, repo: { url: string; commit: string }, script: ScriptedReply[] | ((req: RecordedRequest, i: number) => ScriptedReply), issue: string, check: (run: ModelJob) => Promise<void>): Promise<void> {
  const model = await startFakeModel();
  model.script(script);
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: "info" }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  const redis = createRedis(config.REDIS_URL, "producer");
  const queue = createLocalizeQueue(redis, { prefix: config.QUEUE_PREFIX, retentionS: 600 });
  const worker = await startWorker({ ...config, MODEL_BASE_URL: model.baseURL, MODEL_ALTERNATIVES: false, MODEL_FALLBACK: "none" as const }, { logger });
  try {
    const jobId = randomUUID();
    await enqueueLocalize(queue, { jobId, repo, issue, options: { policy: "codescout" }, owner: "alice", submittedAt: new Date().toISOString() });
    await waitFor(async () => (model.requests.length >= 1 ? true : undefined), 60_000, "the first run's model request");
    await check({ jobId, model, redis, queue, store: new JobStore(queue, redis, 600), lines });
  } finally {
    await worker.close();
    await queue.close();
    redis.disconnect();
    await model.close();
  }
}
