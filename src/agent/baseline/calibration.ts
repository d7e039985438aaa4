/**
 * How sure the baseline is of a location: the ranker's softmax probability (files among the
 * outlined ones, functions among the chosen files' definitions) mapped through a logistic
 * curve of its log-odds (Platt scaling). The rankers are fitted to rank, not to be believed:
 * their raw probabilities run high in the middle, where a calling agent most needs to know
 * whether to check the answer itself. Fitted by bench/baseline/calibrate.ts on the dev set's
 * tuning half (the weights' own half); do not edit by hand.
 */

export interface Curve {
  bias: number;
  slope: number;
}

export interface Calibration {
  file: Curve;
  function: Curve;
}

export const CALIBRATION: Calibration = {
  file: { bias: -0.289, slope: 0.785 },
  function: { bias: -0.701, slope: 0.588 },
};

const EDGE = 1e-4;

/** Log-odds, with the probability kept off 0 and 1. */
export function logit(p: number): number {
  const q = Math.min(1 - EDGE, Math.max(EDGE, p));
  return Math.log(q / (1 - q));
}

export function calibrate(p: number, curve: Curve): number {
  return 1 / (1 + Math.exp(-(curve.bias + curve.slope * logit(p))));
}
