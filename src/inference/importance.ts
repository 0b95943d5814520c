/**
 * Importance sampling on the host, in float64: normalised weights from log-weights, the effective
 * sample size nbi reports, the evidence estimate with its standard error, the PSIS k̂ tail
 * diagnostic, nbi's combination of rounds, and weighted summaries and resampling.
 *
 * Everything works in log space shifted by the largest valid log-weight, so weights whose logs
 * are ±1e3 neither overflow nor underflow to all-zero.
 */
import { fail, NbiError } from "../errors.js";
import type { Array as Key } from "../trace/array.js";
import { uniforms } from "./host.js";
import { logSumExp } from "./special.js";

/** The weights of one importance-sampling round and their diagnostics. */
export interface ImportanceResult {
  /** Normalised (sum 1); exactly 0 where the log-weight was NaN or ±Infinity. */
  weights: Float64Array;
  /** The unnormalised log-weights, as given. */
  logWeights: Float64Array;
  /** Draws with a finite log-weight. */
  nValid: number;
  /** Draws whose log-weight was NaN or ±Infinity (weight 0). */
  nInvalid: number;
  /** nbi's effective sample size, 1/Σw² − 1 (0 for a single non-zero weight). */
  nEff: number;
  /** Kish's effective sample size (Σw)²/Σw² = 1/Σw². */
  kishEss: number;
  /** nEff / n, with n all draws including invalid ones: nbi's sampling efficiency. */
  efficiency: number;
  /** log Ẑ: the log of the mean unnormalised weight over all n draws (invalid ones count as 0). */
  logEvidence: number;
  /** Standard error of log Ẑ by the delta method, sd(w) / (√n · mean(w)); NaN for n = 1. */
  logEvidenceSe: number;
  /** PSIS k̂ of the largest weights; NaN when there are 20 or fewer valid draws. */
  paretoK: number;
}

/**
 * Normalises log-weights log w = log p(x|θ) + log p(θ) − log q(θ) and computes the diagnostics.
 * NaN and ±Infinity log-weights are invalid: their weight is 0 and they are counted (+Infinity
 * is invalid too: one draw with infinite weight would swallow the whole round).
 *
 * @example
 * ```ts
 * const imp = inference.importanceWeights(Float64Array.from([0, -1, -2, Number.NaN]));
 * imp.weights; // [0.665, 0.245, 0.090, 0]; imp.nInvalid === 1
 * ```
 */
export function importanceWeights(logWeights: Float64Array): ImportanceResult {
  const fn = "importanceWeights";
  if (!(logWeights instanceof Float64Array)) fail(fn, "logWeights", "a Float64Array", logWeights);
  const n = logWeights.length;
  if (n === 0) fail(fn, "logWeights", "at least one log-weight", "an empty array");
  let max = -Infinity;
  let nValid = 0;
  for (let i = 0; i < n; i++) {
    const lw = logWeights[i]!;
    if (Number.isFinite(lw)) {
      nValid++;
      if (lw > max) max = lw;
    }
  }
  if (nValid === 0) {
    throw new NbiError(
      `${fn}: all ${n} log-weights are invalid (NaN or ±Infinity); expected at least one ` +
        "finite log-weight. An empty round: check that the likelihood, prior and proposal " +
        "log-densities are finite for the drawn parameters.",
    );
  }
  // Shifted weights u = w·e^(−max) lie in (0, 1] with at least one equal to 1, so sums are safe.
  const weights = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const lw = logWeights[i]!;
    if (Number.isFinite(lw)) {
      const u = Math.exp(lw - max);
      weights[i] = u;
      sum += u;
    }
  }
  let sumSq = 0;
  for (let i = 0; i < n; i++) {
    const w = weights[i]! / sum;
    weights[i] = w;
    sumSq += w * w;
  }
  const kish = 1 / sumSq;
  const nEff = kish - 1;
  // sd(w)/mean(w) is scale-free, so with normalised weights (sample variance, n − 1):
  // SE² = (n·Σŵ² − 1)/(n − 1). Clamped at 0 against rounding when all weights are equal.
  const logEvidenceSe = n > 1 ? Math.sqrt(Math.max(0, n * sumSq - 1) / (n - 1)) : Number.NaN;
  return {
    weights,
    logWeights,
    nValid,
    nInvalid: n - nValid,
    nEff,
    kishEss: kish,
    efficiency: nEff / n,
    logEvidence: max + Math.log(sum) - Math.log(n),
    logEvidenceSe,
    paretoK: paretoKHat(logWeights),
  };
}

/**
 * Independent importance samples of one target, each group weighed against the proposal that drew
 * it, combined into one result over all their draws: each group's normalised weights scaled by its
 * Kish ESS (the inverse-variance weighting of the groups' self-normalised estimates), so the
 * combined Kish ESS is exactly the sum of the groups'. The evidence is the groups' estimates
 * averaged with the same shares, its standard error by the delta method; `logWeights` are the
 * combined weights unnormalised so that their mean over all draws is that evidence (what
 * `importanceWeights` of them would return, but for the standard error); k̂ is theirs.
 *
 * Why predict needs it: weighing adapted stages as one deterministic mixture reuses every draw
 * against proposals fitted to it, which biases the weights (bench/RESULTS.md: the evidence
 * 0.05–0.19 nats low); a proposal fixed before its group drew keeps each group unbiased. A group
 * whose log-weights are all invalid (NaN or ±Infinity) contributes weight 0 and is counted.
 *
 * @example
 * ```ts
 * const a = Float64Array.from([0, 0]); // two equal weights: Kish ESS 2
 * const b = Float64Array.from([0, Math.log(3)]); // Kish ESS 1.6
 * inference.combineStages([a, b]).kishEss; // 3.6
 * ```
 */
export function combineStages(groups: readonly Float64Array[]): ImportanceResult {
  const fn = "combineStages";
  if (!globalThis.Array.isArray(groups) || groups.length === 0) {
    fail(fn, "groups", "a non-empty array of Float64Array log-weights", groups);
  }
  groups.forEach((g, i) => {
    if (!(g instanceof Float64Array)) fail(fn, `groups[${i}]`, "a Float64Array", g);
  });
  // One group is one importance sample: exactly importanceWeights' result.
  if (groups.length === 1) return importanceWeights(groups[0]!);
  const parts = groups.map((g) => (g.some(Number.isFinite) ? importanceWeights(g) : null));
  const total = parts.reduce((a, p) => a + (p ? p.kishEss : 0), 0);
  const n = groups.reduce((a, g) => a + g.length, 0);
  if (!(total > 0)) {
    throw new NbiError(
      `${fn}: all ${n} log-weights are invalid (NaN or ±Infinity); expected at least one ` +
        "finite log-weight. An empty round: check that the likelihood, prior and proposal " +
        "log-densities are finite for the drawn parameters.",
    );
  }
  // The evidence: Ẑ = Σ_g s_g Ẑ_g with s_g = ESS_g / ΣESS, in log space; its relative variance
  // Σ_g s_g² (Ẑ_g/Ẑ)² se_g², se_g each group's relative standard error.
  const logZ = logSumExp(
    parts.flatMap((p) => (p ? [Math.log(p.kishEss / total) + p.logEvidence] : [])),
  );
  let relVar = 0;
  for (const p of parts) {
    if (!p || !Number.isFinite(p.logEvidenceSe)) continue;
    const s = p.kishEss / total;
    relVar += (s * Math.exp(p.logEvidence - logZ) * p.logEvidenceSe) ** 2;
  }
  const weights = new Float64Array(n);
  const logWeights = new Float64Array(n).fill(Number.NaN);
  let at = 0;
  let nValid = 0;
  let sumSq = 0;
  groups.forEach((g, k) => {
    const p = parts[k];
    if (p) {
      const share = p.kishEss / total;
      nValid += p.nValid;
      for (let i = 0; i < g.length; i++) {
        const w = p.weights[i]! * share;
        weights[at + i] = w;
        sumSq += w * w;
        if (Number.isFinite(g[i]!)) logWeights[at + i] = Math.log(w) + Math.log(n) + logZ;
      }
    }
    at += g.length;
  });
  const kish = 1 / sumSq;
  return {
    weights,
    logWeights,
    nValid,
    nInvalid: n - nValid,
    nEff: kish - 1,
    kishEss: kish,
    efficiency: (kish - 1) / n,
    logEvidence: logZ,
    logEvidenceSe: Math.sqrt(relVar),
    paretoK: paretoKHat(logWeights),
  };
}

/**
 * Kish's effective sample size (Σw)²/Σw² of non-negative weights, normalised or not (0 when
 * they are all 0): the one formula the adaptive stages' fits and scores share.
 *
 * @example
 * ```ts
 * inference.kishEss([1, 1, 0, 0]); // 2
 * ```
 */
export function kishEss(weights: ArrayLike<number>): number {
  let s = 0;
  let s2 = 0;
  for (let i = 0; i < weights.length; i++) {
    const w = weights[i]!;
    s += w;
    s2 += w * w;
  }
  return s > 0 ? (s * s) / s2 : 0;
}

/**
 * Above this PSIS k̂ (see `paretoKHat`) importance-weighted estimates are unreliable (Vehtari et
 * al. 2024): the one threshold the rounds' warnings, predict's, the advice and the trust verdict
 * read.
 */
export const PARETO_K_UNRELIABLE = 0.7;

/**
 * The Pareto-smoothed importance sampling (PSIS) diagnostic k̂ of Vehtari et al. (2017, 2024):
 * a generalized Pareto distribution is fitted to the M = min(⌈0.2n⌉, ⌈3√n⌉) largest weights
 * (exceedances over the next largest) by Zhang & Stephens (2009), and k̂ is shrunk towards 0.5
 * by the weakly informative prior k̂ ← (M·k̂ + 10·0.5)/(M + 10). k̂ < 0.5: the weights have a
 * finite variance; 0.5–0.7: usable; > 0.7: the estimates are unreliable.
 *
 * Only finite log-weights count (n is their number). NaN when the tail would have fewer than 5
 * draws (20 or fewer valid draws); −Infinity when the M largest weights all tie with the
 * threshold (a flat tail, no tail at all).
 *
 * @example
 * ```ts
 * const logW = inference.normals(inference.hostKey(0), 1000); // log-normal weights
 * inference.paretoKHat(logW); // < 0.5: a light tail
 * ```
 */
export function paretoKHat(logWeights: Float64Array): number {
  if (!(logWeights instanceof Float64Array)) {
    fail("paretoKHat", "logWeights", "a Float64Array", logWeights);
  }
  const valid = logWeights.filter(Number.isFinite).sort();
  const n = valid.length;
  const m = Math.min(Math.ceil(0.2 * n), Math.ceil(3 * Math.sqrt(n)));
  if (m < 5 || m >= n) return Number.NaN;
  const max = valid[n - 1]!;
  const cutoff = valid[n - m - 1]!;
  // Exceedances w − w_cut = e^(cut−max)·expm1(lw − cut), accurate when they are tiny.
  const scale = Math.exp(cutoff - max);
  const x = new Float64Array(m);
  for (let i = 0; i < m; i++) x[i] = scale * Math.expm1(valid[n - m + i]! - cutoff);
  if (!(x[m - 1]! > 0)) return Number.NEGATIVE_INFINITY;
  const k = generalizedParetoShape(x);
  return (m * k + 10 * 0.5) / (m + 10);
}

/**
 * Zhang & Stephens (2009): the shape ξ of a generalized Pareto distribution fitted to exceedances
 * `x` (ascending, x[last] > 0), returned in the PSIS sign convention (ξ > 0: heavy tail).
 *
 * With their parametrisation F(x) = 1 − (1 − kx/σ)^(1/k) and θ = k/σ, the profile MLE of k for a
 * given θ is k(θ) = −mean log(1 − θx), and the profile log-likelihood ℓ(θ) = n[log(θ/k(θ)) + k(θ)
 * − 1]. θ̂ is the posterior mean of θ over a grid θ_j = 1/x₍ₙ₎ + (1 − √(m/(j − ½)))/(3x*), j = 1..m,
 * m = 20 + ⌊√n⌋, x* the first quartile x₍⌊n/4+½⌋₎, with weights ∝ exp ℓ(θ_j). Then ξ = −k(θ̂).
 */
function generalizedParetoShape(x: Float64Array): number {
  return meanLog1m(x, zhangStephensTheta(x));
}

/**
 * A generalized Pareto distribution P(X > x) = (1 + ξx/σ)^(−1/ξ) fitted to exceedances `x`
 * (ascending, x[last] > 0) by Zhang & Stephens (2009), as in `paretoKHat` but with the scale:
 * σ = −ξ/θ̂ in their parametrisation (the exponential limit, mean(x), when θ̂ ≈ 0). Used for
 * tail probabilities beyond the largest of a sample (the out-of-distribution distances).
 *
 * @example
 * ```ts
 * const x = Float64Array.from({ length: 50 }, (_, i) => -Math.log(1 - (i + 0.5) / 50)); // exponential quantiles
 * inference.generalizedParetoFit(x); // { shape ≈ 0, scale ≈ 1 }
 * ```
 */
export function generalizedParetoFit(x: Float64Array): {
  /** The tail shape k (Pareto k̂: above 0.7 the weights' variance estimate is unreliable). */
  shape: number;
  /** The scale σ of the exceedances. */
  scale: number;
} {
  if (!(x instanceof Float64Array) || x.length < 2 || !(x[x.length - 1]! > 0)) {
    fail("generalizedParetoFit", "x", "ascending exceedances (≥ 2, the largest > 0)", x);
  }
  const n = x.length;
  const theta = zhangStephensTheta(x);
  const shape = meanLog1m(x, theta);
  let mean = 0;
  for (let i = 0; i < n; i++) mean += x[i]! / n;
  const scale = Math.abs(theta) * x[n - 1]! < 1e-9 ? mean : -shape / theta;
  return { shape, scale };
}

/** Zhang & Stephens' θ̂ (see `generalizedParetoShape`). */
function zhangStephensTheta(x: Float64Array): number {
  const n = x.length;
  const xMax = x[n - 1]!;
  let xStar = x[Math.floor(n / 4 + 0.5) - 1]!;
  // Ties at the threshold make the quartile 0; the smallest positive exceedance keeps the grid finite.
  if (!(xStar > 0)) xStar = x.find((v) => v > 0)!;
  const gridSize = 20 + Math.floor(Math.sqrt(n));
  const theta = new Float64Array(gridSize);
  const logLik = new Float64Array(gridSize);
  let best = -Infinity;
  for (let j = 0; j < gridSize; j++) {
    const t = 1 / xMax + (1 - Math.sqrt(gridSize / (j + 0.5))) / (3 * xStar);
    theta[j] = t;
    logLik[j] = profileLogLik(x, t);
    if (logLik[j]! > best) best = logLik[j]!;
  }
  let num = 0;
  let den = 0;
  for (let j = 0; j < gridSize; j++) {
    const w = Math.exp(logLik[j]! - best);
    num += w * theta[j]!;
    den += w;
  }
  return num / den;
}

/** mean over x of log(1 − θx): ZS's −k(θ), PSIS's ξ. */
function meanLog1m(x: Float64Array, theta: number): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += Math.log1p(-theta * x[i]!);
  return s / x.length;
}

function profileLogLik(x: Float64Array, theta: number): number {
  const n = x.length;
  if (theta === 0) {
    // The limit θ → 0 (exponential distribution): θ/k(θ) → 1/mean(x), k → 0.
    let mean = 0;
    for (let i = 0; i < n; i++) mean += x[i]! / n;
    return n * (-Math.log(mean) - 1);
  }
  const k = -meanLog1m(x, theta);
  return n * (Math.log(theta / k) + k - 1);
}

/** One SNPE-IS round's draws (rows of `dim` values), their normalised weights and n_eff. */
export interface WeightedRound {
  theta: Float64Array;
  weights: Float64Array;
  nEff: number;
}

/**
 * nbi's final result: every round's draws, concatenated, with each round's weights normalised,
 * scaled by its n_eff and renormalised over all rounds, so a round counts in proportion to its
 * information. Rounds with n_eff ≤ 0 or NaN (or all-zero weights) contribute nothing and are left
 * out of the returned draws.
 *
 * @example
 * ```ts
 * const r0 = { theta: Float64Array.from([1, 2, 3, 4]), weights: Float64Array.from([0.5, 0.5]), nEff: 1 };
 * const r1 = { theta: Float64Array.from([5, 6]), weights: Float64Array.from([1]), nEff: 0 }; // left out
 * inference.combineRounds([r0, r1], 2); // { theta: [1, 2, 3, 4], weights: [0.5, 0.5] }
 * ```
 */
export function combineRounds(
  rounds: readonly WeightedRound[],
  dim: number,
): {
  /** The kept rounds' draws, rows of `dim`. */
  theta: Float64Array;
  /** One weight per draw, summing to 1. */
  weights: Float64Array;
} {
  const fn = "combineRounds";
  checkDim(fn, dim);
  if (!globalThis.Array.isArray(rounds)) fail(fn, "rounds", "an array of rounds", rounds);
  const kept: { round: WeightedRound; sum: number }[] = [];
  let totalNEff = 0;
  let size = 0;
  rounds.forEach((round, r) => {
    const count = checkDraws(
      fn,
      `rounds[${r}].theta`,
      `rounds[${r}].weights`,
      round.theta,
      round.weights,
      dim,
    );
    if (typeof round.nEff !== "number") fail(fn, `rounds[${r}].nEff`, "a number", round.nEff);
    if (!(round.nEff > 0)) return;
    if (!Number.isFinite(round.nEff)) fail(fn, `rounds[${r}].nEff`, "a finite number", round.nEff);
    const sum = weightSum(round.weights);
    if (sum === 0) return;
    kept.push({ round, sum });
    totalNEff += round.nEff;
    size += count;
  });
  if (kept.length === 0) {
    fail(fn, "rounds", "at least one round with n_eff > 0 and a non-zero weight", rounds);
  }
  const theta = new Float64Array(size * dim);
  const weights = new Float64Array(size);
  let at = 0;
  for (const { round, sum } of kept) {
    theta.set(round.theta, at * dim);
    const scale = round.nEff / totalNEff / sum;
    for (let i = 0; i < round.weights.length; i++) weights[at + i] = round.weights[i]! * scale;
    at += round.weights.length;
  }
  return { theta, weights };
}

/**
 * Weighted mean and standard deviation per dimension (population form: Σw(θ − μ)²/Σw).
 *
 * @example
 * ```ts
 * inference.weightedMoments(Float64Array.from([0, 10, 2, 20]), Float64Array.from([1, 1]), 2); // mean [1, 15], std [1, 5]
 * ```
 */
export function weightedMoments(
  theta: Float64Array,
  weights: Float64Array,
  dim: number,
): {
  /** Mean per dimension. */
  mean: Float64Array;
  /** Standard deviation per dimension. */
  std: Float64Array;
} {
  const fn = "weightedMoments";
  checkDim(fn, dim);
  const n = checkDraws(fn, "theta", "weights", theta, weights, dim);
  const total = positiveSum(fn, weights);
  const mean = new Float64Array(dim);
  const std = new Float64Array(dim);
  for (let i = 0; i < n; i++) {
    const w = weights[i]! / total;
    for (let d = 0; d < dim; d++) mean[d] += w * theta[i * dim + d]!;
  }
  for (let i = 0; i < n; i++) {
    const w = weights[i]! / total;
    for (let d = 0; d < dim; d++) std[d] += w * (theta[i * dim + d]! - mean[d]!) ** 2;
  }
  for (let d = 0; d < dim; d++) std[d] = Math.sqrt(std[d]!);
  return { mean, std };
}

/**
 * Weighted quantiles per dimension: one dim-vector per q. Each draw with weight w sits at the
 * midpoint of its probability mass, p = (W_before + w/2)/W, and quantiles interpolate linearly
 * between draws (constant beyond the outermost). With equal weights this is the Hazen (type 5)
 * quantile, numpy's method="hazen". Zero-weight draws are ignored.
 *
 * @example
 * ```ts
 * const [q16, q50, q84] = inference.weightedQuantiles(fit.samples, fit.weights, fit.labels.length, [0.16, 0.5, 0.84]);
 * ```
 */
export function weightedQuantiles(
  theta: Float64Array,
  weights: Float64Array,
  dim: number,
  qs: readonly number[],
): Float64Array[] {
  const fn = "weightedQuantiles";
  checkDim(fn, dim);
  const n = checkDraws(fn, "theta", "weights", theta, weights, dim);
  const total = positiveSum(fn, weights);
  qs.forEach((q, i) => {
    if (!(typeof q === "number" && q >= 0 && q <= 1)) fail(fn, `qs[${i}]`, "a number in [0, 1]", q);
  });
  const out = qs.map(() => new Float64Array(dim));
  const order: number[] = [];
  for (let i = 0; i < n; i++) if (weights[i]! > 0) order.push(i);
  const values = new Float64Array(order.length);
  const positions = new Float64Array(order.length);
  for (let d = 0; d < dim; d++) {
    order.sort((a, b) => theta[a * dim + d]! - theta[b * dim + d]!);
    let before = 0;
    order.forEach((i, r) => {
      const w = weights[i]!;
      values[r] = theta[i * dim + d]!;
      positions[r] = (before + w / 2) / total;
      before += w;
    });
    qs.forEach((q, k) => {
      out[k]![d] = interpolate(positions, values, q);
    });
  }
  return out;
}

/** Piecewise-linear interpolation of (positions ascending, values) at p, clamped at the ends. */
function interpolate(positions: Float64Array, values: Float64Array, p: number): number {
  const last = positions.length - 1;
  if (p <= positions[0]!) return values[0]!;
  if (p >= positions[last]!) return values[last]!;
  let lo = 0;
  let hi = last;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (positions[mid]! <= p) lo = mid;
    else hi = mid;
  }
  const t = (p - positions[lo]!) / (positions[hi]! - positions[lo]!);
  return values[lo]! + t * (values[hi]! - values[lo]!);
}

/**
 * `n` draws (rows of `dim`) resampled by systematic resampling: one uniform u from `key`, then
 * the points (u + i)/n pick draws by their cumulative weight. Each draw is picked ⌊n·w⌋ or
 * ⌈n·w⌉ times, n·w on average, with less variance than multinomial resampling.
 *
 * @example
 * ```ts
 * const equal = inference.resample(inference.hostKey(0), fit.samples, fit.weights, fit.labels.length, 1000); // 1000 unweighted draws
 * ```
 */
export function resample(
  key: Key,
  theta: Float64Array,
  weights: Float64Array,
  dim: number,
  n: number,
): Float64Array {
  const fn = "resample";
  checkDim(fn, dim);
  const count = checkDraws(fn, "theta", "weights", theta, weights, dim);
  const total = positiveSum(fn, weights);
  if (!Number.isInteger(n) || n < 0) fail(fn, "n", "a non-negative integer", n);
  const out = new Float64Array(n * dim);
  if (n === 0) return out;
  const u = uniforms(key, 1)[0]!;
  let lastPositive = count - 1;
  while (!(weights[lastPositive]! > 0)) lastPositive--;
  let i = 0;
  let cumulative = weights[0]! / total;
  for (let s = 0; s < n; s++) {
    const point = (u + s) / n;
    // Rounding can leave the final cumulative sum just under a point near 1: stop at the last
    // draw with weight, never on a zero-weight one.
    while (point >= cumulative && i < lastPositive) {
      i++;
      cumulative += weights[i]! / total;
    }
    out.set(theta.subarray(i * dim, (i + 1) * dim), s * dim);
  }
  return out;
}

function checkDim(fn: string, dim: number): void {
  if (!Number.isInteger(dim) || dim < 1) fail(fn, "dim", "a positive integer", dim);
}

/** Checks theta is count×dim for count = weights.length, and the weights are finite and ≥ 0. */
function checkDraws(
  fn: string,
  name: string,
  weightsName: string,
  theta: Float64Array,
  weights: Float64Array,
  dim: number,
): number {
  if (!(theta instanceof Float64Array)) fail(fn, name, "a Float64Array", theta);
  if (!(weights instanceof Float64Array)) fail(fn, weightsName, "a Float64Array", weights);
  const count = weights.length;
  if (theta.length !== count * dim) {
    fail(
      fn,
      name,
      `${count} draws × ${dim} dims = ${count * dim} values (one row per weight)`,
      `${theta.length} values`,
    );
  }
  for (let i = 0; i < count; i++) {
    const w = weights[i]!;
    if (!(w >= 0 && w < Infinity)) fail(fn, `${weightsName}[${i}]`, "a finite weight ≥ 0", w);
  }
  return count;
}

function weightSum(weights: Float64Array): number {
  let s = 0;
  for (let i = 0; i < weights.length; i++) s += weights[i]!;
  return s;
}

function positiveSum(fn: string, weights: Float64Array): number {
  const s = weightSum(weights);
  if (!(s > 0)) fail(fn, "weights", "at least one positive weight", `weights summing to ${s}`);
  return s;
}
