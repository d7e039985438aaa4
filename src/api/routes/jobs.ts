import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import type { JobView } from "../../store/jobStore.js";
import { mayRead } from "../auth.js";
import { cancelJob } from "../cancel.js";
import { ApiError } from "../errors.js";
import { API_KEY, baselineJobExample, cancelledJobExample, commonErrors, errorResponse, finishedJobExample, jobParamsSchema, jobSchema, trajectoryExample, waitQuerySchema } from "../schemas.js";
import { waitForEnd } from "../waitFor.js";
import { followJob } from "../follow.js";
import type { AppContext } from "../context.js";
import { untilEitherFor } from "../shutdown.js";

const errors = { 401: commonErrors.unauthorized, 404: commonErrors.jobNotFound, 422: commonErrors.invalidParams, 429: commonErrors.readLimited, 503: commonErrors.unavailable };

/** A Redis stream id as the event stream sends it (`<ms>-<seq>`; Redis refuses longer parts). */
const STREAM_ID_RE = /^\d{1,20}(-\d{1,20})?$/;
/** The largest part of a Redis stream id (`<ms>-<seq>`, each 64 bits unsigned). */
const MAX_STREAM_ID_PART = 2n ** 64n - 1n;

/** Reading, following and cancelling jobs. */
export const jobRoutes: FastifyPluginAsyncZod<AppContext> = async (app, ctx) => {
  const { store, events, config } = ctx;

  // Every read counts against the key's read budget; another key's job answers exactly as
  // a job that does not exist, so ids cannot be probed.
  const load = async (id: string, owner: string, read = true): Promise<JobView> => {
    await ctx.limits.takePoll(owner);
    const view = await store.get(id);
    if (!view || !mayRead(owner, view.owner, read ? config.API_OPERATORS : [])) throw new ApiError(404, "job_not_found", `no job ${id}`, "id");
    return view;
  };

  app.get(
    "/v1/jobs/:id",
    {
      onRequest: ctx.authenticate,
      schema: {
        operationId: "getJob",
        summary: "A job's status, progress and result",
        tags: ["jobs"],
        security: API_KEY,
        params: jobParamsSchema,
        querystring: waitQuerySchema,
        response: {
          200: jobSchema.describe("The job: status, progress (phase, turn), and once it has ended its result or error.").meta({ examples: [finishedJobExample, baselineJobExample] }),
          ...errors,
        },
      },
    },
    async (request) => {
      const view = await load(request.params.id, request.owner);
      const wait = Math.min(request.query.wait ?? 0, config.WAIT_MAX_S);
      if (wait <= 0) return view;
      return untilEitherFor(request.gone, ctx.shutdown.handOff, (signal) => waitForEnd(store, view, wait, signal));
    },
  );

  app.delete(
    "/v1/jobs/:id",
    {
      onRequest: ctx.authenticate,
      schema: {
        operationId: "cancelJob",
        summary: "Cancel a queued or running job",
        description: "A queued job ends `cancelled` at once; a running one has its model request aborted and its sandbox removed, then ends `cancelled`. 409 when the job has already ended.",
        tags: ["jobs"],
        security: API_KEY,
        params: jobParamsSchema,
        response: {
          202: jobSchema.describe("Cancelled (a running job ends within moments; this is its record then).").meta({ examples: [cancelledJobExample] }),
          409: errorResponse("The job had already ended.", "job_ended", "the job has already ended", "id"),
          ...errors,
        },
      },
    },
    async (request, reply) => {
      await load(request.params.id, request.owner, false);
      const outcome = await cancelJob(store, events, request.params.id);
      if (outcome === "missing") throw new ApiError(404, "job_not_found", `no job ${request.params.id}`, "id");
      if (outcome === "finished") throw new ApiError(409, "job_ended", "the job has already ended", "id");
      // A running job ends within moments; give it a short while so the answer is final.
      const view = await waitForEnd(store, (await store.get(request.params.id))!, outcome === "signalled" ? 5 : 0, request.gone);
      return reply.code(202).send(view);
    },
  );

  app.get(
    "/v1/jobs/:id/trajectory",
    {
      onRequest: ctx.authenticate,
      schema: {
        operationId: "getTrajectory",
        summary: "Every message, tool call, observation, timing and token count of a finished job",
        tags: ["jobs"],
        security: API_KEY,
        params: jobParamsSchema,
        response: {
          200: z
            .object({ id: z.string(), trajectory: z.unknown() })
            .describe("Every model request and response, tool call and observation, with timings and token counts.")
            .meta({ examples: [trajectoryExample] }),
          ...errors,
          404: errorResponse(
            "No trajectory: the job is unknown, not finished, failed before its policy took a step, answered from the cache, or expired. A failed job's holds the steps taken until it failed (`failure` names its code).",
            "trajectory_not_found",
            "the job has no trajectory (not finished, failed before its policy took a step, answered from the cache, or expired)",
            "id",
          ),
        },
      },
    },
    async (request) => {
      await load(request.params.id, request.owner);
      const trajectory = await store.getTrajectory(request.params.id);
      if (trajectory === null) throw new ApiError(404, "trajectory_not_found", "the job has no trajectory (not finished, failed before its policy took a step, answered from the cache, or expired)", "id");
      return { id: request.params.id, trajectory };
    },
  );

  app.get(
    "/v1/jobs/:id/events",
    {
      // A HEAD of a stream has nothing to answer: the one Fastify adds took a follower's place
      // and never sent its headers.
      exposeHeadRoute: false,
      onRequest: ctx.authenticate,
      schema: {
        operationId: "streamJobEvents",
        summary: "Progress as Server-Sent Events",
        description:
          "text/event-stream of queued, started, repository_ready, sandbox_ready, turn, command (fallback when the model server failed and the baseline answers), then finished, failed or cancelled; no_worker when no worker takes the job or the one running it stopped. Late subscribers get the events that already happened; Last-Event-ID resumes. The stream ends after the final event. Each event's data is `{type, at, data}`, its `data` by type: queued `{job}`, started `{attempt, policy}`, repository_ready `{sha, cache, ms}`, sandbox_ready `{ms}`, turn `{turn, max_turns}`, command `{turn, command}`, fallback `{from, reason}`, finished `{cached?}`, failed `{code, message}`, cancelled `{while?}`, no_worker `{seconds, message, status}` (the job's status then: a job no worker took is cancelled; a running one whose worker stopped goes on), and, when the stream ends on the job's record alone, `{status}`.",
        tags: ["jobs"],
        security: API_KEY,
        params: jobParamsSchema,
        headers: z.object({
          "last-event-id": z
            .string()
            .regex(STREAM_ID_RE, "must be an event's id as the stream sent it (`1764000902250-0`)")
            // Redis refuses parts past 64 bits, and the stream would end at once, empty: an EventSource reconnects for ever.
            .refine((v) => !STREAM_ID_RE.test(v) || v.split("-").every((part) => BigInt(part) <= MAX_STREAM_ID_PART), "must be an event's id as the stream sent it (`1764000902250-0`)")
            .optional()
            .describe("The id of the last event received: the stream resumes after it."),
        }),
        response: {
          200: z
            .string()
            .describe("text/event-stream: one event per step, ending with finished, failed or cancelled.")
            .meta({ examples: [`id: 0-0\nevent: queued\ndata: {"type":"queued","at":"${"2026-11-24T10:15:02.114Z"}","data":{"job":"3f6c2a9e-8d41-4b7a-9c25-61e0d7b4f8a2"}}\n\nid: 1764000902250-0\nevent: turn\ndata: {"type":"turn","at":"2026-11-24T10:15:02.250Z","data":{"turn":1,"max_turns":10}}\n\n`] }),
          ...errors,
          503: errorResponse("This key, or this API process, follows as many jobs at once as it may (MAX_FOLLOWERS_PER_KEY, MAX_FOLLOWERS), or the job store (Redis) is unreachable (unavailable); retry after Retry-After.", "too_many_streams", "this API key follows 200 jobs at once (event streams and held calls); the limit is 200"),
        },
      },
    },
    async (request, reply) => {
      const id = request.params.id;
      const view = await load(id, request.owner);
      const release = ctx.followers.take(request.owner);
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", connection: "keep-alive", "x-accel-buffering": "no" });
      // Now, not with the first event: a resumed stream has none to send until the job moves.
      res.flushHeaders();
      const from = request.headers["last-event-id"] ?? "0";
      try {
        if (from === "0") {
          const queued = { type: "queued", at: view.created_at, data: { job: id } };
          res.write(`id: 0-0\nevent: queued\ndata: ${JSON.stringify(queued)}\n\n`);
        }
        // A stopping API ends its streams at once: the client resumes elsewhere (Last-Event-ID).
        await untilEitherFor(request.gone, ctx.shutdown.closing, async (ended) => {
          for await (const stored of followJob(ctx.eventHub, store, id, from, ended, ctx.noWorker)) {
            if (stored === null) res.write(": keep-alive\n\n");
            else res.write(`id: ${stored.id}\nevent: ${stored.event.type}\ndata: ${JSON.stringify(stored.event)}\n\n`);
          }
        });
      } catch (err) {
        request.log.warn({ err }, "event stream ended with an error");
      } finally {
        release();
        res.end();
      }
    },
  );
};
