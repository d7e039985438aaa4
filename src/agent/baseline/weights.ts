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
    nameExact: 3.512,
    qualified: 0.994,
    classNamed: 0.193,
    classWords: 1.333,
    namedClassInit: 0,
    frame: 0.076,
    frameInner: 0.09,
    phrase: 1.207,
    option: 0,
    nameWords: 0.332,
    argWords: 0.472,
    docWords: 0,
    bodyWords: 2.131,
    titleWords: 1.425,
    mentions: 0.261,
    calledByNamed: 0.95,
    callsNamed: 1.078,
    size: 2.398,
    dunder: -0.129,
    private: 1.059,
    property: -0.568
  },
  fileRatio: 0.2,
  maxFiles: 1,
  fnRatio: 0.5,
  maxFunctionsPerFile: 2
};
