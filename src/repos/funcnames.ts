
/**
 * How hunk headers name the definition a change sits in: a funcname rule per language for git,
 * and the name read back from the header or from a changed line (git's own diff text).
 */
const MODS = "((export|default|declare|public|protected|private|internal|static|final|abstract|async|override|readonly|open|sealed|data|suspend|synchronized|native|unsafe|const|extern|pub(\\([a-z]+\\))?)[ \t]+)*";
/** Words that open a block like a method head does: `if (…) {`, `catch (e) {`. */
const BLOCK_WORDS = ["if", "for", "while", "switch", "catch", "with", "return", "typeof", "await", "yield", "function", "foreach", "using", "lock", "synchronized", "elseif"];

/**
 * An ERE matching identifiers other than `words` (POSIX has no lookahead): an identifier leaves
 * the words' prefix tree at some letter, or ends on a prefix that is not itself a word.
 */
export function identifierExcept(words: string[]): string {
  const first = [..."abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_$"];
  const rest = [...first, ..."0123456789"];
  // Every prefix of a word, the words included (`iff` goes on past `if`).
  const prefixes = [...new Set(words.flatMap((w) => [...w, ""].map((_, i) => w.slice(0, i))))].sort();
  const alternatives: string[] = [];
  for (const p of prefixes) {
    const next = new Set(words.filter((w) => w.length > p.length && w.startsWith(p)).map((w) => w[p.length]));
    alternatives.push(`${p}[${(p ? rest : first).filter((c) => !next.has(c)).join("")}][A-Za-z0-9_$]*`);
    if (p && !words.includes(p)) alternatives.push(p);
  }
  return `(${alternatives.join("|")})`;
}

/** At least one modifier: a method head without a keyword, told from `throw new E(` by its `public`. */
const MODIFIED = MODS.replace(/\*$/, "+");
/**
 * Other languages, each diffed with a funcname rule of its own (POSIX extended regular
 * expressions, as git takes them) so hunk headers name the enclosing function or type. The
 * extensions are those the baseline reads (agent/sourceOutline.ts); git has no rule for
 * JavaScript, and its own rules for the others would need an attributes file.
 */
const OTHER_LANGUAGES: { globs: string[]; funcname: string }[] = [
  {
    globs: ["*.js", "*.jsx", "*.mjs", "*.cjs", "*.ts", "*.tsx", "*.mts", "*.cts", "*.vue", "*.svelte"],
    // Declarations, bindings of functions, and method heads in a class body (indented at most
    // four spaces or a tab), block words such as `if` excluded.
    funcname: `^([ \t]*${MODS}(function|class|interface|enum)[ \t*].*|[ \t]*${MODS}(const|let|var)[ \t]+[A-Za-z_$][A-Za-z0-9_$]*[ \t]*=[ \t]*(async[ \t]+)?(function|\\(|[A-Za-z_$][A-Za-z0-9_$]*[ \t]*=>).*|( {1,4}|\t)${MODS}((get|set)[ \t]+)?${identifierExcept(BLOCK_WORDS)}[ \t]*\\(.*\\{[ \t]*)$`,
  },
  { globs: ["*.go"], funcname: "^((func|type)[ \t].*)$" },
  { globs: ["*.rs"], funcname: `^[ \t]*(${MODS}(fn|impl|struct|enum|trait|mod|union)[ \t<].*)$` },
  {
    globs: ["*.java", "*.kt", "*.kts", "*.scala", "*.groovy", "*.cs", "*.swift", "*.php"],
    funcname: `^[ \t]*(${MODS}(class|interface|enum|record|object|trait|struct|protocol|extension|fun|def|func|function)[ \t].*|${MODIFIED}[A-Za-z_][][A-Za-z0-9_<>,.? ]*[ \t]+[A-Za-z_][A-Za-z0-9_]*[ \t]*\\([^;]*)$`,
  },
  { globs: ["*.rb"], funcname: "^[ \t]*((class|module|def)[ \t].*)$" },
  { globs: ["*.c", "*.h", "*.cc", "*.cpp", "*.cxx", "*.hpp", "*.hh"], funcname: "^((class|struct)[ \t].*|[A-Za-z_][A-Za-z0-9_ \t*&:<>,]*[ \t*&:]~?[A-Za-z_][A-Za-z0-9_]*[ \t]*\\(.*)$" },
];

/** Words a declaration's name never is: a method-head rule also meets `if (…) {`. */
const NOT_NAMES = new Set(["if", "for", "while", "switch", "catch", "return", "new", "else", "do", "function", "typeof", "await", "yield", "super", "this", "with", "foreach", "using", "lock", "synchronized", "sizeof"]);
/** A keyword declaration: `function f`, `func (r *T) f`, `pub fn f`, `class C`, `def self.f`. */
const KEYWORD_DECL = /\b(?:function\*?|class|interface|struct|enum|trait|mod|module|object|record|protocol|extension|fn|func|fun|def)\s+(?:\([^)]{0,200}\)\s*)?(?:self\.)?([A-Za-z_$][\w$]*)/;

/** The name a hunk header's declaration line declares (any language but Python). */
function declaredName(line: string): string | undefined {
  const impl = /\bimpl\b(?:\s*<[^{]{0,200}?>)?\s+(?:[\w:<>, ]{1,200}?\s+for\s+)?(?:\w+::)*([A-Za-z_]\w*)/.exec(line);
  if (impl) return impl[1];
  const name =
    KEYWORD_DECL.exec(line)?.[1] ??
    /\b(?:const|let|var)\s+([A-Za-z_$][\w$]*)\s*=/.exec(line)?.[1] ??
    /([A-Za-z_$~][\w$]*)\s*(?:<[^<>()]{0,80}>)?\s*\(/.exec(line)?.[1];
  return name && !NOT_NAMES.has(name) ? name : undefined;
}

/** A changed line that declares something, by keyword only: a call `f(x) {` is no declaration. */
function declaredByKeyword(line: string): string | undefined {
  return KEYWORD_DECL.exec(line)?.[1];
}

/** Python's: the `def` a hunk header or a changed line names. */
export const pyHeader = (header: string) => /^(?:async\s+)?def\s+(\w+)/.exec(header)?.[1];
export const pyChanged = (line: string) => /^[ \t]*(?:async[ \t]+)?def[ \t]+(\w+)/.exec(line)?.[1];

export interface FuncnameRule {
  /** Pathspecs of the language's files. */
  globs: string[];
  /**
   * Git's options that give it the rule (`-c diff.default.xfuncname=…`, before the command):
   * on the command line, since git before 2.31 (Ubuntu 20.04's, Debian 11's, where the clients
   * run) ignores configuration given through the environment, and the rule with it.
   */
  config: string[];
  /** The name a hunk header (the text after its `@@ … @@`) declares. */
  header: (text: string) => string | undefined;
  /** The name a changed line declares. */
  changed: (line: string) => string | undefined;
}

/** Every language's rule, Python's first (git's own Python rule is kept as it was). */
export const FUNCNAME_RULES: FuncnameRule[] = [
  { globs: ["*.py"], config: xfuncname("^[ \t]*((class|(async[ \t]+)?def)[ \t].*)$"), header: pyHeader, changed: pyChanged },
  ...OTHER_LANGUAGES.map((l) => ({ globs: l.globs, config: xfuncname(l.funcname), header: declaredName, changed: declaredByKeyword })),
];

function xfuncname(rule: string): string[] {
  return ["-c", `diff.default.xfuncname=${rule}`];
}
