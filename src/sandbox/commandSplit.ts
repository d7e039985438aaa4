/**
 * Splits a terminal call into top-level bash statements, the way the reference decided that a
 * call holds "multiple commands" (statements separated by newlines; `;`, `&&`, `||`, `|` and
 * `&` keep them together; newlines inside quotes, $(…), compound commands, heredoc bodies or
 * after a line continuation do not split). Input it cannot make sense of (an unclosed quote or
 * block) is returned whole, like the reference's parse-failure fallback.
 */

const OPENERS = new Map([
  ["if", "fi"],
  ["case", "esac"],
  ["do", "done"],
  ["{", "}"],
]);
const CLOSERS = new Set(["fi", "esac", "done", "}"]);
/** Words after which the next word is again in command position. */
const LEADS = new Set(["then", "do", "else", "elif", "if", "while", "until", "!", "time", "{", "in"]);
const WORD_END = /[\s|&;()<>]/;

/**
 * Constructs the reference's parser (bashlex) cannot read: arithmetic `$((…))`, `[[ … ]]`, the
 * `time` and `select` keywords, array assignments `a=(…)`. It then kept the whole call and ran
 * it, so a call with any of them is one statement here too (the model ran those in training).
 */
const UNREADABLE_BY_REFERENCE = /\$\(\(|(?:^|[\s;&|(])\[\[\s|(?:^|[\n;&|(])[ \t]*(?:time|select)\s|(?:^|[\s;&|])[A-Za-z_]\w*\+?=\(/;

export function splitBashCommands(input: string): string[] {
  if (input.trim() === "") return [""];
  if (UNREADABLE_BY_REFERENCE.test(input)) return [input];
  const starts: number[] = [];
  const stack: string[] = [];
  const heredocs: { delim: string; strip: boolean }[] = [];
  let i = 0;
  let cmdPos = true;
  let continued = false; // the line ends in an operator that needs more input
  let seeking = true;
  const n = input.length;

  const fail = () => [input];

  while (i < n) {
    const c = input[i]!;
    if (seeking) {
      if (/\s/.test(c)) {
        i++;
        continue;
      }
      if (c === "#") {
        while (i < n && input[i] !== "\n") i++;
        continue;
      }
      starts.push(i);
      seeking = false;
      cmdPos = true;
    }
    if (c === "\\") {
      i += 2;
      cmdPos = false;
      continued = false;
      continue;
    }
    if (c === "'" || c === '"' || c === "`" || (c === "$" && input[i + 1] === "(")) {
      const end = skipQuoted(input, i);
      if (end < 0) return fail();
      i = end;
      cmdPos = false;
      continued = false;
      continue;
    }
    if (c === "#" && (i === 0 || /[\s;&|()]/.test(input[i - 1]!))) {
      while (i < n && input[i] !== "\n") i++;
      continue;
    }
    if (c === "\n") {
      i++;
      if (heredocs.length) {
        i = skipHeredocBodies(input, i, heredocs);
        if (i < 0) return fail();
        heredocs.length = 0;
      }
      if (stack.length === 0 && !continued) {
        seeking = true;
      } else {
        cmdPos = true;
      }
      continue;
    }
    if (c === "<" && input[i + 1] === "<" && input[i + 2] !== "<") {
      let j = i + 2;
      const strip = input[j] === "-";
      if (strip) j++;
      while (input[j] === " " || input[j] === "\t") j++;
      let delim = "";
      while (j < n && !WORD_END.test(input[j]!)) {
        const ch = input[j]!;
        if (ch === "'" || ch === '"') {
          const end = input.indexOf(ch, j + 1);
          if (end < 0) return fail();
          delim += input.slice(j + 1, end);
          j = end + 1;
        } else if (ch === "\\") {
          delim += input[j + 1] ?? "";
          j += 2;
        } else {
          delim += ch;
          j++;
        }
      }
      if (!delim) return fail();
      heredocs.push({ delim, strip });
      i = j;
      cmdPos = false;
      continued = false;
      continue;
    }
    if (c === "|" || c === "&" || c === ";") {
      const two = input.slice(i, i + 2);
      if (two === "&&" || two === "||") {
        i += 2;
        continued = true;
      } else if (two === ";;" || two === ";&") {
        i += 2;
        continued = false;
      } else {
        i++;
        // A lone `|` (and `|&`) needs more input; `;` and `&` end the statement.
        continued = c === "|";
        if (c === "|" && input[i] === "&") i++;
      }
      cmdPos = true;
      continue;
    }
    if (c === "(") {
      if (stack.at(-1) !== "esac") stack.push(")");
      i++;
      cmdPos = true;
      continued = false;
      continue;
    }
    if (c === ")") {
      if (stack.at(-1) === ")") stack.pop();
      else if (stack.at(-1) !== "esac") return fail();
      i++;
      cmdPos = true;
      continue;
    }
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    // A word.
    let j = i;
    while (j < n && !WORD_END.test(input[j]!) && !"'\"`\\".includes(input[j]!)) j++;
    if (j === i) j = i + 1;
    const word = input.slice(i, j);
    const plain = j >= n || WORD_END.test(input[j]!);
    if (cmdPos && plain) {
      if (word === "do" && stack.at(-1) === "do?") stack[stack.length - 1] = "done";
      else if (OPENERS.has(word)) stack.push(OPENERS.get(word)!);
      // Loops stay open from their keyword to `done`, across the newline before `do`.
      else if (word === "for" || word === "while" || word === "until" || word === "select") stack.push("do?");
      else if (CLOSERS.has(word)) {
        if (stack.at(-1) !== word) return fail();
        stack.pop();
      }
    }
    cmdPos = plain && LEADS.has(word);
    continued = false;
    i = j;
  }
  if (stack.length || heredocs.length || continued) return fail();
  if (starts.length <= 1) return [input];
  const bounds = [...starts, n];
  return starts.map((s, k) => input.slice(s, bounds[k + 1]).trimEnd());
}

/** Index just past the quoted region starting at `i`, or -1 when it never closes. */
function skipQuoted(s: string, i: number): number {
  const c = s[i]!;
  if (c === "'") {
    const end = s.indexOf("'", i + 1);
    return end < 0 ? -1 : end + 1;
  }
  if (c === "`") {
    for (let j = i + 1; j < s.length; j++) {
      if (s[j] === "\\") j++;
      else if (s[j] === "`") return j + 1;
    }
    return -1;
  }
  if (c === '"') {
    for (let j = i + 1; j < s.length; j++) {
      const d = s[j];
      if (d === "\\") j++;
      else if (d === '"') return j + 1;
      else if (d === "$" && s[j + 1] === "(") {
        const end = skipQuoted(s, j);
        if (end < 0) return -1;
        j = end - 1;
      } else if (d === "`") {
        const end = skipQuoted(s, j);
        if (end < 0) return -1;
        j = end - 1;
      }
    }
    return -1;
  }
  // $( … ): balance parentheses, honouring nested quotes.
  let depth = 0;
  for (let j = i + 1; j < s.length; j++) {
    const d = s[j];
    if (d === "\\") j++;
    else if (d === "'" || d === '"' || d === "`") {
      const end = skipQuoted(s, j);
      if (end < 0) return -1;
      j = end - 1;
    } else if (d === "(") depth++;
    else if (d === ")") {
      depth--;
      if (depth === 0) return j + 1;
    }
  }
  return -1;
}

function skipHeredocBodies(s: string, i: number, docs: { delim: string; strip: boolean }[]): number {
  for (const doc of docs) {
    for (;;) {
      if (i >= s.length) return -1;
      let end = s.indexOf("\n", i);
      if (end < 0) end = s.length;
      let line = s.slice(i, end);
      if (doc.strip) line = line.replace(/^\t+/, "");
      i = Math.min(end + 1, s.length);
      if (line === doc.delim) break;
      if (end === s.length) return -1;
    }
  }
  return i;
}
