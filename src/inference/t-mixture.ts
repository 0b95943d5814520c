/**
 * A mixture of multivariate Student-t components fitted to weighted draws: the adapted proposal of
 * predict's later stages (population Monte Carlo, Cappé et al. 2004). Where the surrogate misses
 * the posterior's scale or a mode's weight, the first stage's importance weights still show where
 * the mass is; a mixture centred there, with heavier tails than a Gaussian, draws the next stage.
 *
 * Fitted by weighted EM for Gaussians (k-means++ seeding by D² × weight); a component resting on
 * fewer than d + 2 effective draws borrows the rest of its covariance from the draws' pooled one,
 * so it stays wide rather than collapsing. Host arrays, float64.
 */
import { fail } from "../errors.js";
import type { Array } from "../trace/array.js";
import { keyAt, normals, uniforms } from "./host.js";
import { kishEss } from "./importance.js";
import { logGamma } from "./special.js";

/** One fitted mixture. */
export interface TMixture {
  readonly dim: number;
  /** Degrees of freedom shared by the components. */
  readonly nu: number;
  /** Mixture weights (sum 1). */
  readonly weights: Float64Array;
  /** Component means, k × dim row-major. */
  readonly means: Float64Array;
  /** Lower Cholesky factors of the component scale matrices, k × dim × dim row-major. */
  readonly chol: Float64Array;
}

/** Options of `fitTMixture`. */
export interface TMixtureOptions {
  /** Components (default 8; fewer when the draws carry fewer effective points). */
  components?: number;
  /** Degrees of freedom (default 5). */
  nu?: number;
  /** EM iterations (default 50). */
  iterations?: number;
  /** Scale of the fitted covariances (default 1.5: a proposal wider than the target's fit). */
  inflate?: number;
}

const LOG_2PI = Math.log(2 * Math.PI);

/**
 * Fits a t mixture to n draws (n × dim row-major) with non-negative weights.
 *
 * @example
 * ```ts
 * const m = inference.fitTMixture(draws, weights, 2, inference.hostKey(0), { components: 4 });
 * const more = inference.sampleTMixture(m, 1000, inference.hostKey(1));
 * ```
 */
export function fitTMixture(
  points: Float64Array,
  weights: Float64Array,
  dim: number,
  key: Array,
  options: TMixtureOptions = {},
): TMixture {
  const fn = "fitTMixture";
  if (!Number.isInteger(dim) || dim < 1) fail(fn, "dim", "a positive integer", dim);
  const n = weights.length;
  if (points.length !== n * dim)
    fail(fn, "points", `${n} rows of ${dim} (one per weight)`, `${points.length} numbers`);
  let total = 0;
  for (const w of weights) {
    if (!(w >= 0) || !Number.isFinite(w)) fail(fn, "weights", "finite non-negative numbers", w);
    total += w;
  }
  if (!(total > 0)) fail(fn, "weights", "at least one positive weight", "all zero");
  const nu = options.nu ?? 5;
  if (!(nu > 2)) fail(fn, "options.nu", "a number > 2 (a finite covariance)", nu);
  const inflate = options.inflate ?? 1.5;
  if (!(inflate > 0)) fail(fn, "options.inflate", "a positive number", inflate);
  const ess = kishEss(weights);
  // Keep the draws that carry weight (the rest change nothing but cost).
  const rows: number[] = [];
  for (let i = 0; i < n; i++) if (weights[i]! > total * 1e-9) rows.push(i);
  const m = rows.length;
  const w = Float64Array.from(rows, (i) => weights[i]! / total);
  const x = new Float64Array(m * dim);
  rows.forEach((i, r) => {
    x.set(points.subarray(i * dim, (i + 1) * dim), r * dim);
  });
  const k = Math.max(1, Math.min(options.components ?? 8, m, Math.floor(ess / 2) || 1));

  const pooledMean = new Float64Array(dim);
  for (let r = 0; r < m; r++)
    for (let a = 0; a < dim; a++) pooledMean[a]! += w[r]! * x[r * dim + a]!;
  const pooled = weightedCov(x, w, pooledMean, dim, 1);
  // A floor so that one-point fits keep a scale: 1e-6 of the mean variance.
  let trace = 0;
  for (let a = 0; a < dim; a++) trace += pooled[a * dim + a]!;
  const floor = Math.max((trace / dim) * 1e-6, 1e-12);

  // Seeding: k-means++ with D² × weight.
  const means = new Float64Array(k * dim);
  const u = uniforms(keyAt(key, 0), k);
  const d2 = new Float64Array(m).fill(Number.POSITIVE_INFINITY);
  for (let c = 0; c < k; c++) {
    let pick = 0;
    if (c === 0) pick = pickWeighted(w, u[0]!);
    else {
      const score = Float64Array.from(d2, (v, r) => v * w[r]!);
      pick = pickWeighted(score, u[c]!);
    }
    means.set(x.subarray(pick * dim, (pick + 1) * dim), c * dim);
    for (let r = 0; r < m; r++) {
      let s = 0;
      for (let a = 0; a < dim; a++) s += (x[r * dim + a]! - means[c * dim + a]!) ** 2;
      if (s < d2[r]!) d2[r] = s;
    }
  }
  const covs: Float64Array[] = [];
  for (let c = 0; c < k; c++) covs.push(pooled.slice());
  let mix = new Float64Array(k).fill(1 / k);
  const resp = new Float64Array(m * k);
  // Scratch for the E step's triangular solves and the M step's per-component weights.
  const z = new Float64Array(dim);
  const g = new Float64Array(m);
  const iterations = options.iterations ?? 50;
  const stack = (cs: Float64Array[]) => {
    const out = new Float64Array(cs.length * dim * dim);
    cs.forEach((c, j) => {
      out.set(cholesky(withFloor(c, dim, floor), dim), j * dim * dim);
    });
    return out;
  };
  let chol = stack(covs);
  let previous = Number.NEGATIVE_INFINITY;
  for (let it = 0; it < iterations; it++) {
    // E step: responsibilities under Gaussian components (each component's log weight and
    // normalising constant computed once per iteration, not once per draw).
    let ll = 0;
    const logRow = new Float64Array(k);
    const logMix = Float64Array.from(mix, (v) => Math.log(v));
    const logNorm = gaussianLogNorms(chol, k, dim);
    for (let r = 0; r < m; r++) {
      let max = Number.NEGATIVE_INFINITY;
      for (let c = 0; c < k; c++) {
        logRow[c] =
          logMix[c]! +
          (-0.5 * (dim * LOG_2PI + mahalanobis(x, r, means, c, chol, dim, z)) - logNorm[c]!);
        if (logRow[c]! > max) max = logRow[c]!;
      }
      let s = 0;
      for (let c = 0; c < k; c++) {
        logRow[c] = Math.exp(logRow[c]! - max); // now the unnormalised responsibility
        s += logRow[c]!;
      }
      for (let c = 0; c < k; c++) resp[r * k + c] = logRow[c]! / s;
      ll += w[r]! * (max + Math.log(s));
    }
    // M step, weighted by the importance weights; covariances shrunk towards the pooled one.
    const next = new Float64Array(k);
    for (let c = 0; c < k; c++) {
      let mass = 0;
      let sq2 = 0;
      const mean = new Float64Array(dim);
      for (let r = 0; r < m; r++) {
        const g = w[r]! * resp[r * k + c]!;
        mass += g;
        sq2 += g * g;
        for (let a = 0; a < dim; a++) mean[a]! += g * x[r * dim + a]!;
      }
      next[c] = mass;
      if (!(mass > 0)) continue;
      for (let a = 0; a < dim; a++) mean[a]! /= mass;
      means.set(mean, c * dim);
      for (let r = 0; r < m; r++) g[r] = (w[r]! * resp[r * k + c]!) / mass;
      const local = weightedCov(x, g, mean, dim, 1);
      // Fewer than dim + 2 effective draws cannot fix a covariance: the shortfall is made up
      // with the pooled one (wide, so the next stage explores rather than collapses).
      const effective = (mass * mass) / sq2;
      const shortfall = Math.max(0, dim + 2 - effective) / (dim + 2);
      for (let e = 0; e < dim * dim; e++)
        covs[c]![e] = (1 - shortfall) * local[e]! + shortfall * pooled[e]!;
    }
    let sum = 0;
    for (const v of next) sum += v;
    mix = Float64Array.from(next, (v) => Math.max(v / sum, 1e-12));
    chol = stack(covs);
    if (Math.abs(ll - previous) < 1e-8 * Math.max(1, Math.abs(ll))) break;
    previous = ll;
  }
  // Drop components without mass; a t with ν has covariance ν/(ν − 2)·S: match the fit, inflated.
  const keep = [...mix.keys()].filter((c) => mix[c]! > 1e-6);
  const scale = inflate * inflate * ((nu - 2) / nu);
  const outChol = stack(keep.map((c) => covs[c]!.map((v) => v * scale)));
  let kept = 0;
  for (const c of keep) kept += mix[c]!;
  return {
    dim,
    nu,
    weights: Float64Array.from(keep, (c) => mix[c]! / kept),
    means: Float64Array.from(keep.flatMap((c) => [...means.subarray(c * dim, (c + 1) * dim)])),
    chol: outChol,
  };
}

/** log density of the mixture at each row of `points` (n × dim). */
export function tMixtureLogDensity(mix: TMixture, points: Float64Array): Float64Array {
  const { dim, nu } = mix;
  const n = points.length / dim;
  const k = mix.weights.length;
  const constant = logGamma((nu + dim) / 2) - logGamma(nu / 2) - (dim / 2) * Math.log(nu * Math.PI);
  const logDet = Float64Array.from({ length: k }, (_, c) => {
    let s = 0;
    for (let a = 0; a < dim; a++) s += Math.log(mix.chol[c * dim * dim + a * dim + a]!);
    return s;
  });
  const out = new Float64Array(n);
  const z = new Float64Array(dim);
  for (let r = 0; r < n; r++) {
    let max = Number.NEGATIVE_INFINITY;
    const terms = new Float64Array(k);
    for (let c = 0; c < k; c++) {
      const m2 = mahalanobis(points, r, mix.means, c, mix.chol, dim, z);
      terms[c] =
        Math.log(mix.weights[c]!) + constant - logDet[c]! - ((nu + dim) / 2) * Math.log1p(m2 / nu);
      if (terms[c]! > max) max = terms[c]!;
    }
    let s = 0;
    for (let c = 0; c < k; c++) s += Math.exp(terms[c]! - max);
    out[r] = max + Math.log(s);
  }
  return out;
}

/** n draws from the mixture (n × dim row-major). */
export function sampleTMixture(mix: TMixture, n: number, key: Array): Float64Array {
  if (!Number.isInteger(n) || n < 0) fail("sampleTMixture", "n", "a non-negative integer", n);
  const { dim, nu } = mix;
  const u = uniforms(keyAt(key, 0), n);
  const eps = normals(keyAt(key, 1), n * dim);
  // χ²_ν as a sum of squared normals when ν is an integer; else via the Wilson–Hilferty cube.
  const whole = Number.isInteger(nu) && nu <= 64;
  const chiNormals = normals(keyAt(key, 2), whole ? n * nu : n);
  const out = new Float64Array(n * dim);
  const cum = new Float64Array(mix.weights.length);
  let acc = 0;
  mix.weights.forEach((v, c) => {
    acc += v;
    cum[c] = acc;
  });
  for (let r = 0; r < n; r++) {
    let c = 0;
    while (c < cum.length - 1 && u[r]! * acc > cum[c]!) c++;
    let chi2 = 0;
    if (whole) for (let j = 0; j < nu; j++) chi2 += chiNormals[r * nu + j]! ** 2;
    else {
      const h = 2 / (9 * nu);
      chi2 = nu * Math.max(1 - h + chiNormals[r]! * Math.sqrt(h), 1e-6) ** 3;
    }
    const s = Math.sqrt(nu / chi2);
    for (let a = 0; a < dim; a++) {
      let v = 0;
      for (let b = 0; b <= a; b++) v += mix.chol[c * dim * dim + a * dim + b]! * eps[r * dim + b]!;
      out[r * dim + a] = mix.means[c * dim + a]! + s * v;
    }
  }
  return out;
}

function pickWeighted(score: Float64Array, u: number): number {
  let total = 0;
  for (const v of score) total += v;
  let target = u * total;
  for (let r = 0; r < score.length; r++) {
    target -= score[r]!;
    if (target <= 0) return r;
  }
  return score.length - 1;
}

function weightedCov(
  x: Float64Array,
  w: Float64Array,
  mean: Float64Array,
  dim: number,
  total: number,
): Float64Array {
  const cov = new Float64Array(dim * dim);
  for (let r = 0; r < w.length; r++) {
    const g = w[r]!;
    if (g === 0) continue;
    for (let a = 0; a < dim; a++) {
      const da = x[r * dim + a]! - mean[a]!;
      for (let b = 0; b <= a; b++) cov[a * dim + b]! += g * da * (x[r * dim + b]! - mean[b]!);
    }
  }
  for (let a = 0; a < dim; a++)
    for (let b = 0; b <= a; b++) {
      cov[a * dim + b]! /= total;
      cov[b * dim + a] = cov[a * dim + b]!;
    }
  return cov;
}

function withFloor(cov: Float64Array, dim: number, floor: number): Float64Array {
  const out = cov.slice();
  for (let a = 0; a < dim; a++) out[a * dim + a]! += floor;
  return out;
}

/** Lower Cholesky factor; a non-positive pivot is lifted to a tiny positive value. */
function cholesky(a: Float64Array, dim: number): Float64Array {
  const l = new Float64Array(dim * dim);
  for (let i = 0; i < dim; i++)
    for (let j = 0; j <= i; j++) {
      let s = a[i * dim + j]!;
      for (let k = 0; k < j; k++) s -= l[i * dim + k]! * l[j * dim + k]!;
      if (i === j) l[i * dim + i] = Math.sqrt(Math.max(s, 1e-300));
      else l[i * dim + j] = s / l[j * dim + j]!;
    }
  return l;
}

/** Squared Mahalanobis distance of row r from component c (forward substitution into z). */
function mahalanobis(
  x: Float64Array,
  r: number,
  means: Float64Array,
  c: number,
  chol: Float64Array,
  dim: number,
  z: Float64Array,
): number {
  let m2 = 0;
  const base = c * dim * dim;
  for (let a = 0; a < dim; a++) {
    let s = x[r * dim + a]! - means[c * dim + a]!;
    for (let b = 0; b < a; b++) s -= chol[base + a * dim + b]! * z[b]!;
    z[a] = s / chol[base + a * dim + a]!;
    m2 += z[a]! * z[a]!;
  }
  return m2;
}

/** Each component's log det of its Cholesky factor (half the log det of its covariance). */
function gaussianLogNorms(chol: Float64Array, k: number, dim: number): Float64Array {
  const out = new Float64Array(k);
  for (let c = 0; c < k; c++) {
    let logDet = 0;
    for (let a = 0; a < dim; a++) logDet += Math.log(chol[c * dim * dim + a * dim + a]!);
    out[c] = logDet;
  }
  return out;
}
