import { Transform, type Readable } from "node:stream";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { ApiError } from "./errors.js";
import type { Limits } from "./limits.js";

const BODY_METHODS = new Set(["POST", "PUT", "PATCH"]);

/**
 * What reading a JSON body costs, charged to its API key before the body is read. Parsing is
 * done on the process's one thread: a key sending bodies of the largest size, each refused once
 * read (an unknown field), stalled every other key's requests (another key's submit p50 went from
 * 5 ms to 2.8 s) and spent none of its own budget; a key holding bodies all but sent kept their
 * bytes in memory for the request's time. So a key has a budget of body bytes a minute (shared by
 * every replica, as its other budgets) and a number of bodies it may be sending to one process at
 * once. A body of a declared length is charged that before it is read; one sent without (chunked)
 * is charged what it was once read, and refused beforehand only when the budget is spent. Uploads
 * stream (routes/uploads.ts) and are charged there.
 */
export function chargeBodies(fastify: FastifyInstance, limits: Limits, settings: { bytesPerMinute: number; atOnce: number; bodyLimit: number }): void {
  const sending = new Map<string, number>();
  const placed = new WeakSet<FastifyRequest>();
  const done = (request: FastifyRequest) => {
    if (!placed.delete(request)) return;
    const left = (sending.get(request.owner) ?? 1) - 1;
    if (left > 0) sending.set(request.owner, left);
    else sending.delete(request.owner);
  };
  fastify.addHook("preParsing", async (request, _reply, payload) => {
    const headers = request.headers;
    const declared = headers["content-length"] !== undefined ? Number(headers["content-length"]) : undefined;
    const hasBody = declared !== undefined ? declared > 0 : headers["transfer-encoding"] !== undefined;
    // Only where a body is read: a body sent with a GET is not, and a stream of it waiting to be
    // counted held the connection's next requests behind it.
    if (!BODY_METHODS.has(request.method)) return payload;
    // Gone already: nothing will be read, and nothing would give its place back.
    if (!hasBody || !request.owner || request.raw.destroyed || !/^application\/json\b/i.test(headers["content-type"] ?? "")) return payload;
    const now = sending.get(request.owner) ?? 0;
    if (settings.atOnce > 0 && now >= settings.atOnce) {
      throw new ApiError(429, "rate_limited", `this API key is sending ${now} request bodies to this process at once, its limit: retry in 1 s`, undefined, { "retry-after": "1" });
    }
    // Its place taken before the budget is asked (a wait on Redis): requests arriving together
    // each see the others'. Given back however the request ends, its connection cut during that
    // wait too (the request's close).
    sending.set(request.owner, now + 1);
    placed.add(request);
    request.raw.once("close", () => done(request));
    try {
      // A length past the most a body may be is refused by the parser (413): charged that most.
      await limits.takeBodyBytes(request.owner, Math.min(declared ?? 0, settings.bodyLimit), settings.bytesPerMinute);
    } catch (err) {
      done(request);
      throw err;
    }
    if (declared !== undefined || settings.bytesPerMinute <= 0) return payload;
    // Charged what was read once it is all read, or cut, however parsing ends: a body refused
    // as it is parsed (malformed JSON) costs what it cost to read.
    let bytes = 0;
    let billed = false;
    const charge = () => {
      if (billed) return;
      billed = true;
      void limits.addBodyBytes(request.owner, bytes).catch(() => undefined);
    };
    request.raw.once("close", charge);
    return (payload as Readable).pipe(
      new Transform({
        transform(chunk: Buffer, _encoding, next) {
          bytes += chunk.length;
          next(null, chunk);
        },
        flush(next) {
          charge();
          next();
        },
      }),
    );
  });
  // Its place given back once parsed (a held call keeps none), or once the request ends however it ends.
  fastify.addHook("preValidation", async (request) => done(request));
  fastify.addHook("onResponse", async (request) => done(request));
  fastify.addHook("onRequestAbort", async (request) => done(request));
}
