import { Redis, type RedisOptions } from "ioredis";

/**
 * BullMQ needs `maxRetriesPerRequest: null` on connections that block (workers); the API's
 * connection gives up on a command after a few reconnect attempts so that a request
 * fails instead of hanging on a dead Redis.
 */
export function createRedis(url: string, role: "producer" | "worker", onError: (err: Error) => void = quiet): Redis {
  // A Redis that hangs (stopped, swapping, a long command) held every request, /readyz's too, for
  // as long as it did; a producer's command gives up after this and its request answers 503.
  const options = role === "worker" ? { maxRetriesPerRequest: null } : { maxRetriesPerRequest: 3, commandTimeout: PRODUCER_COMMAND_MS };
  return withErrorListener(new Redis(url, options), onError);
}

/** The longest a producer's command (the API's) waits for Redis: an upload's archive written to Redis included. */
const PRODUCER_COMMAND_MS = 10_000;

/**
 * ioredis writes the errors of a connection nobody listens to straight to stderr, outside the
 * service's log, once per reconnect attempt. What matters of them reaches the caller anyway (a
 * command fails; readyz says Redis is down), so by default they are dropped here.
 */
export function withErrorListener(redis: Redis, onError: (err: Error) => void = quiet): Redis {
  redis.on("error", onError);
  return redis;
}

const quiet = () => undefined;

/** What `work` gives within `ms`, else undefined (failing counts as not giving): a dead Redis must not hang the step. */
export async function within<T>(work: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), ms)));
  try {
    return await Promise.race([work.catch(() => undefined), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Waits for `work` at most `ms`, whatever it settles to. */
export async function atMost(work: Promise<unknown>, ms: number): Promise<void> {
  await within(work, ms);
}

/**
 * A connection's errors as a process logs them: every connection reports each failed reconnect,
 * and BullMQ again (a Redis outage of 16 s was 130 lines, an alert on error logs firing for each),
 * so one warning a minute while it lasts, naming Redis by its address and the error by its text.
 */
export function redisAwayReporter(redisUrl: string, warn: (fields: Record<string, unknown>, line: string) => void): (err: Error) => void {
  let said = 0;
  return (err) => {
    if (Date.now() - said < 60_000) return;
    said = Date.now();
    warn({ redis: redisAddress(redisUrl), err: err.message }, "Redis unreachable; reconnecting (said once a minute while it lasts)");
  };
}

/** The one line a process says when it cannot start: what failed, and Redis named when it is the cause. */
export function cannotStartLine(process: string, err: Error, redisUrl: string): string {
  const redis = isRedisUnreachable(err) ? ` (Redis at ${redisAddress(redisUrl)} is unreachable)` : "";
  return `${process}: could not start: ${err.message}${redis}\n`;
}

/**
 * Waits (a bounded time: Redis may be down) for BullMQ objects to finish connecting before they
 * are closed. Closed while still initializing, BullMQ disconnects instead of quitting, and its
 * own init commands (CLIENT SETNAME, INFO) then reject with nothing awaiting them: an unhandled
 * rejection (taskforcesh/bullmq's RedisConnection.close; CI failed on one).
 */
export async function settleConnections(objects: Array<{ waitUntilReady(): Promise<unknown> } | null | undefined>, waitMs = 2000): Promise<void> {
  await atMost(Promise.all(objects.map((o) => o?.waitUntilReady())), waitMs);
}

/**
 * Closes a connection after the replies it is still owed: `disconnect` alone rejects the
 * commands in flight ("Connection is closed"), an unhandled rejection when nobody awaits them
 * any more. Bounded, for a Redis that has gone away.
 */
export async function closeRedis(redis: Redis, waitMs = 1000): Promise<void> {
  await atMost(redis.quit(), waitMs);
  redis.disconnect();
}

/**
 * Connection options (not a connection) for BullMQ objects that should own theirs, such as
 * QueueEvents: BullMQ then closes it itself, after its blocking read has stopped.
 */
export function redisOptions(url: string): RedisOptions {
  const u = new URL(url);
  return {
    host: u.hostname,
    port: Number(u.port || 6379),
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.pathname.length > 1 ? { db: Number(u.pathname.slice(1)) } : {}),
    ...(u.protocol === "rediss:" ? { tls: {} } : {}),
    maxRetriesPerRequest: null,
  };
}

/** Where a Redis URL points, without its credentials: for messages. */
export function redisAddress(url: string): string {
  const u = new URL(url);
  return `${u.hostname}:${u.port || 6379}`;
}

/** Redis at its `maxmemory` with `noeviction` (docs/deployment.md): it refuses writes until jobs expire. */
export function isRedisFull(err: Error): boolean {
  if (err.name !== "ReplyError") return false;
  // A transaction refused for it says EXECABORT, the OOM in the errors it carries.
  const previous = (err as Error & { previousErrors?: Error[] }).previousErrors ?? [];
  return [err, ...previous].some((e) => e.message.startsWith("OOM "));
}

/**
 * Whether Redis is at its `maxmemory` and refusing writes (noeviction): asked of INFO, since a
 * full Redis still answers PING and reads. One that evicts sits at its maxmemory and takes
 * writes (dropping others' keys): not full, or workers paused and resumed on every look.
 */
export async function redisAtMaxMemory(redis: Redis): Promise<boolean> {
  const info = await redis.info("memory");
  const field = (name: string) => Number(new RegExp(`^${name}:(\\d+)`, "m").exec(info)?.[1] ?? 0);
  const max = field("maxmemory");
  const refusesWrites = /^maxmemory_policy:noeviction\s*$/m.test(info);
  return refusesWrites && max > 0 && field("used_memory") >= max;
}

/** Redis's eviction policy (INFO memory's maxmemory_policy). */
export async function evictionPolicy(redis: Redis): Promise<string | undefined> {
  return /^maxmemory_policy:(\S+)/m.exec(await redis.info("memory"))?.[1];
}

/**
 * Said at error by both processes at their start when Redis evicts: BullMQ's own warning went to
 * stderr, outside the log, and a managed Redis's common default (allkeys-lru) drops keys the
 * service counts on, whatever their age.
 */
export function evictionLine(policy: string): string | null {
  return policy === "noeviction" ? null : `Redis evicts keys (maxmemory-policy ${policy}): a queued job, an answer, an Idempotency-Key or a rate budget can vanish when it is full; set maxmemory-policy noeviction (docs/deployment.md, Redis)`;
}

/**
 * Redis refuses this service's login or its rights (a password rotated, a user disabled, a
 * failover to a node without the user): the operator's to mend, not the request's fault.
 */
export function isRedisRefusingLogin(err: Error): boolean {
  const previous = (err as Error & { previousErrors?: Error[] }).previousErrors ?? [];
  return [err, ...previous].some((e) => /^(WRONGPASS|NOAUTH|NOPERM)\b/.test(e.message));
}

/**
 * Why a connection to Redis fails when Redis is down or away: refused, its name gone (a compose
 * service stopped), no route, no answer. The service's own DNS lookups (repository and callback
 * hosts) are reported as HostPolicyError, never with these codes.
 */
const UNREACHABLE = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH"]);

/**
 * A Redis client gave up on a command (its connection is down and did not come back within
 * its retries), or could not connect at all: a condition of the service, not of the request.
 */
export function isRedisUnreachable(err: Error): boolean {
  return err.name === "MaxRetriesPerRequestError" || err.message === "Connection is closed." || isCommandTimeout(err) || UNREACHABLE.has((err as NodeJS.ErrnoException).code ?? "");
}

/** A command given up after its commandTimeout: Redis may still run it, so what it did is unknown. */
export function isCommandTimeout(err: Error): boolean {
  return err.message === "Command timed out";
}
