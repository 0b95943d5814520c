/**
 * The surrogate's spread, calibrated at held-out weighted draws.
 *
 * A round's NLL candidate trained on draws from a proposal q̃ learns q(θ | x) ∝ p(x | θ) q̃(θ),
 * not the posterior p(x | θ) p(θ): when q̃ is already close to the posterior (the efficient
 * staged rounds, and most of all a candidate trained on a round's own draws), the target is
 * roughly the posterior squared — about 1/√2 of its width. Measured on nbi's sine at nbi's
 * settings (seed 3): the last round's surrogate had the right means and 0.70–0.81 of the
 * posterior's sds, KL(posterior ‖ q) 0.39 nats; with its base noise widened to the scale
 * 10,000 posterior draws ask for, 0.14, and to the scale fitted below at held-out draws, 0.18.
 *
 * The fix keeps the flow and rescales its standard-normal base: q_τ pushes τ·z through the same
 * bijection, an exact density. Over weighted draws of the posterior (θᵢ, w̄ᵢ) with base points
 * uᵢ = f⁻¹(θᵢ), Σ w̄ᵢ log q_τ(θᵢ) is maximised at τ² = Σ w̄ᵢ |uᵢ|² / d. That mean is at the
 * mercy of one heavy weight on a draw far out in the base (seed 0 of the same test: a draw of
 * weight 0.018 at |u|² = 109 made τ 1.61 where the posterior's own draws say 1.25), so the scale
 * is Huber's instead: |u|² counted at most at the χ²_d 99% quantile times τ², the mean divided
 * by what that cap leaves of a normal's, solved by fixed-point iteration — τ² itself for exactly
 * normal base points, 1.38 on that draw set. It is fitted at draws the network did not train on
 * (see `heldOutDraws` in snpe.ts) and kept only when τ² exceeds 1 by more than SELECT_Z of its
 * standard error, with at least SELECT_MIN_ESS effective draws (the margins of the rule that
 * chooses a round's loss, loss-selection.ts). It only widens: the draws it is fitted to cover
 * the posterior only as far as the rounds' proposals reached, so a spread they call too wide may
 * be their own missing tails (a 2-D Gaussian toy: τ = 0.78 at 6 standard errors where 4,000
 * posterior draws say 0.93, KL 0.20 → 0.27), and narrowing is the costly direction both for a
 * proposal and for KL(posterior ‖ q). A paired test of the score's rise, as that rule uses,
 * would be the wrong one here: the rise of a fitted scale over τ = 1 is never negative and grows
 * as (τ − 1)², so its paired z is half the Wald statistic of τ² and would keep a clearly wrong
 * spread only when it is about twice as far off.
 *
 * Only the networks whose training predicts the narrowing are calibrated (snpe.ts): NLL trained
 * on later rounds' draws alone — a round's own, as nbi's n_reuse = 0 trains, a select round's
 * own-draws candidate, a challenger. A network trained on every round's draws (the prior's among
 * them), or with APT, has no such bias, and ~30 effective held-out draws then mostly fit noise:
 * on the demo's settings (MLP, seed 0) the last round's pooled network was given τ = 1.15 at
 * 2.06 standard errors where 10,000 posterior draws say 1.01, and its KL rose from 0.09 to 0.13.
 */
import { kishEss } from "./importance.js";
import { positiveDraws, type ScoringDraws, SELECT_MIN_ESS, SELECT_Z } from "./loss-selection.js";
import {
  type Checkpoint,
  type PosteriorNetwork,
  surrogateLatent,
  surrogateOf,
} from "./posterior.js";
import { chiSquareCdf, chiSquareQuantile } from "./special.js";

/** What the calibration saw, kept in the round's record. */
export interface SpreadFit {
  /** Kish's effective sample size of the held-out weights. */
  readonly ess: number;
  /** The fitted base scale (absent where the draws were too few to fit it). */
  readonly tau?: number;
  /** The standard error of τ² (the weighted mean of |u|²/d). */
  readonly se?: number;
  /** Σ w̄ (log q_τ − log q) at the held-out draws: what the scale gains there, nats. */
  readonly gain?: number;
  /** True when the surrogate kept the fitted scale. */
  readonly applied: boolean;
}

/** `calibrateSpread`'s result. */
export interface CalibratedSpread {
  /** The checkpoint with the fitted base scale, or as trained (no base scale) when not kept. */
  readonly checkpoint: Checkpoint;
  /** What the calibration saw. */
  readonly fit: SpreadFit;
}

/**
 * The checkpoint with its base scale fitted at the held-out draws (unchanged when the draws are
 * too few, or the scale does not win by the rule above), and what decided it. Needs a
 * normal-base flow; the checkpoint's own base scale, if any, is replaced.
 *
 * @example
 * ```ts
 * const { checkpoint: calibrated, fit } = await inference.calibrateSpread(net, xObs, checkpoint, heldOut);
 * ```
 */
export async function calibrateSpread(
  net: PosteriorNetwork,
  xObs: Float32Array,
  checkpoint: Checkpoint,
  heldOut: ScoringDraws,
): Promise<CalibratedSpread> {
  const d = net.nDims;
  const { theta, weights } = positiveDraws(heldOut, d);
  const ess = kishEss(weights);
  const { baseScale: _, ...scales } = checkpoint.scales;
  const plain: Checkpoint = { params: checkpoint.params, scales };
  if (!(ess >= SELECT_MIN_ESS)) return { checkpoint: plain, fit: { ess, applied: false } };
  const { sq } = await surrogateLatent(surrogateOf(net, plain), xObs, theta);
  // A weighted draw the flow cannot map (outside its exact support) leaves the scale alone.
  if (!sq.every(Number.isFinite)) return { checkpoint: plain, fit: { ess, applied: false } };
  const { tau2, se } = huberScale(weights, sq, d);
  const tau = Math.sqrt(tau2);
  // Σ w̄ (log q_τ − log q): the Jacobian cancels, only the base density differs.
  let meanSq = 0;
  for (let k = 0; k < sq.length; k++) meanSq += weights[k]! * sq[k]!;
  const gain = 0.5 * meanSq * (1 - 1 / tau2) - d * Math.log(tau);
  // Only ever wider (the module comment says why).
  const applied = tau2 - 1 > SELECT_Z * se;
  return {
    checkpoint: applied ? { params: plain.params, scales: { ...scales, baseScale: tau } } : plain,
    fit: { ess, tau, se, gain, applied },
  };
}

/** The share of a normal's |u|²/τ² below which Huber's scale counts a draw in full. */
export const SPREAD_CAP_QUANTILE = 0.99;

/**
 * Huber's estimate of τ² from weighted |u|² (d-dimensional base points) and its standard error:
 * the fixed point of τ² = Σ w̄ min(|u|², c τ²) / (d κ), c the χ²_d quantile at
 * SPREAD_CAP_QUANTILE and κ = E[min(χ²_d, c)] / d = F_{d+2}(c) + (c/d)(1 − F_d(c)), so that
 * normal base points of scale τ give τ². The error is the sandwich's: the weighted spread of
 * each draw's term over 1 minus the map's slope at the fixed point.
 */
export function huberScale(
  weights: ArrayLike<number>,
  sq: ArrayLike<number>,
  d: number,
): { tau2: number; se: number } {
  const c = chiSquareQuantile(SPREAD_CAP_QUANTILE, d);
  const kappa = chiSquareCdf(c, d + 2) + (c / d) * (1 - chiSquareCdf(c, d));
  const map = (t2: number) => {
    let s = 0;
    for (let k = 0; k < sq.length; k++) s += weights[k]! * Math.min(sq[k]!, c * t2);
    return s / (d * kappa);
  };
  // The map rises and is concave, with slope c / (d κ) > 1 at 0: from any start the iteration
  // moves monotonically to its one positive fixed point.
  let tau2 = 1;
  for (let i = 0; i < 500; i++) {
    const next = map(tau2);
    const done = Math.abs(next - tau2) <= 1e-12 * tau2;
    tau2 = next;
    if (done) break;
  }
  let v = 0;
  let capped = 0;
  for (let k = 0; k < sq.length; k++) {
    v += weights[k]! ** 2 * (Math.min(sq[k]!, c * tau2) / (d * kappa) - tau2) ** 2;
    if (sq[k]! > c * tau2) capped += weights[k]!;
  }
  const slope = (c * capped) / (d * kappa);
  return { tau2, se: Math.sqrt(v) / Math.max(1 - slope, 1e-6) };
}
