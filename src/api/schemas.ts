import type { FastifyDynamicSwaggerOptions } from "@fastify/swagger";
import { z } from "zod";
import { localizeOptionsSchema, repoRefSchema } from "../queue/contract.js";
import { jobViewSchema } from "../store/jobStore.js";
import { errorBodySchema } from "./errors.js";

export const localizeBodySchema = z
  .object({
    repo: repoRefSchema,
    issue: z.string().min(1).describe("The issue text (title and body). The service follows no link: a reference to an issue alone (`Fix https://github.com/o/r/issues/123`, `see #123`) is refused (422 issue_is_a_reference)."),
    options: localizeOptionsSchema.optional(),
    callback_url: z.string().max(2048).optional().describe("Receives the finished job as a signed POST (X-CodeScout-Signature)."),
  })
  .strict();
export type LocalizeBody = z.infer<typeof localizeBodySchema>;

export const batchBodySchema = z
  .object({
    jobs: z.array(localizeBodySchema).min(1).describe("Localization requests, each as for POST /v1/localize."),
  })
  .strict();

export const waitQuerySchema = z.object({
  wait: z
    .preprocess(
      // Decimal seconds only: Number() read `0x10` as 16 and `1e3` as 1000 (then capped).
      (v) => (v === "" ? undefined : typeof v === "string" && /^\s*\d+(\.\d+)?\s*$/.test(v) ? Number(v) : v),
      z.number().min(0).max(3600).optional(),
    )
    .describe("Seconds to hold the request until the job ends (capped by the server's WAIT_MAX_S)."),
});

// 100: the router refuses a longer path part (414) before any schema reads it.
export const jobParamsSchema = z.object({ id: z.string().min(1).max(100) });

export const idempotencyHeadersSchema = z.object({
  "idempotency-key": z.string().min(1).max(255).optional().describe("The same key returns the same job (per API key, for the job retention time)."),
});

export const jobSchema = jobViewSchema;
export const batchResponseSchema = z.object({ jobs: z.array(jobViewSchema) });

export const localizeExample = {
  repo: { url: "https://github.com/psf/requests.git", commit: "091991be0da19de9108dbe5e3752917fea3d7fdc" },
  issue: "method = builtin_str(method) problem\n\nIn requests/sessions.py is a command: method = builtin_str(method) ...",
};

/**
 * Real examples for every response, so Swagger UI shows what the service answers (without
 * them it invents values from the schema: "string" ids and ±2^53 integers).
 */
const JOB_ID = "3f6c2a9e-8d41-4b7a-9c25-61e0d7b4f8a2";
const SUBMITTED = "2026-11-24T10:15:02.114Z";

export const queuedJobExample = {
  id: JOB_ID,
  status: "queued",
  repo: { url: "https://github.com/psf/requests.git", commit: "091991be0da19de9108dbe5e3752917fea3d7fdc" },
  policy: "codescout",
  owner: "alice",
  created_at: SUBMITTED,
  started_at: null,
  finished_at: null,
  attempts: 0,
  progress: null,
  cached: false,
  result: null,
  error: null,
};

export const finishedJobExample = {
  ...queuedJobExample,
  status: "succeeded",
  started_at: "2026-11-24T10:15:02.131Z",
  finished_at: "2026-11-24T10:15:09.870Z",
  attempts: 1,
  progress: { phase: "done", turn: 4, max_turns: 10 },
  result: {
    policy: "codescout",
    finish_reason: "finish_tool",
    commit_sha: "091991be0da19de9108dbe5e3752917fea3d7fdc",
    repo_cache: "hot",
    answered: true,
    // Each with where the baseline's ranking put its file, and the baseline's next file beside them (MODEL_ALTERNATIVES).
    locations: [
      {
        file: "requests/sessions.py",
        class_name: "Session",
        function_name: "request",
        evidence: ["the model-free ranking's first file too, at confidence 0.84"],
        valid: true,
        start_line: 377,
        end_line: 459,
      },
      { file: "requests/compat.py", evidence: ["not among the model-free ranking's 5 files"], valid: true },
    ],
    alternatives: [{ file: "requests/models.py", class_name: "PreparedRequest", function_name: "prepare_method", confidence: { file: 0.09 }, valid: true, start_line: 329, end_line: 333 }],
    files: ["requests/sessions.py", "requests/compat.py"],
    modules: ["requests/sessions.py:Session"],
    entities: ["requests/sessions.py:Session.request"],
    turns: 4,
    timings: { queue_wait_ms: 17, repo_ms: 12, sandbox_ms: 104, policy_ms: 7410, model_ms: 7205, tool_ms: 88, total_ms: 7739 },
    usage: { model_calls: 4, prompt_tokens: 21344, completion_tokens: 611 },
  },
};

/** The same job answered by the baseline (no model server): how sure it is, and what it would read next. */
export const baselineJobExample = {
  ...finishedJobExample,
  progress: { phase: "done", turn: 2, max_turns: 10 },
  result: {
    ...finishedJobExample.result,
    policy: "baseline",
    locations: [
      {
        file: "requests/sessions.py",
        class_name: "Session",
        function_name: "request",
        evidence: ["the issue names `builtin_str`", "issue terms in its body: method, builtin"],
        confidence: { file: 0.84, function: 0.53 },
        valid: true,
        start_line: 377,
        end_line: 459,
      },
    ],
    files: ["requests/sessions.py"],
    modules: ["requests/sessions.py:Session"],
    entities: ["requests/sessions.py:Session.request"],
    turns: 2,
    timings: { queue_wait_ms: 3, repo_ms: 12, sandbox_ms: 221, policy_ms: 402, model_ms: 0, tool_ms: 388, total_ms: 731 },
    usage: { model_calls: 0, prompt_tokens: 0, completion_tokens: 0 },
  },
};

export const cancelledJobExample = {
  ...queuedJobExample,
  status: "cancelled",
  started_at: "2026-11-24T10:15:02.131Z",
  finished_at: "2026-11-24T10:15:04.502Z",
  attempts: 1,
  progress: { phase: "localizing", turn: 2, max_turns: 10 },
  error: { code: "cancelled", message: "the job was cancelled" },
};

export const trajectoryExample = {
  id: JOB_ID,
  trajectory: {
    policy: "codescout",
    finish_reason: "finish_tool",
    working_dir: "/tmp/testbed/5f3c2a1b/psf_requests_psf__requests-3f6c2a9e",
    steps: [
      { at: "2026-11-24T10:15:02.250Z", kind: "response", durationMs: 1840, content: null, tool_calls: [{ name: "terminal", arguments: '{"command": "rg -n \\"builtin_str\\" requests/sessions.py"}' }] },
      { at: "2026-11-24T10:15:02.262Z", kind: "tool", durationMs: 12, name: "terminal", exit_code: 0, observation: "428:        method = builtin_str(method)\n[The command completed with exit code 0.]" },
    ],
  },
};

export const errorExample = (code: string, message: string, field?: string) => ({ error: { code, message, ...(field ? { field } : {}) } });

/** An error response with its own description and example. */
export const errorResponse = (description: string, code: string, message: string, field?: string) =>
  errorBodySchema.describe(description).meta({ examples: [errorExample(code, message, field)] });

export const commonErrors = {
  unauthorized: errorResponse("No valid API key (with AUTH_MODE=api_key): unauthorized (none sent), invalid_api_key (not one of the keys).", "unauthorized", "an API key is required (Authorization: Bearer <key>)", "authorization"),
  jobNotFound: errorResponse("No such job for this API key: unknown, expired, or another key's (they answer alike).", "job_not_found", `no job ${JOB_ID}`, "id"),
  readLimited: errorResponse("More reads than POLL_RATE_LIMIT_PER_MIN for this key; see Retry-After.", "rate_limited", "more than 600 reads a minute for this API key: retry in 41 s"),
  submitLimited: errorResponse("More submissions than RATE_LIMIT_PER_MIN (rate_limited), or more open jobs than MAX_OPEN_JOBS_PER_KEY (too_many_open_jobs); see Retry-After.", "rate_limited", "more than 120 submissions a minute for this API key: retry in 41 s"),
  invalidJson: errorResponse("The body is not valid JSON.", "invalid_json", "request body is not valid JSON"),
  idempotencyConflict: errorResponse("A request with the same Idempotency-Key is still being accepted; retry shortly.", "idempotency_conflict", "a request with this Idempotency-Key is still being accepted; retry shortly", "idempotency-key"),
  bodyTooLarge: errorResponse("The body is larger than the server takes (the issue and patch caps).", "body_too_large", "request body is too large"),
  unsupportedMedia: errorResponse("The body is not sent as application/json.", "unsupported_media_type", "content type text/plain is not accepted here: send application/json"),
  internal: errorResponse("The service failed; the request may be retried.", "internal", "internal error"),
  unavailable: errorResponse("The service's job store (Redis) is unreachable; retry after Retry-After.", "unavailable", "the service's job store (Redis) is unreachable; retry shortly"),
  invalidParams: errorResponse("A path parameter, query parameter or header does not match the schema; `field` names it.", "validation_failed", "querystring.wait: Invalid input: expected number, received string", "querystring.wait"),
};

/** The job view as JSON Schema, the webhook's body (zod's type for it and openapi-types' differ only in their typing). */
const jobJsonSchema = z.toJSONSchema(jobSchema, { io: "output", unrepresentable: "any" }) as unknown as Record<string, never>;

/** OpenAPI 3.1's `webhooks`, as @fastify/swagger takes them. */
type OpenApiWebhooks = Extract<NonNullable<FastifyDynamicSwaggerOptions["openapi"]>, { webhooks?: unknown }>["webhooks"];

/**
 * The webhook a job's end sends to its callback_url, as OpenAPI 3.1 describes a call the service
 * makes: a receiver's code generator and reader find the body, the headers and what counts as
 * received in the document, not only in the README.
 */
export const jobEndedWebhook: OpenApiWebhooks = {
  jobEnded: {
    post: {
      summary: "A job ended (succeeded, failed or cancelled): sent to its callback_url",
      description:
        "Delivered at least once: retried after 15 s, 30 s, 1, 2 and 4 min (WEBHOOK_MAX_ATTEMPTS) until a 2xx answer, each delivery answered within 10 s; a redirect is not followed. Dedupe on X-CodeScout-Job. Verify X-CodeScout-Key-Signature with your API key's own webhook secret (GET /v1/webhook-secret), which no other key can sign with, or X-CodeScout-Signature with WEBHOOK_SECRET where the operator gives you that; refuse an old t.",
      parameters: [
        { name: "X-CodeScout-Signature", in: "header" as const, required: true, schema: { type: "string" }, description: "t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<body>\" keyed with WEBHOOK_SECRET>" },
        { name: "X-CodeScout-Key-Signature", in: "header" as const, required: true, schema: { type: "string" }, description: "The same, keyed with the job's API key's own webhook secret (GET /v1/webhook-secret)" },
        { name: "X-CodeScout-Job", in: "header" as const, required: true, schema: { type: "string", format: "uuid" }, description: "The job's id: the same on every delivery of it." },
      ],
      requestBody: { required: true, content: { "application/json": { schema: jobJsonSchema } } },
      responses: { "2XX": { description: "Received: not sent again." }, default: { description: "Not received: sent again later, until WEBHOOK_MAX_ATTEMPTS." } },
    },
  },
};


/** Either way of sending an API key (when AUTH_MODE=api_key): Authorization: Bearer, or X-API-Key. */
export const API_KEY: Array<Record<string, string[]>> = [{ bearerAuth: [] }, { apiKeyHeader: [] }];
