/**
 * The NumPy-like array API (`np`). Every function accepts arrays or JS numbers, broadcasts
 * with NumPy's rules and promotes dtypes (float64 > float32 > int32 > uint32 > bool; JS numbers
 * are weakly typed and take the other operand's dtype). Everything here is built from
 * primitives, so it all works under every transform.
 */
import { fail, NbiError } from "../errors.js";
import {
  Array,
  type ArrayLike,
  type Axes,
  installArrayMethods,
  type ReduceOptions,
} from "../trace/array.js";
import { defaultBackend } from "../trace/backend.js";
import { ConcreteArray, fromHost } from "../trace/concrete-array.js";
import { bind, bind1 } from "../trace/core.js";
import { checkDType, type DType, isFloat, promoteTypes, weakDType } from "../trace/dtype.js";
import { checkShape, normalizeAxes, normalizeAxis, showShape, sizeOf } from "../trace/shape.js";
import { scalar } from "./creation.js";
import { formatArray } from "./format.js";
import * as conv from "./primitives/conv.js";
import * as ew from "./primitives/elementwise.js";
import { takeP } from "./primitives/indexing.js";
import { matmul as matmulPrim } from "./primitives/matmul.js";
import { argmaxP, reduceMaxP, reduceMinP } from "./primitives/reduction.js";
import * as structural from "./primitives/structural.js";
import { padP, reduceSumP, sliceP, splitP } from "./primitives/structural.js";

export type { ArrayLike };

/**
 * Converts a JS number to an array; `like` gives the dtype a weakly typed number takes.
 *
 * @example
 * ```ts
 * np.asArray(3).dtype; // "float32"
 * np.asArray(3, "int32").dtype; // "int32"
 * ```
 */
export function asArray(x: ArrayLike, like?: DType): Array {
  if (x instanceof Array) return x;
  if (typeof x === "number") return scalar(x, like ? weakDType(x, like) : "float32");
  if (typeof x === "boolean") return scalar(x ? 1 : 0, "bool");
  return fail("np", "operand", "an array or a number", x);
}

/** Brings operands to one dtype: arrays promote; numbers follow the arrays (weak typing). */
function promote(...xs: ArrayLike[]): Array[] {
  const arrays = xs.filter((x): x is Array => x instanceof Array);
  let dtype: DType | null = null;
  for (const a of arrays) dtype = dtype === null ? a.dtype : promoteTypes(dtype, a.dtype);
  if (dtype === null) dtype = "float32";
  // A fractional number meeting integers promotes everything to float32.
  for (const x of xs) if (typeof x === "number") dtype = weakDType(x, dtype);
  const target = dtype;
  return xs.map((x) => {
    const a = asArray(x, target);
    return a.dtype === target ? a : ew.cast(a, target);
  });
}

function floating(x: ArrayLike): Array {
  const a = asArray(x);
  return isFloat(a.dtype) ? a : ew.cast(a, "float32");
}

// ---------------------------------------------------------------------------------------------
// Elementwise

/**
 * Elementwise `a + b`, broadcasting and promoting dtypes. On bool operands `add` is logical or
 * and `mul` logical and (as NumPy); `sub` is refused.
 *
 * @example
 * ```ts
 * np.add(np.array([1, 2]), 10).tolist(); // [11, 12]
 * np.add(np.ones([2, 1]), np.arange(3)).shape; // [2, 3]
 * ```
 */
export const add = (a: ArrayLike, b: ArrayLike) => {
  const [x, y] = promote(a, b) as [Array, Array];
  return x.dtype === "bool" ? ew.select(x, x, y) : ew.add(x, y);
};
/**
 * Elementwise `a - b`, broadcasting. Refused on bool operands (NumPy leaves it undefined).
 *
 * @example
 * ```ts
 * np.sub(np.array([5, 7]), 2).tolist(); // [3, 5]
 * ```
 */
export const sub = (a: ArrayLike, b: ArrayLike) => {
  const [x, y] = promote(a, b) as [Array, Array];
  if (x.dtype === "bool") {
    fail("sub", "operands", "numeric arrays (bool subtraction is undefined; use logicalXor)", x);
  }
  return ew.sub(x, y);
};
/**
 * Elementwise `a * b`, broadcasting (logical and on bool operands).
 *
 * @example
 * ```ts
 * np.mul(np.array([1, 2, 3]), np.array([[1], [10]])).tolist(); // [[1, 2, 3], [10, 20, 30]]
 * ```
 */
export const mul = (a: ArrayLike, b: ArrayLike) => {
  const [x, y] = promote(a, b) as [Array, Array];
  return x.dtype === "bool" ? ew.select(x, y, x) : ew.mul(x, y);
};
/**
 * True division: integer operands give float32 (as NumPy's `/`).
 *
 * @example
 * ```ts
 * np.div(np.arange(3), 2).tolist(); // [0, 0.5, 1]
 * ```
 */
export const div = (a: ArrayLike, b: ArrayLike) => {
  const [x, y] = promote(a, b) as [Array, Array];
  return isFloat(x.dtype) ? ew.div(x, y) : ew.div(ew.cast(x, "float32"), ew.cast(y, "float32"));
};
/**
 * Integer division rounding toward negative infinity (NumPy's `//`).
 *
 * @example
 * ```ts
 * np.floorDivide(np.array([7, -7], { dtype: "int32" }), 2).tolist(); // [3, -4]
 * ```
 */
export const floorDivide = (a: ArrayLike, b: ArrayLike) => {
  const [x, y] = promote(a, b) as [Array, Array];
  if (isFloat(x.dtype)) return ew.floor(ew.div(x, y));
  // float64 holds every int32 quotient exactly; WebGPU has no float64, so there the division is
  // in float32, exact while the operands stay below 2^24 in magnitude.
  const via = defaultBackend().name === "webgpu" ? "float32" : "float64";
  return ew.cast(ew.floor(ew.div(ew.cast(x, via), ew.cast(y, via))), x.dtype);
};
/**
 * Elementwise `a ** b`, broadcasting.
 *
 * @example
 * ```ts
 * np.pow(np.array([1, 2, 3]), 2).tolist(); // [1, 4, 9]
 * ```
 */
export const pow = (a: ArrayLike, b: ArrayLike) => {
  const [x, y] = promote(a, b) as [Array, Array];
  return x.dtype === "bool" ? ew.pow(ew.cast(x, "int32"), ew.cast(y, "int32")) : ew.pow(x, y);
};
/**
 * Elementwise larger of `a` and `b`; at a tie the derivative is split evenly between them.
 *
 * @example
 * ```ts
 * np.maximum(np.array([-1, 0, 2]), 0).tolist(); // [0, 0, 2]
 * ```
 */
export const maximum = (a: ArrayLike, b: ArrayLike) => ew.max(...(promote(a, b) as [Array, Array]));
/**
 * Elementwise smaller of `a` and `b`; at a tie the derivative is split evenly between them.
 *
 * @example
 * ```ts
 * np.minimum(np.array([-1, 0, 2]), 1).tolist(); // [-1, 0, 1]
 * ```
 */
export const minimum = (a: ArrayLike, b: ArrayLike) => ew.min(...(promote(a, b) as [Array, Array]));
/**
 * Elementwise `a == b` as a bool array.
 *
 * @example
 * ```ts
 * np.equal(np.arange(3), 1).tolist(); // [0, 1, 0] (bool)
 * ```
 */
export const equal = (a: ArrayLike, b: ArrayLike) => ew.equal(...(promote(a, b) as [Array, Array]));
/**
 * Elementwise `a != b` as a bool array.
 *
 * @example
 * ```ts
 * np.notEqual(np.arange(3), 1).tolist(); // [1, 0, 1] (bool)
 * ```
 */
export const notEqual = (a: ArrayLike, b: ArrayLike) =>
  ew.notEqual(...(promote(a, b) as [Array, Array]));
/**
 * Elementwise `a < b` as a bool array.
 *
 * @example
 * ```ts
 * np.less(np.arange(3), 1).tolist(); // [1, 0, 0] (bool)
 * ```
 */
export const less = (a: ArrayLike, b: ArrayLike) => ew.less(...(promote(a, b) as [Array, Array]));
/**
 * Elementwise `a <= b` as a bool array.
 *
 * @example
 * ```ts
 * np.lessEqual(np.arange(3), 1).tolist(); // [1, 1, 0] (bool)
 * ```
 */
export const lessEqual = (a: ArrayLike, b: ArrayLike) =>
  ew.lessEqual(...(promote(a, b) as [Array, Array]));
/**
 * Elementwise `a > b` as a bool array.
 *
 * @example
 * ```ts
 * np.greater(np.arange(3), 1).tolist(); // [0, 0, 1] (bool)
 * ```
 */
export const greater = (a: ArrayLike, b: ArrayLike) =>
  ew.greater(...(promote(a, b) as [Array, Array]));
/**
 * Elementwise `a >= b` as a bool array.
 *
 * @example
 * ```ts
 * np.greaterEqual(np.arange(3), 1).tolist(); // [0, 1, 1] (bool)
 * ```
 */
export const greaterEqual = (a: ArrayLike, b: ArrayLike) =>
  ew.greaterEqual(...(promote(a, b) as [Array, Array]));

/**
 * Elementwise negation.
 *
 * @example
 * ```ts
 * np.neg(np.array([1, -2])).tolist(); // [-1, 2]
 * ```
 */
export const neg = (x: ArrayLike) => ew.neg(asArray(x));
/**
 * Elementwise e^x (integer inputs compute in float32, as do the other transcendental functions).
 *
 * @example
 * ```ts
 * np.exp(np.array([0, 1])).tolist(); // [1, 2.7182817459106445]
 * ```
 */
export const exp = (x: ArrayLike) => ew.exp(floating(x));
/**
 * Elementwise natural logarithm (-Infinity at 0, NaN below).
 *
 * @example
 * ```ts
 * np.log(np.array([1, 0])).tolist(); // [0, -Infinity]
 * ```
 */
export const log = (x: ArrayLike) => ew.log(floating(x));
/**
 * Elementwise log(1 + x), accurate for small x where `log(1 + x)` loses it to rounding.
 *
 * @example
 * ```ts
 * np.log1p(1e-10).item(); // ≈ 1e-10 (np.log(np.add(1, 1e-10)) gives 0)
 * ```
 */
export const log1p = (x: ArrayLike) => ew.log1p(floating(x));
/**
 * Elementwise e^x - 1, accurate for small x where `exp(x) - 1` loses it to rounding.
 *
 * @example
 * ```ts
 * np.expm1(1e-10).item(); // ≈ 1e-10
 * ```
 */
export const expm1 = (x: ArrayLike) => ew.expm1(floating(x));
/**
 * Elementwise sine (radians).
 *
 * @example
 * ```ts
 * np.sin(np.array([0, Math.PI / 2])).tolist(); // [0, 1]
 * ```
 */
export const sin = (x: ArrayLike) => ew.sin(floating(x));
/**
 * Elementwise cosine (radians).
 *
 * @example
 * ```ts
 * np.cos(np.array([0, Math.PI])).tolist(); // [1, -1]
 * ```
 */
export const cos = (x: ArrayLike) => ew.cos(floating(x));
/**
 * Elementwise tangent (radians), as sin / cos.
 *
 * @example
 * ```ts
 * np.tan(0).item(); // 0
 * ```
 */
export const tan = (x: ArrayLike) => div(sin(x), cos(x));
/**
 * Elementwise hyperbolic tangent.
 *
 * @example
 * ```ts
 * np.tanh(np.array([-Infinity, 0, Infinity])).tolist(); // [-1, 0, 1]
 * ```
 */
export const tanh = (x: ArrayLike) => ew.tanh(floating(x));
/**
 * Elementwise square root (NaN below 0).
 *
 * @example
 * ```ts
 * np.sqrt(np.array([4, 9])).tolist(); // [2, 3]
 * ```
 */
export const sqrt = (x: ArrayLike) => ew.sqrt(floating(x));
/**
 * Elementwise absolute value (keeps the dtype).
 *
 * @example
 * ```ts
 * np.abs(np.array([-2, 3])).tolist(); // [2, 3]
 * ```
 */
export const abs = (x: ArrayLike) => ew.abs(asArray(x));
/**
 * Elementwise sign: -1, 0 or 1 (keeps the dtype).
 *
 * @example
 * ```ts
 * np.sign(np.array([-2, 0, 3])).tolist(); // [-1, 0, 1]
 * ```
 */
export const sign = (x: ArrayLike) => ew.sign(asArray(x));
/**
 * Elementwise rounding toward negative infinity.
 *
 * @example
 * ```ts
 * np.floor(np.array([1.5, -1.5])).tolist(); // [1, -2]
 * ```
 */
export const floor = (x: ArrayLike) => ew.floor(asArray(x));
/**
 * Elementwise rounding toward positive infinity.
 *
 * @example
 * ```ts
 * np.ceil(np.array([1.5, -1.5])).tolist(); // [2, -1]
 * ```
 */
export const ceil = (x: ArrayLike) => ew.neg(ew.floor(ew.neg(asArray(x))));
/**
 * Elementwise `x * x`.
 *
 * @example
 * ```ts
 * np.square(np.array([2, -3])).tolist(); // [4, 9]
 * ```
 */
export const square = (x: ArrayLike) => {
  const a = asArray(x);
  return ew.mul(a, a);
};
/**
 * Elementwise 1 / x (integers give float32).
 *
 * @example
 * ```ts
 * np.reciprocal(np.array([2, 4])).tolist(); // [0.5, 0.25]
 * ```
 */
export const reciprocal = (x: ArrayLike) => div(1, floating(x));

/**
 * Picks `x` where `condition` is true (nonzero) and `y` elsewhere, broadcasting all three. The
 * gradient reaches only the branch that was picked.
 *
 * @example
 * ```ts
 * const x = np.array([-1, 2, -3]);
 * np.where(np.greater(x, 0), x, 0).tolist(); // [0, 2, 0]
 * ```
 */
export function where(condition: ArrayLike, x: ArrayLike, y: ArrayLike): Array {
  let c = asArray(condition, "bool");
  if (c.dtype !== "bool") c = ew.notEqual(c, asArray(0, c.dtype));
  const [a, b] = promote(x, y) as [Array, Array];
  return ew.select(c, a, b);
}

/**
 * Elementwise logical not (nonzero counts as true), as a bool array.
 *
 * @example
 * ```ts
 * np.logicalNot(np.array([true, false])).tolist(); // [0, 1] (bool)
 * ```
 */
export const logicalNot = (x: ArrayLike) => ew.equal(asBool(x), scalar(0, "bool"));
/**
 * Elementwise logical and (nonzero counts as true), as a bool array.
 *
 * @example
 * ```ts
 * const a = np.array([true, true, false]);
 * np.logicalAnd(a, np.array([true, false, false])).tolist(); // [1, 0, 0]
 * ```
 */
export const logicalAnd = (a: ArrayLike, b: ArrayLike) =>
  ew.select(asBool(a), asBool(b), scalar(0, "bool"));
/**
 * Elementwise logical or (nonzero counts as true), as a bool array.
 *
 * @example
 * ```ts
 * const a = np.array([true, true, false]);
 * np.logicalOr(a, np.array([true, false, false])).tolist(); // [1, 1, 0]
 * ```
 */
export const logicalOr = (a: ArrayLike, b: ArrayLike) =>
  ew.select(asBool(a), scalar(1, "bool"), asBool(b));
function asBool(x: ArrayLike): Array {
  const a = asArray(x, "bool");
  return a.dtype === "bool" ? a : ew.notEqual(a, asArray(0, a.dtype));
}
/**
 * Elementwise test for NaN, as a bool array.
 *
 * @example
 * ```ts
 * np.isnan(np.array([1, NaN])).tolist(); // [0, 1] (bool)
 * ```
 */
export const isnan = (x: ArrayLike) => {
  const a = asArray(x);
  return ew.notEqual(a, a);
};
/**
 * Elementwise test for a finite value (not NaN or ±Infinity), as a bool array.
 *
 * @example
 * ```ts
 * np.isfinite(np.array([1, Infinity, NaN])).tolist(); // [1, 0, 0] (bool)
 * ```
 */
export const isfinite = (x: ArrayLike) => {
  const a = floating(x);
  return ew.equal(ew.sub(a, a), asArray(0, a.dtype));
};

/**
 * Casts to `dtype` (floats to integers round toward zero, as NumPy).
 *
 * @example
 * ```ts
 * np.astype(np.array([1.7, -1.7]), "int32").tolist(); // [1, -1]
 * np.astype(np.arange(3), "float64").dtype; // "float64"
 * ```
 */
export function astype(x: ArrayLike, dtype: DType): Array {
  return ew.cast(asArray(x), checkDType("astype", "dtype", dtype));
}

/**
 * Identity on values with a zero derivative: transforms treat the result as a constant. For
 * pytrees, use the top-level `stopGradient`.
 *
 * @example
 * ```ts
 * const f = (x: Array) => np.mul(x, np.stopGradient(x));
 * grad(f)(np.array(3)).item(); // 3 (not 6)
 * ```
 */
export function stopGradient(x: ArrayLike): Array {
  return bind1(ew.stopGradientP, [asArray(x)], {});
}

// ---------------------------------------------------------------------------------------------
// Reductions

function reduceWith(
  name: string,
  prim: typeof reduceSumP,
  x: ArrayLike,
  options: ReduceOptions | undefined,
): Array {
  const a = asArray(x);
  const axes = normalizeAxes(name, options?.axis, a.ndim);
  const input = prim === reduceSumP && a.dtype === "bool" ? ew.cast(a, "int32") : a;
  const out = axes.length === 0 ? input : bind1(prim, [input], { axes });
  return options?.keepdims ? structural.reshape(out, keepShape(a.shape, axes)) : out;
}

function keepShape(shape: readonly number[], axes: readonly number[]): number[] {
  return shape.map((d, i) => (axes.includes(i) ? 1 : d));
}

/**
 * Sum over all axes, or over `options.axis` (bool counts as int32).
 *
 * @example
 * ```ts
 * const x = np.array([[1, 2], [3, 4]]);
 * np.sum(x).item(); // 10
 * np.sum(x, { axis: 1 }).tolist(); // [3, 7]
 * ```
 */
export const sum = (x: ArrayLike, options?: ReduceOptions) =>
  reduceWith("sum", reduceSumP, x, options);
/**
 * Maximum over all axes, or over `options.axis`.
 *
 * @example
 * ```ts
 * const x = np.array([[1, 5], [3, 4]]);
 * np.max(x).item(); // 5
 * np.max(x, { axis: 0, keepdims: true }).tolist(); // [[3, 5]]
 * ```
 */
export const max = (x: ArrayLike, options?: ReduceOptions) =>
  reduceWith("max", reduceMaxP, x, options);
/**
 * Minimum over all axes, or over `options.axis`.
 *
 * @example
 * ```ts
 * np.min(np.array([[1, 5], [3, 4]]), { axis: 1 }).tolist(); // [1, 3]
 * ```
 */
export const min = (x: ArrayLike, options?: ReduceOptions) =>
  reduceWith("min", reduceMinP, x, options);

/**
 * Arithmetic mean over all axes, or over `options.axis` (integers give float32).
 *
 * @example
 * ```ts
 * const x = np.array([[1, 2], [3, 4]]);
 * np.mean(x).item(); // 2.5
 * np.mean(x, { axis: 0 }).tolist(); // [2, 3]
 * ```
 */
export function mean(x: ArrayLike, options?: ReduceOptions): Array {
  const a = floating(x);
  const axes = normalizeAxes("mean", options?.axis, a.ndim);
  const count = sizeOf(axes.map((i) => a.shape[i]!));
  return div(sum(a, options), count);
}

/**
 * Variance with `ddof` delta degrees of freedom (0 by default, as NumPy).
 *
 * @example
 * ```ts
 * np.variance(np.array([1, 2, 3, 4])).item(); // 1.25
 * np.variance(np.array([1, 3]), { ddof: 1 }).item(); // 2
 * ```
 */
export function variance(x: ArrayLike, options?: ReduceOptions & { ddof?: number }): Array {
  const a = floating(x);
  const axes = normalizeAxes("var", options?.axis, a.ndim);
  const count = sizeOf(axes.map((i) => a.shape[i]!));
  const centered = sub(a, mean(a, { axis: axes, keepdims: true }));
  return div(
    sum(square(centered), { axis: axes, keepdims: options?.keepdims }),
    count - (options?.ddof ?? 0),
  );
}
export { variance as var };

/**
 * Standard deviation: the square root of `variance`, with the same options.
 *
 * @example
 * ```ts
 * np.std(np.array([1, 3])).item(); // 1
 * ```
 */
export function std(x: ArrayLike, options?: ReduceOptions & { ddof?: number }): Array {
  return sqrt(variance(x, options));
}

/**
 * Product over all axes, or over `options.axis`; differentiable, and exactly 0 when a factor is.
 *
 * @example
 * ```ts
 * np.prod(np.array([[1, 2], [3, -4]]), { axis: 1 }).tolist(); // ≈ [2, -12]
 * ```
 */
export function prod(x: ArrayLike, options?: ReduceOptions): Array {
  // Products via a scan-free route: sign and log-magnitude, exact for zeros.
  const a = floating(x);
  const negatives = sum(astype(less(a, 0), "int32"), options);
  const zeroCount = sum(astype(equal(a, 0), "int32"), options);
  const magnitude = exp(sum(log(where(equal(a, 0), 1, abs(a))), options));
  const signed = where(
    equal(floorDivide(negatives, 2).mul(2), negatives),
    magnitude,
    neg(magnitude),
  );
  return where(greater(zeroCount, 0), 0, signed);
}

function argReduce(name: string, x: Array, options?: { axis?: number; keepdims?: boolean }): Array {
  let a = x;
  let axis: number;
  if (options?.axis === undefined || options.axis === null) {
    a = structural.reshape(a, [a.size]);
    axis = 0;
  } else axis = normalizeAxis(name, options.axis, a.ndim);
  const out = bind1(argmaxP, [a], { axis });
  if (!options?.keepdims) return out;
  return structural.reshape(
    out,
    options.axis === undefined ? x.shape.map(() => 1) : keepShape(x.shape, [axis]),
  );
}

/**
 * Index (int32) of the largest value along `options.axis`, or in the flattened array when no
 * axis is given. Ties go to the first.
 *
 * @example
 * ```ts
 * const x = np.array([[1, 9, 3], [7, 2, 7]]);
 * np.argmax(x).item(); // 1
 * np.argmax(x, { axis: 1 }).tolist(); // [1, 0]
 * ```
 */
export const argmax = (x: ArrayLike, options?: { axis?: number; keepdims?: boolean }) =>
  argReduce("argmax", asArray(x), options);
/**
 * Index (int32) of the smallest value along `options.axis`, or in the flattened array when no
 * axis is given. Ties go to the first.
 *
 * @example
 * ```ts
 * np.argmin(np.array([[1, 9, 3], [7, 2, 2]]), { axis: 1 }).tolist(); // [0, 1]
 * ```
 */
export const argmin = (x: ArrayLike, options?: { axis?: number; keepdims?: boolean }) => {
  const a = asArray(x);
  // Reverse the order without overflow: logical not for bool, bitwise not (-x - 1, wrapping)
  // for integers, negation for floats.
  const reversed =
    a.dtype === "bool"
      ? logicalNot(a)
      : isFloat(a.dtype)
        ? neg(a)
        : ew.sub(ew.neg(a), asArray(1, a.dtype));
  return argReduce("argmin", reversed, options);
};

/**
 * Whether every element (along `options.axis`) is true (nonzero), as a bool array.
 *
 * @example
 * ```ts
 * np.all(np.array([[1, 0], [1, 1]]), { axis: 1 }).tolist(); // [0, 1] (bool)
 * ```
 */
export function all(x: ArrayLike, options?: ReduceOptions): Array {
  return equal(sum(astype(logicalNot(x), "int32"), options), 0);
}
/**
 * Whether some element (along `options.axis`) is true (nonzero), as a bool array.
 *
 * @example
 * ```ts
 * np.any(np.array([[0, 0], [1, 0]]), { axis: 1 }).tolist(); // [0, 1] (bool)
 * ```
 */
export function any(x: ArrayLike, options?: ReduceOptions): Array {
  return greater(sum(astype(asBool(x), "int32"), options), 0);
}

/**
 * log(sum(exp(x))) without overflow: the maximum is factored out (and held constant).
 *
 * @example
 * ```ts
 * np.logsumexp(np.array([1000, 1000])).item(); // ≈ 1000.693 (exp(1000) alone overflows)
 * ```
 */
export function logsumexp(x: ArrayLike, options?: ReduceOptions): Array {
  const a = floating(x);
  const axes = normalizeAxes("logsumexp", options?.axis, a.ndim);
  const m = stopGradient(max(a, { axis: axes, keepdims: true }));
  const safe = where(isfinite(m), m, 0);
  const s = log(sum(exp(sub(a, safe)), { axis: axes, keepdims: true }));
  const out = add(s, safe);
  return options?.keepdims
    ? out
    : structural.reshape(
        out,
        out.shape.filter((_, i) => !axes.includes(i)),
      );
}

// ---------------------------------------------------------------------------------------------
// Shapes

/**
 * The same elements (in row-major order) in a new shape; one entry may be -1, inferred from
 * the size.
 *
 * @example
 * ```ts
 * np.reshape(np.arange(6), [2, -1]).tolist(); // [[0, 1, 2], [3, 4, 5]]
 * ```
 */
export function reshape(x: ArrayLike, shape: readonly number[]): Array {
  const a = asArray(x);
  const unknown = shape.filter((d) => d === -1).length;
  if (unknown > 1 || shape.some((d) => !Number.isInteger(d) || d < -1)) {
    fail("reshape", "shape", "non-negative integers with at most one -1", shape);
  }
  let resolved = [...shape];
  if (unknown === 1) {
    const known = sizeOf(shape.filter((d) => d !== -1));
    if (known === 0 || a.size % known !== 0) {
      throw new NbiError(
        `reshape: shape ${showShape(shape)} cannot hold the ${a.size} elements of ${showShape(a.shape)}`,
      );
    }
    resolved = shape.map((d) => (d === -1 ? a.size / known : d));
  }
  return structural.reshape(a, resolved);
}

/**
 * Flattens to one axis (row-major order).
 *
 * @example
 * ```ts
 * np.ravel(np.ones([2, 3])).shape; // [6]
 * ```
 */
export function ravel(x: ArrayLike): Array {
  const a = asArray(x);
  return structural.reshape(a, [a.size]);
}

/**
 * Permutes the axes: axis `i` of the result is axis `axes[i]` of `x` (all axes reversed by
 * default).
 *
 * @example
 * ```ts
 * np.transpose(np.ones([2, 3, 4]), [1, 0, 2]).shape; // [3, 2, 4]
 * np.transpose(np.ones([2, 3])).shape; // [3, 2]
 * ```
 */
export function transpose(x: ArrayLike, axes?: readonly number[]): Array {
  const a = asArray(x);
  const perm = axes
    ? axes.map((ax) => normalizeAxis("transpose", ax, a.ndim, "axes"))
    : a.shape.map((_, i) => a.ndim - 1 - i);
  return structural.transpose(a, perm);
}

/**
 * Moves axis `source` to position `destination`, keeping the order of the other axes.
 *
 * @example
 * ```ts
 * np.moveaxis(np.ones([2, 3, 4]), 0, -1).shape; // [3, 4, 2]
 * ```
 */
export function moveaxis(x: ArrayLike, source: number, destination: number): Array {
  const a = asArray(x);
  return structural.moveAxis(
    a,
    normalizeAxis("moveaxis", source, a.ndim, "source"),
    normalizeAxis("moveaxis", destination, a.ndim, "destination"),
  );
}

/**
 * Exchanges two axes.
 *
 * @example
 * ```ts
 * np.swapaxes(np.ones([2, 3, 4]), 0, 2).shape; // [4, 3, 2]
 * ```
 */
export function swapaxes(x: ArrayLike, axis1: number, axis2: number): Array {
  const a = asArray(x);
  const perm = a.shape.map((_, i) => i);
  const i = normalizeAxis("swapaxes", axis1, a.ndim, "axis1");
  const j = normalizeAxis("swapaxes", axis2, a.ndim, "axis2");
  [perm[i], perm[j]] = [perm[j]!, perm[i]!];
  return structural.transpose(a, perm);
}

/**
 * Inserts an axis of size 1 at position `axis` of the result (negative counts from its end).
 *
 * @example
 * ```ts
 * np.expandDims(np.ones([3]), 0).shape; // [1, 3]
 * np.expandDims(np.ones([3]), -1).shape; // [3, 1]
 * ```
 */
export function expandDims(x: ArrayLike, axis: number): Array {
  const a = asArray(x);
  const ax = normalizeAxis("expandDims", axis, a.ndim + 1);
  const shape = [...a.shape];
  shape.splice(ax, 0, 1);
  return structural.reshape(a, shape);
}

/**
 * Removes axes of size 1: every one, or those named by `axis` (which must have size 1).
 *
 * @example
 * ```ts
 * np.squeeze(np.ones([1, 3, 1])).shape; // [3]
 * np.squeeze(np.ones([1, 3, 1]), 0).shape; // [3, 1]
 * ```
 */
export function squeeze(x: ArrayLike, axis?: Axes): Array {
  const a = asArray(x);
  const axes =
    axis === undefined || axis === null
      ? a.shape.flatMap((d, i) => (d === 1 ? [i] : []))
      : normalizeAxes("squeeze", axis, a.ndim);
  for (const ax of axes) {
    if (a.shape[ax] !== 1)
      fail("squeeze", "axis", `an axis of size 1 in ${showShape(a.shape)}`, ax);
  }
  return structural.reshape(
    a,
    a.shape.filter((_, i) => !axes.includes(i)),
  );
}

/**
 * Broadcasts to `shape` with NumPy's rules: size-1 axes stretch and leading axes are added.
 *
 * @example
 * ```ts
 * np.broadcastTo(np.array([1, 2, 3]), [2, 3]).tolist(); // [[1, 2, 3], [1, 2, 3]]
 * ```
 */
export function broadcastTo(x: ArrayLike, shape: readonly number[]): Array {
  return structural.broadcastTo(asArray(x), checkShape("broadcastTo", "shape", shape));
}

/**
 * Broadcasts every operand to their common shape.
 *
 * @example
 * ```ts
 * const [a, b] = np.broadcastArrays(np.ones([3, 1]), np.ones([4]));
 * a.shape; // [3, 4]
 * b.shape; // [3, 4]
 * ```
 */
export function broadcastArrays(...xs: ArrayLike[]): Array[] {
  const arrays = xs.map((x) => asArray(x));
  const shape = arrays.reduce<number[]>((s, a) => rulesBroadcastShapes(s, a.shape), []);
  return arrays.map((a) => structural.broadcastTo(a, shape));
}
function rulesBroadcastShapes(a: readonly number[], b: readonly number[]): number[] {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const x = a[a.length - rank + i] ?? 1;
    const y = b[b.length - rank + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) {
      throw new NbiError(
        `broadcastArrays: shapes ${showShape(a)} and ${showShape(b)} expected compatible`,
      );
    }
    out.push(x === 1 ? y : x);
  }
  return out;
}

/**
 * A contiguous slice: one `[start, stop]` pair (or null for the whole axis) per leading axis;
 * negative bounds count from the end, as in NumPy.
 *
 * @example
 * ```ts
 * const x = np.arange(10).reshape([2, 5]);
 * np.slice(x, null, [1, -1]).tolist(); // [[1, 2, 3], [6, 7, 8]]
 * np.slice(x, [1]).shape; // [1, 5]
 * ```
 */
export function slice(x: ArrayLike, ...ranges: ([number, number] | [number] | null)[]): Array {
  const a = asArray(x);
  if (ranges.length > a.ndim) fail("slice", "ranges", `at most ${a.ndim} ranges`, ranges.length);
  const starts = a.shape.map(() => 0);
  const limits = [...a.shape];
  ranges.forEach((r, i) => {
    if (r === null) return;
    const n = a.shape[i]!;
    const norm = (v: number) => Math.min(n, Math.max(0, v < 0 ? v + n : v));
    starts[i] = norm(r[0]);
    limits[i] = Math.max(starts[i]!, r.length > 1 ? norm(r[1]!) : n);
  });
  return bind1(sliceP, [a], { starts, limits });
}

/**
 * `x[i]` along an axis (default the first), removing that axis.
 *
 * @example
 * ```ts
 * const x = np.array([[1, 2], [3, 4]]);
 * np.index(x, 1).tolist(); // [3, 4]
 * np.index(x, -1, 1).tolist(); // [2, 4]
 * ```
 */
export function index(x: ArrayLike, i: number, axis = 0): Array {
  const a = asArray(x);
  const ax = normalizeAxis("index", axis, a.ndim);
  const n = a.shape[ax]!;
  if (!Number.isInteger(i) || i < -n || i >= n)
    fail("index", "i", `an integer in [${-n}, ${n - 1}]`, i);
  const k = i < 0 ? i + n : i;
  const starts = a.shape.map(() => 0);
  const limits = [...a.shape];
  starts[ax] = k;
  limits[ax] = k + 1;
  return structural.reshape(
    bind1(sliceP, [a], { starts, limits }),
    a.shape.filter((_, j) => j !== ax),
  );
}

/**
 * Joins arrays along an existing axis (default 0); dtypes promote.
 *
 * @example
 * ```ts
 * np.concatenate([np.zeros([2, 3]), np.ones([1, 3])]).shape; // [3, 3]
 * ```
 */
export function concatenate(xs: readonly ArrayLike[], axis = 0): Array {
  if (xs.length === 0) fail("concatenate", "arrays", "at least one array", xs);
  const arrays = promote(...xs);
  const ax = normalizeAxis("concatenate", axis, arrays[0]!.ndim);
  return structural.concatenate(arrays, ax);
}

/**
 * Joins arrays of one shape along a new axis (default 0); dtypes promote.
 *
 * @example
 * ```ts
 * np.stack([np.zeros([3]), np.ones([3])]).shape; // [2, 3]
 * np.stack([np.zeros([3]), np.ones([3])], 1).shape; // [3, 2]
 * ```
 */
export function stack(xs: readonly ArrayLike[], axis = 0): Array {
  if (xs.length === 0) fail("stack", "arrays", "at least one array", xs);
  const arrays = promote(...xs);
  const first = arrays[0]!.shape;
  arrays.forEach((a, i) => {
    if (a.ndim !== first.length || a.shape.some((d, k) => d !== first[k])) {
      throw new NbiError(
        `stack: arrays expected one common shape, got ${showShape(first)} (array 0) and ${showShape(a.shape)} (array ${i})`,
      );
    }
  });
  const ax = normalizeAxis("stack", axis, arrays[0]!.ndim + 1);
  return structural.concatenate(
    arrays.map((a) => expandDims(a, ax)),
    ax,
  );
}

/**
 * Splits into `sections` equal parts, or at the given indices, along an axis.
 *
 * @example
 * ```ts
 * const [a, b] = np.split(np.arange(6), 2);
 * b.tolist(); // [3, 4, 5]
 * np.split(np.arange(6), [1, 4]).map((p) => p.size); // [1, 3, 2]
 * ```
 */
export function split(x: ArrayLike, sections: number | readonly number[], axis = 0): Array[] {
  const a = asArray(x);
  const ax = normalizeAxis("split", axis, a.ndim);
  const n = a.shape[ax]!;
  let bounds: number[];
  if (typeof sections === "number") {
    if (!Number.isInteger(sections) || sections <= 0 || n % sections !== 0) {
      fail("split", "sections", `a positive divisor of ${n}`, sections);
    }
    bounds = globalThis.Array.from({ length: sections - 1 }, (_, i) => ((i + 1) * n) / sections);
  } else bounds = [...sections];
  const edges = [0, ...bounds, n];
  // NumPy's piece i is x[edges[i]:edges[i+1]] along the axis, clamped: bounds past the end or
  // below an earlier one give empty pieces.
  const spans = edges.slice(1).map((end, i) => {
    const start = Math.min(edges[i]!, n);
    return { start, stop: Math.max(start, Math.min(end, n)) };
  });
  // Pieces that follow one another (nondecreasing bounds) are one split; a bound below an
  // earlier one makes the next piece repeat elements, so slices then.
  if (spans.every((s, i) => s.start === (i === 0 ? 0 : spans[i - 1]!.stop))) {
    return bind(splitP, [a], { axis: ax, sizes: spans.map((s) => s.stop - s.start) });
  }
  return spans.map(({ start, stop }) => {
    const starts = a.shape.map(() => 0);
    const limits = [...a.shape];
    starts[ax] = start;
    limits[ax] = stop;
    return bind1(sliceP, [a], { starts, limits });
  });
}

/**
 * Pads with a constant (`options.value`, default 0): `widths` is one number for every side of
 * every axis, or one `[before, after]` pair per axis.
 *
 * @example
 * ```ts
 * np.pad(np.array([1, 2]), 1).tolist(); // [0, 1, 2, 0]
 * np.pad(np.ones([2, 2]), [[0, 0], [1, 2]], { value: -1 }).shape; // [2, 5]
 * ```
 */
export function pad(
  x: ArrayLike,
  widths: number | readonly (readonly [number, number])[],
  options?: { value?: number },
): Array {
  const a = asArray(x);
  const pairs = typeof widths === "number" ? a.shape.map(() => [widths, widths] as const) : widths;
  if (pairs.length !== a.ndim) fail("pad", "widths", `${a.ndim} [before, after] pairs`, widths);
  return bind1(padP, [a], {
    lo: pairs.map((p) => p[0]),
    hi: pairs.map((p) => p[1]),
    value: options?.value ?? 0,
  });
}

function indexArray(fn: string, indices: ArrayLike | readonly number[]): Array {
  const idx = globalThis.Array.isArray(indices)
    ? scalarsToInt(indices as readonly number[])
    : asArray(indices as ArrayLike, "int32");
  if (idx.dtype !== "int32") {
    if (idx.dtype === "uint32" || idx.dtype === "bool") return ew.cast(idx, "int32");
    fail(fn, "indices", "an integer array", idx);
  }
  return idx;
}
function scalarsToInt(values: readonly number[]): Array {
  return fromInts(Int32Array.from(values));
}
function fromInts(data: Int32Array): Array {
  return fromHost(data, [data.length], "int32", defaultBackend());
}

/**
 * NumPy `take`: picks entries along an axis (flattened when none). Negative indices wrap once;
 * out-of-range indices are clamped (as JAX does, since GPU kernels cannot throw).
 *
 * @example
 * ```ts
 * np.take(np.array([10, 20, 30]), [2, 0, -1]).tolist(); // [30, 10, 30]
 * np.take(np.eye(3), [0, 0], 1).shape; // [3, 2]
 * ```
 */
export function take(x: ArrayLike, indices: ArrayLike | readonly number[], axis?: number): Array {
  const a = asArray(x);
  const idx = indexArray("take", indices);
  if (axis === undefined) return bind1(takeP, [ravel(a), idx], { axis: 0 });
  return bind1(takeP, [a, idx], { axis: normalizeAxis("take", axis, a.ndim) });
}

/**
 * NumPy `take_along_axis`: indices of the same rank as x select along one axis.
 *
 * @example
 * ```ts
 * const x = np.array([[10, 30, 20], [5, 4, 6]]);
 * const i = np.argmax(x, { axis: 1, keepdims: true });
 * np.takeAlongAxis(x, i, 1).tolist(); // [[30], [6]]
 * ```
 */
export function takeAlongAxis(x: ArrayLike, indices: ArrayLike, axis: number): Array {
  const a = asArray(x);
  const idx = indexArray("takeAlongAxis", indices);
  const ax = normalizeAxis("takeAlongAxis", axis, a.ndim);
  if (idx.ndim !== a.ndim) {
    fail("takeAlongAxis", "indices", `rank ${a.ndim} like x`, idx);
  }
  // Move the axis last, flatten, and offset each row's indices into the flat array.
  const xm = structural.moveAxis(a, ax, a.ndim - 1);
  const im = structural.moveAxis(idx, ax, a.ndim - 1);
  const n = xm.shape[xm.ndim - 1]!;
  const lead = rulesBroadcastShapes(xm.shape.slice(0, -1), im.shape.slice(0, -1));
  const xb = structural.broadcastTo(xm, [...lead, n]);
  const ib = structural.broadcastTo(im, [...lead, im.shape[im.ndim - 1]!]);
  const rows = sizeOf(lead);
  const wrapped = where(less(ib, 0), add(ib, n), ib);
  const clamped = minimum(maximum(wrapped, 0), Math.max(n - 1, 0));
  const offsets = structural.reshape(
    mul(fromInts(Int32Array.from({ length: rows }, (_, i) => i)), n),
    [...lead, 1],
  );
  const flat = bind1(takeP, [structural.reshape(xb, [rows * n]), add(clamped, offsets)], {
    axis: 0,
  });
  return structural.moveAxis(flat, a.ndim - 1, ax);
}

// ---------------------------------------------------------------------------------------------
// Linear algebra

/**
 * NumPy `matmul`: vectors are promoted to matrices and the added axis removed afterwards.
 *
 * @example
 * ```ts
 * np.matmul(np.ones([8, 2, 3]), np.ones([3, 4])).shape; // [8, 2, 4]
 * np.matmul(np.eye(2), np.array([5, 6])).tolist(); // [5, 6]
 * ```
 */
export function matmul(x: ArrayLike, y: ArrayLike): Array {
  let [a, b] = promote(x, y) as [Array, Array];
  if (!isFloat(a.dtype)) {
    a = ew.cast(a, "float32");
    b = ew.cast(b, "float32");
  }
  if (a.ndim === 0 || b.ndim === 0) fail("matmul", "operands", "rank >= 1", a.ndim === 0 ? a : b);
  const vecA = a.ndim === 1;
  const vecB = b.ndim === 1;
  if (vecA) a = structural.reshape(a, [1, a.shape[0]!]);
  if (vecB) b = structural.reshape(b, [b.shape[0]!, 1]);
  let out: Array;
  if (b.ndim === 2 && a.ndim > 2) {
    // Fold a's batch into rows: one large product (and a 2-D weight gradient without a batch sum).
    const k = a.shape[a.ndim - 1]!;
    const rows = structural.reshape(a, [sizeOf(a.shape.slice(0, -1)), k]);
    const flat = matmulPrim(rows, b);
    out = structural.reshape(flat, [...a.shape.slice(0, -1), b.shape[1]!]);
  } else out = matmulPrim(a, b);
  if (vecA) out = structural.reshape(out, [...out.shape.slice(0, -2), out.shape[out.ndim - 1]!]);
  if (vecB) out = structural.reshape(out, out.shape.slice(0, -1));
  return out;
}

/**
 * NumPy `dot`: the elementwise product when either operand is a scalar, `matmul` otherwise
 * (so the inner product of two vectors).
 *
 * @example
 * ```ts
 * np.dot(np.array([1, 2]), np.array([3, 4])).item(); // 11
 * ```
 */
export function dot(x: ArrayLike, y: ArrayLike): Array {
  const a = asArray(x);
  const b = asArray(y);
  if (a.ndim === 0 || b.ndim === 0) return mul(a, b);
  return matmul(a, b);
}

/**
 * Outer product of two vectors (inputs are flattened): `out[i, j] = x[i] * y[j]`.
 *
 * @example
 * ```ts
 * np.outer(np.array([1, 2]), np.array([1, 10, 100])).tolist(); // [[1, 10, 100], [2, 20, 200]]
 * ```
 */
export function outer(x: ArrayLike, y: ArrayLike): Array {
  return mul(structural.reshape(ravel(x), [asArray(x).size, 1]), ravel(y));
}

/**
 * Vector or Frobenius norm (ord 2), or the ord-p norm over the given axes.
 *
 * @example
 * ```ts
 * np.norm(np.array([3, 4])).item(); // 5
 * np.norm(np.array([3, -4]), { ord: 1 }).item(); // 7
 * ```
 */
export function norm(x: ArrayLike, options?: ReduceOptions & { ord?: number }): Array {
  const a = floating(x);
  const ord = options?.ord ?? 2;
  const opts = { axis: options?.axis, keepdims: options?.keepdims };
  if (ord === 2) return sqrt(sum(square(a), opts));
  if (ord === 1) return sum(abs(a), opts);
  if (ord === Number.POSITIVE_INFINITY) return max(abs(a), opts);
  return pow(sum(pow(abs(a), ord), opts), 1 / ord);
}

/**
 * Upper triangle (k-th diagonal and above) of the last two axes.
 *
 * @example
 * ```ts
 * np.triu(np.ones([3, 3])).tolist(); // [[1, 1, 1], [0, 1, 1], [0, 0, 1]]
 * ```
 */
export function triu(x: ArrayLike, k = 0): Array {
  return triangle(asArray(x), k, true);
}
/**
 * Lower triangle (k-th diagonal and below) of the last two axes.
 *
 * @example
 * ```ts
 * np.tril(np.ones([3, 3]), -1).tolist(); // [[0, 0, 0], [1, 0, 0], [1, 1, 0]]
 * ```
 */
export function tril(x: ArrayLike, k = 0): Array {
  return triangle(asArray(x), k, false);
}
function triangle(a: Array, k: number, upper: boolean): Array {
  if (a.ndim < 2) fail(upper ? "triu" : "tril", "x", "rank >= 2", a);
  const [n, m] = a.shape.slice(-2) as [number, number];
  const rowIdx = structural.reshape(fromInts(Int32Array.from({ length: n }, (_, i) => i)), [n, 1]);
  const colIdx = fromInts(Int32Array.from({ length: m }, (_, j) => j));
  const diff = sub(colIdx, rowIdx);
  const mask = upper ? greaterEqual(diff, k) : lessEqual(diff, k);
  return where(mask, a, asArray(0, a.dtype));
}

// ---------------------------------------------------------------------------------------------
// Neural-network helpers

/**
 * The rectified linear unit max(x, 0), elementwise (derivative 0 at x = 0).
 *
 * @example
 * ```ts
 * np.relu(np.array([-1, 0, 2])).tolist(); // [0, 0, 2]
 * ```
 */
export const relu = (x: ArrayLike) => {
  const a = asArray(x);
  return where(greater(a, 0), a, 0);
};
/**
 * The logistic function 1 / (1 + e^-x), elementwise.
 *
 * @example
 * ```ts
 * np.sigmoid(np.array([0])).tolist(); // [0.5]
 * ```
 */
export const sigmoid = (x: ArrayLike) => {
  const a = floating(x);
  return div(1, add(1, exp(neg(a))));
};
/**
 * log(1 + exp(x)) without overflow, as max(x, 0) + log1p(exp(-|x|)). `maximum` (not relu) splits
 * its derivative evenly at a tie, which gives the exact derivative 1/2 at x = 0.
 *
 * @example
 * ```ts
 * np.softplus(np.array([0, 1000])).tolist(); // [0.6931471824645996, 1000]
 * ```
 */
export const softplus = (x: ArrayLike) => {
  const a = floating(x);
  return add(maximum(a, 0), log1p(exp(neg(abs(a)))));
};
/**
 * log(sigmoid(x)) without underflow, as -softplus(-x), elementwise.
 *
 * @example
 * ```ts
 * np.logSigmoid(np.array([-1000, 0])).tolist(); // [-1000, -0.6931471824645996]
 * ```
 */
export const logSigmoid = (x: ArrayLike) => neg(softplus(neg(x)));
/**
 * Limits values to `[lo, hi]`, as `minimum(maximum(x, lo), hi)`.
 *
 * @example
 * ```ts
 * np.clip(np.array([-2, 0.5, 3]), 0, 1).tolist(); // [0, 0.5, 1]
 * ```
 */
export function clip(x: ArrayLike, lo: ArrayLike, hi: ArrayLike): Array {
  return minimum(maximum(x, lo), hi);
}
/** x minus its (constant) maximum along an axis: keeps softmax exact for large inputs. */
function shiftedByMax(fn: string, x: ArrayLike, axis: number): [Array, number] {
  const a = floating(x);
  const ax = normalizeAxis(fn, axis, a.ndim);
  const m = stopGradient(max(a, { axis: ax, keepdims: true }));
  return [sub(a, where(isfinite(m), m, 0)), ax];
}
/**
 * exp(x) normalised to sum to 1 along `axis` (default the last); exact for large inputs, since
 * the maximum is subtracted first.
 *
 * @example
 * ```ts
 * np.softmax(np.array([1000, 1000, 1000, 1000])).tolist(); // [0.25, 0.25, 0.25, 0.25]
 * ```
 */
export function softmax(x: ArrayLike, axis = -1): Array {
  const [shifted, ax] = shiftedByMax("softmax", x, axis);
  const e = exp(shifted);
  return div(e, sum(e, { axis: ax, keepdims: true }));
}
/**
 * log(softmax(x)) along `axis` (default the last), computed without the log of a small number:
 * log-probabilities for classification losses.
 *
 * @example
 * ```ts
 * np.logSoftmax(np.array([0, 0])).tolist(); // [-0.6931471824645996, -0.6931471824645996]
 * ```
 */
export function logSoftmax(x: ArrayLike, axis = -1): Array {
  const [shifted, ax] = shiftedByMax("logSoftmax", x, axis);
  return sub(shifted, log(sum(exp(shifted), { axis: ax, keepdims: true })));
}
/**
 * One-hot encoding along a new last axis.
 *
 * @example
 * ```ts
 * np.oneHot(np.array([0, 2], { dtype: "int32" }), 3).tolist(); // [[1, 0, 0], [0, 0, 1]]
 * ```
 */
export function oneHot(indices: ArrayLike, numClasses: number, options?: { dtype?: DType }): Array {
  const idx = indexArray("oneHot", indices);
  const classes = fromInts(Int32Array.from({ length: numClasses }, (_, i) => i));
  const eq = equal(expandDims(idx, -1), classes);
  return astype(eq, options?.dtype ?? "float32");
}

// ---------------------------------------------------------------------------------------------
// Convolution and pooling (NCL layout)

/** Options of `conv1d`. */
export interface Conv1dOptions {
  /** Step between output positions (default 1). */
  stride?: number;
  /** Zero padding: a number for both sides, [before, after], or "same" / "valid". */
  padding?: number | [number, number] | "same" | "valid";
  /** Spacing between kernel taps (default 1). */
  dilation?: number;
}

/**
 * 1-D cross-correlation: x [batch, channels, length], w [out, in, kernel].
 *
 * @example
 * ```ts
 * const x = np.ones([8, 2, 100]); // [batch, channels, length]
 * const w = np.ones([4, 2, 5]); // [out channels, in channels, kernel]
 * np.conv1d(x, w, { padding: "same" }).shape; // [8, 4, 100]
 * ```
 */
export function conv1d(x: ArrayLike, w: ArrayLike, options?: Conv1dOptions): Array {
  const [a, b] = promote(x, w) as [Array, Array];
  const stride = options?.stride ?? 1;
  const dilation = options?.dilation ?? 1;
  if (!Number.isInteger(stride) || stride < 1)
    fail("conv1d", "stride", "a positive integer", stride);
  if (!Number.isInteger(dilation) || dilation < 1)
    fail("conv1d", "dilation", "a positive integer", dilation);
  const k = b.shape[2] ?? 1;
  const span = dilation * (k - 1);
  const p = options?.padding ?? 0;
  const padding: [number, number] =
    p === "valid"
      ? [0, 0]
      : p === "same"
        ? [Math.floor(span / 2), span - Math.floor(span / 2)]
        : typeof p === "number"
          ? [p, p]
          : [p[0], p[1]];
  if (padding.some((v) => !Number.isInteger(v) || v < 0)) {
    fail("conv1d", "padding", "non-negative integers, 'same' or 'valid'", p);
  }
  const fa = isFloat(a.dtype) ? a : ew.cast(a, "float32");
  const fb = isFloat(b.dtype) ? b : ew.cast(b, "float32");
  return conv.conv1d(fa, fb, { stride, padding, dilation });
}

/**
 * Max pooling along the last axis of x [batch, channels, length]: windows of `kernel` positions
 * every `stride` (default `kernel`), without padding.
 *
 * @example
 * ```ts
 * np.maxPool1d(np.arange(6).reshape([1, 1, 6]), 2).tolist(); // [[[1, 3, 5]]]
 * ```
 */
export function maxPool1d(x: ArrayLike, kernel: number, stride = kernel): Array {
  return bind1(conv.maxPool1dP, [floating(x)], { kernel, stride });
}

// ---------------------------------------------------------------------------------------------

function toString(x: Array): string {
  if (x instanceof ConcreteArray) {
    try {
      return formatArray(x, x.dataSync());
    } catch {
      return formatArray(x, null);
    }
  }
  return `Tracer(shape=[${x.shape.join(", ")}], dtype=${x.dtype})`;
}

installArrayMethods({
  add,
  sub,
  mul,
  div,
  pow,
  maximum,
  minimum,
  equal,
  notEqual,
  less,
  lessEqual,
  greater,
  greaterEqual,
  neg,
  exp,
  log,
  log1p,
  expm1,
  sin,
  cos,
  tanh,
  sqrt,
  abs,
  sign,
  floor,
  square,
  sum,
  mean,
  max,
  min,
  argmax,
  argmin,
  matmul,
  reshape,
  transpose,
  broadcastTo,
  astype,
  ravel,
  squeeze,
  expandDims,
  take,
  index,
  logsumexp,
  variance,
  std,
  prod,
  all,
  any,
  clip,
  relu,
  sigmoid,
  softplus,
  dot,
  toString,
});
