/** CPU kernels that move data without arithmetic: transpose, broadcast, slice, pad, concat, take. */
import { allocate, type DType, type TypedArray } from "../../trace/dtype.js";
import { type Shape, sizeOf, stridesOf } from "../../trace/shape.js";
import { broadcastStrides } from "./elementwise.js";

/** Copies a strided view (shape, per-axis source strides, base offset) into a contiguous array. */
export function gatherStrided(
  src: TypedArray,
  dtype: DType,
  shape: Shape,
  strides: readonly number[],
  offset: number,
): TypedArray {
  const n = sizeOf(shape);
  const out = allocate(dtype, n);
  if (n === 0) return out;
  const rank = shape.length;
  if (rank === 0) {
    out[0] = src[offset]!;
    return out;
  }
  const last = shape[rank - 1]!;
  const ls = strides[rank - 1]!;
  const idx = new Array<number>(rank).fill(0);
  let base = offset;
  let o = 0;
  while (o < n) {
    let p = base;
    if (ls === 1) {
      for (let j = 0; j < last; j++) out[o++] = src[p++]!;
    } else {
      for (let j = 0; j < last; j++, p += ls) out[o++] = src[p]!;
    }
    let d = rank - 2;
    for (; d >= 0; d--) {
      idx[d]!++;
      base += strides[d]!;
      if (idx[d]! < shape[d]!) break;
      base -= strides[d]! * idx[d]!;
      idx[d] = 0;
    }
    if (d < 0) break;
  }
  return out;
}

export function transposeKernel(
  src: TypedArray,
  dtype: DType,
  shape: Shape,
  perm: readonly number[],
): TypedArray {
  const strides = stridesOf(shape);
  return gatherStrided(
    src,
    dtype,
    perm.map((p) => shape[p]!),
    perm.map((p) => strides[p]!),
    0,
  );
}

export function broadcastKernel(
  src: TypedArray,
  dtype: DType,
  inShape: Shape,
  outShape: Shape,
): TypedArray {
  if (src.length === 1) {
    const out = allocate(dtype, sizeOf(outShape));
    out.fill(src[0]!);
    return out;
  }
  return gatherStrided(src, dtype, outShape, broadcastStrides(inShape, outShape), 0);
}

export function sliceKernel(
  src: TypedArray,
  dtype: DType,
  inShape: Shape,
  starts: readonly number[],
  limits: readonly number[],
): TypedArray {
  const strides = stridesOf(inShape);
  let offset = 0;
  for (let i = 0; i < starts.length; i++) offset += starts[i]! * strides[i]!;
  return gatherStrided(
    src,
    dtype,
    limits.map((l, i) => l - starts[i]!),
    strides,
    offset,
  );
}

/** Writes `src` (shape `inShape`) into `out` (shape `outShape`) at per-axis offsets `lo`. */
export function padKernel(
  src: TypedArray,
  dtype: DType,
  inShape: Shape,
  lo: readonly number[],
  outShape: Shape,
  value: number,
): TypedArray {
  const out = allocate(dtype, sizeOf(outShape));
  if (value !== 0) out.fill(value);
  const n = src.length;
  if (n === 0) return out;
  const rank = inShape.length;
  if (rank === 0) {
    out[0] = src[0]!;
    return out;
  }
  const outStrides = stridesOf(outShape);
  let base = 0;
  for (let i = 0; i < rank; i++) base += lo[i]! * outStrides[i]!;
  const last = inShape[rank - 1]!;
  const idx = new Array<number>(rank).fill(0);
  let s = 0;
  while (s < n) {
    // Short rows by element: a subarray view per row costs more than the copy.
    if (last < 16) for (let t = 0; t < last; t++) out[base + t] = src[s + t]!;
    else out.set(src.subarray(s, s + last), base);
    s += last;
    let d = rank - 2;
    for (; d >= 0; d--) {
      idx[d]!++;
      base += outStrides[d]!;
      if (idx[d]! < inShape[d]!) break;
      base -= outStrides[d]! * idx[d]!;
      idx[d] = 0;
    }
    if (d < 0) break;
  }
  return out;
}

export function concatenateKernel(
  srcs: readonly TypedArray[],
  shapes: readonly Shape[],
  dtype: DType,
  axis: number,
  outShape: Shape,
): TypedArray {
  const out = allocate(dtype, sizeOf(outShape));
  const outer = sizeOf(outShape.slice(0, axis));
  const inner = sizeOf(outShape.slice(axis + 1));
  const rowOut = outShape[axis]! * inner;
  let colOffset = 0;
  for (let k = 0; k < srcs.length; k++) {
    const src = srcs[k]!;
    const chunk = shapes[k]![axis]! * inner;
    if (chunk > 0 && chunk < 16) {
      // Short rows by element: a subarray view per row costs more than the copy (as padKernel).
      for (let o = 0, s = 0; o < outer; o++) {
        const base = o * rowOut + colOffset;
        for (let t = 0; t < chunk; t++) out[base + t] = src[s++]!;
      }
    } else if (chunk > 0) {
      for (let o = 0; o < outer; o++) {
        out.set(src.subarray(o * chunk, (o + 1) * chunk), o * rowOut + colOffset);
      }
    }
    colOffset += chunk;
  }
  return out;
}

/** Index into an axis of size n: negative indices wrap once, out-of-range ones clamp (as JAX). */
function clampIndex(i: number, n: number): number {
  if (i < 0) i += n;
  return i < 0 ? 0 : i >= n ? n - 1 : i;
}

/** NumPy `take(x, idx, axis)`: shape x.shape[:axis] + idx.shape + x.shape[axis+1:]. */
export function takeKernel(
  src: TypedArray,
  dtype: DType,
  inShape: Shape,
  idx: Int32Array,
  axis: number,
): TypedArray {
  const outer = sizeOf(inShape.slice(0, axis));
  const n = inShape[axis]!;
  const inner = sizeOf(inShape.slice(axis + 1));
  const m = idx.length;
  const out = allocate(dtype, outer * m * inner);
  if (n === 0) return out;
  let o = 0;
  for (let a = 0; a < outer; a++) {
    const base = a * n * inner;
    for (let j = 0; j < m; j++) {
      const start = base + clampIndex(idx[j]!, n) * inner;
      if (inner === 1) out[o++] = src[start]!;
      else {
        out.set(src.subarray(start, start + inner), o);
        o += inner;
      }
    }
  }
  return out;
}

/** The transpose of take: adds each slice of `updates` into position idx of a zero array. */
export function scatterAddKernel(
  updates: TypedArray,
  dtype: DType,
  outShape: Shape,
  idx: Int32Array,
  axis: number,
): TypedArray {
  const outer = sizeOf(outShape.slice(0, axis));
  const n = outShape[axis]!;
  const inner = sizeOf(outShape.slice(axis + 1));
  const m = idx.length;
  const out = allocate(dtype, outer * n * inner);
  if (n === 0) return out;
  let u = 0;
  for (let a = 0; a < outer; a++) {
    const base = a * n * inner;
    for (let j = 0; j < m; j++) {
      const start = base + clampIndex(idx[j]!, n) * inner;
      for (let k = 0; k < inner; k++) out[start + k] += updates[u++]!;
    }
  }
  return out;
}
