/**
 * A tiny, deliberately naive float64 nd-array used as the reference the library is checked
 * against: row-major data in a plain JS array, NumPy broadcasting, and every operation written
 * from its NumPy definition by walking multi-indices (slow, but obviously right on small shapes).
 * Also the fast-check arbitraries and the comparison helper the primitive suites share.
 */
import fc from "fast-check";
import { expect } from "vitest";
import type { Array, DType } from "../../src/index.js";
import { np } from "../../src/index.js";

// ---------------------------------------------------------------------------------------------
// The reference array

export interface Ref {
  readonly shape: readonly number[];
  readonly data: readonly number[];
}

export function ref(shape: readonly number[], data: readonly number[]): Ref {
  if (data.length !== sizeOf(shape)) {
    throw new Error(`ref: ${data.length} values cannot fill shape [${shape.join(", ")}]`);
  }
  return { shape: [...shape], data: [...data] };
}

export function sizeOf(shape: readonly number[]): number {
  return shape.reduce((p, d) => p * d, 1);
}

export function stridesOf(shape: readonly number[]): number[] {
  const out = new globalThis.Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    out[i] = s;
    s *= shape[i]!;
  }
  return out;
}

/** Multi-index of the flat (row-major) position k. */
export function unravel(k: number, shape: readonly number[]): number[] {
  const idx = new globalThis.Array<number>(shape.length);
  for (let i = shape.length - 1; i >= 0; i--) {
    const d = shape[i]!;
    idx[i] = k % d;
    k = Math.floor(k / d);
  }
  return idx;
}

export function ravel(idx: readonly number[], shape: readonly number[]): number {
  let k = 0;
  for (let i = 0; i < shape.length; i++) k = k * shape[i]! + idx[i]!;
  return k;
}

export function get(x: Ref, idx: readonly number[]): number {
  return x.data[ravel(idx, x.shape)]!;
}

/** Builds an array of a shape from a function of the multi-index. */
export function build(shape: readonly number[], f: (idx: number[]) => number): Ref {
  const n = sizeOf(shape);
  const data = new globalThis.Array<number>(n);
  for (let k = 0; k < n; k++) data[k] = f(unravel(k, shape));
  return { shape: [...shape], data };
}

/** NumPy broadcasting of shapes; null when they are incompatible. */
export function broadcastShapes(...shapes: (readonly number[])[]): number[] | null {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    let d = 1;
    for (const s of shapes) {
      const e = s[s.length - rank + i] ?? 1;
      if (e === 1) continue;
      if (d !== 1 && d !== e) return null;
      d = e;
    }
    out.push(d);
  }
  return out;
}

/** The element of x that position `idx` of a broadcast result of rank idx.length reads. */
function getBroadcast(x: Ref, idx: readonly number[]): number {
  const offset = idx.length - x.shape.length;
  const own = x.shape.map((d, i) => (d === 1 ? 0 : idx[offset + i]!));
  return get(x, own);
}

export function broadcastTo(x: Ref, shape: readonly number[]): Ref {
  return build(shape, (idx) => getBroadcast(x, idx));
}

export function map(x: Ref, f: (a: number) => number): Ref {
  return { shape: [...x.shape], data: x.data.map(f) };
}

/** Elementwise f over any number of operands, broadcast together. */
export function zipWith(xs: readonly Ref[], f: (...v: number[]) => number): Ref {
  const shape = broadcastShapes(...xs.map((x) => x.shape));
  if (shape === null) throw new Error("reference: shapes do not broadcast");
  return build(shape, (idx) => f(...xs.map((x) => getBroadcast(x, idx))));
}

/** Normalises a NumPy axis argument to sorted distinct non-negative axes (undefined: all). */
export function normAxes(axis: number | readonly number[] | undefined, rank: number): number[] {
  if (axis === undefined) return globalThis.Array.from({ length: rank }, (_, i) => i);
  const list = typeof axis === "number" ? [axis] : [...axis];
  return [...new Set(list.map((a) => (a < 0 ? a + rank : a)))].sort((a, b) => a - b);
}

/** A reduction folding f from `init` over the given axes, in row-major order. */
export function reduce(
  x: Ref,
  axis: number | readonly number[] | undefined,
  keepdims: boolean,
  init: number,
  f: (acc: number, v: number) => number,
): Ref {
  const axes = normAxes(axis, x.shape.length);
  const kept = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const acc = build(kept, () => init).data.slice();
  for (let k = 0; k < x.data.length; k++) {
    const idx = unravel(k, x.shape).map((v, i) => (axes.includes(i) ? 0 : v));
    const o = ravel(idx, kept);
    acc[o] = f(acc[o]!, x.data[k]!);
  }
  const shape = keepdims ? kept : x.shape.filter((_, i) => !axes.includes(i));
  return { shape, data: acc };
}

export const refSum = (x: Ref, axis?: number | readonly number[], keepdims = false) =>
  reduce(x, axis, keepdims, 0, (a, v) => a + v);
/** NumPy max: NaN propagates. */
export const refMax = (x: Ref, axis?: number | readonly number[], keepdims = false) =>
  reduce(x, axis, keepdims, Number.NEGATIVE_INFINITY, (a, v) =>
    Number.isNaN(a) || Number.isNaN(v) ? Number.NaN : Math.max(a, v),
  );
export const refMin = (x: Ref, axis?: number | readonly number[], keepdims = false) =>
  reduce(x, axis, keepdims, Number.POSITIVE_INFINITY, (a, v) =>
    Number.isNaN(a) || Number.isNaN(v) ? Number.NaN : Math.min(a, v),
  );

/**
 * NumPy argmax/argmin: the first position of the extremum along one axis (flattened when axis is
 * undefined); the first NaN wins. `better(v, best)` says v strictly beats the current best.
 */
export function argReduce(
  x: Ref,
  axis: number | undefined,
  keepdims: boolean,
  better: (v: number, best: number) => boolean,
): Ref {
  const flat = axis === undefined;
  const src = flat ? reshape(x, [x.data.length]) : x;
  const ax = flat ? 0 : axis < 0 ? axis + x.shape.length : axis;
  const n = src.shape[ax]!;
  const kept = src.shape.map((d, i) => (i === ax ? 1 : d));
  const out = build(kept, (idx) => {
    let best = 0;
    let bestValue = Number.NaN;
    for (let j = 0; j < n; j++) {
      const at = [...idx];
      at[ax] = j;
      const v = get(src, at);
      if (Number.isNaN(v)) return j;
      if (j === 0 || better(v, bestValue)) {
        best = j;
        bestValue = v;
      }
    }
    return best;
  });
  if (flat) return { shape: keepdims ? x.shape.map(() => 1) : [], data: out.data };
  return keepdims ? out : { shape: src.shape.filter((_, i) => i !== ax), data: out.data };
}

export function reshape(x: Ref, shape: readonly number[]): Ref {
  if (sizeOf(shape) !== x.data.length) throw new Error("reference reshape: size mismatch");
  return { shape: [...shape], data: [...x.data] };
}

export function transpose(x: Ref, perm: readonly number[]): Ref {
  const shape = perm.map((p) => x.shape[p]!);
  return build(shape, (idx) => {
    const src = new globalThis.Array<number>(perm.length);
    perm.forEach((p, i) => {
      src[p] = idx[i]!;
    });
    return get(x, src);
  });
}

/** x[starts[0]:limits[0], starts[1]:limits[1], ...] with already-normalised bounds. */
export function sliceRef(x: Ref, starts: readonly number[], limits: readonly number[]): Ref {
  const shape = limits.map((l, i) => Math.max(0, l - starts[i]!));
  return build(shape, (idx) =>
    get(
      x,
      idx.map((v, i) => v + starts[i]!),
    ),
  );
}

/** Python's normalisation of one slice bound on an axis of length n (step 1). */
export function sliceBound(v: number, n: number): number {
  if (v < 0) v += n;
  return Math.min(n, Math.max(0, v));
}

export function concatenate(xs: readonly Ref[], axis: number): Ref {
  const first = xs[0]!;
  const ax = axis < 0 ? axis + first.shape.length : axis;
  const offsets: number[] = [];
  let total = 0;
  for (const x of xs) {
    offsets.push(total);
    total += x.shape[ax]!;
  }
  const shape = first.shape.map((d, i) => (i === ax ? total : d));
  return build(shape, (idx) => {
    let k = xs.length - 1;
    while (offsets[k]! > idx[ax]!) k--;
    const at = [...idx];
    at[ax] = idx[ax]! - offsets[k]!;
    return get(xs[k]!, at);
  });
}

export function pad(x: Ref, lo: readonly number[], hi: readonly number[], value: number): Ref {
  const shape = x.shape.map((d, i) => d + lo[i]! + hi[i]!);
  return build(shape, (idx) => {
    const at = idx.map((v, i) => v - lo[i]!);
    return at.every((v, i) => v >= 0 && v < x.shape[i]!) ? get(x, at) : value;
  });
}

/** The documented index rule of take: a negative index wraps once, then clamps into [0, n). */
export function clampIndex(i: number, n: number): number {
  if (i < 0) i += n;
  return Math.min(n - 1, Math.max(0, i));
}

/** NumPy take along an axis (the caller flattens x for axis=None). */
export function take(x: Ref, indices: Ref, axis: number): Ref {
  const ax = axis < 0 ? axis + x.shape.length : axis;
  const n = x.shape[ax]!;
  const r = indices.shape.length;
  const shape = [...x.shape.slice(0, ax), ...indices.shape, ...x.shape.slice(ax + 1)];
  return build(shape, (idx) => {
    const i = get(indices, idx.slice(ax, ax + r));
    return get(x, [...idx.slice(0, ax), clampIndex(i, n), ...idx.slice(ax + r)]);
  });
}

/** NumPy take_along_axis (non-axis dimensions broadcast), with take's index rule. */
export function takeAlongAxis(x: Ref, indices: Ref, axis: number): Ref {
  const rank = x.shape.length;
  const ax = axis < 0 ? axis + rank : axis;
  const n = x.shape[ax]!;
  const lead = broadcastShapes(
    x.shape.map((d, i) => (i === ax ? 1 : d)),
    indices.shape.map((d, i) => (i === ax ? 1 : d)),
  );
  if (lead === null) throw new Error("reference takeAlongAxis: shapes do not broadcast");
  const shape = lead.map((d, i) => (i === ax ? indices.shape[ax]! : d));
  return build(shape, (idx) => {
    const ii = indices.shape.map((d, i) => (i === ax ? idx[i]! : d === 1 ? 0 : idx[i]!));
    const xi = x.shape.map((d, i) =>
      i === ax ? clampIndex(get(indices, ii), n) : d === 1 ? 0 : idx[i]!,
    );
    return get(x, xi);
  });
}

/** NumPy matmul: batched, leading axes broadcast, 1-D operands promoted and the axis removed. */
export function matmul(a: Ref, b: Ref): Ref {
  const va = a.shape.length === 1;
  const vb = b.shape.length === 1;
  const A = va ? reshape(a, [1, a.shape[0]!]) : a;
  const B = vb ? reshape(b, [b.shape[0]!, 1]) : b;
  const [m, k] = A.shape.slice(-2) as [number, number];
  const n = B.shape[B.shape.length - 1]!;
  const batch = broadcastShapes(A.shape.slice(0, -2), B.shape.slice(0, -2));
  if (batch === null || B.shape[B.shape.length - 2] !== k) throw new Error("reference matmul");
  const out = build([...batch, m, n], (idx) => {
    const bi = idx.slice(0, -2);
    const [i, j] = idx.slice(-2) as [number, number];
    let s = 0;
    for (let p = 0; p < k; p++) {
      s += getBroadcast(A, [...bi, i, p]) * getBroadcast(B, [...bi, p, j]);
    }
    return s;
  });
  let shape = out.shape;
  if (va) shape = [...shape.slice(0, -2), shape[shape.length - 1]!];
  if (vb) shape = shape.slice(0, -1);
  return { shape, data: out.data };
}

/** PyTorch-style conv1d (cross-correlation): x [N, C, L], w [O, C, K], zero padding. */
export function conv1d(
  x: Ref,
  w: Ref,
  stride: number,
  padLo: number,
  padHi: number,
  dilation: number,
): Ref {
  const [bn, c, l] = x.shape as [number, number, number];
  const [o, , k] = w.shape as [number, number, number];
  const span = dilation * (k - 1) + 1;
  const lout = Math.max(0, Math.floor((l + padLo + padHi - span) / stride) + 1);
  return build([bn, o, lout], ([b, oc, t]) => {
    let s = 0;
    for (let ci = 0; ci < c; ci++) {
      for (let ki = 0; ki < k; ki++) {
        const pos = t! * stride + ki * dilation - padLo;
        if (pos >= 0 && pos < l) s += w.data[(oc! * c + ci) * k + ki]! * get(x, [b!, ci, pos]);
      }
    }
    return s;
  });
}

/** Max pooling over the last axis of [N, C, L], no padding; NaN in a window propagates. */
export function maxPool1d(x: Ref, kernel: number, stride: number): Ref {
  const [bn, c, l] = x.shape as [number, number, number];
  const lout = l < kernel ? 0 : Math.floor((l - kernel) / stride) + 1;
  return build([bn, c, lout], ([b, ci, t]) => {
    let m = Number.NEGATIVE_INFINITY;
    for (let j = 0; j < kernel; j++) {
      const v = get(x, [b!, ci!, t! * stride + j]);
      m = Number.isNaN(m) || Number.isNaN(v) ? Number.NaN : Math.max(m, v);
    }
    return m;
  });
}

// ---------------------------------------------------------------------------------------------
// Bridging to the library

/** The value a JS number takes when stored in a dtype (float32 rounding, int32 wrap, ...). */
export function storeAs(v: number, dtype: DType): number {
  switch (dtype) {
    case "float32":
      return Math.fround(v);
    case "float64":
      return v;
    case "int32":
      return v | 0;
    case "uint32":
      return v >>> 0;
    case "bool":
      return v ? 1 : 0;
  }
}

/** A library array holding a reference array's values (already representable in the dtype). */
export function toArray(x: Ref, dtype: DType): Array {
  const flat = np.array(Float64Array.from(x.data), { dtype });
  return np.reshape(flat, x.shape);
}

/** The reference array of a dtype's stored values (what the library will actually see). */
export function stored(x: Ref, dtype: DType): Ref {
  return map(x, (v) => storeAs(v, dtype));
}

export interface Tolerance {
  rtol: number;
  atol: number;
}

/** float32 results against the float64 reference: rtol 1e-5 plus atol 1e-6; float64 tighter. */
export function toleranceFor(dtype: DType): Tolerance {
  if (dtype === "float32") return { rtol: 1e-5, atol: 1e-6 };
  if (dtype === "float64") return { rtol: 1e-12, atol: 1e-12 };
  return { rtol: 0, atol: 0 };
}

/**
 * Asserts shape, dtype and values. Values agree within atol + rtol * max(|want|, scale), where
 * `scale` (same shape as want) bounds rounding in sums: e.g. sum |a_i b_i| for a dot product.
 * NaN must match NaN and infinities must match exactly.
 */
export async function expectMatches(
  got: Array,
  want: Ref,
  dtype: DType,
  options: { scale?: Ref; tol?: Tolerance; label?: string } = {},
): Promise<void> {
  const label = options.label ? `${options.label}: ` : "";
  expect(got.shape, `${label}shape`).toEqual(want.shape);
  expect(got.dtype, `${label}dtype`).toBe(dtype);
  const values = globalThis.Array.from(await got.data());
  expect(values.length, `${label}number of values`).toBe(want.data.length);
  const { rtol, atol } = options.tol ?? toleranceFor(dtype);
  for (let i = 0; i < values.length; i++) {
    const g = values[i]!;
    // The exact result rounded once to the output dtype (float32 overflow becomes ±inf).
    const w = dtype === "float32" ? Math.fround(want.data[i]!) : want.data[i]!;
    const scale = Math.max(Math.abs(w), options.scale ? Math.abs(options.scale.data[i]!) : 0);
    const ok = Number.isNaN(w)
      ? Number.isNaN(g)
      : !Number.isFinite(w)
        ? g === w
        : Math.abs(g - w) <= atol + rtol * scale;
    if (!ok) {
      throw new Error(
        `${label}value ${i} (index [${unravel(i, want.shape).join(", ")}] of shape ` +
          `[${want.shape.join(", ")}], ${dtype}): got ${g}, want ${w}`,
      );
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Arbitraries

export interface ShapeOptions {
  minRank?: number;
  maxRank?: number;
  /** Largest dimension; 0 and 1 are drawn more often than their share. */
  maxDim?: number;
  /** Smallest dimension (1 rules out empty arrays). */
  minDim?: number;
}

export function dimArb(minDim = 0, maxDim = 4): fc.Arbitrary<number> {
  const options: fc.WeightedArbitrary<number>[] = [
    { weight: 6, arbitrary: fc.integer({ min: Math.max(minDim, 1), max: maxDim }) },
  ];
  if (minDim <= 1) options.push({ weight: 2, arbitrary: fc.constant(1) });
  if (minDim <= 0) options.push({ weight: 1, arbitrary: fc.constant(0) });
  return fc.oneof(...options);
}

export function shapeArb(options: ShapeOptions = {}): fc.Arbitrary<number[]> {
  return fc.array(dimArb(options.minDim ?? 0, options.maxDim ?? 4), {
    minLength: options.minRank ?? 0,
    maxLength: options.maxRank ?? 4,
  });
}

/**
 * A shape that broadcasts to `out`: some leading axes dropped and some axes set to 1. The
 * booleans come from fast-check so the choice shrinks.
 */
export function broadcastableTo(out: readonly number[]): fc.Arbitrary<number[]> {
  return fc
    .record({
      drop: fc.integer({ min: 0, max: out.length }),
      ones: fc.array(fc.boolean(), { minLength: out.length, maxLength: out.length }),
    })
    .map(({ drop, ones }) => out.map((d, i) => (ones[i] ? 1 : d)).slice(drop));
}

/** Shapes of `count` operands that broadcast together (to a random common shape). */
export function broadcastShapesArb(count: number, options: ShapeOptions = {}) {
  return shapeArb(options).chain((out) =>
    fc.tuple(...globalThis.Array.from({ length: count }, () => broadcastableTo(out))),
  );
}

/** Values for a float array, stored exactly in the dtype (float32 inputs are pre-rounded). */
export function valuesArb(
  size: number,
  dtype: DType,
  element: fc.Arbitrary<number> = fc.double({ min: -5, max: 5, noNaN: true }),
): fc.Arbitrary<number[]> {
  return fc
    .array(element, { minLength: size, maxLength: size })
    .map((vs) => vs.map((v) => storeAs(v, dtype)));
}

/** A reference array of the given shape with values from `element`, stored in the dtype. */
export function refArb(
  shape: readonly number[],
  dtype: DType,
  element?: fc.Arbitrary<number>,
): fc.Arbitrary<Ref> {
  return valuesArb(sizeOf(shape), dtype, element).map((data) => ref(shape, data));
}

/** Small integers (many ties) as doubles. */
export const smallInts = (lo = -3, hi = 3) => fc.integer({ min: lo, max: hi });

/** Doubles in a range, sometimes exactly representable small integers (ties, zeros). */
export function floats(min: number, max: number): fc.Arbitrary<number> {
  return fc.oneof(
    { weight: 4, arbitrary: fc.double({ min, max, noNaN: true }) },
    {
      weight: 1,
      arbitrary: fc.integer({ min: Math.ceil(min), max: Math.floor(max) }),
    },
  );
}

/** The float dtypes a backend supports: float64 exists on the CPU backend only. */
export function floatDTypes(backend: string): ("float32" | "float64")[] {
  return backend === "cpu" ? ["float32", "float64"] : ["float32"];
}

/** Every dtype a backend supports (structural operations are checked on all of them). */
export function allDTypes(backend: string): DType[] {
  return [...floatDTypes(backend), "int32", "uint32", "bool"];
}

/** Typical values of a dtype: moderate floats, full-range integers, booleans as 0/1. */
export function elementFor(dtype: DType): fc.Arbitrary<number> {
  switch (dtype) {
    case "float32":
    case "float64":
      return floats(-5, 5);
    case "int32":
      return fc.integer({ min: -2147483648, max: 2147483647 });
    case "uint32":
      return fc.integer({ min: 0, max: 4294967295 });
    case "bool":
      return fc.boolean().map((b) => (b ? 1 : 0));
  }
}
