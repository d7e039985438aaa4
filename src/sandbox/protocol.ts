import { z } from "zod";

/**
 * The JSON lines spoken between the host and docker/sandbox/terminal-server.py over the
 * container's attach stream. Lines from the container are untrusted (the shell runs as the
 * same user as the server and can write to its stdout), so every line is size-bounded and
 * validated before anything reads it.
 */

/** Longest line accepted from the container; results carry at most ~2×40k chars of output. */
export const MAX_LINE_BYTES = 2 * 1024 * 1024;
/** Longest text field; anything larger is a protocol violation, not output. */
const MAX_TEXT = 200_000;

const text = z.string().max(MAX_TEXT);
const pathText = z.string().max(8192);

export const readyMessage = z.object({
  type: z.literal("ready"),
  cwd: pathText,
  python: pathText,
  pid: z.number().int().optional(),
});

const outputFields = {
  output: text,
  output_tail: text.optional(),
  output_omitted: z.number().int().min(0).optional(),
  continued: z.boolean(),
};

const base = { type: z.literal("result"), id: z.number().int().min(0), running: z.boolean() };

export const resultMessage = z.discriminatedUnion("kind", [
  z.object({
    ...base,
    ...outputFields,
    kind: z.literal("completed"),
    history_lines: z.number().int().min(0).nullable(),
    exit_code: z.number().int(),
    cwd: pathText,
    python: pathText,
    special_key: z.boolean(),
  }),
  z.object({ ...base, ...outputFields, kind: z.enum(["soft_timeout", "hard_timeout", "busy"]) }),
  z.object({
    ...base,
    ...outputFields,
    kind: z.literal("shell_exited"),
    exit_code: z.number().int(),
    cwd: pathText,
    python: pathText,
  }),
  z.object({ ...base, kind: z.literal("no_running_command"), reason: z.enum(["empty", "input"]) }),
  z.object({ ...base, kind: z.literal("reset"), cwd: pathText, python: pathText }),
  z.object({ ...base, kind: z.literal("protocol_error"), message: text }),
]);

export const fatalMessage = z.object({ type: z.literal("fatal"), message: z.string().max(4096) });

/** Base64 of at most the server's 48 KiB chunk, with room to spare. */
const EXEC_CHUNK_B64 = 96 * 1024;

export const execDataMessage = z.object({
  type: z.literal("exec_data"),
  id: z.number().int().min(0),
  fd: z.union([z.literal(1), z.literal(2)]),
  b64: z.string().max(EXEC_CHUNK_B64).regex(/^[A-Za-z0-9+/]*={0,2}$/),
});

export const execDoneMessage = z.object({
  type: z.literal("exec_done"),
  id: z.number().int().min(0),
  exit_code: z.number().int(),
  timed_out: z.boolean(),
  truncated: z.boolean(),
  /** The server could not start the process (the sandbox's process limit). */
  unstarted: z.boolean().optional(),
});

export const serverMessage = z.union([readyMessage, resultMessage, fatalMessage, execDataMessage, execDoneMessage]);

export type ReadyMessage = z.infer<typeof readyMessage>;
export type ResultMessage = z.infer<typeof resultMessage>;
export type ServerMessage = z.infer<typeof serverMessage>;
export type ExecMessage = z.infer<typeof execDataMessage> | z.infer<typeof execDoneMessage>;
export type TerminalMessage = Exclude<ServerMessage, ExecMessage>;

/** Output as the server sends it: all of it, or its head and tail with the middle counted. */
export interface CappedOutput {
  output: string;
  output_tail?: string;
  output_omitted?: number;
}

export type HostRequest =
  | { op: "start" }
  | { op: "run"; id: number; command: string; is_input: boolean; timeout: number | null; soft_timeout: number }
  | { op: "reset"; id: number }
  | { op: "cancel"; id: number }
  /** A one-off process; `stdin` is base64, null for none; `timeout` in seconds. */
  | { op: "exec"; id: number; argv: string[]; stdin: string | null; timeout: number; max_bytes: number };

export function encodeRequest(req: HostRequest): string {
  return `${JSON.stringify(req)}\n`;
}

export class ProtocolError extends Error {
  override name = "ProtocolError";
}

/** Parses one line from the container; throws ProtocolError naming what was wrong. */
export function parseServerLine(line: string): ServerMessage {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    throw new ProtocolError(`terminal server sent a line that is not JSON: ${JSON.stringify(line.slice(0, 120))}`);
  }
  const parsed = serverMessage.safeParse(raw);
  if (!parsed.success) {
    throw new ProtocolError(`terminal server sent an invalid message: ${parsed.error.issues[0]?.message ?? "unknown"}`);
  }
  return parsed.data;
}
