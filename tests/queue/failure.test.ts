import { describe, it, expect } from "vitest";
import { decodeFailure, FAILURE_MESSAGE_CHARS, JobFailedError } from "../../src/queue/failure.js";

describe("a job's failure as BullMQ keeps it", () => {
  it("carries its code and a clipped message: an outside party's text (a 3 MB error page) is not kept whole in Redis and webhooks", () => {
    const page = `<html>${"x".repeat(3 << 20)}</html>`;
    const err = new JobFailedError("llm_bad_request", page);
    expect(err.message.length).toBeLessThan(FAILURE_MESSAGE_CHARS + 100);
    expect(decodeFailure(err.message)).toEqual({ code: "llm_bad_request", message: `${page.slice(0, FAILURE_MESSAGE_CHARS)}…` });
    expect(decodeFailure(new JobFailedError("internal", "short").message)).toEqual({ code: "internal", message: "short" });
  });
});
