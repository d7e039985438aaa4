import { randomUUID } from "node:crypto";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { setTimeout as sleep } from "node:timers/promises";
import pRetry from "p-retry";
import type { JobEvent } from "../store/events.js";
import type { JobView } from "../store/jobStore.js";
import type { UploadInfo } from "../uploads/store.js";

/**
 * A client of the service's REST API, for the programs that run on a developer's machine
 * (the `localize` CLI and the stdio MCP server): they talk to a service URL like any other
 * client and never reach the service's parts directly.
 */
export class ServiceRefused extends Error {
  override name = "ServiceRefused";
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

export class ServiceUnreachable extends Error {
  override name = "ServiceUnreachable";
}

export class ServiceClient {
  readonly baseUrl: string;
  private readonly headers: Record<string, string>;
  /** The service answered this client before (any answer): one it cannot reach now is restarting, not misnamed. */
  private answeredOnce = false;

  constructor(baseUrl: string, apiKey?: string) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.headers = apiKey ? { authorization: `Bearer ${apiKey}` } : {};
  }

  /** Whether the service has answered this client: where it has, a call it cannot reach waits out a restart. */
  get reached(): boolean {
    return this.answeredOnce;
  }

  /** POST /v1/localize; resolves with the accepted (or already finished) job. */
  async submit(body: unknown): Promise<JobView> {
    // One key for the request and its retries, so a retry never queues the job twice.
    return this.json<JobView>("POST", "/v1/localize", { body: JSON.stringify(body), contentType: "application/json", headers: { "idempotency-key": randomUUID() } });
  }

  async job(id: string, waitS = 0): Promise<JobView> {
    return this.json<JobView>("GET", `/v1/jobs/${encodeURIComponent(id)}${waitS > 0 ? `?wait=${waitS}` : ""}`);
  }

  async cancel(id: string): Promise<void> {
    await this.json("DELETE", `/v1/jobs/${encodeURIComponent(id)}`).catch((err: unknown) => {
      // Already ended: nothing left to cancel.
      if (!(err instanceof ServiceRefused && err.status === 409)) throw err;
    });
  }

  /** The upload's info when the service holds it, else null. */
  async upload(id: string): Promise<UploadInfo | null> {
    try {
      return await this.json<UploadInfo>("GET", `/v1/uploads/${id}`);
    } catch (err) {
      if (err instanceof ServiceRefused && err.status === 404) return null;
      throw err;
    }
  }

  /**
   * POST /v1/uploads with the archive as it is produced. Through node:http, not fetch: fetch
   * carries a body through a web stream, which made a 50 MB upload ~40% slower over loopback.
   * A refusal that says when to ask again (503: the service could not keep it; 429) is sent
   * again then, like the other calls, when the archive can be had again: a buffer, or a
   * function that makes it (a stream is read once). Given up (`signal`), the send stops at once.
   */
  async sendUpload(archive: Buffer | Readable | (() => Promise<Buffer | Readable>), signal?: AbortSignal): Promise<UploadInfo> {
    const again = typeof archive === "function" || Buffer.isBuffer(archive);
    const until = Date.now() + RESTART_RIDE_OUT_MS;
    for (let attempt = 1; ; attempt++) {
      signal?.throwIfAborted();
      const answer = await this.postUpload(typeof archive === "function" ? await archive() : archive, signal).catch(async (err: unknown) => {
        // A restart of the service is waited out, when the archive can be had again.
        if (!again || !this.restarting(err, until)) throw err;
        await sleep(restartWait(attempt), undefined, { signal });
        return null;
      });
      if (!answer) continue;
      const { status, body, retryAfter } = answer;
      let parsed: unknown = null;
      try {
        parsed = JSON.parse(body);
      } catch {
        /* not JSON: judged by the status below */
      }
      if (status >= 200 && status < 300 && parsed) return parsed as UploadInfo;
      const wait = again && retryWait(status, retryAfter, attempt);
      if (!wait) throw refusalOf(status, parsed, `HTTP ${status}`);
      await sleep(wait, undefined, { signal });
    }
  }

  private postUpload(archive: Buffer | Readable, signal?: AbortSignal): Promise<{ status: number; body: string; retryAfter: string | null }> {
    const url = new URL(`${this.baseUrl}/v1/uploads`);
    const headers: Record<string, string | number> = { ...this.headers, "content-type": "application/gzip" };
    if (Buffer.isBuffer(archive)) headers["content-length"] = archive.length;
    return new Promise((resolve, reject) => {
      // The request dies with the signal (and the archive's pipe with it): the rest is not sent.
      const req = (url.protocol === "https:" ? httpsRequest : httpRequest)(url, { method: "POST", headers, signal }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          this.answeredOnce = true;
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8"), retryAfter: headerOf(res.headers["retry-after"]) });
        });
        res.on("error", reject);
      });
      // A refusal may come (and the connection close) before the whole archive is sent: the
      // answer counts, not the broken pipe.
      let requestError: Error | undefined;
      req.on("error", (err) => {
        requestError = err;
        if (signal?.aborted) reject(signal.reason);
        else setTimeout(() => reject(new ServiceUnreachable(`cannot reach the service at ${this.baseUrl}: ${err.message}`)), 50);
      });
      if (Buffer.isBuffer(archive)) req.end(archive);
      else
        pipeline(archive, req).catch((err: unknown) => {
          // The archive's own failure (tar could not read the checkout) is the caller's; the
          // request's, which the pipeline hands the archive too, is said above as the service's.
          if (archive.errored && archive.errored !== requestError) reject(err);
        });
    });
  }

  /**
   * Follows a job to its end: each event goes to `onEvent`; when `signal` fires (the caller
   * gave up) the job is cancelled. Resolves with the job's final record. A queued job the service
   * says no worker is there to take (`no_worker`) is cancelled too, and ends with that reason: the
   * caller is told why instead of waiting for a worker that may never start. A running one whose
   * worker died is not: it resolves still running, with that reason, for a worker to take up.
   */
  async follow(view: JobView, hooks: { signal?: AbortSignal; onEvent?: (event: JobEvent) => void } = {}): Promise<JobView> {
    if (hasEnded(view)) return view;
    let cancelling: Promise<void> | undefined;
    const onAbort = () => void (cancelling = this.cancel(view.id).catch(() => undefined));
    hooks.signal?.addEventListener("abort", onAbort, { once: true });
    if (hooks.signal?.aborted) onAbort();
    try {
      // The stream's last event id: a stream that drops (the API restarting) resumes after it.
      let last: string | undefined;
      let ended = false;
      for (;;) {
        try {
          for await (const { id, event } of this.events(view.id, hooks.signal, last)) {
            if (id) last = id;
            ended ||= FINAL_EVENTS.includes(event.type);
            hooks.onEvent?.(event);
            if (event.type === "no_worker") {
              const error = { code: "no_worker" as const, message: String(event.data?.message ?? "no worker is running") };
              // Running, its worker gone: it goes on when a worker starts, so it is not cancelled; the caller is told.
              if (event.data?.status === "running") {
                const now = await this.job(view.id);
                if (now.status === "running") return { ...now, error };
                continue;
              }
              await this.cancel(view.id);
              const now = await this.job(view.id);
              if (now.status !== "cancelled") continue;
              return { ...now, error };
            }
          }
        } catch (err) {
          if (hooks.signal?.aborted) return { ...view, status: "cancelled" };
          // A dropped stream is not the job's end: its record says how it ended.
          if (!(err instanceof ServiceUnreachable) && (err as Error).name !== "TypeError" && !isPassing(err)) throw err;
        }
        // The end is announced just before the result is stored: after it, a short wait covers the lag.
        const current = await this.jobRidingOut(view.id, ended ? 5 : 0, hooks.signal).catch((err: unknown) => {
          if (hooks.signal?.aborted) return { ...view, status: "cancelled" as const };
          throw err;
        });
        if (hasEnded(current) || hooks.signal?.aborted) return current;
        // Still running: the stream is opened again, after a breath so a failing one is not hammered.
        await sleep(1000, undefined, hooks.signal ? { signal: hooks.signal } : undefined).catch(() => undefined);
      }
    } finally {
      hooks.signal?.removeEventListener("abort", onAbort);
      // The cancellation is sent before this returns: a CLI that exits on its answer (Ctrl-C) would
      // otherwise exit before the DELETE left, and the job would go on. Not waited on for long: the
      // service answers a running job's cancellation once it has ended (up to 5 s).
      if (cancelling) {
        const sent = new AbortController();
        await Promise.race([cancelling, sleep(CANCEL_WAIT_MS, undefined, { signal: sent.signal }).catch(() => undefined)]);
        sent.abort();
      }
    }
  }

  /**
   * The job's record, asked again while the service cannot be reached or the proxy in front of
   * it says it is away (502-504), for up to RIDE_OUT_MS: a deploy or a restart of the API is not
   * the job's end, and the job goes on in the queue.
   */
  private jobRidingOut(id: string, waitS: number, signal?: AbortSignal): Promise<JobView> {
    return pRetry(() => this.job(id, waitS), {
      retries: Number.MAX_SAFE_INTEGER,
      maxRetryTime: RIDE_OUT_MS,
      minTimeout: 1000,
      maxTimeout: 10_000,
      ...(signal ? { signal } : {}),
      shouldRetry: ({ error }) => error instanceof ServiceUnreachable || isPassing(error),
    });
  }

  /** The job's events until its last one (Server-Sent Events), after `after` (a stream's event id) when given. */
  async *events(id: string, signal?: AbortSignal, after?: string): AsyncGenerator<{ id?: string; event: JobEvent }> {
    const res = await this.fetch("GET", `/v1/jobs/${encodeURIComponent(id)}/events`, { signal, ...(after ? { headers: { "last-event-id": after } } : {}) });
    if (!res.ok || !res.body) throw refusalOf(res.status, await res.json().catch(() => null), res.statusText);
    const decoder = new TextDecoder();
    let buffer = "";
    for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const data = /^data: (.*)$/m.exec(block)?.[1];
        const eventId = /^id: (.*)$/m.exec(block)?.[1];
        if (data) yield { ...(eventId ? { id: eventId } : {}), event: JSON.parse(data) as JobEvent };
      }
    }
  }


  private async fetch(method: string, path: string, init: CallInit = {}): Promise<Response> {
    const headers: Record<string, string> = { ...this.headers, ...init.headers, ...(init.contentType ? { "content-type": init.contentType } : {}) };
    try {
      const res = await fetch(`${this.baseUrl}${path}`, { method, headers, body: init.body, signal: init.signal });
      this.answeredOnce = true;
      return res;
    } catch (err) {
      if ((err as Error).name === "AbortError") throw err;
      // fetch says only "fetch failed"; what failed (ECONNREFUSED, ENOTFOUND) is in its cause.
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new ServiceUnreachable(`cannot reach the service at ${this.baseUrl}: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
    }
  }

  /**
   * A refusal that says when to ask again (503: the service's Redis is away; 429: a rate limit;
   * 409: the same Idempotency-Key still being accepted) is asked again then, a few times and
   * never after more than RETRY_AFTER_MAX_S at once: a blip is not the caller's failure.
   */
  private async json<T>(method: string, path: string, init: CallInit = {}): Promise<T> {
    const until = Date.now() + RESTART_RIDE_OUT_MS;
    for (let attempt = 1; ; attempt++) {
      // Unanswered (null) while the service restarts.
      const res = await this.fetch(method, path, init).catch((err: unknown) => (this.restarting(err, until) ? null : Promise.reject(err)));
      if (res?.ok) return (await res.json()) as T;
      if (res) {
        const wait = retryWait(res.status, res.headers.get("retry-after"), attempt);
        if (wait) {
          await res.body?.cancel();
          await sleep(wait);
          continue;
        }
        const refusal = refusalOf(res.status, await res.json().catch(() => null), res.statusText);
        // A proxy's 502-504, or the service's own 503 as it closes (Fastify's, with no body): a restart.
        if (!this.restarting(refusal, until)) throw refusal;
      }
      await sleep(restartWait(attempt), undefined, init.signal ? { signal: init.signal } : undefined);
    }
  }

  /**
   * Whether `err` is a service going through a restart, to wait out until `until`: unreachable, or
   * a proxy's (or its own closing) 502-504, where the service has answered this client before.
   * A service never reached is misnamed, or not started: that is said at once. Every call so
   * waited is safe to send again (a submission carries its own Idempotency-Key).
   */
  private restarting(err: unknown, until: number): boolean {
    return this.answeredOnce && Date.now() < until && (err instanceof ServiceUnreachable || isPassing(err));
  }
}

interface CallInit {
  body?: string;
  contentType?: string;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

const RETRIED = new Set([409, 429, 503]);
const RIDE_OUT_MS = 120_000;
/** How long a follow that was given up waits for its job's cancellation to be answered. */
const CANCEL_WAIT_MS = 3_000;

// Kept here rather than imported: the client's bundle takes only types from the service's modules.
const hasEnded = (view: JobView) => ["succeeded", "failed", "cancelled"].includes(view.status);
const FINAL_EVENTS: readonly string[] = ["finished", "failed", "cancelled"];

/** What a proxy in front says while the service behind it is away (a restart): asked again. */
const isPassing = (err: unknown) => err instanceof ServiceRefused && err.status >= 502 && err.status <= 504;
const RETRIES = 4;
const RETRY_AFTER_MAX_S = 30;
/** How long a call waits out a restart of a service that answered it before (a deploy's restart: seconds). */
const RESTART_RIDE_OUT_MS = 60_000;
/** 0.5, 1, 2, then 4 s between tries while a service restarts. */
const restartWait = (attempt: number) => Math.min(4_000, 500 * 2 ** (attempt - 1));

/** How long to wait before asking again (ms), or 0 when this refusal is the answer. */
function retryWait(status: number, retryAfter: string | null, attempt: number): number {
  const wait = Number(retryAfter);
  return RETRIED.has(status) && attempt < RETRIES && wait > 0 && wait <= RETRY_AFTER_MAX_S ? wait * 1000 : 0;
}

const headerOf = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value) ?? null;

/** The service's error body (`{error: {code, message, field}}`) as a ServiceRefused. */
function refusalOf(status: number, body: unknown, statusText: string): ServiceRefused {
  const e = (body as { error?: { code?: string; message?: string; field?: string } } | null)?.error;
  return new ServiceRefused(status, e?.code ?? `http_${status}`, e?.message ?? statusText, e?.field);
}
