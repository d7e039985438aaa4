import fp from "fastify-plugin";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import type { FastifyInstance } from "fastify";
import type { Config } from "../config/env.js";
import { jsonSchemaTransform, serializerCompiler, validatorCompiler } from "fastify-type-provider-zod";
import { JobEvents } from "../store/events.js";
import { EventHub } from "../store/eventHub.js";
import { redisAtMaxMemory, withErrorListener } from "../queue/connection.js";
import { ResultCache } from "../store/resultCache.js";
import { UploadGrants } from "../store/uploadGrants.js";
import { authenticate, KeyRing } from "./auth.js";
import type { AppContext, AppDeps } from "./context.js";
import { errorHandler, notFoundHandler } from "./errors.js";
import { Limits } from "./limits.js";
import { chargeBodies } from "./bodyCharge.js";
import { healthRoutes } from "./routes/health.js";
import { jobRoutes } from "./routes/jobs.js";
import { localizeRoutes } from "./routes/localize.js";
import { uploadRoutes } from "./routes/uploads.js";
import { webhookSecretRoutes } from "./routes/webhookSecret.js";
import { Submitter } from "./submit.js";
import { jobEndedWebhook } from "./schemas.js";
import { API_VERSION } from "../version.js";
import { mcpRoutes } from "../mcp/http.js";
import { toolRoutes } from "../mcp/toolRoute.js";
import { WorkerPresence } from "../store/workers.js";
import { hostGuard } from "./hostGuard.js";
import { documentHeadOperations, documentMediaTypes } from "./mediaTypes.js";
import { documentResponseHeaders } from "./responseHeaders.js";
import { documentSharedRefusals } from "./sharedRefusals.js";
import { trackClients } from "./clientGone.js";
import { FollowerSlots } from "./followers.js";
import { ApiShutdown } from "./shutdown.js";


/**
 * The HTTP application as a plugin: it never listens (server.ts does), so tests build it
 * and talk to it with `inject`.
 */
async function app(fastify: FastifyInstance, deps: AppDeps) {
  const { config, store, redis } = deps;
  const events = new JobEvents(redis, config.QUEUE_PREFIX, config.JOB_TTL_S);
  // A connection of its own: it blocks. A duplicate does not carry the original's listeners. Its
  // reads (each blocking a quarter of a second) fail past 10 s, and the hub connects again.
  const eventHub = new EventHub(withErrorListener(redis.duplicate({ commandTimeout: 10_000 })), redis, config.QUEUE_PREFIX);
  fastify.addHook("onClose", async () => eventHub.close());
  const cache = new ResultCache(redis, config.QUEUE_PREFIX, config.RESULT_CACHE_TTL_S);
  const uploadGrants = new UploadGrants(redis, store.keys, config.UPLOAD_TTL_S, uploadShareBytes(config));
  const limits = new Limits(redis, store.keys, store, {
    submitPerMinute: config.RATE_LIMIT_PER_MIN,
    pollPerMinute: config.POLL_RATE_LIMIT_PER_MIN,
    maxOpen: config.MAX_OPEN_JOBS_PER_KEY,
  });
  const workers = new WorkerPresence(redis, store.keys);
  deps.metrics.watch({
    redisUp: () => redis.ping().then(() => true, () => false),
    redisFull: () => redisAtMaxMemory(redis),
    workersAlive: async () => (await workers.statuses()).length,
  });
  const shutdown = new ApiShutdown();
  shutdown.attach(fastify, config.API_SHUTDOWN_GRACE_S * 1000);
  const ctx: AppContext = {
    ...deps,
    events,
    eventHub,
    cache,
    uploadGrants,
    limits,
    submitter: new Submitter({ ...deps, cache, events, limits, uploadGrants }),
    workers,
    noWorker: { anyAlive: () => workers.anyAlive(), afterMs: config.NO_WORKER_WAIT_S * 1000 },
    followers: new FollowerSlots(config.MAX_FOLLOWERS, config.MAX_FOLLOWERS_PER_KEY),
    shutdown,
    authenticate: authenticate(config.AUTH_MODE, KeyRing.fromConfig(config)),
  };

  fastify.decorateRequest("owner", "");
  // With keys only: with AUTH_MODE=off every caller is one "anonymous" key, and there are no keys
  // to keep from each other.
  if (config.AUTH_MODE === "api_key") {
    const bodyLimit = fastify.initialConfig.bodyLimit ?? 1 << 20;
    // Never under one body of the largest size: a budget below it would refuse such a body for ever.
    const bodyBytesPerMinute = config.BODY_MB_PER_MIN > 0 ? Math.max(config.BODY_MB_PER_MIN * 2 ** 20, bodyLimit) : 0;
    chargeBodies(fastify, limits, { bytesPerMinute: bodyBytesPerMinute, atOnce: config.BODIES_AT_ONCE_PER_KEY, bodyLimit });
  }
  trackClients(fastify);
  fastify.setValidatorCompiler(validatorCompiler);
  fastify.setSerializerCompiler(serializerCompiler);
  fastify.setErrorHandler(errorHandler);
  fastify.setNotFoundHandler(notFoundHandler);
  // JSON only: a text/plain body is refused (415) instead of failing validation as a string.
  fastify.removeContentTypeParser("text/plain");
  fastify.addHook("onRequest", hostGuard(config));

  await fastify.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "codescout-service",
        description:
          "Code localization as a service: give a repository, a commit and an issue; get back the files, classes and functions that need changing.",
        version: API_VERSION,
      },
      tags: [
        { name: "localize", description: "Submit localization jobs" },
        { name: "jobs", description: "Follow, read and cancel jobs" },
        { name: "uploads", description: "Send a working tree that is not in a reachable repository" },
        { name: "operations", description: "Health, readiness and metrics" },
      ],
      components: {
        securitySchemes: {
          bearerAuth: { type: "http", scheme: "bearer", description: "An API key (when AUTH_MODE=api_key)." },
          apiKeyHeader: { type: "apiKey", in: "header", name: "X-API-Key", description: "The same API key, for clients that cannot send Authorization." },
        },
      },
      webhooks: jobEndedWebhook,
    },
    transform: jsonSchemaTransform,
    transformObject: (input) => documentHeadOperations(documentSharedRefusals(documentMediaTypes(documentResponseHeaders(input)))),
  });
  await fastify.register(swaggerUi, { routePrefix: "/docs" });
  fastify.get("/openapi.json", { schema: { hide: true } }, async () => fastify.swagger());

  await fastify.register(healthRoutes, ctx);
  await fastify.register(localizeRoutes, ctx);
  await fastify.register(jobRoutes, ctx);
  await fastify.register(uploadRoutes, ctx);
  await fastify.register(webhookSecretRoutes, ctx);
  await fastify.register(toolRoutes, ctx);
  await fastify.register(mcpRoutes(ctx, { idleMs: config.MCP_SESSION_IDLE_S * 1000, maxSessions: config.MCP_MAX_SESSIONS, unreadMs: config.MCP_UNREAD_ANSWER_S * 1000 }));
}

export default fp(app, { name: "codescout-api", fastify: "5.x" });

/** Each API key's share of the upload store; with AUTH_MODE=off there are no keys to keep apart, and everyone's uploads are one "anonymous" key's. */
function uploadShareBytes(config: Config): number {
  return config.AUTH_MODE === "api_key" ? config.UPLOAD_KEY_MAX_MB * 2 ** 20 : 0;
}
