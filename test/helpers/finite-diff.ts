/**
 * Finite-difference references for derivative tests, and the small deterministic value
 * generators they need. Central differences: each input element is moved by ±h
 * (h = eps · max(1, |x|)) and the step actually stored (after rounding to the input's dtype) is
 * the denominator, so float32 inputs on an exactly representable grid give exact steps.
 */
import type { DType, Array as NbiArray } from "../../src/index.js";
import { np } from "../../src/index.js";

type Floats = Float32Array | Float64Array;

/** Deterministic uniform [0, 1) numbers (mulberry32). */
export function uniforms(n: number, seed: number): number[] {
  let s = seed >>> 0;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out.push(((t ^ (t >>> 14)) >>> 0) / 4294967296);
  }
  return out;
}

export const sizeOf = (shape: readonly number[]) => shape.reduce((p, d) => p * d, 1);

/** An array of the given float dtype holding `values` (row-major). */
export function fromValues(values: readonly number[], shape: readonly number[], dtype: DType) {
  const data = dtype === "float64" ? Float64Array.from(values) : Float32Array.from(values);
  return np.fromTypedArray(data, [...shape], { dtype });
}

/** Uniform values in [lo, hi). */
export function rand(
  shape: readonly number[],
  seed: number,
  options?: { dtype?: DType; lo?: number; hi?: number },
): NbiArray {
  const lo = options?.lo ?? -1;
  const hi = options?.hi ?? 1;
  return fromValues(
    uniforms(sizeOf(shape), seed).map((u) => lo + (hi - lo) * u),
    shape,
    options?.dtype ?? "float64",
  );
}

/**
 * Values in [-1, 1] that are pairwise at least ~1/n apart (a shuffled, jittered grid), for ops
 * with kinks where values meet (max, min, pooling, abs): finite differences never cross a tie.
 */
export function distinct(
  shape: readonly number[],
  seed: number,
  dtype: DType = "float64",
): NbiArray {
  const n = sizeOf(shape);
  const u = uniforms(2 * n, seed);
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => u[a]! - u[b]!);
  const values = order.map((k, i) => -1 + (2 * (k + 0.5 + 0.3 * (u[n + i]! - 0.5))) / n);
  return fromValues(values, shape, dtype);
}

/** The values of a CPU array as plain numbers. */
export function values(x: NbiArray): number[] {
  return Array.from(x.dataSync() as Floats);
}

/** Replaces argument `k` of `args` with an array of the same shape and dtype holding `data`. */
function withArg(args: readonly NbiArray[], k: number, data: Floats): NbiArray[] {
  const out = [...args];
  out[k] = np.fromTypedArray(data, [...args[k]!.shape], { dtype: args[k]!.dtype });
  return out;
}

/**
 * d f / d args[argnum] by central differences, for a scalar-valued f (read with `.item()`).
 * Every argument should be float64 unless it sits on a grid where ±h is exact.
 */
export function numericalGrad(
  f: (...args: NbiArray[]) => NbiArray,
  args: readonly NbiArray[],
  argnum: number,
  options?: { eps?: number },
): Float64Array {
  const eps = options?.eps ?? 1e-6;
  const base = args[argnum]!.dataSync() as Floats;
  const out = new Float64Array(base.length);
  for (let i = 0; i < base.length; i++) {
    const h = eps * Math.max(1, Math.abs(base[i]!));
    const plus = base.slice();
    const minus = base.slice();
    plus[i] = base[i]! + h;
    minus[i] = base[i]! - h;
    const step = plus[i]! - minus[i]!;
    const fp = f(...withArg(args, argnum, plus)).item();
    const fm = f(...withArg(args, argnum, minus)).item();
    out[i] = (fp - fm) / step;
  }
  return out;
}

/**
 * The directional derivative (f(x + h·t) − f(x − h·t)) / 2h of an array-valued f, flattened;
 * arguments and tangents must be float64.
 */
export function numericalJvp(
  f: (...args: NbiArray[]) => NbiArray,
  args: readonly NbiArray[],
  tangents: readonly NbiArray[],
  options?: { eps?: number },
): Float64Array {
  const h = options?.eps ?? 1e-6;
  const shifted = (sign: number) =>
    args.map((x, k) => {
      const xs = x.dataSync() as Float64Array;
      const ts = tangents[k]!.dataSync() as Float64Array;
      return np.fromTypedArray(
        xs.map((v, i) => v + sign * h * ts[i]!),
        [...x.shape],
        { dtype: x.dtype },
      );
    });
  const fp = f(...shifted(1)).dataSync() as Float64Array;
  const fm = f(...shifted(-1)).dataSync() as Float64Array;
  return fp.map((v, i) => (v - fm[i]!) / (2 * h));
}

export interface Tolerance {
  rtol?: number;
  atol?: number;
}

/**
 * Asserts |actual − expected| <= atol + rtol·|expected| elementwise (and equal lengths), with a
 * message naming the worst element.
 */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: Tolerance,
  label: string,
): void {
  const rtol = tol.rtol ?? 1e-6;
  const atol = tol.atol ?? 1e-6;
  if (actual.length !== expected.length) {
    throw new Error(`${label}: expected ${expected.length} values, got ${actual.length}`);
  }
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    const excess = Math.abs(a - e) - (atol + rtol * Math.abs(e));
    if (!(excess <= 0) && (worst < 0 || !(excess <= worstExcess))) {
      worst = i;
      worstExcess = excess;
    }
  }
  if (worst >= 0) {
    const show = (xs: ArrayLike<number>) =>
      Array.from(xs)
        .slice(0, 12)
        .map((v) => v.toPrecision(8))
        .join(", ");
    throw new Error(
      `${label}: element ${worst} is ${actual[worst]} but expected ${expected[worst]} ` +
        `(rtol ${rtol}, atol ${atol})\n  actual:   [${show(actual)}${actual.length > 12 ? ", ..." : ""}]` +
        `\n  expected: [${show(expected)}${expected.length > 12 ? ", ..." : ""}]`,
    );
  }
}

/** Σ a_i b_i and Σ |a_i b_i| (the scale its rounding error is relative to). */
export function dotWithScale(a: ArrayLike<number>, b: ArrayLike<number>): [number, number] {
  if (a.length !== b.length) throw new Error(`dot: lengths ${a.length} and ${b.length} differ`);
  let s = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    s += a[i]! * b[i]!;
    scale += Math.abs(a[i]! * b[i]!);
  }
  return [s, scale];
}
