/**
 * Reductions, argmax, argsort, matmul, conv1d (and its two adjoints), max pooling and random
 * bits on WebGPU.
 */
import type { ConcreteArray } from "../../trace/concrete-array.js";
import type { DType } from "../../trace/dtype.js";
import type { Kernel } from "../../trace/primitive.js";
import { broadcastShapes, sizeOf } from "../../trace/shape.js";
import {
  bindings,
  dispatch,
  FLAT_MAIN,
  flatGrid,
  gpuBuf,
  memoSource,
  newArray,
  strides,
  wgslType,
} from "./dispatch.js";
import { transposeGpu } from "./structural.js";

const ISNAN =
  "fn isnan_f(a: f32) -> bool { return (bitcast<u32>(a) & 0x7fffffffu) > 0x7f800000u; }\n" +
  "fn f32_bits(u: u32) -> f32 { return bitcast<f32>(u); }";

/** Moves `axes` to the end (a transpose copy unless they already trail). */
function axesLast(x: ConcreteArray, axes: readonly number[]): ConcreteArray {
  const rank = x.shape.length;
  const trailing = axes.every((a, i) => a === rank - axes.length + i);
  if (trailing) return x;
  const kept = x.shape.map((_, i) => i).filter((i) => !axes.includes(i));
  return transposeGpu(x, [...kept, ...axes]);
}

type ReduceKind = "sum" | "max" | "min";

function identity(kind: ReduceKind, dtype: DType): string {
  const t = wgslType(dtype);
  if (kind === "sum") return `${t}(0)`;
  if (dtype === "float32")
    return kind === "max" ? "f32_bits(0xff800000u)" : "f32_bits(0x7f800000u)";
  if (dtype === "int32") return kind === "max" ? "i32(-2147483648)" : "2147483647";
  // uint32 and bool: the CPU stores ±Infinity into an unsigned array as 0.
  return "0u";
}

/** Integer combine (floats have their NaN-aware version in reduceSource). */
function combine(kind: ReduceKind): string {
  return kind === "sum" ? "a + b" : kind === "max" ? "max(a, b)" : "min(a, b)";
}

const RED_WG = 64;

/** One workgroup per row of `rows × len`; a strided per-thread pass, then a tree in shared memory. */
const reduceSource = memoSource(function reduceSource(kind: ReduceKind, dtype: DType): string {
  const t = wgslType(dtype);
  // NaN wins for float max/min: checked explicitly so no comparison order can drop it.
  const comb =
    dtype === "float32" && kind !== "sum"
      ? `fn comb(a: f32, b: f32) -> f32 { if (isnan_f(a)) { return a; } if (isnan_f(b)) { return b; } return select(a, b, b ${kind === "max" ? ">" : "<"} a); }`
      : `fn comb(a: ${t}, b: ${t}) -> ${t} { return ${combine(kind)}; }`;
  return `${ISNAN}
${comb}
${bindings([`src: array<${t}>`], [`out: array<${t}>`])}
var<workgroup> part: array<${t}, ${RED_WG}>;
@compute @workgroup_size(${RED_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_id) lid: vec3u) {
  let row = wid.x + wid.y * nwg.x;
  let rows = prm[0]; let len = prm[1];
  var acc = ${identity(kind, dtype)};
  if (row < rows) {
    for (var k = lid.x; k < len; k += ${RED_WG}u) { acc = comb(acc, src[row * len + k]); }
  }
  part[lid.x] = acc;
  workgroupBarrier();
  for (var s = ${RED_WG / 2}u; s > 0u; s = s >> 1u) {
    if (lid.x < s) { part[lid.x] = comb(part[lid.x], part[lid.x + s]); }
    workgroupBarrier();
  }
  if (lid.x == 0u && row < rows) { out[row] = part[0]; }
}`;
});

function rowsGrid(rows: number): [number, number, number] {
  if (rows <= 65535) return [Math.max(rows, 1), 1, 1];
  const y = Math.ceil(rows / 65535);
  return [Math.ceil(rows / y), y, 1];
}

export function gpuReduce(kind: ReduceKind): Kernel<{ axes: number[] }> {
  return ([x], { axes }) => {
    const shape = x!.shape.filter((_, i) => !axes.includes(i));
    const out = newArray(shape, x!.dtype);
    const rows = sizeOf(shape);
    if (rows === 0) return [out];
    const len = sizeOf(axes.map((a) => x!.shape[a]!));
    const src = len === 0 ? x! : axesLast(x!, axes);
    dispatch(
      reduceSource(kind, x!.dtype),
      [gpuBuf(src), out.buffer as never],
      [rows, len],
      rowsGrid(rows),
    );
    return [out];
  };
}

const argmaxSource = memoSource(
  (t: string) => `${ISNAN}
${bindings([`src: array<${t}>`], ["out: array<i32>"])}
${FLAT_MAIN}
  if (i >= prm[0]) { return; }
  let len = prm[1];
  let base = i * len;
  var best = src[base];
  var bi = 0u;
  for (var k = 1u; k < len; k++) {
    ${t === "f32" ? "if (isnan_f(best)) { break; }" : ""}
    let v = src[base + k];
    if (v > best ${t === "f32" ? "|| isnan_f(v)" : ""}) { best = v; bi = k; }
  }
  out[i] = i32(bi);
}`,
);

export const gpuArgmax: Kernel<{ axis: number }> = ([x], { axis }) => {
  const shape = x!.shape.filter((_, i) => i !== axis);
  const out = newArray(shape, "int32");
  const rows = sizeOf(shape);
  if (rows === 0) return [out];
  const src = axesLast(x!, [axis]);
  dispatch(
    argmaxSource(wgslType(x!.dtype)),
    [gpuBuf(src), out.buffer as never],
    [rows, x!.shape[axis]!],
    flatGrid(rows),
  );
  return [out];
};

/**
 * Stable argsort, NaN last, computed on the GPU by ranking: element i of a row goes to position
 * #{j : key_j < key_i, or key_j = key_i and j < i}. O(n²) per row, fine for the short axes it is
 * used on (quantiles, resampling); no readback needed.
 */
const argsortSource = memoSource(
  (t: string) => `${ISNAN}
fn before(a: ${t}, b: ${t}, ia: u32, ib: u32) -> bool {
  ${
    t === "f32"
      ? `let na = isnan_f(a); let nb = isnan_f(b);
  if (na || nb) { return (!na && nb) || (na && nb && ia < ib); }`
      : ""
  }
  return a < b || (a == b && ia < ib);
}
${bindings([`src: array<${t}>`], ["out: array<i32>"])}
${FLAT_MAIN}
  if (i >= prm[0]) { return; }
  let len = prm[1];
  let row = i / len; let k = i % len;
  let base = row * len;
  let v = src[i];
  var rank = 0u;
  for (var j = 0u; j < len; j++) { if (before(src[base + j], v, j, k)) { rank++; } }
  out[base + rank] = i32(k);
}`,
);

export const gpuArgsort: Kernel<{ axis: number }> = ([x], { axis }) => {
  const rank = x!.shape.length;
  const n = sizeOf(x!.shape);
  if (n === 0) return [newArray(x!.shape, "int32")];
  const moved = axesLast(x!, [axis]);
  const len = x!.shape[axis]!;
  const sorted = newArray(moved === x ? x!.shape : moved.shape, "int32");
  dispatch(
    argsortSource(wgslType(x!.dtype)),
    [gpuBuf(moved), sorted.buffer as never],
    [n, len],
    flatGrid(n),
  );
  if (axis === rank - 1) return [sorted];
  // sorted has axes [...kept, axis]: result axis p comes from kept.indexOf(p), or the last.
  const kept = x!.shape.map((_, i) => i).filter((i) => i !== axis);
  const perm = x!.shape.map((_, p) => (p === axis ? rank - 1 : kept.indexOf(p)));
  return [transposeGpu(sorted, perm)];
};

// -------------------------------------------------------------------------------------------
// matmul: 16×16 output tiles staged through workgroup memory; batch axes broadcast.

const TILE = 16;

/**
 * What a fused kernel does with each element of the product instead of storing it (see
 * fused.ts): matmul + bias + activation in one pass, without the product in memory.
 */
export interface MatmulEpilogue {
  /** WGSL functions the statements call (module scope). */
  readonly prelude: string;
  /** Binding declarations of the extra inputs, bound after the two factors. */
  readonly inputs: readonly string[];
  /** Binding declarations of the outputs (they replace the product's `out`). */
  readonly outputs: readonly string[];
  /**
   * Statements run once per element of the product, with `acc: f32` (the element) and `i: u32`
   * (its flat row-major index in the product [...batch, M, N]) in scope; they store the outputs.
   */
  readonly store: string;
}

const PLAIN: MatmulEpilogue = {
  prelude: "",
  inputs: [],
  outputs: ["out: array<f32>"],
  store: "out[i] = acc;",
};

/** The batch offsets of A and B for workgroup z (shared by both kernels). */
const BATCH_OFFSETS = `
  let M = prm[0]; let K = prm[1]; let N = prm[2]; let br = prm[3];
  let aRs = prm[4]; let aCs = prm[5]; let bRs = prm[6]; let bCs = prm[7];
  var rem = wid.z; var aOff = 0u; var bOff = 0u;
  for (var d = i32(br) - 1; d >= 0; d--) {
    let s = prm[8u + u32(d)];
    let c = rem % s; rem = rem / s;
    aOff += c * prm[8u + br + u32(d)];
    bOff += c * prm[8u + 2u * br + u32(d)];
  }
  aOff *= M * K; bOff *= K * N;`;

function matmulSource(e: MatmulEpilogue): string {
  return `${e.prelude}
${bindings(["lhs: array<f32>", "rhs: array<f32>", ...e.inputs], [...e.outputs])}
var<workgroup> As: array<f32, ${TILE * TILE}>;
var<workgroup> Bs: array<f32, ${TILE * TILE}>;
@compute @workgroup_size(${TILE}, ${TILE})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  // meta: [M, K, N, batchRank, aRs, aCs, bRs, bCs, batchShape..., aBatchStrides...,
  // bBatchStrides...]: row and column element strides of A and B as used (a transposed operand
  // swaps them).${BATCH_OFFSETS}
  let row = wid.y * ${TILE}u + lid.y;
  let col = wid.x * ${TILE}u + lid.x;
  var acc = 0.0;
  for (var t = 0u; t < K; t += ${TILE}u) {
    let ka = t + lid.x;
    var av = 0.0;
    if (row < M && ka < K) { av = lhs[aOff + row * aRs + ka * aCs]; }
    As[lid.y * ${TILE}u + lid.x] = av;
    let kb = t + lid.y;
    var bv = 0.0;
    if (kb < K && col < N) { bv = rhs[bOff + kb * bRs + col * bCs]; }
    Bs[lid.y * ${TILE}u + lid.x] = bv;
    workgroupBarrier();
    for (var k = 0u; k < ${TILE}u; k++) { acc += As[lid.y * ${TILE}u + k] * Bs[k * ${TILE}u + lid.x]; }
    workgroupBarrier();
  }
  if (row < M && col < N) {
    let i = wid.z * M * N + row * N + col;
    ${e.store}
  }
}`;
}

/** Register blocking: each invocation of a 16 × 16 workgroup computes BLOCK × BLOCK outputs. */
const BLOCK = 4;
const WIDE = TILE * BLOCK; // a workgroup's tile of C: 64 × 64

/**
 * The register-blocked kernel for large products: a 64 × 64 tile of C per workgroup, each
 * invocation accumulating a 4 × 4 block in registers from 64 × 16 and 16 × 64 tiles of A and B in
 * workgroup memory. Four times the arithmetic per value read from workgroup memory of the
 * one-output kernel. Each output's sum runs over k in order, as there.
 */
function blockedMatmulSource(e: MatmulEpilogue): string {
  const loads = (TILE * WIDE) / (TILE * TILE); // tile elements each invocation loads
  return `${e.prelude}
${bindings(["lhs: array<f32>", "rhs: array<f32>", ...e.inputs], [...e.outputs])}
var<workgroup> As: array<f32, ${TILE * WIDE}>;
var<workgroup> Bs: array<f32, ${TILE * WIDE}>;
@compute @workgroup_size(${TILE}, ${TILE})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u,
        @builtin(local_invocation_index) li: u32) {
  // meta as in the one-output kernel.${BATCH_OFFSETS}
  let row0 = wid.y * ${WIDE}u;
  let col0 = wid.x * ${WIDE}u;
  var accs: array<f32, ${BLOCK * BLOCK}>;
  for (var t = 0u; t < K; t += ${TILE}u) {
    for (var q = 0u; q < ${loads}u; q++) {
      let e = li + q * ${TILE * TILE}u;
      // A's tile stored k-major (As[k][row]), B's as it is (Bs[k][col]).
      let r = e / ${TILE}u; let ka = e % ${TILE}u;
      var av = 0.0;
      if (row0 + r < M && t + ka < K) { av = lhs[aOff + (row0 + r) * aRs + (t + ka) * aCs]; }
      As[ka * ${WIDE}u + r] = av;
      let kb = e / ${WIDE}u; let c = e % ${WIDE}u;
      var bv = 0.0;
      if (t + kb < K && col0 + c < N) { bv = rhs[bOff + (t + kb) * bRs + (col0 + c) * bCs]; }
      Bs[kb * ${WIDE}u + c] = bv;
    }
    workgroupBarrier();
    for (var k = 0u; k < ${TILE}u; k++) {
      var a: array<f32, ${BLOCK}>;
      var b: array<f32, ${BLOCK}>;
      for (var r = 0u; r < ${BLOCK}u; r++) { a[r] = As[k * ${WIDE}u + lid.y * ${BLOCK}u + r]; }
      for (var c = 0u; c < ${BLOCK}u; c++) { b[c] = Bs[k * ${WIDE}u + lid.x * ${BLOCK}u + c]; }
      for (var r = 0u; r < ${BLOCK}u; r++) {
        for (var c = 0u; c < ${BLOCK}u; c++) { accs[r * ${BLOCK}u + c] += a[r] * b[c]; }
      }
    }
    workgroupBarrier();
  }
  for (var r = 0u; r < ${BLOCK}u; r++) {
    for (var c = 0u; c < ${BLOCK}u; c++) {
      let row = row0 + lid.y * ${BLOCK}u + r;
      let col = col0 + lid.x * ${BLOCK}u + c;
      if (row < M && col < N) {
        let acc = accs[r * ${BLOCK}u + c];
        let i = wid.z * M * N + row * N + col;
        ${e.store}
      }
    }
  }
}`;
}

/**
 * Large products (at least this many outputs per batch element, and 64 rows and columns) run on
 * the register-blocked kernel; smaller ones keep one output per invocation, which gives a GPU
 * more workgroups. Untuned on hardware GPUs (none was available); on lavapipe the blocked kernel
 * is faster from about this size.
 */
const BLOCKED_MIN_OUTPUTS = 64 * 64 * 4;

const plainMatmulSource = matmulSource(PLAIN);
const plainBlockedSource = blockedMatmulSource(PLAIN);
/** The blocked variant of each epilogue kernel, by its one-output source. */
const blockedVariants = new Map<string, string>([[plainMatmulSource, plainBlockedSource]]);

/** Product shape and launch meta of matmul(a, b) with transposed-operand flags. */
function matmulLayout(a: ConcreteArray, b: ConcreteArray, tA: boolean, tB: boolean) {
  const [ar, ac] = a.shape.slice(-2) as [number, number];
  const [br, bc] = b.shape.slice(-2) as [number, number];
  const [m, k] = tA ? [ac, ar] : [ar, ac];
  const n = tB ? br : bc;
  const batch = broadcastShapes("matmul", a.shape.slice(0, -2), b.shape.slice(0, -2));
  const bStr = (shape: readonly number[]) => {
    const bs = shape.slice(0, -2);
    const s = strides(bs);
    const off = batch.length - bs.length;
    return batch.map((_, d) => (d - off < 0 || bs[d - off] === 1 ? 0 : s[d - off]!));
  };
  const [aRs, aCs] = tA ? [1, m] : [k, 1];
  const [bRs, bCs] = tB ? [1, k] : [n, 1];
  const meta = [
    m,
    k,
    n,
    batch.length,
    aRs,
    aCs,
    bRs,
    bCs,
    ...batch,
    ...bStr(a.shape),
    ...bStr(b.shape),
  ];
  const blocked = m >= WIDE && n >= WIDE && m * n >= BLOCKED_MIN_OUTPUTS;
  const tile = blocked ? WIDE : TILE;
  const grid: [number, number, number] = [Math.ceil(n / tile), Math.ceil(m / tile), sizeOf(batch)];
  return { shape: [...batch, m, n], k, meta, grid, blocked };
}

export const gpuMatmul: Kernel<{ transposeA?: boolean; transposeB?: boolean }> = ([a, b], p) => {
  const { shape, k, meta, grid, blocked } = matmulLayout(
    a!,
    b!,
    p.transposeA === true,
    p.transposeB === true,
  );
  const out = newArray(shape, a!.dtype);
  if (sizeOf(shape) === 0) return [out];
  if (k === 0) return [gpuZeros(shape)];
  const source = blocked ? plainBlockedSource : plainMatmulSource;
  dispatch(source, [gpuBuf(a!), gpuBuf(b!), out.buffer as never], meta, grid);
  return [out];
};

/** The WGSL of the matmul kernel with an epilogue (for `matmulWithEpilogue`; cache it). */
export function matmulEpilogueSource(epilogue: MatmulEpilogue): string {
  const source = matmulSource(epilogue);
  if (!blockedVariants.has(source)) blockedVariants.set(source, blockedMatmulSource(epilogue));
  return source;
}

/**
 * matmul(a, b) (float32) with an epilogue applied to each element of the product in the same
 * kernel: `source` from `matmulEpilogueSource`, `extra` the epilogue's inputs and `outs` fresh
 * arrays the caller made for its outputs. Returns false, launching nothing, when the product is
 * empty or K = 0 (the caller runs the unfused kernels then).
 */
export function matmulWithEpilogue(
  a: ConcreteArray,
  b: ConcreteArray,
  p: { transposeA?: boolean; transposeB?: boolean },
  source: string,
  extra: readonly ConcreteArray[],
  outs: readonly ConcreteArray[],
): boolean {
  const { shape, k, meta, grid, blocked } = matmulLayout(
    a,
    b,
    p.transposeA === true,
    p.transposeB === true,
  );
  if (sizeOf(shape) === 0 || k === 0) return false;
  const variant = blocked ? blockedVariants.get(source) : source;
  if (variant === undefined) {
    throw new Error("matmulWithEpilogue: source expected from matmulEpilogueSource");
  }
  dispatch(
    variant,
    [gpuBuf(a), gpuBuf(b), ...extra.map(gpuBuf), ...outs.map((o) => o.buffer as never)],
    meta,
    grid,
  );
  return true;
}

const zerosSource = `${bindings([], ["out: array<u32>"])}
${FLAT_MAIN}
  if (i >= prm[0]) { return; }
  out[i] = 0u;
}`;

function gpuZeros(shape: number[]): ConcreteArray {
  const out = newArray(shape, "float32");
  const n = sizeOf(shape);
  if (n > 0) dispatch(zerosSource, [out.buffer as never], [n], flatGrid(n));
  return out;
}

// -------------------------------------------------------------------------------------------
// conv1d (cross-correlation, NCL, weights [O, C, K]) and its adjoints, direct: one invocation
// per output element.

interface ConvP {
  stride: number;
  padding: [number, number];
  dilation: number;
}

const conv1dSource = `
${bindings(["x: array<f32>", "w: array<f32>"], ["out: array<f32>"])}
${FLAT_MAIN}
  // meta: [size, C, L, O, K, Lout, stride, lo, dilation]
  if (i >= prm[0]) { return; }
  let C = prm[1]; let L = i32(prm[2]); let O = prm[3]; let K = prm[4]; let Lout = prm[5];
  let stride = i32(prm[6]); let lo = i32(prm[7]); let dil = i32(prm[8]);
  let t = i % Lout; let o = (i / Lout) % O; let n = i / (Lout * O);
  var acc = 0.0;
  for (var c = 0u; c < C; c++) {
    for (var k = 0u; k < K; k++) {
      let p = i32(t) * stride + i32(k) * dil - lo;
      if (p >= 0 && p < L) { acc += x[(n * C + c) * u32(L) + u32(p)] * w[(o * C + c) * K + k]; }
    }
  }
  out[i] = acc;
}`;

export const gpuConv1d: Kernel<ConvP> = ([x, w], p) => {
  const [n, c, l] = x!.shape as [number, number, number];
  const [o, , k] = w!.shape as [number, number, number];
  const span = p.dilation * (k - 1) + 1;
  const lout = Math.max(0, Math.floor((l + p.padding[0] + p.padding[1] - span) / p.stride) + 1);
  const out = newArray([n, o, lout], x!.dtype);
  const size = n * o * lout;
  if (size === 0) return [out];
  dispatch(
    conv1dSource,
    [gpuBuf(x!), gpuBuf(w!), out.buffer as never],
    [size, c, l, o, k, lout, p.stride, p.padding[0], p.dilation],
    flatGrid(size),
  );
  return [out];
};

const conv1dInputGradSource = `
${bindings(["g: array<f32>", "w: array<f32>"], ["out: array<f32>"])}
${FLAT_MAIN}
  // meta: [size, C, L, O, K, Lout, stride, lo, dilation]; out [N, C, L]
  if (i >= prm[0]) { return; }
  let C = prm[1]; let L = prm[2]; let O = prm[3]; let K = prm[4]; let Lout = i32(prm[5]);
  let stride = i32(prm[6]); let lo = i32(prm[7]); let dil = i32(prm[8]);
  let l = i % L; let c = (i / L) % C; let n = i / (L * C);
  var acc = 0.0;
  for (var o = 0u; o < O; o++) {
    for (var k = 0u; k < K; k++) {
      let q = i32(l) + lo - i32(k) * dil;
      if (q >= 0 && q % stride == 0) {
        let t = q / stride;
        if (t < Lout) { acc += g[(n * O + o) * u32(Lout) + u32(t)] * w[(o * C + c) * K + k]; }
      }
    }
  }
  out[i] = acc;
}`;

export const gpuConv1dInputGrad: Kernel<ConvP & { inputLength: number }> = ([g, w], p) => {
  const [n, o, lout] = g!.shape as [number, number, number];
  const [, c, k] = w!.shape as [number, number, number];
  const l = p.inputLength;
  const out = newArray([n, c, l], g!.dtype);
  const size = n * c * l;
  if (size === 0) return [out];
  dispatch(
    conv1dInputGradSource,
    [gpuBuf(g!), gpuBuf(w!), out.buffer as never],
    [size, c, l, o, k, lout, p.stride, p.padding[0], p.dilation],
    flatGrid(size),
  );
  return [out];
};

const conv1dWeightGradSource = `
${bindings(["x: array<f32>", "g: array<f32>"], ["out: array<f32>"])}
${FLAT_MAIN}
  // meta: [size, C, L, O, K, Lout, stride, lo, dilation, N]; out [O, C, K]
  if (i >= prm[0]) { return; }
  let C = prm[1]; let L = i32(prm[2]); let O = prm[3]; let K = prm[4]; let Lout = prm[5];
  let stride = i32(prm[6]); let lo = i32(prm[7]); let dil = i32(prm[8]); let N = prm[9];
  let k = i % K; let c = (i / K) % C; let o = i / (K * C);
  var acc = 0.0;
  for (var n = 0u; n < N; n++) {
    for (var t = 0u; t < Lout; t++) {
      let p = i32(t) * stride + i32(k) * dil - lo;
      if (p >= 0 && p < L) { acc += g[(n * O + o) * Lout + t] * x[(n * C + c) * u32(L) + u32(p)]; }
    }
  }
  out[i] = acc;
}`;

export const gpuConv1dWeightGrad: Kernel<ConvP & { kernelSize: number }> = ([x, g], p) => {
  const [n, c, l] = x!.shape as [number, number, number];
  const [, o, lout] = g!.shape as [number, number, number];
  const k = p.kernelSize;
  const out = newArray([o, c, k], x!.dtype);
  const size = o * c * k;
  if (size === 0) return [out];
  if (n * lout === 0) return [gpuZeros([o, c, k])];
  dispatch(
    conv1dWeightGradSource,
    [gpuBuf(x!), gpuBuf(g!), out.buffer as never],
    [size, c, l, o, k, lout, p.stride, p.padding[0], p.dilation, n],
    flatGrid(size),
  );
  return [out];
};

// -------------------------------------------------------------------------------------------
// max_pool1d: first maximum of each window, a NaN wins (first NaN).

const poolSource = memoSource(
  (argmax: boolean) => `${ISNAN}
${bindings(["x: array<f32>"], [`out: array<${argmax ? "i32" : "f32"}>`])}
${FLAT_MAIN}
  // meta: [size, L, Lout, kernel, stride]
  if (i >= prm[0]) { return; }
  let L = prm[1]; let Lout = prm[2]; let kernel = prm[3]; let stride = prm[4];
  let t = i % Lout; let r = i / Lout;
  let s = t * stride;
  var bi = s;
  var best = x[r * L + s];
  if (!isnan_f(best)) {
    for (var j = s + 1u; j < s + kernel; j++) {
      let v = x[r * L + j];
      if (isnan_f(v)) { best = v; bi = j; break; }
      if (v > best) { best = v; bi = j; }
    }
  }
  out[i] = ${argmax ? "i32(bi)" : "best"};
}`,
);

function pool(argmax: boolean): Kernel<{ kernel: number; stride: number }> {
  return ([x], { kernel, stride }) => {
    const [n, c, l] = x!.shape as [number, number, number];
    const lout = Math.max(0, Math.floor((l - kernel) / stride) + 1);
    const out = newArray([n, c, lout], argmax ? "int32" : x!.dtype);
    const size = n * c * lout;
    if (size === 0) return [out];
    dispatch(
      poolSource(argmax),
      [gpuBuf(x!), out.buffer as never],
      [size, l, lout, kernel, stride],
      flatGrid(size),
    );
    return [out];
  };
}
export const gpuMaxPool1d = pool(false);
export const gpuMaxPool1dArgmax = pool(true);

// -------------------------------------------------------------------------------------------
// random_bits: Threefry-2x32 (20 rounds), the same counter layout as cpu/threefry.ts
// `randomBits`, so the words are bit-identical to the CPU's.

const threefrySource = `
fn rotl(x: u32, r: u32) -> u32 { return (x << r) | (x >> (32u - r)); }
${bindings(["keys: array<u32>"], ["out: array<u32>"])}
${FLAT_MAIN}
  // meta: [nKeys * half, count, half]; invocation (key, j) encrypts counters (j, j + half).
  if (i >= prm[0]) { return; }
  let count = prm[1]; let half = prm[2];
  let key = i / half; let j = i % half;
  let k0 = keys[2u * key]; let k1 = keys[2u * key + 1u];
  let ks2 = k0 ^ k1 ^ 0x1bd11bdau;
  let ks = array<u32, 3>(k0, k1, ks2);
  var a = j + k0;
  var b = j + half + k1;
  let R = array<u32, 8>(13u, 15u, 26u, 6u, 17u, 29u, 16u, 24u);
  for (var s = 0u; s < 5u; s++) {
    for (var r = 0u; r < 4u; r++) {
      a = a + b;
      b = rotl(b, R[(s % 2u) * 4u + r]) ^ a;
    }
    a = a + ks[(s + 1u) % 3u];
    b = b + ks[(s + 2u) % 3u] + s + 1u;
  }
  out[key * count + j] = a;
  if (j + half < count) { out[key * count + half + j] = b; }
}`;

export const gpuRandomBits: Kernel<{ shape: number[] }> = ([k], { shape }) => {
  const outShape = [...k!.shape.slice(0, -1), ...shape];
  const out = newArray(outShape, "uint32");
  const count = sizeOf(shape);
  const nKeys = sizeOf(k!.shape.slice(0, -1));
  if (count === 0 || nKeys === 0) return [out];
  const half = (count + (count % 2)) / 2;
  dispatch(
    threefrySource,
    [gpuBuf(k!), out.buffer as never],
    [nKeys * half, count, half],
    flatGrid(nKeys * half),
  );
  return [out];
};
