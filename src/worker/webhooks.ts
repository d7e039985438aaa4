import { request as httpRequest, type RequestOptions } from "node:http";
import { request as httpsRequest } from "node:https";
import { isIP, type LookupFunction } from "node:net";
import { DelayedError, type Job, UnrecoverableError } from "bullmq";
import type { HostGuard } from "../queue/hostPolicy.js";
import type { WebhookPayload } from "../queue/contract.js";
import { hasEnded, type JobStore, type JobView } from "../store/jobStore.js";
import { ANONYMOUS } from "../queue/contract.js";
import { KEY_SIGNATURE_HEADER, keyWebhookSecret, signWebhook } from "../queue/webhookSigning.js";

export class WebhookError extends Error {
  override name = "WebhookError";
}

/**
 * Delivers one webhook. The host is checked at delivery (a name that resolved to a public
 * address at submission may not now) and the connection goes to exactly the addresses
 * checked: the socket's own lookup is replaced, so nothing resolves the name again.
 * Redirects are never followed.
 */
export async function deliverWebhook(url: string, view: JobView, secret: string, hosts: HostGuard, timeoutMs = 10_000): Promise<number> {
  const target = new URL(url);
  const checked = await hosts.check(target, "callback_url");
  const body = JSON.stringify(view);
  const pinned: LookupFunction = (_hostname, options, callback) => {
    const list = checked.addresses.map((address) => ({ address, family: isIP(address) }));
    if ((options as { all?: boolean }).all) (callback as (e: null, a: typeof list) => void)(null, list);
    else callback(null, list[0]!.address, list[0]!.family);
  };
  const options: RequestOptions = {
    method: "POST",
    lookup: pinned,
    headers: {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(body),
      "user-agent": "codescout-service",
      "x-codescout-signature": signWebhook(body, secret),
      [KEY_SIGNATURE_HEADER.toLowerCase()]: signWebhook(body, keyWebhookSecret(secret, view.owner)),
      "x-codescout-job": view.id,
    },
    // The socket's idle time is not enough: a receiver that sends a byte every few seconds
    // would hold the delivery, and its worker slot, for ever. The whole delivery is bounded.
    timeout: timeoutMs,
    signal: AbortSignal.timeout(timeoutMs),
  };
  const send = target.protocol === "https:" ? httpsRequest : httpRequest;
  const status = await new Promise<number>((resolve, reject) => {
    const req = send(target, options, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    const late = () => new WebhookError(`callback did not answer within ${timeoutMs} ms`);
    req.on("timeout", () => req.destroy(late()));
    req.on("error", (err) => reject(options.signal?.aborted ? late() : err));
    req.end(body);
  });
  if (status < 200 || status >= 300) throw new WebhookError(`callback answered ${status}`);
  return status;
}

/**
 * Deliveries one worker makes at once to one receiver, and for one API key, of the 32 it makes
 * in all: a receiver that never answers holds 4 slots; a key whose jobs name 8 such receivers
 * still holds 8, and every other key's webhooks go out meanwhile (with auth off, one key for all,
 * receivers alone are capped).
 */
const WEBHOOKS_PER_RECEIVER = 4;
const WEBHOOKS_PER_OWNER = 8;

/** How soon a webhook whose job's end is not recorded yet is looked at again. */
const NOT_ENDED_RECHECK_MS = 2_000;

/** A callback URL's receiver: its host and port. */
function receiverOf(url: string): string {
  try {
    return new URL(url).host.toLowerCase();
  } catch {
    return url;
  }
}

/** Slots in use per key, each key capped. */
class Slots {
  private readonly used = new Map<string, number>();
  constructor(private readonly cap: number) {}
  take(key: string): boolean {
    const n = this.used.get(key) ?? 0;
    if (n >= this.cap) return false;
    this.used.set(key, n + 1);
    return true;
  }
  give(key: string): void {
    const left = (this.used.get(key) ?? 1) - 1;
    if (left > 0) this.used.set(key, left);
    else this.used.delete(key);
  }
}

/** The webhook queue's job, as a worker runs it: the job's end, delivered to its callback. */
export function webhookProcessor(store: JobStore, secret: string, hosts: HostGuard) {
  const receivers = new Slots(WEBHOOKS_PER_RECEIVER);
  const owners = new Slots(WEBHOOKS_PER_OWNER);
  /** Looked at again in `ms`, spending no attempt. */
  const later = async (job: Job<WebhookPayload>, token: string | undefined, ms: number): Promise<never> => {
    await job.moveToDelayed(Date.now() + ms, token);
    throw new DelayedError();
  };
  return async (job: Job<WebhookPayload>, token?: string): Promise<{ status: number }> => {
    const view = await store.get(job.data.jobId);
    // Gone (past JOB_TTL_S, its retries having outlasted it): nothing to deliver, and said so.
    if (!view) throw new UnrecoverableError("the job is gone (kept JOB_TTL_S), so there is nothing to deliver");
    // Queued by the worker just before it records the end: looked at again until the record
    // says it (its worker may have died there, and the job's retry take the job's whole time
    // limit; a webhook failed meanwhile would stay failed).
    if (!hasEnded(view)) return later(job, token, NOT_ENDED_RECHECK_MS);
    // Receivers and keys past their share wait their turn: one receiver that never answered, or
    // one key's many, held every slot, and everyone's webhooks queued behind them.
    const receiver = receiverOf(job.data.url);
    const retry = () => later(job, token, 500 + Math.floor(Math.random() * 1000));
    // With auth off every job is "anonymous": one key's cap would be the whole service's.
    const owner = view.owner === ANONYMOUS ? undefined : view.owner;
    if (!receivers.take(receiver)) return retry();
    if (owner !== undefined && !owners.take(owner)) {
      receivers.give(receiver);
      return retry();
    }
    try {
      return { status: await deliverWebhook(job.data.url, view, secret, hosts) };
    } finally {
      receivers.give(receiver);
      if (owner !== undefined) owners.give(owner);
    }
  };
}
