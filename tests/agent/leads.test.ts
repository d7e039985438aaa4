import { describe, it, expect } from "vitest";
import { leadsBeside, RankingSlots } from "../../src/agent/leads.js";

/** The leads beside a model's answer: the pure parts (the end-to-end tests run them through a worker). */
describe("leads beside an answer", () => {
  const ranked = [
    { file: "a.py", function_name: "f" },
    { file: "a.py", function_name: "g" },
    { file: "b.py", function_name: "h" },
    { file: "c.py" },
    { file: "d.py" },
    { file: "e.py" },
  ];

  it("takes the best location of each file the answer does not name, up to the files in all", () => {
    expect(leadsBeside([{ file: "b.py" }], ranked, 4)).toEqual([{ file: "a.py", function_name: "f" }, { file: "c.py" }, { file: "d.py" }]);
    expect(leadsBeside([], ranked, 2)).toEqual([{ file: "a.py", function_name: "f" }, { file: "b.py", function_name: "h" }]);
  });

  it("gives none to an answer that already names that many files", () => {
    expect(leadsBeside([{ file: "x.py" }, { file: "y.py" }], ranked, 2)).toEqual([]);
  });

  it("lets only so many rankings run at once, and frees a slot when one ends", () => {
    const slots = new RankingSlots(2);
    expect([slots.take(), slots.take(), slots.take()]).toEqual([true, true, false]);
    slots.give();
    expect(slots.take()).toBe(true);
  });
});
