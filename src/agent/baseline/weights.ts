import type { Weights } from "./model.js";

/**
 * Fitted by bench/baseline/train.ts on the tuning half of the dev set (instances whose
 * sha256(instance_id) starts with an even 32-bit number); do not edit by hand.
 */
export const WEIGHTS: Weights = {
  file: {
    pathMention: 1.062,
    frame: 0.152,
    frameInner: 0.735,
    defClass: 0.123,
    defFunc: 0.239,
    qualified: 0.963,
    frameFuncDefined: 0.799,
    phrase: 1.806,
    option: 1.694,
    textProse: 2.497,
    textIdent: 1.502,
    defNames: 1.099,
    pathWords: 0.877,
    mentions: 1.075,
    vendored: -1.041,
    outsidePackage: -0.194,
    init: 0.262,
    size: 0.065
  },
  fn: {
    nameExact: 3.193,
    qualified: 0.899,
    classNamed: 0.427,
    frame: 0.172,
    frameInner: 0.407,
    phrase: 1.253,
    option: 0.18,
    nameWords: 0.467,
    argWords: 0.414,
    docWords: 0,
    bodyWords: 3.225,
    mentions: 0,
    calledByNamed: 1.03,
    callsNamed: 0.942,
    size: 2.35,
    dunder: 0.263,
    private: 0.973,
    property: -0.796
  },
  fileRatio: 0.2,
  maxFiles: 1,
  fnRatio: 0.5,
  maxFunctionsPerFile: 3
};
