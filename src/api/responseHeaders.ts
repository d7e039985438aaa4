import type { SwaggerTransformObject } from "@fastify/swagger";
import { operationsOf } from "./documentOperations.js";

/**
 * The response headers a client acts on, written into the OpenAPI document. The routes' response
 * schemas are zod bodies, which carry no headers, so a generated client never learned that a 429
 * or 503 says when to come back, or that a 202 says where the job is.
 */

type HeaderObject = { description: string; schema: Record<string, unknown> };
type ResponseObject = { headers?: Record<string, HeaderObject> };
type Operation = { operationId?: string; parameters?: { in: string; name: string }[]; responses?: Record<string, ResponseObject> };

const retryAfter: HeaderObject = {
  description: "Seconds to wait before sending the request again.",
  schema: { type: "integer", minimum: 0 },
};

const location: HeaderObject = {
  description: "The job's URL (GET it, or its /events, to follow the job).",
  schema: { type: "string", examples: ["/v1/jobs/5f3c2a1b-8d4e-4f6a-9b7c-2e1d0c3b4a59"] },
};

/**
 * Whether this operation's answer of this status always says when to retry: a rate limit (429),
 * the unavailable store or a limit of streams and sessions (503), and a request with the same
 * Idempotency-Key still in flight (409, where the operation takes the key; a cancel's 409 is
 * final). /readyz's 503 is a state to probe again, not a request to retry.
 */
function saysWhenToRetry(op: Operation, status: string): boolean {
  if (status === "429") return true;
  if (status === "503") return op.operationId !== "ready";
  return status === "409" && (op.parameters ?? []).some((p) => p.in === "header" && p.name.toLowerCase() === "idempotency-key");
}

/** Operations that answer a job (by operationId) and so point at it. */
const JOB_ANSWERS = new Set(["localize", "localizeUnversioned", "callLocalizeTool"]);

function withHeader(response: ResponseObject, name: string, header: HeaderObject): void {
  response.headers = { ...response.headers, [name]: header };
}

export const documentResponseHeaders: SwaggerTransformObject = (input) => {
  const doc = "openapiObject" in input ? input.openapiObject : input.swaggerObject;
  for (const op of operationsOf<Operation>(doc)) {
    for (const [status, response] of Object.entries(op.responses ?? {})) {
      if (saysWhenToRetry(op, status)) withHeader(response, "Retry-After", retryAfter);
      if (op.operationId && JOB_ANSWERS.has(op.operationId) && (status === "200" || status === "202")) withHeader(response, "Location", location);
    }
  }
  return doc;
};
