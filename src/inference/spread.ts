/**
 * The surrogate's spread, calibrated at held-out weighted draws.
 *
 * A round's NLL candidate trained on draws from a proposal q̃ learns q(θ | x) ∝ p(x | θ) q̃(θ),
 * not the posterior p(x | θ) p(θ): when q̃ is already close to the posterior (the efficient
 * staged rounds, and most of all a candidate trained on a round's own draws), the target is
 * roughly the posterior squared — about 1/√2 of its width. Measured on nbi's sine at nbi's
 * settings (seed 3): the last round's surrogate had the right means and 0.70–0.81 of the
 * posterior's sds, KL(posterior ‖ q) 0.39 nats; with its base noise widened to the scale
 * fitted below, 0.14.
 *
 * The fix keeps the flow and rescales its standard-normal base: q_τ pushes τ·z through the same
 * bijection, an exact density. Over weighted draws of the posterior (θᵢ, w̄ᵢ) with base points
 * uᵢ = f⁻¹(θᵢ), Σ w̄ᵢ log q_τ(θᵢ) is maximised at τ² = Σ w̄ᵢ |uᵢ|² / d — one number, in closed
 * form. It is fitted at draws the network did not train on (see `heldOutDraws` in snpe.ts) and
 * kept only when the weighted mean of |u|²/d — 1 where the network's spread matches the draws —
 * differs from 1 by more than SELECT_Z of its standard error, with at least SELECT_MIN_ESS
 * effective draws (the margins of the rule that chooses a round's loss, loss-selection.ts). A
 * paired test of the score's rise, as that rule uses, would be the wrong one here: the rise of a
 * fitted scale over τ = 1 is never negative and grows as (τ − 1)², so its paired z is half the
 * Wald statistic of τ² and would keep a clearly wrong spread until it is about twice as far off.
 */
import { kishEss } from "./importance.js";
import { type ScoringDraws, SELECT_MIN_ESS, SELECT_Z } from "./loss-selection.js";
import {
  type Checkpoint,
  type PosteriorNetwork,
  surrogateLatent,
  surrogateOf,
} from "./posterior.js";

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
): Promise<{ checkpoint: Checkpoint; fit: SpreadFit }> {
  const d = net.nDims;
  const rows: number[] = [];
  heldOut.weights.forEach((w, i) => {
    if (w > 0) rows.push(i);
  });
  const theta = new Float64Array(rows.length * d);
  const weights = new Float64Array(rows.length);
  let total = 0;
  rows.forEach((row, k) => {
    theta.set(heldOut.theta.subarray(row * d, (row + 1) * d), k * d);
    weights[k] = heldOut.weights[row]!;
    total += weights[k]!;
  });
  for (let k = 0; k < weights.length; k++) weights[k]! /= total;
  const ess = kishEss(weights);
  const { baseScale: _, ...scales } = checkpoint.scales;
  const plain: Checkpoint = { params: checkpoint.params, scales };
  if (!(ess >= SELECT_MIN_ESS)) return { checkpoint: plain, fit: { ess, applied: false } };
  const { sq } = await surrogateLatent(surrogateOf(net, plain), xObs, theta);
  // A weighted draw the flow cannot map (outside its exact support) leaves the scale alone.
  if (!sq.every(Number.isFinite)) return { checkpoint: plain, fit: { ess, applied: false } };
  let tau2 = 0;
  for (let k = 0; k < sq.length; k++) tau2 += (weights[k]! * sq[k]!) / d;
  let var2 = 0;
  for (let k = 0; k < sq.length; k++) var2 += weights[k]! ** 2 * (sq[k]! / d - tau2) ** 2;
  const se = Math.sqrt(var2);
  const tau = Math.sqrt(tau2);
  // Σ w̄ (log q_τ − log q): the Jacobian cancels, only the base density differs.
  const gain = 0.5 * d * (tau2 - 1) - d * Math.log(tau);
  const applied = Math.abs(tau2 - 1) > SELECT_Z * se;
  return {
    checkpoint: applied ? { params: plain.params, scales: { ...scales, baseScale: tau } } : plain,
    fit: { ess, tau, se, gain, applied },
  };
}
