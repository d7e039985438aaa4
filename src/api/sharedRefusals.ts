import { operationsOf } from "./documentOperations.js";

/**
 * Refusals every route can answer before its own code runs, written into the OpenAPI document:
 * a generated client met 403s and 414s no operation named. The host and origin checks
 * (hostGuard.ts) answer 403 on any route; a path part past the router's bound, 414, and one that
 * does not decode, 400 (errors.ts), on routes with path parameters.
 */

const errorBody = {
  type: "object",
  properties: {
    error: {
      type: "object",
      properties: { code: { type: "string", description: "Machine-readable error code." }, message: { type: "string" }, field: { type: "string" } },
      required: ["code", "message"],
    },
  },
  required: ["error"],
};

const refusal = (description: string, example: { code: string; message: string; field?: string }) => ({
  description,
  content: { "application/json": { schema: errorBody, example: { error: example } } },
});

const FORBIDDEN = refusal("The request's Host is not one this service answers to (API_ALLOWED_HOSTS), or it comes from a web origin not allowed (API_ALLOWED_ORIGINS): host_not_allowed, origin_not_allowed.", {
  code: "origin_not_allowed",
  message: "requests from the web origin https://example.com are not allowed (API_ALLOWED_ORIGINS)",
  field: "origin",
});
const TOO_LONG = refusal("A path parameter is longer than the router takes (100 characters).", { code: "uri_too_long", message: "a path parameter is longer than the router takes (100 characters; a job id is a UUID)" });
const BAD_URL = refusal("The URL's path does not decode (a malformed %-escape).", { code: "bad_url", message: "the URL's path does not decode (a malformed %-escape)" });

type Operation = { parameters?: { in: string }[]; responses?: Record<string, unknown> };

export function documentSharedRefusals<D extends { paths?: unknown }>(doc: D): D {
  for (const op of operationsOf<Operation>(doc)) {
    const responses = (op.responses ??= {});
    responses["403"] ??= FORBIDDEN;
    if ((op.parameters ?? []).some((p) => p.in === "path")) {
      responses["400"] ??= BAD_URL;
      responses["414"] ??= TOO_LONG;
    }
  }
  return doc;
}
