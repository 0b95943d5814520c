/**
 * Reductions on the CPU. Reduced axes are brought to the end (a transpose copy when they are not
 * already trailing, or the leading-axes fast path), then each output is one contiguous loop.
 * float32 sums accumulate in float64, so long sums keep float32's full precision.
 */
import { allocate, type DType, type TypedArray } from "../../trace/dtype.js";
import { type Shape, sizeOf } from "../../trace/shape.js";
import { transposeKernel } from "./structural.js";

export type ReduceKind = "sum" | "max" | "min";

function layout(shape: Shape, axes: readonly number[]) {
  const kept = shape.map((_, i) => i).filter((i) => !axes.includes(i));
  const trailing = axes.every((a, i) => a === shape.length - axes.length + i);
  const leading = axes.every((a, i) => a === i);
  return { kept, trailing, leading };
}

export function reduceKernel(
  kind: ReduceKind,
  src: TypedArray,
  dtype: DType,
  shape: Shape,
  axes: readonly number[],
): TypedArray {
  const { kept, trailing, leading } = layout(shape, axes);
  const outSize = sizeOf(kept.map((i) => shape[i]!));
  const inner = sizeOf(axes.map((a) => shape[a]!));
  const out = allocate(dtype, outSize);
  if (leading && !trailing && inner > 0) {
    // out[j] = reduce_i src[i * outSize + j]: contiguous rows, vectorisable.
    const acc =
      kind === "sum" ? new Float64Array(outSize) : Float64Array.from(src.subarray(0, outSize));
    if (kind === "sum") {
      for (let i = 0; i < inner; i++) {
        const base = i * outSize;
        for (let j = 0; j < outSize; j++) acc[j]! += src[base + j]!;
      }
    } else {
      const isMax = kind === "max";
      for (let i = 1; i < inner; i++) {
        const base = i * outSize;
        for (let j = 0; j < outSize; j++) {
          const v = src[base + j]!;
          const a = acc[j]!;
          if (v !== v || (isMax ? v > a : v < a)) acc[j] = v;
          if (a !== a) acc[j] = a;
        }
      }
    }
    out.set(acc);
    return out;
  }
  const data = trailing ? src : transposeKernel(src, dtype, shape, [...kept, ...axes]);
  const identity =
    kind === "sum" ? 0 : kind === "max" ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
  for (let o = 0; o < outSize; o++) {
    const base = o * inner;
    let acc = identity;
    if (kind === "sum") {
      for (let k = 0; k < inner; k++) acc += data[base + k]!;
    } else if (kind === "max") {
      for (let k = 0; k < inner; k++) {
        const v = data[base + k]!;
        if (v > acc || v !== v) {
          acc = v;
          if (v !== v) break;
        }
      }
    } else {
      for (let k = 0; k < inner; k++) {
        const v = data[base + k]!;
        if (v < acc || v !== v) {
          acc = v;
          if (v !== v) break;
        }
      }
    }
    out[o] = acc;
  }
  if (inner === 0 && dtype === "int32" && kind !== "sum") {
    out.fill(kind === "max" ? -2147483648 : 2147483647);
  }
  return out;
}

/** Index of the first maximum along one axis (NaN counts as the maximum, as in NumPy). */
export function argmaxKernel(
  src: TypedArray,
  dtype: DType,
  shape: Shape,
  axis: number,
): Int32Array {
  const rank = shape.length;
  const kept = shape.map((_, i) => i).filter((i) => i !== axis);
  const data = axis === rank - 1 ? src : transposeKernel(src, dtype, shape, [...kept, axis]);
  const n = shape[axis]!;
  const outSize = sizeOf(kept.map((i) => shape[i]!));
  const out = new Int32Array(outSize);
  for (let o = 0; o < outSize; o++) {
    const base = o * n;
    let best = 0;
    let bestValue = data[base]!;
    if (bestValue === bestValue) {
      for (let k = 1; k < n; k++) {
        const v = data[base + k]!;
        if (v !== v) {
          best = k;
          break;
        }
        if (v > bestValue) {
          bestValue = v;
          best = k;
        }
      }
    }
    out[o] = best;
  }
  return out;
}
