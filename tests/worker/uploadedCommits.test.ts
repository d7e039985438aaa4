import { describe, it, expect } from "vitest";
import { extractIssueTerms } from "../../src/agent/baseline/issueTerms.js";
import { uploadedCommitsNamed } from "../../src/worker/uploadedCommits.js";

const commit = (ref: string) => ({ ref, sha: "a".repeat(40), files: ["app/main.py"], defs: [] });

/** Which of an upload's commits a job uses: the refs are the service's own reading of the issue. */
describe("an upload's named commits", () => {
  it("takes the commits whose ref the issue names, and an older client's #N for a tracker link", () => {
    const refs = extractIssueTerms("Broke in 4d5e6f7a8b, see https://code.example.org/ticket/77 and other/lib#91.").commits;
    expect(refs).toEqual(expect.arrayContaining(["4d5e6f7a8b", "code.example.org#77", "other/lib#91"]));
    const sent = [commit("4d5e6f7a8b"), commit("code.example.org#77"), commit("#77"), commit("#91"), commit("#78"), commit("1234567")];
    expect(uploadedCommitsNamed(refs, sent).map((c) => c.ref)).toEqual(["4d5e6f7a8b", "code.example.org#77", "#77"]);
    // Another project's #91 on GitHub is not this project's: an owner/name ref never reads as bare.
    expect(uploadedCommitsNamed(["other/lib#91"], sent)).toEqual([]);
    expect(uploadedCommitsNamed([], sent)).toEqual([]);
  });
});
