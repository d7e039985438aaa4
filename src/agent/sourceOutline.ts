/**
 * Python run inside the sandbox (embedded by the scripts that need it): which files are source
 * in languages other than Python, and their definitions read from lines, since the sandbox has
 * no parser for them and the host never parses the repository's code. Python keeps its own
 * ast; everything here is for the TypeScript, Go, Rust, Java, Kotlin, C#, C/C++, Swift, PHP or
 * Ruby tree a coding agent works in. A definition is a declaration line (a keyword form such as
 * `function`, `func`, `fn`, `fun`, `class`, `impl`; a `const f = (…) =>` binding; a method head
 * `name(params) {`) and its span: braces matched outside strings (over lines too), comments and
 * regular expressions, an expression body's brackets, or `end` at the same indentation for Ruby.
 * bench/baseline/readerCheck.ts measures it against parsers.
 * Reading lines misses what a parser would not (a declaration split oddly over lines), and
 * that costs a location, never a wrong span for the ones found.
 */
/** Source files in languages other than Python, by extension, and the family each is read as. */
export const SOURCE_EXTENSIONS: Readonly<Record<string, string>> = {
  ".js": "js", ".jsx": "js", ".mjs": "js", ".cjs": "js", ".ts": "js", ".tsx": "js", ".mts": "js", ".cts": "js",
  ".vue": "js", ".svelte": "js", ".go": "go", ".rs": "rust", ".java": "jvm", ".kt": "jvm", ".kts": "jvm",
  ".scala": "jvm", ".groovy": "jvm", ".rb": "ruby", ".php": "php", ".c": "c", ".h": "c", ".cc": "c",
  ".cpp": "c", ".cxx": "c", ".hpp": "c", ".hh": "c", ".cs": "cs", ".swift": "swift",
};

/** Which files are source in other languages, and of which family: wanted by every tree's scan. */
const SOURCE_LANGUAGES = String.raw`
import json, re

EXT_LANG = json.loads(${JSON.stringify(JSON.stringify(SOURCE_EXTENSIONS))})
# Tests, stories, bundles and generated code of those languages, by name or by directory
# (Maven's src/test, Go's testdata, Jest's __tests__): an issue is fixed in the library.
OTHER_TESTISH = re.compile(r"(\.(test|spec|e2e|stories|min|bundle|generated)(-d)?\.\w+|_test\.(go|rb)|_spec\.rb|Tests?\.(java|kt|scala|cs|swift)|\.pb\.go)$|(^|/)(tests?|specs?|e2e|__tests__|__mocks__|__fixtures__|fixtures|testdata|testing|benches|examples?)/")


def lang_of(path):
    if path.endswith(".py"):
        return "py"
    dot = path.rfind(".")
    if dot <= path.rfind("/"):
        return None
    return EXT_LANG.get(path[dot:].lower())
`;

/**
 * The reader itself, wanted only for trees and locations in other languages. Compiling it and
 * its patterns costs ~15-20 ms of each sandbox process, so it is handed over as text and
 * compiled on first use.
 */
const SOURCE_READER = String.raw`CLASSISH = {"class", "interface", "struct", "enum", "trait", "impl", "module", "mod", "object", "record", "namespace", "protocol", "extension", "type", "union"}
MODS = r"(?:(?:export|default|declare|public|private|protected|internal|static|abstract|final|async|override|readonly|virtual|inline|extern|unsafe|open|sealed|data|suspend|partial|pub(?:\([\w:]+\))?|const(?=\s+fn)|operator|infix|tailrec|actual|expect|inner|enum|annotation|value|external)\s+)*"
KEYWORD_DECL = re.compile(
    r"^\s*(?:@[\w.]+(?:\([^)]*\))?\s+)*" + MODS + r"(function\*?|class|interface|struct|enum|trait|module|mod|object|record|namespace|protocol|extension|union|type|fn|func|fun|def)\s+"
    r"(?:\(\s*(?:[A-Za-z_]\w*\s+)?\*?\s*([A-Za-z_][\w.]*)(?:\[[^\]]*\])?\s*\)\s*)?"  # Go's receiver: its type is the class
    # Kotlin's type parameters and an extension's receiver type come before the name.
    r"(?:<[^>]*>\s*)?(?:[A-Za-z_][\w.]*(?:<[^()]*?>)?\??\.(?=[A-Za-z_$]))?"
    r"(?:self\.)?([A-Za-z_$][\w$]*[?!]?)"
)
# The trait begins with a name and is bounded: a trait part that could begin on a blank, over a
# run of blanks, was cubic (a 2 MB file of such lines took 90 s).
# Type parameters are read bracket by bracket (three levels deep), so a bound's arrow ("F: Fn() ->
# Command") does not end them (each character has one way to match: no backtracking to blow up).
# The type after "for" is the class ("for dyn Matcher": Matcher, not "dyn"); a blanket impl's
# ("for &'a mut M", "for [T]") is only a type parameter, so the trait names it instead.
IMPL_DECL = re.compile(
    r"^\s*(?:unsafe\s+)?impl\b(?:\s*<(?:[^<>{-]|-(?!>)|->|<(?:[^<>{-]|-(?!>)|->|<(?:[^<>{-]|-(?!>)|->|<[^<>{]*>)*>)*>)*>)?\s+"
    r"(?:[\w:<>][\w:<>, ]{0,200}?\s+for\s+(?:dyn\s+)?)?(?:[\w]+::)*([A-Za-z_]\w*)"
)
# \`const f = (…) => {\`, a class's \`handle = async () => {\`; a type annotation may hold arrows.
BINDING_DECL = re.compile(r"^\s*(?:export\s+)?(?:(?:const|let|var|static|public|private|protected|readonly)\s+)*([A-Za-z_$][\w$]*)\s*(?::(?:[^=]|=>){0,160}?)?=\s*(?:async\s+)?(?:function\b|(?:<[^()]{0,120}?>\s*)?\((?:[^()]*\)\s*(?::[^=]{0,80})?=>|[^()]*$)|[A-Za-z_$][\w$]*\s*=>)")
# A block that opens an anonymous function (a callback, a closure): what is defined in it is not a location.
CLOSURE = re.compile(r"(=>|->|\bfunction\b\s*\*?\s*\([^()]*\)|\bfunc\s*\([^()]*\)[^{]*|\|[^|]*\|)\s*\{\s*$")
PROTO_DECL = re.compile(r"^\s*([A-Za-z_$][\w$]*)\.prototype\.([A-Za-z_$][\w$]*)\s*=\s*(?:async\s+)?function\b")
# A function assigned to an object's member (Express's "res.redirect = function redirect(url) {",
# CommonJS's "exports.parse = (s) => ..."): its name is the member's, its class the object's,
# none for a module's exports or "this".
MEMBER_DECL = re.compile(r"^\s*((?:[A-Za-z_$][\w$]*\.)+)([A-Za-z_$][\w$]*)\s*=\s*(?:async\s+)?(?:function\b|\([^()]*\)\s*(?::[^=]{0,80})?=>|[A-Za-z_$][\w$]*\s*=>)")
# A method head: modifiers, up to three type words, a name, a parameter list with no strings or
# calls in it (so "describe('x', () => {" is a call, not a definition), then the body's brace
# (or the parameters going on over the next lines).
METHOD_DECL = re.compile(
    r"^\s*(?:@\w+(?:\([^)]*\))?\s+)*" + MODS + r"(?:get\s+|set\s+|\*\s*)?(?:[\w$<>\[\],.:*&?]+\s+){0,3}?[*&]*(?:(?P<recv>[A-Za-z_]\w*(?:<[^()]*>)?)(?P<sep>::|\.))?(?P<name>#?[A-Za-z_$~][\w$]*|operator\s*(?:\(\)|\[\]|[^\s\w()]{1,3}|\s[\w:]+[*&]*))\s*(?:<[^<>()]{0,80}>)?\s*"
    r"\((?P<params>(?:[^;'\"\x60(){}]|\([^;'\"\x60()]*\)|\{[^{}'\"\x60]*\})*)(?:\)\s*(?:(?:const|noexcept|override|final|mutable|volatile)\b\s*|&&?\s*)*(?:(?::|->)\s*(?:[^{};=]|\{[^{}]*\}){0,120}?)?\s*(?:throws\s+[\w., ]+)?(?:\s*where\s+[^{};=]*?)?\s*(?:\{[^{}]*\}\s*;?|(?P<arrow>=>).*|\{?))?\s*$"
)
# What stands before an anonymous class's type: Java's "new", Kotlin's "object :".
ANON_HEAD = re.compile(r"(^|\s)(new|object\s*:)\s*$")
C_RETURNED = re.compile(r"[\s*&]+[A-Za-z_]\w*\s*\(")
NOT_NAMES = {"if", "for", "while", "switch", "catch", "return", "new", "else", "do", "function", "sizeof", "typeof", "await", "yield", "super", "this", "with", "foreach", "elseif", "using", "lock", "fixed", "unless", "until", "when", "match", "loop", "synchronized"}
CALL_ANY = re.compile(r"([A-Za-z_$][\w$]*)\s*\(")
IDENT = re.compile(r"[A-Za-z_$][\w$]*")
MAX_DECL_LINE = 400
MAX_NESTING = 64
CONTINUES = ("{", "where", "throws", "->", ":", "extends", "implements", ")")
# Type brackets a head leaves open ("export class ZodArray<" … "> {"): a line that closes one
# carries the head on; one starting with ">" otherwise is a comparison ("computeSize(a)\n  > limit").
ANGLE = re.compile(r"->|=>|<|>")


# What may stand before a regular expression literal; after anything else a slash divides.
REGEX_AFTER = re.compile(r"(^|[(,=:\[!&|?{};+\-*%>~^]|\b(return|typeof|case|in|of|delete|void|throw|new|else|do|yield|await))$")


def regex_end(line, i, before):
    """Where a JavaScript regular expression literal opening at line[i] ends (past its flags):
    its quotes, backticks and braces are not code. None where the slash divides, -1 where it
    would open one that the line never closes."""
    if not REGEX_AFTER.search(before):
        return None
    j, n, in_class = i + 1, len(line), False
    while j < n:
        c = line[j]
        if c == "\\":
            j += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        elif c == "/":
            j += 1
            while j < n and line[j].isalpha():
                j += 1
            return j
        j += 1
    return -1


# A Rust character literal ('"', '\'', '\u{7f}'); a quote not starting one begins a lifetime.
RUST_CHAR = re.compile(r"'(?:\\(?:u\{[0-9A-Fa-f]{1,6}\}|x[0-9A-Fa-f]{2}|.)|[^\\'\n])'")
RUST_RAW = re.compile(r"b?r(#*)\"")


def string_at(line, i, lang):
    """The string literal opening at line[i], as (index past its opening, its terminator, whether
    backslash escapes, whether it may run over lines), or None."""
    ch = line[i]
    if lang == "rust":
        if ch in "rb" and (i == 0 or not (line[i - 1].isalnum() or line[i - 1] == "_")):
            m = RUST_RAW.match(line, i)
            if m:
                return m.end(), '"' + m.group(1), False, True
        if ch == '"':
            return i + 1, '"', True, True
        if ch == "'":
            m = RUST_CHAR.match(line, i)
            return (m.end(), "", False, False) if m else None
        return None
    if ch == "\x60" and lang in ("js", "go"):
        return i + 1, "\x60", lang == "js", True
    if ch == '"' and lang in ("jvm", "swift", "cs") and line.startswith('"""', i):
        return i + 3, '"""', lang != "cs", True
    if ch in "\"'":
        return i + 1, ch, True, False
    return None


def string_end(line, j, end, escapes):
    """Where the string whose terminator is end, open at line[j], ends on this line, else None."""
    n = len(line)
    while j < n:
        if escapes and line[j] == "\\":
            j += 2
        elif line.startswith(end, j):
            return j + len(end)
        else:
            j += 1
    return None


def template_end(line, j, stack):
    """Where a JavaScript template literal closes on this line, else None. stack says where the
    scan is: -1 in template text, n >= 0 in a \x24{…} substitution at brace depth n, which may
    hold strings and templates of its own; it carries over to the next line."""
    n = len(line)
    while j < n:
        c = line[j]
        if stack[-1] < 0:
            if c == "\\":
                j += 2
                continue
            if c == "\x60":
                stack.pop()
                j += 1
                if not stack:
                    return j
                continue
            if c == "$" and line.startswith("{", j + 1):
                stack.append(0)
                j += 2
                continue
        elif c == "\x60":
            stack.append(-1)
        elif c in "\"'":
            k = string_end(line, j + 1, c, True)
            j = n if k is None else k
            continue
        elif c == "{":
            stack[-1] += 1
        elif c == "}":
            if stack[-1] == 0:
                stack.pop()
            else:
                stack[-1] -= 1
        j += 1
    return None


def strip_code(lines, lang):
    """Each line with strings and comments blanked, so braces and words in them do not count
    (strings that run over lines included: templates, raw strings, text blocks)."""
    out = []
    block = False
    open_string = None
    for line in lines:
        buf = []
        i, n = 0, len(line)
        regexes = lang == "js"
        while i < n:
            if block:
                k = line.find("*/", i)
                if k < 0:
                    break
                block = False
                i = k + 2
                continue
            if open_string is not None:
                k = template_end(line, i, open_string[1]) if open_string[0] is None else string_end(line, i, *open_string)
                if k is None:
                    break
                open_string = None
                buf.append(" ")
                i = k
                continue
            ch = line[i]
            if line.startswith("/*", i):
                block = True
                i += 2
                continue
            if line.startswith("//", i) or (lang in ("ruby", "php") and ch == "#"):
                break
            if ch == "/" and regexes:
                # The context is the last characters kept; a slash that opens nothing ends the
                # tries on this line, so a line costs one scan whatever it holds.
                j = regex_end(line, i, "".join(buf[-64:]).rstrip())
                if j is not None and j > 0:
                    buf.append(" ")
                    i = j
                    continue
                regexes = j is None
            opened = string_at(line, i, lang)
            if opened is not None:
                j, end, escapes, multiline = opened
                if lang == "js" and end == "\x60":
                    # A template: its substitutions nest strings, braces and templates.
                    stack = [-1]
                    k = template_end(line, j, stack)
                    end = None
                    escapes = stack
                else:
                    k = string_end(line, j, end, escapes) if end else j
                buf.append(" ")
                if k is None:
                    # Unclosed on its line: a string that may go on holds the lines after it.
                    open_string = (end, escapes) if multiline else None
                    break
                i = k
                continue
            buf.append(ch)
            i += 1
        out.append("".join(buf))
    return out


def brace_pairs(code):
    """Every line's opening braces as [column, closing line], matched in one pass (None: never
    closed), so spans cost one walk of the file however deep or unclosed its blocks are."""
    opens = [[] for _ in code]
    stack = []
    for k, line in enumerate(code):
        if "{" not in line and "}" not in line:
            continue
        for col, ch in enumerate(line):
            if ch == "{":
                entry = [col, None]
                opens[k].append(entry)
                stack.append(entry)
            elif ch == "}" and stack:
                stack.pop()[1] = k
    return opens


def closing(opens, k, col, last):
    entry = next(e for e in opens[k] if e[0] == col)
    return last if entry[1] is None else entry[1]


def brace_end(code, opens, i):
    """The last line of the body whose brace opens on line i, or on the lines that carry on its
    head (parameters over several lines, a where clause, a brace on the next line); else None."""
    parens = 0
    types = 0
    angles = 0
    last = ""
    prev = ""
    for k in range(i, min(i + 41, len(code))):
        line = code[k]
        if k > i:
            t = line.strip()
            if not (t or parens > 0):
                return None
            if parens <= 0 and not t.startswith(CONTINUES) and not (angles > 0 and t.startswith(">")) and not prev.endswith((",", "where", "->", "=>", ":", "(", "<")):
                return None
        for a in ANGLE.findall(line):
            angles += 1 if a == "<" else -1 if a == ">" else 0
        for col, ch in enumerate(line):
            # Brackets too: a return type may be a tuple over lines ("): [ … ] {").
            if ch in "([":
                parens += 1
            elif ch in ")]":
                parens -= 1
            elif ch == "{" and last in ":<":
                # An object type, not the body: "): { ok: boolean; value: T } | null {", "Promise<{ ok: boolean }>".
                types += 1
                parens += 1
            elif ch == "}" and types > 0:
                types -= 1
                parens -= 1
            elif ch == ";" and parens <= 0:
                return None
            elif ch == "{" and parens <= 0:
                return closing(opens, k, col, len(code) - 1)
            if not ch.isspace():
                last = ch
        prev = line.rstrip()
    return None


# Kotlin's and Scala's "fun f(x) = x + 1", C#'s "int F() => 1;": a body that is an expression.
EXPRESSION_BODY = re.compile(r"\)\s*(?::\s*[^={};]+?)?\s*(?:=(?![=>])|=>)\s*(\S|$)")


def expression_end(code, i):
    """The last line of an expression body whose head starts on line i: where its brackets close.
    The body starts where the parameters close (on a later line when they run over lines), or on
    the next line after an "=" that ends one."""
    depth = 0
    for h in range(i, min(i + 41, len(code))):
        depth += code[h].count("(") - code[h].count(")")
        if depth <= 0:
            break
    else:
        return None
    m = EXPRESSION_BODY.search(code[h])
    if not m:
        return None
    depth = 0
    for k in range(h if m.group(1) else h + 1, min(h + 41, len(code))):
        for ch in code[k]:
            if ch in "([{":
                depth += 1
            elif ch in ")]}":
                depth -= 1
        if depth <= 0:
            return k
    return None


def block_end(code, opens, i):
    """The line where the block line i leaves open is closed, or None if it leaves none open."""
    entry = next((e for e in opens[i] if e[1] != i), None)
    if entry is None:
        return None
    return len(code) - 1 if entry[1] is None else entry[1]


# A definition on one line: "def x; y; end", or Ruby 3's "def x(y) = y".
RUBY_ONE_LINE = re.compile(r"(^|[;\s])end\s*$|^\s*def\s+\S+?(?:\([^)]*\)\s*|\s+)=(?![=~])")
RUBY_COMMENT = re.compile(r"\s#[^'\"{}]*$")
# Ruby's own method names: setters ("name=(v)") and operators ("[]=", "<=>", "-@").
RUBY_DEF = re.compile(r"^\s*def\s+(?:self\.)?([A-Za-z_]\w*(?:[?!]|=(?=\())?|\[\]=?|<=>|===?|=~|!~|\*\*|<<|>>|[+\-*/%<>!~^&|]=?@?)")


def ruby_ends(lines, starts):
    """The line of each Ruby definition's "end" (start line → indentation): the first "end" at its
    indentation or less, matched in one pass."""
    ends = {}
    stack = []
    for k, s in enumerate(lines):
        if k in starts:
            if RUBY_ONE_LINE.search(RUBY_COMMENT.sub("", s)):
                ends[k] = k
            else:
                stack.append((starts[k], k))
            continue
        t = s.strip()
        if t == "end" or t.startswith(("end ", "end.", "end)")):
            e = len(s) - len(s.lstrip())
            while stack and stack[-1][0] >= e:
                ends[stack.pop()[1]] = k
    return ends


RUST_TEST = re.compile(r"^#\[(?:[\w:]+::)?test\b|^#\[cfg\(test\)\]")


def comments_above(lines, i, lang):
    """The comment over a definition, its annotations, whether an attribute marks it a test (Rust),
    and the line its annotations start on (the span, as Python's includes its decorators)."""
    doc, decos = [], []
    test = False
    first = i
    k = i - 1
    while k >= 0 and i - k <= 40:
        t = lines[k].strip()
        if t.startswith("@"):
            m = IDENT.match(t[1:])
            if m:
                decos.append(m.group(0))
                first = k
        elif t.startswith("#["):
            # A Rust attribute (#[inline], #[cfg(…)]) is its definition's, as an annotation is.
            test = test or bool(RUST_TEST.match(t))
            first = k
        elif t.startswith(("//", "/*", "*")) or (lang == "ruby" and t.startswith("#")):
            doc.append(t.lstrip("/*#! "))
        else:
            j = annotation_head(lines, k)
            if j is None:
                break
            h = lines[j].strip()
            m = IDENT.match(h[1:]) if h.startswith("@") else None
            if m:
                decos.append(m.group(0))
            test = test or bool(RUST_TEST.match(h))
            first = k = j
        k -= 1
    return " ".join(reversed(doc)), decos, test, first


def annotation_head(lines, k):
    """The line an attribute or annotation written over several lines (a Rust #[cfg(any(…))], a
    Java @Table(…)) begins on, when line k closes one, else None: its brackets balance from that
    line to k, and nothing opened between is left open."""
    if not lines[k].rstrip().endswith((")", "]")):
        return None
    depth = 0
    for j in range(k, max(-1, k - 20), -1):
        s = lines[j]
        depth += s.count(")") + s.count("]") - s.count("(") - s.count("[")
        if depth < 0:
            return None
        t = s.strip()
        if depth == 0:
            return j if t.startswith(("#[", "@")) and j < k else None
    return None


def declaration(line, lang):
    """(kind, name, receiver class, parameter text) for a declaration line, else None. kind is
    "def" or "class"; or "anon", the head of an anonymous class ("new Type() {"); or "bare", a
    Java head with no type, a constructor or an enum constant's body by the enclosing class."""
    if len(line) > MAX_DECL_LINE:
        return None
    m = IMPL_DECL.match(line) if lang == "rust" else None
    if m:
        return "class", m.group(1), None, ""
    m = RUBY_DEF.match(line) if lang == "ruby" else None
    if m:
        return "def", m.group(1), None, line[m.end():].strip("() ")
    m = KEYWORD_DECL.match(line)
    # "object" declares one in Kotlin and Scala; elsewhere (C#) it is a type. In C a struct's
    # name followed by a function's is the type that function returns.
    if m and not (m.group(1) == "object" and lang != "jvm") and not (lang == "c" and C_RETURNED.match(line, m.end())):
        kw, recv, name = m.group(1), m.group(2), m.group(3)
        if kw == "type" and lang != "go" and "{" not in line:
            return None
        kind = "class" if kw in CLASSISH else "def"
        rest = line[m.end():]
        params = rest[rest.find("(") + 1:rest.find(")")] if "(" in rest and ")" in rest else ""
        return kind, name, recv.split(".")[-1] if recv else None, params
    if lang == "js":
        m = BINDING_DECL.match(line)
        if m:
            rest = line[m.end(1):]
            return "def", m.group(1), None, rest[rest.find("(") + 1:rest.find(")")] if "(" in rest else ""
        m = PROTO_DECL.match(line)
        if m:
            return "def", m.group(2), m.group(1), ""
        m = MEMBER_DECL.match(line)
        if m and m.group(2) != "exports":
            # "Foo.prototype.bar = (x) =>" is Foo's, as PROTO_DECL reads a function's.
            objects = [o for o in m.group(1).rstrip(".").split(".") if o != "prototype"]
            recv = objects[-1] if objects else "this"
            rest = line[m.end(2):]
            return "def", m.group(2), None if recv in ("exports", "this", "module") else recv, rest[rest.find("(") + 1:rest.find(")")] if "(" in rest else ""
    if lang in ("ruby", "go", "rust"):
        return None
    m = METHOD_DECL.match(line)
    name = m and m.group("name")
    # "#name(" is a JavaScript class's private method; elsewhere "#" starts a directive.
    # "Type.name(" and "name() => x" are C#'s (an explicit interface member, an expression body).
    if name and name not in NOT_NAMES and (lang == "js" or not name.startswith("#")) and (lang == "cs" or not (m.group("sep") == "." or m.group("arrow"))):
        head = line[:m.start("name")]
        # "new Type() {" opens an anonymous class (C#'s "new" modifier comes before a return
        # type, so the name never follows it); in Java a head with no type or modifier is a
        # constructor or an enum constant's body, told apart by the enclosing class's name.
        if ANON_HEAD.search(head):
            return "anon", name, None, ""
        words = head.split()
        if words and words[0] in NOT_NAMES:
            return None
        if lang == "jvm" and not head.strip() and name != "constructor":
            return "bare", name, m.group("recv"), m.group("params")
        return "def", name, m.group("recv"), m.group("params")
    return None


def find_source_def(defs, cls, fn):
    """The definition a location names (class, function or both), as the ast check finds Python's."""
    if not fn:
        last = cls.split(".")[-1]
        return next((d for d in defs if d["kind"] == "class" and d["name"] == last and (d["cls"] or "") + "." + last in ("." + cls, cls)), None) or next((d for d in defs if d["kind"] == "class" and d["name"] == last), None)
    named = [d for d in defs if d["kind"] == "def" and d["name"] == fn]
    if cls:
        return next((d for d in named if d["cls"] == cls), None) or next((d for d in named if d["cls"] and d["cls"].split(".")[-1] == cls.split(".")[-1]), None)
    return next((d for d in named if d["cls"] is None), None) or (named[0] if named else None)


def outline_source(lines, lang):
    """Definitions as dicts: kind, name, cls (dotted or None), start (the declaration), first (its
    annotations' first line), end (1-based), params, doc, calls, decos."""
    code = strip_code(lines, lang) if lang != "ruby" else lines
    decls = []
    for i, line in enumerate(code):
        d = declaration(line, lang)
        if d is not None:
            decls.append((i,) + d)
        elif lang != "ruby" and len(line) <= MAX_DECL_LINE and CLOSURE.search(line):
            decls.append((i, "closure", "", None, ""))
    if lang == "ruby":
        ends = ruby_ends(lines, {i: len(lines[i]) - len(lines[i].lstrip()) for i, kind, *_ in decls})
        spans = [(ends.get(d[0]),) + d for d in decls]
    else:
        opens = brace_pairs(code)
        spans = [((block_end if d[1] == "closure" else brace_end)(code, opens, d[0]),) + d for d in decls]
        if lang in ("jvm", "cs"):
            spans = [(expression_end(code, d[1]) if d[0] is None and d[2] in ("def", "bare") else d[0],) + d[1:] for d in spans]
    defs = []
    # Open scopes: classes, and at most one function, closure or test on top (nothing is kept
    # inside those); each class with its dotted name.
    stack = []
    for end, i, kind, name, recv, params in spans:
        if end is None:
            continue
        while stack and stack[-1][0] < i:
            stack.pop()
        # Nested in a function (a closure, a callback) or in tests: not a location an issue names.
        # Classes nested past any real code's depth are a hostile file's, and are left out too.
        if (stack and stack[-1][1] != "class") or len(stack) >= MAX_NESTING:
            continue
        if kind == "closure":
            stack.append((end, kind, None))
            continue
        if kind == "bare":
            kind = "def" if stack and (stack[-1][2] or "").split(".")[-1] == name else "anon"
        if kind == "anon":
            # Its methods are the enclosing class's (a field's value, an enum constant).
            stack.append((end, "class", stack[-1][2] if stack else None))
            continue
        doc, decos, test, first = comments_above(lines, i, lang)
        if test:
            stack.append((end, "test", None))
            continue
        cls = stack[-1][2] if stack else recv
        calls = set(CALL_ANY.findall("\n".join(code[i + 1:end + 1]))) - NOT_NAMES if kind == "def" else set()
        defs.append({"kind": kind, "name": name, "cls": cls, "start": i + 1, "first": first + 1, "end": end + 1, "params": IDENT.findall(params), "doc": doc, "calls": calls, "decos": decos})
        stack.append((end, kind, f"{cls}.{name}" if stack and kind == "class" else name))
    return defs
`;

export const SOURCE_OUTLINE = `${SOURCE_LANGUAGES}

_READER_SOURCE = ${JSON.stringify(SOURCE_READER)}
_reader = None


def _read():
    global _reader
    if _reader is None:
        _reader = dict(globals())
        exec(compile(_READER_SOURCE, "source_reader", "exec"), _reader)
    return _reader


def declaration(line, lang):
    return _read()["declaration"](line, lang)


def outline_source(lines, lang):
    return _read()["outline_source"](lines, lang)


def find_source_def(defs, cls, fn):
    return _read()["find_source_def"](defs, cls, fn)
`;

