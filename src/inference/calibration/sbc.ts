/**
 * Simulation-based calibration (Talts et al. 2018): for test pairs (θ*, x) drawn from the prior
 * and the simulator, the rank of θ*_j among L posterior draws of parameter j is uniform on
 * {0, …, L} exactly when the posterior is right on average over the prior predictive. The shape
 * of a non-uniform rank histogram says what is wrong: a slope is a bias (ranks pile on one side),
 * a U an over-confident posterior (θ* often beyond all draws), a hump an under-confident one.
 *
 * Three numbers per parameter say it with sizes: Pearson's χ² on binned ranks (any departure),
 * the mean normalised rank (bias: 0.5 when calibrated) and the variance of the normalised ranks
 * (spread: 1/12 when calibrated), each with its sampling error under uniformity.
 */
import { failText } from "../../errors.js";
import { chiSquareCounts, twoSidedNormalPValue } from "./uniformity.js";

/** SBC statistics of one parameter. */
export interface SbcParameter {
  /** The parameter's name. */
  readonly label: string;
  /** Per test pair: how many of the nSamples draws lie below θ*, 0..nSamples. */
  readonly ranks: Int32Array;
  /** Test pairs per rank bin. */
  readonly counts: Int32Array;
  /** Test pairs expected per bin under uniform ranks (bins may hold unequal numbers of ranks). */
  readonly expected: Float64Array;
  /** Pearson's χ² of counts against expected. */
  readonly chiSquare: number;
  /** Its degrees of freedom (bins − 1). */
  readonly dof: number;
  /** P(χ² ≥ chiSquare) under uniform ranks. */
  readonly pValue: number;
  /** Mean of (rank + 0.5) / (nSamples + 1): 0.5 when calibrated; below it, θ* sits low in the draws. */
  readonly meanRank: number;
  /** Standard error of meanRank under uniform ranks. */
  readonly meanRankSe: number;
  /** (meanRank − 0.5) / meanRankSe. */
  readonly meanZ: number;
  /** Two-sided p-value of meanZ. */
  readonly meanPValue: number;
  /** Variance of the normalised ranks: ≈ 1/12 when calibrated, more for a U, less for a hump. */
  readonly rankVariance: number;
  /** Its value under uniform ranks. */
  readonly expectedVariance: number;
  /** (rankVariance − expectedVariance) / its standard error under uniform ranks. */
  readonly varianceZ: number;
  /** Two-sided p-value of varianceZ. */
  readonly variancePValue: number;
}

/** SBC over all parameters. */
export interface SbcResult {
  /** Test pairs ranked. */
  readonly nTest: number;
  /** Posterior draws per test pair (ranks run 0..nSamples). */
  readonly nSamples: number;
  /** First rank of each bin, and nSamples + 1 last (bins + 1 numbers). */
  readonly binStarts: Int32Array;
  /** One entry per parameter, in the columns' order. */
  readonly parameters: readonly SbcParameter[];
}

/** Options of `sbc`. */
export interface SbcOptions {
  /** Parameters per row (d). */
  readonly nDims: number;
  /** Draws per test pair (L). */
  readonly nSamples: number;
  /** One name per parameter (default θ0, θ1, ...). */
  readonly labels?: readonly string[];
  /** Rank bins of the χ² test (default: ≤ 20, with ≥ 5 test pairs expected per bin). */
  readonly bins?: number;
}

/** Checks a host array of rows: its length and that every value is a finite number. */
/**
 * The shared arguments of the calibration statistics: nTest ≥ 2 test pairs of nDims parameters
 * and nSamples posterior draws per pair; returns (d, L, nTest).
 */
export function checkTestDraws(
  fn: string,
  theta: ArrayLike<number>,
  samples: ArrayLike<number>,
  options: { nDims: number; nSamples: number },
): { d: number; L: number; nTest: number } {
  const { nDims: d, nSamples: L } = options;
  if (!Number.isInteger(d) || d < 1) failText(fn, "nDims", "a positive integer", String(d));
  if (!Number.isInteger(L) || L < 1) failText(fn, "nSamples", "a positive integer", String(L));
  const nTest = theta.length / d;
  if (!Number.isInteger(nTest) || nTest < 2) {
    failText(fn, "theta", `at least 2 rows of ${d} numbers`, `${theta.length} numbers`);
  }
  checkRows(fn, "theta", theta, nTest * d, `${nTest} test pairs × ${d} parameters`);
  checkRows(fn, "samples", samples, nTest * L * d, `${nTest} test pairs × ${L} draws × ${d}`);
  return { d, L, nTest };
}

export function checkRows(
  fn: string,
  name: string,
  values: ArrayLike<number>,
  length: number,
  what: string,
): void {
  if (values === null || typeof values !== "object" || typeof values.length !== "number") {
    failText(fn, name, `${length} numbers (${what})`, String(values));
  }
  if (values.length !== length) {
    failText(fn, name, `${length} numbers (${what})`, `${values.length} numbers`);
  }
  for (let i = 0; i < length; i++) {
    if (!Number.isFinite(values[i]!)) {
      failText(fn, name, "finite numbers", `${values[i]} at index ${i}`);
    }
  }
}

/** The default bin count: at most 20, at least 5 expected per bin, never more than the ranks. */
export function defaultRankBins(nTest: number, nSamples: number): number {
  return Math.max(2, Math.min(20, Math.floor(nTest / 5), nSamples + 1));
}

/**
 * SBC ranks and their uniformity statistics per parameter, from host arrays.
 *
 * `theta` holds the true parameters of nTest test pairs (nTest × d, row-major) and `samples` the
 * posterior draws at each pair's data (nTest × nSamples × d). A draw equal to θ* counts half
 * (rounded down), which only matters for discrete parameters.
 *
 * @example
 * ```ts
 * const result = sbc(thetaTrue, draws, { nDims: 2, nSamples: 200, labels: ["a", "b"] });
 * result.parameters.map((p) => p.pValue); // χ² p-values of the rank histograms
 * ```
 */
export function sbc(
  theta: ArrayLike<number>,
  samples: ArrayLike<number>,
  options: SbcOptions,
): SbcResult {
  const fn = "sbc";
  const { d, L, nTest } = checkTestDraws(fn, theta, samples, options);
  const labels = options.labels ?? Array.from({ length: d }, (_, j) => `θ${j}`);
  if (labels.length !== d) failText(fn, "labels", `${d} names`, `${labels.length} names`);
  const bins = options.bins ?? defaultRankBins(nTest, L);
  if (!Number.isInteger(bins) || bins < 2 || bins > L + 1) {
    failText(fn, "bins", `an integer in [2, ${L + 1}]`, String(bins));
  }
  // Bin k holds ranks r with floor(r · bins / (L + 1)) = k: equal shares when bins divides L + 1.
  const binOf = (r: number) => Math.floor((r * bins) / (L + 1));
  const binStarts = new Int32Array(bins + 1);
  binStarts[bins] = L + 1;
  for (let r = L; r >= 0; r--) binStarts[binOf(r)] = r;
  const expected = Float64Array.from(
    { length: bins },
    (_, k) => (nTest * (binStarts[k + 1]! - binStarts[k]!)) / (L + 1),
  );
  // Moments of u = (r + 0.5) / (L + 1) for r uniform on 0..L: the reference of the z-scores.
  let mu2 = 0;
  let mu4 = 0;
  for (let r = 0; r <= L; r++) {
    const c = (r + 0.5) / (L + 1) - 0.5;
    mu2 += c * c;
    mu4 += c ** 4;
  }
  mu2 /= L + 1;
  mu4 /= L + 1;
  const meanRankSe = Math.sqrt(mu2 / nTest);
  const varianceSe = Math.sqrt((mu4 - mu2 * mu2) / nTest);

  const parameters: SbcParameter[] = [];
  for (let j = 0; j < d; j++) {
    const ranks = new Int32Array(nTest);
    const counts = new Int32Array(bins);
    let sum = 0;
    let sumSq = 0;
    for (let i = 0; i < nTest; i++) {
      const t = theta[i * d + j]!;
      let below = 0;
      let equal = 0;
      const base = i * L * d + j;
      for (let s = 0; s < L; s++) {
        const v = samples[base + s * d]!;
        if (v < t) below++;
        else if (v === t) equal++;
      }
      const r = below + Math.floor(equal / 2);
      ranks[i] = r;
      counts[binOf(r)]! += 1;
      const u = (r + 0.5) / (L + 1);
      sum += u;
      sumSq += u * u;
    }
    const meanRank = sum / nTest;
    const rankVariance = sumSq / nTest - meanRank * meanRank;
    const chi = chiSquareCounts(counts, expected);
    const meanZ = (meanRank - 0.5) / meanRankSe;
    const varianceZ = (rankVariance - mu2) / varianceSe;
    parameters.push({
      label: labels[j]!,
      ranks,
      counts,
      expected,
      chiSquare: chi.statistic,
      dof: chi.dof,
      pValue: chi.pValue,
      meanRank,
      meanRankSe,
      meanZ,
      meanPValue: twoSidedNormalPValue(meanZ),
      rankVariance,
      expectedVariance: mu2,
      varianceZ,
      variancePValue: twoSidedNormalPValue(varianceZ),
    });
  }
  return { nTest, nSamples: L, binStarts, parameters };
}
