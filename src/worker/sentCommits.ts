import type { NamedCommitRef } from "../queue/contract.js";

/**
 * The commits a caller sent (with its upload, or with a patch that carries them) that the issue
 * names (refs as issueTerms reads them). Clients older than API 0.6.0 read a tracker link without owner/name
 * (`code.example.org/ticket/77`) as `#77`, where the service now reads `code.example.org#77`:
 * their `#77` still answers that link, so an older CLI or MCP server keeps its hint (that client
 * already judged the tracker the project's own).
 */
export function sentCommitsNamed(refs: string[], sent: NamedCommitRef[]): NamedCommitRef[] {
  const wanted = new Set(refs);
  for (const ref of refs) {
    const hash = ref.indexOf("#");
    if (hash > 0 && !ref.slice(0, hash).includes("/")) wanted.add(ref.slice(hash));
  }
  return sent.filter((c) => wanted.has(c.ref));
}

/**
 * A repository's named commits as its mirror has them, then those the caller sent that the mirror
 * lacks: a patch's own commits (a branch no remote holds), which only the caller's history has.
 * The mirror's reading of a commit wins over what a caller says of it.
 */
export function withSentCommits<C extends { sha: string }>(mirror: C[], sent: C[]): C[] {
  const known = new Set(mirror.map((c) => c.sha));
  return [...mirror, ...sent.filter((c) => !known.has(c.sha))];
}
