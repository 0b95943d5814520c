/**
 * The five sbibm benchmark tasks (Lueckmann et al. 2021, "Benchmarking Simulation-Based
 * Inference", AISTATS, appendix T), written from the paper's definitions: prior, a simulator that
 * is a pure function of θ and a seed, and the exact log-likelihood of θ (host float64; it never
 * simulates). Observations 1–10 are sbibm's published ones (see observations.ts).
 *
 * - two_moons: θ ∈ U[−1, 1]², x = p + (−|θ0 + θ1|/√2, (θ1 − θ0)/√2), with
 *   p = (r cos a + 0.25, r sin a), a ~ U(−π/2, π/2), r ~ N(0.1, 0.01²).
 * - slcp: θ ∈ U[−3, 3]⁵, x = 4 i.i.d. draws of N(m, S) with m = (θ0, θ1), s1 = θ2², s2 = θ3²,
 *   ρ = tanh θ4, S = [[s1², ρ s1 s2], [ρ s1 s2, s2²]] (+1e−6 on the diagonal, as sbibm).
 * - gaussian_linear_uniform: θ ∈ U[−1, 1]¹⁰, x ~ N(θ, 0.1 I).
 * - gaussian_mixture: θ ∈ U[−10, 10]², x ~ 0.5 N(θ, I) + 0.5 N(θ, 0.01 I).
 * - bernoulli_glm: θ = (β0, β) ~ N(0, B) with precision B⁻¹ = diag(0.5, FᵀF), F = D² + diag(√(i/9))
 *   (D the first-difference matrix), y_t ~ Bernoulli(σ(Xθ)_t) for 100 time steps of a white-noise
 *   stimulus filtered by β (design X: a column of ones and 9 lags of the stimulus), x = Xᵀy: the
 *   spike count and the 9-lag spike-triggered sums, the sufficient statistics.
 */

import type { Prior } from "../../src/inference/priors.js";
import * as priors from "../../src/inference/priors.js";
import {
  BERNOULLI_GLM,
  GAUSSIAN_LINEAR_UNIFORM,
  GAUSSIAN_MIXTURE,
  type PublishedObservation,
  SLCP,
  TWO_MOONS,
} from "./observations.js";
import { Mt19937, Rng } from "./rng.js";

/** The task names, as sbibm spells them. */
export type TaskName =
  | "two_moons"
  | "slcp"
  | "gaussian_linear_uniform"
  | "gaussian_mixture"
  | "bernoulli_glm";

/** One observation of a task: the true θ and the data x simulated from it. */
export interface Observation {
  /** The true parameters (d). */
  readonly theta: Float64Array;
  /** The observed data (dataSize). */
  readonly x: Float64Array;
}

/** A benchmark task: prior, simulator, exact likelihood and the published observations. */
export interface Task {
  /** The sbibm name. */
  readonly name: TaskName;
  /** Number of parameters. */
  readonly dim: number;
  /** Length of the data vector. */
  readonly dataSize: number;
  /** The prior (the library's Prior: float64 densities and keyed draws). */
  readonly prior: Prior;
  /** One simulation at θ, a pure function of θ and the seed. */
  simulator(theta: Float64Array, info: { seed: number }): Float64Array;
  /** log p(xObs | θ) up to a θ-free constant (exact for importance weights); −Infinity off-support. */
  logLike(xObs: ArrayLike<number>, theta: ArrayLike<number>): number;
  /** Observation k = 1..10 (sbibm's published true θ and data). */
  observation(k: number): Observation;
  /**
   * Separated modes of the posterior, where the task has them: the mode a θ row belongs to, and
   * the number of modes. two_moons: the two arms (sign of θ0 + θ1); slcp: the four sign-symmetric
   * modes (signs of θ2 and θ3; the likelihood reads them only squared).
   */
  readonly modes?: {
    /** Number of modes. */
    readonly count: number;
    /** The mode of one row θ (0 .. count − 1). */
    of(theta: ArrayLike<number>): number;
    /** The exact mode weights, where symmetry fixes them. */
    readonly exact?: readonly number[];
  };
}

const LOG_2PI = Math.log(2 * Math.PI);
const SQRT1_2 = Math.SQRT1_2;

function published(name: string, table: readonly PublishedObservation[]) {
  return (k: number): Observation => {
    if (!Number.isInteger(k) || k < 1 || k > table.length)
      throw new Error(`${name}: observation must be an integer in 1..${table.length}, got ${k}`);
    const o = table[k - 1]!;
    return { theta: Float64Array.from(o.theta), x: Float64Array.from(o.x) };
  };
}

const boxPrior = (dim: number, lo: number, hi: number): Prior =>
  priors.independent(Array.from({ length: dim }, () => priors.uniform(lo, hi)));

// ---- two moons ----

/** two_moons' noise: a ~ U(−π/2, π/2), r ~ N(0.1, 0.01²). */
export const TWO_MOONS_NOISE = { rLoc: 0.1, rScale: 0.01, offset: 0.25 } as const;

/** The shift of two_moons' data at θ: (−|z0|, z1), z = θ rotated by −π/4. */
export function twoMoonsShift(theta: ArrayLike<number>): [number, number] {
  const z0 = (theta[0]! + theta[1]!) * SQRT1_2;
  const z1 = (theta[1]! - theta[0]!) * SQRT1_2;
  return [-Math.abs(z0), z1];
}

function twoMoons(): Task {
  const { rLoc, rScale, offset } = TWO_MOONS_NOISE;
  return {
    name: "two_moons",
    dim: 2,
    dataSize: 2,
    prior: boxPrior(2, -1, 1),
    simulator(theta, { seed }) {
      const rng = new Rng(seed);
      const a = Math.PI * (rng.uniform() - 0.5);
      const r = rLoc + rScale * rng.normal();
      const [s0, s1] = twoMoonsShift(theta);
      return Float64Array.of(r * Math.cos(a) + offset + s0, r * Math.sin(a) + s1);
    },
    logLike(x, theta) {
      // p = x − shift(θ) = (r cos a + 0.25, r sin a): in polar coordinates around (0.25, 0) the
      // density is N(r; 0.1, 0.01²) · (1/π) / r on the half plane u > 0 (the Jacobian is r).
      // sbibm's own likelihood leaves out the 1/r; its reference sampler does not.
      const [s0, s1] = twoMoonsShift(theta);
      const u = x[0]! - s0 - offset;
      const v = x[1]! - s1;
      if (!(u > 0)) return Number.NEGATIVE_INFINITY;
      const r = Math.hypot(u, v);
      const z = (r - rLoc) / rScale;
      return -0.5 * z * z - Math.log(rScale) - 0.5 * LOG_2PI - Math.log(Math.PI) - Math.log(r);
    },
    observation: published("two_moons", TWO_MOONS),
    modes: { count: 2, of: (t) => (t[0]! + t[1]! >= 0 ? 1 : 0), exact: [0.5, 0.5] },
  };
}

// ---- SLCP ----

const SLCP_EPS = 1e-6;
const SLCP_DRAWS = 4;

/** SLCP's covariance at θ: [S00, S01, S11]. */
export function slcpCov(theta: ArrayLike<number>): [number, number, number] {
  const s1 = theta[2]! * theta[2]!;
  const s2 = theta[3]! * theta[3]!;
  const rho = Math.tanh(theta[4]!);
  return [s1 * s1 + SLCP_EPS, rho * s1 * s2, s2 * s2 + SLCP_EPS];
}

/** Σ_j log N(x_j; m, S) over SLCP's four 2-D points. */
export function slcpLogLike(x: ArrayLike<number>, theta: ArrayLike<number>): number {
  const [a, b, c] = slcpCov(theta);
  const det = a * c - b * b;
  if (!(det > 0)) return Number.NEGATIVE_INFINITY;
  const m0 = theta[0]!;
  const m1 = theta[1]!;
  let q = 0;
  for (let j = 0; j < SLCP_DRAWS; j++) {
    const d0 = x[2 * j]! - m0;
    const d1 = x[2 * j + 1]! - m1;
    q += (c * d0 * d0 - 2 * b * d0 * d1 + a * d1 * d1) / det;
  }
  return -0.5 * q - 0.5 * SLCP_DRAWS * Math.log(det) - SLCP_DRAWS * LOG_2PI;
}

function slcp(): Task {
  return {
    name: "slcp",
    dim: 5,
    dataSize: 2 * SLCP_DRAWS,
    prior: boxPrior(5, -3, 3),
    simulator(theta, { seed }) {
      const rng = new Rng(seed);
      const [a, b, c] = slcpCov(theta);
      const l00 = Math.sqrt(a);
      const l10 = b / l00;
      const l11 = Math.sqrt(Math.max(c - l10 * l10, 0));
      const out = new Float64Array(2 * SLCP_DRAWS);
      for (let j = 0; j < SLCP_DRAWS; j++) {
        const z0 = rng.normal();
        const z1 = rng.normal();
        out[2 * j] = theta[0]! + l00 * z0;
        out[2 * j + 1] = theta[1]! + l10 * z0 + l11 * z1;
      }
      return out;
    },
    logLike: slcpLogLike,
    observation: published("slcp", SLCP),
    modes: {
      count: 4,
      of: (t) => (t[2]! >= 0 ? 2 : 0) + (t[3]! >= 0 ? 1 : 0),
      exact: [0.25, 0.25, 0.25, 0.25],
    },
  };
}

// ---- Gaussian linear uniform ----

/** The noise variance of gaussian_linear_uniform (sbibm's simulator_scale, a covariance). */
export const GLU_VAR = 0.1;

function gaussianLinearUniform(): Task {
  const dim = 10;
  const sd = Math.sqrt(GLU_VAR);
  return {
    name: "gaussian_linear_uniform",
    dim,
    dataSize: dim,
    prior: boxPrior(dim, -1, 1),
    simulator(theta, { seed }) {
      const rng = new Rng(seed);
      return Float64Array.from({ length: dim }, (_, i) => theta[i]! + sd * rng.normal());
    },
    logLike(x, theta) {
      let q = 0;
      for (let i = 0; i < dim; i++) q += (x[i]! - theta[i]!) ** 2;
      return (-0.5 * q) / GLU_VAR - 0.5 * dim * (LOG_2PI + Math.log(GLU_VAR));
    },
    observation: published("gaussian_linear_uniform", GAUSSIAN_LINEAR_UNIFORM),
  };
}

// ---- Gaussian mixture ----

/** gaussian_mixture's components: weights and standard deviations. */
export const GM_COMPONENTS = { weights: [0.5, 0.5], sds: [1, 0.1] } as const;

function gaussianMixture(): Task {
  const dim = 2;
  const { weights, sds } = GM_COMPONENTS;
  const c0 = Math.log(weights[0]) - dim * Math.log(sds[0]) - 0.5 * dim * LOG_2PI;
  const c1 = Math.log(weights[1]) - dim * Math.log(sds[1]) - 0.5 * dim * LOG_2PI;
  return {
    name: "gaussian_mixture",
    dim,
    dataSize: dim,
    prior: boxPrior(dim, -10, 10),
    simulator(theta, { seed }) {
      const rng = new Rng(seed);
      const s = rng.uniform() < weights[0] ? sds[0] : sds[1];
      return Float64Array.from({ length: dim }, (_, i) => theta[i]! + s * rng.normal());
    },
    logLike(x, theta) {
      let q = 0;
      for (let i = 0; i < dim; i++) q += (x[i]! - theta[i]!) ** 2;
      // log Σ_k w_k N(x; θ, s_k² I), by log-sum-exp over the two components.
      const l0 = c0 - (0.5 * q) / (sds[0] * sds[0]);
      const l1 = c1 - (0.5 * q) / (sds[1] * sds[1]);
      const m = Math.max(l0, l1);
      return m + Math.log(Math.exp(l0 - m) + Math.exp(l1 - m));
    },
    observation: published("gaussian_mixture", GAUSSIAN_MIXTURE),
  };
}

// ---- Bernoulli GLM ----

const GLM_T = 100;
const GLM_DIM = 10;

/**
 * The GLM's stimulus: 100 float32 standard normals from NumPy's RandomState(42).randn(100), the
 * seed and generator sbibm's task uses (bernoulli_glm/task.py, `stimulus["seed"] = 42`), rebuilt
 * with MT19937 and NumPy's legacy polar method. It reproduces sbibm's published observations
 * exactly: observation 1's raw spike train (observation_raw.csv) gives Xᵀy equal to
 * observation.csv to float32 precision (checked in test/bench-sbibm).
 */
export function glmStimulus(): Float64Array {
  const mt = new Mt19937(42);
  return Float64Array.from({ length: GLM_T }, () => Math.fround(mt.legacyGauss()));
}

/** The design matrix X (100 × 10, row-major): ones, then the stimulus at lags 0..8. */
export function glmDesign(): Float64Array {
  const s = glmStimulus();
  const X = new Float64Array(GLM_T * GLM_DIM);
  for (let t = 0; t < GLM_T; t++) {
    X[t * GLM_DIM] = 1;
    for (let j = 0; j < GLM_DIM - 1; j++) X[t * GLM_DIM + j + 1] = t >= j ? s[t - j]! : 0;
  }
  return X;
}

/** The GLM prior's precision matrix B⁻¹ (10 × 10, row-major): diag(0.5, FᵀF). */
export function glmPriorPrecision(): Float64Array {
  const M = GLM_DIM - 1;
  // D: ones on the diagonal, −1 below it; F = D·D + diag(√(i/M)).
  const D = new Float64Array(M * M);
  for (let i = 0; i < M; i++) {
    D[i * M + i] = 1;
    if (i > 0) D[i * M + i - 1] = -1;
  }
  const F = matmul(D, D, M, M, M);
  for (let i = 0; i < M; i++) F[i * M + i]! += Math.sqrt(i / M);
  const P = new Float64Array(GLM_DIM * GLM_DIM);
  P[0] = 0.5;
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < M; j++) {
      let s = 0;
      for (let k = 0; k < M; k++) s += F[k * M + i]! * F[k * M + j]!;
      P[(i + 1) * GLM_DIM + j + 1] = s;
    }
  }
  return P;
}

/** a (n×k) · b (k×m), row-major. */
export function matmul(a: Float64Array, b: Float64Array, n: number, k: number, m: number) {
  const out = new Float64Array(n * m);
  for (let i = 0; i < n; i++)
    for (let l = 0; l < k; l++) {
      const v = a[i * k + l]!;
      if (v === 0) continue;
      for (let j = 0; j < m; j++) out[i * m + j]! += v * b[l * m + j]!;
    }
  return out;
}

/** Cholesky factor L (lower, row-major) of a symmetric positive-definite d×d matrix. */
export function cholesky(a: Float64Array, d: number): Float64Array {
  const L = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i * d + j]!;
      for (let k = 0; k < j; k++) s -= L[i * d + k]! * L[j * d + k]!;
      if (i === j) {
        if (!(s > 0)) throw new Error("cholesky: matrix is not positive definite");
        L[i * d + i] = Math.sqrt(s);
      } else L[i * d + j] = s / L[j * d + j]!;
    }
  }
  return L;
}

/** The inverse of a symmetric positive-definite d×d matrix (through its Cholesky factor). */
export function spdInverse(a: Float64Array, d: number): Float64Array {
  const L = cholesky(a, d);
  // L⁻¹ by forward substitution, then A⁻¹ = L⁻ᵀ L⁻¹.
  const Li = new Float64Array(d * d);
  for (let c = 0; c < d; c++) {
    for (let i = 0; i < d; i++) {
      let s = i === c ? 1 : 0;
      for (let k = 0; k < i; k++) s -= L[i * d + k]! * Li[k * d + c]!;
      Li[i * d + c] = s / L[i * d + i]!;
    }
  }
  const out = new Float64Array(d * d);
  for (let i = 0; i < d; i++)
    for (let j = 0; j <= i; j++) {
      let s = 0;
      for (let k = i; k < d; k++) s += Li[k * d + i]! * Li[k * d + j]!;
      out[i * d + j] = s;
      out[j * d + i] = s;
    }
  return out;
}

/** log(1 + e^x) without overflow. */
export const softplus = (x: number): number =>
  x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));

/** The GLM's log-likelihood of the sufficient statistics: θᵀs − Σ_t log(1 + exp((Xθ)_t)). */
export function glmLogLike(X: Float64Array, s: ArrayLike<number>, theta: ArrayLike<number>) {
  let ll = 0;
  for (let i = 0; i < GLM_DIM; i++) ll += theta[i]! * s[i]!;
  for (let t = 0; t < GLM_T; t++) {
    let psi = 0;
    for (let i = 0; i < GLM_DIM; i++) psi += X[t * GLM_DIM + i]! * theta[i]!;
    ll -= softplus(psi);
  }
  return ll;
}

function bernoulliGlm(): Task {
  const X = glmDesign();
  const cov = spdInverse(glmPriorPrecision(), GLM_DIM);
  const rows = Array.from({ length: GLM_DIM }, (_, i) =>
    Array.from(cov.subarray(i * GLM_DIM, (i + 1) * GLM_DIM)),
  );
  return {
    name: "bernoulli_glm",
    dim: GLM_DIM,
    dataSize: GLM_DIM,
    prior: priors.multivariateNormal(new Array(GLM_DIM).fill(0), rows),
    simulator(theta, { seed }) {
      const rng = new Rng(seed);
      const s = new Float64Array(GLM_DIM);
      for (let t = 0; t < GLM_T; t++) {
        let psi = 0;
        for (let i = 0; i < GLM_DIM; i++) psi += X[t * GLM_DIM + i]! * theta[i]!;
        if (rng.uniform() < 1 / (1 + Math.exp(-psi)))
          for (let i = 0; i < GLM_DIM; i++) s[i]! += X[t * GLM_DIM + i]!;
      }
      return s;
    },
    // p(s | θ) = N(s) · exp(θᵀs − A(θ)), N(s) the number of spike trains with Xᵀy = s (θ-free).
    logLike: (x, theta) => glmLogLike(X, x, theta),
    observation: published("bernoulli_glm", BERNOULLI_GLM),
  };
}

const builders: Record<TaskName, () => Task> = {
  two_moons: twoMoons,
  slcp,
  gaussian_linear_uniform: gaussianLinearUniform,
  gaussian_mixture: gaussianMixture,
  bernoulli_glm: bernoulliGlm,
};

/** The task names in the paper's order. */
export const TASK_NAMES: readonly TaskName[] = [
  "two_moons",
  "slcp",
  "gaussian_linear_uniform",
  "gaussian_mixture",
  "bernoulli_glm",
];

const cache = new Map<TaskName, Task>();

/** The task of that name (built once). */
export function getTask(name: string): Task {
  if (!(name in builders))
    throw new Error(`unknown task "${name}": one of ${TASK_NAMES.join(", ")}`);
  const n = name as TaskName;
  let t = cache.get(n);
  if (!t) {
    t = builders[n]();
    cache.set(n, t);
  }
  return t;
}
