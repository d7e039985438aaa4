import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import type { AppContext } from "../api/context.js";
import { API_KEY, commonErrors, errorResponse, finishedJobExample, idempotencyHeadersSchema, localizeExample } from "../api/schemas.js";
import type { JobView } from "../store/jobStore.js";
import { followToEnd, submitToolCall } from "./inProcess.js";
import { answer, localizeOutputSchema, toolArgumentsSchema, type LocalizeToolInput } from "./tool.js";

/**
 * The `localize` tool for agent frameworks that call functions but speak no MCP: the arguments
 * the model gave (docs/openai-tool.json's schema) are the body, and the answer is the text the
 * MCP tool would give the model, beside its structured form. The same submit, limits and job
 * store as POST /v1/localize; the request is held until the job ends, and a client that hangs up
 * cancels the job, as cancelling an MCP call does (one that gave an Idempotency-Key leaves it
 * running, for its retry to follow).
 */
export const toolResponseSchema = z.object({
  text: z.string().describe("What the calling model reads: the locations with their line ranges, confidence and evidence, or why there are none."),
  is_error: z.boolean().describe("True when the job failed or was cancelled, or the service stopped before it ended (the text says why)."),
  result: localizeOutputSchema,
});

// The REST examples' request and job, as the tool takes and answers them: the answer's text is the code's own.
const example = { issue: localizeExample.issue, repo_url: localizeExample.repo.url, commit: localizeExample.repo.commit };
const answered = answer(finishedJobExample as unknown as JobView);
const responseExample = { text: (answered.content[0] as { text: string }).text, is_error: false, result: answered.structuredContent };

export const toolRoutes: FastifyPluginAsyncZod<AppContext> = async (app, ctx) => {
  app.post(
    "/v1/tools/localize",
    {
      onRequest: ctx.authenticate,
      schema: {
        operationId: "callLocalizeTool",
        summary: "Call the localize tool and wait for its answer",
        description:
          "For function-calling agents without MCP: send the arguments the model gave the `localize` tool (docs/openai-tool.json; `upload` too) and hand `text` back to the model. Answers when the job has ended; closing the connection before then cancels the job, unless the call has an Idempotency-Key: then the job goes on, and the same call again follows it. A job quiet for more than ~5 s gets its 200 then, and a blank every ~5 s before the body (JSON allows leading blanks), so a proxy in front does not cut the connection. A field the tool does not take is refused, naming it.",
        tags: ["localize"],
        security: API_KEY,
        headers: idempotencyHeadersSchema,
        body: toolArgumentsSchema.meta({ examples: [example] }),
        response: {
          200: toolResponseSchema.describe("The job has ended: succeeded, failed or cancelled; or the service is restarting and the job goes on (`result.error.code` service_restarting: the same call with the same Idempotency-Key follows it).").meta({ examples: [responseExample] }),
          400: commonErrors.invalidJson,
          401: commonErrors.unauthorized,
          409: commonErrors.idempotencyConflict,
          413: commonErrors.bodyTooLarge,
          415: commonErrors.unsupportedMedia,
          422: errorResponse("An argument is invalid; `field` names it as the tool does (repo_url, commit, patch, max_turns).", "invalid_repository", "give repo_url (a repository the service fetches) or upload (a tree sent with POST /v1/uploads)", "repo_url"),
          429: commonErrors.submitLimited,
          500: commonErrors.internal,
          503: commonErrors.unavailable,
        },
      },
    },
    async (request, reply) => {
      const input = request.body as LocalizeToolInput;
      const queued = await submitToolCall(ctx, request.owner, input, request.headers["idempotency-key"]);
      // A job that takes a while (the model's: minutes) would leave the connection silent, and a
      // proxy in front (nginx reads for 60 s) would cut it, which cancels the job. Once it is
      // accepted the answer is a 200 whatever the job's end, so the status goes out then, and a
      // blank every few seconds, which JSON allows before the body, keeps the connection alive.
      let streaming = false;
      const idle = () => {
        if (!streaming) {
          streaming = true;
          reply.hijack();
          reply.raw.writeHead(200, { "content-type": "application/json; charset=utf-8", location: `/v1/jobs/${queued.id}` });
        }
        reply.raw.write(" ");
      };
      let body: z.infer<typeof toolResponseSchema>;
      try {
        // A call with an Idempotency-Key says a retry may come (a dropped connection, a client's
        // timeout): hanging up leaves its job running for the retry to follow, where it cancelled
        // the job and the retry read "cancelled" for as long as the key lasts.
        const view = await followToEnd(ctx, queued, { signal: request.gone, progress: () => undefined, idle }, { cancelWhenGone: !request.headers["idempotency-key"] });
        const result = answer(view);
        body = { text: (result.content[0] as { text: string }).text, is_error: result.isError === true, result: result.structuredContent as z.infer<typeof localizeOutputSchema> };
      } catch (err) {
        if (!streaming) throw err;
        request.log.error({ err }, "tool call failed after its status was sent");
        const message = `the service lost the job ${queued.id}; read it with GET /v1/jobs/${queued.id}`;
        // The 200 went out already: its body is the one documented, `result` included, as on any other end.
        const lost: z.infer<typeof toolResponseSchema> = {
          text: `Localization failed (internal: ${message}).`,
          is_error: true,
          result: { job_id: queued.id, status: queued.status, answered: false, locations: [], error: { code: "internal", message } },
        };
        reply.raw.end(JSON.stringify(lost));
        return reply;
      }
      if (streaming) {
        reply.raw.end(JSON.stringify(body));
        return reply;
      }
      return reply.code(200).header("location", `/v1/jobs/${queued.id}`).send(body);
    },
  );
};
