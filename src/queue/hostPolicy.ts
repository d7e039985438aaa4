import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { isBlockedAddress, normalizeHost } from "./addresses.js";
import { RepoUrlError } from "./repoUrl.js";

/**
 * Where the service may connect on a client's behalf (git remotes, webhooks): an optional
 * host allow-list, and never its own network (loopback, private, link-local, metadata and
 * every other special-use range) unless configured. One normalization serves the API and
 * the worker, and the worker checks again at the moment it connects, pinning the answer it
 * checked so that nothing resolves the name a second time.
 */
export interface HostPolicy {
  allowedHosts: string[];
  allowPrivate: boolean;
}

/** Resolves a host name to its addresses; throws when it cannot. Injected where config is. */
export type Resolver = (host: string) => Promise<string[]>;

export const systemResolver: Resolver = async (host) => (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);

export class HostPolicyError extends RepoUrlError {
  override name = "HostPolicyError";
  constructor(
    readonly reason: "not_allowed" | "blocked" | "unresolvable",
    message: string,
  ) {
    super(message);
  }
}

export { isBlockedAddress, normalizeHost };

export function parseHostList(list: string): string[] {
  return list
    .split(",")
    .map((h) => h.trim())
    .filter(Boolean)
    .map(normalizeHost);
}

export interface CheckedHost {
  /** The normalized host, as it must appear in the URL that is used. */
  host: string;
  port: number;
  /** The addresses checked; connect only to these. */
  addresses: string[];
}

export interface HostGuardOptions {
  /** A lookup slower than this fails (closed). */
  timeoutMs?: number;
  /** Answers (never failures) are reused this long; 0 at the point of connection. */
  cacheTtlMs?: number;
}

/** Checks a URL's host against the policy; the addresses it returns are the ones to connect to. */
export class HostGuard {
  private readonly cache = new Map<string, { addresses: string[]; expires: number }>();
  private readonly timeoutMs: number;
  private readonly cacheTtlMs: number;

  constructor(
    private readonly policy: HostPolicy,
    private readonly resolver: Resolver = systemResolver,
    options: HostGuardOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? 2_000;
    this.cacheTtlMs = options.cacheTtlMs ?? 0;
  }

  async check(url: URL, what = "repository URL"): Promise<CheckedHost> {
    let host: string;
    try {
      host = normalizeHost(url.hostname);
    } catch (err) {
      throw new HostPolicyError("blocked", `${what}: ${(err as Error).message}`);
    }
    const port = Number(url.port || (url.protocol === "https:" ? 443 : url.protocol === "http:" ? 80 : 0));
    if (this.policy.allowedHosts.length && !this.policy.allowedHosts.includes(host)) {
      throw new HostPolicyError("not_allowed", `${what} host ${host} is not in the allowed hosts`);
    }
    if (isIP(host)) {
      if (!this.policy.allowPrivate && isBlockedAddress(host)) throw new HostPolicyError("blocked", `${what} points at a private, loopback, link-local or reserved address (${host})`);
      return { host, port, addresses: [host] };
    }
    if (!this.policy.allowPrivate && (host === "localhost" || host.endsWith(".localhost"))) {
      throw new HostPolicyError("blocked", `${what} points at a loopback host (${host})`);
    }
    const addresses = await this.resolve(host, what);
    const blocked = addresses.find((a) => isBlockedAddress(a));
    if (!this.policy.allowPrivate && blocked) {
      throw new HostPolicyError("blocked", `${what} host ${host} resolves to a private, loopback, link-local or reserved address (${blocked})`);
    }
    return { host, port, addresses };
  }

  private async resolve(host: string, what: string): Promise<string[]> {
    const hit = this.cache.get(host);
    if (hit && hit.expires > Date.now()) return hit.addresses;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new HostPolicyError("unresolvable", `${what} host ${host} did not resolve within ${this.timeoutMs} ms`)), this.timeoutMs);
    });
    let addresses: string[];
    try {
      addresses = await Promise.race([this.resolver(host), timeout]);
    } catch (err) {
      if (err instanceof HostPolicyError) throw err;
      throw new HostPolicyError("unresolvable", `${what} host ${host} does not resolve (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    } finally {
      clearTimeout(timer);
    }
    const valid = addresses.filter((a) => isIP(a) !== 0);
    if (valid.length === 0) throw new HostPolicyError("unresolvable", `${what} host ${host} does not resolve to any address`);
    if (this.cacheTtlMs > 0) {
      if (this.cache.size > 10_000) this.cache.clear();
      this.cache.set(host, { addresses: valid, expires: Date.now() + this.cacheTtlMs });
    }
    return valid;
  }
}
