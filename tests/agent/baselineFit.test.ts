import { createHash } from "node:crypto";
import { describe, it, expect } from "vitest";
import { WEIGHTS } from "../../src/agent/baseline/weights.js";
import { CALIBRATION } from "../../src/agent/baseline/calibration.js";
import { BASELINE_FIT } from "../../src/version.js";

describe("the baseline's fit, as the result cache names it", () => {
  it("BASELINE_FIT in src/version.ts is the digest of the committed weights and calibration", () => {
    const digest = createHash("sha256").update(JSON.stringify({ weights: WEIGHTS, calibration: CALIBRATION })).digest("hex").slice(0, 12);
    // A refit without this would serve the old fit's cached answers under the same key.
    expect(BASELINE_FIT, `set BASELINE_FIT in src/version.ts to "${digest}"`).toBe(digest);
  });
});
