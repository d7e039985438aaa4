import { describe, it, expect } from "vitest";
import { extractIssueTerms } from "../../src/agent/baseline/issueTerms.js";
import { sentCommitsNamed, withSentCommits } from "../../src/worker/sentCommits.js";

const commit = (ref: string) => ({ ref, sha: "a".repeat(40), files: ["app/main.py"], defs: [] });

/** Which of an upload's commits a job uses: the refs are the service's own reading of the issue. */
describe("the named commits a caller sent", () => {
  it("takes the commits whose ref the issue names, and an older client's #N for a tracker link", () => {
    const refs = extractIssueTerms("Broke in 4d5e6f7a8b, see https://code.example.org/ticket/77 and other/lib#91.").commits;
    expect(refs).toEqual(expect.arrayContaining(["4d5e6f7a8b", "code.example.org#77", "other/lib#91"]));
    const sent = [commit("4d5e6f7a8b"), commit("code.example.org#77"), commit("#77"), commit("#91"), commit("#78"), commit("1234567")];
    expect(sentCommitsNamed(refs, sent).map((c) => c.ref)).toEqual(["4d5e6f7a8b", "code.example.org#77", "#77"]);
    // Another project's #91 on GitHub is not this project's: an owner/name ref never reads as bare.
    expect(sentCommitsNamed(["other/lib#91"], sent)).toEqual([]);
    expect(sentCommitsNamed([], sent)).toEqual([]);
  });

  it("adds to a mirror's reading the commits it lacks, and keeps the mirror's where both name one", () => {
    const mirror = [{ ...commit("#77"), sha: "b".repeat(40), files: ["app/mirror.py"] }];
    const sent = [
      { ...commit("#77"), sha: "b".repeat(40), files: ["app/claimed.py"] },
      { ...commit("#77"), sha: "c".repeat(40), files: ["app/local.py"] },
    ];
    expect(withSentCommits(mirror, sent).map((c) => [c.sha[0], c.files[0]])).toEqual([
      ["b", "app/mirror.py"],
      ["c", "app/local.py"],
    ]);
    expect(withSentCommits([], sent)).toEqual(sent);
    expect(withSentCommits(mirror, [])).toEqual(mirror);
  });
});
