/**
 * TARP, Tests of Accuracy with Random Points (Lemos et al. 2023, ICML). For each test pair
 * (θ*, x) pick a random reference point θ_r and count the fraction f of posterior draws closer to
 * θ_r than θ* is. If q(θ | x) is the true posterior, f is uniform on [0, 1] for any distribution
 * of references, so the expected coverage ECP(γ) = #{f ≤ γ}/n lies on the diagonal; the paper
 * shows that holding for all reference distributions is also sufficient. It needs only draws (no
 * densities) and tests all dimensions jointly.
 *
 * References are drawn uniformly in the box spanned by the test parameters, and distances are
 * measured with each parameter scaled by the test parameters' standard deviation, so no
 * parameter dominates by its units (as sbi's `run_tarp` with z-scored θ).
 */

import { failText } from "../../errors.js";
import type { Array } from "../../trace/array.js";
import { uniforms } from "../host.js";
import { COVERAGE_LEVELS, type CoverageCurve, coverageCurve } from "./coverage.js";
import { checkRows, checkTestDraws } from "./sbc.js";

/** TARP's coverage curve with the per-pair fractions and the references used. */
export interface TarpResult extends CoverageCurve {
  /** Draws per test pair. */
  readonly nSamples: number;
  /** Per test pair: the fraction of draws closer to the reference than θ*. */
  readonly fractions: Float64Array;
  /** The reference points, nTest × d. */
  readonly references: Float64Array;
  /**
   * ∫ from ½ to 1 of (ECP(γ) − γ) dγ, sbi's "area to curve": about 0 when calibrated, positive
   * for under-confident and negative for over-confident posteriors.
   */
  readonly atc: number;
}

/** Options of `tarp`: the layout of the arrays and where the references come from. */
export interface TarpOptions {
  /** Parameters per row (d). */
  readonly nDims: number;
  /** Draws per test pair. */
  readonly nSamples: number;
  /** PRNG key of the references (needed unless `references` is given). */
  readonly key?: Array;
  /** Reference points, nTest × d, instead of random ones. */
  readonly references?: ArrayLike<number>;
  /** Credibility grid (default 0, 0.01, ..., 1). */
  readonly levels?: ArrayLike<number>;
}

/**
 * TARP from host arrays: `theta` (nTest × d) and the posterior draws at each pair's data
 * (`samples`, nTest × nSamples × d).
 *
 * @example
 * ```ts
 * const t = tarp(thetaTrue, draws, { nDims: 2, nSamples: 200, key: inference.hostKey(3) });
 * t.pValue; // small when the coverage curve leaves the diagonal
 * ```
 */
export function tarp(
  theta: ArrayLike<number>,
  samples: ArrayLike<number>,
  options: TarpOptions,
): TarpResult {
  const fn = "tarp";
  const { d, L, nTest } = checkTestDraws(fn, theta, samples, options);
  const lo = new Float64Array(d).fill(Number.POSITIVE_INFINITY);
  const hi = new Float64Array(d).fill(Number.NEGATIVE_INFINITY);
  const mean = new Float64Array(d);
  for (let i = 0; i < nTest; i++) {
    for (let j = 0; j < d; j++) {
      const v = theta[i * d + j]!;
      lo[j] = Math.min(lo[j]!, v);
      hi[j] = Math.max(hi[j]!, v);
      mean[j]! += v / nTest;
    }
  }
  const invScale = new Float64Array(d);
  for (let j = 0; j < d; j++) {
    let ss = 0;
    for (let i = 0; i < nTest; i++) ss += (theta[i * d + j]! - mean[j]!) ** 2;
    const sd = Math.sqrt(ss / nTest);
    invScale[j] = sd > 0 ? 1 / sd : 1;
  }
  let references: Float64Array;
  if (options.references !== undefined) {
    checkRows(fn, "references", options.references, nTest * d, `${nTest} points × ${d}`);
    references = Float64Array.from(options.references);
  } else {
    if (options.key === undefined) {
      failText(fn, "key", "a PRNG key for the reference points (or give references)", "none");
    }
    const u = uniforms(options.key, nTest * d);
    references = u.map((v, k) => lo[k % d]! + v * (hi[k % d]! - lo[k % d]!));
  }
  const fractions = new Float64Array(nTest);
  for (let i = 0; i < nTest; i++) {
    const dist2 = (at: ArrayLike<number>, offset: number) => {
      let s = 0;
      for (let j = 0; j < d; j++)
        s += ((at[offset + j]! - references[i * d + j]!) * invScale[j]!) ** 2;
      return s;
    };
    const radius = dist2(theta, i * d);
    let closer = 0;
    for (let s = 0; s < L; s++) if (dist2(samples, (i * L + s) * d) < radius) closer++;
    fractions[i] = closer / L;
  }
  const curve = coverageCurve(fractions, options.levels ?? COVERAGE_LEVELS);
  let atc = 0;
  const { levels, coverage } = curve;
  for (let k = 1; k < levels.length; k++) {
    if (levels[k - 1]! < 0.5) continue;
    const width = levels[k]! - levels[k - 1]!;
    atc += (width * (coverage[k]! - levels[k]! + coverage[k - 1]! - levels[k - 1]!)) / 2;
  }
  return { ...curve, nSamples: L, fractions, references, atc };
}
