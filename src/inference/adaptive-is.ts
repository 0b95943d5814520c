/**
 * Adaptive importance sampling for predict (population Monte Carlo, Cappé et al. 2004): a pilot
 * stage draws from the surrogate; when its weights are poor, later stages draw from a Student-t
 * mixture fitted to the weighted draws so far (on the unbounded image of the prior's support),
 * mixed with the surrogate so that no region the surrogate covers is lost. Each stage is weighted
 * by the exact density of the proposal that drew it, so every stage's estimate is consistent on
 * its own; stages are combined in proportion to their effective sample sizes (as nbi combines
 * rounds), which lets a poor stage count for little.
 */
import type { Array } from "../ops/array.js";
import { type ImportanceResult, importanceWeights } from "./importance.js";
import type { Prior } from "./priors.js";
import type { ProposalPart, RoundProposal } from "./proposals.js";
import { logSumExp } from "./special.js";
import { fitTMixture } from "./t-mixture.js";
import { toUnbounded } from "./unbounded.js";

/** Below this pilot efficiency (n_eff / draws), later stages draw from an adapted proposal. */
export const ADAPT_BELOW = 0.5;
/** The surrogate's share of an adapted stage's proposal. */
export const SURROGATE_SHARE = 0.2;
/**
 * How many adapted stages share the draws after the pilot: each refits the mixture, so more and
 * smaller stages adapt faster, as long as each holds enough draws to refit on (max(100, 20·d)).
 */
export function adaptedStageCount(draws: number, dim: number): number {
  return Math.max(1, Math.min(10, Math.floor(draws / Math.max(100, 20 * dim))));
}

/** One stage: its draws' log-weights, and a correction of its evidence estimate (log). */
export interface Stage {
  readonly logWeights: Float64Array;
  /** Added to the stage's log evidence (e.g. the log mass of a truncated proposal inside). */
  readonly logEvidenceOffset: number;
}

/**
 * The stages' draws as one weighted sample: weights normalised per stage and scaled by the
 * stage's n_eff; ESS, efficiency and k̂ of the combined weights; the evidence as the same
 * convex combination of the stages' estimates (its standard error by the delta method).
 *
 * @example
 * ```ts
 * const all = inference.combineStages([{ logWeights: lw0, logEvidenceOffset: 0 }, { logWeights: lw1, logEvidenceOffset: 0 }]);
 * ```
 */
export function combineStages(stages: readonly Stage[]): ImportanceResult {
  const each = stages.map((s) => importanceWeights(s.logWeights));
  if (stages.length === 1) {
    const only = each[0]!;
    return {
      ...only,
      logEvidence: only.logEvidence + stages[0]!.logEvidenceOffset,
    };
  }
  // Kish's ESS as the stage's share: nbi's n_eff is 0 for a stage with one useful draw.
  const shares = each.map((r) => (r.nValid > 0 ? r.kishEss : 0));
  const total = shares.reduce((a, b) => a + b, 0);
  const size = stages.reduce((a, s) => a + s.logWeights.length, 0);
  const logW = new Float64Array(size);
  let at = 0;
  stages.forEach((s, g) => {
    const r = each[g]!;
    const lift = shares[g]! > 0 ? Math.log(shares[g]! / total) : Number.NEGATIVE_INFINITY;
    for (let i = 0; i < s.logWeights.length; i++)
      logW[at + i] = r.weights[i]! > 0 ? Math.log(r.weights[i]!) + lift : Number.NaN;
    at += s.logWeights.length;
  });
  const combined = importanceWeights(logW);
  // Z = Σ a_g Z_g with a_g = share_g / total; SE(log Z) = √(Σ a_g² Z_g² se_g²) / Z.
  const terms = stages.map((s, g) =>
    shares[g]! > 0
      ? Math.log(shares[g]! / total) + each[g]!.logEvidence + s.logEvidenceOffset
      : Number.NEGATIVE_INFINITY,
  );
  const logEvidence = logSumExp(terms);
  const variance = terms.reduce(
    (acc, t, g) =>
      Number.isFinite(t)
        ? acc + Math.exp(2 * (t - logEvidence)) * each[g]!.logEvidenceSe ** 2
        : acc,
    0,
  );
  return { ...combined, logEvidence, logEvidenceSe: Math.sqrt(variance) };
}

/**
 * The next stage's proposal: the surrogate part (with its estimated mass inside the support) and
 * a t mixture fitted to the weighted draws so far, on the unbounded image of the prior's support.
 *
 * @example
 * ```ts
 * const plan = inference.adaptedProposal(prior, surrogatePart, theta, combined.weights, 3, key);
 * ```
 */
export function adaptedProposal(
  prior: Prior,
  surrogate: ProposalPart,
  theta: Float64Array,
  weights: Float64Array,
  dim: number,
  key: Array,
): RoundProposal {
  const { u } = toUnbounded({ thetaLower: prior.lower, thetaUpper: prior.upper }, theta, dim);
  const mixture = fitTMixture(u, weights, dim, key);
  return {
    parts: [
      { weight: SURROGATE_SHARE, part: surrogate },
      { weight: 1 - SURROGATE_SHARE, part: { kind: "adapted", mixture } },
    ],
  };
}
