import type { Weights } from "./model.js";

/**
 * Fitted by bench/baseline/train.ts on the tuning half of the dev set (instances whose
 * sha256(instance_id) starts with an even 32-bit number); do not edit by hand.
 */
export const WEIGHTS: Weights = {
  file: {
    pathMention: 1.509,
    frameInner: 1.229,
    qualified: 1.965,
    frameFuncDefined: 1.491,
    phrase: 2.535,
    option: 1.608,
    textProse: 3.302,
    textIdent: 1.289,
    pathWords: 1.061,
    mentions: 1.641,
    vendored: -2.233,
    outsidePackage: -0.441,
    size: 0.356
  },
  fn: {
    nameExact: 3.19,
    qualified: 0.769,
    classNamed: 0.296,
    classWords: 1.418,
    namedClassInit: 0,
    frame: 0.278,
    frameInner: 0.314,
    phrase: 1.281,
    option: 0.187,
    nameWords: 0.541,
    argWords: 0.514,
    docWords: 0,
    bodyWords: 2.938,
    mentions: 0.217,
    calledByNamed: 1.066,
    callsNamed: 0.976,
    size: 2.465,
    dunder: -0.138,
    private: 0.915,
    property: -0.739
  },
  fileRatio: 0.2,
  maxFiles: 1,
  fnRatio: 0.5,
  maxFunctionsPerFile: 2
};
