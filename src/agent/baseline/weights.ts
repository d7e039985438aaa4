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
    nameExact: 2.834,
    qualified: 0.485,
    classNamed: 1.04,
    classWords: 1.467,
    namedClassInit: 0,
    frame: 0,
    frameInner: 0.026,
    phrase: 0.824,
    option: 0,
    nameWords: 0.763,
    argWords: 0.022,
    docWords: 0,
    bodyWords: 2.58,
    titleWords: 1.141,
    mentions: 0.886,
    calledByNamed: 0.812,
    callsNamed: 0.725,
    size: 1.901,
    dunder: -0.084,
    private: 0.474,
    property: -0.275
  },
  rerank: {
    first: 1,
    defName: 0,
    defArgs: 0,
    defDoc: 0,
    defBody: 0,
    defTitle: 0,
    defNamed: 0
  },
  fileRatio: 0.65,
  maxFiles: 3,
  fnRatio: 0.65,
  maxFunctionsPerFile: 2
};
