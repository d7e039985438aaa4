import { SOURCE_EXTENSIONS } from "../sourceOutline.js";

/**
 * Files that are not source code which an issue names: a CI workflow, `pyproject.toml`, a
 * theme's template, a translation catalog. The scan reads source files only, so without these
 * the baseline never answered one, even one the issue spells out. Only what the issue writes
 * is taken, no word that merely suggests a kind of file: cue words chosen on half of a set of
 * reporters' issues did not carry over to the other half (BENCHMARKS.md, "Issues about files
 * that are not source code"). The sandbox says which of them the tree holds.
 */

const DOCUMENTATION = /\.(?:md|markdown|rst|adoc|txt)$/i;

/** How many such paths are asked of the tree, and how many answered. */
export const MAX_NAMED_FILES = 20;
export const MAX_ANSWERED_FILES = 3;

/**
 * From the prose and its code apart. A bare name in code (`tox.ini` a reproduction
 * writes), or one the reporter calls theirs ("my setup.cfg"), is their own project's file, not
 * the repository's; a path with directories is the repository's wherever it is written.
 */
export function namedFiles(prose: string, code: string): string[] {
  const theirs = (name: string) => new RegExp(String.raw`\b(?:my|our)\W{1,3}${name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`, "i").test(prose);
  const found = [...pathsIn(prose).filter((p) => p.includes("/") || !theirs(p)), ...pathsIn(code).filter((p) => p.includes("/"))];
  return [...new Set(found)].slice(0, MAX_NAMED_FILES);
}

/**
 * Paths written in a text that may name a file that is not source: with a directory
 * (`sphinx/themes/basic/layout.html`, the path of a `/blob/<ref>/` link), or a bare name with a
 * letter on both sides of a dot (`pyproject.toml`, not `3.0.3` or `e.g.`) or a dotfile
 * (`.gitattributes`). Source files are the source rules' (issueTerms.ts).
 */
function pathsIn(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/[\w.~:\\/@+-]+/g)) {
    if (out.length >= MAX_NAMED_FILES) break;
    if (m[0].length > 400) continue;
    // A traceback's or a linter's `path:12:3`, and a sentence's last stop.
    let p = m[0].replace(/\\/g, "/").replace(/:\d+(?::.*)?$/, "").replace(/[.:,;]+$/, "");
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(p) || /^(?:www\.)?[\w-]+\.(?:com|org|io|net)\//.test(p)) {
      // A link names a file of the repository only through a ref: GitHub's /blob/main/, GitLab's /-/blob/main/.
      const path = p.replace(/^[a-z][a-z0-9+.-]*:\/\//i, "").replace(/^[^/]*/, "");
      const ref = /\/(?:-\/)?(?:blob|tree|raw|src)\/[^/]+\//.exec(path);
      if (!ref) continue;
      p = path.slice(ref.index + ref[0].length);
      // A link to a page of the documentation is what the reporter read ("[docs](…/docs/Reply.md#errors)"), not what is to change.
      if (DOCUMENTATION.test(p)) continue;
    }
    p = p.replace(/^~?\/+/, "").replace(/^(?:\.\.?\/)+/, "");
    const base = p.slice(p.lastIndexOf("/") + 1);
    if (!base || p.length > 300 || p.split("/").some((s) => s === "" || s === "..")) continue;
    const dot = base.lastIndexOf(".");
    if (dot >= 0 && SOURCE_EXTENSIONS[base.slice(dot).toLowerCase()]) continue;
    if (base.toLowerCase().endsWith(".py")) continue;
    if (!p.includes("/") && !/^\.?[A-Za-z][\w-]*(?:\.[\w-]+)*\.[A-Za-z]\w*$|^\.[A-Za-z][\w-]{2,}$/.test(p)) continue;
    if (!/[A-Za-z]/.test(base)) continue;
    if (!out.includes(p)) out.push(p);
  }
  return out;
}
