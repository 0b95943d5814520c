/**
 * The NumPy-like array API (`np`). Every function accepts arrays or JS numbers, broadcasts
 * with NumPy's rules and promotes dtypes (float64 > float32 > int32 > uint32 > bool; JS numbers
 * are weakly typed and take the other operand's dtype). Everything here is built from
 * primitives, so it all works under every transform.
 */
import { fail, NbiError } from "../errors.js";
import { bind1 } from "../transforms/core.js";
import {
  Array,
  type ArrayLike,
  type Axes,
  installArrayMethods,
  type ReduceOptions,
} from "./array.js";
import { defaultBackend } from "./backend.js";
import { ConcreteArray, fromHost } from "./concrete-array.js";
import { scalar } from "./creation.js";
import { checkDType, type DType, isFloat, promoteTypes, weakDType } from "./dtype.js";
import { formatArray } from "./format.js";
import * as conv from "./primitives/conv.js";
import * as ew from "./primitives/elementwise.js";
import { matmul as matmulPrim } from "./primitives/matmul.js";
import { argmaxP, reduceMaxP, reduceMinP, reduceSumP } from "./primitives/reduction.js";
import * as rules from "./primitives/rules.js";
import { padP, sliceP, takeP } from "./primitives/structural.js";
import { checkShape, normalizeAxes, normalizeAxis, showShape, sizeOf } from "./shape.js";

export type { ArrayLike };

/** Converts a JS number to an array; `like` gives the dtype a weakly typed number takes. */
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

/** On bool operands add is logical or and mul logical and (NumPy); sub is refused. */
export const add = (a: ArrayLike, b: ArrayLike) => {
  const [x, y] = promote(a, b) as [Array, Array];
  return x.dtype === "bool" ? ew.select(x, x, y) : ew.add(x, y);
};
export const sub = (a: ArrayLike, b: ArrayLike) => {
  const [x, y] = promote(a, b) as [Array, Array];
  if (x.dtype === "bool") {
    fail("sub", "operands", "numeric arrays (bool subtraction is undefined; use logicalXor)", x);
  }
  return ew.sub(x, y);
};
export const mul = (a: ArrayLike, b: ArrayLike) => {
  const [x, y] = promote(a, b) as [Array, Array];
  return x.dtype === "bool" ? ew.select(x, y, x) : ew.mul(x, y);
};
/** True division: integer operands give float32 (as NumPy's `/`). */
export const div = (a: ArrayLike, b: ArrayLike) => {
  const [x, y] = promote(a, b) as [Array, Array];
  return isFloat(x.dtype) ? ew.div(x, y) : ew.div(ew.cast(x, "float32"), ew.cast(y, "float32"));
};
/** Integer division rounding toward negative infinity (NumPy's `//`). */
export const floorDivide = (a: ArrayLike, b: ArrayLike) => {
  const [x, y] = promote(a, b) as [Array, Array];
  if (isFloat(x.dtype)) return ew.floor(ew.div(x, y));
  return ew.cast(ew.floor(ew.div(ew.cast(x, "float64"), ew.cast(y, "float64"))), x.dtype);
};
export const pow = (a: ArrayLike, b: ArrayLike) => {
  const [x, y] = promote(a, b) as [Array, Array];
  return x.dtype === "bool" ? ew.pow(ew.cast(x, "int32"), ew.cast(y, "int32")) : ew.pow(x, y);
};
export const maximum = (a: ArrayLike, b: ArrayLike) => ew.max(...(promote(a, b) as [Array, Array]));
export const minimum = (a: ArrayLike, b: ArrayLike) => ew.min(...(promote(a, b) as [Array, Array]));
export const equal = (a: ArrayLike, b: ArrayLike) => ew.equal(...(promote(a, b) as [Array, Array]));
export const notEqual = (a: ArrayLike, b: ArrayLike) =>
  ew.notEqual(...(promote(a, b) as [Array, Array]));
export const less = (a: ArrayLike, b: ArrayLike) => ew.less(...(promote(a, b) as [Array, Array]));
export const lessEqual = (a: ArrayLike, b: ArrayLike) =>
  ew.lessEqual(...(promote(a, b) as [Array, Array]));
export const greater = (a: ArrayLike, b: ArrayLike) =>
  ew.greater(...(promote(a, b) as [Array, Array]));
export const greaterEqual = (a: ArrayLike, b: ArrayLike) =>
  ew.greaterEqual(...(promote(a, b) as [Array, Array]));

export const neg = (x: ArrayLike) => ew.neg(asArray(x));
export const exp = (x: ArrayLike) => ew.exp(floating(x));
export const log = (x: ArrayLike) => ew.log(floating(x));
export const log1p = (x: ArrayLike) => ew.log1p(floating(x));
export const expm1 = (x: ArrayLike) => ew.expm1(floating(x));
export const sin = (x: ArrayLike) => ew.sin(floating(x));
export const cos = (x: ArrayLike) => ew.cos(floating(x));
export const tan = (x: ArrayLike) => div(sin(x), cos(x));
export const tanh = (x: ArrayLike) => ew.tanh(floating(x));
export const sqrt = (x: ArrayLike) => ew.sqrt(floating(x));
export const abs = (x: ArrayLike) => ew.abs(asArray(x));
export const sign = (x: ArrayLike) => ew.sign(asArray(x));
export const floor = (x: ArrayLike) => ew.floor(asArray(x));
export const ceil = (x: ArrayLike) => ew.neg(ew.floor(ew.neg(asArray(x))));
export const square = (x: ArrayLike) => {
  const a = asArray(x);
  return ew.mul(a, a);
};
export const reciprocal = (x: ArrayLike) => div(1, floating(x));

export function where(condition: ArrayLike, x: ArrayLike, y: ArrayLike): Array {
  let c = asArray(condition, "bool");
  if (c.dtype !== "bool") c = ew.notEqual(c, asArray(0, c.dtype));
  const [a, b] = promote(x, y) as [Array, Array];
  return ew.select(c, a, b);
}

export const logicalNot = (x: ArrayLike) => ew.equal(asBool(x), scalar(0, "bool"));
export const logicalAnd = (a: ArrayLike, b: ArrayLike) =>
  ew.select(asBool(a), asBool(b), scalar(0, "bool"));
export const logicalOr = (a: ArrayLike, b: ArrayLike) =>
  ew.select(asBool(a), scalar(1, "bool"), asBool(b));
function asBool(x: ArrayLike): Array {
  const a = asArray(x, "bool");
  return a.dtype === "bool" ? a : ew.notEqual(a, asArray(0, a.dtype));
}
export const isnan = (x: ArrayLike) => {
  const a = asArray(x);
  return ew.notEqual(a, a);
};
export const isfinite = (x: ArrayLike) => {
  const a = floating(x);
  return ew.equal(ew.sub(a, a), asArray(0, a.dtype));
};

export function astype(x: ArrayLike, dtype: DType): Array {
  return ew.cast(asArray(x), checkDType("astype", "dtype", dtype));
}

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
  return options?.keepdims ? rules.reshape(out, keepShape(a.shape, axes)) : out;
}

function keepShape(shape: readonly number[], axes: readonly number[]): number[] {
  return shape.map((d, i) => (axes.includes(i) ? 1 : d));
}

export const sum = (x: ArrayLike, options?: ReduceOptions) =>
  reduceWith("sum", reduceSumP, x, options);
export const max = (x: ArrayLike, options?: ReduceOptions) =>
  reduceWith("max", reduceMaxP, x, options);
export const min = (x: ArrayLike, options?: ReduceOptions) =>
  reduceWith("min", reduceMinP, x, options);

export function mean(x: ArrayLike, options?: ReduceOptions): Array {
  const a = floating(x);
  const axes = normalizeAxes("mean", options?.axis, a.ndim);
  const count = sizeOf(axes.map((i) => a.shape[i]!));
  return div(sum(a, options), count);
}

/** Variance with `ddof` delta degrees of freedom (0 by default, as NumPy). */
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

export function std(x: ArrayLike, options?: ReduceOptions & { ddof?: number }): Array {
  return sqrt(variance(x, options));
}

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
    a = rules.reshape(a, [a.size]);
    axis = 0;
  } else axis = normalizeAxis(name, options.axis, a.ndim);
  const out = bind1(argmaxP, [a], { axis });
  if (!options?.keepdims) return out;
  return rules.reshape(
    out,
    options.axis === undefined ? x.shape.map(() => 1) : keepShape(x.shape, [axis]),
  );
}

export const argmax = (x: ArrayLike, options?: { axis?: number; keepdims?: boolean }) =>
  argReduce("argmax", asArray(x), options);
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

export function all(x: ArrayLike, options?: ReduceOptions): Array {
  return equal(sum(astype(logicalNot(x), "int32"), options), 0);
}
export function any(x: ArrayLike, options?: ReduceOptions): Array {
  return greater(sum(astype(asBool(x), "int32"), options), 0);
}

/** log(sum(exp(x))) without overflow: the maximum is factored out (and held constant). */
export function logsumexp(x: ArrayLike, options?: ReduceOptions): Array {
  const a = floating(x);
  const axes = normalizeAxes("logsumexp", options?.axis, a.ndim);
  const m = stopGradient(max(a, { axis: axes, keepdims: true }));
  const safe = where(isfinite(m), m, 0);
  const s = log(sum(exp(sub(a, safe)), { axis: axes, keepdims: true }));
  const out = add(s, safe);
  return options?.keepdims
    ? out
    : rules.reshape(
        out,
        out.shape.filter((_, i) => !axes.includes(i)),
      );
}

// ---------------------------------------------------------------------------------------------
// Shapes

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
  return rules.reshape(a, resolved);
}

export function ravel(x: ArrayLike): Array {
  const a = asArray(x);
  return rules.reshape(a, [a.size]);
}

export function transpose(x: ArrayLike, axes?: readonly number[]): Array {
  const a = asArray(x);
  const perm = axes
    ? axes.map((ax) => normalizeAxis("transpose", ax, a.ndim, "axes"))
    : a.shape.map((_, i) => a.ndim - 1 - i);
  return rules.transpose(a, perm);
}

export function moveaxis(x: ArrayLike, source: number, destination: number): Array {
  const a = asArray(x);
  return rules.moveAxis(
    a,
    normalizeAxis("moveaxis", source, a.ndim, "source"),
    normalizeAxis("moveaxis", destination, a.ndim, "destination"),
  );
}

export function swapaxes(x: ArrayLike, axis1: number, axis2: number): Array {
  const a = asArray(x);
  const perm = a.shape.map((_, i) => i);
  const i = normalizeAxis("swapaxes", axis1, a.ndim, "axis1");
  const j = normalizeAxis("swapaxes", axis2, a.ndim, "axis2");
  [perm[i], perm[j]] = [perm[j]!, perm[i]!];
  return rules.transpose(a, perm);
}

export function expandDims(x: ArrayLike, axis: number): Array {
  const a = asArray(x);
  const ax = normalizeAxis("expandDims", axis, a.ndim + 1);
  const shape = [...a.shape];
  shape.splice(ax, 0, 1);
  return rules.reshape(a, shape);
}

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
  return rules.reshape(
    a,
    a.shape.filter((_, i) => !axes.includes(i)),
  );
}

export function broadcastTo(x: ArrayLike, shape: readonly number[]): Array {
  return rules.broadcastTo(asArray(x), checkShape("broadcastTo", "shape", shape));
}

export function broadcastArrays(...xs: ArrayLike[]): Array[] {
  const arrays = xs.map((x) => asArray(x));
  const shape = arrays.reduce<number[]>((s, a) => rulesBroadcastShapes(s, a.shape), []);
  return arrays.map((a) => rules.broadcastTo(a, shape));
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

/** `x[i]` along an axis (default the first), removing that axis. */
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
  return rules.reshape(
    bind1(sliceP, [a], { starts, limits }),
    a.shape.filter((_, j) => j !== ax),
  );
}

export function concatenate(xs: readonly ArrayLike[], axis = 0): Array {
  if (xs.length === 0) fail("concatenate", "arrays", "at least one array", xs);
  const arrays = promote(...xs);
  const ax = normalizeAxis("concatenate", axis, arrays[0]!.ndim);
  return rules.concatenate(arrays, ax);
}

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
  return rules.concatenate(
    arrays.map((a) => expandDims(a, ax)),
    ax,
  );
}

/** Splits into `sections` equal parts, or at the given indices, along an axis. */
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
  return edges.slice(1).map((end, i) => {
    const starts = a.shape.map(() => 0);
    const limits = [...a.shape];
    starts[ax] = Math.min(edges[i]!, n);
    limits[ax] = Math.max(starts[ax]!, Math.min(end, n));
    return bind1(sliceP, [a], { starts, limits });
  });
}

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
 */
export function take(x: ArrayLike, indices: ArrayLike | readonly number[], axis?: number): Array {
  const a = asArray(x);
  const idx = indexArray("take", indices);
  if (axis === undefined) return bind1(takeP, [ravel(a), idx], { axis: 0 });
  return bind1(takeP, [a, idx], { axis: normalizeAxis("take", axis, a.ndim) });
}

/** NumPy `take_along_axis`: indices of the same rank as x select along one axis. */
export function takeAlongAxis(x: ArrayLike, indices: ArrayLike, axis: number): Array {
  const a = asArray(x);
  const idx = indexArray("takeAlongAxis", indices);
  const ax = normalizeAxis("takeAlongAxis", axis, a.ndim);
  if (idx.ndim !== a.ndim) {
    fail("takeAlongAxis", "indices", `rank ${a.ndim} like x`, idx);
  }
  // Move the axis last, flatten, and offset each row's indices into the flat array.
  const xm = rules.moveAxis(a, ax, a.ndim - 1);
  const im = rules.moveAxis(idx, ax, a.ndim - 1);
  const n = xm.shape[xm.ndim - 1]!;
  const lead = rulesBroadcastShapes(xm.shape.slice(0, -1), im.shape.slice(0, -1));
  const xb = rules.broadcastTo(xm, [...lead, n]);
  const ib = rules.broadcastTo(im, [...lead, im.shape[im.ndim - 1]!]);
  const rows = sizeOf(lead);
  const wrapped = where(less(ib, 0), add(ib, n), ib);
  const clamped = minimum(maximum(wrapped, 0), Math.max(n - 1, 0));
  const offsets = rules.reshape(mul(fromInts(Int32Array.from({ length: rows }, (_, i) => i)), n), [
    ...lead,
    1,
  ]);
  const flat = bind1(takeP, [rules.reshape(xb, [rows * n]), add(clamped, offsets)], { axis: 0 });
  return rules.moveAxis(flat, a.ndim - 1, ax);
}

// ---------------------------------------------------------------------------------------------
// Linear algebra

/** NumPy `matmul`: vectors are promoted to matrices and the added axis removed afterwards. */
export function matmul(x: ArrayLike, y: ArrayLike): Array {
  let [a, b] = promote(x, y) as [Array, Array];
  if (!isFloat(a.dtype)) {
    a = ew.cast(a, "float32");
    b = ew.cast(b, "float32");
  }
  if (a.ndim === 0 || b.ndim === 0) fail("matmul", "operands", "rank >= 1", a.ndim === 0 ? a : b);
  const vecA = a.ndim === 1;
  const vecB = b.ndim === 1;
  if (vecA) a = rules.reshape(a, [1, a.shape[0]!]);
  if (vecB) b = rules.reshape(b, [b.shape[0]!, 1]);
  let out: Array;
  if (b.ndim === 2 && a.ndim > 2) {
    // Fold a's batch into rows: one large product (and a 2-D weight gradient without a batch sum).
    const k = a.shape[a.ndim - 1]!;
    const rows = rules.reshape(a, [sizeOf(a.shape.slice(0, -1)), k]);
    const flat = matmulPrim(rows, b);
    out = rules.reshape(flat, [...a.shape.slice(0, -1), b.shape[1]!]);
  } else out = matmulPrim(a, b);
  if (vecA) out = rules.reshape(out, [...out.shape.slice(0, -2), out.shape[out.ndim - 1]!]);
  if (vecB) out = rules.reshape(out, out.shape.slice(0, -1));
  return out;
}

export function dot(x: ArrayLike, y: ArrayLike): Array {
  const a = asArray(x);
  const b = asArray(y);
  if (a.ndim === 0 || b.ndim === 0) return mul(a, b);
  return matmul(a, b);
}

export function outer(x: ArrayLike, y: ArrayLike): Array {
  return mul(rules.reshape(ravel(x), [asArray(x).size, 1]), ravel(y));
}

/** Vector or Frobenius norm (ord 2), or the ord-p norm over the given axes. */
export function norm(x: ArrayLike, options?: ReduceOptions & { ord?: number }): Array {
  const a = floating(x);
  const ord = options?.ord ?? 2;
  const opts = { axis: options?.axis, keepdims: options?.keepdims };
  if (ord === 2) return sqrt(sum(square(a), opts));
  if (ord === 1) return sum(abs(a), opts);
  if (ord === Number.POSITIVE_INFINITY) return max(abs(a), opts);
  return pow(sum(pow(abs(a), ord), opts), 1 / ord);
}

/** Upper triangle (k-th diagonal and above) of the last two axes. */
export function triu(x: ArrayLike, k = 0): Array {
  return triangle(asArray(x), k, true);
}
/** Lower triangle (k-th diagonal and below) of the last two axes. */
export function tril(x: ArrayLike, k = 0): Array {
  return triangle(asArray(x), k, false);
}
function triangle(a: Array, k: number, upper: boolean): Array {
  if (a.ndim < 2) fail(upper ? "triu" : "tril", "x", "rank >= 2", a);
  const [n, m] = a.shape.slice(-2) as [number, number];
  const rowIdx = rules.reshape(fromInts(Int32Array.from({ length: n }, (_, i) => i)), [n, 1]);
  const colIdx = fromInts(Int32Array.from({ length: m }, (_, j) => j));
  const diff = sub(colIdx, rowIdx);
  const mask = upper ? greaterEqual(diff, k) : lessEqual(diff, k);
  return where(mask, a, asArray(0, a.dtype));
}

// ---------------------------------------------------------------------------------------------
// Neural-network helpers

export const relu = (x: ArrayLike) => {
  const a = asArray(x);
  return where(greater(a, 0), a, 0);
};
export const sigmoid = (x: ArrayLike) => {
  const a = floating(x);
  return div(1, add(1, exp(neg(a))));
};
/**
 * log(1 + exp(x)) without overflow, as max(x, 0) + log1p(exp(-|x|)). `maximum` (not relu) splits
 * its derivative evenly at a tie, which gives the exact derivative 1/2 at x = 0.
 */
export const softplus = (x: ArrayLike) => {
  const a = floating(x);
  return add(maximum(a, 0), log1p(exp(neg(abs(a)))));
};
export const logSigmoid = (x: ArrayLike) => neg(softplus(neg(x)));
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
export function softmax(x: ArrayLike, axis = -1): Array {
  const [shifted, ax] = shiftedByMax("softmax", x, axis);
  const e = exp(shifted);
  return div(e, sum(e, { axis: ax, keepdims: true }));
}
export function logSoftmax(x: ArrayLike, axis = -1): Array {
  const [shifted, ax] = shiftedByMax("logSoftmax", x, axis);
  return sub(shifted, log(sum(exp(shifted), { axis: ax, keepdims: true })));
}
/** One-hot encoding along a new last axis. */
export function oneHot(indices: ArrayLike, numClasses: number, options?: { dtype?: DType }): Array {
  const idx = indexArray("oneHot", indices);
  const classes = fromInts(Int32Array.from({ length: numClasses }, (_, i) => i));
  const eq = equal(expandDims(idx, -1), classes);
  return astype(eq, options?.dtype ?? "float32");
}

// ---------------------------------------------------------------------------------------------
// Convolution and pooling (NCL layout)

export interface Conv1dOptions {
  stride?: number;
  /** Zero padding: a number for both sides, [before, after], or "same" / "valid". */
  padding?: number | [number, number] | "same" | "valid";
  dilation?: number;
}

/** 1-D cross-correlation: x [batch, channels, length], w [out, in, kernel]. */
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
