import { describe, it, expect } from "vitest";
import { BaselinePolicy } from "../../src/agent/baseline.js";
import { CodeScoutPolicy } from "../../src/agent/codescout/loop.js";
import { WithFallback } from "../../src/agent/fallback.js";
import { WithLeads } from "../../src/agent/leads.js";
import { createPolicySelector } from "../../src/worker/policies.js";
import { testConfig } from "../helpers/config.js";

/** Which policy a job gets: the end-to-end tests run each of them; this says which the settings pick. */
describe("policy selection", () => {
  const model = { MODEL_BASE_URL: "http://127.0.0.1:9/v1" };

  it("gives the model's answers the baseline's leads unless MODEL_ALTERNATIVES is off", () => {
    const withLeads = createPolicySelector(testConfig(model), () => new BaselinePolicy())({});
    expect(withLeads).toBeInstanceOf(WithLeads);
    expect(withLeads.name).toBe("codescout");
    const plain = createPolicySelector(testConfig({ ...model, MODEL_ALTERNATIVES: "false" }), () => new BaselinePolicy())({});
    expect(plain).toBeInstanceOf(CodeScoutPolicy);
    // A request that asks for no leads is not made to wait for them.
    expect(createPolicySelector(testConfig(model), () => new BaselinePolicy())({ alternatives: false })).toBeInstanceOf(CodeScoutPolicy);
  });

  it("puts the baseline behind the model where the service chose the model, unless MODEL_FALLBACK is none", () => {
    const select = (extra: Record<string, string> = {}) => createPolicySelector(testConfig({ ...model, ...extra }), () => new BaselinePolicy());
    const chosen = select()({ policy: "codescout" }, "service");
    expect(chosen).toBeInstanceOf(WithFallback);
    expect(chosen.name).toBe("codescout");
    // A request that named the model gets the model or its failure; so does a job queued by an earlier API.
    expect(select()({ policy: "codescout" }, "request")).toBeInstanceOf(WithLeads);
    expect(select()({ policy: "codescout" })).toBeInstanceOf(WithLeads);
    expect(select({ MODEL_FALLBACK: "none" })({ policy: "codescout" }, "service")).toBeInstanceOf(WithLeads);
  });

  it("answers with the baseline alone, never wrapped, where it is asked for or there is no model", () => {
    expect(createPolicySelector(testConfig(model), () => new BaselinePolicy())({ policy: "baseline" })).toBeInstanceOf(BaselinePolicy);
    expect(createPolicySelector(testConfig(), () => new BaselinePolicy())({})).toBeInstanceOf(BaselinePolicy);
  });
});
