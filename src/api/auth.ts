import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { Config } from "../config/env.js";
import { ApiError } from "./errors.js";

/**
 * API keys, kept only as SHA-256 digests. A request names its key as `Authorization:
 * Bearer <key>` or `X-API-Key: <key>`; its owner (the key's name) scopes rate limits,
 * the open-job cap and who may read or cancel a job. With AUTH_MODE=off everyone is
 * "anonymous".
 */

declare module "fastify" {
  interface FastifyRequest {
    owner: string;
  }
}

export const ANONYMOUS = "anonymous";

const digest = (key: string) => createHash("sha256").update(key, "utf8").digest("hex");

export class KeyRing {
  private readonly byDigest = new Map<string, string>();

  constructor(entries: Iterable<[name: string, hexDigest: string]>) {
    for (const [name, hex] of entries) this.byDigest.set(hex.toLowerCase(), name);
  }

  get size(): number {
    return this.byDigest.size;
  }

  lookup(key: string): string | undefined {
    return this.byDigest.get(digest(key));
  }

  /** `name:key`, bare `key`, or `name:sha256:<hex>` (a key already hashed). */
  static parseEntry(line: string): [string, string] | null {
    const t = line.trim();
    if (!t || t.startsWith("#")) return null;
    const hashed = /^([^:]+):sha256:([0-9a-fA-F]{64})$/.exec(t);
    if (hashed) return [hashed[1]!, hashed[2]!];
    const cut = t.indexOf(":");
    if (cut > 0) return [t.slice(0, cut), digest(t.slice(cut + 1))];
    return [`key-${digest(t).slice(0, 8)}`, digest(t)];
  }

  static fromConfig(config: Config): KeyRing {
    const lines: string[] = [];
    if (config.API_KEYS) lines.push(...config.API_KEYS.split(","));
    if (config.API_KEYS_FILE) {
      try {
        lines.push(...readFileSync(config.API_KEYS_FILE, "utf8").split("\n"));
      } catch (err) {
        throw new Error(`API_KEYS_FILE: cannot read ${config.API_KEYS_FILE}: ${(err as Error).message}`);
      }
    }
    const entries = lines.map((l) => KeyRing.parseEntry(l)).filter((e): e is [string, string] => e !== null);
    // The name every request has with auth off, which may read every job (mayRead): a key named so would too.
    if (entries.some(([name]) => name === ANONYMOUS)) throw new Error(`API_KEYS: "${ANONYMOUS}" names the requests of AUTH_MODE=off and cannot name a key; give it another name`);
    const ring = new KeyRing(entries);
    if (config.AUTH_MODE === "api_key" && ring.size === 0) throw new Error("AUTH_MODE=api_key needs API_KEYS or API_KEYS_FILE");
    return ring;
  }
}

export function presentedKey(request: FastifyRequest): string | undefined {
  const auth = request.headers.authorization;
  if (auth) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    if (!m) throw new ApiError(401, "unauthorized", "Authorization must be `Bearer <api key>`", "authorization");
    return m[1];
  }
  const header = request.headers["x-api-key"];
  return typeof header === "string" && header ? header : undefined;
}

export function authenticate(mode: Config["AUTH_MODE"], ring: KeyRing) {
  return async (request: FastifyRequest, _reply: FastifyReply) => {
    if (mode === "off") {
      request.owner = ANONYMOUS;
      return;
    }
    const key = presentedKey(request);
    if (!key) throw new ApiError(401, "unauthorized", "an API key is required (Authorization: Bearer <key>)", "authorization", { "www-authenticate": "Bearer" });
    const owner = ring.lookup(key);
    if (!owner) throw new ApiError(401, "invalid_api_key", "the API key is not valid", "authorization", { "www-authenticate": "Bearer" });
    request.owner = owner;
  };
}

/** A job belongs to the key that submitted it (everyone is anonymous with auth off). */
export function mayRead(requester: string, owner: string): boolean {
  return requester === owner || requester === ANONYMOUS;
}
