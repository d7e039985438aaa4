import { describe, it, expect } from "vitest";
import { normalizeLocations } from "../../src/agent/locations.js";
import type { Location } from "../../src/agent/policy.js";

describe("normalizeLocations", () => {
  it("keeps a policy's evidence, capped to five short strings, and drops what is not text", () => {
    const raw = {
      file: "/tmp/testbed/x/pkg/a.py",
      function_name: "f",
      evidence: ["  the issue names\n`f`  ", 42, "the issue names `f`", "x".repeat(500), "b", "c", "d", "e", "f"],
    } as unknown as Location;
    const [loc] = normalizeLocations([raw], "/tmp/testbed/x");
    expect(loc?.file).toBe("pkg/a.py");
    expect(loc?.evidence).toEqual(["the issue names `f`", "x".repeat(200), "b", "c", "d"]);
  });

  it("leaves evidence out when there is none, or when it is not a list", () => {
    const [a, b] = normalizeLocations([{ file: "a.py" }, { file: "b.py", evidence: "why" } as unknown as Location], "/w");
    expect(a).toEqual({ file: "a.py" });
    expect(b).toEqual({ file: "b.py" });
  });
});
