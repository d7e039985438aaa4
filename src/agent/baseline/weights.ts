import type { Weights } from "./model.js";

/**
 * Fitted by bench/baseline/train.ts on the tuning half of the dev set (instances whose
 * sha256(instance_id) starts with an even 32-bit number); do not edit by hand.
 */
export const WEIGHTS: Weights = {
  file: {
    pathMention: 1.697,
    frame: -0.127,
    frameInner: 1.185,
    defClass: 0.096,
    defFunc: -0.026,
    qualified: 1.836,
    frameFuncDefined: 1.325,
    phrase: 2.609,
    option: 2.767,
    textProse: 3.336,
    textIdent: 1.54,
    defNames: 0.965,
    pathWords: 0.832,
    mentions: 1.294,
    vendored: -2.009,
    outsidePackage: -0.333,
    init: 0.357,
    size: -0.291
  },
  fn: {
    nameExact: 4.194,
    qualified: 1.054,
    classNamed: 1.024,
    frame: 0.093,
    frameInner: 0.465,
    phrase: 1.268,
    option: 1.039,
    nameWords: 0.275,
    argWords: 0.78,
    docWords: -0.877,
    bodyWords: 3.934,
    mentions: -0.551,
    calledByNamed: 1.242,
    callsNamed: 1.342,
    size: 3.148,
    dunder: 0.052,
    private: 1.09,
    property: -1.282
  },
  fileRatio: 0.2,
  maxFiles: 1,
  fnRatio: 0.35,
  maxFunctionsPerFile: 3
};
