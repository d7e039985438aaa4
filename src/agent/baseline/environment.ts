/**
 * The part of an issue that describes the reporter's machine rather than the bug: sections
 * headed "Versions", "Environment", "System information", "pip list" (what issue templates
 * ask for), lines that are a package and its version, and templates' checklists. Their names
 * are real identifiers (`system_ssl`, `openssl_version`, `nc_time_axis`), so left in they pull
 * every issue of a repository towards the one file that prints versions, or towards back-ends.
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

const FENCE = /^\s*(```|~~~)/;

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
 * The issue without its environment sections and version lines. The title (first line) is
 * always kept; a section runs to the next heading or the end of its `<details>` block.
 */
export function dropEnvironment(text: string): string {
  const lines = text.split("\n");
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
    out.push(line);
  }
  return out.join("\n");
}
