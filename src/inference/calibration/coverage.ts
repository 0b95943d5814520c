/**
 * Expected coverage of highest-density regions (HPD). For a test pair (θ*, x) and draws θ_i from
 * q(θ | x), the share of the posterior's mass denser than θ*, estimated by
 * α = #{log q(θ_i | x) > log q(θ* | x)} / L, is the smallest credibility level whose HPD region
 * contains θ*. Over the prior predictive α is uniform when q is the true posterior, so the
 * fraction of test pairs with α ≤ γ, the expected coverage ECP(γ), follows the diagonal. Below it
 * the regions are too small (over-confident), above it too large (under-confident). Unlike SBC's
 * per-parameter ranks this is one joint test in all dimensions (sbi's `expected_coverage`).
 */
import { failText } from "../../errors.js";
import { ksUniform } from "./uniformity.js";

/** The credibility grid of coverage curves: 0, 0.01, ..., 1. */
export const COVERAGE_LEVELS: Float64Array = Float64Array.from({ length: 101 }, (_, k) => k / 100);

/** The levels the verdict and the summaries quote. */
export const QUOTED_LEVELS: readonly number[] = [0.5, 0.68, 0.9, 0.95];

/** Coverage at one credibility level, with its binomial standard error if calibrated. */
export interface LevelCoverage {
  /** The credibility level γ. */
  readonly level: number;
  /** Fraction of test pairs whose θ* lies in the level-γ region. */
  readonly coverage: number;
  /** √(γ(1 − γ)/n): the coverage's standard error for a calibrated posterior. */
  readonly se: number;
}

/** A coverage curve: ECP(γ) on a grid, the uniformity test behind it and its signed area. */
export interface CoverageCurve {
  /** Test pairs. */
  readonly nTest: number;
  /** Credibility levels γ (COVERAGE_LEVELS unless given). */
  readonly levels: Float64Array;
  /** Expected coverage at each level. */
  readonly coverage: Float64Array;
  /** KS distance between the per-pair statistics and U(0, 1): the curve's largest gap. */
  readonly ksStatistic: number;
  /** Its p-value: small when the curve leaves the diagonal by more than chance. */
  readonly pValue: number;
  /** ∫₀¹ (ECP(γ) − γ) dγ: negative for over-confident, positive for under-confident posteriors. */
  readonly area: number;
  /** Coverage at QUOTED_LEVELS (50%, 68%, 90%, 95%). */
  readonly atLevels: readonly LevelCoverage[];
}

/** HPD expected coverage: the curve plus each test pair's credibility level. */
export interface HpdCoverage extends CoverageCurve {
  /** Draws per test pair. */
  readonly nSamples: number;
  /** Per test pair: α, the credibility level at which θ* enters the HPD region. */
  readonly credibility: Float64Array;
}

function checkLevels(fn: string, levels: ArrayLike<number>): Float64Array {
  const out = Float64Array.from(levels);
  const bad = out.findIndex((v, k) => !(v >= 0 && v <= 1) || (k > 0 && v <= out[k - 1]!));
  if (out.length < 2 || bad >= 0) {
    failText(
      fn,
      "levels",
      "at least 2 increasing numbers in [0, 1]",
      bad >= 0 ? `${out[bad]} at index ${bad}` : `${out.length} numbers`,
    );
  }
  return out;
}

/**
 * The coverage curve of per-pair statistics that are uniform on [0, 1] under calibration
 * (HPD credibility levels, TARP fractions): ECP(γ) = #{v ≤ γ} / n at each level, the KS test of
 * the values against U(0, 1), the signed area between curve and diagonal, and the coverage at
 * the quoted levels.
 *
 * @example
 * ```ts
 * coverageCurve(Float64Array.of(0.1, 0.35, 0.6, 0.85)).coverage[50]; // 0.5: half lie at or below 0.5
 * ```
 */
export function coverageCurve(
  values: ArrayLike<number>,
  levels: ArrayLike<number> = COVERAGE_LEVELS,
): CoverageCurve {
  const fn = "coverageCurve";
  const n = values.length;
  if (n < 1) failText(fn, "values", "at least one value in [0, 1]", "none");
  const grid = checkLevels(fn, levels);
  const sorted = Float64Array.from(values).sort();
  const at = (gamma: number) => {
    // Values ≤ γ: the first index whose value exceeds γ (binary search).
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (sorted[mid]! <= gamma) lo = mid + 1;
      else hi = mid;
    }
    return lo / n;
  };
  const coverage = grid.map(at);
  let area = 0;
  for (let k = 1; k < grid.length; k++) {
    const width = grid[k]! - grid[k - 1]!;
    area += (width * (coverage[k]! - grid[k]! + coverage[k - 1]! - grid[k - 1]!)) / 2;
  }
  const ks = ksUniform(sorted);
  return {
    nTest: n,
    levels: grid,
    coverage,
    ksStatistic: ks.statistic,
    pValue: ks.pValue,
    area,
    atLevels: QUOTED_LEVELS.map((level) => ({
      level,
      coverage: at(level),
      se: Math.sqrt((level * (1 - level)) / n),
    })),
  };
}

/**
 * HPD expected coverage from host arrays: `logProbTrue` holds log q(θ* | x) of each test pair
 * (nTest numbers) and `logProbSamples` log q(θ_i | x) of its draws (nTest × nSamples). A draw
 * exactly as dense as θ* counts half. −∞ is allowed (outside the surrogate's support), NaN not.
 *
 * @example
 * ```ts
 * const hpd = hpdCoverage(lqTrue, lqDraws, { nSamples: 500 });
 * hpd.atLevels.find((c) => c.level === 0.9)?.coverage; // ≈ 0.9 when calibrated
 * ```
 */
export function hpdCoverage(
  logProbTrue: ArrayLike<number>,
  logProbSamples: ArrayLike<number>,
  options: { readonly nSamples: number; readonly levels?: ArrayLike<number> },
): HpdCoverage {
  const fn = "hpdCoverage";
  const L = options.nSamples;
  if (!Number.isInteger(L) || L < 1) failText(fn, "nSamples", "a positive integer", String(L));
  const nTest = logProbTrue.length;
  if (nTest < 1) failText(fn, "logProbTrue", "at least one log-density", "none");
  const densities = (name: string, v: ArrayLike<number>, length: number) => {
    if (v.length !== length) {
      failText(fn, name, `${length} numbers (${nTest} test pairs × ${L} draws)`, `${v.length}`);
    }
    for (let i = 0; i < length; i++) {
      if (Number.isNaN(v[i]!) || v[i] === Number.POSITIVE_INFINITY) {
        failText(fn, name, "log-densities (finite or −Infinity)", `${v[i]} at index ${i}`);
      }
    }
  };
  densities("logProbTrue", logProbTrue, nTest);
  densities("logProbSamples", logProbSamples, nTest * L);
  const credibility = new Float64Array(nTest);
  for (let i = 0; i < nTest; i++) {
    const t = logProbTrue[i]!;
    let denser = 0;
    let equal = 0;
    for (let s = 0; s < L; s++) {
      const v = logProbSamples[i * L + s]!;
      if (v > t) denser++;
      else if (v === t) equal++;
    }
    credibility[i] = (denser + 0.5 * equal) / L;
  }
  return { ...coverageCurve(credibility, options.levels), nSamples: L, credibility };
}
