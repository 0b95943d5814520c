/**
 * The exact likelihood p(xObs | θ) that importance weights use. The default is nbi's: independent
 * Gaussian errors with known sigmas around the noiseless simulation. Any other likelihood is a
 * function `(xObs, xSim, θ) → log p` on the host.
 */
import { fail, failText } from "../errors.js";

/** An exact log-likelihood log p(xObs | θ), given the noiseless simulation xSim at θ (host, float64). */
export type LogLike = (
  xObs: Float32Array | Float64Array,
  xSim: Float32Array,
  theta: Float64Array,
) => number;

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

/** log p(xObs | θ_i) for every stored simulation (rows of xSim). NaN results stay NaN (invalid). */
export function logLikelihoods(
  logLike: LogLike,
  xObs: Float32Array | Float64Array,
  xSim: Float32Array,
  theta: Float64Array,
  nDims: number,
): Float64Array {
  const size = xObs.length;
  const n = theta.length / nDims;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const v = logLike(
      xObs,
      xSim.subarray(i * size, (i + 1) * size),
      theta.subarray(i * nDims, (i + 1) * nDims),
    );
    out[i] = typeof v === "number" ? v : Number.NaN;
  }
  return out;
}
