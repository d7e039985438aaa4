import type { Weights } from "./model.js";

/**
 * Fitted by bench/baseline/train.ts on the tuning half of the dev set (instances whose
 * sha256(instance_id) starts with an even 32-bit number) together with instances mined from
 * other repositories' histories (bench/baseline/mined-repos.txt); do not edit by hand.
 */
export const WEIGHTS: Weights = {
  file: {
    pathMention: 1.504,
    frameInner: 1.394,
    qualified: 1.749,
    frameFuncDefined: 1.712,
    phrase: 2.578,
    option: 0.829,
    textProse: 4.362,
    textIdent: 1.26,
    pathWords: 1.836,
    mentions: 3.053,
    vendored: -2.308,
    outsidePackage: -0.797,
    size: 0.609
  },
  fn: {
    nameExact: 2.841,
    qualified: 0.479,
    classNamed: 1.042,
    classWords: 1.473,
    namedClassInit: 0,
    frame: 0.009,
    frameInner: 0.031,
    phrase: 0.819,
    option: 0,
    nameWords: 0.808,
    argWords: 0.007,
    docWords: 0,
    bodyWords: 2.475,
    titleWords: 1.133,
    mentions: 0.946,
    calledByNamed: 0.786,
    callsNamed: 0.709,
    size: 1.987,
    dunder: -0.097,
    private: 0.533,
    property: -0.285
  },
  rerank: {
    first: 0.621,
    defName: 0.899,
    defArgs: 0,
    defDoc: 0,
    defBody: 0.65,
    defTitle: 1.319,
    defNamed: 0.77
  },
  fileRatio: 0.65,
  maxFiles: 3,
  fnRatio: 0.65,
  maxFunctionsPerFile: 2
};
