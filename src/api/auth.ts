import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { Config } from "../config/env.js";
import { ApiError } from "./errors.js";
import { ANONYMOUS } from "../queue/contract.js";

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

export { ANONYMOUS };

/** A key's name scopes limits and jobs (and is a Redis key's part): plain characters only. */
const KEY_NAME_RE = /^[\w.@-]{1,64}$/;
/** Shorter keys are guessed: the least a key file may hold, not a recommendation (use 32+ random). */
const MIN_KEY_LENGTH = 12;

const digest = (key: string) => createHash("sha256").update(key, "utf8").digest("hex");
/** The name a bare key had before 0.9.2: eight hex digits of its digest say nothing of it. */
const bareKeyName = (key: string) => `key-${digest(key).slice(0, 8)}`;

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

  /**
   * `name:key` or `name:sha256:<hex>` (a key already hashed); blank lines and `#` comments are
   * skipped. Anything else is refused at boot, naming where it is but not what it says (it may
   * be a key): a bare word used to become a key equal to itself (a name whose key was left out
   * turned into a password anyone could guess), and `name: key` a key with a leading space
   * that no client could send.
   */
  static parseEntry(line: string, where: string): [string, string] | null {
    const t = line.trim();
    if (!t || t.startsWith("#")) return null;
    const cut = t.indexOf(":");
    // Before 0.9.2 a bare key was taken, named after its digest; its jobs keep that name.
    if (cut < 0) throw new Error(`${where}: expected \`name:key\` or \`name:sha256:<hex>\`; if the line is a key, earlier versions named it ${bareKeyName(t)}: write \`${bareKeyName(t)}:<the key>\` to keep its jobs`);
    const name = t.slice(0, cut).trim();
    const rest = t.slice(cut + 1).trim();
    if (!KEY_NAME_RE.test(name)) throw new Error(`${where}: a key's name is 1-64 letters, digits or . _ @ -`);
    const hashed = /^sha256:([0-9a-fA-F]{64})$/.exec(rest);
    if (hashed) return [name, hashed[1]!];
    if (rest.startsWith("sha256:")) throw new Error(`${where}: a hashed key is \`sha256:\` and 64 hex digits`);
    if (rest.length < MIN_KEY_LENGTH || /\s/.test(rest)) throw new Error(`${where}: a key is at least ${MIN_KEY_LENGTH} characters, none of them spaces`);
    return [name, digest(rest)];
  }

  static fromConfig(config: Config): KeyRing {
    const entries: Array<[string, string]> = [];
    const add = (line: string, where: string) => {
      const entry = KeyRing.parseEntry(line, where);
      if (entry) entries.push(entry);
    };
    if (config.API_KEYS) config.API_KEYS.split(",").forEach((line, i) => add(line, `API_KEYS: entry ${i + 1}`));
    if (config.API_KEYS_FILE) {
      let text: string;
      try {
        text = readFileSync(config.API_KEYS_FILE, "utf8");
      } catch (err) {
        throw new Error(`API_KEYS_FILE: cannot read ${config.API_KEYS_FILE}: ${(err as Error).message}`);
      }
      text.split("\n").forEach((line, i) => add(line, `API_KEYS_FILE ${config.API_KEYS_FILE}: line ${i + 1}`));
    }
    // The name every request has with auth off, which may read every job (mayRead): a key named so would too.
    if (entries.some(([name]) => name === ANONYMOUS)) throw new Error(`API_KEYS: "${ANONYMOUS}" names the requests of AUTH_MODE=off and cannot name a key; give it another name`);
    const ring = new KeyRing(entries);
    if (config.AUTH_MODE === "api_key" && ring.size === 0) throw new Error("AUTH_MODE=api_key needs API_KEYS or API_KEYS_FILE");
    // A name no key has would be read as a typo's silence: the operator could read nothing.
    const names = new Set(entries.map(([name]) => name));
    const unknown = config.API_OPERATORS.find((name) => !names.has(name));
    if (unknown !== undefined) throw new Error(`API_OPERATORS: "${unknown}" names no key of API_KEYS or API_KEYS_FILE`);
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

/**
 * A job belongs to the key that submitted it (everyone is anonymous with auth off); an operator's
 * key (API_OPERATORS) reads every key's, given only a job's id, but cancels only its own.
 */
export function mayRead(requester: string, owner: string, operators: readonly string[] = []): boolean {
  return requester === owner || requester === ANONYMOUS || operators.includes(requester);
}
