/**
 * The exact likelihood p(xObs | θ) that importance weights use. The default is nbi's: independent
 * Gaussian errors with known sigmas around the noiseless simulation. Any other likelihood is a
 * function `(xObs, xSim, θ) → log p` on the host. A likelihood that reads θ alone (`thetaLogLike`)
 * says so with `needsSimulation: false`, and the simulator is then not run just to weight draws.
 */
import { fail, failText } from "../errors.js";

/**
 * An exact log-likelihood log p(xObs | θ), given the noiseless simulation xSim at θ (host,
 * float64). `needsSimulation: false` declares that it reads θ alone: it is then called with an
 * empty xSim when no simulation is at hand (see `thetaLogLike`).
 */
export type LogLike = ((
  xObs: Float32Array | Float64Array,
  xSim: Float32Array,
  theta: Float64Array,
) => number) & {
  /** false: the likelihood reads θ alone, so no simulation is needed to evaluate it. */
  readonly needsSimulation?: boolean;
};

const NO_SIMULATION = new Float32Array(0);

/**
 * A likelihood of θ alone, `(xObs, θ) → log p`: one whose simulator output is not needed (an
 * analytic model, or one evaluated inside the likelihood). It declares `needsSimulation: false`,
 * so importance weights are computed without running the simulator.
 *
 * @example
 * ```ts
 * // xObs ~ N(θ0, 1) in every element
 * const logLike = inference.thetaLogLike((xObs, theta) =>
 *   xObs.reduce((s, x) => s - 0.5 * (x - theta[0]!) ** 2 - 0.919, 0));
 * inference.needsSimulation(logLike); // false
 * ```
 */
export function thetaLogLike(
  fn: (xObs: Float32Array | Float64Array, theta: Float64Array) => number,
): LogLike {
  if (typeof fn !== "function") fail("thetaLogLike", "fn", "a function (xObs, θ) → log p", fn);
  const logLike = (xObs: Float32Array | Float64Array, _xSim: Float32Array, theta: Float64Array) =>
    fn(xObs, theta);
  return Object.assign(logLike, { needsSimulation: false as const });
}

/**
 * Whether a likelihood reads the simulation xSim: true unless it declares `needsSimulation:
 * false` (as `thetaLogLike` does).
 *
 * @example
 * ```ts
 * inference.needsSimulation(inference.gaussianLogLike(0.1, 50)); // true
 * inference.needsSimulation(inference.thetaLogLike((_x, theta) => -theta[0]! ** 2)); // false
 * ```
 */
export function needsSimulation(logLike: LogLike): boolean {
  if (typeof logLike !== "function") {
    fail("needsSimulation", "logLike", "a likelihood function (xObs, xSim, θ) → log p", logLike);
  }
  return logLike.needsSimulation !== false;
}

const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI);

/**
 * log N(xObs; xSim, diag σ²), with one σ for all elements or one per element: nbi's default
 * likelihood, which `NBI.fit` builds from Gaussian `noise` sigmas.
 *
 * @example
 * ```ts
 * const logLike = inference.gaussianLogLike([0.1, 0.2], 2);
 * logLike(Float64Array.from([1, 2]), Float32Array.from([1, 2]), Float64Array.from([0])); // 2.074: at the mean
 * ```
 */
export function gaussianLogLike(sigma: number | ArrayLike<number>, size: number): LogLike {
  const s =
    typeof sigma === "number" ? new Float64Array(size).fill(sigma) : Float64Array.from(sigma);
  if (s.length !== size)
    failText(
      "likelihood",
      "sigma",
      `1 or ${size} sigmas (one per data element)`,
      `${s.length} sigmas`,
    );
  for (let i = 0; i < size; i++) {
    if (!(s[i]! > 0) || !Number.isFinite(s[i]!))
      fail(
        "likelihood",
        `sigma[${i}]`,
        "a finite positive number (a zero sigma has no density)",
        s[i],
      );
  }
  const inv = s.map((v) => 1 / v);
  let norm = 0;
  for (const v of s) norm += Math.log(v) + HALF_LOG_2PI;
  return (xObs, xSim) => {
    let q = 0;
    for (let i = 0; i < size; i++) {
      const z = (xObs[i]! - xSim[i]!) * inv[i]!;
      q += z * z;
    }
    return -0.5 * q - norm;
  };
}

/**
 * log N(xObs; xSim, diag σ²) over the observed points only: a NaN entry of xObs is a missing
 * point and is left out of the sum (and of the normalisation). One σ for all points or one per
 * point; a σ may be NaN where the point is missing. The likelihood of `predict(xObs, { xErr })`
 * for the gapped observation model. An observed point whose σ is not a finite positive number
 * gives NaN (an invalid weight); `predict` checks the sigmas before.
 *
 * @example
 * ```ts
 * const logLike = inference.maskedGaussianLogLike([0.1, Number.NaN, 0.2], 3);
 * logLike(Float64Array.from([1, Number.NaN, 2]), Float32Array.from([1, 5, 2]), Float64Array.from([0])); // 2.074: the middle point is missing
 * ```
 */
export function maskedGaussianLogLike(sigma: number | ArrayLike<number>, size: number): LogLike {
  const fn = "maskedGaussianLogLike";
  if (!Number.isInteger(size) || size < 1) fail(fn, "size", "a positive integer", size);
  if (typeof sigma !== "number" && typeof (sigma as ArrayLike<number>)?.length !== "number")
    fail(fn, "sigma", "one sigma or one per point", sigma);
  const s =
    typeof sigma === "number" ? new Float64Array(size).fill(sigma) : Float64Array.from(sigma);
  if (s.length !== size)
    failText(fn, "sigma", `1 or ${size} sigmas (one per point)`, `${s.length} sigmas`);
  for (let i = 0; i < size; i++) {
    if (!Number.isNaN(s[i]!) && !(s[i]! > 0 && Number.isFinite(s[i]!)))
      fail(fn, `sigma[${i}]`, "a finite positive number (or NaN at a missing point)", s[i]);
  }
  const inv = s.map((v) => 1 / v);
  const logNorm = s.map((v) => Math.log(v) + HALF_LOG_2PI);
  return (xObs, xSim) => {
    let q = 0;
    let norm = 0;
    for (let i = 0; i < size; i++) {
      const x = xObs[i]!;
      if (Number.isNaN(x)) continue;
      const z = (x - xSim[i]!) * inv[i]!;
      q += z * z;
      norm += logNorm[i]!;
    }
    return -0.5 * q - norm;
  };
}

/**
 * log p(xObs | θ_i) for every row of θ (n × nDims), given the simulations at them (rows of xSim,
 * n × xObs.length). xSim may be left out when the likelihood needs no simulation; its function
 * then gets an empty xSim. NaN results (and non-numbers) stay NaN (invalid).
 */
export function logLikelihoods(
  logLike: LogLike,
  xObs: Float32Array | Float64Array,
  xSim: Float32Array | undefined,
  theta: Float64Array,
  nDims: number,
): Float64Array {
  const fn = "logLikelihoods";
  const size = xObs.length;
  const n = theta.length / nDims;
  if (!Number.isInteger(n)) {
    failText(fn, "theta", `a multiple of nDims (${nDims}) values`, `${theta.length} values`);
  }
  const simulated = needsSimulation(logLike);
  if (simulated && xSim === undefined) {
    fail(
      fn,
      "xSim",
      "the simulations at theta (this likelihood reads them; a likelihood of θ alone is made with thetaLogLike)",
      xSim,
    );
  }
  // A likelihood of θ alone still gets the rows when they are given in full.
  const rows = xSim !== undefined && (simulated || xSim.length === n * size) ? xSim : undefined;
  if (rows !== undefined && rows.length !== n * size) {
    failText(
      fn,
      "xSim",
      `${n} × ${size} values (one simulation of xObs's size per row of theta)`,
      `${rows.length} values`,
    );
  }
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const v = logLike(
      xObs,
      rows ? rows.subarray(i * size, (i + 1) * size) : NO_SIMULATION,
      theta.subarray(i * nDims, (i + 1) * nDims),
    );
    out[i] = typeof v === "number" ? v : Number.NaN;
  }
  return out;
}
