/**
 * The options of `NBI.calibrate`, checked before anything is simulated: each mistake is named
 * with what was expected and what was given.
 */
import { fail, NbiError } from "../../errors.js";
import type { Array } from "../../trace/array.js";
import { isGappedLightCurves } from "../gaps.js";
import type { Noise } from "../train.js";

/** Options of `NBI.calibrate`. */
export interface CalibrateOptions {
  /** Test pairs (θ*, x) drawn from the prior and the simulator (default 200, at least 10). */
  nTest?: number;
  /** Surrogate draws per test pair (default 500, at least 20). */
  nSamples?: number;
  /** PRNG key of the test pairs, the draws and TARP's references (default: from the engine's seed). */
  key?: Array;
  /**
   * The noise model the fit trained with (Gaussian sigmas, a noise function, or the gapped
   * observation model, whose test observations get their own gaps and error bars), added to each
   * test simulation so it looks like the training data (default: the last fit's `noise`; after
   * `NBI.load`, the gapped model model.json records, else give it: sigmas are not recorded).
   */
  noise?: Noise;
  /** Familywise significance of the verdict's tests (default 0.05, Bonferroni-split). */
  significance?: number;
  /** Aborts the simulations and the call. */
  signal?: AbortSignal;
  /** Progress of the test simulations. */
  onSimulate?: (done: number, total: number) => void;
}

/** Every option `calibrate` takes (the compiler checks this list against CalibrateOptions). */
const CALIBRATE_KEYS: Record<keyof CalibrateOptions, true> = {
  nTest: true,
  nSamples: true,
  key: true,
  noise: true,
  significance: true,
  signal: true,
  onSimulate: true,
};

/** CalibrateOptions with the defaults filled in. */
export interface CheckedCalibrateOptions {
  readonly nTest: number;
  readonly nSamples: number;
  readonly key?: Array;
  readonly noise?: Noise;
  readonly significance: number;
  readonly signal?: AbortSignal;
  readonly onSimulate?: (done: number, total: number) => void;
}

/**
 * Checks `NBI.calibrate`'s options and fills in the defaults (nTest 200, nSamples 500,
 * significance 0.05).
 */
export function checkCalibrateOptions(options: unknown): CheckedCalibrateOptions {
  const fn = "calibrate";
  if (options === undefined) options = {};
  if (typeof options !== "object" || options === null || globalThis.Array.isArray(options)) {
    fail(fn, "options", "an object { nTest, nSamples, key, noise, ... }", options);
  }
  const o = options as CalibrateOptions;
  const known = Object.keys(CALIBRATE_KEYS);
  const unknown = Object.keys(o).filter((k) => !Object.hasOwn(CALIBRATE_KEYS, k));
  if (unknown.length > 0) {
    throw new NbiError(
      `${fn}: options expected only known options, got unknown ${unknown.map((k) => JSON.stringify(k)).join(", ")}; known: ${known.join(", ")}`,
    );
  }
  const nTest = o.nTest ?? 200;
  if (!Number.isInteger(nTest) || nTest < 10) {
    fail(
      fn,
      "nTest",
      "an integer ≥ 10 (test pairs; 200 or more to detect moderate miscalibration)",
      o.nTest,
    );
  }
  const nSamples = o.nSamples ?? 500;
  if (!Number.isInteger(nSamples) || nSamples < 20) {
    fail(fn, "nSamples", "an integer ≥ 20 (posterior draws per test pair)", o.nSamples);
  }
  const key = o.key as { shape?: unknown; dtype?: unknown } | undefined;
  if (
    key !== undefined &&
    !(
      typeof key === "object" &&
      key !== null &&
      key.dtype === "uint32" &&
      globalThis.Array.isArray(key.shape) &&
      key.shape.length === 1 &&
      key.shape[0] === 2
    )
  ) {
    fail(fn, "key", "a PRNG key (random.key or inference.hostKey: uint32, shape [2])", o.key);
  }
  const noise = o.noise;
  if (
    noise !== undefined &&
    typeof noise !== "number" &&
    typeof noise !== "function" &&
    !isGappedLightCurves(noise) &&
    typeof (noise as ArrayLike<number>)?.length !== "number"
  ) {
    fail(
      fn,
      "noise",
      "Gaussian sigmas (one number or one per data element), a noise function or gappedLightCurves({ ... })",
      noise,
    );
  }
  const significance = o.significance ?? 0.05;
  if (!(typeof significance === "number" && significance > 0 && significance < 1)) {
    fail(fn, "significance", "a number in (0, 1)", o.significance);
  }
  if (o.onSimulate !== undefined && typeof o.onSimulate !== "function") {
    fail(fn, "onSimulate", "a function (done, total) → void", o.onSimulate);
  }
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) {
    fail(fn, "signal", "an AbortSignal", o.signal);
  }
  return {
    nTest,
    nSamples,
    significance,
    ...(o.key !== undefined ? { key: o.key } : {}),
    ...(noise !== undefined ? { noise } : {}),
    ...(o.signal !== undefined ? { signal: o.signal } : {}),
    ...(o.onSimulate !== undefined ? { onSimulate: o.onSimulate } : {}),
  };
}
