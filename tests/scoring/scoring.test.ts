import { describe, expect, it } from "vitest";
import { aggregate, locationSets, scoreInstance, setScore } from "../../src/scoring/index.js";

describe("locationSets", () => {
  it("derives files, modules and entities per the protocol convention", () => {
    const sets = locationSets([
      { file: "a.py", class_name: "A", function_name: "run" },
      { file: "a.py", function_name: "helper" },
      { file: "b.py", class_name: "B" },
      { file: "c.py" },
    ]);
    expect(sets.files.sort()).toEqual(["a.py", "b.py", "c.py"]);
    expect(sets.modules.sort()).toEqual(["a.py:A", "a.py:helper", "b.py:B"]);
    // A class without a function is a module but not an entity.
    expect(sets.entities.sort()).toEqual(["a.py:A.run", "a.py:helper"]);
  });

  it("collapses duplicates and ignores blank parts", () => {
    const sets = locationSets([
      { file: "a.py", class_name: "A", function_name: "f" },
      { file: " a.py ", class_name: "A ", function_name: "f" },
      { file: "a.py", class_name: "", function_name: "" },
      { file: "   " },
      { file: "x.py", class_name: null, function_name: "g" },
    ]);
    expect(sets).toEqual({ files: ["a.py", "x.py"], modules: ["a.py:A", "x.py:g"], entities: ["a.py:A.f", "x.py:g"] });
  });
});

describe("setScore", () => {
  it("computes precision, recall and F1 by hand", () => {
    // 1 hit of 3 predicted, 1 of 2 true: P = 1/3, R = 1/2, F1 = 2·(1/6)/(5/6) = 0.4
    const s = setScore(["a", "b", "c"], ["a", "d"]);
    expect(s.precision).toBeCloseTo(1 / 3, 12);
    expect(s.recall).toBeCloseTo(0.5, 12);
    expect(s.f1).toBeCloseTo(0.4, 12);
  });

  it("scores 0 when either side is empty, even both", () => {
    expect(setScore([], ["a"])).toEqual({ precision: 0, recall: 0, f1: 0 });
    expect(setScore(["a"], [])).toEqual({ precision: 0, recall: 0, f1: 0 });
    expect(setScore([], [])).toEqual({ precision: 0, recall: 0, f1: 0 });
  });

  it("scores 0 F1 with no overlap", () => {
    expect(setScore(["a"], ["b"]).f1).toBe(0);
  });
});

describe("scoreInstance", () => {
  const truth = {
    files: ["src/m.py"],
    modules: ["src/m.py:Node"],
    entities: ["src/m.py:Node._repr", "src/m.py:Node.run"],
  };

  it("scores each level separately", () => {
    const s = scoreInstance(
      [
        { file: "src/m.py", class_name: "Node", function_name: "_repr" },
        { file: "src/other.py", function_name: "helper" },
      ],
      truth,
    );
    // files: P 1/2, R 1 → F1 2/3; modules {m:Node, other:helper}: same; entities: P 1/2, R 1/2 → 1/2
    expect(s.file.f1).toBeCloseTo(2 / 3, 12);
    expect(s.module.f1).toBeCloseTo(2 / 3, 12);
    expect(s.entity).toEqual({ precision: 0.5, recall: 0.5, f1: 0.5 });
  });

  it("gives a class-only answer module credit and no entity credit", () => {
    const s = scoreInstance([{ file: "src/m.py", class_name: "Node" }], truth);
    expect(s.file.f1).toBe(1);
    expect(s.module.f1).toBe(1);
    expect(s.entity.f1).toBe(0);
  });

  it("voids the whole answer when any location has an empty file, as CodeScout's reward does", () => {
    const right = { file: "src/m.py", class_name: "Node", function_name: "_repr" };
    expect(scoreInstance([right], truth).file.f1).toBe(1);
    for (const empty of [{ file: "" }, { file: "   ", function_name: "run" }]) {
      const s = scoreInstance([right, empty], truth);
      expect([s.file.f1, s.module.f1, s.entity.f1]).toEqual([0, 0, 0]);
    }
  });

  it("scores an instance without an answer as 0", () => {
    const s = scoreInstance(null, truth);
    expect([s.file.f1, s.module.f1, s.entity.f1]).toEqual([0, 0, 0]);
  });

  it("scores 0 at levels whose ground truth is empty", () => {
    const s = scoreInstance([{ file: "a.py", function_name: "f" }], { files: ["a.py"], modules: [], entities: [] });
    expect(s.file.f1).toBe(1);
    expect(s.module.f1).toBe(0);
    expect(s.entity.f1).toBe(0);
  });
});

describe("aggregate", () => {
  it("averages over all instances, failures included as zeros", () => {
    const one = { precision: 1, recall: 1, f1: 1 };
    const half = { precision: 0.5, recall: 1, f1: 2 / 3 };
    const agg = aggregate([
      { answered: true, scores: { file: one, module: half, entity: half } },
      { answered: true, scores: { file: half, module: half, entity: { precision: 0, recall: 0, f1: 0 } } },
      { answered: false, scores: null },
      { answered: false, scores: scoreInstance(null, { files: ["x"], modules: [], entities: [] }) },
    ]);
    expect(agg.instances).toBe(4);
    expect(agg.answered).toBe(2);
    expect(agg.levels.file.f1).toBeCloseTo((1 + 2 / 3) / 4, 12);
    expect(agg.levels.file.precision).toBeCloseTo(1.5 / 4, 12);
    expect(agg.levels.module.recall).toBeCloseTo(2 / 4, 12);
    expect(agg.levels.entity.f1).toBeCloseTo(2 / 3 / 4, 12);
  });

  it("is all zeros for no instances", () => {
    expect(aggregate([]).levels.entity).toEqual({ precision: 0, recall: 0, f1: 0 });
  });
});
