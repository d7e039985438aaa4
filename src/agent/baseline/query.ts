import { isStopword, type IssueTerms } from "./issueTerms.js";

/**
 * What the baseline searches for, built from the issue's terms: prose words and the parts
 * of the issue's identifiers (stemmed in the sandbox, so both meet the code's tokens the
 * same way), the identifiers themselves, and fixed strings (quoted code, error messages,
 * option names) with what kind each is.
 */

export type PhraseKind = "code" | "option";

export interface Query {
  words: string[];
  /** Per word: from the prose, and the weight of the strongest identifier it is part of. */
  wordFrom: Array<{ prose: boolean; ident: number }>;
  names: string[];
  phrases: string[];
  phraseKinds: PhraseKind[];
  /** Files that are not source the issue names, asked of the tree as they are. */
  files: string[];
  /** Paths the issue names (its frames', its text's): the languages of the tree's parts it is about. */
  sources: string[];
  /** Its stack trace's frames' paths. */
  frames: string[];
}

const MAX_WORDS = 60;
const MAX_NAMES = 30;

/** Identifier parts as the sandbox's splitter cuts them: snake_case, CamelCase, HTTPAdapter. */
export function identifierParts(name: string): string[] {
  return (name.match(/[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+/g) ?? []).map((s) => s.toLowerCase()).filter((s) => s.length >= 3);
}

/** The issue's code names, less those of the reporter's own test code. */
export function usefulNames(terms: IssueTerms): IssueTerms["identifiers"] {
  return terms.identifiers.filter((i) => /[A-Za-z]{2}/.test(i.name) && !/^_*test/i.test(i.name));
}

export function buildQuery(terms: IssueTerms): Query {
  const index = new Map<string, number>();
  const words: string[] = [];
  const wordFrom: Query["wordFrom"] = [];
  const add = (word: string, prose: boolean, ident: number) => {
    const at = index.get(word);
    if (at !== undefined) {
      const w = wordFrom[at]!;
      w.prose ||= prose;
      w.ident = Math.max(w.ident, ident);
      return;
    }
    if (words.length >= MAX_WORDS) return;
    index.set(word, words.length);
    words.push(word);
    wordFrom.push({ prose, ident });
  };
  for (const w of terms.words) add(w, true, 0);
  const names = usefulNames(terms).slice(0, MAX_NAMES);
  for (const id of names) for (const part of identifierParts(id.name)) if (!isStopword(part)) add(part, false, id.weight);

  const phrases: string[] = [];
  const phraseKinds: PhraseKind[] = [];
  for (const p of terms.phrases) {
    phrases.push(p);
    phraseKinds.push("code");
  }
  // Options as the code declares them: "--name" for argparse-style parsers, or the bare
  // quoted name for option tables and settings.
  for (const o of terms.options.slice(0, 5)) {
    for (const p of [`--${o}`, `"${o}"`, `'${o}'`]) {
      phrases.push(p);
      phraseKinds.push("option");
    }
  }
  // Well-formed, for the sandbox's Python: half an emoji (a phrase cut at its length limit, an
  // issue's own "\ud83d") would end its script at the first strict encode.
  return { words: words.map(wellFormed), wordFrom, names: names.map((n) => wellFormed(n.name)), phrases: phrases.map(wellFormed), phraseKinds, files: terms.files.map(wellFormed), sources: terms.paths.map(wellFormed), frames: terms.frames.map((f) => wellFormed(f.path)) };
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
const wellFormed = (s: string) => s.replace(LONE_SURROGATE, "\ufffd");
