import type { Weights } from "./model.js";

/**
 * Fitted by bench/baseline/train.ts on the tuning half of the dev set (instances whose
 * sha256(instance_id) starts with an even 32-bit number); do not edit by hand.
 */
export const WEIGHTS: Weights = {
  file: {
    pathMention: 1.757,
    frameInner: 1.098,
    qualified: 2.082,
    frameFuncDefined: 1.462,
    phrase: 2.581,
    option: 1.828,
    textProse: 3.311,
    textIdent: 1.796,
    pathWords: 1.117,
    mentions: 1.089,
    vendored: -2.231,
    outsidePackage: -0.41,
    size: 0.325
  },
  fn: {
    nameExact: 3.152,
    qualified: 0.77,
    classNamed: 0.32,
    classWords: 1.393,
    namedClassInit: 0,
    frame: 0.272,
    frameInner: 0.314,
    phrase: 1.346,
    option: 0.178,
    nameWords: 0.543,
    argWords: 0.539,
    docWords: 0,
    bodyWords: 3.018,
    mentions: 0,
    calledByNamed: 1.043,
    callsNamed: 1.08,
    size: 2.477,
    dunder: -0.143,
    private: 0.933,
    property: -0.751
  },
  fileRatio: 0.8,
  maxFiles: 2,
  fnRatio: 0.5,
  maxFunctionsPerFile: 2
};
