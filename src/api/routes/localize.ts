import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { ApiError } from "../errors.js";
import {
  batchBodySchema,
  batchResponseSchema,
  commonErrors,
  errorResponse,
  finishedJobExample,
  queuedJobExample,
  idempotencyHeadersSchema,
  jobSchema,
  localizeBodySchema,
  localizeExample,
  waitQuerySchema,
} from "../schemas.js";
import { waitForEnd } from "../waitFor.js";
import { hasEnded } from "../../store/jobStore.js";
import type { AppContext } from "../context.js";
import { untilEitherFor } from "../shutdown.js";

const errors = {
  400: commonErrors.invalidJson,
  401: commonErrors.unauthorized,
  409: commonErrors.idempotencyConflict,
  413: commonErrors.bodyTooLarge,
  415: commonErrors.unsupportedMedia,
  422: errorResponse("A field is invalid; `field` names it (e.g. repo.url, repo.commit, repo.patch, options.max_turns).", "invalid_repository", "repository URL host 10.0.0.7 points at a private, loopback, link-local or reserved address", "repo.url"),
  429: commonErrors.submitLimited,
  500: commonErrors.internal,
  503: commonErrors.unavailable,
};

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
        onRequest: ctx.authenticate,
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
          response: {
            200: jobSchema.describe("The job has already ended: a result-cache hit, a replayed Idempotency-Key, or `wait` was long enough.").meta({ examples: [finishedJobExample] }),
            202: jobSchema.describe("The job was queued; poll GET /v1/jobs/{id} (with ?wait=) or stream /v1/jobs/{id}/events.").meta({ examples: [queuedJobExample] }),
            ...errors,
          },
        },
      },
      async (request, reply) => {
        let view = await submitter.accept(request.body, request.owner, request.headers["idempotency-key"]);
        const wait = Math.min(request.query.wait ?? 0, config.WAIT_MAX_S);
        if (wait > 0) view = await untilEitherFor(request.gone, ctx.shutdown.handOff, (signal) => waitForEnd(store, view, wait, signal));
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
      onRequest: ctx.authenticate,
      // Counted before the schema reads every request of it: 194,159 of them cost 130-400 ms of
      // the event loop each time, and were never charged to the rate limit.
      preValidation: async (request) => {
        const jobs = (request.body as { jobs?: unknown } | null)?.jobs;
        if (Array.isArray(jobs) && jobs.length > config.BATCH_MAX) throw new ApiError(422, "batch_too_large", `a batch holds at most ${config.BATCH_MAX} jobs`, "jobs");
      },
      schema: {
        operationId: "localizeBatch",
        summary: "Queue many localization jobs at once",
        description: `All requests are validated before any is queued; the first invalid one is named by its index. At most BATCH_MAX (${config.BATCH_MAX}) jobs.`,
        tags: ["localize"],
        security: [{ bearerAuth: [] }],
        body: batchBodySchema,
        response: {
          202: batchResponseSchema.describe("Every job was accepted, in the order given.").meta({ examples: [{ jobs: [queuedJobExample] }] }),
          ...errors,
          422: errorResponse("A request of the batch is invalid; `field` names it by index. No job was queued.", "invalid_commit", "commit must be a 40-hex sha or a branch/tag name", "jobs.3.repo.commit"),
        },
      },
    },
    async (request, reply) => {
      const { jobs } = request.body;
      // Counted whole before any job is prepared (each may resolve a host), and given back but
      // one when a job of it is refused (422, nothing queued): such a batch spent the key's minute.
      await limits.takeRequest(request.owner, jobs.length);
      const prepared = [];
      try {
        for (const [i, body] of jobs.entries()) prepared.push(await submitter.prepare(body, request.owner, `jobs.${i}.`));
      } catch (err) {
        await limits.refundRequest(request.owner, jobs.length - 1).catch(() => undefined);
        throw err;
      }
      const ids = prepared.map((p) => p.payload.jobId);
      await limits.reserve(request.owner, ids, config.JOB_TTL_S);
      const views = [];
      try {
        for (const p of prepared) views.push((await submitter.submit(p)).view);
      } catch (err) {
        // The jobs queued before the failure stay counted; the others never were.
        await limits.release(request.owner, ids.slice(views.length));
        throw err;
      }
      return reply.code(202).send({ jobs: views });
    },
  );
};
