import type { Duplex } from "node:stream";
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { hasZodFastifySchemaValidationErrors } from "fastify-type-provider-zod";
import { z } from "zod";
import { isRedisFull, isRedisRefusingLogin, isRedisUnreachable } from "../queue/connection.js";

/**
 * A header's value as an error quotes it: at most 100 characters, so an answer never echoes
 * back the kilobytes a client put in a header.
 */
export function quoteHeader(value: string | undefined): string {
  if (!value) return "(none)";
  return JSON.stringify(value.length > 100 ? `${value.slice(0, 99)}…` : value);
}

/**
 * One error family for the HTTP layer and one handler that renders every 4xx/5xx in the
 * same shape: `{ error: { code, message, field? } }`.
 */
export class ApiError extends Error {
  override name = "ApiError";
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly field?: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export const errorBodySchema = z.object({
  error: z.object({
    code: z.string().describe("Machine-readable error code."),
    message: z.string(),
    field: z.string().optional().describe("The offending field, dotted (e.g. repo.url)."),
  }),
});

function fieldOf(instancePath: string | undefined, location: string | undefined): string | undefined {
  const path = (instancePath ?? "").split("/").filter(Boolean).join(".");
  if (location && location !== "body") return path ? `${location}.${path}` : location;
  // The body as a whole (none sent, or not an object): named, so that a caller knows what to mend.
  return path || "body";
}

export function errorHandler(err: FastifyError | ApiError | Error, request: FastifyRequest, reply: FastifyReply) {
  if (err instanceof ApiError) {
    // The reason, which the request's own lines lack (a 503 for a disk nearly full is the
    // operator's to act on); the key by its name, never the key.
    const said = { code: err.code, field: err.field, owner: (request as { owner?: string }).owner };
    if (err.statusCode >= 500) request.log.warn(said, err.message);
    else request.log.info(said, "request refused");
    return reply
      .code(err.statusCode)
      .headers(err.headers)
      .send({ error: { code: err.code, message: err.message, ...(err.field ? { field: err.field } : {}) } });
  }
  if (hasZodFastifySchemaValidationErrors(err)) {
    const first = err.validation[0];
    // An unknown field is named itself, not the object holding it: a caller who sent `repo` to
    // the tool route (which takes repo_url) reads which field to drop.
    const unknown = first?.keyword === "unrecognized_keys" ? (first.params as { keys?: string[] }).keys?.[0] : undefined;
    const path = unknown === undefined ? first?.instancePath : `${first?.instancePath ?? ""}/${unknown}`;
    const field = fieldOf(path, (err as FastifyError).validationContext);
    const message = !first ? "request does not match the schema" : unknown === undefined ? `${field ?? "request"}: ${first.message}` : `${field}: not a field this request takes`;
    return reply.code(422).send({ error: { code: "validation_failed", message, ...(field ? { field } : {}) } });
  }
  // The client retries these: 503 with Retry-After, not the 500 of a fault.
  const unavailable = (retryAfterS: number, message: string) =>
    reply.code(503).header("retry-after", String(retryAfterS)).send({ error: { code: "unavailable", message } });
  if (isRedisUnreachable(err)) {
    request.log.warn({ err: err.message }, "redis unreachable");
    return unavailable(5, "the service's job store (Redis) is unreachable; retry shortly");
  }
  if (isRedisRefusingLogin(err)) {
    request.log.error({ err: err.message }, "redis refused the service's login (REDIS_URL's user or password)");
    return unavailable(30, "the service's job store (Redis) refused the service's login; retry later");
  }
  // Nothing already accepted is lost: the full store refuses new writes, old jobs expire.
  if (isRedisFull(err)) {
    request.log.error({ err: err.message }, "redis is full (maxmemory): new jobs refused until old ones expire");
    return unavailable(60, "the service's job store (Redis) is full; retry later");
  }
  const fe = err as FastifyError;
  if (fe.code === "FST_ERR_CTP_INVALID_JSON_BODY" || fe.code === "FST_ERR_CTP_EMPTY_JSON_BODY" || (fe.statusCode === 400 && fe instanceof SyntaxError)) {
    // The parser refuses valid JSON too, whose keys would reach an object's prototype; Fastify
    // does not say which it was.
    const message =
      fe.code === "FST_ERR_CTP_EMPTY_JSON_BODY"
        ? "request body is empty; a JSON object was expected"
        : "request body is not valid JSON, or has a __proto__ or constructor.prototype key (refused)";
    // An MCP client reads JSON-RPC's own error, not the REST shape.
    if (request.url.split("?")[0] === "/mcp") return reply.code(400).send({ jsonrpc: "2.0", id: null, error: { code: -32700, message: `Parse error: ${message}` } });
    return reply.code(400).send({ error: { code: "invalid_json", message, field: "body" } });
  }
  if (fe.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE") {
    const wanted = request.url.startsWith("/v1/uploads") ? "application/gzip or application/x-tar" : "application/json";
    return reply.code(415).send({ error: { code: "unsupported_media_type", message: `content type ${quoteHeader(request.headers["content-type"])} is not accepted here: send ${wanted}` } });
  }
  if (fe.code === "FST_ERR_CTP_BODY_TOO_LARGE") {
    return reply.code(413).send({ error: { code: "body_too_large", message: "request body is too large" } });
  }
  if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
    return reply.code(fe.statusCode).send({ error: { code: "bad_request", message: fe.message } });
  }
  request.log.error({ err }, "unhandled error");
  return reply.code(500).send({ error: { code: "internal", message: "internal error" } });
}

/**
 * What the router refuses before any route runs (a path that does not decode, a parameter past
 * the router's length), in the one error shape. Fastify's own body would echo the whole path.
 */
export function frameworkErrorHandler(err: FastifyError, _request: FastifyRequest, reply: FastifyReply) {
  if (err.code === "FST_ERR_MAX_PARAM_LENGTH") {
    return reply.code(414).send({ error: { code: "uri_too_long", message: "a path parameter is longer than the router takes (100 characters; a job id is a UUID)" } });
  }
  if (err.code === "FST_ERR_BAD_URL") return reply.code(400).send({ error: { code: "bad_url", message: "the URL's path does not decode (a malformed %-escape)" } });
  return reply.code(400).send({ error: { code: "bad_request", message: err.message } });
}

/**
 * What Node's HTTP parser refuses before Fastify sees a request (a malformed chunk or length,
 * a control byte in a header, headers past 16 KB, an unknown method), in the one error shape;
 * Fastify's default wrote a body of its own ({"error":"Bad Request","message":"Client Error"}).
 */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === "ECONNRESET" || socket.destroyed) return;
  const [status, reason, code, message] =
    err.code === "ERR_HTTP_REQUEST_TIMEOUT"
      ? [408, "Request Timeout", "request_timeout", "the request did not arrive in time"]
      : err.code === "HPE_HEADER_OVERFLOW"
        ? [431, "Request Header Fields Too Large", "headers_too_large", "the request's headers are larger than the server takes (16 KB)"]
        : [400, "Bad Request", "bad_request", "the request is not well-formed HTTP (its method, a header, or the body's length or chunks)"];
  const body = JSON.stringify({ error: { code, message } });
  if (socket.writable) socket.write(`HTTP/1.1 ${status} ${reason}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json; charset=utf-8\r\nConnection: close\r\n\r\n${body}`);
  socket.destroy(err);
}

export function notFoundHandler(request: FastifyRequest, reply: FastifyReply) {
  return reply.code(404).send({ error: { code: "not_found", message: `no route ${request.method} ${request.url.split("?")[0]}` } });
}
