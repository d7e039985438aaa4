import { describe, expect, it } from "vitest";
import { answer } from "../../src/mcp/tool.js";
import type { JobView } from "../../src/store/jobStore.js";

/** What the calling model reads of a failed job: the failure, and where its time went when one phase took most of it. */
const failed = (timings?: Record<string, number>): JobView => ({
  id: "5f3c2a1b-8d4e-4f6a-9b7c-2e1d0c3b4a59",
  status: "failed",
  repo: { url: "https://github.com/o/r.git", commit: "a".repeat(40) },
  owner: "anonymous",
  created_at: "2026-11-29T10:00:00.000Z",
  started_at: "2026-11-29T10:00:01.000Z",
  finished_at: "2026-11-29T10:15:01.000Z",
  attempts: 1,
  progress: null,
  cached: false,
  result: null,
  error: { code: "job_timeout", message: "the job ran longer than 900 s", ...(timings ? { timings } : {}) },
});

describe("a failed job's answer to the calling model", () => {
  it("says which phase took most of its time, which says what to mend", () => {
    const slowFetch = answer(failed({ queue_wait_ms: 200, repo_ms: 840_000, total_ms: 900_000 }));
    expect(slowFetch.isError).toBe(true);
    expect((slowFetch.content[0] as { text: string }).text).toBe("Localization failed (job_timeout: the job ran longer than 900 s; 840 s of its 900 s went to fetching the repository).");
    expect(slowFetch.structuredContent).toMatchObject({ error: { timings: { repo_ms: 840_000 } } });
    // No phase took most of it (the policy did), or no timings: the failure alone.
    expect((answer(failed({ queue_wait_ms: 200, repo_ms: 1_000, sandbox_ms: 300, total_ms: 900_000 })).content[0] as { text: string }).text).toBe("Localization failed (job_timeout: the job ran longer than 900 s).");
    expect((answer(failed()).content[0] as { text: string }).text).toBe("Localization failed (job_timeout: the job ran longer than 900 s).");
  });
});
