/**
 * Reference posteriors for the sbibm tasks, computed here by exact methods and checked two ways.
 *
 * Per task, a primary exact sampler gives the reference draws (10,000 by default) and a second,
 * independent exact method must agree with it in every parameter's mean and standard deviation
 * within Monte Carlo error (z-scores from each method's own standard errors). Importance sampling
 * from the prior (up to 10⁷ draws, chunked, float64) is reported for every task, with its ESS:
 *
 * | task | primary (the reference draws) | independent check |
 * |---|---|---|
 * | two_moons | exact inversion: draw the simulator's noise p, θ = rotation of (±(p0 − x0), x1 − p1), reject outside the prior | IS from the prior, 10⁷ draws |
 * | gaussian_mixture | exact rejection: θ ~ 0.5 N(x, I) + 0.5 N(x, 0.01 I), reject outside the prior | IS from the prior, 10⁷ draws |
 * | gaussian_linear_uniform | exact: per-dimension truncated normal N(x_i, 0.1) on [−1, 1], inverse CDF | rejection from N(x, 0.1 I) (sbibm's method) |
 * | slcp | collapsed IS: (θ0, θ1) ~ N(x̄, S/4), its exact conditional, so the weight is a function of (θ2, θ3, θ4) alone; those from uniform, then twice from a defensive Student-t mixture fitted to the previous stage; resampled, (θ0, θ1) redrawn from its truncated conditional, signs of θ2, θ3 symmetrised | IS from the prior, 10⁷ draws |
 * | bernoulli_glm | IS from a multivariate Student-t (ν = 7) around the Laplace approximation (Newton to the MAP) | elliptical slice sampling (Murray et al. 2010) on the prior, a long chain, batch-means errors |
 *
 * Symmetric posteriors are symmetrised exactly (two_moons' arms and SLCP's sign modes carry equal
 * mass because likelihood and prior are invariant under the reflections).
 *
 * References for observations 1–3 are stored under bench/sbibm/references/ (10,000 × d float32
 * NPY, with a JSON summary); others are computed on demand in a few seconds. Regenerate:
 * `npx tsx bench/sbibm/reference.ts --tasks all --obs 1,2,3 --write`.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { concat } from "../../src/inference/draw-weigh.js";
import { ndtr, ndtri } from "../../src/inference/special.js";
import { decodeNpy, encodeNpy } from "../../src/io/npy.js";
import { flagValue } from "./args.js";
import { Rng } from "./rng.js";
import {
  cholesky,
  GLU_VAR,
  GM_COMPONENTS,
  getTask,
  glmDesign,
  glmPriorPrecision,
  slcpCov,
  softplus,
  spdInverse,
  TASK_NAMES,
  type Task,
  TWO_MOONS_NOISE,
} from "./tasks.js";

/** Moments of one method's posterior estimate, with their Monte Carlo standard errors. */
export interface MethodReport {
  /** What the method is. */
  readonly name: string;
  /** Draws made (proposals, chain steps or accepted samples, as `note` says). */
  readonly nDraws: number;
  /** Effective sample size (Kish's 1/Σw² for IS; n for i.i.d. draws; min over dims for MCMC). */
  readonly ess: number;
  /** Mean per parameter. */
  readonly mean: number[];
  /** Standard deviation per parameter. */
  readonly sd: number[];
  /** Standard error of each mean. */
  readonly meanSe: number[];
  /** Standard error of each standard deviation. */
  readonly sdSe: number[];
  /** Weight of each separated mode (tasks with `modes`). */
  readonly modeWeights?: number[];
  /** Acceptance rate, efficiency or other detail. */
  readonly note?: string;
  /** Wall time. */
  readonly seconds: number;
}

/** A reference posterior: exact draws, and how they were computed and checked. */
export interface Reference {
  /** Task name. */
  readonly task: string;
  /** Observation number. */
  readonly obs: number;
  /** Number of parameters. */
  readonly dim: number;
  /** The reference draws, n × dim row-major. */
  readonly samples: Float64Array;
  /** The primary method (the draws come from it). */
  readonly primary: MethodReport;
  /** The independent check. */
  readonly check: MethodReport;
  /** Importance sampling from the prior, for every task (its ESS says when it suffices). */
  readonly priorIs: MethodReport;
  /** Agreement of primary and check: the largest |Δmean| / se and |Δsd| / se over parameters. */
  readonly agreement: { maxMeanZ: number; maxSdZ: number; ok: boolean };
  /** Distinct rows among the reference draws, as a fraction. */
  readonly distinctFraction: number;
  /** Moments of the reference draws themselves. */
  readonly mean: number[];
  /** Standard deviations of the reference draws. */
  readonly sd: number[];
  /** Mode weights of the reference: exact by symmetry where the task has them. */
  readonly modeWeights?: number[];
  /** Wall time of the whole computation (0 when read from the cache). */
  readonly seconds: number;
}

/** Options of `computeReference`. */
export interface ReferenceOptions {
  /** Reference draws (default 10,000). */
  n?: number;
  /** Prior-IS draws (default per task: 10⁷, 10⁶ for GLU, 10⁵ for the GLM). */
  nPriorIs?: number;
  /** Seed of all the draws (default 0). */
  seed?: number;
  /** Scales every method's internal draws (prior IS, IS stages, chain length); default 1. Tests use less. */
  effort?: number;
}

const Z_OK = 5;

// ---- weighted summaries ----

/** Moments and standard errors from draws with log-weights (uniform when logW is undefined). */
export function weightedReport(
  name: string,
  theta: Float64Array,
  logW: Float64Array | undefined,
  d: number,
  task: Task,
  extra: { nDraws: number; note?: string; seconds: number },
): MethodReport {
  const n = theta.length / d;
  const w = new Float64Array(n);
  if (logW) {
    let m = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < n; i++) if (logW[i]! > m) m = logW[i]!;
    let s = 0;
    for (let i = 0; i < n; i++) {
      w[i] = Number.isFinite(logW[i]!) ? Math.exp(logW[i]! - m) : 0;
      s += w[i]!;
    }
    for (let i = 0; i < n; i++) w[i]! /= s;
  } else w.fill(1 / n);
  let sw2 = 0;
  for (let i = 0; i < n; i++) sw2 += w[i]! * w[i]!;
  const mean = new Array(d).fill(0);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += w[i]! * theta[i * d + j]!;
  const v = new Array(d).fill(0);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < d; j++) v[j] += w[i]! * (theta[i * d + j]! - mean[j]) ** 2;
  // Delta-method standard errors of self-normalised estimates: Σ w̄² (f − E f)².
  const seM = new Array(d).fill(0);
  const seV = new Array(d).fill(0);
  for (let i = 0; i < n; i++) {
    const w2 = w[i]! * w[i]!;
    if (w2 === 0) continue;
    for (let j = 0; j < d; j++) {
      const c = (theta[i * d + j]! - mean[j]) ** 2;
      seM[j] += w2 * c;
      seV[j] += w2 * (c - v[j]) ** 2;
    }
  }
  const sd = v.map(Math.sqrt);
  const report: MethodReport = {
    name,
    nDraws: extra.nDraws,
    ess: 1 / sw2,
    mean,
    sd,
    meanSe: seM.map(Math.sqrt),
    sdSe: seV.map((s, j) => Math.sqrt(s) / (2 * sd[j]!)),
    seconds: extra.seconds,
    ...(extra.note ? { note: extra.note } : {}),
  };
  if (task.modes) {
    const mw = new Array(task.modes.count).fill(0);
    for (let i = 0; i < n; i++) mw[task.modes.of(theta.subarray(i * d, (i + 1) * d))] += w[i]!;
    return { ...report, modeWeights: mw };
  }
  return report;
}

/** Moments with batch-means standard errors, for a Markov chain (n × d). */
export function chainReport(
  name: string,
  chain: Float64Array,
  d: number,
  task: Task,
  extra: { nDraws: number; note?: string; seconds: number },
  nBatches = 40,
): MethodReport {
  const base = weightedReport(name, chain, undefined, d, task, extra);
  const n = chain.length / d;
  const len = Math.floor(n / nBatches);
  const seM: number[] = [];
  const seS: number[] = [];
  let ess = Number.POSITIVE_INFINITY;
  for (let j = 0; j < d; j++) {
    const bm: number[] = [];
    const bv: number[] = [];
    for (let b = 0; b < nBatches; b++) {
      let s = 0;
      let s2 = 0;
      for (let i = b * len; i < (b + 1) * len; i++) {
        const x = chain[i * d + j]! - base.mean[j]!;
        s += x;
        s2 += x * x;
      }
      bm.push(s / len);
      bv.push(s2 / len);
    }
    const varOf = (xs: number[]) => {
      const m = xs.reduce((a, b) => a + b, 0) / xs.length;
      return xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1);
    };
    const sm = Math.sqrt(varOf(bm) / nBatches);
    seM.push(sm);
    seS.push(Math.sqrt(varOf(bv) / nBatches) / (2 * base.sd[j]!));
    ess = Math.min(ess, base.sd[j]! ** 2 / (sm * sm));
  }
  return { ...base, meanSe: seM, sdSe: seS, ess };
}

/** Largest z-scores of the differences in means and sds between two reports. */
export function agreement(a: MethodReport, b: MethodReport): Reference["agreement"] {
  let maxMeanZ = 0;
  let maxSdZ = 0;
  for (let j = 0; j < a.mean.length; j++) {
    maxMeanZ = Math.max(
      maxMeanZ,
      Math.abs(a.mean[j]! - b.mean[j]!) / Math.hypot(a.meanSe[j]!, b.meanSe[j]!),
    );
    maxSdZ = Math.max(maxSdZ, Math.abs(a.sd[j]! - b.sd[j]!) / Math.hypot(a.sdSe[j]!, b.sdSe[j]!));
  }
  return { maxMeanZ, maxSdZ, ok: maxMeanZ < Z_OK && maxSdZ < Z_OK };
}

/** Systematic resampling: n indices by cumulative weight (from log-weights). */
export function resampleIndices(logW: Float64Array, n: number, rng: Rng): Int32Array {
  let m = Number.NEGATIVE_INFINITY;
  for (const l of logW) if (l > m) m = l;
  const w = Float64Array.from(logW, (l) => (Number.isFinite(l) ? Math.exp(l - m) : 0));
  let total = 0;
  for (const x of w) total += x;
  const out = new Int32Array(n);
  const u = rng.uniform();
  let i = 0;
  let cum = w[0]! / total;
  for (let s = 0; s < n; s++) {
    const point = (u + s) / n;
    while (point >= cum && i < w.length - 1) {
      i++;
      cum += w[i]! / total;
    }
    out[s] = i;
  }
  // Systematic resampling keeps the draws' order; shuffle so the rows are exchangeable.
  for (let s = n - 1; s > 0; s--) {
    const j = rng.int(s + 1);
    const t = out[s]!;
    out[s] = out[j]!;
    out[j] = t;
  }
  return out;
}

function gather(theta: Float64Array, idx: Int32Array, d: number): Float64Array {
  const out = new Float64Array(idx.length * d);
  for (let s = 0; s < idx.length; s++) out.set(theta.subarray(idx[s]! * d, idx[s]! * d + d), s * d);
  return out;
}

function distinctFraction(samples: Float64Array, d: number): number {
  const n = samples.length / d;
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) seen.add(Array.from(samples.subarray(i * d, (i + 1) * d)).join(","));
  return seen.size / n;
}

// ---- importance sampling from the prior, chunked ----

/**
 * IS from the prior with `nTotal` draws in chunks of 10⁶: keeps the draws whose log-weight is
 * within 30 nats of the running maximum (the rest carry < e⁻³⁰ of the largest weight each, under
 * 10⁻⁶ of the mass all together), then summarises them exactly.
 */
export function priorImportance(
  task: Task,
  xObs: Float64Array,
  nTotal: number,
  rng: Rng,
): MethodReport {
  const t0 = performance.now();
  const d = task.dim;
  const draw = priorSampler(task);
  const chunk = 1_000_000;
  const cut = 30;
  let maxLog = Number.NEGATIVE_INFINITY;
  const chunks: { theta: Float64Array; logW: Float64Array }[] = [];
  const row = new Float64Array(d);
  for (let start = 0; start < nTotal; start += chunk) {
    const m = Math.min(chunk, nTotal - start);
    const th = new Float64Array(m * d);
    const lw = new Float64Array(m);
    let k = 0;
    for (let i = 0; i < m; i++) {
      draw(rng, row);
      const l = task.logLike(xObs, row);
      if (!(l > maxLog - cut)) continue;
      if (l > maxLog) maxLog = l;
      lw[k] = l;
      th.set(row, k * d);
      k++;
    }
    chunks.push(filterKept(th.subarray(0, k * d), lw.subarray(0, k), d, maxLog - cut));
  }
  const all = chunks.map((c) => filterKept(c.theta, c.logW, d, maxLog - cut));
  const kept = {
    theta: concat(
      all.map((c) => c.theta),
      Float64Array,
    ),
    logW: concat(
      all.map((c) => c.logW),
      Float64Array,
    ),
  };
  return weightedReport(
    `IS from the prior (${fmtCount(nTotal)} draws)`,
    kept.theta,
    kept.logW,
    d,
    task,
    {
      nDraws: nTotal,
      note: `${kept.logW.length} draws within e^-${cut} of the largest weight`,
      seconds: (performance.now() - t0) / 1000,
    },
  );
}

/** A draw from the task's prior into `row`, from the seeded generator. */
function priorSampler(task: Task): (rng: Rng, row: Float64Array) => void {
  const d = task.dim;
  const lo = task.prior.lower;
  const hi = task.prior.upper;
  if (lo.every(Number.isFinite) && hi.every(Number.isFinite)) {
    return (rng, row) => {
      for (let j = 0; j < d; j++) row[j] = lo[j]! + (hi[j]! - lo[j]!) * rng.uniform();
    };
  }
  if (task.name !== "bernoulli_glm") throw new Error(`no prior sampler for ${task.name}`);
  const L = cholesky(spdInverse(glmPriorPrecision(), d), d);
  const z = new Float64Array(d);
  return (rng, row) => {
    for (let j = 0; j < d; j++) z[j] = rng.normal();
    for (let j = 0; j < d; j++) {
      let v = 0;
      for (let k = 0; k <= j; k++) v += L[j * d + k]! * z[k]!;
      row[j] = v;
    }
  };
}

function filterKept(theta: Float64Array, logW: Float64Array, d: number, floor: number) {
  let k = 0;
  for (let i = 0; i < logW.length; i++) if (logW[i]! >= floor) k++;
  const t = new Float64Array(k * d);
  const w = new Float64Array(k);
  k = 0;
  for (let i = 0; i < logW.length; i++) {
    if (logW[i]! >= floor) {
      w[k] = logW[i]!;
      t.set(theta.subarray(i * d, (i + 1) * d), k * d);
      k++;
    }
  }
  return { theta: t, logW: w };
}

const fmtCount = (n: number): string => {
  const e = Math.log10(n);
  return Number.isInteger(e) ? `1e${e}` : String(n);
};

// ---- the primary exact samplers ----

/** two_moons: exact draws by inverting the simulator (see the table above). */
function twoMoonsExact(x: Float64Array, n: number, rng: Rng) {
  const { rLoc, rScale, offset } = TWO_MOONS_NOISE;
  const out = new Float64Array(2 * n);
  let tries = 0;
  for (let k = 0; k < n; ) {
    tries++;
    const a = Math.PI * (rng.uniform() - 0.5);
    const r = rLoc + rScale * rng.normal();
    const p0 = r * Math.cos(a) + offset;
    const p1 = r * Math.sin(a);
    const absZ0 = p0 - x[0]!;
    if (absZ0 < 0) continue; // no θ gives this noise: |z0| cannot be negative
    const z0 = rng.uniform() < 0.5 ? absZ0 : -absZ0;
    const z1 = x[1]! - p1;
    const t0 = (z0 - z1) * Math.SQRT1_2;
    const t1 = (z0 + z1) * Math.SQRT1_2;
    if (Math.abs(t0) > 1 || Math.abs(t1) > 1) continue;
    out[2 * k] = t0;
    out[2 * k + 1] = t1;
    k++;
  }
  return { samples: out, note: `acceptance ${(n / tries).toFixed(3)}`, nDraws: tries };
}

/** gaussian_mixture: exact rejection from the untruncated posterior mixture. */
function gaussianMixtureExact(x: Float64Array, n: number, rng: Rng) {
  const { weights, sds } = GM_COMPONENTS;
  const d = x.length;
  const out = new Float64Array(d * n);
  const row = new Float64Array(d);
  let tries = 0;
  for (let k = 0; k < n; ) {
    tries++;
    const s = rng.uniform() < weights[0] ? sds[0] : sds[1];
    let inside = true;
    for (let j = 0; j < d; j++) {
      row[j] = x[j]! + s * rng.normal();
      if (Math.abs(row[j]!) > 10) inside = false;
    }
    if (!inside) continue;
    out.set(row, k * d);
    k++;
  }
  return { samples: out, note: `acceptance ${(n / tries).toFixed(3)}`, nDraws: tries };
}

/** A draw of N(mu, sd²) truncated to [lo, hi] by the inverse CDF (reflected into the lower tail). */
export function truncNormal(mu: number, sd: number, lo: number, hi: number, u: number): number {
  let a = (lo - mu) / sd;
  let b = (hi - mu) / sd;
  // Work on the side where Φ keeps its digits: reflect when the interval lies above the mean.
  const flip = a > 0;
  if (flip) [a, b] = [-b, -a];
  const pa = ndtr(a);
  const pb = ndtr(b);
  let z = ndtri(pa + u * (pb - pa));
  z = Math.min(Math.max(z, a), b);
  return mu + sd * (flip ? -z : z);
}

/** gaussian_linear_uniform: exact per-dimension truncated normals. */
function gluExact(x: Float64Array, n: number, rng: Rng) {
  const d = x.length;
  const sd = Math.sqrt(GLU_VAR);
  const out = new Float64Array(d * n);
  for (let k = 0; k < n; k++)
    for (let j = 0; j < d; j++) out[k * d + j] = truncNormal(x[j]!, sd, -1, 1, rng.uniform());
  return { samples: out, note: "independent draws", nDraws: n };
}

/** gaussian_linear_uniform check: rejection from N(x, 0.1 I) restricted to the box. */
function gluRejection(x: Float64Array, n: number, rng: Rng) {
  const d = x.length;
  const sd = Math.sqrt(GLU_VAR);
  const out = new Float64Array(d * n);
  const row = new Float64Array(d);
  let tries = 0;
  for (let k = 0; k < n; ) {
    tries++;
    let inside = true;
    for (let j = 0; j < d && inside; j++) {
      row[j] = x[j]! + sd * rng.normal();
      if (Math.abs(row[j]!) > 1) inside = false;
    }
    if (!inside) continue;
    out.set(row, k * d);
    k++;
  }
  return { samples: out, note: `acceptance ${(n / tries).toFixed(4)}`, nDraws: tries };
}

/**
 * SLCP by collapsed importance sampling. Given η = (θ2, θ3, θ4) the likelihood is Gaussian in
 * m = (θ0, θ1): Π_j N(x_j; m, S) = N(m; x̄, S/4) · (2π)⁻³ |S|^(−3/2) / 4 · exp(−½ Σ_j (x_j − x̄)ᵀ
 * S⁻¹ (x_j − x̄)). A proposal q(η) · N(m; x̄, S/4) therefore has weights that are a function of η
 * alone (times 1[m in the prior box]): importance sampling in 3 dimensions instead of 5. The
 * likelihood reads θ2 and θ3 only squared, so η is sampled folded (θ2, θ3 ≥ 0).
 *
 * Stage 1 draws η uniformly; stage 2 draws from 0.1 · uniform + 0.9 · Student-t(ν = 5) fitted to
 * stage 1's weighted moments (covariance inflated 1.5²) and is the estimate: an exact mixture
 * density, the uniform part bounding the weights. The returned draws resample η, redraw m from
 * N(x̄, S/4) truncated to the box (rejection), and flip the signs of θ2 and θ3 at random (the
 * posterior is invariant under both flips).
 */
function slcpCollapsed(x: Float64Array, nOut: number, rng: Rng, task: Task, effort = 1) {
  const t0 = performance.now();
  const n1 = Math.round(400_000 * effort);
  const n2 = Math.round(500_000 * effort);
  let xb0 = 0;
  let xb1 = 0;
  for (let j = 0; j < 4; j++) {
    xb0 += x[2 * j]! / 4;
    xb1 += x[2 * j + 1]! / 4;
  }
  // Scatter matrix of the four points around their mean.
  let c00 = 0;
  let c01 = 0;
  let c11 = 0;
  for (let j = 0; j < 4; j++) {
    const a = x[2 * j]! - xb0;
    const b = x[2 * j + 1]! - xb1;
    c00 += a * a;
    c01 += a * b;
    c11 += b * b;
  }
  const th = new Float64Array(5);
  /** Fills th[0], th[1] from N(x̄, S/4) and returns the η-weight log g(η) + log 1[m ∈ box]. */
  const weigh = (): number => {
    const [A, B, C] = slcpCov(th);
    const det = A * C - B * B;
    const l00 = Math.sqrt(A / 4);
    const l10 = B / 4 / l00;
    const l11 = Math.sqrt(Math.max(C / 4 - l10 * l10, 0));
    const z0 = rng.normal();
    const z1 = rng.normal();
    th[0] = xb0 + l00 * z0;
    th[1] = xb1 + l10 * z0 + l11 * z1;
    if (Math.abs(th[0]) > 3 || Math.abs(th[1]) > 3 || !(det > 0)) return Number.NEGATIVE_INFINITY;
    // tr(S⁻¹ · scatter), S⁻¹ = [[C, −B], [−B, A]] / det.
    return -0.5 * ((C * c00 - 2 * B * c01 + A * c11) / det) - 1.5 * Math.log(det);
  };
  const inFold = (e: ArrayLike<number>) =>
    e[0]! >= 0 && e[0]! <= 3 && e[1]! >= 0 && e[1]! <= 3 && Math.abs(e[2]!) <= 3;
  const foldVolume = 3 * 3 * 6;

  // Stage 1: uniform over the folded box.
  const eta1 = new Float64Array(3 * n1);
  const lw1 = new Float64Array(n1);
  for (let i = 0; i < n1; i++) {
    th[2] = 3 * rng.uniform();
    th[3] = 3 * rng.uniform();
    th[4] = -3 + 6 * rng.uniform();
    lw1[i] = weigh();
    eta1.set(th.subarray(2), 3 * i);
  }
  const stage1Ess = kishEss(lw1);
  const nu = 5;
  const p = 3;
  /** The defensive mixture 0.1 · uniform + 0.9 · t_ν(μ, 1.5² Σ) fitted to weighted draws. */
  const fitMixture = (etaFit: Float64Array, lwFit: Float64Array) => {
    const mu = weightedMean(etaFit, lwFit, 3);
    const cov = weightedCov(etaFit, lwFit, 3, mu).map((v) => v * 1.5 * 1.5);
    const L = cholesky(Float64Array.from(cov), 3);
    const logDetL = Math.log(L[0]!) + Math.log(L[4]!) + Math.log(L[8]!);
    const tNorm = lgammaHalf(nu + p) - lgammaHalf(nu) - (p / 2) * Math.log(nu * Math.PI) - logDetL;
    const logDensity = (e: Float64Array): number => {
      // Student-t density through L⁻¹(e − μ).
      const d0 = (e[0]! - mu[0]!) / L[0]!;
      const d1 = (e[1]! - mu[1]! - L[3]! * d0) / L[4]!;
      const d2 = (e[2]! - mu[2]! - L[6]! * d0 - L[7]! * d1) / L[8]!;
      const logT = tNorm - ((nu + p) / 2) * Math.log1p((d0 * d0 + d1 * d1 + d2 * d2) / nu);
      const logU = inFold(e) ? Math.log(0.1 / foldVolume) : Number.NEGATIVE_INFINITY;
      const a = Math.log(0.9) + logT;
      const m = Math.max(a, logU);
      return m + Math.log(Math.exp(a - m) + Math.exp(logU - m));
    };
    const draw = (e: Float64Array) => {
      if (rng.uniform() < 0.1) {
        e[0] = 3 * rng.uniform();
        e[1] = 3 * rng.uniform();
        e[2] = -3 + 6 * rng.uniform();
        return;
      }
      const z0 = rng.normal();
      const z1 = rng.normal();
      const z2 = rng.normal();
      let chi = 0;
      for (let k = 0; k < nu; k++) chi += rng.normal() ** 2;
      const sc = Math.sqrt(nu / chi);
      e[0] = mu[0]! + sc * L[0]! * z0;
      e[1] = mu[1]! + sc * (L[3]! * z0 + L[4]! * z1);
      e[2] = mu[2]! + sc * (L[6]! * z0 + L[7]! * z1 + L[8]! * z2);
    };
    return { logDensity, draw };
  };
  const e = new Float64Array(3);
  const drawFrom = (mix: ReturnType<typeof fitMixture>, m: number) => {
    const eta = new Float64Array(3 * m);
    const full = new Float64Array(5 * m);
    const logW = new Float64Array(m);
    for (let i = 0; i < m; i++) {
      mix.draw(e);
      th[2] = e[0]!;
      th[3] = e[1]!;
      th[4] = e[2]!;
      logW[i] = inFold(e) ? weigh() - mix.logDensity(e) : Number.NEGATIVE_INFINITY;
      eta.set(e, 3 * i);
      full.set(th, 5 * i);
    }
    return { eta, full, logW };
  };
  // Stage 2 refits the mixture on better-spread weights; stage 3 is the estimate, topped up in
  // chunks until its ESS reaches 5 × nOut (at most 3·10⁶ draws).
  const s2 = drawFrom(fitMixture(eta1, lw1), n2);
  const stage2Ess = kishEss(s2.logW);
  const mix3 = fitMixture(s2.eta, s2.logW);
  const parts: ReturnType<typeof drawFrom>[] = [];
  let n3 = 0;
  let ess3 = 0;
  while (n3 < 6 * n2 && ess3 < 5 * nOut) {
    parts.push(drawFrom(mix3, n2));
    n3 += n2;
    ess3 = kishEss(
      concat(
        parts.map((q) => q.logW),
        Float64Array,
      ),
    );
  }
  const eta = concat(
    parts.map((q) => q.eta),
    Float64Array,
  );
  const full = concat(
    parts.map((q) => q.full),
    Float64Array,
  );
  const logW = concat(
    parts.map((q) => q.logW),
    Float64Array,
  );
  const report = weightedReport(
    "collapsed IS over (θ2, θ3, θ4), (θ0, θ1) | rest exact",
    full,
    logW,
    5,
    task,
    { nDraws: n1 + n2 + n3, seconds: (performance.now() - t0) / 1000 },
  );
  const idx = resampleIndices(logW, nOut, rng);
  const distinctEta = new Set(idx).size / nOut;
  const out = new Float64Array(5 * nOut);
  for (let s = 0; s < nOut; s++) {
    th.set(eta.subarray(3 * idx[s]!, 3 * idx[s]! + 3), 2);
    while (weigh() === Number.NEGATIVE_INFINITY) {} // redraw m until inside the box
    if (rng.uniform() < 0.5) th[2] = -th[2]!;
    if (rng.uniform() < 0.5) th[3] = -th[3]!;
    out.set(th, 5 * s);
  }
  // The folded draws' moments say nothing about θ2, θ3's signs: report the symmetrised output's.
  const sym = weightedReport(report.name, out, undefined, 5, task, { nDraws: 0, seconds: 0 });
  return {
    samples: out,
    report: {
      ...report,
      mean: report.mean.map((m, j) => (j === 2 || j === 3 ? sym.mean[j]! : m)),
      sd: report.sd.map((v, j) => (j === 2 || j === 3 ? sym.sd[j]! : v)),
      meanSe: report.meanSe.map((v, j) => (j === 2 || j === 3 ? sym.meanSe[j]! : v)),
      sdSe: report.sdSe.map((v, j) => (j === 2 || j === 3 ? sym.sdSe[j]! : v)),
      modeWeights: sym.modeWeights!,
      note: `ESS ${stage1Ess.toFixed(0)} of ${n1} uniform, ${stage2Ess.toFixed(0)} of ${n2} from the first fit, ${report.ess.toFixed(0)} of ${n3} from the refit (the estimate; efficiency ${(report.ess / n3).toFixed(2)}); distinct η among the draws ${distinctEta.toFixed(3)}`,
    },
  };
}

/** Kish's effective sample size of log-weights. */
export function kishEss(logW: Float64Array): number {
  let m = Number.NEGATIVE_INFINITY;
  for (const l of logW) if (l > m) m = l;
  let s = 0;
  let s2 = 0;
  for (const l of logW) {
    if (!Number.isFinite(l)) continue;
    const w = Math.exp(l - m);
    s += w;
    s2 += w * w;
  }
  return (s * s) / s2;
}

function weightedMean(theta: Float64Array, logW: Float64Array, d: number): number[] {
  let m = Number.NEGATIVE_INFINITY;
  for (const l of logW) if (l > m) m = l;
  const mean = new Array(d).fill(0);
  let total = 0;
  for (let i = 0; i < logW.length; i++) {
    if (!Number.isFinite(logW[i]!)) continue;
    const w = Math.exp(logW[i]! - m);
    total += w;
    for (let j = 0; j < d; j++) mean[j] += w * theta[i * d + j]!;
  }
  return mean.map((v) => v / total);
}

/** log Γ(k/2) for a positive integer k. */
function lgammaHalf(k: number): number {
  // Γ(1/2) = √π, Γ(1) = 1, Γ(z + 1) = z Γ(z).
  let z = k % 2 === 0 ? 1 : 0.5;
  let acc = k % 2 === 0 ? 0 : 0.5 * Math.log(Math.PI);
  while (z < k / 2) {
    acc += Math.log(z);
    z += 1;
  }
  return acc;
}

/** Weighted covariance (d × d, row-major) from log-weights. */
function weightedCov(theta: Float64Array, logW: Float64Array, d: number, mean: number[]): number[] {
  let m = Number.NEGATIVE_INFINITY;
  for (const l of logW) if (l > m) m = l;
  const cov = new Array(d * d).fill(0);
  let total = 0;
  for (let i = 0; i < logW.length; i++) {
    if (!Number.isFinite(logW[i]!)) continue;
    const w = Math.exp(logW[i]! - m);
    total += w;
    for (let a = 0; a < d; a++)
      for (let b = 0; b < d; b++)
        cov[a * d + b] += w * (theta[i * d + a]! - mean[a]!) * (theta[i * d + b]! - mean[b]!);
  }
  return cov.map((v) => v / total);
}

// ---- Bernoulli GLM ----

interface GlmPosterior {
  X: Float64Array;
  P: Float64Array; // prior precision
  s: Float64Array;
  logPost(theta: Float64Array): number;
}

function glmPosterior(x: Float64Array): GlmPosterior {
  const X = glmDesign();
  const P = glmPriorPrecision();
  const d = 10;
  return {
    X,
    P,
    s: x,
    logPost(theta) {
      let lp = 0;
      for (let i = 0; i < d; i++) {
        lp += theta[i]! * x[i]!;
        let pi = 0;
        for (let j = 0; j < d; j++) pi += P[i * d + j]! * theta[j]!;
        lp -= 0.5 * theta[i]! * pi;
      }
      for (let t = 0; t < 100; t++) {
        let psi = 0;
        for (let i = 0; i < d; i++) psi += X[t * d + i]! * theta[i]!;
        lp -= softplus(psi);
      }
      return lp;
    },
  };
}

/** Newton's method to the GLM posterior's mode; the Hessian there is the Laplace precision. */
export function glmLaplace(x: Float64Array): { mode: Float64Array; cov: Float64Array } {
  const { X, P } = glmPosterior(x);
  const d = 10;
  const theta = new Float64Array(d);
  let H = new Float64Array(d * d);
  for (let iter = 0; iter < 100; iter++) {
    // gradient s − Xᵀσ(Xθ) − Pθ; negative Hessian XᵀWX + P
    const g = new Float64Array(d);
    H = Float64Array.from(P);
    for (let i = 0; i < d; i++) {
      g[i] = x[i]!;
      for (let j = 0; j < d; j++) g[i]! -= P[i * d + j]! * theta[j]!;
    }
    for (let t = 0; t < 100; t++) {
      let psi = 0;
      for (let i = 0; i < d; i++) psi += X[t * d + i]! * theta[i]!;
      const mu = 1 / (1 + Math.exp(-psi));
      const w = mu * (1 - mu);
      for (let i = 0; i < d; i++) {
        g[i]! -= X[t * d + i]! * mu;
        for (let j = 0; j < d; j++) H[i * d + j]! += w * X[t * d + i]! * X[t * d + j]!;
      }
    }
    const step = spdSolve(H, g, d);
    let norm = 0;
    for (let i = 0; i < d; i++) {
      theta[i]! += step[i]!;
      norm += step[i]! * step[i]!;
    }
    if (Math.sqrt(norm) < 1e-12) break;
  }
  return { mode: theta, cov: spdInverse(H, d) };
}

function spdSolve(A: Float64Array, b: Float64Array, d: number): Float64Array {
  const L = cholesky(A, d);
  const y = new Float64Array(d);
  for (let i = 0; i < d; i++) {
    let s = b[i]!;
    for (let k = 0; k < i; k++) s -= L[i * d + k]! * y[k]!;
    y[i] = s / L[i * d + i]!;
  }
  const out = new Float64Array(d);
  for (let i = d - 1; i >= 0; i--) {
    let s = y[i]!;
    for (let k = i + 1; k < d; k++) s -= L[k * d + i]! * out[k]!;
    out[i] = s / L[i * d + i]!;
  }
  return out;
}

/** GLM by IS from a multivariate Student-t around the Laplace approximation. */
function glmStudentIs(x: Float64Array, nDraws: number, nOut: number, rng: Rng, task: Task) {
  const t0 = performance.now();
  const d = 10;
  const nu = 7;
  const post = glmPosterior(x);
  const { mode, cov } = glmLaplace(x);
  const L = cholesky(cov, d);
  const theta = new Float64Array(d * nDraws);
  const logW = new Float64Array(nDraws);
  const z = new Float64Array(d);
  const row = new Float64Array(d);
  for (let i = 0; i < nDraws; i++) {
    let zz = 0;
    for (let j = 0; j < d; j++) {
      z[j] = rng.normal();
      zz += z[j]! * z[j]!;
    }
    // χ²_ν by a sum of ν squared normals (ν is a small integer).
    let chi = 0;
    for (let k = 0; k < nu; k++) chi += rng.normal() ** 2;
    const scale = Math.sqrt(nu / chi);
    for (let j = 0; j < d; j++) {
      let v = mode[j]!;
      for (let k = 0; k <= j; k++) v += L[j * d + k]! * z[k]! * scale;
      row[j] = v;
    }
    // log q up to a constant: −(ν + d)/2 · log(1 + |L⁻¹(θ − mode)|²/ν), |L⁻¹(θ − mode)|² = zz·scale².
    const logQ = (-(nu + d) / 2) * Math.log1p((zz * scale * scale) / nu);
    logW[i] = post.logPost(row) - logQ;
    theta.set(row, i * d);
  }
  const report = weightedReport(
    `IS from Student-t(ν=${nu}) at the Laplace fit`,
    theta,
    logW,
    d,
    task,
    {
      nDraws,
      seconds: (performance.now() - t0) / 1000,
    },
  );
  const idx = resampleIndices(logW, nOut, rng);
  return {
    samples: gather(theta, idx, d),
    report: {
      ...report,
      note: `ESS ${report.ess.toFixed(0)} of ${fmtCount(nDraws)} (efficiency ${(report.ess / nDraws).toFixed(2)})`,
    },
  };
}

/**
 * Elliptical slice sampling (Murray, Adams & MacKay 2010) for the GLM: the prior N(0, P⁻¹) is the
 * Gaussian factor, the likelihood the rest. Exact MCMC with no tuning and no use of the Laplace
 * fit; started at the prior mean, the first 2,000 steps (10% of short chains) dropped.
 */
function glmEllipticalSlice(x: Float64Array, nSteps: number, rng: Rng, task: Task): MethodReport {
  const t0 = performance.now();
  const d = 10;
  const post = glmPosterior(x);
  const Lp = cholesky(spdInverse(post.P, d), d);
  const X = post.X;
  const logLik = (th: Float64Array) => {
    let ll = 0;
    for (let i = 0; i < d; i++) ll += th[i]! * x[i]!;
    for (let t = 0; t < 100; t++) {
      let psi = 0;
      for (let i = 0; i < d; i++) psi += X[t * d + i]! * th[i]!;
      ll -= softplus(psi);
    }
    return ll;
  };
  const burn = Math.min(2000, Math.round(nSteps / 10));
  let f = new Float64Array(d);
  let ll = logLik(f);
  const nu = new Float64Array(d);
  const prop = new Float64Array(d);
  const chain = new Float64Array(d * nSteps);
  let evals = 0;
  for (let step = 0; step < burn + nSteps; step++) {
    const zs = Array.from({ length: d }, () => rng.normal());
    for (let j = 0; j < d; j++) {
      let v = 0;
      for (let k = 0; k <= j; k++) v += Lp[j * d + k]! * zs[k]!;
      nu[j] = v;
    }
    const logY = ll + Math.log(rng.uniformOpen());
    let angle = 2 * Math.PI * rng.uniform();
    let lo = angle - 2 * Math.PI;
    let hi = angle;
    for (;;) {
      const c = Math.cos(angle);
      const s = Math.sin(angle);
      for (let j = 0; j < d; j++) prop[j] = f[j]! * c + nu[j]! * s;
      const lp = logLik(prop);
      evals++;
      if (lp > logY) {
        f = Float64Array.from(prop);
        ll = lp;
        break;
      }
      if (angle < 0) lo = angle;
      else hi = angle;
      angle = lo + (hi - lo) * rng.uniform();
    }
    if (step >= burn) chain.set(f, (step - burn) * d);
  }
  return chainReport("elliptical slice sampling", chain, d, task, {
    nDraws: nSteps,
    note: `${nSteps} steps after ${burn} burn-in, ${(evals / (burn + nSteps)).toFixed(1)} likelihood calls per step`,
    seconds: (performance.now() - t0) / 1000,
  });
}

// ---- the reference per task ----

const DEFAULT_PRIOR_IS: Record<string, number> = {
  two_moons: 1e7,
  slcp: 1e7,
  gaussian_linear_uniform: 1e6,
  gaussian_mixture: 1e7,
  bernoulli_glm: 1e5,
};

/** Computes the reference posterior of a task at observation k (exact; a few seconds). */
export function computeReference(
  taskName: string,
  obs: number,
  options: ReferenceOptions = {},
): Reference {
  const t0 = performance.now();
  const task = getTask(taskName);
  const d = task.dim;
  const n = options.n ?? 10_000;
  const seed = options.seed ?? 0;
  const effort = options.effort ?? 1;
  const streamOf = (k: number) => TASK_NAMES.indexOf(task.name) * 16 + k;
  const rngs = [0, 1, 2].map((k) => new Rng(seed * 1000 + obs, streamOf(k)));
  const x = task.observation(obs).x;
  const timed = <T>(fn: () => T): [T, number] => {
    const s = performance.now();
    const r = fn();
    return [r, (performance.now() - s) / 1000];
  };
  const iid = (
    name: string,
    r: { samples: Float64Array; note: string; nDraws: number },
    sec: number,
  ) =>
    weightedReport(name, r.samples, undefined, d, task, {
      nDraws: r.nDraws,
      note: r.note,
      seconds: sec,
    });

  let samples: Float64Array;
  let primary: MethodReport;
  let check: MethodReport;
  const priorIs = priorImportance(
    task,
    x,
    options.nPriorIs ?? Math.round(DEFAULT_PRIOR_IS[task.name]! * effort),
    rngs[2]!,
  );
  switch (task.name) {
    case "two_moons": {
      const [r, sec] = timed(() => twoMoonsExact(x, n, rngs[0]!));
      samples = r.samples;
      primary = iid("exact inversion of the simulator + rejection", r, sec);
      check = priorIs;
      break;
    }
    case "gaussian_mixture": {
      const [r, sec] = timed(() => gaussianMixtureExact(x, n, rngs[0]!));
      samples = r.samples;
      primary = iid("exact rejection from the posterior mixture", r, sec);
      check = priorIs;
      break;
    }
    case "gaussian_linear_uniform": {
      const [r, sec] = timed(() => gluExact(x, n, rngs[0]!));
      samples = r.samples;
      primary = iid("exact truncated normals (inverse CDF)", r, sec);
      const [c, csec] = timed(() => gluRejection(x, n, rngs[1]!));
      check = iid("rejection from N(x, 0.1 I)", c, csec);
      break;
    }
    case "slcp": {
      const r = slcpCollapsed(x, n, rngs[0]!, task, effort);
      samples = r.samples;
      primary = r.report;
      check = priorIs;
      break;
    }
    case "bernoulli_glm": {
      const r = glmStudentIs(x, Math.round(200_000 * effort), n, rngs[0]!, task);
      samples = r.samples;
      primary = r.report;
      check = glmEllipticalSlice(x, Math.round(40_000 * effort), rngs[1]!, task);
      break;
    }
    default:
      throw new Error(`no reference method for ${task.name}`);
  }
  const own = weightedReport("reference draws", samples, undefined, d, task, {
    nDraws: n,
    seconds: 0,
  });
  return {
    task: task.name,
    obs,
    dim: d,
    samples,
    primary,
    check,
    priorIs,
    agreement: agreement(primary, check),
    distinctFraction: distinctFraction(samples, d),
    mean: own.mean,
    sd: own.sd,
    ...(task.modes ? { modeWeights: [...(task.modes.exact ?? own.modeWeights!)] } : {}),
    seconds: (performance.now() - t0) / 1000,
  };
}

// ---- the cache ----

/** Where stored references live. */
export const REFERENCE_DIR = join(dirname(fileURLToPath(import.meta.url)), "references");

const fileOf = (task: string, obs: number, ext: string) =>
  join(REFERENCE_DIR, `${task}-obs${obs}.${ext}`);

/** Writes a reference as NPY (float32 draws) and JSON (everything else). */
export function writeReference(ref: Reference): void {
  mkdirSync(REFERENCE_DIR, { recursive: true });
  const bytes = encodeNpy({
    data: Float32Array.from(ref.samples),
    shape: [ref.samples.length / ref.dim, ref.dim],
  });
  writeFileSync(fileOf(ref.task, ref.obs, "npy"), bytes);
  const { samples: _samples, ...rest } = ref;
  writeFileSync(fileOf(ref.task, ref.obs, "json"), `${formatJson(rest, "")}\n`);
}

/**
 * JSON laid out as the repository's formatter (Biome) lays it out, so stored files pass `biome
 * check`: objects expanded with two-space indents, arrays on one line when the line fits in 100
 * characters, else numbers filling lines and other elements one per line.
 */
export function formatJson(value: unknown, indent: string, prefix = "", suffix = ""): string {
  const inner = `${indent}  `;
  if (Array.isArray(value)) {
    const flat = `[${value.map((v) => JSON.stringify(v)).join(", ")}]`;
    const simple = value.every((v) => v === null || typeof v !== "object");
    if (simple && indent.length + prefix.length + flat.length + suffix.length <= 100) return flat;
    if (value.length === 0) return "[]";
    if (value.every((v) => typeof v === "number")) {
      // Numbers fill lines, as Biome prints them.
      const lines: string[] = [];
      let line = "";
      for (const v of value) {
        const item = JSON.stringify(v);
        const next = line === "" ? item : `${line}, ${item}`;
        if (line !== "" && inner.length + next.length + 1 > 100) {
          lines.push(`${inner}${line},`);
          line = item;
        } else line = next;
      }
      lines.push(`${inner}${line}`);
      return `[\n${lines.join("\n")}\n${indent}]`;
    }
    const items = value.map(
      (v, i) => `${inner}${formatJson(v, inner, "", i < value.length - 1 ? "," : "")}`,
    );
    return `[\n${items.join(",\n")}\n${indent}]`;
  }
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined);
    if (entries.length === 0) return "{}";
    const items = entries.map(([k, v], i) => {
      const key = `${JSON.stringify(k)}: `;
      return `${inner}${key}${formatJson(v, inner, key, i < entries.length - 1 ? "," : "")}`;
    });
    return `{\n${items.join(",\n")}\n${indent}}`;
  }
  return JSON.stringify(value);
}

/** The reference of task × obs: from the cache when stored, else computed (and stored if `write`). */
export function loadReference(
  task: string,
  obs: number,
  options: ReferenceOptions & { write?: boolean } = {},
): Reference {
  const npy = fileOf(task, obs, "npy");
  const json = fileOf(task, obs, "json");
  if (existsSync(npy) && existsSync(json) && options.n === undefined) {
    const arr = decodeNpy(new Uint8Array(readFileSync(npy)), npy);
    const meta = JSON.parse(readFileSync(json, "utf8")) as Omit<Reference, "samples">;
    return { ...meta, samples: Float64Array.from(arr.data), seconds: 0 };
  }
  const ref = computeReference(task, obs, options);
  if (options.write) writeReference(ref);
  return ref;
}

/** One line per method: mean/sd agreement and ESS. */
export function describeReference(ref: Reference): string {
  const f = (r: MethodReport) =>
    `${r.name}: ESS ${r.ess.toFixed(0)}, ${r.seconds.toFixed(2)} s${r.note ? ` (${r.note})` : ""}`;
  return [
    `${ref.task} obs ${ref.obs}: ${ref.samples.length / ref.dim} draws, ${(100 * ref.distinctFraction).toFixed(1)}% distinct, ${ref.seconds.toFixed(1)} s`,
    `  primary  ${f(ref.primary)}`,
    `  check    ${f(ref.check)}`,
    `  prior IS ${f(ref.priorIs)}`,
    `  agreement: max |Δmean|/se ${ref.agreement.maxMeanZ.toFixed(2)}, max |Δsd|/se ${ref.agreement.maxSdZ.toFixed(2)} → ${ref.agreement.ok ? "ok" : "DISAGREE"}`,
    ...(ref.modeWeights
      ? [
          `  mode weights: exact ${ref.modeWeights.map((w) => w.toFixed(3)).join(" ")}; primary ${ref.primary.modeWeights?.map((w) => w.toFixed(3)).join(" ")}; check ${ref.check.modeWeights?.map((w) => w.toFixed(3)).join(" ")}`,
        ]
      : []),
  ].join("\n");
}

// CLI: npx tsx bench/sbibm/reference.ts --tasks all --obs 1,2,3 [--write]
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const arg = (name: string, def: string) => flagValue(process.argv, name, def);
  const tasks = arg("tasks", "all") === "all" ? TASK_NAMES : arg("tasks", "").split(",");
  const obsList = arg("obs", "1").split(",").map(Number);
  const write = process.argv.includes("--write");
  for (const t of tasks) {
    for (const o of obsList) {
      const ref = computeReference(t, o);
      console.log(describeReference(ref));
      if (write) writeReference(ref);
    }
  }
}
