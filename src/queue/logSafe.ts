import { stdSerializers } from "pino";

/**
 * Errors as a log line may carry them. An ioredis reply error keeps the command it answered,
 * arguments and all: a refused login (a password rotated, a user disabled, a failover to a node
 * without the user) logged AUTH's username and password on every reconnect, and a refused
 * write its job's data. The command's name says enough.
 */
export function safeErr(err: Error): SerializedError {
  if (!(err instanceof Error)) return err;
  return withoutCommandArgs(stdSerializers.err(err), 0) as SerializedError;
}

/** An error as pino writes it. */
type SerializedError = { [key: string]: unknown; type: string; message: string; stack: string };

function withoutCommandArgs(value: unknown, depth: number): unknown {
  if (depth > 4 || value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((v) => withoutCommandArgs(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    if (key === "command" && v !== null && typeof v === "object" && "args" in v) out.command = { name: (v as { name?: unknown }).name };
    else if (key === "previousErrors" && Array.isArray(v)) out.previousErrors = v.map((e: unknown) => (e instanceof Error ? safeErr(e) : withoutCommandArgs(e, depth + 1)));
    else out[key] = withoutCommandArgs(v, depth + 1);
  }
  return out;
}

/** The loggers' serializers for what holds an error. */
export const ERROR_SERIALIZERS = { err: safeErr, error: safeErr };
