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
 * The words such headings are made of ("OS / Environment", "Full versions", "pylint --version
 * output", "Python version", "System information"). A heading with two words besides them is
 * about the bug ("System check framework crashes", "Version parsing is wrong", "This happens on
 * my system:"): the section after it is the issue itself, and dropping it lost the body.
 */
const ENV_WORD =
  /^(versions?|--version|environment|system|os|operating|platform|dependencies|installation|installed|pip|conda|list|freeze|info|information|details|tested|used|full|additional|output|my|your|the|and|of|on)$/i;

function isEnvironmentHeading(heading: string): boolean {
  if (!ENV_HEADING.test(heading)) return false;
  // One other word is the product whose version it is ("Sphinx version", "Node.js version").
  return heading.split(/[\s/&,:()`*]+/).filter((w) => w && !ENV_WORD.test(w)).length <= 1;
}

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
const LAYOUT_TAG = /<\/?(?:details|summary|br|tt|sub|sup|kbd|img|hr)\b[^>\n]{0,1000}>/gi;

/**
 * The issue without HTML comments outside code. Templates put their instructions in comments
 * (`<!-- Example: … from sklearn.decomposition import … -->`, `import numpy; print(numpy.__version__)`);
 * the rendered issue never shows them and the reporter did not write them, yet their names are
 * real identifiers. An unclosed `<!--` is kept: a stray one in prose is likelier than a template.
 */
function dropComments(text: string): string {
  const lastClose = text.lastIndexOf("-->");
  let out = "";
  let inFence = false;
  let i = 0;
  while (i < text.length) {
    const eol = text.indexOf("\n", i);
    const end = eol < 0 ? text.length : eol + 1;
    const line = text.slice(i, end);
    if (FENCE.test(line)) inFence = !inFence;
    const open = inFence ? -1 : line.indexOf("<!--");
    // Past the last `-->` no comment closes: not searching again keeps many openers linear.
    const close = open < 0 || i + open + 4 > lastClose ? -1 : text.indexOf("-->", i + open + 4);
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

/*
 * The lines here are untrusted and may be long: each pattern runs on a trimmed line of at most
 * SHAPE_MAX characters, or is a scan (atxHeading), so none can backtrack over a long line.
 */
const SHAPE_MAX = 300;

/**
 * A markdown heading's text, as `/^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$/` captures it: that pattern
 * backtracks cubically on a long run of blanks, so the closing `#`s and blanks are cut by a scan.
 */
export function atxHeading(line: string): string | null {
  const open = /^\s{0,3}#{1,6}\s+/.exec(line);
  if (!open) return null;
  const rest = line.slice(open[0].length);
  if (!rest) {
    // The text takes one character at least: with nothing after the blanks, the last of them
    // but the first that `.` can match.
    const blanks = open[0].slice(open[0].lastIndexOf("#") + 1);
    for (let k = blanks.length - 1; k >= 1; k--) if (!LINE_END.test(blanks[k]!)) return blanks[k]!;
    return null;
  }
  let end = rest.length;
  while (end > 1 && /\s/.test(rest[end - 1]!)) end--;
  while (end > 1 && rest[end - 1] === "#") end--;
  while (end > 1 && /\s/.test(rest[end - 1]!)) end--;
  const text = rest.slice(0, end);
  // `.` stops at line terminators; after the text only blanks and `#`s may follow.
  return LINE_END.test(text) ? null : text;
}
const LINE_END = /[\n\r\u2028\u2029]/;

/** The heading's text if the line is one (markdown, bold line, a short line ending in a colon, an HTML summary). */
function headingText(line: string, next: string | undefined): string | null {
  const t = line.trim();
  const short = t.length <= SHAPE_MAX;
  const atx = atxHeading(line);
  const m =
    (atx !== null ? [line, atx] : null) ??
    (short ? /^\*\*([^*\n]{1,60})\*\*\s*:?\s*$/.exec(t) ?? /^<summary>(.{1,80}?)<\/summary>$/i.exec(t) ?? /^([A-Za-z][\w /-]{1,40}):$/.exec(t) : null);
  // Long headings are about the bug ("Installation of extras fails on Windows"), not the machine.
  if (m) return (m[1] ?? "").split(/\s+/).length <= 5 ? (m[1] ?? "") : "";
  // Setext (and reStructuredText) headings: the text, then a line of - or =.
  if (short && next !== undefined && /^\s*[-=]{3,}\s*$/.test(next) && /^[A-Za-z][\w ./-]{1,60}$/.test(t)) return t;
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
      if (heading !== null) skipping = isEnvironmentHeading(heading);
    }
    const t = line.trim();
    if (skipping || (t.length <= SHAPE_MAX && VERSION_LINE.test(t)) || (!inFence && TASK_ITEM.test(line))) continue;
    out.push(inFence ? line : line.replace(LAYOUT_TAG, " "));
  }
  return out.join("\n");
}
