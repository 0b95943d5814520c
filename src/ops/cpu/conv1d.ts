/**
 * 1-D convolution (PyTorch-style cross-correlation, NCL layout, weights [O, C, K]) and its two
 * adjoints, all via im2col + a GEMM (the WebAssembly SIMD kernel for float32, the packed JS one
 * for float64). On N=64, C=32, L=128, O=64, K=3 the JS GEMM per sample measured ~17 ms (~5.7
 * GFLOP/s) against ~55 ms for direct strided axpys over t, because the C*K reduction becomes one
 * well-blocked GEMM instead of many short, cache-hostile loops. The batch is folded into the
 * GEMM's columns (one product per chunk of samples rather than one per sample): per-sample
 * products of short sequences (Lout 12–50 in nbi's ResNet) were narrow, padded and re-copied
 * the weights for every sample.
 */

import { allocate } from "../../trace/dtype.js";
import { allocLike, type FloatArray, gemm } from "./matmul.js";
import {
  indirectAvailable,
  indirectGatherRows,
  indirectMemory,
  indirectPadRows,
  indirectRun,
  indirectTranspose,
  roundUp,
} from "./wasm/indirect-simd.js";
import { simdRun, simdWorkspace, wasmMatmulAvailable } from "./wasm/matmul-simd.js";

export interface Conv1dOptions {
  stride: number;
  /** Zeros added before and after the signal. */
  padding: readonly [number, number];
  dilation: number;
}

export type ConvResult = { data: FloatArray; shape: number[] };

/** Output length of a 1-D convolution; 0 when the (dilated) kernel does not fit. */
export function conv1dOutputLength(
  length: number,
  kernelSize: number,
  opts: Conv1dOptions,
): number {
  const [lo, hi] = opts.padding;
  const span = opts.dilation * (kernelSize - 1) + 1;
  return Math.max(0, Math.floor((length + lo + hi - span) / opts.stride) + 1);
}

function checkOptions(opts: Conv1dOptions): void {
  const { stride, dilation, padding } = opts;
  const ok =
    Number.isInteger(stride) &&
    stride >= 1 &&
    Number.isInteger(dilation) &&
    dilation >= 1 &&
    padding.length === 2 &&
    Number.isInteger(padding[0]) &&
    padding[0] >= 0 &&
    Number.isInteger(padding[1]) &&
    padding[1] >= 0;
  if (!ok) {
    throw new Error(
      `conv1d: bad options stride=${stride} dilation=${dilation} padding=[${padding}]`,
    );
  }
}

function checkShape(name: string, data: FloatArray, shape: readonly number[]): void {
  if (shape.length !== 3) throw new Error(`conv1d: ${name} must have rank 3, got [${shape}]`);
  if (data.length !== shape[0] * shape[1] * shape[2]) {
    throw new Error(`conv1d: ${name} data length does not match shape [${shape}]`);
  }
}

// Reused scratch per element type (single-threaded, non-reentrant).
const scratchPool = new Map<string, FloatArray>();

function scratch(name: string, like: FloatArray, size: number): FloatArray {
  const key = `${name}:${like instanceof Float32Array ? 32 : 64}`;
  let s = scratchPool.get(key);
  if (!s || s.length < size) {
    s = allocLike(like, size);
    scratchPool.set(key, s);
  }
  return s;
}

/**
 * Samples per GEMM: the batch is folded into the GEMM's columns (nb·Lout of them), which keeps
 * the products wide however short the sequences are; chunks of about this many columns bound
 * the scratch memory for long sequences.
 */
const CHUNK_COLUMNS = 4096;

function samplesPerChunk(n: number, lout: number): number {
  return Math.max(1, Math.min(n, Math.floor(CHUNK_COLUMNS / Math.max(1, lout))));
}

/** Writes an operand into dst: rows at dOff + row * dRs. */
type Pack = (dst: FloatArray, dOff: number, dRs: number) => void;

/**
 * C (m × n) = A (m × k) · B (k × n) with operands packed by the callbacks and C handed to
 * `read` (rows at off + i * rs). float32 runs on the WebAssembly SIMD kernel, packing straight
 * into its memory; float64 (and engines without SIMD) on the packed JS GEMM, via scratch.
 */
function product(
  like: FloatArray,
  m: number,
  n: number,
  k: number,
  packA: Pack,
  packB: Pack,
  read: (c: FloatArray, off: number, rs: number) => void,
): void {
  if (like instanceof Float32Array && wasmMatmulAvailable()) {
    const ws = simdWorkspace(m, n, k);
    packA(ws.mem, ws.a, k);
    packB(ws.mem, ws.b, ws.np);
    simdRun(ws);
    read(ws.mem, ws.c, ws.np);
    return;
  }
  const a = scratch("a", like, m * k);
  const b = scratch("b", like, k * n);
  const c = scratch("c", like, m * n);
  packA(a, 0, k);
  packB(b, 0, n);
  c.fill(0, 0, m * n);
  gemm(m, n, k, a, 0, k, 1, b, 0, n, 1, c, 0, n);
  read(c, 0, n);
}

/** Range [t0, t1) of output positions t whose tap t*stride + start lies inside [0, length). */
function validRange(start: number, stride: number, length: number, lout: number): [number, number] {
  const t0 = Math.min(lout, Math.max(0, Math.ceil(-start / stride)));
  const t1 = Math.max(t0, Math.min(lout, Math.floor((length - 1 - start) / stride) + 1));
  return [t0, t1];
}

/**
 * im2col over samples [n0, n0 + nb): row c*K + k, column s*lout + t holds
 * x[n0 + s, c, t*stride + k*dilation − lo], zero outside [0, L).
 */
function im2col(
  x: FloatArray,
  n0: number,
  nb: number,
  c: number,
  l: number,
  k: number,
  lout: number,
  opts: Conv1dOptions,
): Pack {
  const { stride, dilation } = opts;
  const lo = opts.padding[0];
  return (dst, dOff, dRs) => {
    for (let ki = 0; ki < k; ki++) {
      const start = ki * dilation - lo;
      const [t0, t1] = validRange(start, stride, l, lout);
      for (let ci = 0; ci < c; ci++) {
        const row = dOff + (ci * k + ki) * dRs;
        for (let s = 0; s < nb; s++) {
          const d = row + s * lout;
          const base = ((n0 + s) * c + ci) * l + start;
          for (let t = 0; t < t0; t++) dst[d + t] = 0;
          for (let t = t0; t < t1; t++) dst[d + t] = x[base + t * stride]!;
          for (let t = t1; t < lout; t++) dst[d + t] = 0;
        }
      }
    }
  };
}

/** The transpose of im2col: row s*lout + t, column c*K + k. */
function im2row(
  x: FloatArray,
  n0: number,
  nb: number,
  c: number,
  l: number,
  k: number,
  lout: number,
  opts: Conv1dOptions,
): Pack {
  const { stride, dilation } = opts;
  const lo = opts.padding[0];
  return (dst, dOff, dRs) => {
    for (let s = 0; s < nb; s++) {
      for (let ci = 0; ci < c; ci++) {
        const xRow = ((n0 + s) * c + ci) * l;
        for (let ki = 0; ki < k; ki++) {
          const start = ki * dilation - lo;
          const [t0, t1] = validRange(start, stride, l, lout);
          let d = dOff + s * lout * dRs + ci * k + ki;
          for (let t = 0; t < lout; t++, d += dRs) {
            dst[d] = t >= t0 && t < t1 ? x[xRow + start + t * stride]! : 0;
          }
        }
      }
    }
  };
}

/** g[n0 + s, o, t] at row o, column s*lout + t: the samples side by side in each channel's row. */
function channelRows(g: FloatArray, n0: number, nb: number, o: number, lout: number): Pack {
  return (dst, dOff, dRs) => {
    for (let s = 0; s < nb; s++) {
      for (let oi = 0; oi < o; oi++) {
        const src = ((n0 + s) * o + oi) * lout;
        const d = dOff + oi * dRs + s * lout;
        for (let t = 0; t < lout; t++) dst[d + t] = g[src + t]!;
      }
    }
  };
}

/** A row-major rows × cols matrix, as is (transposed: false) or transposed. */
function matrix(a: FloatArray, rows: number, cols: number, transposed: boolean): Pack {
  return (dst, dOff, dRs) => {
    if (!transposed) {
      for (let i = 0; i < rows; i++) {
        const src = i * cols;
        const d = dOff + i * dRs;
        for (let j = 0; j < cols; j++) dst[d + j] = a[src + j]!;
      }
      return;
    }
    for (let j = 0; j < cols; j++) {
      const d = dOff + j * dRs;
      for (let i = 0; i < rows; i++) dst[d + i] = a[i * cols + j]!;
    }
  };
}

// ---------------------------------------------------------------------------------------------
// Stride 1, float32: implicit GEMM on the SIMD kernel with row tables (indirect-simd.ts). The
// signal is laid out once, zero-padded, as rows per channel with the samples side by side; the
// im2col row (c, k) is then that channel's row shifted by k·dilation, so im2col is never built.

/** Whether the implicit-GEMM path serves these arrays and options. */
function implicitPath(a: FloatArray, opts: Conv1dOptions): a is Float32Array {
  return a instanceof Float32Array && opts.stride === 1 && indirectAvailable();
}

/**
 * Writes x[n0 + s, ci, :] for s < nb as rows ci of `dst` (row stride nb·lp, from `off`), each
 * sample padded with lo zeros before and hi after (lp = l + lo + hi): the chunk's samples are
 * copied in at once to `scratch` (past everything else the caller lays out; nb·c·l words, and 4
 * more the kernel may read) and rearranged by the kernel's `pad`, which may also write up to 3
 * words past the last row (callers zero what follows the rows afterwards).
 */
function padRows(
  x: Float32Array,
  n0: number,
  nb: number,
  c: number,
  l: number,
  lo: number,
  hi: number,
  dst: Float32Array,
  off: number,
  scratch: number,
): void {
  dst.set(x.subarray(n0 * c * l, (n0 + nb) * c * l), scratch);
  indirectPadRows(scratch, off, c, nb, l, lo, hi);
}

/**
 * y[s, oi, t] = Σ_{ci < c, ki < k} W[oi, ci·k + ki] · x[s, ci, t + ki·dil − lo] with zero
 * padding (lo before, hi after): a stride-1 correlation; the result is
 * [n, o, l + lo + hi − (k − 1)·dil]. W is `w` [o, c, k] as stored, or with `adjoint` the
 * weights of the convolution this one is the input-adjoint of, w [c, o, k], transposed to
 * [o, c, k] and flipped along k.
 */
function correlate(
  x: Float32Array,
  n: number,
  c: number,
  l: number,
  o: number,
  k: number,
  dil: number,
  lo: number,
  hi: number,
  w: Float32Array,
  adjoint: boolean,
): Float32Array {
  const lp = l + lo + hi;
  const lout = lp - (k - 1) * dil;
  const out = allocate("float32", n * o * lout) as Float32Array;
  if (out.length === 0) return out;
  const ck = c * k;
  const chunk = samplesPerChunk(n, lp);
  const mp = roundUp(o, 4);
  for (let n0 = 0; n0 < n; n0 += chunk) {
    const nb = Math.min(chunk, n - n0);
    const cols = nb * lp;
    const np = roundUp(cols, 8);
    // Words: W, padded signal (+ slack for the shifted rows' tails), tables, C.
    const xo = roundUp(o * ck, 4);
    const ta = roundUp(xo + c * cols + np + (k - 1) * dil + 8, 4);
    const tb = ta + mp;
    const co = roundUp(tb + ck, 4);
    const scratch = co + mp * np;
    const { f32: mem, i32: idx } = indirectMemory(scratch + nb * Math.max(c * l, o * lout) + 4);
    if (adjoint) packAdjointWeights(w, c, o, k, mem);
    else mem.set(w.subarray(0, o * ck), 0);
    padRows(x, n0, nb, c, l, lo, hi, mem, xo, scratch);
    // The shifted rows of the last channel run past it into the slack: zeros there (stale
    // words could be denormal floats, which are slow, even in columns that are discarded).
    mem.fill(0, xo + c * cols, ta);
    for (let i = 0; i < mp; i++) idx[ta + i] = (i < o ? i * ck : 0) * 4;
    for (let ci = 0; ci < c; ci++) {
      for (let ki = 0; ki < k; ki++) idx[tb + ci * k + ki] = (xo + ci * cols + ki * dil) * 4;
    }
    indirectRun(ta, tb, co, o, ck, cols);
    // C[oi, s·lp + t] → out[n0 + s, oi, t]: packed by the kernel (over the signal's scratch),
    // then copied out at once.
    indirectGatherRows(co, scratch, nb, o, lout, lp, np);
    out.set(mem.subarray(scratch, scratch + nb * o * lout), n0 * o * lout);
  }
  return out;
}

/** dst[(oi·c + ci)·k + ki] = w[ci, oi, k − 1 − ki] for w [c, o, k]. */
function packAdjointWeights(
  w: Float32Array,
  c: number,
  o: number,
  k: number,
  dst: Float32Array,
): void {
  for (let ci = 0; ci < c; ci++) {
    for (let oi = 0; oi < o; oi++) {
      const src = (ci * o + oi) * k + k - 1;
      const d = (oi * c + ci) * k;
      for (let ki = 0; ki < k; ki++) dst[d + ki] = w[src - ki]!;
    }
  }
}

/** dw[oi, ci, ki] = Σ_{s, t} g[s, oi, t] · x[s, ci, t + ki·dil − lo] (stride 1, zero padding). */
function correlateWeights(
  x: Float32Array,
  g: Float32Array,
  n: number,
  c: number,
  l: number,
  o: number,
  k: number,
  dil: number,
  lo: number,
  hi: number,
): Float32Array {
  const lp = l + lo + hi;
  const lout = lp - (k - 1) * dil;
  const ck = c * k;
  const out = allocate("float32", o * ck) as Float32Array;
  const chunk = samplesPerChunk(n, lp);
  const mp = roundUp(ck, 4);
  const np = roundUp(o, 8);
  // Chunks accumulate in float64 and round once.
  const acc = chunk < n ? new Float64Array(o * ck) : null;
  for (let n0 = 0; n0 < n; n0 += chunk) {
    const nb = Math.min(chunk, n - n0);
    const cols = nb * lp;
    // dwᵀ (CK × O) = shifted signal rows (CK × cols) · gᵀ (cols × O), gᵀ zero past lout.
    const go = roundUp(c * cols + (k - 1) * dil + 4, 4);
    const ta = go + cols * np;
    const tb = roundUp(ta + mp, 4);
    const co = roundUp(tb + cols, 4);
    // g's samples, copied as they are behind C, then transposed into place (gᵀ).
    const gRaw = co + mp * np;
    const { f32: mem, i32: idx } = indirectMemory(gRaw + nb * Math.max(o * lout, c * l) + 4);
    padRows(x, n0, nb, c, l, lo, hi, mem, 0, gRaw);
    mem.fill(0, c * cols, go + cols * np);
    mem.set(g.subarray(n0 * o * lout, (n0 + nb) * o * lout), gRaw);
    for (let s = 0; s < nb; s++) {
      indirectTranspose(gRaw + s * o * lout, go + s * lp * np, o, lout, np);
    }
    for (let ci = 0; ci < c; ci++) {
      for (let ki = 0; ki < k; ki++) idx[ta + ci * k + ki] = (ci * cols + ki * dil) * 4;
    }
    for (let i = ck; i < mp; i++) idx[ta + i] = 0;
    for (let j = 0; j < cols; j++) idx[tb + j] = (go + j * np) * 4;
    indirectRun(ta, tb, co, ck, cols, o);
    for (let q = 0; q < ck; q++) {
      const src = co + q * np;
      if (acc) for (let oi = 0; oi < o; oi++) acc[oi * ck + q]! += mem[src + oi]!;
      else for (let oi = 0; oi < o; oi++) out[oi * ck + q] = mem[src + oi]!;
    }
  }
  if (acc) out.set(acc);
  return out;
}

/** y[n,o,t] = sum_{c,k} w[o,c,k] * x[n, c, t*stride + k*dilation - lo] (zero-padded). */
export function conv1d(
  x: FloatArray,
  xShape: readonly number[],
  w: FloatArray,
  wShape: readonly number[],
  opts: Conv1dOptions,
): ConvResult {
  checkOptions(opts);
  checkShape("x", x, xShape);
  checkShape("w", w, wShape);
  const [n, c, l] = xShape;
  const [o, wc, k] = wShape;
  if (wc !== c) throw new Error(`conv1d: channels differ: x [${xShape}], w [${wShape}]`);
  const lout = conv1dOutputLength(l, k, opts);
  const ck = c * k;
  if (implicitPath(x, opts) && n * o * lout > 0 && ck > 0) {
    const [lo, hi] = opts.padding;
    const data = correlate(x, n, c, l, o, k, opts.dilation, lo, hi, w as Float32Array, false);
    return { data, shape: [n, o, lout] };
  }
  const out = allocLike(x, n * o * lout);
  if (out.length === 0 || ck === 0) return { data: out, shape: [n, o, lout] };
  const chunk = samplesPerChunk(n, lout);
  for (let n0 = 0; n0 < n; n0 += chunk) {
    const nb = Math.min(chunk, n - n0);
    // (O x nb·lout) = w (O x CK) @ im2col (CK x nb·lout); each sample's block to y[n].
    product(
      x,
      o,
      nb * lout,
      ck,
      matrix(w, o, ck, false),
      im2col(x, n0, nb, c, l, k, lout, opts),
      (ym, off, rs) => {
        for (let oi = 0; oi < o; oi++) {
          for (let s = 0; s < nb; s++) {
            const src = off + oi * rs + s * lout;
            const dst = ((n0 + s) * o + oi) * lout;
            for (let t = 0; t < lout; t++) out[dst + t] = ym[src + t]!;
          }
        }
      },
    );
  }
  return { data: out, shape: [n, o, lout] };
}

/** Adjoint of conv1d with respect to x: maps g [N, O, Lout] to dx [N, C, inputLength]. */
export function conv1dGradInput(
  g: FloatArray,
  gShape: readonly number[],
  w: FloatArray,
  wShape: readonly number[],
  opts: Conv1dOptions & { inputLength: number },
): ConvResult {
  checkOptions(opts);
  checkShape("g", g, gShape);
  checkShape("w", w, wShape);
  const [n, o, lout] = gShape;
  const [wo, c, k] = wShape;
  const l = opts.inputLength;
  if (wo !== o || conv1dOutputLength(l, k, opts) !== lout) {
    throw new Error(`conv1dGradInput: g [${gShape}] does not fit w [${wShape}], L=${l}`);
  }
  const out = allocLike(g, n * c * l);
  const ck = c * k;
  if (out.length === 0 || ck === 0 || lout === 0 || o === 0) {
    return { data: out, shape: [n, c, l] };
  }
  const { stride, dilation } = opts;
  const lo = opts.padding[0];
  const span = (k - 1) * dilation;
  if (implicitPath(g, opts) && lo <= span && opts.padding[1] <= span) {
    // The adjoint of a stride-1 correlation is a correlation of g with the weights transposed
    // (channels swapped) and flipped along k, padded by span − lo before and span − hi after.
    const [lo2, hi2] = [span - lo, span - opts.padding[1]];
    const data = correlate(g, n, o, lout, c, k, dilation, lo2, hi2, w as Float32Array, true);
    return { data, shape: [n, c, l] };
  }
  const chunk = samplesPerChunk(n, lout);
  // Sum overlapping taps in float64 so float32 gradients round once per element.
  const acc = new Float64Array(chunk * c * l);
  for (let n0 = 0; n0 < n; n0 += chunk) {
    const nb = Math.min(chunk, n - n0);
    // dcol (CK x nb·lout) = wᵀ (CK x O) @ g (O x nb·lout), then col2im:
    // acc[s, c, t*stride + k*dilation - lo] += dcol[c*K + k, s*lout + t]
    product(
      g,
      ck,
      nb * lout,
      o,
      matrix(w, o, ck, true),
      channelRows(g, n0, nb, o, lout),
      (dcol, off, rs) => {
        acc.fill(0, 0, nb * c * l);
        for (let ci = 0; ci < c; ci++) {
          for (let ki = 0; ki < k; ki++) {
            const row = off + (ci * k + ki) * rs;
            const start = ki * dilation - lo;
            const [t0, t1] = validRange(start, stride, l, lout);
            for (let s = 0; s < nb; s++) {
              const src = row + s * lout;
              const base = (s * c + ci) * l + start;
              for (let t = t0; t < t1; t++) acc[base + t * stride]! += dcol[src + t]!;
            }
          }
        }
      },
    );
    const dst = n0 * c * l;
    for (let i = 0; i < nb * c * l; i++) out[dst + i] = acc[i]!;
  }
  return { data: out, shape: [n, c, l] };
}

/** Adjoint of conv1d with respect to w: dw[o,c,k] = sum_{n,t} g[n,o,t] * x[n,c,t*s+k*d-lo]. */
export function conv1dGradWeight(
  x: FloatArray,
  xShape: readonly number[],
  g: FloatArray,
  gShape: readonly number[],
  opts: Conv1dOptions & { kernelSize: number },
): ConvResult {
  checkOptions(opts);
  checkShape("x", x, xShape);
  checkShape("g", g, gShape);
  const [n, c, l] = xShape;
  const [gn, o, lout] = gShape;
  const k = opts.kernelSize;
  if (gn !== n || conv1dOutputLength(l, k, opts) !== lout) {
    throw new Error(`conv1dGradWeight: g [${gShape}] does not fit x [${xShape}], K=${k}`);
  }
  const ck = c * k;
  if (implicitPath(x, opts) && o * ck > 0 && lout > 0 && n > 0) {
    const data = correlateWeights(
      x,
      g as Float32Array,
      n,
      c,
      l,
      o,
      k,
      opts.dilation,
      opts.padding[0],
      opts.padding[1],
    );
    return { data, shape: [o, c, k] };
  }
  const out = allocLike(x, o * ck);
  if (out.length === 0 || lout === 0 || n === 0) return { data: out, shape: [o, c, k] };
  const chunk = samplesPerChunk(n, lout);
  // Chunks accumulate in float64 and round once into the output dtype.
  const acc = chunk < n ? new Float64Array(o * ck) : null;
  for (let n0 = 0; n0 < n; n0 += chunk) {
    const nb = Math.min(chunk, n - n0);
    // dw (O x CK) = g (O x nb·lout) @ im2row (nb·lout x CK)
    product(
      x,
      o,
      ck,
      nb * lout,
      channelRows(g, n0, nb, o, lout),
      im2row(x, n0, nb, c, l, k, lout, opts),
      (dw, off, rs) => {
        for (let oi = 0; oi < o; oi++) {
          const src = off + oi * rs;
          const dst = oi * ck;
          if (acc) for (let j = 0; j < ck; j++) acc[dst + j]! += dw[src + j]!;
          else for (let j = 0; j < ck; j++) out[dst + j] = dw[src + j]!;
        }
      },
    );
  }
  if (acc) out.set(acc);
  return { data: out, shape: [o, c, k] };
}
