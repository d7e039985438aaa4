import { InvalidHostError, normalizeHost } from "./addresses.js";

/**
 * Which repository URLs a job may name, and the names derived from one. Part of the queue
 * contract: the API refuses a bad URL before enqueueing, and the repository cache applies
 * the same rules again before running git. Only https is always accepted; http and file://
 * only where the server allows them; git's other transports (ssh, git://, ext::, fd::) never.
 */
export interface RepoUrlPolicy {
  allowFileUrls: boolean;
  allowHttpUrls?: boolean;
}

export interface RepoIdentity {
  /** Normalized URL without credentials: the exact URL git is given. */
  url: string;
  owner: string;
  name: string;
}

export class RepoUrlError extends Error {
  override name = "RepoUrlError";
}

export function parseRepoUrl(raw: string, policy: RepoUrlPolicy): RepoIdentity {
  if (raw.startsWith("-")) throw new RepoUrlError("repository URL must not start with '-'");
  if (/[\s\0]/.test(raw)) throw new RepoUrlError("repository URL must not contain whitespace");
  if (/^[a-z][a-z0-9+.-]*::/i.test(raw)) throw new RepoUrlError("git remote helpers (ext::, fd::, ...) are not allowed");
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new RepoUrlError("repository URL is not a valid URL");
  }
  if (u.protocol === "file:") {
    if (!policy.allowFileUrls) throw new RepoUrlError("file:// repository URLs are disabled (ALLOW_FILE_URLS)");
    if (u.host) throw new RepoUrlError("file:// repository URLs name a local path, not a host");
  } else if (u.protocol === "http:") {
    if (!policy.allowHttpUrls) throw new RepoUrlError("http:// repository URLs are disabled (ALLOW_HTTP_URLS); use https");
  } else if (u.protocol !== "https:") {
    throw new RepoUrlError(`repository URL scheme ${u.protocol} is not allowed (https only)`);
  }
  if (u.username || u.password) throw new RepoUrlError("repository URL must not carry credentials; pass a token instead");
  // git is given the normalized host, so it connects to exactly the name that was checked.
  if (u.protocol !== "file:") {
    let host: string;
    try {
      host = normalizeHost(u.hostname);
    } catch (err) {
      if (err instanceof InvalidHostError) throw new RepoUrlError(`repository URL: ${err.message}`);
      throw err;
    }
    u.hostname = host.includes(":") ? `[${host}]` : host;
  }
  const segments = u.pathname.replace(/\/+$/, "").replace(/\.git$/, "").split("/").filter(Boolean);
  const clean = (s: string | undefined, fallback: string) => (s ?? fallback).replace(/[^A-Za-z0-9._-]/g, "_").slice(0, 64) || fallback;
  const name = clean(segments.at(-1), "repo");
  const owner = clean(segments.at(-2), "local");
  return { url: u.toString(), owner, name };
}
