import { QueueEvents } from "bullmq";
import { createRedis } from "../src/queue/connection.js";
import { createLocalizeQueue } from "../src/queue/producer.js";
import { removeTestConfigDirs, type testConfig } from "../tests/helpers/config.js";
import { dropPrefix } from "../tests/helpers/redis.js";

/**
 * The producer's side of a bench round against a real worker: the queue and its events under
 * the round's prefix, and `end`, which closes them and removes what the round left (its keys,
 * and testConfig's dirs, which only vitest's afterAll removes otherwise).
 */
export function roundProducer(config: ReturnType<typeof testConfig>) {
  const redis = createRedis(config.REDIS_URL, "producer");
  const queue = createLocalizeQueue(redis, { prefix: config.QUEUE_PREFIX, retentionS: 3600 });
  const events = new QueueEvents("localize", { connection: createRedis(config.REDIS_URL, "worker"), prefix: config.QUEUE_PREFIX });
  const end = async () => {
    removeTestConfigDirs();
    await events.close();
    await queue.close();
    redis.disconnect();
    await dropPrefix(config.QUEUE_PREFIX);
  };
  return { redis, queue, events, end };
}
