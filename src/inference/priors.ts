/**
 * Priors for the inference engine: host-side float64 densities and samplers over batches of
 * parameter vectors (row-major n×dim Float64Arrays). Every draw comes from an explicit key, so a
 * run is reproducible; every prior describes itself as a JSON spec, so a saved model records it.
 *
 * One-dimensional distributions are `Univariate` values; `multivariateNormal` is the one prior
 * with correlated dimensions; `independent` multiplies priors into an `Independent`, flattening
 * nested products so a product is always a flat list of parts.
 */
import { fail, failText } from "../errors.js";
import type { Array } from "../trace/array.js";
import { normals, splitKeys, uniforms } from "./host.js";
import { erfc, log1mExp, logNdtr, logNormalPdf, ndtri, ndtriExp } from "./special.js";

/**
 * A prior over parameter vectors, on the host in float64: densities and draws over batches of
 * rows (n × dim, row-major), its support, moments and a JSON description.
 */
export interface Prior {
  /** Number of parameters. */
  readonly dim: number;
  /** One name per dimension: ["θ0", "θ1", ...] unless given. */
  readonly labels: readonly string[];
  /** Lower support bound per dimension (−Infinity when unbounded). */
  readonly lower: Float64Array;
  /** Upper support bound per dimension (+Infinity when unbounded). */
  readonly upper: Float64Array;
  /** log density per row of an n×dim batch; −Infinity outside the support. */
  logProb(theta: Float64Array): Float64Array;
  /** n draws (n×dim, row-major), a pure function of the key. */
  sample(key: Array, n: number): Float64Array;
  /** 1 where the density is positive, 0 elsewhere (NaN rows included), per row. */
  inSupport(theta: Float64Array): Uint8Array;
  /** Mean per dimension. */
  mean(): Float64Array;
  /** Standard deviation per dimension. */
  std(): Float64Array;
  /** A short description, e.g. "uniform(0, 6.283)". */
  toString(): string;
  /** The JSON spec that `fromSpec` reads back (what a saved model records). */
  toJSON(): PriorSpec;
}

/** JSON has no Infinity, so unbounded ends are written as strings. */
export type Bound = number | "Infinity" | "-Infinity";

/** The serialisable description of a prior (`toJSON`), read back by `fromSpec`. */
export type PriorSpec =
  | {
      /** `uniform(lo, hi)`. */
      type: "uniform";
      /** Lower bound. */
      lo: number;
      /** Upper bound. */
      hi: number;
      /** Names of the dimensions (default θ0, ...). */
      labels?: string[];
    }
  | {
      /** `normal(mu, sigma)`. */
      type: "normal";
      /** Mean. */
      mu: number;
      /** Standard deviation. */
      sigma: number;
      /** Names of the dimensions (default θ0, ...). */
      labels?: string[];
    }
  | {
      /** `logUniform(lo, hi)`. */
      type: "logUniform";
      /** Lower bound (> 0). */
      lo: number;
      /** Upper bound. */
      hi: number;
      /** Names of the dimensions (default θ0, ...). */
      labels?: string[];
    }
  | {
      /** `truncatedNormal(mu, sigma, lo, hi)`. */
      type: "truncatedNormal";
      /** Mean of the untruncated normal. */
      mu: number;
      /** Standard deviation of the untruncated normal. */
      sigma: number;
      /** Lower bound ("-Infinity" when unbounded). */
      lo: Bound;
      /** Upper bound ("Infinity" when unbounded). */
      hi: Bound;
      /** Names of the dimensions (default θ0, ...). */
      labels?: string[];
    }
  | {
      /** `empirical(grid, density)`. */
      type: "empirical";
      /** Grid points, ascending. */
      grid: number[];
      /** Density at each grid point (unnormalised). */
      density: number[];
      /** Names of the dimensions (default θ0, ...). */
      labels?: string[];
    }
  | {
      /** `multivariateNormal(mean, cov)`. */
      type: "multivariateNormal";
      /** Mean vector (its length is the prior's dim). */
      mean: number[];
      /** Covariance matrix, one row per dimension (a flat row-major list is read too). */
      cov: number[][];
      /** Names of the dimensions (default θ0, ...). */
      labels?: string[];
    }
  | {
      /** `independent(parts)`. */
      type: "independent";
      /** The factors' specs, in order. */
      parts: PriorSpec[];
      /** Names of the dimensions (default θ0, ...). */
      labels?: string[];
    };

type LeafSpec = Exclude<PriorSpec, { type: "independent" }>;

const defaultLabels = (dim: number, offset = 0): string[] =>
  globalThis.Array.from({ length: dim }, (_, i) => `θ${i + offset}`);

const isDefaultLabels = (labels: readonly string[]): boolean =>
  labels.every((l, i) => l === `θ${i}`);

/** Short numbers for toString: 2π prints as 6.283. */
const fmt = (x: number): string =>
  Number.isFinite(x) ? String(Number(x.toPrecision(4))) : x > 0 ? "inf" : "-inf";

const toBound = (x: number): Bound =>
  x === Number.POSITIVE_INFINITY ? "Infinity" : x === Number.NEGATIVE_INFINITY ? "-Infinity" : x;

function checkBatch(fn: string, theta: Float64Array, dim: number): number {
  if (theta === null || typeof theta !== "object" || typeof theta.length !== "number") {
    fail(fn, "theta", `a Float64Array of n×${dim} values`, theta);
  }
  if (theta.length % dim !== 0)
    fail(fn, "theta.length", `a multiple of dim (${dim})`, theta.length);
  return theta.length / dim;
}

function checkCount(fn: string, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) fail(fn, "n", "a non-negative integer", n);
}

function checkLabels(fn: string, labels: unknown, dim: number): string[] {
  if (!globalThis.Array.isArray(labels)) fail(fn, "labels", `an array of ${dim} strings`, labels);
  if (labels.length !== dim) fail(fn, "labels.length", `${dim} (the prior's dim)`, labels.length);
  const seen = new Set<string>();
  labels.forEach((l, i) => {
    if (typeof l !== "string" || l === "") fail(fn, `labels[${i}]`, "a non-empty string", l);
    if (seen.has(l)) fail(fn, `labels[${i}]`, "a name not used by another dimension", l);
    seen.add(l);
  });
  return [...labels];
}

/** What a one-dimensional distribution supplies; `Univariate` turns it into a Prior. */
interface Distribution {
  readonly kind: string;
  readonly lower: number;
  readonly upper: number;
  logDensity(x: number): number;
  sample(key: Array, n: number): Float64Array;
  readonly mean: number;
  readonly std: number;
  readonly text: string;
  readonly spec: LeafSpec;
}

class Univariate implements Prior {
  readonly dim = 1;
  readonly lower: Float64Array;
  readonly upper: Float64Array;
  constructor(
    readonly dist: Distribution,
    readonly labels: readonly string[] = ["θ0"],
  ) {
    this.lower = Float64Array.of(dist.lower);
    this.upper = Float64Array.of(dist.upper);
  }
  logProb(theta: Float64Array): Float64Array {
    const n = checkBatch(`${this.dist.kind}.logProb`, theta, 1);
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const x = theta[i]!;
      // NaN and points outside the bounds are outside the support.
      out[i] =
        x >= this.dist.lower && x <= this.dist.upper && Number.isFinite(x)
          ? this.dist.logDensity(x)
          : Number.NEGATIVE_INFINITY;
    }
    return out;
  }
  sample(key: Array, n: number): Float64Array {
    checkCount(`${this.dist.kind}.sample`, n);
    const x = this.dist.sample(key, n);
    // Rounding in a transform may step just past a bound; the support is closed.
    for (let i = 0; i < n; i++) x[i] = Math.min(Math.max(x[i]!, this.dist.lower), this.dist.upper);
    return x;
  }
  inSupport(theta: Float64Array): Uint8Array {
    return supportOf(this.logProb(theta));
  }
  mean(): Float64Array {
    return Float64Array.of(this.dist.mean);
  }
  std(): Float64Array {
    return Float64Array.of(this.dist.std);
  }
  toString(): string {
    return this.dist.text;
  }
  /** Node's util.inspect, Deno and REPLs print the prior as its toString. */
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString();
  }
  toJSON(): PriorSpec {
    return isDefaultLabels(this.labels)
      ? { ...this.dist.spec }
      : { ...this.dist.spec, labels: [...this.labels] };
  }
}

const supportOf = (logp: Float64Array): Uint8Array =>
  Uint8Array.from(logp, (l) => (l > Number.NEGATIVE_INFINITY ? 1 : 0));

/** A product of priors over consecutive blocks of dimensions. */
class Independent implements Prior {
  readonly dim: number;
  readonly lower: Float64Array;
  readonly upper: Float64Array;
  constructor(
    readonly parts: readonly Prior[],
    readonly labels: readonly string[],
  ) {
    this.dim = parts.reduce((s, p) => s + p.dim, 0);
    this.lower = Float64Array.from(parts.flatMap((p) => [...p.lower]));
    this.upper = Float64Array.from(parts.flatMap((p) => [...p.upper]));
  }
  /** Columns [offset, offset + width) of each row, as a batch for one part. */
  private block(theta: Float64Array, n: number, offset: number, width: number): Float64Array {
    const out = new Float64Array(n * width);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < width; j++) out[i * width + j] = theta[i * this.dim + offset + j]!;
    }
    return out;
  }
  logProb(theta: Float64Array): Float64Array {
    const n = checkBatch("independent.logProb", theta, this.dim);
    const out = new Float64Array(n);
    let offset = 0;
    for (const part of this.parts) {
      const lp = part.logProb(this.block(theta, n, offset, part.dim));
      for (let i = 0; i < n; i++) out[i] += lp[i]!;
      offset += part.dim;
    }
    return out;
  }
  sample(key: Array, n: number): Float64Array {
    checkCount("independent.sample", n);
    const out = new Float64Array(n * this.dim);
    const keys = splitKeys(key, this.parts.length);
    let offset = 0;
    this.parts.forEach((part, k) => {
      const x = part.sample(keys[k]!, n);
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < part.dim; j++) out[i * this.dim + offset + j] = x[i * part.dim + j]!;
      }
      offset += part.dim;
    });
    return out;
  }
  inSupport(theta: Float64Array): Uint8Array {
    return supportOf(this.logProb(theta));
  }
  mean(): Float64Array {
    return Float64Array.from(this.parts.flatMap((p) => [...p.mean()]));
  }
  std(): Float64Array {
    return Float64Array.from(this.parts.flatMap((p) => [...p.std()]));
  }
  toString(): string {
    let offset = 0;
    const items = this.parts.map((p) => {
      const names = this.labels.slice(offset, offset + p.dim);
      offset += p.dim;
      return `${names.length === 1 ? names[0] : `[${names.join(", ")}]`}: ${p}`;
    });
    return `independent{${items.join(", ")}}`;
  }
  /** Node's util.inspect, Deno and REPLs print the prior as its toString. */
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString();
  }
  toJSON(): PriorSpec {
    // The product's labels are the record; each part's own labels would only repeat them.
    const parts = this.parts.map((p) => {
      const { labels: _, ...spec } = p.toJSON();
      return spec as PriorSpec;
    });
    return { type: "independent", parts, labels: [...this.labels] };
  }
}

/** The same prior under new labels. */
function relabel(prior: Prior, labels: readonly string[]): Prior {
  if (prior instanceof Univariate) return new Univariate(prior.dist, labels);
  if (prior instanceof Independent) return new Independent(prior.parts, labels);
  if (prior instanceof MultivariateNormal) return prior.withLabels(labels);
  return new Independent([prior], labels);
}

// ---- validation of constructor arguments ----

function finite(fn: string, name: string, x: unknown): number {
  if (typeof x !== "number" || !Number.isFinite(x)) fail(fn, name, "a finite number", x);
  return x;
}

function positive(fn: string, name: string, x: unknown): number {
  if (typeof x !== "number" || !Number.isFinite(x) || x <= 0) {
    fail(fn, name, "a finite number greater than 0", x);
  }
  return x;
}

function above(fn: string, name: string, x: unknown, loName: string, lo: number): number {
  if (typeof x !== "number" || Number.isNaN(x) || !(x > lo)) {
    fail(fn, name, `a number greater than ${loName} (${lo})`, x);
  }
  return x;
}

// ---- one-dimensional priors ----

/**
 * Uniform on [lo, hi].
 *
 * @example
 * ```ts
 * const phase = priors.uniform(0, 2 * Math.PI);
 * phase.sample(inference.hostKey(0), 3); // Float64Array of 3 draws
 * ```
 */
export function uniform(lo: number, hi: number): Prior {
  finite("uniform", "lo", lo);
  above("uniform", "hi", hi, "lo", lo);
  finite("uniform", "hi", hi);
  const logWidth = Math.log(hi - lo);
  return new Univariate({
    kind: "uniform",
    lower: lo,
    upper: hi,
    logDensity: () => -logWidth,
    sample: (key, n) => uniforms(key, n).map((u) => lo + (hi - lo) * u),
    mean: (lo + hi) / 2,
    std: (hi - lo) / Math.sqrt(12),
    text: `uniform(${fmt(lo)}, ${fmt(hi)})`,
    spec: { type: "uniform", lo, hi },
  });
}

/**
 * Normal with mean mu and standard deviation sigma.
 *
 * @example
 * ```ts
 * priors.normal(0, 1).logProb(Float64Array.from([0])); // [−0.919]
 * ```
 */
export function normal(mu: number, sigma: number): Prior {
  finite("normal", "mu", mu);
  positive("normal", "sigma", sigma);
  const logSigma = Math.log(sigma);
  return new Univariate({
    kind: "normal",
    lower: Number.NEGATIVE_INFINITY,
    upper: Number.POSITIVE_INFINITY,
    logDensity: (x) => logNormalPdf((x - mu) / sigma) - logSigma,
    sample: (key, n) => normals(key, n).map((z) => mu + sigma * z),
    mean: mu,
    std: sigma,
    text: `normal(${fmt(mu)}, ${fmt(sigma)})`,
    spec: { type: "normal", mu, sigma },
  });
}

/**
 * Density ∝ 1/θ on [lo, hi] (uniform in log θ), lo > 0: the usual prior for scale parameters.
 *
 * @example
 * ```ts
 * const period = priors.logUniform(0.1, 100); // as likely in [0.1, 1] as in [10, 100]
 * ```
 */
export function logUniform(lo: number, hi: number): Prior {
  positive("logUniform", "lo", lo);
  above("logUniform", "hi", hi, "lo", lo);
  finite("logUniform", "hi", hi);
  const logLo = Math.log(lo);
  const span = Math.log(hi) - logLo;
  const logSpan = Math.log(span);
  const mean = (hi - lo) / span;
  const second = (hi * hi - lo * lo) / (2 * span);
  return new Univariate({
    kind: "logUniform",
    lower: lo,
    upper: hi,
    logDensity: (x) => -Math.log(x) - logSpan,
    sample: (key, n) => uniforms(key, n).map((u) => Math.exp(logLo + span * u)),
    mean,
    std: Math.sqrt(Math.max(second - mean * mean, 0)),
    text: `logUniform(${fmt(lo)}, ${fmt(hi)})`,
    spec: { type: "logUniform", lo, hi },
  });
}

/**
 * log(Φ(b) − Φ(a)) for a < b, choosing the form that keeps its digits: both ends in the lower
 * tail, both in the upper tail (by symmetry), or the interval straddling 0.
 */
function logNormalMass(a: number, b: number): number {
  if (b <= 0) return logNdtr(b) + log1mExp(logNdtr(a) - logNdtr(b));
  if (a >= 0) return logNdtr(-a) + log1mExp(logNdtr(-b) - logNdtr(-a));
  return Math.log1p(-(0.5 * erfc(-a / Math.SQRT2) + 0.5 * erfc(b / Math.SQRT2)));
}

/**
 * Exact inverse-CDF draw of a standard normal truncated to [a, b] from u ∈ [0, 1). The CDF is
 * inverted in log space on the tail side, so intervals 8 or 40 σ out still give exact draws.
 */
function truncatedStandardDraw(a: number, b: number, u: number): number {
  if (a >= 0) return -truncatedStandardDraw(-b, -a, 1 - u);
  if (b <= 0) {
    const lb = logNdtr(b);
    const d = logNdtr(a) - lb; // log(Φ(a)/Φ(b)) ≤ 0
    const r = Math.exp(d);
    return ndtriExp(lb + Math.log(r + u * (1 - r)));
  }
  // Straddling 0: invert whichever of p = Φ(x) and 1 − p is the smaller, both computed directly.
  const pa = 0.5 * erfc(-a / Math.SQRT2);
  const qb = 0.5 * erfc(b / Math.SQRT2);
  const z = 1 - pa - qb;
  const p = pa + u * z;
  const q = qb + (1 - u) * z;
  return p <= q ? ndtri(p) : -ndtri(q);
}

/**
 * Normal(mu, sigma) restricted to [lo, hi] (either end may be infinite).
 *
 * @example
 * ```ts
 * const mass = priors.truncatedNormal(1, 0.5, 0, Infinity); // positive, peaked at 1
 * ```
 */
export function truncatedNormal(mu: number, sigma: number, lo: number, hi: number): Prior {
  const fn = "truncatedNormal";
  finite(fn, "mu", mu);
  positive(fn, "sigma", sigma);
  if (typeof lo !== "number" || Number.isNaN(lo) || lo === Number.POSITIVE_INFINITY) {
    fail(fn, "lo", "a number or -Infinity", lo);
  }
  above(fn, "hi", hi, "lo", lo);
  const a = (lo - mu) / sigma;
  const b = (hi - mu) / sigma;
  if (!(b > a)) fail(fn, "hi", `a value more than rounding above lo (${lo}) at sigma ${sigma}`, hi);
  const logZ = logNormalMass(a, b);
  const logNorm = logZ + Math.log(sigma);
  // Moments of the truncated standard normal; φ(a)/Z is taken in log space for far tails.
  const ratio = (t: number): number => (Number.isFinite(t) ? Math.exp(logNormalPdf(t) - logZ) : 0);
  const ra = ratio(a);
  const rb = ratio(b);
  const m = ra - rb;
  const tail = (t: number, r: number): number => (Number.isFinite(t) ? t * r : 0);
  const variance = Math.max(1 + tail(a, ra) - tail(b, rb) - m * m, 0);
  return new Univariate({
    kind: fn,
    lower: lo,
    upper: hi,
    logDensity: (x) => logNormalPdf((x - mu) / sigma) - logNorm,
    sample: (key, n) =>
      uniforms(key, n).map((u) => {
        // u + 2^-54 lies strictly inside (0, 1), so a one-sided tail never draws ±Infinity.
        const z = Math.min(Math.max(truncatedStandardDraw(a, b, u + 2 ** -54), a), b);
        return mu + sigma * z;
      }),
    mean: mu + sigma * m,
    std: sigma * Math.sqrt(variance),
    text: `truncatedNormal(${fmt(mu)}, ${fmt(sigma)}, ${fmt(lo)}, ${fmt(hi)})`,
    spec: { type: fn, mu, sigma, lo: toBound(lo), hi: toBound(hi) },
  });
}

/**
 * A tabulated 1-D density: linear between grid points, zero outside [grid[0], grid[last]],
 * normalised by its exact (trapezoid) area. Sampling inverts the piecewise-quadratic CDF exactly.
 * For a prior known only as a table (a previous posterior, a population histogram).
 *
 * @example
 * ```ts
 * const triangle = priors.empirical([0, 1, 2], [0, 1, 0]);
 * triangle.mean(); // [1]
 * ```
 */
export function empirical(grid: ArrayLike<number>, density: ArrayLike<number>): Prior {
  const fn = "empirical";
  const isList = (v: unknown): v is ArrayLike<number> =>
    v !== null && typeof v === "object" && typeof (v as ArrayLike<number>).length === "number";
  if (!isList(grid) || grid.length < 2) fail(fn, "grid", "an array of at least 2 numbers", grid);
  if (!isList(density)) fail(fn, "density", "an array of numbers", density);
  const m = grid.length;
  if (density.length !== m) {
    fail(fn, "density.length", `${m} (one value per grid point)`, density.length);
  }
  const g = Float64Array.from(grid);
  const f = Float64Array.from(density);
  for (let i = 0; i < m; i++) {
    finite(fn, `grid[${i}]`, grid[i]);
    if (i > 0 && !(g[i]! > g[i - 1]!)) {
      fail(fn, `grid[${i}]`, `a number greater than grid[${i - 1}] (${g[i - 1]})`, g[i]);
    }
    if (typeof density[i] !== "number" || !Number.isFinite(f[i]!) || f[i]! < 0) {
      fail(fn, `density[${i}]`, "a finite number ≥ 0", density[i]);
    }
  }
  // Cumulative area at each grid point, then normalise.
  const cum = new Float64Array(m);
  for (let i = 1; i < m; i++)
    cum[i] = cum[i - 1]! + 0.5 * (f[i - 1]! + f[i]!) * (g[i]! - g[i - 1]!);
  const area = cum[m - 1]!;
  if (!(area > 0) || !Number.isFinite(area)) {
    fail(fn, "density", "values enclosing a positive, finite area", [...f]);
  }
  const fn0 = f.map((v) => v / area);
  const cdf = cum.map((v) => v / area);

  /** Index k of the segment [g[k], g[k+1]] holding x (binary search). */
  const segment = (x: number): number => {
    let lo = 0;
    let hi = m - 2;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (g[mid]! <= x) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };
  const densityAt = (x: number): number => {
    const k = segment(x);
    const t = (x - g[k]!) / (g[k + 1]! - g[k]!);
    return fn0[k]! + t * (fn0[k + 1]! - fn0[k]!);
  };
  const draw = (u: number): number => {
    // First segment whose upper CDF exceeds u: it has positive mass and cdf[k] ≤ u.
    let lo = 0;
    let hi = m - 2;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid + 1]! > u) hi = mid;
      else lo = mid + 1;
    }
    const h = g[lo + 1]! - g[lo]!;
    const f0 = fn0[lo]!;
    const s = (fn0[lo + 1]! - f0) / h;
    const r = Math.max(u - cdf[lo]!, 0);
    // Solve f0·d + s·d²/2 = r in the cancellation-free form d = 2r / (f0 + √(f0² + 2sr)).
    const root = f0 + Math.sqrt(Math.max(f0 * f0 + 2 * s * r, 0));
    const d = r === 0 ? 0 : root > 0 ? (2 * r) / root : h;
    return g[lo]! + Math.min(d, h);
  };
  // Exact moments of the piecewise-linear density, centred on the mean to avoid cancellation.
  let mean = 0;
  for (let i = 0; i + 1 < m; i++) {
    const [x0, x1, h] = [g[i]!, g[i + 1]!, g[i + 1]! - g[i]!];
    mean += (h / 6) * ((2 * x0 + x1) * fn0[i]! + (x0 + 2 * x1) * fn0[i + 1]!);
  }
  let variance = 0;
  for (let i = 0; i + 1 < m; i++) {
    const [x0, x1] = [g[i]! - mean, g[i + 1]! - mean];
    const h = x1 - x0;
    variance +=
      (h / 12) *
      (fn0[i]! * (3 * x0 * x0 + 2 * x0 * x1 + x1 * x1) +
        fn0[i + 1]! * (x0 * x0 + 2 * x0 * x1 + 3 * x1 * x1));
  }
  return new Univariate({
    kind: fn,
    lower: g[0]!,
    upper: g[m - 1]!,
    logDensity: (x) => Math.log(densityAt(x)),
    sample: (key, n) => uniforms(key, n).map(draw),
    mean,
    std: Math.sqrt(Math.max(variance, 0)),
    text: `empirical(${m} points on [${fmt(g[0]!)}, ${fmt(g[m - 1]!)}])`,
    spec: { type: fn, grid: [...g], density: [...f] },
  });
}

// ---- the multivariate normal ----

const LOG_2PI = Math.log(2 * Math.PI);

/** Numbers of a matrix row or vector for toString: [1, 0.5]. */
const fmtList = (xs: ArrayLike<number>): string => `[${globalThis.Array.from(xs, fmt).join(", ")}]`;

/** Normal with a full covariance: log densities through its Cholesky factor L (cov = L Lᵀ). */
class MultivariateNormal implements Prior {
  readonly dim: number;
  readonly lower: Float64Array;
  readonly upper: Float64Array;
  /** Σ log L_ii + d/2 · log 2π: the log normaliser. */
  private readonly logNorm: number;
  constructor(
    readonly mu: Float64Array,
    readonly cov: Float64Array,
    readonly chol: Float64Array,
    readonly labels: readonly string[] = defaultLabels(mu.length),
  ) {
    const d = mu.length;
    this.dim = d;
    this.lower = new Float64Array(d).fill(Number.NEGATIVE_INFINITY);
    this.upper = new Float64Array(d).fill(Number.POSITIVE_INFINITY);
    let logDet = 0;
    for (let i = 0; i < d; i++) logDet += Math.log(chol[i * d + i]!);
    this.logNorm = logDet + 0.5 * d * LOG_2PI;
  }
  withLabels(labels: readonly string[]): MultivariateNormal {
    return new MultivariateNormal(this.mu, this.cov, this.chol, labels);
  }
  logProb(theta: Float64Array): Float64Array {
    const d = this.dim;
    const n = checkBatch("multivariateNormal.logProb", theta, d);
    const out = new Float64Array(n);
    const z = new Float64Array(d);
    const L = this.chol;
    for (let i = 0; i < n; i++) {
      // Forward substitution L z = θ − μ; then log p = −|z|²/2 − log|L| − d/2 log 2π.
      let q = 0;
      let finiteRow = true;
      for (let j = 0; j < d; j++) {
        const x = theta[i * d + j]!;
        if (!Number.isFinite(x)) finiteRow = false;
        let r = x - this.mu[j]!;
        for (let k = 0; k < j; k++) r -= L[j * d + k]! * z[k]!;
        z[j] = r / L[j * d + j]!;
        q += z[j]! * z[j]!;
      }
      // NaN and infinite coordinates are outside the support.
      out[i] = finiteRow ? -0.5 * q - this.logNorm : Number.NEGATIVE_INFINITY;
    }
    return out;
  }
  sample(key: Array, n: number): Float64Array {
    checkCount("multivariateNormal.sample", n);
    const d = this.dim;
    const z = normals(key, n * d);
    const out = new Float64Array(n * d);
    const L = this.chol;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < d; j++) {
        let x = this.mu[j]!;
        for (let k = 0; k <= j; k++) x += L[j * d + k]! * z[i * d + k]!;
        out[i * d + j] = x;
      }
    }
    return out;
  }
  inSupport(theta: Float64Array): Uint8Array {
    const d = this.dim;
    const n = checkBatch("multivariateNormal.inSupport", theta, d);
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      let ok = 1;
      for (let j = 0; j < d; j++) if (!Number.isFinite(theta[i * d + j]!)) ok = 0;
      out[i] = ok;
    }
    return out;
  }
  mean(): Float64Array {
    return Float64Array.from(this.mu);
  }
  std(): Float64Array {
    const d = this.dim;
    return Float64Array.from({ length: d }, (_, i) => Math.sqrt(this.cov[i * d + i]!));
  }
  private rows(): number[][] {
    const d = this.dim;
    return globalThis.Array.from({ length: d }, (_, i) => [
      ...this.cov.subarray(i * d, (i + 1) * d),
    ]);
  }
  toString(): string {
    const d = this.dim;
    // Small matrices are printed whole; larger ones by their mean and standard deviations.
    return d <= 3
      ? `multivariateNormal(${fmtList(this.mu)}, [${this.rows().map(fmtList).join(", ")}])`
      : `multivariateNormal(mean ${fmtList(this.mu)}, std ${fmtList(this.std())}, ${d}×${d} cov)`;
  }
  /** Node's util.inspect, Deno and REPLs print the prior as its toString. */
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString();
  }
  toJSON(): PriorSpec {
    const spec: PriorSpec = { type: "multivariateNormal", mean: [...this.mu], cov: this.rows() };
    return isDefaultLabels(this.labels) ? spec : { ...spec, labels: [...this.labels] };
  }
}

const isArrayLike = (v: unknown): v is ArrayLike<unknown> =>
  v !== null &&
  typeof v === "object" &&
  typeof (v as ArrayLike<unknown>).length === "number" &&
  typeof v !== "string";

/**
 * Normal with mean vector `mean` and a full covariance matrix `cov` (d rows of d numbers, or d²
 * numbers row-major): symmetric and positive definite. Densities are exact in float64 through
 * the Cholesky factor; a correlated part of a product like any other prior.
 *
 * @example
 * ```ts
 * const prior = priors.multivariateNormal([0, 1], [[1, 0.8], [0.8, 2]]);
 * prior.std(); // [1, 1.414]
 * priors.independent({ pos: prior, flux: priors.logUniform(1, 100) }).labels; // ["pos[0]", "pos[1]", "flux"]
 * ```
 */
export function multivariateNormal(
  mean: ArrayLike<number>,
  cov: ArrayLike<ArrayLike<number>> | ArrayLike<number>,
): Prior {
  const fn = "multivariateNormal";
  if (!isArrayLike(mean) || mean.length < 1) {
    fail(fn, "mean", "an array of at least 1 number", mean);
  }
  const d = mean.length;
  const mu = new Float64Array(d);
  for (let i = 0; i < d; i++) mu[i] = finite(fn, `mean[${i}]`, mean[i]);
  const shape = `${d} rows of ${d} numbers (or ${d * d} numbers, row-major)`;
  if (!isArrayLike(cov)) fail(fn, "cov", `a covariance matrix: ${shape}`, cov);
  const c = new Float64Array(d * d);
  if (cov.length > 0 && isArrayLike(cov[0])) {
    const rows = cov as ArrayLike<ArrayLike<number>>;
    if (rows.length !== d)
      fail(fn, "cov.length", `${d} rows (one per dimension of mean)`, rows.length);
    for (let i = 0; i < d; i++) {
      const row = rows[i];
      if (!isArrayLike(row)) fail(fn, `cov[${i}]`, `a row of ${d} numbers`, row);
      if (row.length !== d)
        fail(fn, `cov[${i}].length`, `${d} (the dimension of mean)`, row.length);
      for (let j = 0; j < d; j++) c[i * d + j] = finite(fn, `cov[${i}][${j}]`, row[j]);
    }
  } else {
    const flat = cov as ArrayLike<number>;
    if (flat.length !== d * d) fail(fn, "cov.length", shape, flat.length);
    for (let k = 0; k < d * d; k++) {
      c[k] = finite(fn, `cov[${Math.floor(k / d)}][${k % d}]`, flat[k]);
    }
  }
  for (let i = 0; i < d; i++) {
    if (!(c[i * d + i]! > 0))
      fail(fn, `cov[${i}][${i}]`, "a variance greater than 0", c[i * d + i]);
  }
  // Symmetric up to rounding (a product A·Aᵀ computed in floats may differ in the last bits);
  // the two triangles are then averaged so the matrix is exactly symmetric.
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < i; j++) {
      const [a, b] = [c[i * d + j]!, c[j * d + i]!];
      const scale = Math.sqrt(c[i * d + i]! * c[j * d + j]!);
      if (Math.abs(a - b) > 1e-10 * Math.max(scale, Math.abs(a), Math.abs(b))) {
        failText(
          fn,
          "cov",
          "a symmetric matrix",
          `cov[${i}][${j}] = ${a} but cov[${j}][${i}] = ${b}`,
        );
      }
      c[i * d + j] = c[j * d + i] = a === b ? a : 0.5 * (a + b);
    }
  }
  // Cholesky–Banachiewicz: a pivot that is not positive means cov is not positive definite.
  const L = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j <= i; j++) {
      let s = c[i * d + j]!;
      for (let k = 0; k < j; k++) s -= L[i * d + k]! * L[j * d + k]!;
      if (i === j) {
        if (!(s > 0) || !Number.isFinite(s)) {
          failText(
            fn,
            "cov",
            "a positive definite matrix (a covariance with no degenerate direction)",
            `a matrix whose leading ${i + 1}×${i + 1} block is not positive definite (Cholesky pivot ${s} at row ${i})`,
          );
        }
        L[i * d + i] = Math.sqrt(s);
      } else L[i * d + j] = s / L[j * d + j]!;
    }
  }
  return new MultivariateNormal(mu, c, L);
}

// ---- products and user input ----

function isPrior(p: unknown): p is Prior {
  const q = p as Prior | null;
  return (
    q !== null &&
    typeof q === "object" &&
    typeof q.dim === "number" &&
    globalThis.Array.isArray(q.labels) &&
    typeof q.logProb === "function" &&
    typeof q.sample === "function"
  );
}

/**
 * The product of independent priors. From an object, labels are its keys (a k-dimensional part
 * under key `A` gives `A[0]`, `A[1]`, ...). From an array, each part keeps its labels, except
 * default ones (θ0, ...), which are renumbered by position in the product.
 *
 * @example
 * ```ts
 * const prior = priors.independent({ A: priors.uniform(1, 5), omega: priors.uniform(2, 10) });
 * prior.labels; // ["A", "omega"]
 * ```
 */
export function independent(parts: readonly Prior[] | Readonly<Record<string, Prior>>): Prior {
  const fn = "independent";
  if (parts === null || typeof parts !== "object" || isPrior(parts)) {
    fail(fn, "parts", "an array or object of priors", parts);
  }
  const entries: [string | null, Prior][] = globalThis.Array.isArray(parts)
    ? (parts as readonly Prior[]).map((p) => [null, p])
    : Object.entries(parts as Record<string, Prior>);
  if (entries.length === 0) fail(fn, "parts", "at least one prior", parts);
  const flat: Prior[] = [];
  const labels: string[] = [];
  entries.forEach(([name, p], i) => {
    const where = name === null ? `parts[${i}]` : `parts.${name}`;
    if (!isPrior(p)) fail(fn, where, "a prior (uniform, normal, ...)", p);
    const own =
      name !== null
        ? p.dim === 1
          ? [name]
          : defaultLabels(p.dim).map((_, j) => `${name}[${j}]`)
        : isDefaultLabels(p.labels)
          ? defaultLabels(p.dim, labels.length)
          : [...p.labels];
    labels.push(...own);
    // Flatten nested products so every product is one flat list of parts.
    flat.push(...(p instanceof Independent ? p.parts : [p]));
  });
  checkLabels(fn, labels, labels.length);
  if (flat.length === 1) return relabel(flat[0]!, labels);
  return new Independent(flat, labels);
}

const boundOf = (fn: string, name: string, b: unknown): number => {
  if (b === "Infinity") return Number.POSITIVE_INFINITY;
  if (b === "-Infinity") return Number.NEGATIVE_INFINITY;
  if (typeof b !== "number") fail(fn, name, 'a number, "Infinity" or "-Infinity"', b);
  return b;
};

/**
 * Rebuilds a prior from its `toJSON` spec.
 *
 * @example
 * ```ts
 * priors.fromSpec({ type: "uniform", lo: 0, hi: 1, labels: ["f"] }).toString(); // "uniform(0, 1)"
 * ```
 */
export function fromSpec(spec: PriorSpec): Prior {
  const fn = "fromSpec";
  if (spec === null || typeof spec !== "object") fail(fn, "spec", "a prior spec object", spec);
  const s = spec as PriorSpec;
  let prior: Prior;
  switch (s.type) {
    case "uniform":
      prior = uniform(s.lo, s.hi);
      break;
    case "normal":
      prior = normal(s.mu, s.sigma);
      break;
    case "logUniform":
      prior = logUniform(s.lo, s.hi);
      break;
    case "truncatedNormal":
      prior = truncatedNormal(
        s.mu,
        s.sigma,
        boundOf(fn, "spec.lo", s.lo),
        boundOf(fn, "spec.hi", s.hi),
      );
      break;
    case "empirical":
      prior = empirical(s.grid, s.density);
      break;
    case "multivariateNormal":
      prior = multivariateNormal(s.mean, s.cov);
      break;
    case "independent":
      if (!globalThis.Array.isArray(s.parts)) fail(fn, "spec.parts", "an array of specs", s.parts);
      prior = independent(s.parts.map(fromSpec));
      break;
    default:
      fail(
        fn,
        "spec.type",
        '"uniform", "normal", "logUniform", "truncatedNormal", "empirical", "multivariateNormal" or "independent"',
        (s as { type?: unknown }).type,
      );
  }
  return s.labels === undefined ? prior : relabel(prior, checkLabels(fn, s.labels, prior.dim));
}

/**
 * What the engine calls on user input: a prior, an array of priors or an object of named priors,
 * as one Prior. `labels`, when given, name the dimensions (one each, distinct).
 *
 * @example
 * ```ts
 * priors.resolvePriors([priors.uniform(0, 1), priors.normal(0, 1)], ["f", "mu"]).labels; // ["f", "mu"]
 * ```
 */
export function resolvePriors(
  spec: Prior | readonly Prior[] | Readonly<Record<string, Prior>>,
  labels?: readonly string[],
): Prior {
  const fn = "resolvePriors";
  if (spec === null || typeof spec !== "object") {
    fail(fn, "priors", "a prior, an array of priors or an object of named priors", spec);
  }
  const prior = isPrior(spec) ? spec : independent(spec);
  return labels === undefined ? prior : relabel(prior, checkLabels(fn, labels, prior.dim));
}
