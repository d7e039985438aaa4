import type { FastifyReply, FastifyRequest } from "fastify";
import type { Config } from "../config/env.js";
import { ApiError, quoteHeader } from "./errors.js";

/**
 * DNS rebinding defence. A web page can make a browser send requests to a service on
 * localhost under the page's own name (evil.example resolving to 127.0.0.1); the browser
 * then sends that name as Host and counts the request as same-origin. A service listening
 * on loopback therefore answers only to loopback names, and any request from a browser
 * (it carries Origin) must come from the service's own origin or one configured.
 */
const LOOPBACK_NAMES = ["localhost", "127.0.0.1", "[::1]"];

export function hostGuard(config: Config) {
  const listed = config.API_ALLOWED_HOSTS.split(",").map((h) => h.trim().toLowerCase()).filter(Boolean);
  const loopback = /^(127\.|localhost$|::1$|\[::1\]$)/.test(config.API_HOST);
  const allowedHosts = listed.length ? listed : loopback ? LOOPBACK_NAMES : null;
  const allowedOrigins = new Set(config.API_ALLOWED_ORIGINS.split(",").map((o) => o.trim().toLowerCase().replace(/\/$/, "")).filter(Boolean));

  return async (request: FastifyRequest, _reply: FastifyReply) => {
    const host = hostnameOf(request.headers.host ?? "");
    if (allowedHosts && !allowedHosts.includes(host)) {
      throw new ApiError(403, "host_not_allowed", `this service does not answer to the host name ${quoteHeader(host)}`, "host");
    }
    const origin = request.headers.origin;
    if (origin === undefined) return;
    let originUrl: URL | null = null;
    try {
      originUrl = new URL(origin);
    } catch {
      originUrl = null;
    }
    const sameOrigin = originUrl !== null && originUrl.host.toLowerCase() === (request.headers.host ?? "").toLowerCase();
    const loopbackOrigin = originUrl !== null && allowedHosts !== null && allowedHosts.includes(originUrl.hostname.toLowerCase());
    if (!sameOrigin && !loopbackOrigin && !allowedOrigins.has(origin.toLowerCase())) {
      throw new ApiError(403, "origin_not_allowed", `requests from the web origin ${quoteHeader(origin)} are not allowed (API_ALLOWED_ORIGINS)`, "origin");
    }
  };
}

/** The host name of a Host header, lowercased, without its port ("[::1]:8080" → "[::1]"). */
function hostnameOf(header: string): string {
  const h = header.trim().toLowerCase();
  if (h.startsWith("[")) return h.slice(0, h.indexOf("]") + 1);
  return h.split(":")[0] ?? "";
}
