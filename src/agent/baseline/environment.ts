/**
 * The part of an issue that describes the reporter's machine rather than the bug: sections
 * headed "Versions", "Environment", "System information", "pip list" (what issue templates
 * ask for), lines that are a package and its version, and templates' checklists. Their names
 * are real identifiers (`system_ssl`, `openssl_version`, `nc_time_axis`), so left in they pull
 * every issue of a repository towards the one file that prints versions, or towards back-ends.
 * Templates' hidden instructions (HTML comments) and layout tags go for the same reason.
 */

/** A heading that announces the reporter's environment. */
const ENV_HEADING =
  /\b(versions?|environment|system|os(?!\.)|platform|dependencies|installation|installed|pip (list|freeze)|conda (list|info))\b/i;

/**
 * A package (or interpreter) and its version, alone on a line: `numpy: 1.21.0`, `pytest==7.1`,
 * `- Python 3.9.7 (main, …)`. Three-part versions (or `==`) only: `linewidth: 2.5` is a setting.
 */
const VERSION_LINE =
  /^\s*(?:[-*]\s+)?[`'"]?[A-Za-z][\w.+-]*(?: [A-Za-z][\w.+-]*){0,2}[`'"]?\s*(?:(?::|\s)\s*[`'"]?v?\d+\.\d+\.\d+|==\s*\d+(?:\.\d+)+)[\w.+-]*[`'"]?,?\s*(?:[([].*)?$/;

/** A ticked or unticked checklist item: templates' boilerplate ("I searched the existing issues"), not the bug. */
const TASK_ITEM = /^\s*[-*]\s+\[[ xX]\]\s/;

/**
 * A line that opens or closes a fenced code block (issue terms split prose from code on it too).
 * Backticks that close on the same line (```name``` in a sentence) are inline code, as in CommonMark.
 */
export const FENCE = /^\s*(```(?!.*`)|~~~)/;

/**
 * Markup GitHub renders as layout, not words: left in, `</details>` and `<tt>` are read as
 * issue words. Only layout tags: `<select multiple>` or `<input>` in prose may be the bug.
 */
const LAYOUT_TAG = /<\/?(?:details|summary|br|tt|sub|sup|kbd|img|hr)\b[^>\n]*>/gi;

/**
 * The issue without HTML comments outside code. Templates put their instructions in comments
 * (`<!-- Example: … from sklearn.decomposition import … -->`, `import numpy; print(numpy.__version__)`);
 * the rendered issue never shows them and the reporter did not write them, yet their names are
 * real identifiers. An unclosed `<!--` is kept: a stray one in prose is likelier than a template.
 */
function dropComments(text: string): string {
  let out = "";
  let inFence = false;
  let i = 0;
  while (i < text.length) {
    const eol = text.indexOf("\n", i);
    const end = eol < 0 ? text.length : eol + 1;
    const line = text.slice(i, end);
    if (FENCE.test(line)) inFence = !inFence;
    const open = inFence ? -1 : line.indexOf("<!--");
    const close = open < 0 ? -1 : text.indexOf("-->", i + open + 4);
    if (close < 0) {
      out += line;
      i = end;
      continue;
    }
    // The comment may span lines (and hold fences of its own); go on after it, on the same line.
    out += line.slice(0, open) + " ";
    i = close + 3;
  }
  return out;
}

/** The heading's text if the line is one (markdown, bold line, a short line ending in a colon, an HTML summary). */
function headingText(line: string, next: string | undefined): string | null {
  const m =
    /^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$/.exec(line) ??
    /^\s*\*\*([^*\n]{1,60})\*\*\s*:?\s*$/.exec(line) ??
    /^\s*<summary>(.{1,80}?)<\/summary>\s*$/i.exec(line) ??
    /^\s*([A-Za-z][\w /-]{1,40}):\s*$/.exec(line);
  // Long headings are about the bug ("Installation of extras fails on Windows"), not the machine.
  if (m) return (m[1] ?? "").split(/\s+/).length <= 5 ? (m[1] ?? "") : "";
  // Setext (and reStructuredText) headings: the text, then a line of - or =.
  if (next !== undefined && /^\s*[-=]{3,}\s*$/.test(next) && /^\s*[A-Za-z][\w ./-]{1,60}$/.test(line)) return line.trim();
  return null;
}

/**
 * The issue without its environment sections, version lines, template comments and layout
 * tags. The title (first line) is always kept; a section runs to the next heading or the end
 * of its `<details>` block.
 */
export function dropEnvironment(text: string): string {
  const lines = dropComments(text).split("\n");
  const out = lines.slice(0, 1);
  let inFence = false;
  let skipping = false;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (FENCE.test(line)) {
      inFence = !inFence;
      if (!skipping) out.push(line);
      continue;
    }
    if (!inFence) {
      if (/^\s*<\/details>\s*$/i.test(line)) skipping = false;
      const heading = headingText(line, lines[i + 1]);
      if (heading !== null) skipping = ENV_HEADING.test(heading);
    }
    if (skipping || VERSION_LINE.test(line) || (!inFence && TASK_ITEM.test(line))) continue;
    out.push(inFence ? line : line.replace(LAYOUT_TAG, " "));
  }
  return out.join("\n");
}
