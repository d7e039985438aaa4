/**
 * Text from the service as a terminal shows it, not as it acts on it. Paths, names, evidence
 * and the model's commands come from the repository and the model, both untrusted: an escape
 * sequence among them would move the cursor, rewrite what was printed, set the clipboard
 * (OSC 52) or the window title; bidirectional overrides would reorder what the reader sees.
 * Each such character is shown as its escape (`\x1b`, `\u202e`) instead. Line breaks and tabs
 * are kept only where a caller says the text is made of lines.
 */
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
const CONTROL_OR_BREAK = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

const escaped = (c: string) => {
  const code = c.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
};

export function printable(text: string, options: { lines?: boolean } = {}): string {
  return text.replace(options.lines ? CONTROL : CONTROL_OR_BREAK, escaped);
}
