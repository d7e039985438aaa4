import { InvalidHostError, normalizeHost } from "./addresses.js";

/**
 * Which repository URLs a job may name, and the names derived from one. Part of the queue
 * contract: the API refuses a bad URL before enqueueing, and the repository cache applies
 * the same rules again before running git. Only https is always accepted; http and file://
 * only where the server allows them; an ssh or git:// remote is read as its https form, and
 * git's other transports (ext::, fd::) never.
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

/**
 * The https form of a remote written for ssh or git:// (`git@github.com:owner/name.git`,
 * `ssh://git@host:2222/owner/name`), as `git remote get-url origin` prints it for most
 * checkouts: the same host and path, asked over https, the only transport the service uses.
 * The ssh login and port say nothing about https and are dropped; `password` tells a caller
 * that one was written (a credential, refused). Null for any other form.
 */
export function httpsFormOf(raw: string): { url: string; password: boolean } | null {
  // git's own rule for scp-like syntax: no scheme, and a colon before any slash.
  const scp = /^(?:[^@/:]+@)?([^@/:]+):(?!\/\/)(.+)$/.exec(raw);
  if (scp && !/^[a-z][a-z0-9+.-]*:\/\//i.test(raw)) return { url: httpsOf(scp[1]!, `/${scp[2]!.replace(/^\/+/, "")}`), password: false };
  if (!/^(ssh|git\+ssh|ssh\+git|git):\/\//i.test(raw)) return null;
  try {
    const u = new URL(raw);
    return { url: httpsOf(u.hostname, u.pathname), password: u.password !== "" };
  } catch {
    return null;
  }
}

/** The https address of a host and path written for ssh: the same, but for Azure DevOps, whose ssh host and path are its own (`ssh.dev.azure.com:v3/org/project/repo`). */
function httpsOf(host: string, path: string): string {
  const azure = /^\/v3\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(path);
  if (host.toLowerCase() === "ssh.dev.azure.com" && azure) return `https://dev.azure.com/${azure[1]}/${azure[2]}/_git/${azure[3]}`;
  return `https://${host}${path}`;
}

/**
 * A web page's address in place of the repository's (a branch's or a file's page, as a browser
 * shows it): the repository's address to give instead, or null. GitHub's repositories are
 * `owner/name`; GitLab's pages follow a `-` segment.
 */
function repositoryOfPage(u: URL): string | null {
  const segments = u.pathname.split("/").filter(Boolean);
  const dash = segments.indexOf("-");
  const kept = dash > 0 ? segments.slice(0, dash) : u.hostname === "github.com" && segments.length > 2 ? segments.slice(0, 2) : null;
  return kept ? `${u.protocol}//${u.host}/${kept.join("/").replace(/\.git$/, "")}.git` : null;
}

export function parseRepoUrl(raw: string, policy: RepoUrlPolicy): RepoIdentity {
  if (raw.startsWith("-")) throw new RepoUrlError("repository URL must not start with '-'");
  if (/[\s\0]/.test(raw)) throw new RepoUrlError("repository URL must not contain whitespace");
  if (/^[a-z][a-z0-9+.-]*::/i.test(raw)) throw new RepoUrlError("git remote helpers (ext::, fd::, ...) are not allowed");
  const ssh = httpsFormOf(raw);
  if (ssh?.password) throw new RepoUrlError("repository URL must not carry credentials; pass a token instead");
  let u: URL;
  try {
    u = new URL(ssh?.url ?? raw);
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
  // Azure DevOps' clone address names the organization as the user (`https://org@dev.azure.com/org/…`),
  // and `git remote get-url` prints it so: a name, not a credential, and git is given none.
  if (u.username && !u.password && u.username.toLowerCase() === u.pathname.split("/")[1]?.toLowerCase()) u.username = "";
  if (u.username || u.password) throw new RepoUrlError("repository URL must not carry credentials; pass a token instead");
  // A query (`?private_token=…`) is where a token hides, and it would be stored and echoed in
  // the job as it is; a fragment names nothing git fetches.
  if (u.search || u.hash) throw new RepoUrlError("repository URL must not carry a query or a fragment; pass a token as repo.token");
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
  // After the host is normalized: `github.com.` is github.com.
  const repository = repositoryOfPage(u);
  if (repository) throw new RepoUrlError(`repository URL is a web page's (a branch, a file, a pull request), not the repository's: give ${repository}, and the branch or commit as repo.commit`);
  // One spelling per repository, so that each is mirrored once: no trailing slash, and on GitHub
  // (which serves `owner/name` and `owner/name.git` alike) the `.git` its clone button gives.
  if (u.pathname.length > 1) u.pathname = u.pathname.replace(/\/+$/, "");
  if (u.hostname === "github.com" && u.pathname.split("/").filter(Boolean).length === 2 && !u.pathname.endsWith(".git")) u.pathname += ".git";
  const segments = u.pathname.replace(/\.git$/, "").split("/").filter(Boolean);
  const clean = (s: string | undefined, fallback: string) => (s ?? fallback).replace(/[^A-Za-z0-9._-]/g, "_").slice(0, 64) || fallback;
  const name = clean(segments.at(-1), "repo");
  const owner = clean(segments.at(-2), "local");
  return { url: u.toString(), owner, name };
}
