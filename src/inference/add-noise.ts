/**
 * The fit's cheap noise model applied once, on the host, to a batch of simulator outputs: what an
 * observation of those simulations would look like. Training applies the same model afresh to
 * every batch inside the jit-compiled step (train.ts); the out-of-distribution statistics and the
 * posterior predictive replicates need one noisy copy of each simulation, outside any step.
 */
import { fail, failText } from "../errors.js";
import * as np from "../ops/np.js";
import type { Array } from "../trace/array.js";
import { isGappedLightCurves } from "./gaps.js";
import { normals } from "./host.js";
import { deviceKey } from "./posterior.js";
import type { Noise } from "./train.js";

/**
 * `x` (m rows of C × L values) with noise added: Gaussian with the sigmas (one, or one per data
 * element) drawn from `key` in float64, or a noise function called once on x [m, C, L] and
 * θ [m, d] (float32, as training calls it). `fn` and `argument` name the caller in errors.
 *
 * @example
 * ```ts
 * const noisy = await addNoise(0.1, hostKey(3), x, theta, [1, 50], 2, "posteriorPredictive", "noise");
 * ```
 */
export async function addNoise(
  noise: Noise,
  key: Array,
  x: Float32Array | Float64Array,
  theta: Float64Array,
  inputShape: readonly [number, number],
  nDims: number,
  fn: string,
  argument: string,
): Promise<Float64Array> {
  const [C, L] = inputShape;
  const size = C * L;
  const m = x.length / size;
  if (typeof noise === "function") {
    const xs = np.reshape(np.array(Float32Array.from(x), { dtype: "float32" }), [m, C, L]);
    const ts = np.reshape(np.array(Float32Array.from(theta), { dtype: "float32" }), [m, nDims]);
    const out = noise(deviceKey(key), xs, ts);
    if (!out || typeof (out as { data?: unknown }).data !== "function") {
      fail(fn, argument, "a noise function returning an array", out);
    }
    const data = await out.data();
    if (data.length !== x.length) {
      failText(
        fn,
        argument,
        `a noise function returning an array of the data's shape [${m}, ${C}, ${L}]`,
        `${data.length} values`,
      );
    }
    return Float64Array.from(data as ArrayLike<number>);
  }
  if (isGappedLightCurves(noise)) {
    // Its observations carry gaps and error bars: see sampleGappedObservations (gaps.ts).
    fail(fn, argument, "Gaussian sigmas or a noise function", noise.toString());
  }
  const sigmas = checkSigmas(noise, size, fn, argument);
  const eps = normals(key, x.length);
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const s = sigmas.length === 1 ? sigmas[0]! : sigmas[i % size]!;
    out[i] = x[i]! + s * eps[i]!;
  }
  return out;
}

/** Gaussian sigmas as float64: one, or one per data element, each finite and ≥ 0. */
export function checkSigmas(
  noise: number | ArrayLike<number>,
  size: number,
  fn: string,
  argument: string,
): Float64Array {
  if (typeof noise !== "number" && typeof (noise as ArrayLike<number>)?.length !== "number") {
    fail(
      fn,
      argument,
      "Gaussian sigmas (one number or one per data element) or a noise function",
      noise,
    );
  }
  const sigmas = typeof noise === "number" ? Float64Array.of(noise) : Float64Array.from(noise);
  if (sigmas.length !== 1 && sigmas.length !== size) {
    failText(
      fn,
      argument,
      `one sigma or ${size} sigmas (one per data element)`,
      `${sigmas.length} sigmas`,
    );
  }
  const bad = sigmas.findIndex((s) => !(s >= 0 && Number.isFinite(s)));
  if (bad >= 0) fail(fn, `${argument}[${bad}]`, "a finite sigma ≥ 0", sigmas[bad]);
  return sigmas;
}
