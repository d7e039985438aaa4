import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import type { AppContext } from "../context.js";
import { redisAtMaxMemory, within } from "../../queue/connection.js";

/** How long each of /readyz's looks at Redis may take before it counts as no. */
const READY_LOOK_MS = 1_500;

const readySchema = z.object({
  status: z
    .enum(["ready", "degraded", "not_ready"])
    .describe("degraded: the model server is down and jobs are answered by the baseline meanwhile (MODEL_FALLBACK=baseline): they succeed. not_ready: jobs cannot be answered (`checks` says why)."),
  checks: z.object({
    redis: z.boolean(),
    redis_full: z.boolean().describe("Redis is at its maxmemory: new jobs are refused (503) until old ones expire (docs/deployment.md, Redis)."),
    workers: z.number().int().min(0).describe("Workers that sent a heartbeat in the last 30 s."),
    docker: z.boolean().describe("At least one live worker reaches its Docker engine (false also when no worker is alive to say: see `workers`, and `redis`)."),
    model: z
      .enum(["ok", "down", "refused", "none"])
      .describe(
        "none: no model server configured (baseline policy). refused: it answers but refuses this service's key (MODEL_API_KEY), or does not serve MODEL_NAME: jobs would fail, so the service is not ready.",
      ),
  }),
});

export const healthRoutes: FastifyPluginAsyncZod<AppContext> = async (app, ctx) => {
  app.get(
    "/healthz",
    {
      // Probed every few seconds by load balancers and Prometheus: their request lines would be most of the log.
      logLevel: "warn",
      schema: {
        operationId: "health",
        summary: "Liveness: the API process is up",
        tags: ["operations"],
        response: { 200: z.object({ status: z.literal("ok") }).describe("The process is up.").meta({ examples: [{ status: "ok" }] }) },
      },
    },
    async () => ({ status: "ok" as const }),
  );

  app.get(
    "/readyz",
    {
      logLevel: "warn",
      schema: {
        operationId: "ready",
        summary: "Readiness: Redis answers, and live workers reach their Docker engine and the model server",
        description:
          "Whether the service answers jobs. A load balancer in front of API replicas should probe /healthz instead: every replica shares one Redis and the workers, so /readyz's 503 (no worker, say) takes them all out at once, while the API would still queue jobs.",
        tags: ["operations"],
        response: {
          200: readySchema
            .describe("Ready: Redis answers and a live worker reaches Docker (and the model server, when one is configured; without it, degraded while the baseline answers).")
            .meta({
              examples: [
                { status: "ready", checks: { redis: true, redis_full: false, workers: 2, docker: true, model: "ok" } },
                { status: "degraded", checks: { redis: true, redis_full: false, workers: 2, docker: true, model: "down" } },
              ],
            }),
          503: readySchema.describe("Not ready; `checks` says what is missing.").meta({
            examples: [{ status: "not_ready", checks: { redis: true, redis_full: false, workers: 0, docker: false, model: "none" } }],
          }),
        },
      },
    },
    async (_request, reply) => {
      // Each look bounded: a Redis that hangs is not ready, said at once, not when it answers again.
      const redis = (await within(ctx.redis.ping().then(() => true), READY_LOOK_MS)) ?? false;
      const workers = redis ? ((await within(ctx.workers.statuses(), READY_LOOK_MS)) ?? []) : [];
      // Its workers' heartbeats are writes too: a full Redis would read as no worker alive.
      const full = redis ? ((await within(redisAtMaxMemory(ctx.redis), READY_LOOK_MS)) ?? false) : false;
      const docker = workers.some((w) => w.docker);
      const model = !ctx.config.MODEL_BASE_URL ? "none" : workers.some((w) => w.model === "ok") ? "ok" : workers.some((w) => w.model === "refused") ? "refused" : "down";
      // With the baseline answering for it, a model server that is down (a vLLM restart) degrades
      // the answers, not the service: jobs succeed (codescout_jobs_fallback_total counts them).
      // One that refuses the service fails them (its key, its model's name): a setting to mend.
      const answering = redis && !full && docker && model !== "refused" && (model !== "down" || ctx.config.MODEL_FALLBACK === "baseline");
      const status = !answering ? "not_ready" : model === "down" ? "degraded" : "ready";
      return reply.code(answering ? 200 : 503).send({ status, checks: { redis, redis_full: full, workers: workers.length, docker, model } });
    },
  );

  app.get(
    "/metrics",
    {
      logLevel: "warn",
      schema: {
        operationId: "metrics",
        summary: "Prometheus metrics",
        tags: ["operations"],
        response: {
          200: z
            .string()
            .describe("Prometheus text format: queue depth by state, phase durations, tokens, job outcomes.")
            .meta({ examples: ['# HELP codescout_queue_jobs Jobs in the localize queue by state\n# TYPE codescout_queue_jobs gauge\ncodescout_queue_jobs{state="waiting"} 3\ncodescout_queue_jobs{state="active"} 8\n'] }),
        },
      },
    },
    async (_request, reply) => {
      const body = await ctx.metrics.registry.metrics();
      // Plain text, not a JSON string.
      return reply.header("content-type", ctx.metrics.registry.contentType).serializer((payload) => payload as string).send(body);
    },
  );
};
