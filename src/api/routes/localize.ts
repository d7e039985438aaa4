import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { ApiError } from "../errors.js";
import {
  batchBodySchema,
  batchResponseSchema,
  commonErrors,
  errorResponse,
  API_KEY,
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
  422: errorResponse("A field is invalid; `field` names it (e.g. repo.url, repo.commit, repo.patch, options.max_turns). Codes: validation_failed, invalid_repository, invalid_commit, invalid_patch, patch_too_large, issue_too_long, issue_is_a_reference, upload_not_found, tokens_disabled, webhooks_disabled, invalid_callback_url, model_disabled, idempotency_key_reused; a batch also batch_too_large.", "invalid_repository", "repository URL host 10.0.0.7 points at a private, loopback, link-local or reserved address", "repo.url"),
  429: commonErrors.submitLimited,
  500: commonErrors.internal,
  503: commonErrors.unavailable,
};

/** POST /v1/localize (and its alias POST /localize), and POST /v1/localize/batch. */
export const localizeRoutes: FastifyPluginAsyncZod<AppContext> = async (app, ctx) => {
  const { config, submitter, store } = ctx;

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
          security: API_KEY,
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
        // The line that ties the request to its job, for whoever holds only one of the two ids.
        request.log.info({ jobId: view.id, owner: request.owner, status: view.status, cached: view.cached ?? false }, "job accepted");
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
        // One the key's limits could never let through is refused as such, not as a 429 to retry for ever.
        const fits = Math.min(config.RATE_LIMIT_PER_MIN || Infinity, config.MAX_OPEN_JOBS_PER_KEY || Infinity);
        if (Array.isArray(jobs) && jobs.length > fits) {
          const which = fits === config.RATE_LIMIT_PER_MIN ? `${fits} submissions a minute` : `${fits} jobs queued or running at once`;
          throw new ApiError(422, "batch_too_large", `this API key may have at most ${which}: split the batch`, "jobs");
        }
      },
      schema: {
        operationId: "localizeBatch",
        summary: "Queue many localization jobs at once",
        description: `All requests are validated before any is queued; the first invalid one is named by its index. At most BATCH_MAX (${config.BATCH_MAX}) jobs, and no more than the key's limits let through (RATE_LIMIT_PER_MIN, MAX_OPEN_JOBS_PER_KEY); the whole body is one request's (4 × ISSUE_MAX_CHARS + 2 × PATCH_MAX_BYTES). A failure part-way (503) may leave the jobs before it queued: send an Idempotency-Key, and the same batch sent again follows those jobs and queues only the rest (each job is keyed by its place in the batch).`,
        tags: ["localize"],
        security: API_KEY,
        headers: idempotencyHeadersSchema,
        // The bound is documented for generated clients; preValidation refuses past it with its own code.
        body: batchBodySchema.extend({ jobs: batchBodySchema.shape.jobs.max(config.BATCH_MAX) }),
        response: {
          202: batchResponseSchema.describe("Every job was accepted, in the order given.").meta({ examples: [{ jobs: [queuedJobExample] }] }),
          ...errors,
          422: errorResponse("A request of the batch is invalid; `field` names it by index. No job was queued.", "invalid_commit", "commit must be a 40-hex sha or a name git resolves (a branch, a tag, HEAD): no spaces, control characters, \":?*[\\\" or \"..\", and no leading \"-\"", "jobs.3.repo.commit"),
        },
      },
    },
    async (request, reply) => {
      const jobs = await submitter.acceptBatch(request.body.jobs, request.owner, request.headers["idempotency-key"]);
      request.log.info({ jobIds: jobs.map((j) => j.id), owner: request.owner }, "batch accepted");
      return reply.code(202).send({ jobs });
    },
  );
};
