/**
 * Reads an issue the way a developer skims it for search terms: file paths, traceback
 * frames, code identifiers, option names, quoted code lines and error messages. Pure
 * functions over the issue text; every list is bounded so a huge or hostile issue cannot
 * blow up the commands built from it.
 */

import { SOURCE_EXTENSIONS } from "../sourceOutline.js";
import { FENCE, dropEnvironment } from "./environment.js";
import { namedFiles } from "./namedFiles.js";

export interface Frame {
  /** Path as written, normalized (site-packages prefix and leading separators removed). */
  path: string;
  func: string | null;
  /** Position in the issue, 0 = first frame written. */
  index: number;
  /**
   * How near the frame is to where the error was raised: 1 for the innermost, down to 1/n for
   * the outermost. Python writes the innermost frame last; Node, the JVM, Go, Rust, PHP, .NET
   * and Ruby write it first.
   */
  depth: number;
}

/** Lines of a file the reporter pointed at: a permalink's `#L12-L20`, or what a pasted diff changes. */
export interface LinePointer {
  /** Path as written, normalized like every issue path. */
  path: string;
  start: number;
  end: number;
  how: "link" | "patch";
}

export interface Identifier {
  name: string;
  /** How strongly the issue points at this name (backticks > prose > code blocks). */
  weight: number;
}

export interface IssueTerms {
  paths: string[];
  frames: Frame[];
  identifiers: Identifier[];
  /** `A.b` pairs written together, e.g. `Session.resolve_redirects` → ["Session", "resolve_redirects"]. */
  qualified: [string, string][];
  /** Lowercase prose words (title counted twice), most frequent first. */
  words: string[];
  /** Option names without dashes, e.g. "collect-only". */
  options: string[];
  /** Literal snippets worth a fixed-string search (code lines, error messages). */
  phrases: string[];
  /** The first line, lowercased: what the issue is about, in the reporter's shortest words. */
  title: string;
  pointers: LinePointer[];
  /** Paths of files that are not source code that it names (namedFiles.ts), for the tree to say which it holds. */
  files: string[];
  /**
   * What may name commits: hex words ("Regression in b3db6c8", a `/commit/<sha>` link), those
   * written beside a word about history first, then issue and pull-request numbers ("#30408";
   * `owner/name#123` for a cross-reference or a link to a tracker), which commits' messages
   * mention. Only the repository can say which are.
   */
  commits: string[];
  /**
   * Files a linked diff points at: GitHub's `/commit/<sha>#diff-<hash>` and
   * `/pull/<n>/files#diff-<hash>` anchors name a file by the SHA-256 of its path (MD5 before
   * 2020), lowercase hex. Only the repository's paths can say which file.
   */
  diffAnchors: string[];
}

const MAX_ISSUE = 60_000;
const MAX_IDENTIFIERS = 40;
const MAX_WORDS = 30;
const MAX_PHRASES = 10;
const MAX_PATHS = 30;
const MAX_FRAMES = 60;
const MAX_POINTERS = 20;
const MAX_COMMITS = 8;

const PY_KEYWORDS = new Set(
  ("False None True and as assert async await break class continue def del elif else except finally for from global " +
    "if import in is lambda nonlocal not or pass raise return try while with yield self cls")
    .split(" "),
);

/** Builtins and ubiquitous names: defined or used everywhere, so they point nowhere. */
const GENERIC = new Set(
  ("print len str int float bool list dict set tuple object type super range open isinstance getattr setattr hasattr " +
    "Exception ValueError TypeError KeyError IndexError AttributeError RuntimeError ImportError OSError IOError " +
    "NotImplementedError AssertionError StopIteration Warning DeprecationWarning UserWarning " +
    "args kwargs main test tests foo bar baz spam ham eggs data value values result func name path file obj " +
    "item items key keys get set add run call init __init__ __main__ __name__ np pd plt os sys re json " +
    "self_ http https www com org github html pip python python3 usr lib site_packages")
    .split(" "),
);

const STOPWORDS = new Set(
  ("about above after again against also although always among another any anything are aren around because been " +
    "before being below between both but can cannot could couldn did didn does doesn doing done down during each " +
    "either else even ever every example expected few first following found from further get gets getting given " +
    "got had hasn have haven having here hers how however into isn issue it its itself just know like likely " +
    "look made make makes many may maybe might more most much must need needs never none nor not nothing now " +
    "off once only other otherwise our ours out over own perhaps please probably quite rather really same seems " +
    "seem see should shouldn since some something still such sure than that the their theirs them then there " +
    "these they thing things think this those though through thus too try trying under until upon use used " +
    "uses using very via want wants was wasn way well were weren what when where whether which while who whom " +
    "why will with within without won would wouldn yes yet you your yours thanks thank hello hi bug bugs fix " +
    "fixed error errors problem problems version versions work works working worked happen happens happened " +
    "line lines code file files return returns returned call calls called instead currently current new old " +
    "true false none case cases help question want able let lets note output input run running ran result " +
    "results reproduce steps behavior behaviour actual environment describe description information info " +
    "python install installed package packages module modules function functions method methods class classes " +
    "value values default option options following first second third one two three time times also tried " +
    "shown shows show same different change changes changed added adding add remove removed string strings " +
    "type types object objects test tests testing pass passes passed fail fails failed failing raise raised " +
    "raises exception exceptions message messages traceback recent last most call doc docs documentation " +
    "name names set sets get gets check checks checked simple simply better good bad minimal mre " +
    "https http www com org github")
    .split(" "),
);

/** CamelCase after an acronym (`URLValidator`, `HDUList`); short ones are plurals (`URLs`, `OSes`). */
const ACRONYM_CAMEL = /\b[A-Z]{2,}[a-z]{2,}\w*\b/g;
const isAcronymCamel = (tok: string) => tok.length >= 6 && /^[A-Z]{2,}[a-z]{2,}\w*$/.test(tok);

/** A code span: a run of backticks closed by a run of the same length (```name``` too, as in CommonMark). */
const INLINE_CODE = /(?<!`)(`+)([^`\n]{1,200}?)\1(?!`)/g;

/** A name with a letter in it: pytest's `_____ test_x _____` rules are separators, not names. */
const IDENT = /^_*[A-Za-z][A-Za-z0-9_]*$/;

/*
 * Issue text is untrusted and up to 60,000 characters: every pattern over it must take linear
 * time. The two below were regular expressions that backtrack on a long run of word characters
 * (one 8,000-character word took minutes), so they are scans of maximal runs instead.
 */

/** Dotted names (`pkg.mod.Class`), as `/[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+/g` finds them. */
export function dottedNames(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/[\w.]+/g)) {
    let chain: string[] = [];
    for (const seg of m[0].split(".")) {
      if (chain.length && /^[A-Za-z_]/.test(seg)) {
        chain.push(seg);
        continue;
      }
      if (chain.length >= 2) out.push(chain.join("."));
      // A name may start inside a segment, after digits (`3d` gives `d`).
      const start = seg.search(/[A-Za-z_]/);
      chain = start >= 0 ? [seg.slice(start)] : [];
    }
    if (chain.length >= 2) out.push(chain.join("."));
  }
  return out;
}

/** Paths ending in `.py`, as `/[\w.~:\\/-]*[\w-]+\.py\b/g` finds them: a run up to its last `.py`. */
export function pyPathsIn(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/[\w.~:\\/-]+/g)) {
    const run = m[0];
    let end = -1;
    for (let at = run.indexOf(".py"); at >= 0; at = run.indexOf(".py", at + 1)) {
      if (at > 0 && /[\w-]/.test(run[at - 1] ?? "") && !/\w/.test(run[at + 3] ?? "")) end = at + 3;
    }
    if (end > 0) out.push(run.slice(0, end));
  }
  return out;
}

/**
 * Paths of source files in other languages (`src/server/router.ts`, `internal/app/run.go`): with
 * a directory only, so "Node.js" or "Vue.js" in a sentence is not taken for a file.
 */
export function otherSourcePathsIn(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/[\w.~:\\/@-]+/g)) {
    // Longer than any path taken (300), and the suffix below would backtrack over all of it.
    if (m[0].length > 400) continue;
    // `src/main.rs:12:5:` as a panic prints it: the path without its line and column.
    const run = m[0].replace(/(?::\d+)*[.:]*$/, "");
    const ext = extOf(run);
    if (SOURCE_EXTENSIONS[ext] && /[\w-]\.\w+$/.test(run) && /[\\/]/.test(run)) out.push(run);
  }
  return out;
}

function extOf(path: string): string {
  const dot = path.lastIndexOf(".");
  return dot > path.lastIndexOf("/") ? path.slice(dot).toLowerCase() : "";
}

/** Words too common in issues or code to point anywhere (lowercase). */
export function isStopword(word: string): boolean {
  return STOPWORDS.has(word) || PY_KEYWORDS.has(word);
}

export function normalizeIssuePath(raw: string): string | null {
  let p = raw.replace(/\\/g, "/").trim();
  p = p.replace(/^file:\/+/, "/");
  // A link to a file in a code host: the repository path follows its ref (`/blob/<ref>/`).
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(p)) {
    p = p.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/]*/i, "").replace(/[?#].*$/, "");
    const ref = /\/(?:-\/)?(?:blob|tree|raw|src)\/[^/]+\//.exec(p);
    if (ref) p = p.slice(ref.index + ref[0].length);
  }
  // Installed copies and eggs carry the package path after a known marker.
  const markers = ["site-packages/", "dist-packages/", ".egg/"];
  for (const m of markers) {
    const at = p.lastIndexOf(m);
    if (at >= 0) p = p.slice(at + m.length);
  }
  p = p.replace(/^[A-Za-z]:\//, "/").replace(/^~\//, "/").replace(/^(\.\.?\/)+/, "");
  p = p.replace(/^\/+/, "");
  if (!(p.endsWith(".py") || SOURCE_EXTENSIONS[extOf(p)]) || p.length > 300) return null;
  if (p.split("/").some((seg) => seg === "" || seg === "..")) return null;
  return p;
}

function pushUnique<T>(list: T[], item: T, max: number) {
  if (list.length < max && !list.includes(item)) list.push(item);
}

/**
 * A line of Python written outside a fence: trackers that are not markdown (Trac, Jira, mail)
 * and hurried reporters paste code bare. Read as prose, its names would count as the reporter's
 * own words and its plain words (`filter`, `create`) as what the issue is about.
 */
const BARE_CODE = [
  /^\s*(>>>|\.\.\.)(\s|$)/, // interpreter prompts
  /^\s*(from\s+\.*[\w.]+\s+import\s+[\w*(]|import\s+[\w.]+(\s+as\s+\w+)?(\s*,\s*[\w.]+)*\s*$)/,
  /^\s*((async\s+)?def\s+\w+\s*\(|class\s+\w+\s*[(:])/,
  /^\s*@[\w.]+(\(.*\))?\s*$/, // decorators
  /^\s*(if|elif|while|for|with|try|except|else|finally)\b(?:[^.!?]|\.(?=\w))*:\s*$/, // block headers
  /^\s*[\w.]+(\[[^\]]*\])?\s*(=|\+=|-=|\|=)\s*\S/, // assignments
  /^\s*[\w.]+\(.*\)[\s,;)]*$/, // a call alone on its line
  /^\s*(return|raise|yield|assert|print)\b(?:[^.!?]|\.(?=\w))*$/,
];

function isBareCode(line: string): boolean {
  const s = line.trim();
  if (s.length < 4 || s.length > 300) return false;
  // A sentence that happens to begin like code ("for example, if x = 3 ...") is still prose.
  if ((s.match(/\b[a-z]{3,}\b/g) ?? []).length > 8 && !/[()[\]]/.test(s)) return false;
  // The trimmed line: its length is bounded, so no pattern backtracks over a long run of blanks.
  return BARE_CODE.some((re) => re.test(s));
}

/**
 * Splits markdown into code and prose: fenced blocks (unclosed fences count as code), and
 * outside them bare code lines together with the indented lines that follow one (a block's body).
 */
function splitCode(text: string): { prose: string; code: string; unfenced: string } {
  const prose: string[] = [];
  const code: string[] = [];
  const unfenced: string[] = [];
  let inFence = false;
  let inBare = false;
  for (const line of text.split("\n")) {
    if (FENCE.test(line)) {
      inFence = !inFence;
      inBare = false;
      continue;
    }
    if (!inFence) {
      inBare = isBareCode(line) || (inBare && /^(\t| {2,})\S/.test(line));
      unfenced.push(line);
    }
    (inFence || inBare ? code : prose).push(line);
  }
  return { prose: prose.join("\n"), code: code.join("\n"), unfenced: unfenced.join("\n") };
}

const FRAME_PATTERNS: RegExp[] = [
  // CPython: File "/x/y.py", line 12, in func
  /File "([^"\n]{1,400}?\.py)", line \d+, in ([A-Za-z_<][\w<>.]*)/g,
  // IPython 8: File ~/x/y.py:265, in Plot._repr_png_(self)
  /File ([^\s,"]{1,400}?\.py):\d+, in ([A-Za-z_<][\w<>.]*)/g,
  // IPython 7: ~/x/y.py in func(args); Colab writes the path as a link, [/x/y.py](https://localhost:8080/#) in func(args)
  /([^\s"'()[\]]{1,400}?\.py)(?:\]\([^()\s]{0,300}\))? in ([A-Za-z_<][\w<>.]*)\(/g,
  // pytest's short tracebacks: /x/y.py:12: in func
  /([^\s"'()[\]:]{1,400}?\.py):\d+: in ([A-Za-z_<][\w<>.]*)/g,
  // ... and their last line, where the error was raised: /x/y.py:12: ValueError
  /([^\s"'()[\]:]{1,400}?\.py):\d+: ()[A-Z]\w*(?:Error|Exception|Warning|Exit)\b/g,
];

/** Node's stack lines: `at Router.find (/app/lib/router.js:12:5)`, `at /app/index.mjs:3:1`. */
const NODE_FRAME = /\bat (?:async )?(?:new )?(?:([\w$.]{1,200}) \()?(?:file:\/\/)?([^\s()]{1,400}?\.(?:[cm]?js|jsx|[cm]?ts|tsx)):\d+:\d+\)?/g;
/** The JVM's: `at com.google.gson.Gson.toJson(Gson.java:123)`, the file found under its package. */
const JVM_FRAME = /\bat ((?:[\w$]{1,100}\.){1,30})([\w$<>]{1,100})\(([\w$]{1,100}\.(?:java|kt|scala|groovy)):\d+\)/g;

/** Other runtimes' frames whose function comes before the path: [pattern, function group, path group]. */
const FUNC_FIRST_FRAMES: [RegExp, number, number][] = [
  // Go's panics: `main.(*Server).Serve(0xc0000)` and, on the next line, `\t/app/server.go:42 +0x25`.
  [/^[ \t]*(?:[\w./-]{1,200}\.)?(?:\(\*?\w{1,100}\)\.)?(\w{1,100})\([^()\n]{0,400}\)[ \t]*\n[ \t]+([^\s:]{1,400}\.go):\d+/gm, 1, 2],
  // Rust's backtraces: `3: app::server::serve` and, on the next line, `at ./src/server.rs:12:5`.
  [/^[ \t]*\d+: (?:[\w<>]{1,100}::){0,20}(\w{1,100})(?:::h[0-9a-f]{16})?[ \t]*\n[ \t]+at ([^\s:]{1,400}\.rs):\d+/gm, 1, 2],
  // PHP's: `#0 /app/src/Cart.php(12): App\Cart->total()`.
  [/#\d+ ([^\s()]{1,400}\.php)\(\d+\): [\w\\]{0,200}(?:->|::)(\w{1,100})\(/g, 2, 1],
  // .NET's: `at Shop.Cart.Total() in /src/Cart.cs:line 12`.
  [/\bat [\w.`]{0,200}\.(\w{1,100})\([^()\n]{0,400}\) in ([^\n]{1,400}?\.cs):line \d+/g, 1, 2],
  // Ruby's: ``/app/lib/rack/request.rb:12:in `params'`` (3.4: `'Rack::Request#params'`).
  [/([^\s:'"`]{1,400}\.rb):\d+:in [`'](?:[\w:]{0,200}[#.])?(\w{1,100}[?!]?)'/g, 2, 1],
];

/** Every pattern's matches as [path, function]: Python's tracebacks, then other runtimes'. */
function* frameMatches(text: string): Generator<{ at: number; path: string; func: string | undefined; innerFirst: boolean }> {
  for (const re of FRAME_PATTERNS) {
    re.lastIndex = 0;
    for (let m = re.exec(text); m; m = re.exec(text)) yield { at: m.index, path: m[1] ?? "", func: m[2], innerFirst: false };
  }
  for (const m of text.matchAll(NODE_FRAME)) yield { at: m.index, path: m[2] ?? "", func: m[1], innerFirst: true };
  for (const [re, func, path] of FUNC_FIRST_FRAMES) for (const m of text.matchAll(re)) yield { at: m.index, path: m[path] ?? "", func: m[func], innerFirst: true };
  for (const m of text.matchAll(JVM_FRAME)) {
    const qualified = (m[1] ?? "").split(".").slice(0, -2);
    yield { at: m.index, path: [...qualified, m[3] ?? ""].join("/"), func: m[2], innerFirst: true };
  }
}

/** The traceback's frames, and the files only a test's own check was in (not to be read as named). */
function parseFrames(text: string): { frames: Frame[]; checkFiles: Set<string> } {
  const found: { at: number; path: string; func: string | null; innerFirst: boolean }[] = [];
  const checkFiles = new Set<string>();
  for (const m of frameMatches(text)) {
    if (found.length >= MAX_FRAMES * 3) break;
    const path = normalizeIssuePath(m.path);
    if (!path) continue;
    let func = m.func || null;
    if (func && (func.startsWith("<") || !/^[\w.]+$/.test(func))) func = null;
    // "Plot._repr_png_" names the method; the class is found again from the tree.
    if (func && func.includes(".")) func = func.split(".").pop() ?? null;
    // A test's own check (`assertQuerysetEqual`, `assert_equivalent`) is where a fault shows,
    // not where it lies: its frame would point at the test helpers' file. (pytest's
    // `assertrepr_compare` is no check: it builds the message, and can be the fault.)
    if (func && /^assert(_|[A-Z])/.test(func)) {
      checkFiles.add(path);
      continue;
    }
    found.push({ at: m.at, path, func, innerFirst: m.innerFirst });
  }
  found.sort((a, b) => a.at - b.at);
  const written = found.filter((f, i) => i === 0 || f.at !== found[i - 1]!.at);
  // Each frame's rank from the outermost: as written for Python's, reversed within each run of
  // another runtime's frames.
  const rank: number[] = [];
  for (let i = 0; i < written.length; ) {
    let j = i;
    while (j < written.length && written[j]!.innerFirst === written[i]!.innerFirst) j++;
    for (let k = i; k < j; k++) rank.push(written[i]!.innerFirst ? i + (j - 1 - k) : k);
    i = j;
  }
  // A traceback longer than is kept keeps its innermost frames: the error is raised there.
  const dropped = Math.max(0, written.length - MAX_FRAMES);
  const kept = written.length - dropped;
  const frames: Frame[] = [];
  written.forEach((f, k) => {
    if (rank[k]! >= dropped) frames.push({ path: f.path, func: f.func, index: frames.length, depth: (rank[k]! - dropped + 1) / kept });
  });
  for (const f of frames) checkFiles.delete(f.path);
  return { frames, checkFiles };
}

// GitHub writes `#L12-L20` (after `?plain=1` for rendered files), GitLab `#L12-20`.
const PERMALINK = /(https?:\/\/[^\s#?)\]>"'`]{1,500}?\.py)(?:\?[^\s#)\]>"'`]*)?#L(\d+)(?:C\d+)?(?:-L?(\d+))?/g;
const HUNK = /^@@ -(\d+)(?:,\d+)? \+\d+(?:,\d+)? @@/;

/**
 * Where the reporter points in the code by line: permalinks to lines (`blob/<ref>/x.py#L12-L20`)
 * and the lines a pasted diff removes or inserts at (counted in the old file, which is the one
 * the issue was written against). Lines are the reporter's version, so near, not exact.
 */
function linePointers(text: string): LinePointer[] {
  const out: LinePointer[] = [];
  const push = (raw: string, start: number, end: number, how: LinePointer["how"]) => {
    const path = normalizeIssuePath(raw);
    if (!path || start < 1 || out.length >= MAX_POINTERS) return;
    // A range of a whole file says no more than its path.
    end = Math.max(start, end);
    if (end - start > 200) return;
    if (!out.some((p) => p.path === path && p.start === start && p.end === end)) out.push({ path, start, end, how });
  };
  for (const m of text.matchAll(PERMALINK)) push(m[1] ?? "", Number(m[2]), Number(m[3] ?? m[2]), "link");

  const lines = text.split("\n");
  let file: string | null = null;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    // Lines are counted in the old file, so its name is the one that counts (`/dev/null` for a new file).
    if (line.startsWith("--- ")) {
      file = /^--- (?:a\/)?(\S+?\.py)(?:\s|$|\.\w+)/.exec(line)?.[1] ?? null;
      continue;
    }
    const hunk = HUNK.exec(line);
    if (!hunk || !file) continue;
    let old = Number(hunk[1]);
    let first = Infinity;
    let last = -Infinity;
    for (i++; i < lines.length; i++) {
      const l = lines[i]!;
      // The next file's header is `--- ` and `+++ ` together: a removed line may begin `-- ` (SQL's
      // comment, a Markdown rule) and an added one `++`.
      if (l.startsWith("--- ") && lines[i + 1]?.startsWith("+++ ")) break;
      if (l.startsWith("-")) {
        first = Math.min(first, old);
        last = Math.max(last, old);
        old++;
      } else if (l.startsWith("+")) {
        // Inserted after the line before: the definition that holds it.
        const at = Math.max(Number(hunk[1]), old - 1);
        first = Math.min(first, at);
        last = Math.max(last, at);
      } else if (l.startsWith(" ") || l === "") old++;
      else if (!l.startsWith("\\")) break;
    }
    i--;
    if (first <= last) push(file, first, last, "patch");
  }
  return out;
}

/** Code lines quoted in tracebacks ("--> 144  value = ..." or the line under a File frame). */
function tracebackCodeLines(text: string): string[] {
  const out: string[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? "";
    const arrow = /^\s*-*>\s*\d+\s+(.+)$/.exec(line);
    if (arrow?.[1]) out.push(arrow[1]);
    if (/^\s*(?:INTERNALERROR>\s*)?File "[^"]+", line \d+, in /.test(line)) {
      const next = (lines[i + 1] ?? "").replace(/^\s*INTERNALERROR>/, "");
      if (next.trim() && !/^\s*File /.test(next)) out.push(next);
    }
  }
  return out.map((s) => s.trim()).reverse(); // innermost first
}

function errorMessages(text: string): string[] {
  const out: string[] = [];
  // Blanks, not \s, before the name: with `m`, \s* at every line start ran over all the lines after it.
  const re = /^[ \t]*(?:E[ \t]+|>[ \t]*)?(?:[\w.]+\.)?([A-Z]\w*(?:Error|Exception|Warning)):\s+(.{8,300})$/gm;
  for (let m = re.exec(text); m; m = re.exec(text)) out.push(m[2] ?? "");
  return out;
}

/**
 * The leading literal part of a message, cut before anything a format string would fill
 * in (quotes, braces, digits), so it can still match the source that builds it.
 */
export function literalPrefix(message: string): string | null {
  const cut = message.split(/['"`{}<>%]|\d/)[0] ?? "";
  const s = cut.trim().replace(/[\s:,.;(]+$/, "");
  if (s.length < 12 || s.split(/\s+/).length < 3) return null;
  return s.slice(0, 80);
}

function looksLikeCodeLine(line: string): boolean {
  const s = line.trim();
  if (s.length < 10 || s.length > 100) return false;
  if (!/[=(]/.test(s) || /^[#>*-]/.test(s)) return false;
  const words = s.split(/\s+/);
  if (words.length > 8) return false;
  return /[A-Za-z_]\w*\s*(\(|=)/.test(s);
}

export function extractIssueTerms(issueText: string): IssueTerms {
  // The environment goes first, so a long pip list does not crowd the bug out of the budget.
  const text = dropEnvironment(issueText.slice(0, 4 * MAX_ISSUE).replace(/\r\n?/g, "\n")).slice(0, MAX_ISSUE);
  const { prose, code, unfenced } = splitCode(text);
  const title = text.split("\n", 1)[0] ?? "";

  const weights = new Map<string, number>();
  const bump = (name: string, w: number) => {
    if (!IDENT.test(name) || name.length < 3 || name.length > 80) return;
    if (PY_KEYWORDS.has(name) || GENERIC.has(name)) return;
    weights.set(name, Math.max(weights.get(name) ?? 0, w) + 0.25 * Math.min(w, 1));
  };
  const qualified: [string, string][] = [];
  const addQualified = (dotted: string) => {
    const parts = dotted.split(".").filter((p) => IDENT.test(p));
    for (let i = 0; i + 1 < parts.length && qualified.length < 20; i++) {
      const a = parts[i] ?? "";
      const b = parts[i + 1] ?? "";
      if (!qualified.some(([x, y]) => x === a && y === b)) qualified.push([a, b]);
    }
  };

  // Inline code: the strongest pointer a reporter gives.
  const inline = [...prose.matchAll(INLINE_CODE)].map((m) => m[2] ?? "");
  for (const span of inline) {
    for (const dotted of dottedNames(span)) addQualified(dotted);
    for (const tok of span.match(/[A-Za-z_]\w*/g) ?? []) bump(tok, 3);
  }

  // Prose: names that cannot be English words (snake_case, CamelCase, dotted, calls). A link's
  // address is not a name (a screenshot's `b791f6cde568.png`) but its anchor may be one (docs'
  // `#pkg.module.Class`); a linked file still counts as a path, below.
  const proseNoInline = prose.replace(INLINE_CODE, " ").replace(/https?:\/\/[^\s#)\]]*/g, " ");
  for (const dotted of dottedNames(proseNoInline)) {
    if (/\.(py|com|org|io|net|html|txt|md|rst|cfg|toml|ini|json|yaml|yml|png|jpe?g|gif|svg|pdf|zip|gz|whl|csv|log)$/i.test(dotted)) continue;
    addQualified(dotted);
    for (const part of dotted.split(".")) bump(part, 2);
  }
  for (const m of proseNoInline.matchAll(/\b([A-Za-z_]\w*)\(/g)) bump(m[1] ?? "", 2);
  for (const m of proseNoInline.matchAll(/\b[A-Za-z]*_\w*\b|\b_?[a-z]+[A-Z]\w*\b|\b[A-Z][a-z0-9]+[A-Z]\w*\b/g)) {
    bump(m[0], 2);
  }
  for (const m of proseNoInline.matchAll(ACRONYM_CAMEL)) if (isAcronymCamel(m[0])) bump(m[0], 2);
  // Markdown eats underscores: "**init**" was "__init__".
  for (const m of proseNoInline.matchAll(/\*\*([a-z]\w*)\*\*\(/g)) bump(`__${m[1]}__`, 1.5);

  // Code blocks: user code and logs, so weaker, but names defined in the repo still count.
  for (const dotted of dottedNames(code)) addQualified(dotted);
  for (const m of code.matchAll(/\b[A-Za-z_]\w*\b/g)) {
    const tok = m[0];
    if (/_|[a-z][A-Z]|^[A-Z][a-z0-9]+[A-Z]/.test(tok) || isAcronymCamel(tok)) bump(tok, 1);
  }
  // What the reporter's code calls is the API the bug is met through (`ds.stack(...)`,
  // `Response(...)`), however plain its name; prose calls count already.
  for (const m of code.matchAll(/\b([A-Za-z_]\w*)\(/g)) bump(m[1] ?? "", 1);

  const { frames, checkFiles } = parseFrames(text);
  for (const f of frames) if (f.func) bump(f.func, 1.5);

  const identifiers = [...weights.entries()]
    .sort((a, b) => b[1] - a[1] || byEnglishCollation(a[0], b[0]))
    .slice(0, MAX_IDENTIFIERS)
    .map(([name, weight]) => ({ name, weight }));

  // With more paths than are kept, the files of lines linked to and the innermost frames' go
  // first: a long traceback's innermost frame is written last, and was the one left out.
  const pointers = linePointers(text);
  const paths: string[] = [];
  for (const p of pointers) pushUnique(paths, p.path, MAX_PATHS);
  for (const f of [...frames].sort((a, b) => b.depth - a.depth)) pushUnique(paths, f.path, MAX_PATHS);
  for (const raw of pyPathsIn(text)) {
    const p = normalizeIssuePath(raw);
    if (p && !checkFiles.has(p)) pushUnique(paths, p, MAX_PATHS);
  }
  // After Python's: a Python tree is scanned for Python only, so these never displace its paths.
  for (const raw of otherSourcePathsIn(text)) {
    const p = normalizeIssuePath(raw);
    if (p) pushUnique(paths, p, MAX_PATHS);
  }

  const options: string[] = [];
  for (const m of text.matchAll(/(?:^|[\s`"'(=])--([a-z][a-z0-9]*(?:-[a-z0-9]+)*)/g)) {
    const opt = m[1] ?? "";
    if (opt.length >= 3 && !["version", "help", "verbose"].includes(opt)) pushUnique(options, opt, 10);
  }
  // A dashed name in backticks is an option or setting even without its dashes: `ignore-paths`.
  for (const span of inline) if (/^[a-z][a-z0-9]*(-[a-z0-9]+)+$/.test(span)) pushUnique(options, span, 10);

  const wordCounts = new Map<string, number>();
  let proseWords = false;
  const countWords = (s: string, w: number) => {
    for (const m of s.toLowerCase().matchAll(/\b[a-z][a-z]{3,24}\b/g)) {
      const word = m[0];
      if (STOPWORDS.has(word)) continue;
      wordCounts.set(word, (wordCounts.get(word) ?? 0) + w);
      proseWords = true;
    }
    // Three capitals (SQL, CSV, ORM; "URLs" is a word already): shorter than a prose word may
    // be, yet what the issue is about, and what packages and modules are named after
    // (db/models/sql/, csv.py). Not a quoted value ('CA', "AAA") nor a placeholder (XXX).
    for (const m of s.matchAll(/(?<!['"])\b([A-Z]{3})\b/g)) {
      const word = m[1]!.toLowerCase();
      if (/^(.)\1\1$/.test(word) || STOPWORDS.has(word) || FUNCTION_WORDS.has(word) || NOT_ACRONYMS.has(word)) continue;
      wordCounts.set(word, (wordCounts.get(word) ?? 0) + w);
    }
  };
  countWords(proseNoInline, 1);
  countWords(title, 2);
  let words = [...wordCounts.entries()]
    .sort((a, b) => b[1] - a[1] || byEnglishCollation(a[0], b[0]))
    .slice(0, MAX_WORDS)
    .map(([w]) => w);

  const phrases: string[] = [];
  const addPhrase = (raw: string) => {
    const s = raw.trim().replace(/\s+/g, " ");
    if (s.length >= 10 && s.length <= 100 && /[A-Za-z]/.test(s)) pushUnique(phrases, s, MAX_PHRASES);
  };
  for (const span of inline) if (/[ (=]/.test(span) && looksLikeCodeLine(span)) addPhrase(span);
  for (const line of unfenced.split("\n")) if (looksLikeCodeLine(line)) addPhrase(line);
  for (const msg of errorMessages(text)) {
    const lit = literalPrefix(msg);
    if (lit) addPhrase(lit);
  }
  for (const line of tracebackCodeLines(text).slice(0, 6)) if (line.length >= 12) addPhrase(line);


  // A short plain question ("where is the API key checked?") may hold nothing the rules above
  // keep, written for issues, but an acronym: then its own words are all there is, short and
  // common ones too. No issue of the benchmarks (1,113) comes here.
  if (!proseWords && !identifiers.length && !paths.length && !phrases.length) words = plainWords(text);

  return { paths, frames, identifiers, qualified, words, options, phrases, title: title.slice(0, 300).toLowerCase(), pointers, files: namedFiles(prose, code), commits: commitRefs(text), diffAnchors: diffAnchors(text) };
}

/** Capitals that are a writer's, not the code's: chat and Roman numerals (emphasis, "NOT", is a function word). */
const NOT_ACRONYMS = new Set("imo fyi btw wip tbd aka eta lol omg vii xii xiv xvi xix xxi etc".split(" "));

/** English's function words: what a question is made of besides what it asks about. */
const FUNCTION_WORDS = new Set(
  ("the and but for nor yet are was were been being has had have does did doing can could should would will shall " +
    "may might must where what which who whom whose when why how there here this that these those its our your their " +
    "his her him she they them you any all some each every from into onto with within without about over under " +
    "than then also not only just very too out off per via")
    .split(" "),
);

/** A question's words of three letters or more, but function words, in order, each once. */
function plainWords(text: string): string[] {
  const out: string[] = [];
  for (const m of text.toLowerCase().matchAll(/\b[a-z][a-z0-9]{2,24}\b/g)) if (!FUNCTION_WORDS.has(m[0])) pushUnique(out, m[0], MAX_WORDS);
  return out;
}

const MAX_DIFF_ANCHORS = 8;

/** The `#diff-<hash>` anchors of links, each once (a line suffix such as `R120` is not part of the hash). */
export function diffAnchors(text: string): string[] {
  const out = new Set<string>();
  for (const m of text.matchAll(/#diff-([0-9a-fA-F]{64}|[0-9a-fA-F]{32})(?![0-9a-fA-F])/g)) {
    out.add(m[1]!.toLowerCase());
    if (out.size >= MAX_DIFF_ANCHORS) break;
  }
  return [...out];
}

const COMMIT_CONTEXT = /(commit|regress|introduc|bisect|caused|broke|since|revert)/i;
const COMMIT_LINK = /\/commits?\/$/;
const TICKET_LINK = /\/(issues|pull|pulls|merge_requests|ticket)\/$/;
/** A code host's address up to the issue number: `https://github.com/<owner>/<name>/issues/`, GitLab's `/-/`. */
const REPO_LINK = /https?:\/\/[^/\s]+\/([\w.-]+)\/([\w.-]+)\/(?:-\/)?(?:issues|pull|pulls|merge_requests)\/$/;
/** The host of a link that starts the run: a tracker's address without an owner and name. */
const LINK_HOST = /(?:[a-z][a-z0-9+.-]*:\/\/|(?=www\.))([\w-]+(?:\.[\w-]+)+)/i;
/** GitHub's cross-reference, `owner/name#123`. */
const REPO_HASH = /(?:^|[^\w/.-])([\w.-]+)\/([\w.-]+)#$/;
const MAX_TICKETS = 4;

/**
 * Abbreviated or full shas: a whole word of 7-40 lowercase hex digits with a letter and a
 * digit in it (a plain number or word is not one), or of digits alone where a commit is meant
 * ("regression in 4417582", a commit's address). In a link only a commit's own address
 * counts: a permalink's `/blob/<sha>/` is where the reporter happened to look, and an image's
 * name is random. Issue and pull-request numbers, at most four: `#123` as written, an
 * `owner/name#123` cross-reference, or an `/issues/123`, `/pull/123`, `/merge_requests/123` or
 * `/ticket/123` address (with its owner and name where the address has them, else its host:
 * `code.djangoproject.com#123`). Words are split
 * by a plain scan, and the look back is bounded, so any text is read in linear time.
 */
export function commitRefs(text: string): string[] {
  const near: string[] = [];
  const other: string[] = [];
  const tickets: string[] = [];
  const seen = new Set<string>();
  // `0x7f3a…` is one word here and not all hex, so an address is not taken for a commit.
  for (const m of text.matchAll(/[0-9A-Za-z_]+/g)) {
    const w = m[0];
    const number = /^[0-9]{2,7}$/.test(w);
    // Digits alone are an abbreviated sha too, now and then (one seven-character one in 27):
    // taken as one only where the text says a commit is meant, beside the number it may also be.
    const digits = /^[0-9]{7,40}$/.test(w);
    // A number is kept once per ref (below); a sha, once per word.
    if (!number && !digits && (seen.has(w) || w.length < 7 || w.length > 40 || !/^[0-9a-f]+$/.test(w) || !/[a-f]/.test(w) || !/[0-9]/.test(w))) continue;
    // The link the word is in, if any: the run of non-blanks before it (a link is not that long).
    const before = text.slice(Math.max(0, m.index - 300), m.index);
    let start = before.length;
    while (start > 0 && !/\s/.test(before[start - 1]!)) start--;
    const run = before.slice(start);
    const inLink = run.includes("://") || /www\./i.test(run);
    if (number) {
      // `#123` written as such (not `&#123;`, not a URL's fragment), `owner/name#123`, or an
      // issue's own address; the last two say whose, and another project's number means
      // nothing here (history.ts keeps only the tree's own).
      const hashed = run.endsWith("#") && !inLink && !/[\w&/]#$/.test(run);
      const whose = (inLink ? REPO_LINK : REPO_HASH).exec(run);
      // A tracker's address without an owner and name (Trac's `/ticket/123`, Redmine's
      // `/issues/123`) is the project's own or another's: its host says which (history.ts).
      const host = !whose && inLink && TICKET_LINK.test(run) ? LINK_HOST.exec(run)?.[1]?.toLowerCase() : undefined;
      const ref = hashed ? `#${w}` : whose ? `${whose[1]}/${whose[2]}#${w}` : host ? `${host}#${w}` : null;
      if (ref && !seen.has(ref) && tickets.length < MAX_TICKETS) {
        seen.add(ref);
        tickets.push(ref);
      }
      if (!digits || ref) continue;
    }
    if (inLink && !COMMIT_LINK.test(run)) continue;
    if (digits) {
      if (!seen.has(w) && (inLink || COMMIT_CONTEXT.test(before.slice(-40)))) {
        seen.add(w);
        near.push(w);
      }
      continue;
    }
    seen.add(w);
    (inLink || COMMIT_CONTEXT.test(before.slice(-40)) ? near : other).push(w);
  }
  return [...[...near, ...other].slice(0, MAX_COMMITS - Math.min(tickets.length, MAX_TICKETS)), ...tickets];
}

/**
 * Ties broken in one fixed collation, not the host's: with localeCompare's default the host's
 * locale (LANG) chose which terms were kept (Danish sorts "aa" last). English's, which the
 * weights were fitted under; code-point order would keep other terms (dev 67.8 → 66.9 file F1).
 */
const byEnglishCollation = new Intl.Collator("en-US").compare;
