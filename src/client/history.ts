import { basename } from "node:path";
import { extractIssueTerms } from "../agent/baseline/issueTerms.js";
import { NAMED_COMMIT_DEFS_MAX, namedCommitSchema, type NamedCommitRef } from "../queue/contract.js";
import { commitChanges } from "../repos/history.js";

/**
 * What the commits an issue names changed, read from the developer's own checkout, for a tree
 * that is uploaded: the service has no history for an upload, and the checkout has it all
 * ("Regression in b3db6c8", "same as #123"). The issue is read as the baseline reads it and the
 * history as the service reads a mirror's (repos/history.ts, which only reads: no fetch, no
 * hooks), so an upload is answered as its repository URL would be. Only HEAD's past counts;
 * with `after`, only the commits since it (a branch's own, sent beside a patch on a remote's commit).
 * It never rejects (it runs beside the upload): a failure here costs the hint, never the request.
 */
export async function checkoutCommits(
  checkout: { root: string; gitDir: string },
  head: string,
  issue: string,
  signal?: AbortSignal,
  options: { after?: string } = {},
): Promise<NamedCommitRef[]> {
  try {
    // As much as the service takes by default: the reading is linear, but a megabyte is seconds.
    const refs = extractIssueTerms(issue.slice(0, READ_MAX_CHARS)).commits;
    if (refs.length === 0) return [];
    // The checkout's directory stands for the project's name, which says whose `owner/name#123` is ours.
    const changes = await commitChanges(checkout.gitDir, head, refs, { owner: "", name: basename(checkout.root) }, signal, options);
    // The contract's bounds: what does not fit is left out rather than refused.
    return changes.flatMap((c) => {
      const parsed = namedCommitSchema.safeParse({ ...c, defs: c.defs.slice(0, NAMED_COMMIT_DEFS_MAX) });
      return parsed.success ? [parsed.data] : [];
    });
  } catch {
    return [];
  }
}

const READ_MAX_CHARS = 100_000;
