import type { FastifyInstance } from "fastify";

declare module "fastify" {
  interface FastifyRequest {
    /** Aborts once the client has gone before its response was complete: waits and follows end with it. */
    gone: AbortSignal;
  }
}

/**
 * Gives every request its `gone` signal, made as the request arrives. Made in the handler, after
 * its first await (a submission's DNS check, a job's load), it missed a client that had already
 * hung up, whose job then went on. And it is the response's close that is listened for, not the
 * socket's: a kept-alive socket outlives its requests, and its listeners would pile up.
 */
export function trackClients(fastify: FastifyInstance) {
  fastify.decorateRequest("gone", null as unknown as AbortSignal);
  fastify.addHook("onRequest", async (request, reply) => {
    const ctrl = new AbortController();
    const res = reply.raw;
    res.once("close", () => {
      if (!res.writableFinished) ctrl.abort();
    });
    if (request.raw.socket?.destroyed) ctrl.abort();
    request.gone = ctrl.signal;
  });
}
