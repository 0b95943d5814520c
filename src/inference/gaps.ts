/**
 * Light curves as they come: points missing (NaN) and an error bar of its own for every point.
 * The observation model `gappedLightCurves({ missing, sigma })` is a `Noise` value: given to
 * `fit` as its `noise`, every training batch draws a fresh mask (which points are missing) and
 * fresh per-point sigmas, adds Gaussian noise with those sigmas, and feeds the featurizer three
 * channels per data channel: the standardised values with the missing points zeroed, the mask,
 * and the sigmas in the standardised units of the values (σ / xStd, zero where missing). An
 * observation with NaN entries and its own `xErr` is encoded to the same channels by the same
 * function (`encodeGapped`), so the network sees at `predict` exactly what it trained on.
 *
 * On the host, the network's functions (posterior.ts) take such an observation packed: per
 * observation its C × L values (NaN where missing) followed by their C × L sigmas.
 */
import { describe, fail, failText, NbiError } from "../errors.js";
import * as np from "../ops/np.js";
import * as random from "../ops/random.js";
import type { Array } from "../trace/array.js";

/**
 * Which points of a batch are observed: (key, shape [B, C, L]) → 1 where observed, 0 where
 * missing ([B, C, L], float32 or bool). Traceable (written with `np`/`random`): it runs inside
 * the jit-compiled training step.
 */
export type MaskSampler = (key: Array, shape: readonly [number, number, number]) => Array;

/**
 * Per-point error bars of a batch: (key, x [B, C, L] noiseless, θ [B, d]) → sigmas [B, C, L],
 * finite and > 0, in the data's units. Traceable (written with `np`/`random`).
 */
export type SigmaSampler = (key: Array, x: Array, theta: Array) => Array;

/** What `gappedLightCurves` takes. */
export interface GappedLightCurvesOptions {
  /**
   * The fraction of points missing: one number, a range [lo, hi] from which each light curve
   * draws its own fraction uniformly (each point then missing independently with it), or a
   * `MaskSampler` (for gaps in runs: nights, seasons). In [0, 1); default [0, 0.5].
   */
  missing?: number | readonly [number, number] | MaskSampler;
  /**
   * The per-point Gaussian error bars, in the data's units: one sigma for every point, a range
   * [lo, hi] (each point's sigma drawn log-uniformly in it, independently), or a `SigmaSampler`.
   * Finite and > 0.
   */
  sigma: number | readonly [number, number] | SigmaSampler;
}

/** The observation model as model.json records it (a function as "function"). */
export interface GappedLightCurvesSpec {
  /** Names the model. */
  readonly type: "gapped-light-curves";
  /** The range of missing fractions, or "function" for a mask sampler. */
  readonly missing: readonly [number, number] | "function";
  /** The range of per-point sigmas, or "function" for a sigma sampler. */
  readonly sigma: readonly [number, number] | "function";
}

/**
 * Light curves with missing points and per-point error bars (see `gappedLightCurves`): a `Noise`
 * for `fit`, also what `NBI.load` restores from model.json.
 */
export interface GappedLightCurves {
  /** Names the model. */
  readonly type: "gapped-light-curves";
  /** The range of missing fractions, or a mask sampler. */
  readonly missing: readonly [number, number] | MaskSampler;
  /** The range of per-point sigmas, or a sigma sampler. */
  readonly sigma: readonly [number, number] | SigmaSampler;
  /** The model as JSON (functions as "function"). */
  toJSON(): GappedLightCurvesSpec;
  /** One line: "gappedLightCurves(missing [0, 0.5], sigma [0.05, 0.2])". */
  toString(): string;
}

/** Channels the featurizer sees per data channel: values, mask, sigmas. */
export const GAPPED_CHANNELS = 3;

const FN = "gappedLightCurves";
const OPTION_KEYS = ["missing", "sigma"];

function range(
  fn: string,
  argument: string,
  value: unknown,
  ok: (v: number) => boolean,
  expected: string,
): readonly [number, number] {
  if (typeof value === "number") {
    if (!ok(value)) fail(fn, argument, expected, value);
    return [value, value];
  }
  const pair = value as readonly unknown[];
  if (
    !globalThis.Array.isArray(pair) ||
    pair.length !== 2 ||
    typeof pair[0] !== "number" ||
    typeof pair[1] !== "number"
  ) {
    fail(fn, argument, `${expected}: a number, a range [lo, hi] or a function`, value);
  }
  const [lo, hi] = pair as [number, number];
  if (!ok(lo) || !ok(hi) || lo > hi) fail(fn, argument, `a range [lo ≤ hi] of ${expected}`, value);
  return [lo, hi];
}

/**
 * The observation model of light curves as they come: a fraction of the points missing and an
 * error bar of its own for every point, both drawn afresh for every training batch. Give it to
 * `fit` as `noise`; the featurizer then sees 3 channels per data channel (values with the gaps
 * zeroed, the mask, the sigmas), so its `dimIn` is 3 × channels (an MLP's: 3 × channels ×
 * length). `predict(xObs, { xErr })` takes NaN for a missing point and one sigma per point,
 * weighs only the observed points, and `sampleBatch(table, n, { xErr: rows })` serves many
 * light curves of different gaps and errors in one call. A sequential fit of one light curve,
 * `fit({ xObs, xErr, noise, nRounds })`, draws its rounds from the surrogate at the encoded
 * light curve and weighs them with the masked likelihood; training keeps the model's random gaps
 * and sigmas. A model given functions is saved as "function": pass it again to
 * `NBI.load(dir, { noise })`.
 *
 * @example
 * ```ts
 * const gaps = inference.gappedLightCurves({ missing: [0, 0.5], sigma: [0.05, 0.3] });
 * const engine = new NBI({ flow: { nDims: 2 }, featurizer: { type: "mlp", dimIn: 3 * 40, dimOut: 16 },
 *   priors, simulator, path: "runs/gaps" });
 * await engine.fit({ nSims: 5000, noise: gaps }); // amortized: no xObs
 * const post = await engine.predict(xObs, { xErr }); // xObs with NaN where a point is missing
 * ```
 */
export function gappedLightCurves(options: GappedLightCurvesOptions): GappedLightCurves {
  if (typeof options !== "object" || options === null || globalThis.Array.isArray(options)) {
    fail(FN, "options", "an object { missing, sigma }", options);
  }
  const unknown = Object.keys(options).filter((k) => !OPTION_KEYS.includes(k));
  if (unknown.length > 0) {
    failText(
      FN,
      "options",
      `only ${OPTION_KEYS.join(" and ")}`,
      `unknown ${unknown.map((k) => JSON.stringify(k)).join(", ")}`,
    );
  }
  const missingIn = options.missing ?? [0, 0.5];
  const missing =
    typeof missingIn === "function"
      ? missingIn
      : range(FN, "missing", missingIn, (v) => v >= 0 && v < 1, "fractions in [0, 1)");
  if (options.sigma === undefined) {
    fail(
      FN,
      "sigma",
      "the per-point error bars: a sigma > 0, a range [lo, hi] or a function",
      undefined,
    );
  }
  const sigma =
    typeof options.sigma === "function"
      ? options.sigma
      : range(FN, "sigma", options.sigma, (v) => v > 0 && Number.isFinite(v), "finite sigmas > 0");
  return modelOf(missing, sigma);
}

function modelOf(
  missing: GappedLightCurves["missing"],
  sigma: GappedLightCurves["sigma"],
): GappedLightCurves {
  const spec: GappedLightCurvesSpec = {
    type: "gapped-light-curves",
    missing: typeof missing === "function" ? "function" : missing,
    sigma: typeof sigma === "function" ? "function" : sigma,
  };
  const text = (v: GappedLightCurvesSpec["missing"]) =>
    v === "function" ? "a function" : `[${v.join(", ")}]`;
  return Object.freeze({
    type: "gapped-light-curves" as const,
    missing,
    sigma,
    toJSON: () => spec,
    toString: () => `gappedLightCurves(missing ${text(spec.missing)}, sigma ${text(spec.sigma)})`,
  });
}

/**
 * Whether a noise model is the gapped light-curve model.
 *
 * @example
 * ```ts
 * inference.isGappedLightCurves(inference.gappedLightCurves({ sigma: 0.1 })); // true
 * inference.isGappedLightCurves(0.1); // false
 * ```
 */
export function isGappedLightCurves(noise: unknown): noise is GappedLightCurves {
  return (
    typeof noise === "object" &&
    noise !== null &&
    (noise as { type?: unknown }).type === "gapped-light-curves"
  );
}

/**
 * The model from its JSON (model.json, a CLI config). A spec naming functions needs `given`, a
 * model with those functions (NBI.load's `noise`); `given` also replaces the spec when it agrees.
 */
export function gappedFromSpec(
  spec: unknown,
  fn: string,
  argument: string,
  given?: GappedLightCurves,
): GappedLightCurves {
  const s = spec as Partial<GappedLightCurvesSpec> | null;
  if (typeof s !== "object" || s === null || s.type !== "gapped-light-curves") {
    fail(fn, argument, '{ type: "gapped-light-curves", missing, sigma }', spec);
  }
  if (given) {
    const mine = given.toJSON();
    const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
    if (!same(mine.missing, s.missing) || !same(mine.sigma, s.sigma)) {
      failText(
        fn,
        "noise",
        `the gapped observation model the network was trained with (${JSON.stringify(s)})`,
        JSON.stringify(mine),
      );
    }
    return given;
  }
  if (s.missing === "function" || s.sigma === "function") {
    failText(
      fn,
      "noise",
      `the gapped observation model again (${argument} records ${s.missing === "function" ? "a mask sampler" : "a sigma sampler"}, and functions are not saved): pass noise: gappedLightCurves({ ... })`,
      "none",
    );
  }
  try {
    return gappedLightCurves({
      missing: s.missing as [number, number],
      sigma: s.sigma as [number, number],
    });
  } catch (e) {
    throw new NbiError(
      `${fn}: ${argument} is not a valid gapped observation model: ${(e as Error).message}`,
    );
  }
}

/** A batch's draws: which points are observed (1/0), their sigmas, and the noisy values. */
export interface GapDraws {
  /** 1 where observed, 0 where missing; float32 [B, C, L]. */
  readonly observed: Array;
  /** Per-point sigmas in the data's units; float32 [B, C, L]. */
  readonly sigma: Array;
  /** x + σ·ε (every point, missing ones too; encoding zeroes those). */
  readonly noisy: Array;
}

/**
 * Draws a batch's mask and sigmas and adds the noise (traceable: it runs inside the training
 * step). x [B, C, L] noiseless, θ [B, d].
 */
export function drawGaps(model: GappedLightCurves, key: Array, x: Array, theta: Array): GapDraws {
  const [B, C, L] = x.shape as [number, number, number];
  const [kFraction, kMask, kSigma, kNoise] = random.splitList(key, 4);
  let observed: Array;
  if (typeof model.missing === "function") {
    const m = model.missing(kMask!, [B, C, L]);
    checkShape(m, [B, C, L], "missing", "a mask sampler returning");
    observed = np.astype(m, "float32");
  } else {
    const [lo, hi] = model.missing;
    const fraction =
      lo === hi
        ? np.array(lo, { dtype: "float32" })
        : random.uniform(kFraction!, [B, 1, 1], { minval: lo, maxval: hi });
    observed = np.astype(np.greaterEqual(random.uniform(kMask!, [B, C, L]), fraction), "float32");
  }
  let sigma: Array;
  if (typeof model.sigma === "function") {
    sigma = model.sigma(kSigma!, x, theta);
    checkShape(sigma, [B, C, L], "sigma", "a sigma sampler returning");
    sigma = np.astype(sigma, "float32");
  } else {
    const [lo, hi] = model.sigma;
    sigma =
      lo === hi
        ? np.broadcastTo(np.array(lo, { dtype: "float32" }), [B, C, L])
        : np.exp(
            random.uniform(kSigma!, [B, C, L], { minval: Math.log(lo), maxval: Math.log(hi) }),
          );
  }
  const noisy = np.add(x, np.mul(sigma, random.normal(kNoise!, [B, C, L])));
  return { observed, sigma, noisy };
}

function checkShape(a: unknown, shape: readonly number[], argument: string, what: string): void {
  const s = (a as { shape?: unknown })?.shape;
  if (!globalThis.Array.isArray(s) || s.join(",") !== shape.join(",")) {
    fail("fit", `noise.${argument}`, `${what} an array of shape [${shape.join(", ")}]`, a);
  }
}

/**
 * What the featurizer sees of a gapped batch, [B, 3C, L]: the standardised values times the
 * mask, the mask, and σ / xStd times the mask. values, observed, sigma are [B, C, L] (finite
 * everywhere: the host replaces NaN first); xMean, xStd [C, 1]. Traceable; training and the
 * host encoding of observations both call it.
 *
 * @example
 * ```ts
 * const input = inference.encodeGapped(values, observed, sigma, xMean, xStd); // [B, 3C, L]
 * ```
 */
export function encodeGapped(
  values: Array,
  observed: Array,
  sigma: Array,
  xMean: Array,
  xStd: Array,
): Array {
  const v = np.mul(np.div(np.sub(values, xMean), xStd), observed);
  const s = np.mul(np.div(sigma, xStd), observed);
  return np.concatenate([v, observed, s], 1);
}

/** The featurizer's input for a training batch: fresh gaps and noise, encoded (traceable). */
export function gappedTrainingInput(
  model: GappedLightCurves,
  key: Array,
  x: Array,
  theta: Array,
  xMean: Array,
  xStd: Array,
): Array {
  const { observed, sigma, noisy } = drawGaps(model, key, x, theta);
  return encodeGapped(noisy, observed, sigma, xMean, xStd);
}

/**
 * Encodes m packed observations (per observation C × L values, NaN where missing, then C × L
 * sigmas) on the default backend as the network's input [m, 3C, L], with `encodeGapped`.
 */
export function encodePacked(
  packed: Float32Array | Float64Array,
  inputShape: readonly [number, number],
  xMean: Float64Array,
  xStd: Float64Array,
): Array {
  const [C, L] = inputShape;
  const size = C * L;
  const m = packed.length / (2 * size);
  const values = new Float32Array(m * size);
  const observed = new Float32Array(m * size);
  const sigma = new Float32Array(m * size);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < size; j++) {
      const v = packed[2 * i * size + j]!;
      if (Number.isNaN(v)) continue; // values, mask and sigma stay 0
      values[i * size + j] = v;
      observed[i * size + j] = 1;
      sigma[i * size + j] = packed[(2 * i + 1) * size + j]!;
    }
  }
  const shaped = (a: Float32Array) => np.reshape(np.array(a, { dtype: "float32" }), [m, C, L]);
  const column = (a: Float64Array) =>
    np.reshape(np.array(Float32Array.from(a), { dtype: "float32" }), [C, 1]);
  return encodeGapped(shaped(values), shaped(observed), shaped(sigma), column(xMean), column(xStd));
}

/**
 * m gapped observations of noiseless simulations x (m × C × L), as the model makes them for
 * training, packed (values with NaN where missing, then sigmas, NaN where missing): the
 * out-of-distribution alarm's training features and calibration's test observations.
 *
 * @example
 * ```ts
 * const packed = await sampleGappedObservations(gaps, random.key(0), x, theta, [1, 40], 2); // m × 2 × 40
 * ```
 */
export async function sampleGappedObservations(
  model: GappedLightCurves,
  key: Array,
  x: Float32Array | Float64Array,
  theta: Float64Array,
  inputShape: readonly [number, number],
  nDims: number,
): Promise<Float64Array> {
  const [C, L] = inputShape;
  const size = C * L;
  const m = x.length / size;
  const xs = np.reshape(np.array(Float32Array.from(x), { dtype: "float32" }), [m, C, L]);
  const ts = np.reshape(np.array(Float32Array.from(theta), { dtype: "float32" }), [m, nDims]);
  const draws = drawGaps(model, key, xs, ts);
  const [observed, sigma, noisy] = await Promise.all([
    draws.observed.data(),
    draws.sigma.data(),
    draws.noisy.data(),
  ]);
  const out = new Float64Array(2 * m * size);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < size; j++) {
      const k = i * size + j;
      const seen = observed[k]! > 0.5;
      out[2 * i * size + j] = seen ? noisy[k]! : Number.NaN;
      out[(2 * i + 1) * size + j] = seen ? sigma[k]! : Number.NaN;
    }
  }
  return out;
}

/** Flattens numbers or rows of numbers; undefined for anything else. */
function flatten(v: unknown): Float64Array | undefined {
  if (typeof v === "number") return Float64Array.of(v);
  if (v === null || typeof v !== "object" || typeof (v as ArrayLike<unknown>).length !== "number")
    return undefined;
  const rows = v as ArrayLike<unknown>;
  const out: number[] = [];
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i];
    if (typeof r === "number") out.push(r);
    else if (r && typeof (r as ArrayLike<number>).length === "number") {
      for (let j = 0; j < (r as ArrayLike<number>).length; j++)
        out.push(Number((r as ArrayLike<number>)[j]));
    } else return undefined;
  }
  return Float64Array.from(out);
}

/** m observations packed for the network, and what they say about the model's ranges. */
export interface PackedObservations {
  /** Per observation: values (NaN where missing), then sigmas (NaN where missing). */
  readonly packed: Float32Array;
  /** Per observation, the fraction of points missing. */
  readonly missingFraction: Float64Array;
  /** The smallest and largest sigma at an observed point. */
  readonly sigmaRange: readonly [number, number];
}

/**
 * Checks m observations (x: m × size, NaN where a point is missing) and their error bars and
 * packs them for the network. xErr: one sigma, one per point (shared by all observations), or
 * m × size (rows or flat); NaN allowed where the point is missing. Every observed point needs a
 * finite value and a finite sigma > 0; every observation at least one observed point.
 */
export function packObservations(
  fn: string,
  names: { readonly x: string; readonly err: string },
  x: Float32Array | Float64Array,
  xErr: unknown,
  size: number,
): PackedObservations {
  const m = x.length / size;
  if (xErr === undefined) {
    fail(
      fn,
      names.err,
      "the observation's error bars (one sigma, or one per point; NaN where a point is missing): the gapped observation model feeds them to the network",
      undefined,
    );
  }
  const err = flatten(xErr);
  if (!err || (err.length !== 1 && err.length !== size && err.length !== m * size)) {
    const got = err ? `${err.length} sigmas` : describe(xErr);
    failText(
      fn,
      names.err,
      `one sigma, ${size} sigmas (one per point)${m > 1 ? ` or ${m} rows of ${size}` : ""}`,
      got,
    );
  }
  const packed = new Float32Array(2 * m * size);
  const missingFraction = new Float64Array(m);
  let lo = Number.POSITIVE_INFINITY;
  let hi = 0;
  for (let i = 0; i < m; i++) {
    let missing = 0;
    for (let j = 0; j < size; j++) {
      const k = i * size + j;
      const v = x[k]!;
      const e = err.length === 1 ? err[0]! : err.length === size ? err[j]! : err[k]!;
      if (Number.isNaN(v)) {
        missing++;
        packed[2 * i * size + j] = Number.NaN;
        packed[(2 * i + 1) * size + j] = Number.NaN;
        continue;
      }
      if (!Number.isFinite(v))
        fail(fn, `${names.x}[${k}]`, "a finite value or NaN (a missing point)", v);
      if (!(e > 0 && Number.isFinite(e))) {
        const at = err.length === 1 ? "" : `[${err.length === size ? j : k}]`;
        fail(fn, `${names.err}${at}`, `a finite sigma > 0 (${names.x}[${k}] is observed)`, e);
      }
      packed[2 * i * size + j] = v;
      packed[(2 * i + 1) * size + j] = e;
      lo = Math.min(lo, e);
      hi = Math.max(hi, e);
    }
    if (missing === size) {
      failText(
        fn,
        names.x,
        "at least one observed (non-NaN) point per observation",
        m > 1 ? `observation ${i} entirely NaN` : "every point NaN",
      );
    }
    missingFraction[i] = missing / size;
  }
  return { packed, missingFraction, sigmaRange: [lo, hi] };
}

/**
 * Why observations lie outside what the model trained on (missing fractions or sigmas outside
 * its ranges), in words; none when inside or when the model was given functions.
 */
export function gapWarnings(model: GappedLightCurves, obs: PackedObservations): string[] {
  const out: string[] = [];
  if (typeof model.missing !== "function") {
    const [lo, hi] = model.missing;
    const worst = globalThis.Array.from(obs.missingFraction).find(
      (f) => f < lo - 0.05 || f > hi + 0.05,
    );
    if (worst !== undefined) {
      out.push(
        `${(100 * worst).toFixed(0)}% of xObs is missing, outside the fraction the network trained on ([${lo}, ${hi}]): the surrogate extrapolates`,
      );
    }
  }
  if (typeof model.sigma !== "function") {
    const [lo, hi] = model.sigma;
    const [a, b] = obs.sigmaRange;
    if (a < lo * (1 - 1e-6) || b > hi * (1 + 1e-6)) {
      out.push(
        `xErr has sigmas in [${a.toPrecision(3)}, ${b.toPrecision(3)}], outside the range the network trained on ([${lo}, ${hi}]): the surrogate extrapolates`,
      );
    }
  }
  return out;
}
