/**
 * The out-of-distribution alarm's statistics, on host arrays: how far an observation lies from
 * the training simulations in the featurizer's space, against the distances of simulations like
 * them that the network was not trained on.
 *
 * - The featurizer's outputs f (one vector per noisy training simulation) are summarised by their
 *   mean μ, per-feature spreads D and a Ledoit–Wolf shrunk correlation matrix R (Ledoit & Wolf
 *   2004: shrunk towards the identity by the intensity that minimises the expected Frobenius
 *   loss), so a few hundred simulations in 32 or 256 feature dimensions still give an invertible,
 *   stable matrix; Σ = DRD.
 * - The distance is Mahalanobis', d² = (f − μ)ᵀ Σ⁻¹ (f − μ), computed as |W(f − μ)|² with the
 *   whitening W = L⁻¹D⁻¹ (R = LLᵀ, Cholesky).
 * - The reference distribution is that of simulations neither the network nor the statistics
 *   saw: the validation split's distances (with fewer than 25 held out, the training rows
 *   cross-fitted: each half measured with the other half's μ and Σ). In-sample distances are
 *   systematically smaller, and would make the alarm fire on typical observations.
 * - The tail probability P(D² ≥ d²) is empirical inside the reference and, beyond its largest
 *   values, a generalized Pareto tail fitted to the M = min(⌈0.2N⌉, ⌈3√N⌉) largest (the PSIS
 *   rule; peaks over threshold), its shape held ≥ 0 (no lighter than exponential) so noise in a
 *   small tail sample does not make the alarm trigger-happy. Thresholds: below 1% caution, below
 *   0.1% do not trust.
 */
import { fail, failText, NbiError } from "../errors.js";
import { generalizedParetoFit } from "./importance.js";

/** How far a result can be trusted: fine, read with care, or not at all. */
export type TrustLevel = "ok" | "caution" | "do-not-trust";

/** Fewest training simulations for a reference distribution with a tail (5 in the tail). */
export const OOD_MIN_TRAINING = 25;
/** Tail probability below which an observation is unusual (caution). */
export const OOD_CAUTION_TAIL = 0.01;
/** Tail probability below which the observation is outside the training set (do not trust). */
export const OOD_REJECT_TAIL = 0.001;

/** The generalized Pareto tail of the reference distances (see the module comment). */
export interface DistanceTail {
  /** The threshold u: the (M + 1)-th largest reference d². */
  readonly threshold: number;
  /** M / N: the share of the reference above the threshold. */
  readonly fraction: number;
  /** The shape ξ ≥ 0 (0: an exponential tail). */
  readonly shape: number;
  /** The scale σ of the exceedances d² − u. */
  readonly scale: number;
}

/** What the alarm keeps of the training simulations' features (saved with the model). */
export interface FeatureStatistics {
  /** Feature dimension F (the featurizer's dimOut). */
  readonly dim: number;
  /** Mean feature vector μ (F). */
  readonly mean: Float64Array;
  /** W = L⁻¹D⁻¹ (R = LLᵀ the shrunk correlation, D the spreads): F × F row-major, lower triangular; d² = |W(f − μ)|². */
  readonly whitening: Float64Array;
  /** The Ledoit–Wolf shrinkage intensity used for R (0: the sample correlation, 1: the identity). */
  readonly shrinkage: number;
  /** Squared distances of simulations the statistics did not see, ascending (see `referenceSource`). */
  readonly reference: Float64Array;
  /**
   * "held-out": the validation simulations (unseen by the network and the statistics);
   * "cross-fitted": the training simulations, each half measured with the other half's statistics
   * (when fewer than 25 were held out; the alarm then fires somewhat too often in the far tail).
   */
  readonly referenceSource: "held-out" | "cross-fitted";
  /** The fitted tail beyond the largest reference distances. */
  readonly tail: DistanceTail;
}

/** The alarm's answer for one observation. */
export interface OodReport {
  /** False when the model has no training statistics (saved before the alarm existed, or too few simulations). */
  readonly available: boolean;
  /** Mahalanobis distance √d² from the training simulations in the featurizer's space (NaN when unavailable). */
  readonly distance: number;
  /** Median distance of the reference simulations: what "typical" means here. */
  readonly typicalDistance: number;
  /** Estimated share of reference simulations at least this far (1 when unavailable). */
  readonly tailProbability: number;
  /** Share of the reference simulations that are closer (empirical, 0..1; NaN when unavailable). */
  readonly percentile: number;
  /** ok (tail ≥ 1%), caution (< 1%) or do-not-trust (< 0.1%); ok when unavailable. */
  readonly level: TrustLevel;
  /** One sentence: the distance, what is typical, and what it means. */
  readonly message: string;
}

/**
 * Statistics of training features (n rows of `dim`, row-major): mean, shrunk covariance
 * whitening, reference distances and their tail. The reference is the distances of `heldOut`
 * features (simulations the network did not train on: the validation split) when there are at
 * least 25; otherwise the training features' own, cross-fitted. Held-out rows are the honest
 * reference: a network maps the extremes of its own training set closer to the bulk than new
 * simulations like them (measured: a 99.9% quantile of 25 from training rows against 40 for fresh
 * simulations), so a training-row reference makes the alarm fire too often in the tail. Throws an
 * NbiError naming the problem when the features cannot support the alarm (too few rows, no
 * variance, not finite).
 *
 * @example
 * ```ts
 * const stats = featureStatistics(features, 16, heldOut); // features: n × 16, n ≥ 25
 * const d2 = squaredDistances(stats, fObs);               // one per row of fObs
 * oodReport(stats, d2[0]!).level;                         // "ok" | "caution" | "do-not-trust"
 * ```
 */
export function featureStatistics(
  features: Float64Array,
  dim: number,
  heldOut?: Float64Array,
): FeatureStatistics {
  const fn = "featureStatistics";
  checkFeatures(fn, "features", features, dim);
  const n = features.length / dim;
  if (n < OOD_MIN_TRAINING) {
    failText(
      fn,
      "features",
      `at least ${OOD_MIN_TRAINING} training simulations (the reference distances need a tail)`,
      `${n}`,
    );
  }
  if (heldOut !== undefined) checkFeatures(fn, "heldOut", heldOut, dim);
  const all = Int32Array.from({ length: n }, (_, i) => i);
  const full = gaussianSummary(fn, features, dim, all);
  let reference: Float64Array;
  let referenceSource: FeatureStatistics["referenceSource"];
  if (heldOut !== undefined && heldOut.length / dim >= OOD_MIN_TRAINING) {
    const m = heldOut.length / dim;
    reference = distancesOf(
      full.mean,
      full.whitening,
      dim,
      heldOut,
      Int32Array.from({ length: m }, (_, i) => i),
    );
    referenceSource = "held-out";
  } else {
    // Alternate rows: the training simulations come in random order, so the halves are alike.
    const even = all.filter((i) => i % 2 === 0);
    const odd = all.filter((i) => i % 2 === 1);
    reference = new Float64Array(n);
    for (const [fitRows, testRows] of [
      [even, odd],
      [odd, even],
    ] as const) {
      // The full set's shrinkage for the halves too: a half's own (larger) intensity would
      // inflate its low-variance directions more than the statistics a new observation meets,
      // and make the reference distances too small.
      const half = gaussianSummary(fn, features, dim, fitRows, full.shrinkage);
      const d2 = distancesOf(half.mean, half.whitening, dim, features, testRows);
      testRows.forEach((row, j) => {
        reference[row] = d2[j]!;
      });
    }
    referenceSource = "cross-fitted";
  }
  reference.sort();
  return {
    dim,
    mean: full.mean,
    whitening: full.whitening,
    shrinkage: full.shrinkage,
    reference,
    referenceSource,
    tail: fitTail(reference),
  };
}

/**
 * Statistics rebuilt from saved arrays (mean, whitening, reference distances), checked for
 * sizes and finiteness; `source` names them in errors (a file path).
 */
export function restoreFeatureStatistics(
  saved: {
    mean: ArrayLike<number>;
    whitening: ArrayLike<number>;
    reference: ArrayLike<number>;
    shrinkage: number;
    referenceSource?: string;
  },
  source: string,
): FeatureStatistics {
  const mean = Float64Array.from(saved.mean);
  const dim = mean.length;
  const whitening = Float64Array.from(saved.whitening);
  const reference = Float64Array.from(saved.reference).sort();
  const bad = (what: string, expected: string, got: string): never => {
    throw new NbiError(`load: ${source} ${what} expected ${expected}, got ${got}`);
  };
  if (dim < 1) bad("ood.mean", "at least one feature", "none");
  if (whitening.length !== dim * dim)
    bad("ood.whitening", `${dim} × ${dim} values`, `${whitening.length}`);
  if (reference.length < OOD_MIN_TRAINING)
    bad("ood.reference", `at least ${OOD_MIN_TRAINING} distances`, `${reference.length}`);
  for (const [name, values] of [
    ["ood.mean", mean],
    ["ood.whitening", whitening],
    ["ood.reference", reference],
  ] as const) {
    const i = values.findIndex((v) => !Number.isFinite(v));
    if (i >= 0) bad(name, "finite values", `${values[i]} at index ${i}`);
  }
  if (reference[0]! < 0) bad("ood.reference", "squared distances ≥ 0", `${reference[0]}`);
  return {
    dim,
    mean,
    whitening,
    shrinkage: Number.isFinite(saved.shrinkage) ? saved.shrinkage : Number.NaN,
    reference,
    referenceSource: saved.referenceSource === "held-out" ? "held-out" : "cross-fitted",
    tail: fitTail(reference),
  };
}

/**
 * Squared Mahalanobis distances d² = |W(f − μ)|² of feature rows (m × dim); NaN for a row with
 * a non-finite feature.
 */
export function squaredDistances(stats: FeatureStatistics, features: Float64Array): Float64Array {
  if (!(features instanceof Float64Array) || features.length % stats.dim !== 0) {
    failText(
      "squaredDistances",
      "features",
      `rows of ${stats.dim} numbers (the featurizer's dimOut)`,
      features instanceof Float64Array ? `${features.length} numbers` : String(features),
    );
  }
  const m = features.length / stats.dim;
  return distancesOf(
    stats.mean,
    stats.whitening,
    stats.dim,
    features,
    Int32Array.from({ length: m }, (_, i) => i),
  );
}

/**
 * P(D² ≥ d²) for a training simulation's cross-fitted distance D²: empirical up to the tail's
 * threshold, the generalized Pareto tail beyond. 0 for an infinite d², NaN for NaN.
 */
export function tailProbability(stats: FeatureStatistics, d2: number): number {
  if (Number.isNaN(d2)) return Number.NaN;
  const { reference, tail } = stats;
  const n = reference.length;
  if (d2 <= tail.threshold) return (n - upperBound(reference, d2)) / n;
  const excess = (d2 - tail.threshold) / tail.scale;
  const survival =
    tail.shape > 1e-9 ? (1 + tail.shape * excess) ** (-1 / tail.shape) : Math.exp(-excess);
  return tail.fraction * survival;
}

/**
 * The alarm's verdict for one squared distance (see `OOD_CAUTION_TAIL`, `OOD_REJECT_TAIL`).
 *
 * @example
 * ```ts
 * const [d2] = squaredDistances(stats, fObs);
 * const report = oodReport(stats, d2!); // report.level, report.message
 * ```
 */
export function oodReport(stats: FeatureStatistics, d2: number): OodReport {
  const n = stats.reference.length;
  const typical = Math.sqrt(stats.reference[Math.floor((n - 1) / 2)]!);
  const distance = Math.sqrt(d2);
  if (Number.isNaN(d2)) {
    return {
      available: true,
      distance,
      typicalDistance: typical,
      tailProbability: 0,
      percentile: 1,
      level: "do-not-trust",
      message:
        "the featurizer's output for this observation is not finite: it lies far outside the data the network was trained on",
    };
  }
  const p = tailProbability(stats, d2);
  const percentile = lowerBound(stats.reference, d2) / n;
  const where = `distance ${fmt(distance)} from the training simulations in the featurizer's space (typical ${fmt(typical)})`;
  // Beyond every reference simulation the share comes from the fitted tail: say so.
  const farther =
    percentile === 1
      ? `farther than all ${n} reference simulations (tail probability ${p.toPrecision(2)} by the fitted tail)`
      : `only ${share(p)} of the reference simulations lie as far`;
  const base = {
    available: true,
    distance,
    typicalDistance: typical,
    tailProbability: p,
    percentile,
  };
  if (p < OOD_REJECT_TAIL) {
    return {
      ...base,
      level: "do-not-trust",
      message:
        `the observation lies outside the training simulations: ${where}; ${farther}, below the 0.1% threshold. ` +
        "The network extrapolates here; the simulator or the prior may not describe this observation",
    };
  }
  if (p < OOD_CAUTION_TAIL) {
    return {
      ...base,
      level: "caution",
      message: `the observation is unusual for the training simulations: ${where}; ${farther}, below the 1% threshold`,
    };
  }
  return {
    ...base,
    level: "ok",
    message: `the observation is typical of the training simulations: ${where}; ${(100 * percentile).toFixed(0)}% of the reference simulations are closer`,
  };
}

/** The report when there are no statistics (an old model, too few simulations): says why. */
export function oodUnavailable(reason: string): OodReport {
  return {
    available: false,
    distance: Number.NaN,
    typicalDistance: Number.NaN,
    tailProbability: 1,
    percentile: Number.NaN,
    level: "ok",
    message: `the out-of-distribution check is unavailable: ${reason}`,
  };
}

// ---------------------------------------------------------------------------------------------

const fmt = (v: number): string =>
  Number.isFinite(v) ? (Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(3)) : String(v);

/** A tail probability as "0.42%". */
const share = (p: number): string => `${(100 * p).toPrecision(2)}%`;

function checkFeatures(fn: string, name: string, features: Float64Array, dim: number): void {
  if (!Number.isInteger(dim) || dim < 1) fail(fn, "dim", "a positive integer", dim);
  if (!(features instanceof Float64Array)) fail(fn, name, "a Float64Array", features);
  if (features.length % dim !== 0) {
    failText(fn, name, `rows of ${dim} numbers`, `${features.length} numbers`);
  }
  const bad = features.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) {
    failText(
      fn,
      name,
      "finite values",
      `${features[bad]} in row ${Math.floor(bad / dim)} (the featurizer's output for a training simulation)`,
    );
  }
}

/**
 * Mean, per-feature spread and a Ledoit–Wolf shrunk correlation over the given rows; the
 * whitening W = L⁻¹D⁻¹ (D the spreads, LLᵀ the shrunk correlation). Shrinking the correlation
 * (not the covariance towards its mean variance) keeps features of very different scales from
 * borrowing each other's variance, so the distance does not depend on the features' units; a
 * feature that never varies gets a spread of 10⁻⁶ of the largest, so moving it alarms.
 */
function gaussianSummary(
  fn: string,
  x: Float64Array,
  F: number,
  rows: Int32Array,
  fixedShrinkage?: number,
): { mean: Float64Array; whitening: Float64Array; shrinkage: number } {
  const n = rows.length;
  const mean = new Float64Array(F);
  for (const r of rows) for (let j = 0; j < F; j++) mean[j]! += x[r * F + j]! / n;
  const sd = new Float64Array(F);
  for (const r of rows) for (let j = 0; j < F; j++) sd[j]! += (x[r * F + j]! - mean[j]!) ** 2 / n;
  let maxSd = 0;
  let level = 0;
  for (let j = 0; j < F; j++) {
    sd[j] = Math.sqrt(sd[j]!);
    maxSd = Math.max(maxSd, sd[j]!);
    level = Math.max(level, Math.abs(mean[j]!));
  }
  if (!(maxSd > 1e-12 * level) || maxSd === 0) {
    throw new NbiError(
      `${fn}: features expected to vary over the training simulations, got every feature constant; the featurizer's outputs cannot tell observations apart`,
    );
  }
  for (let j = 0; j < F; j++) sd[j] = Math.max(sd[j]!, 1e-6 * maxSd);
  const y = new Float64Array(n * F);
  rows.forEach((r, i) => {
    for (let j = 0; j < F; j++) y[i * F + j] = (x[r * F + j]! - mean[j]!) / sd[j]!;
  });
  const s = new Float64Array(F * F);
  for (let i = 0; i < n; i++) {
    for (let a = 0; a < F; a++) {
      const ya = y[i * F + a]!;
      if (ya === 0) continue;
      for (let b = 0; b <= a; b++) s[a * F + b]! += ya * y[i * F + b]!;
    }
  }
  for (let a = 0; a < F; a++)
    for (let b = 0; b <= a; b++) {
      s[a * F + b]! /= n;
      s[b * F + a] = s[a * F + b]!;
    }
  let trace = 0;
  for (let a = 0; a < F; a++) trace += s[a * F + a]!;
  const mu = trace / F;
  // Ledoit–Wolf: δ² = |S − μI|², β̄² = (1/n²) Σ_k |y_k y_kᵀ − S|² = (1/n²) Σ_k (|y_k|⁴ − 2 y_kᵀ S y_k + |S|²).
  let delta2 = 0;
  let sNorm2 = 0;
  for (let a = 0; a < F; a++)
    for (let b = 0; b < F; b++) {
      const v = s[a * F + b]!;
      sNorm2 += v * v;
      const c = v - (a === b ? mu : 0);
      delta2 += c * c;
    }
  let beta2 = 0;
  for (let i = 0; i < n && fixedShrinkage === undefined; i++) {
    const yi = y.subarray(i * F, (i + 1) * F);
    let norm2 = 0;
    for (let a = 0; a < F; a++) norm2 += yi[a]! * yi[a]!;
    let quad = 0;
    for (let a = 0; a < F; a++) {
      let acc = 0;
      for (let b = 0; b < F; b++) acc += s[a * F + b]! * yi[b]!;
      quad += acc * yi[a]!;
    }
    beta2 += norm2 * norm2 - 2 * quad + sNorm2;
  }
  beta2 /= n * n;
  const shrinkage = fixedShrinkage ?? (delta2 > 0 ? Math.min(beta2, delta2) / delta2 : 1);
  const cov = new Float64Array(F * F);
  for (let a = 0; a < F; a++)
    for (let b = 0; b < F; b++)
      cov[a * F + b] = (1 - shrinkage) * s[a * F + b]! + (a === b ? shrinkage * mu : 0);
  const whitening = inverseCholesky(cov, F, mu);
  for (let i = 0; i < F; i++) for (let j = 0; j <= i; j++) whitening[i * F + j]! /= sd[j]!;
  return { mean, whitening, shrinkage };
}

/** W = L⁻¹ for Σ = LLᵀ (lower triangular), with jitter added if rounding leaves Σ indefinite. */
function inverseCholesky(cov: Float64Array, F: number, scale: number): Float64Array {
  for (let jitter = 0, attempt = 0; attempt < 8; attempt++, jitter = scale * 10 ** (attempt - 12)) {
    const l = new Float64Array(F * F);
    let ok = true;
    for (let i = 0; i < F && ok; i++) {
      for (let j = 0; j <= i; j++) {
        let sum = cov[i * F + j]! + (i === j ? jitter : 0);
        for (let k = 0; k < j; k++) sum -= l[i * F + k]! * l[j * F + k]!;
        if (i === j) {
          if (!(sum > 0)) {
            ok = false;
            break;
          }
          l[i * F + i] = Math.sqrt(sum);
        } else l[i * F + j] = sum / l[j * F + j]!;
      }
    }
    if (!ok) continue;
    // Columns of L⁻¹ by forward substitution: L w = e_c.
    const w = new Float64Array(F * F);
    for (let c = 0; c < F; c++) {
      for (let i = c; i < F; i++) {
        let sum = i === c ? 1 : 0;
        for (let k = c; k < i; k++) sum -= l[i * F + k]! * w[k * F + c]!;
        w[i * F + c] = sum / l[i * F + i]!;
      }
    }
    return w;
  }
  throw new NbiError(
    "featureStatistics: features expected a covariance that can be factorised, got one that stays indefinite after jitter",
  );
}

function distancesOf(
  mean: Float64Array,
  w: Float64Array,
  F: number,
  x: Float64Array,
  rows: Int32Array,
): Float64Array {
  const out = new Float64Array(rows.length);
  const c = new Float64Array(F);
  rows.forEach((r, k) => {
    for (let j = 0; j < F; j++) c[j] = x[r * F + j]! - mean[j]!;
    let d2 = 0;
    for (let i = 0; i < F; i++) {
      let z = 0;
      for (let j = 0; j <= i; j++) z += w[i * F + j]! * c[j]!;
      d2 += z * z;
    }
    out[k] = d2;
  });
  return out;
}

/** The generalized Pareto tail of sorted reference distances (PSIS's tail size). */
function fitTail(reference: Float64Array): DistanceTail {
  const n = reference.length;
  const m = Math.min(Math.ceil(0.2 * n), Math.ceil(3 * Math.sqrt(n)));
  const threshold = reference[n - m - 1]!;
  const exceedances = Float64Array.from(reference.subarray(n - m), (v) => v - threshold);
  let mean = 0;
  for (const v of exceedances) mean += v / m;
  // Ties at the threshold (a degenerate reference): a vanishing scale puts nothing beyond it.
  if (!(exceedances[m - 1]! > 0)) {
    return { threshold, fraction: m / n, shape: 0, scale: Math.max(threshold * 1e-9, 1e-300) };
  }
  const fit = generalizedParetoFit(exceedances);
  return fit.shape > 0 && fit.scale > 0 && Number.isFinite(fit.scale)
    ? { threshold, fraction: m / n, shape: fit.shape, scale: fit.scale }
    : { threshold, fraction: m / n, shape: 0, scale: mean };
}

/** Index of the first value > v in ascending `a`. */
function upperBound(a: Float64Array, v: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! <= v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Index of the first value ≥ v in ascending `a`. */
function lowerBound(a: Float64Array, v: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
