import type { FastifyInstance, FastifyRequest } from "fastify";
import { ApiError } from "./errors.js";
import type { Limits } from "./limits.js";

/**
 * What reading a JSON body costs, charged to its API key before the body is read. Parsing is
 * done on the process's one thread: a key sending bodies of the largest size, each refused once
 * read (an unknown field), stalled every other key's requests (another key's submit p50 went from
 * 5 ms to 2.8 s) and spent none of its own budget; a key holding bodies all but sent kept their
 * bytes in memory for the request's time. So a key has a budget of body bytes a minute (shared by
 * every replica, as its other budgets) and a number of bodies it may be sending to one process at
 * once. Uploads stream (routes/uploads.ts) and are charged there.
 */
export function chargeBodies(fastify: FastifyInstance, limits: Limits, settings: { bytesPerMinute: number; atOnce: number; bodyLimit: number }): void {
  const sending = new Map<string, number>();
  const charged = new WeakSet<FastifyRequest>();
  const done = (request: FastifyRequest) => {
    if (!charged.delete(request)) return;
    const left = (sending.get(request.owner) ?? 1) - 1;
    if (left > 0) sending.set(request.owner, left);
    else sending.delete(request.owner);
  };
  fastify.addHook("preParsing", async (request, _reply, payload) => {
    const headers = request.headers;
    const hasBody = headers["content-length"] !== undefined ? Number(headers["content-length"]) > 0 : headers["transfer-encoding"] !== undefined;
    if (!hasBody || !request.owner || !/^application\/json\b/i.test(headers["content-type"] ?? "")) return payload;
    const now = sending.get(request.owner) ?? 0;
    if (settings.atOnce > 0 && now >= settings.atOnce) {
      throw new ApiError(429, "rate_limited", `this API key is sending ${now} request bodies to this process at once, its limit: retry in 1 s`, undefined, { "retry-after": "1" });
    }
    // Its place taken before the budget is asked (a wait on Redis): requests arriving together
    // each see the others'.
    sending.set(request.owner, now + 1);
    charged.add(request);
    // A body without a length (chunked) is counted as the largest it may be.
    const bytes = Math.min(Number(headers["content-length"] ?? settings.bodyLimit) || settings.bodyLimit, settings.bodyLimit);
    try {
      await limits.takeBodyBytes(request.owner, bytes, settings.bytesPerMinute);
    } catch (err) {
      done(request);
      throw err;
    }
    return payload;
  });
  // Sent once parsed, or once the request ends however it ends: a held call keeps no place.
  fastify.addHook("preValidation", async (request) => done(request));
  fastify.addHook("onResponse", async (request) => done(request));
  fastify.addHook("onRequestAbort", async (request) => done(request));
}
