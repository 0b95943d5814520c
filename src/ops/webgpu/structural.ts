/**
 * Data movement on WebGPU. One strided-gather shader serves transpose, broadcast_to and slice
 * (out[i] = in[offset + Σ coord_d · stride_d], strides permuted, zero or offset); reshape shares
 * the buffer; pad, concatenate (up to 14 pieces a kernel), leading-axis unstacking (for scan),
 * take and scatter_add have their own shaders. scatter_add runs one
 * invocation per output element summing its updates in index order (no float atomics in WGSL),
 * which also makes it deterministic and equal to the CPU's summation order.
 */
import type { ConcreteArray } from "../../trace/concrete-array.js";
import type { DType } from "../../trace/dtype.js";
import type { Kernel } from "../../trace/primitive.js";
import { type Shape, sizeOf } from "../../trace/shape.js";
import { type GpuBuf, gpuDevice } from "./backend.js";
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

/**
 * Pieces per concatenation or unstacking kernel: each binds one storage buffer, with the other
 * side and the meta words beside them, within the device's per-stage limit.
 */
function piecesPerKernel(): number {
  return Math.max(1, Math.min(14, gpuDevice().limits.maxStorageBuffersPerShaderStage - 2));
}

/**
 * k consecutive pieces along an axis in one kernel, over the region [outer, c0 .. c0 + len,
 * inner] of the whole array they cover: `"concat"` reads pieces in0 … and writes the whole `out`,
 * `"split"` reads the whole `src` and writes pieces out0 …. meta: [n, len, inner, total, c0,
 * end_0 .. end_{k-1}] (each piece's end along the axis, counted from c0); piece j's element is
 * (o · L_j + t − s_j) · inner + r, the whole's (o · total + c0 + t) · inner + r.
 */
const piecesSource = memoSource((k: number, t: string, direction: "concat" | "split") => {
  const branches: string[] = [];
  for (let j = 0; j < k; j++) {
    const start = j === 0 ? "0u" : `prm[${4 + j}u]`;
    const cond = j === k - 1 ? "" : `if (t < prm[${5 + j}u]) `;
    const piece = `(o * l + t - s) * inner + r`;
    const move =
      direction === "concat" ? `out[at] = in${j}[${piece}];` : `out${j}[${piece}] = src[at];`;
    branches.push(
      `${j === 0 ? "" : "else "}${cond}{ let s = ${start}; let l = prm[${5 + j}u] - s; ${move} }`,
    );
  }
  const pieces = Array.from({ length: k }, (_, j) =>
    direction === "concat" ? `in${j}: array<${t}>` : `out${j}: array<${t}>`,
  );
  return `
${direction === "concat" ? bindings(pieces, [`out: array<${t}>`]) : bindings([`src: array<${t}>`], pieces)}
${FLAT_MAIN}
  if (i >= prm[0]) { return; }
  let len = prm[1]; let inner = prm[2];
  let r = i % inner; let t = (i / inner) % len; let o = i / (inner * len);
  let at = (o * prm[3] + prm[4] + t) * inner + r;
  ${branches.join("\n  ")}
}`;
});

/**
 * Moves the pieces of `sizes` along an axis of `shape` between the whole array and the pieces,
 * one `piecesSource` kernel per `piecesPerKernel()` non-empty pieces; `buffers(js)` gives the
 * kernel's bindings for the pieces `js`.
 */
function movePieces(
  direction: "concat" | "split",
  shape: Shape,
  axis: number,
  sizes: readonly number[],
  dtype: DType,
  buffers: (js: readonly number[]) => GpuBuf[],
): void {
  const outer = sizeOf(shape.slice(0, axis));
  const inner = sizeOf(shape.slice(axis + 1));
  const total = shape[axis]!;
  if (outer * inner === 0) return;
  const starts: number[] = [];
  const nonEmpty: number[] = [];
  let at = 0;
  sizes.forEach((n, j) => {
    starts.push(at);
    if (n > 0) nonEmpty.push(j);
    at += n;
  });
  const per = piecesPerKernel();
  for (let g = 0; g < nonEmpty.length; g += per) {
    const js = nonEmpty.slice(g, g + per);
    const c0 = starts[js[0]!]!;
    const ends = js.map((j) => starts[j]! + sizes[j]! - c0);
    const len = ends[ends.length - 1]!;
    const n = outer * len * inner;
    dispatch(
      piecesSource(js.length, wgslType(dtype), direction),
      buffers(js),
      [n, len, inner, total, c0, ...ends],
      flatGrid(n),
    );
  }
}

/** Concatenation along an axis: one kernel per `piecesPerKernel()` non-empty pieces. */
export const gpuConcatenate: Kernel<{ axis: number }> = (xs, { axis }) => {
  const first = xs[0]!;
  const shape = [...first.shape];
  shape[axis] = xs.reduce((acc, x) => acc + x.shape[axis]!, 0);
  const out = newArray(shape, first.dtype);
  const sizes = xs.map((x) => x.shape[axis]!);
  movePieces("concat", shape, axis, sizes, first.dtype, (js) => [
    ...js.map((j) => gpuBuf(xs[j]!)),
    out.buffer as GpuBuf,
  ]);
  return [out];
};

/** x cut along an axis into pieces of the given lengths: one kernel per `piecesPerKernel()`. */
export const gpuSplit: Kernel<{ axis: number; sizes: number[] }> = ([x], { axis, sizes }) => {
  const outs = sizes.map((n) =>
    newArray(
      x!.shape.map((d, i) => (i === axis ? n : d)),
      x!.dtype,
    ),
  );
  movePieces("split", x!.shape, axis, sizes, x!.dtype, (js) => [
    gpuBuf(x!),
    ...js.map((j) => outs[j]!.buffer as GpuBuf),
  ]);
  return outs;
};

/**
 * k consecutive leading slices x[s0], …, x[s0 + k − 1] of a row-major array in one kernel.
 * meta: [n, inner, s0]; output j gets x[(s0 + j) · inner + r].
 */
const unstackSource = memoSource((k: number, t: string) => {
  const branches: string[] = [];
  for (let j = 0; j < k; j++) {
    branches.push(
      `${j === 0 ? "" : "else "}if (j == ${j}u) { out${j}[r] = src[(prm[2] + j) * inner + r]; }`,
    );
  }
  return `
${bindings(
  [`src: array<${t}>`],
  Array.from({ length: k }, (_, j) => `out${j}: array<${t}>`),
)}
${FLAT_MAIN}
  if (i >= prm[0]) { return; }
  let inner = prm[1];
  let r = i % inner; let j = i / inner;
  ${branches.join("\n  ")}
}`;
});

/**
 * x[0], …, x[L − 1] along the leading axis, a few kernels for all of them (a loop over the
 * leading axis, as scan's, would otherwise slice once per step).
 */
export function gpuUnstack(x: ConcreteArray): ConcreteArray[] {
  const [length, ...rest] = x.shape;
  const inner = sizeOf(rest);
  const outs = Array.from({ length: length! }, () => newArray(rest, x.dtype));
  if (inner === 0) return outs;
  const per = piecesPerKernel();
  for (let s0 = 0; s0 < length!; s0 += per) {
    const group = outs.slice(s0, s0 + per);
    const n = group.length * inner;
    dispatch(
      unstackSource(group.length, wgslType(x.dtype)),
      [gpuBuf(x), ...group.map((o) => o.buffer as never)],
      [n, inner, s0],
      flatGrid(n),
    );
  }
  return outs;
}

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
