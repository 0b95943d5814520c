/**
 * The "select" loss of sequential rounds: a round trains two candidates from the same warm start
 * and key — APT (its surrogate targets the posterior whatever drew θ) and NLL (it learns from each
 * pair's own density, quickly from a wide proposal, but its target is p(θ|x)·q̃(θ)/p(θ)) — and
 * keeps the one that puts more of its mass where the posterior is.
 *
 * The score of a candidate q is Σᵢ w̄ᵢ log q(θᵢ | xObs) over the run's importance-weighted draws
 * (every round's, combined as in the result): a self-normalised estimate of E_post[log q] =
 * −KL(posterior ‖ q) − H(posterior), so the higher score is the candidate closer to the posterior
 * in the mass-covering direction a proposal needs. It costs no simulation and no likelihood call;
 * only the second training.
 *
 * APT stays unless the draws say NLL is better: the weighted mean of the paired difference
 * log q_nll − log q_apt must exceed `SELECT_Z` of its standard error, and the draws must weigh
 * like at least `SELECT_MIN_ESS` independent ones (Kish) — degenerate weights score a candidate
 * at a handful of points and say nothing. Below that the round trains APT alone.
 *
 * With fit's nReuse "auto", a round whose own draws found the posterior (round-reuse.ts) trains
 * a third candidate: NLL on those draws alone, as nbi's n_reuse = 0 does. It is trained on the
 * very draws the score above reads, and a network scored where it was trained looks better than
 * it is (chosen by such scores on SLCP at 10⁴, the raw surrogate's C2ST went from 0.80 to
 * 0.92), so it is compared with the candidate chosen above on held-out draws only:
 * every round's validation rows, which no candidate trained on (`chooseOwn`), by the same rule.
 */
import { kishEss } from "./importance.js";
import {
  type Checkpoint,
  type PosteriorNetwork,
  surrogateLogProb,
  surrogateOf,
} from "./posterior.js";

/** The fewest effective draws (Kish) that let the score choose NLL over APT. */
export const SELECT_MIN_ESS = 10;
/** How many standard errors NLL's score must lead APT's by. */
export const SELECT_Z = 2;

/** Weighted draws to score candidates with: rows of θ and one normalised weight each. */
export interface ScoringDraws {
  /** n × d parameters, row-major. */
  readonly theta: Float64Array;
  /** n weights summing to 1. */
  readonly weights: Float64Array;
}

/**
 * What the choice saw, kept in the round's record. With fewer than SELECT_MIN_ESS effective
 * draws NLL cannot win, so its candidate is not trained and only `ess` is recorded.
 */
export interface LossScores {
  /** Kish's effective sample size of the scoring weights. */
  readonly ess: number;
  /** Σ w̄ log q at the weighted draws, APT's candidate. */
  readonly apt?: number;
  /** The same for NLL's candidate. */
  readonly nll?: number;
  /** The standard error of the paired difference nll − apt. */
  readonly se?: number;
  /** The held-out comparison with the candidate trained on the round's own draws, if any. */
  readonly own?: OwnScores;
}

/**
 * What the held-out comparison saw (`chooseOwn`). With fewer than SELECT_MIN_ESS effective
 * held-out draws the own-draws candidate cannot win, is not trained, and only `ess` is recorded.
 */
export interface OwnScores {
  /** Kish's effective sample size of the held-out weights. */
  readonly ess: number;
  /** Σ w̄ log q at the held-out draws, the candidate trained on every round's draws. */
  readonly pooled?: number;
  /** The same for the candidate trained on the round's own draws. */
  readonly own?: number;
  /** The standard error of the paired difference own − pooled. */
  readonly se?: number;
}

/** `chooseOwn`'s verdict. */
export interface OwnChoice {
  /** True when the candidate trained on the round's own draws won. */
  readonly own: boolean;
  /** What decided it. */
  readonly scores: OwnScores;
}

/** The candidate a round keeps, and the scores that chose it. */
export interface LossChoice {
  /** The candidate kept. */
  readonly loss: "apt" | "nll";
  /** True when the kept candidate trained on the round's own simulations alone. */
  readonly own?: boolean;
  /** What chose it. */
  readonly scores: LossScores;
}

/**
 * Scores both candidates at the weighted draws and chooses (see the module comment). Draws with
 * zero weight are skipped; a candidate's −Infinity log density at a weighted draw scores −Infinity.
 *
 * @example
 * ```ts
 * const { loss, scores } = await inference.chooseLoss(net, xObs, { apt, nll }, { theta, weights });
 * ```
 */
export async function chooseLoss(
  net: PosteriorNetwork,
  xObs: Float32Array,
  candidates: { readonly apt: Checkpoint; readonly nll: Checkpoint },
  draws: ScoringDraws,
): Promise<LossChoice> {
  const { weights, logQ } = await scoreAt(net, xObs, [candidates.apt, candidates.nll], draws);
  return decideLoss(weights, logQ[0]!, logQ[1]!);
}

/**
 * Whether the candidate trained on the round's own draws beats the one `chooseLoss` kept, at
 * held-out draws: it must lead by SELECT_Z standard errors with at least SELECT_MIN_ESS
 * effective draws, as NLL must lead APT.
 *
 * @example
 * ```ts
 * const { own, scores } = await inference.chooseOwn(net, xObs, { pooled, own: alone }, heldOut);
 * ```
 */
export async function chooseOwn(
  net: PosteriorNetwork,
  xObs: Float32Array,
  candidates: { readonly pooled: Checkpoint; readonly own: Checkpoint },
  heldOut: ScoringDraws,
): Promise<OwnChoice> {
  const { weights, logQ } = await scoreAt(net, xObs, [candidates.pooled, candidates.own], heldOut);
  const { loss, scores } = decideLoss(weights, logQ[0]!, logQ[1]!);
  return {
    own: loss === "nll",
    scores: { ess: scores.ess, pooled: scores.apt!, own: scores.nll!, se: scores.se! },
  };
}

/** Each checkpoint's log q(θ | xObs) at the draws of non-zero weight, and those renormalised. */
async function scoreAt(
  net: PosteriorNetwork,
  xObs: Float32Array,
  checkpoints: readonly Checkpoint[],
  draws: ScoringDraws,
): Promise<{ weights: Float64Array; logQ: Float64Array[] }> {
  const { theta, weights } = positiveDraws(draws, net.nDims);
  const logQ = await Promise.all(
    checkpoints.map((c) => surrogateLogProb(surrogateOf(net, c), xObs, theta)),
  );
  return { weights, logQ };
}

/** The draws of non-zero weight (rows of d parameters), their weights renormalised to sum to 1. */
export function positiveDraws(draws: ScoringDraws, d: number): ScoringDraws {
  const keep: number[] = [];
  draws.weights.forEach((w, i) => {
    if (w > 0) keep.push(i);
  });
  const theta = new Float64Array(keep.length * d);
  const weights = new Float64Array(keep.length);
  keep.forEach((row, k) => {
    theta.set(draws.theta.subarray(row * d, (row + 1) * d), k * d);
    weights[k] = draws.weights[row]!;
  });
  const total = weights.reduce((s, v) => s + v, 0);
  for (let k = 0; k < weights.length; k++) weights[k]! /= total;
  return { theta, weights };
}

/**
 * The choice from normalised weights and each candidate's log density at the same draws: NLL
 * when its paired lead is above SELECT_Z standard errors and the weights' Kish ESS is at least
 * SELECT_MIN_ESS, else APT.
 */
export function decideLoss(
  weights: Float64Array,
  lqApt: Float64Array,
  lqNll: Float64Array,
  rule: { minEss: number; z: number } = { minEss: SELECT_MIN_ESS, z: SELECT_Z },
): LossChoice {
  let apt = 0;
  let nll = 0;
  for (let i = 0; i < weights.length; i++) {
    apt += weights[i]! * lqApt[i]!;
    nll += weights[i]! * lqNll[i]!;
  }
  const lead = nll - apt;
  let varLead = 0;
  for (let i = 0; i < weights.length; i++)
    varLead += weights[i]! ** 2 * (lqNll[i]! - lqApt[i]! - lead) ** 2;
  const se = Math.sqrt(varLead);
  const ess = kishEss(weights);
  // An infinite lead (APT's density −Infinity at a weighted draw) has a NaN error: NLL wins it.
  const nllWins = ess >= rule.minEss && (lead === Number.POSITIVE_INFINITY || lead > rule.z * se);
  return { loss: nllWins ? "nll" : "apt", scores: { ess, apt, nll, se } };
}
