/**
 * Tests of uniformity, the common ground of every calibration statistic here: a calibrated
 * posterior makes SBC ranks, HPD credibility levels and TARP fractions uniform on [0, 1].
 *
 * - Pearson's χ² on binned counts, its p-value from the regularized upper incomplete gamma
 *   function Q(k/2, χ²/2) (special.ts: series and Lentz continued fraction);
 * - the one-sample Kolmogorov–Smirnov statistic against U(0, 1), its p-value from Kolmogorov's
 *   limiting distribution with Stephens' (1970) small-sample correction of the argument.
 */
import { failText } from "../../errors.js";
import { erfc, gammaQ } from "../special.js";

export { gammaQ };

/** P(χ²_dof ≥ x): the p-value of a χ² statistic with `dof` degrees of freedom. */
export function chiSquarePValue(x: number, dof: number): number {
  return gammaQ(dof / 2, x / 2);
}

/**
 * P(D ≥ d) for the one-sample KS statistic of n values: Kolmogorov's series
 * Q(λ) = 2 Σ (−1)^(k−1) exp(−2k²λ²) at λ = (√n + 0.12 + 0.11/√n) d (Stephens), accurate to
 * about 1% in the p-value for n ≥ 5 and exact in the limit.
 */
export function ksPValue(d: number, n: number): number {
  const sqrtN = Math.sqrt(n);
  const lambda = (sqrtN + 0.12 + 0.11 / sqrtN) * d;
  if (lambda < 0.2) return 1; // the series converges slowly there, and its value is 1 to 1e-9
  let sum = 0;
  for (let k = 1; k <= 100; k++) {
    const term = Math.exp(-2 * k * k * lambda * lambda);
    sum += k % 2 === 1 ? term : -term;
    if (term < 1e-16) break;
  }
  return Math.min(1, Math.max(0, 2 * sum));
}

/** A test of uniformity: its statistic and p-value. */
export interface UniformityTest {
  /** The test statistic (χ², or the KS distance D). */
  readonly statistic: number;
  /** Probability of a statistic at least this large under uniformity. */
  readonly pValue: number;
}

/**
 * The KS distance of values in [0, 1] from U(0, 1): D = sup |F̂(u) − u|, and its p-value.
 *
 * @example
 * ```ts
 * ksUniform(Float64Array.of(0.1, 0.4, 0.6, 0.9)); // { statistic: 0.15, pValue: ≈ 1 }
 * ```
 */
export function ksUniform(values: ArrayLike<number>): UniformityTest {
  const n = values.length;
  if (n === 0) failText("ksUniform", "values", "at least one value in [0, 1]", "none");
  const sorted = Float64Array.from(values).sort();
  let d = 0;
  for (let i = 0; i < n; i++) {
    const u = sorted[i]!;
    d = Math.max(d, (i + 1) / n - u, u - i / n);
  }
  return { statistic: d, pValue: ksPValue(d, n) };
}

/**
 * Pearson's χ² of observed counts against expected ones (same total), with bins − 1 degrees of
 * freedom.
 *
 * @example
 * ```ts
 * chiSquareCounts([12, 8, 10, 10], [10, 10, 10, 10]); // { statistic: 0.8, pValue: 0.85, dof: 3 }
 * ```
 */
export function chiSquareCounts(
  observed: ArrayLike<number>,
  expected: ArrayLike<number>,
): UniformityTest & { readonly dof: number } {
  let statistic = 0;
  for (let k = 0; k < observed.length; k++) {
    const e = expected[k]!;
    statistic += (observed[k]! - e) ** 2 / e;
  }
  const dof = observed.length - 1;
  return { statistic, dof, pValue: chiSquarePValue(statistic, dof) };
}

/** Two-sided p-value of a standard normal z: P(|Z| ≥ |z|) = erfc(|z|/√2). */
export function twoSidedNormalPValue(z: number): number {
  return Math.min(1, erfc(Math.abs(z) / Math.SQRT2));
}
