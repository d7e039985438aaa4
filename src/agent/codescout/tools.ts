import { z } from "zod";
import type { Location } from "../policy.js";
import type { TerminalCall } from "../../sandbox/types.js";

/**
 * The two tools CodeScout was trained with, in training order. Names, parameter names,
 * types, enums and required lists are the protocol's (shared/golden/tools.json); only the
 * descriptions are ours.
 */
export const TERMINAL_TOOL = "terminal";
export const FINISH_TOOL = "localization_finish";

export const TOOLS = [
  {
    type: "function",
    function: {
      name: TERMINAL_TOOL,
      description: [
        "Run a bash command in a persistent shell inside the repository's sandbox.",
        "* One command per call; chain several with && or ; instead of newlines.",
        "* The shell keeps its state between calls: working directory, variables, history.",
        "* A command that prints nothing new for 30 seconds returns what it printed so far; send an empty command to wait for more, text with is_input=true to answer it, or C-c with is_input=true to interrupt it.",
        "* timeout sets a hard limit in seconds for a command expected to run long.",
        "* Output longer than 30,000 characters is cut in the middle.",
      ].join("\n"),
      parameters: {
        type: "object",
        properties: {
          command: { type: "string", description: "The bash command to run. Empty to read more output of a running command; C-c (with is_input=true) interrupts it." },
          is_input: { type: "boolean", description: "If true, send the command text to the running process as input instead of starting a new command. Default false." },
          timeout: { type: "number", description: "Optional hard time limit in seconds; when set, the 30 second no-new-output limit does not apply." },
          reset: { type: "boolean", description: "If true, restart the shell. Cannot be combined with is_input." },
          security_risk: {
            type: "string",
            description: "Your own estimate of the command's risk.",
            enum: ["UNKNOWN", "LOW", "MEDIUM", "HIGH"],
          },
        },
        required: ["command", "security_risk"],
      },
    },
  },
  {
    type: "function",
    function: {
      name: FINISH_TOOL,
      description:
        "Finish with the list of code locations that must be modified to resolve the issue. Give class_name and/or function_name where they apply; paths are relative to the repository root.",
      parameters: {
        type: "object",
        properties: {
          locations: {
            type: "array",
            description: "The locations to modify, one entry per separate edit.",
            items: {
              type: "object",
              properties: {
                file: { type: "string", description: "Path of the file relative to the repository root." },
                class_name: { type: "string", description: "The class, when the edit is inside a class." },
                function_name: { type: "string", description: "The function or method, when the edit is inside one." },
              },
              required: ["file"],
            },
          },
        },
        required: ["locations"],
      },
    },
  },
] as const;

export const TOOL_NAMES = TOOLS.map((t) => t.function.name);

/*
 * As lenient as the reference agent's own validation (pydantic in lax mode), which the model was
 * trained against: "30" is a timeout of 30, "false" is false, a null security_risk is none. A
 * refusal there is a turn the model never lost in training.
 */
const laxBoolean = z.preprocess((v) => (v === "true" ? true : v === "false" ? false : v), z.boolean());
const laxNumber = z.preprocess((v) => (typeof v === "string" && v.trim() !== "" && Number.isFinite(Number(v)) ? Number(v) : v), z.number());

const terminalArgs = z
  .object({
    command: z.string(),
    is_input: laxBoolean.optional(),
    timeout: laxNumber.pipe(z.number().min(0)).nullable().optional(),
    reset: laxBoolean.optional(),
    // The model was trained to emit it: accepted and recorded, never required.
    security_risk: z.enum(["UNKNOWN", "LOW", "MEDIUM", "HIGH"]).nullable().optional(),
  })
  .strict()
  .refine((a) => !(a.reset && a.is_input), { message: "reset cannot be used together with is_input" });

/*
 * The reference took what it knew of a location and dropped the rest (a "line" or a "reason"),
 * took `locations` sent as a JSON string, and removed a security_risk from every tool's
 * arguments: each of those was an answer the model gave, refused here and lost for the turn.
 */
const finishArgs = z.object({
  locations: z.preprocess(
    (v) => {
      if (typeof v !== "string") return v;
      try {
        return JSON.parse(v) as unknown;
      } catch {
        return v;
      }
    },
    z.array(
      z.object({
        file: z.string(),
        class_name: z.string().nullable().optional(),
        function_name: z.string().nullable().optional(),
      }),
    ),
  ),
});

export type ParsedCall =
  | { tool: "terminal"; call: TerminalCall; securityRisk?: string }
  | { tool: "finish"; locations: Location[] }
  | { tool: "error"; message: string };

function describe(error: z.ZodError): string {
  return error.issues.map((i) => (i.path.length ? `${i.path.join(".")}: ${i.message}` : i.message)).join("; ");
}

/** The reference's words for arguments it refused, the arguments quoted (capped: they are the model's, and go back into its context). */
const invalid = (name: string, rawArguments: string) => `Error validating args ${rawArguments.length > 2000 ? `${rawArguments.slice(0, 2000)}…` : rawArguments} for tool '${name}': `;

/** Turns one raw tool call of the model into an action, or the error text the model gets back. */
export function parseToolCall(name: string, rawArguments: string): ParsedCall {
  if (!TOOL_NAMES.includes(name as (typeof TOOL_NAMES)[number])) {
    // Worded as the reference agent's messages were, which the model learned to act on.
    return { tool: "error", message: `Tool '${name}' not found. Available: [${TOOL_NAMES.map((t) => `'${t}'`).join(", ")}]` };
  }
  let args: unknown;
  try {
    args = rawArguments.trim() === "" ? {} : JSON.parse(rawArguments);
  } catch (err) {
    return { tool: "error", message: `${invalid(name, rawArguments)}arguments are not valid JSON (${(err as Error).message})` };
  }
  if (name === TERMINAL_TOOL) {
    const parsed = terminalArgs.safeParse(args);
    if (!parsed.success) return { tool: "error", message: `${invalid(name, rawArguments)}${describe(parsed.error)}` };
    const a = parsed.data;
    const call: TerminalCall = { command: a.command };
    if (a.is_input !== undefined) call.is_input = a.is_input;
    if (a.timeout !== undefined && a.timeout !== null) call.timeout = a.timeout;
    if (a.reset !== undefined) call.reset = a.reset;
    return { tool: "terminal", call, ...(a.security_risk ? { securityRisk: a.security_risk } : {}) };
  }
  const parsed = finishArgs.safeParse(args);
  if (!parsed.success) return { tool: "error", message: `${invalid(name, rawArguments)}${describe(parsed.error)}` };
  return {
    tool: "finish",
    locations: parsed.data.locations.map((l) => ({
      file: l.file,
      ...(l.class_name ? { class_name: l.class_name } : {}),
      ...(l.function_name ? { function_name: l.function_name } : {}),
    })),
  };
}
