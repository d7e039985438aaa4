import type { Weights } from "./model.js";

/**
 * Fitted by bench/baseline/train.ts on the tuning half of the dev set (instances whose
 * sha256(instance_id) starts with an even 32-bit number) together with instances mined from
 * other repositories' histories (bench/baseline/mined-repos.txt); do not edit by hand.
 */
export const WEIGHTS: Weights = {
  file: {
    pathMention: 1.499,
    frameInner: 1.305,
    qualified: 1.767,
    frameFuncDefined: 1.605,
    phrase: 2.587,
    option: 0.786,
    textProse: 4.393,
    textIdent: 1.511,
    pathWords: 1.857,
    mentions: 2.912,
    vendored: -2.292,
    outsidePackage: -0.79,
    size: 0.641
  },
  fn: {
    nameExact: 2.835,
    qualified: 0.482,
    classNamed: 1.036,
    classWords: 1.464,
    namedClassInit: 0,
    frame: 0.008,
    frameInner: 0.034,
    phrase: 0.821,
    option: 0,
    nameWords: 0.76,
    argWords: 0.03,
    docWords: 0,
    bodyWords: 2.574,
    titleWords: 1.114,
    mentions: 0.879,
    calledByNamed: 0.799,
    callsNamed: 0.724,
    size: 1.992,
    dunder: -0.097,
    private: 0.504,
    property: -0.281
  },
  rerank: {
    first: 0.656,
    defName: 0.964,
    defArgs: 0,
    defDoc: 0,
    defBody: 0.501,
    defTitle: 1.415,
    defNamed: 0.792
  },
  fileRatio: 0.5,
  maxFiles: 3,
  fnRatio: 0.8,
  maxFunctionsPerFile: 2
};
