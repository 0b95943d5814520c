/**
 * Data movement on WebGPU. One strided-gather shader serves transpose, broadcast_to and slice
 * (out[i] = in[offset + Σ coord_d · stride_d], strides permuted, zero or offset); reshape shares
 * the buffer; pad, concatenate, take and scatter_add have their own shaders. scatter_add runs one
 * invocation per output element summing its updates in index order (no float atomics in WGSL),
 * which also makes it deterministic and equal to the CPU's summation order.
 */
import type { ConcreteArray } from "../../trace/concrete-array.js";
import type { DType } from "../../trace/dtype.js";
import type { Kernel } from "../../trace/primitive.js";
import { type Shape, sizeOf } from "../../trace/shape.js";
import {
  bindings,
  bitsOf,
  dispatch,
  FLAT_MAIN,
  flatGrid,
  gpuBuf,
  memoSource,
  newArray,
  strides,
  viewArray,
  wgslType,
} from "./dispatch.js";

const gatherSource = memoSource(
  (t: string) => `
${bindings([`src: array<${t}>`], [`out: array<${t}>`])}
${FLAT_MAIN}
  if (i >= prm[0]) { return; }
  let rank = prm[1];
  var rem = i;
  var o = prm[2];
  for (var d = i32(rank) - 1; d >= 0; d--) {
    let s = prm[3u + u32(d)];
    let c = rem % s; rem = rem / s;
    o += c * prm[3u + rank + u32(d)];
  }
  out[i] = src[o];
}`,
);

/** out (shape) [i] = x[offset + Σ c_d · inStrides_d]. */
export function stridedGather(
  x: ConcreteArray,
  shape: Shape,
  offset: number,
  inStrides: number[],
  dtype: DType = x.dtype,
): ConcreteArray {
  const out = newArray(shape, dtype);
  const n = sizeOf(shape);
  if (n === 0) return out;
  dispatch(
    gatherSource(wgslType(dtype)),
    [gpuBuf(x), out.buffer as never],
    [n, shape.length, offset, ...shape, ...inStrides],
    flatGrid(n),
  );
  return out;
}

export function transposeGpu(x: ConcreteArray, perm: readonly number[]): ConcreteArray {
  const xs = strides(x.shape);
  return stridedGather(
    x,
    perm.map((p) => x.shape[p]!),
    0,
    perm.map((p) => xs[p]!),
  );
}

export const gpuReshape: Kernel<{ shape: number[] }> = ([x], { shape }) => [viewArray(x!, shape)];

export const gpuTranspose: Kernel<{ perm: number[] }> = ([x], { perm }) => [transposeGpu(x!, perm)];

export const gpuBroadcastTo: Kernel<{ shape: number[] }> = ([x], { shape }) => {
  const xs = strides(x!.shape);
  const off = shape.length - x!.shape.length;
  const st = shape.map((_, d) => {
    const xd = d - off;
    return xd < 0 || x!.shape[xd] === 1 ? 0 : xs[xd]!;
  });
  return [stridedGather(x!, shape, 0, st)];
};

export const gpuSlice: Kernel<{ starts: number[]; limits: number[] }> = (
  [x],
  { starts, limits },
) => {
  const xs = strides(x!.shape);
  const shape = starts.map((s, i) => limits[i]! - s);
  const offset = starts.reduce((acc, s, i) => acc + s * xs[i]!, 0);
  return [stridedGather(x!, shape, offset, xs)];
};

const padSource = memoSource(
  (t: string) => `
${bindings([`src: array<${t}>`], [`out: array<${t}>`])}
${FLAT_MAIN}
  if (i >= prm[0]) { return; }
  let rank = prm[1];
  var rem = i;
  var o = 0u;
  var inside = true;
  for (var d = i32(rank) - 1; d >= 0; d--) {
    let s = prm[3u + u32(d)];
    let c = rem % s; rem = rem / s;
    let lo = prm[3u + rank + u32(d)];
    let n = prm[3u + 2u * rank + u32(d)];
    if (c < lo || c >= lo + n) { inside = false; }
    o += (c - lo) * prm[3u + 3u * rank + u32(d)];
  }
  if (inside) { out[i] = src[o]; } else { out[i] = bitcast<${t}>(prm[2]); }
}`,
);

export const gpuPad: Kernel<{ lo: number[]; hi: number[]; value: number }> = (
  [x],
  { lo, hi, value },
) => {
  const shape = x!.shape.map((s, i) => s + lo[i]! + hi[i]!);
  const out = newArray(shape, x!.dtype);
  const n = sizeOf(shape);
  if (n === 0) return [out];
  dispatch(
    padSource(wgslType(x!.dtype)),
    [gpuBuf(x!), out.buffer as never],
    [n, shape.length, bitsOf(value, x!.dtype), ...shape, ...lo, ...x!.shape, ...strides(x!.shape)],
    flatGrid(n),
  );
  return [out];
};

const scatterCopySource = memoSource(
  (t: string) => `
${bindings([`src: array<${t}>`], [`out: array<${t}>`])}
${FLAT_MAIN}
  if (i >= prm[0]) { return; }
  let rank = prm[1];
  var rem = i;
  var o = prm[2];
  for (var d = i32(rank) - 1; d >= 0; d--) {
    let s = prm[3u + u32(d)];
    let c = rem % s; rem = rem / s;
    o += c * prm[3u + rank + u32(d)];
  }
  out[o] = src[i];
}`,
);

export const gpuConcatenate: Kernel<{ axis: number }> = (xs, { axis }) => {
  const first = xs[0]!;
  const shape = [...first.shape];
  shape[axis] = xs.reduce((acc, x) => acc + x.shape[axis]!, 0);
  const out = newArray(shape, first.dtype);
  const os = strides(shape);
  let at = 0;
  for (const x of xs) {
    const n = sizeOf(x.shape);
    if (n > 0) {
      dispatch(
        scatterCopySource(wgslType(first.dtype)),
        [gpuBuf(x), out.buffer as never],
        [n, shape.length, at * os[axis]!, ...x.shape, ...os],
        flatGrid(n),
      );
    }
    at += x.shape[axis]!;
  }
  return [out];
};

const takeSource = memoSource(
  (t: string) => `
${bindings([`src: array<${t}>`, "idx: array<i32>"], [`out: array<${t}>`])}
${FLAT_MAIN}
  // meta: [size, m, inner, n]
  if (i >= prm[0]) { return; }
  let m = prm[1]; let inner = prm[2]; let n = i32(prm[3]);
  let k = i % inner;
  let j = (i / inner) % m;
  let a = i / (inner * m);
  var t = idx[j];
  if (t < 0) { t += n; }
  t = clamp(t, 0, n - 1);
  out[i] = src[(a * u32(n) + u32(t)) * inner + k];
}`,
);

export const gpuTake: Kernel<{ axis: number }> = ([x, idx], { axis }) => {
  const shape = [...x!.shape.slice(0, axis), ...idx!.shape, ...x!.shape.slice(axis + 1)];
  const out = newArray(shape, x!.dtype);
  const size = sizeOf(shape);
  const n = x!.shape[axis]!;
  if (size === 0 || n === 0) return [out];
  const m = sizeOf(idx!.shape);
  const inner = sizeOf(x!.shape.slice(axis + 1));
  dispatch(
    takeSource(wgslType(x!.dtype)),
    [gpuBuf(x!), gpuBuf(idx!), out.buffer as never],
    [size, m, inner, n],
    flatGrid(size),
  );
  return [out];
};

const scatterAddSource = memoSource(
  (t: string) => `
${bindings([`upd: array<${t}>`, "idx: array<i32>"], [`out: array<${t}>`])}
${FLAT_MAIN}
  // meta: [size, m, inner, n]; out[a, t, k] = Σ_{j: clamp(idx[j]) = t} upd[a, j, k]
  if (i >= prm[0]) { return; }
  let m = prm[1]; let inner = prm[2]; let n = i32(prm[3]);
  let k = i % inner;
  let t = i32((i / inner) % u32(n));
  let a = i / (inner * u32(n));
  var acc = ${t}(0);
  for (var j = 0u; j < m; j++) {
    var s = idx[j];
    if (s < 0) { s += n; }
    s = clamp(s, 0, n - 1);
    if (s == t) { acc += upd[(a * m + j) * inner + k]; }
  }
  out[i] = acc;
}`,
);

export const gpuScatterAdd: Kernel<{ axis: number; size: number }> = ([u, idx], { axis, size }) => {
  const k = idx!.shape.length;
  const shape = [...u!.shape.slice(0, axis), size, ...u!.shape.slice(axis + k)];
  const out = newArray(shape, u!.dtype);
  const total = sizeOf(shape);
  if (total === 0) return [out];
  const m = sizeOf(idx!.shape);
  const inner = sizeOf(shape.slice(axis + 1));
  dispatch(
    scatterAddSource(wgslType(u!.dtype)),
    [gpuBuf(u!), gpuBuf(idx!), out.buffer as never],
    [total, m, inner, size],
    flatGrid(total),
  );
  return [out];
};
