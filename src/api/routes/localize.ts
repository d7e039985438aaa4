import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { ApiError, errorBodySchema } from "../errors.js";
import {
  batchBodySchema,
  batchResponseSchema,
  idempotencyHeadersSchema,
  jobSchema,
  localizeBodySchema,
  localizeExample,
  waitQuerySchema,
} from "../schemas.js";
import { hasEnded, waitForEnd } from "../waitFor.js";
import type { AppContext } from "../context.js";

const errors = { 400: errorBodySchema, 401: errorBodySchema, 409: errorBodySchema, 422: errorBodySchema, 429: errorBodySchema, 500: errorBodySchema };

/** POST /v1/localize (and its alias POST /localize), and POST /v1/localize/batch. */
export const localizeRoutes: FastifyPluginAsyncZod<AppContext> = async (app, ctx) => {
  const { config, submitter, limits, store } = ctx;

  for (const [url, operationId, summary] of [
    ["/v1/localize", "localize", "Queue a localization job"],
    ["/localize", "localizeUnversioned", "Queue a localization job (the same operation as POST /v1/localize)"],
  ] as const) {
    app.post(
      url,
      {
        preHandler: ctx.authenticate,
        schema: {
          operationId,
          summary,
          description:
            "Answers 202 with the queued job, or 200 with a job that has already ended (a result-cache hit, a replayed Idempotency-Key, or `wait` long enough).",
          tags: ["localize"],
          security: [{ bearerAuth: [] }],
          headers: idempotencyHeadersSchema,
          querystring: waitQuerySchema,
          body: localizeBodySchema.meta({ examples: [localizeExample] }),
          response: { 200: jobSchema, 202: jobSchema.describe("The job was queued; poll GET /v1/jobs/{id} or stream /events."), ...errors },
        },
      },
      async (request, reply) => {
        let view = await submitter.accept(request.body, request.owner, request.headers["idempotency-key"]);
        const wait = Math.min(request.query.wait ?? 0, config.WAIT_MAX_S);
        if (wait > 0) view = await waitForEnd(store, view, wait, abortedWith(request.raw));
        return reply
          .code(hasEnded(view) ? 200 : 202)
          .header("location", `/v1/jobs/${view.id}`)
          .send(view);
      },
    );
  }

  app.post(
    "/v1/localize/batch",
    {
      preHandler: ctx.authenticate,
      schema: {
        operationId: "localizeBatch",
        summary: "Queue many localization jobs at once",
        description: `All requests are validated before any is queued; the first invalid one is named by its index. At most BATCH_MAX (${config.BATCH_MAX}) jobs.`,
        tags: ["localize"],
        security: [{ bearerAuth: [] }],
        body: batchBodySchema,
        response: { 202: batchResponseSchema, ...errors },
      },
    },
    async (request, reply) => {
      const { jobs } = request.body;
      if (jobs.length > config.BATCH_MAX) throw new ApiError(422, "batch_too_large", `a batch holds at most ${config.BATCH_MAX} jobs`, "jobs");
      await limits.takeRequest(request.owner, jobs.length);
      const prepared = [];
      for (const [i, body] of jobs.entries()) prepared.push(await submitter.prepare(body, request.owner, `jobs.${i}.`));
      await limits.assertRoom(request.owner, prepared.length);
      const views = [];
      for (const p of prepared) views.push((await submitter.submit(p)).view);
      await limits.opened(request.owner, views.map((v) => v.id), config.JOB_TTL_S);
      return reply.code(202).send({ jobs: views });
    },
  );
};

/** An AbortSignal that fires when the client goes away, so waits end with it. */
export function abortedWith(raw: import("node:http").IncomingMessage): AbortSignal {
  const ctrl = new AbortController();
  raw.socket?.once("close", () => ctrl.abort());
  return ctrl.signal;
}
