import { operationsOf } from "./documentOperations.js";

/**
 * What the OpenAPI document says is sent and taken, where it is not JSON. The routes' schemas
 * are zod, which knows only JSON: a client generated from the document JSON-decoded the event
 * stream and Prometheus' text, and had no way to send an upload's archive.
 */

type Content = Record<string, { schema?: unknown; example?: unknown; examples?: unknown }>;
type Operation = { operationId?: string; requestBody?: unknown; responses?: Record<string, { content?: Content }> };

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
