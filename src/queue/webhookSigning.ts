import { createHmac } from "node:crypto";

/**
 * A finished job, POSTed to its callback_url and signed so the receiver can check it came
 * from us and is fresh: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" under the secret>.
 */
export function signWebhook(body: string, secret: string, timestamp = Math.floor(Date.now() / 1000)): string {
  const mac = createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex");
  return `t=${timestamp},v1=${mac}`;
}

/**
 * One API key's own webhook secret, derived from WEBHOOK_SECRET: a receiver that checks it
 * takes only that key's webhooks. With WEBHOOK_SECRET alone, every key that checks its
 * webhooks holds the secret that signs every other key's, and can forge them; and another key's
 * jobs could be pointed at its receiver, signed alike.
 */
export function keyWebhookSecret(secret: string, owner: string): string {
  return createHmac("sha256", secret).update(`codescout webhook key\u0000${owner}`).digest("hex");
}

/** The header signed with the job's key's own secret. */
export const KEY_SIGNATURE_HEADER = "X-CodeScout-Key-Signature";
