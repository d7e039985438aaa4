import { operationsOf } from "./documentOperations.js";

/**
 * What the OpenAPI document says is sent and taken, where it is not JSON. The routes' schemas
 * are zod, which knows only JSON: a client generated from the document JSON-decoded the event
 * stream and Prometheus' text, and had no way to send an upload's archive.
 */

type Content = Record<string, { schema?: unknown; example?: unknown; examples?: unknown }>;
type Operation = { operationId?: string; summary?: string; requestBody?: unknown; responses?: Record<string, { content?: Content }> };

/** The 200 of these operations, by operationId, and the media type it is sent as. */
const NOT_JSON: Record<string, string> = {
  streamJobEvents: "text/event-stream",
  metrics: "text/plain; version=0.0.4",
};

const archive = { schema: { type: "string", format: "binary" } };

export function documentMediaTypes<D extends { paths?: unknown }>(doc: D): D {
  for (const op of operationsOf<Operation>(doc)) {
    const type = op.operationId ? NOT_JSON[op.operationId] : undefined;
    const ok = op.responses?.["200"];
    if (type && ok?.content?.["application/json"]) {
      ok.content = { [type]: ok.content["application/json"] };
    }
    if (op.operationId === "upload") {
      op.requestBody = { required: true, description: "The tree as a tar archive, gzipped or not.", content: { "application/gzip": archive, "application/x-tar": archive } };
    }
  }
  return doc;
}

/**
 * A HEAD answers its GET's statuses and headers with no body; @fastify/swagger copies the GET's
 * bodies into it. Run last, after every transform that adds bodies.
 */
export function documentHeadOperations<D extends { paths?: unknown }>(doc: D): D {
  for (const op of operationsOf<Operation>(doc)) {
    const head = op.operationId?.match(/^get(\w+)-head$/);
    if (!head) continue;
    op.operationId = `head${head[1]}`;
    op.summary = `${op.summary ?? ""} (no body: the status alone)`.trim();
    // Copies: the shared refusals' answers are one object in every operation.
    op.responses = Object.fromEntries(Object.entries(op.responses ?? {}).map(([status, { content: _, ...answer }]) => [status, answer]));
  }
  return doc;
}
