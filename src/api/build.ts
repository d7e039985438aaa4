import Fastify, { type FastifyInstance } from "fastify";
import type { Config } from "../config/env.js";
import { atMost, closeRedis, createRedis, evictionLine, evictionPolicy, redisAwayReporter, redisOptions, settleConnections, within } from "../queue/connection.js";
import { createLocalizeQueue, createWebhookQueue } from "../queue/producer.js";
import { JobStore } from "../store/jobStore.js";
import app from "./app.js";
import { clientErrorHandler, frameworkErrorHandler } from "./errors.js";
import { ServiceMetrics } from "./metrics.js";
import { QueueEvents } from "bullmq";
import { QUEUES } from "../queue/contract.js";
import { uploadStoreFromConfig } from "../uploads/fromConfig.js";
import { systemResolver, type Resolver } from "../queue/hostPolicy.js";
import { ERROR_SERIALIZERS } from "../queue/logSafe.js";

/** Secrets that must never reach a log line, whatever logs them. */
export const REDACT_PATHS = [
  "req.headers.authorization",
  'req.headers["x-api-key"]',
  "*.token",
  "*.apiKey",
  "*.api_key",
  "*.password",
];

export interface ApiServer {
  fastify: FastifyInstance;
  close(): Promise<void>;
}

/** Wires the third-party pieces (Redis, the queue) and registers the app plugin on them. */
export interface ApiOptions {
  logger?: boolean;
  /** Host name resolution for the URL policy; the system's unless a caller injects one. */
  resolver?: Resolver;
}

export async function buildApiServer(config: Config, options: ApiOptions = {}): Promise<ApiServer> {
  const redis = createRedis(config.REDIS_URL, "producer");
  const queue = createLocalizeQueue(redis, { prefix: config.QUEUE_PREFIX, retentionS: config.JOB_TTL_S });
  // Only a service with WEBHOOK_SECRET takes a callback_url; its workers deliver what is queued here.
  const webhooks = config.WEBHOOK_SECRET ? createWebhookQueue(redis, { prefix: config.QUEUE_PREFIX, retentionS: config.JOB_TTL_S, attempts: config.WEBHOOK_MAX_ATTEMPTS }) : undefined;
  const store = new JobStore(queue, redis, config.JOB_TTL_S, webhooks);
  const metrics = new ServiceMetrics(queue);
  const uploads = uploadStoreFromConfig(config, redis);
  const queueEvents = new QueueEvents(QUEUES.localize, { connection: redisOptions(config.REDIS_URL), prefix: config.QUEUE_PREFIX });
  metrics.follow(queueEvents);
  const fastify = Fastify({
    logger:
      options.logger === false
        ? false
        : {
            level: config.LOG_LEVEL,
            redact: { paths: REDACT_PATHS, censor: "[redacted]" },
            // The path without its query: a client may put a key or token there (?api_key=),
            // which the header redaction does not reach.
            serializers: {
              ...ERROR_SERIALIZERS,
              req: (req: { method: string; url: string; host?: string; ip?: string; socket?: { remotePort?: number } }) => ({
                method: req.method,
                url: req.url.split("?")[0],
                host: req.host,
                remoteAddress: req.ip,
                remotePort: req.socket?.remotePort,
              }),
            },
          },
    // JSON bodies: an issue and a patch, both escaped. Uploads stream past this limit (uploads.ts).
    bodyLimit: Math.max(1 << 20, config.ISSUE_MAX_CHARS * 4 + config.PATCH_MAX_BYTES * 2 + 65_536),
    genReqId: () => crypto.randomUUID(),
    // A request (headers and body) must arrive within 5 minutes (Node's own default, which
    // Fastify's 0 turned off: 1,000 bodies sent all but their last byte held 4.8 GB for ever),
    // or the time the largest upload takes at 2 Mbit/s. What is answered may take longer (a held
    // call, an event stream): this bounds the asking.
    requestTimeout: Math.max(300_000, Math.ceil(config.UPLOAD_MAX_ARCHIVE_BYTES / 262_144) * 1000),
    frameworkErrors: frameworkErrorHandler,
    clientErrorHandler,
  });
  // Why Redis cannot be reached (refused, a name gone, a TLS certificate not trusted): a
  // request's 503 says only that it cannot.
  redis.on("error", redisAwayReporter(config.REDIS_URL, (fields, line) => fastify.log.warn(fields, line)));
  // Not awaited: the API starts, and answers 503, while Redis is away.
  void within(evictionPolicy(redis), 5_000).then((policy) => {
    const evicting = policy && evictionLine(policy);
    if (evicting) fastify.log.error(evicting);
  });
  const close = async () => {
    await fastify.close();
    await settleConnections([queueEvents, queue, webhooks]);
    // Bounded: with Redis away, BullMQ's close waits for a connection that may never come,
    // and a SIGTERM would then leave the API running until it is killed.
    await atMost(queueEvents.close(), 2000);
    await atMost(queue.close(), 2000);
    if (webhooks) await atMost(webhooks.close(), 2000);
    await closeRedis(redis);
  };
  try {
    await fastify.register(app, { config, queue, store, redis, metrics, uploads, resolver: options.resolver ?? systemResolver });
    await fastify.ready();
  } catch (err) {
    // Refused at start (a key named "anonymous", say): what was opened is closed, or a caller
    // that goes on (the in-process MCP server, a test) keeps its Redis connections for ever.
    await close().catch(() => undefined);
    throw err;
  }
  return { fastify, close };
}
