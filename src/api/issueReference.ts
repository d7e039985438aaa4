/**
 * An "issue" that is only a pointer to one (`Fix https://github.com/o/r/issues/123`, `see #123`):
 * what an agent sends when it has the link and not the text. The service follows no link (an
 * issue tracker is not a place the workers reach), so such a request would be answered from the
 * one word left. A link to code (a file's lines, a commit, a diff) is not this: the baseline reads
 * what it points at.
 */
const ISSUE_PAGE = /^https?:\/\/\S+\/(?:issues|pull|pulls|merge_requests|discussions|ticket|tickets)\/\d+\/?(?:[?#]\S*)?$/i;
const URL = /https?:\/\/\S+/gi;
/** `#123`, `GH-123`, `owner/name#123`. */
const BARE_REF = /(?:^|\s)(?:[\w.-]+\/[\w.-]+)?#\d+\b|\bGH-\d+\b/gi;

/** The reference when the text holds issue references and, besides, fewer than two words and six letters; else null. */
export function onlyAnIssueReference(text: string): string | null {
  // Without the punctuation a link ends a sentence or a parenthesis with.
  const urls = (text.match(URL) ?? []).map((u) => u.replace(/[).,;:!?'"\]>]+$/, ""));
  const bare = text.match(BARE_REF) ?? [];
  if (!urls.length && !bare.length) return null;
  if (!urls.every((u) => ISSUE_PAGE.test(u))) return null;
  const rest = text.replace(URL, " ").replace(BARE_REF, " ");
  // Letters of any script: a sentence in Chinese or Japanese is one run of them.
  const words = rest.match(/\p{L}{2,}/gu) ?? [];
  const letters = words.join("").length;
  return words.length < 2 && letters < 6 ? (urls[0] ?? bare[0]!.trim()) : null;
}
