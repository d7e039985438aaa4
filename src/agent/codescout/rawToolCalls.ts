/**
 * vLLM's hermes parser gives up on a whole reply when any one `<tool_call>` block in it is
 * not valid JSON, and returns everything as plain text. We parse those blocks ourselves,
 * leniently, so that one stray comma does not cost the model its turn.
 */
export interface RawToolCall {
  name: string;
  arguments: string;
}

export interface RawParse {
  calls: RawToolCall[];
  /** The reply text outside the tool-call blocks. */
  text: string;
  /** Blocks that could not be read even leniently. */
  unreadable: number;
}

const MAX_BLOCKS = 16;
const MAX_BLOCK_CHARS = 200_000;

export function parseRawToolCalls(content: string): RawParse {
  const calls: RawToolCall[] = [];
  let unreadable = 0;
  const re = /<tool_call>([\s\S]*?)(?:<\/tool_call>|$)/g;
  let text = content;
  let match: RegExpExecArray | null;
  let blocks = 0;
  while ((match = re.exec(content)) !== null && blocks < MAX_BLOCKS) {
    blocks++;
    text = text.replace(match[0], "");
    const body = (match[1] ?? "").slice(0, MAX_BLOCK_CHARS);
    const call = readBlock(body);
    if (call) calls.push(call);
    else unreadable++;
    if (match[0].length === 0) re.lastIndex++;
  }
  return { calls, text: text.trim(), unreadable };
}

/**
 * JSON text without the commas right before a `}` or `]`, outside strings only: a command is
 * a string, and `rg '[0-9]{2,}'` must run as the model wrote it.
 */
function withoutTrailingCommas(json: string): string {
  let out = "";
  let inString = false;
  for (let i = 0; i < json.length; i++) {
    const c = json[i]!;
    if (inString) {
      out += c;
      if (c === "\\") out += json[++i] ?? "";
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    if (c === ",") {
      let j = i + 1;
      while (j < json.length && /\s/.test(json[j]!)) j++;
      if (json[j] === "}" || json[j] === "]") continue;
    }
    out += c;
  }
  return out;
}

function readBlock(body: string): RawToolCall | null {
  const start = body.indexOf("{");
  const end = body.lastIndexOf("}");
  if (start < 0 || end <= start) return null;
  const candidates = [body.slice(start, end + 1)];
  // The usual slips of a small model: trailing commas, and unbalanced closing braces.
  candidates.push(withoutTrailingCommas(candidates[0]!));
  for (let extra = 1; extra <= 2; extra++) candidates.push(candidates[1]! + "}".repeat(extra));
  candidates.push(candidates[1]!.replace(/}\s*}$/, "}"));
  for (const c of candidates) {
    try {
      const obj = JSON.parse(c) as unknown;
      if (obj && typeof obj === "object" && typeof (obj as { name?: unknown }).name === "string") {
        const { name, arguments: args } = obj as { name: string; arguments?: unknown };
        const argText = typeof args === "string" ? args : pythonJson(args ?? {});
        return { name, arguments: argText };
      }
    } catch {
      /* try the next repair */
    }
  }
  return null;
}

/**
 * JSON as vLLM writes a parsed call's arguments (Python's json.dumps: ", " and ": " between
 * items), so a call read here shows in the history as the server's own calls do.
 */
function pythonJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(pythonJson).join(", ")}]`;
  if (value && typeof value === "object") return `{${Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}: ${pythonJson(v)}`).join(", ")}}`;
  return JSON.stringify(value) ?? "null";
}
