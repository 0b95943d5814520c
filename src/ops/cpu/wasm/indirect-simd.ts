/**
 * float32 matrix product whose operand rows are found through tables of addresses, in
 * WebAssembly SIMD: C[i, j] = Σ_p A_i[p] · B_p[j], where row i of A starts at the byte address
 * aRows[i] and row p of B at bRows[p]. Rows may overlap, so a 1-D convolution's im2col matrix
 * never has to be built: its row (c, k) is the padded signal of channel c shifted by k·dilation
 * (an "implicit GEMM"). Same R×8 register tile as matmul-simd.ts, with one table load per step
 * of the reduction.
 */

import {
  type Call,
  instantiateKernel,
  type Kernel,
  runParallel,
  splitRange,
  threadsFor,
} from "../threads.js";
import { Code, encodeModule, simdSupported, ValType } from "./encoder.js";
import {
  emitTileStore,
  emitTileUpdate,
  emitZeroTile,
  TILE_ROWS,
  transposeInMemory,
  transposeKernel,
} from "./matmul-simd.js";
import type { WasmMemory } from "./runtime.js";

const TILE_COLS = 8;

/**
 * The kernel `mmi(aRows, aShift, bRows, c, M, K, N, accumulate)` (byte addresses; M a multiple
 * of the tile height, N of 8): C (row stride N) = A · B, or C += A · B when `accumulate` is 1,
 * with row i of A starting at aRows[i] + aShift and row p of B at bRows[p].
 */
export function indirectKernelModule(rows = TILE_ROWS, sharedMaxPages?: number): Uint8Array {
  const [AR, AS, BR, C, M, K, N, ACC] = [0, 1, 2, 3, 4, 5, 6, 7];
  const [i, j, k, pt, pb, N4, pc, j4] = [8, 9, 10, 11, 12, 13, 14, 15];
  const pa = (r: number) => 16 + r;
  const accBase = 16 + rows;
  const acc = (r: number, h: number) => accBase + r * 2 + h;
  const b0 = accBase + rows * 2;
  const b1 = b0 + 1;
  const av = b0 + 2;
  const locals: ValType[] = [
    ...new Array<ValType>(8 + rows).fill(ValType.i32),
    ...new Array<ValType>(rows * 2 + 3).fill(ValType.v128),
  ];
  const c = new Code();
  c.get(N).i32(4).i32Mul().set(N4);
  c.i32(0).set(j);
  c.block().loop(); // over column strips
  c.get(j).get(N).i32GeU().brIf(1);
  c.get(j).i32(4).i32Mul().set(j4);
  c.i32(0).set(i);
  c.block().loop(); // over row panels
  c.get(i).get(M).i32GeU().brIf(1);
  c.get(C).get(i).get(N).i32Mul().get(j).i32Add().i32(4).i32Mul().i32Add().set(pc);
  emitZeroTile(c, rows, acc);
  c.block(); // accumulate: start from the tile of C
  c.get(ACC).i32Eqz().brIf(0);
  for (let r = 0; r < rows; r++) {
    c.get(pc).get(N4).i32(r).i32Mul().i32Add().v128Load(0).set(acc(r, 0));
    c.get(pc).get(N4).i32(r).i32Mul().i32Add().v128Load(16).set(acc(r, 1));
  }
  c.end();
  c.get(AR).get(i).i32(4).i32Mul().i32Add().set(pt);
  for (let r = 0; r < rows; r++)
    c.get(pt)
      .i32Load(r * 4)
      .get(AS)
      .i32Add()
      .set(pa(r));
  c.get(BR).set(pt);
  c.get(K).set(k);
  c.block().loop(); // over the reduction
  c.get(k).i32Eqz().brIf(1);
  c.get(pt).i32Load(0).get(j4).i32Add().set(pb);
  emitTileUpdate(c, rows, { pb, pa, acc, b0, b1, av });
  c.get(pt).i32(4).i32Add().set(pt);
  c.get(k).i32(1).i32Sub().set(k);
  c.br(0);
  c.end().end();
  // Store the tile.
  emitTileStore(c, rows, pc, N4, acc);
  c.get(i).i32(rows).i32Add().set(i);
  c.br(0);
  c.end().end();
  c.get(j).i32(TILE_COLS).i32Add().set(j);
  c.br(0);
  c.end().end();
  return encodeModule(
    [
      {
        name: "mmi",
        params: new Array<ValType>(8).fill(ValType.i32),
        results: [],
        locals,
        body: c,
      },
      transposeKernel(),
      padKernel(),
    ],
    1,
    sharedMaxPages,
  );
}

/**
 * `pad(src, dst, outer, inner, l, lo, hi, srcOuter, srcInner)` (byte addresses and strides):
 * for a < outer, then b < inner, the l floats at src + a·srcOuter + b·srcInner are written as
 * the next row of dst (rows of lp = lo + l + hi floats, one after another) between lo zeros
 * before and hi after. Rows are copied in 4-float vectors: a row's last vector may run up to 3
 * floats past it (into its hi zeros, written after, and into the next row, written later), and
 * may read up to 3 floats past the source row; callers leave that much room after both.
 */
function padKernel() {
  const [SRC, DST, C, NB, L, LO, HI, SO, SI] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const [ci, sIdx, d, sp, t, lBytes, j] = [9, 10, 11, 12, 13, 14, 15];
  const c = new Code();
  const zeros = (count: number, at: () => void) => {
    c.i32(0).set(j);
    c.block().loop();
    c.get(j).get(count).i32GeU().brIf(1);
    at();
    c.get(j).i32(4).i32Mul().i32Add().f32(0).f32Store(0);
    c.get(j).i32(1).i32Add().set(j);
    c.br(0);
    c.end().end();
  };
  c.get(L).i32(4).i32Mul().set(lBytes);
  c.get(DST).set(d);
  c.i32(0).set(ci);
  c.block().loop();
  c.get(ci).get(C).i32GeU().brIf(1);
  c.i32(0).set(sIdx);
  c.block().loop();
  c.get(sIdx).get(NB).i32GeU().brIf(1);
  zeros(LO, () => c.get(d));
  // sp = src + a·srcOuter + b·srcInner; the row's data at d + lo·4
  c.get(SRC).get(ci).get(SO).i32Mul().i32Add().get(sIdx).get(SI).i32Mul().i32Add().set(sp);
  c.get(d).get(LO).i32(4).i32Mul().i32Add().set(d);
  c.i32(0).set(t);
  c.block().loop();
  c.get(t).get(lBytes).i32GeU().brIf(1);
  c.get(d).get(t).i32Add().get(sp).get(t).i32Add().v128Load(0).v128Store(0);
  c.get(t).i32(16).i32Add().set(t);
  c.br(0);
  c.end().end();
  c.get(d).get(lBytes).i32Add().set(d);
  zeros(HI, () => c.get(d));
  c.get(d).get(HI).i32(4).i32Mul().i32Add().set(d);
  c.get(sIdx).i32(1).i32Add().set(sIdx);
  c.br(0);
  c.end().end();
  c.get(ci).i32(1).i32Add().set(ci);
  c.br(0);
  c.end().end();
  return {
    name: "pad",
    params: new Array<ValType>(9).fill(ValType.i32),
    results: [],
    locals: new Array<ValType>(7).fill(ValType.i32),
    body: c,
  };
}

interface Instance {
  kernel: Kernel;
  memory: WasmMemory;
  mmi: (
    aRows: number,
    aShift: number,
    bRows: number,
    c: number,
    m: number,
    k: number,
    n: number,
    accumulate: number,
  ) => void;
  transpose: (...args: number[]) => void;
  pad: (...args: number[]) => void;
}

let instance: Instance | null | undefined;

function getInstance(): Instance | null {
  if (instance !== undefined) return instance;
  if (!simdSupported()) {
    instance = null;
    return null;
  }
  const kernel = instantiateKernel(
    (max) => indirectKernelModule(TILE_ROWS, max),
    ["mmi", "tr", "pad"],
  );
  instance = {
    kernel,
    memory: kernel.memory,
    mmi: kernel.exports.mmi as Instance["mmi"],
    transpose: kernel.exports.tr as Instance["transpose"],
    pad: kernel.exports.pad as Instance["pad"],
  };
  return instance;
}

export function indirectAvailable(): boolean {
  return getInstance() !== null;
}

export const roundUp = (x: number, m: number) => Math.ceil(x / m) * m;

/**
 * The kernel's memory, at least `floats` 4-byte words, as float32 and int32 views (valid until
 * the next call). Callers lay out operands, tables and the output themselves.
 */
export function indirectMemory(floats: number): { f32: Float32Array; i32: Int32Array } {
  const inst = getInstance()!;
  const need = floats * 4;
  const have = inst.memory.buffer.byteLength;
  if (need > have) inst.memory.grow(Math.ceil((need - have) / 65536));
  return { f32: new Float32Array(inst.memory.buffer), i32: new Int32Array(inst.memory.buffer) };
}

/**
 * In the kernel's memory (offsets in words): dst[c·dstStride + r] = src[r·cols + c] for a
 * rows × cols block (4 × 4 blocks in WebAssembly, the ragged edges in JavaScript).
 */
export function indirectTranspose(
  src: number,
  dst: number,
  rows: number,
  cols: number,
  dstStride: number,
): void {
  const inst = getInstance()!;
  const mem = new Float32Array(inst.memory.buffer);
  transposeInMemory(mem, inst.transpose, src, dst, rows, cols, dstStride);
}

/**
 * In the kernel's memory (offsets in words): the rows src[(s·c + ci)·l ..][0, l) for ci < c,
 * s < nb, written one after another from dst with lo zeros before and hi after each. Up to 3
 * words past the last source row are read and up to 3 past the last written row overwritten.
 */
export function indirectPadRows(
  src: number,
  dst: number,
  c: number,
  nb: number,
  l: number,
  lo: number,
  hi: number,
): void {
  getInstance()!.pad(src * 4, dst * 4, c, nb, l, lo, hi, l * 4, c * l * 4);
}

/**
 * In the kernel's memory (offsets in words): the rows of l words at src + a·srcOuter +
 * b·srcInner for a < outer, then b < inner, packed one after another from dst. Up to 3 words
 * past the last source row are read and up to 3 past the end of dst overwritten.
 */
export function indirectGatherRows(
  src: number,
  dst: number,
  outer: number,
  inner: number,
  l: number,
  srcOuter: number,
  srcInner: number,
): void {
  getInstance()!.pad(src * 4, dst * 4, outer, inner, l, 0, 0, srcOuter * 4, srcInner * 4);
}

/** Reduction steps per kernel call: a strip of B (this many rows of 8 floats) stays in L1. */
const K_BLOCK = 256;
/** Rows of A per kernel call: the A block (rows × K_BLOCK floats) stays in L2. */
const M_BLOCK = 128;

/**
 * C = A·B through the tables, all positions in 4-byte words: aRows (mp entries, mp = m rounded
 * up to the tile height; padding entries may point at any row), bRows (k entries), C (mp × np,
 * np = n rounded up to 8). The reduction is split into blocks (C accumulates across them) and
 * the rows of A into blocks, so the operands being reused stay in cache.
 */
export function indirectRun(
  aRows: number,
  bRows: number,
  c: number,
  m: number,
  k: number,
  n: number,
): void {
  const inst = getInstance()!;
  const mp = roundUp(m, TILE_ROWS);
  const np = roundUp(n, TILE_COLS);
  if (k === 0) {
    new Float32Array(inst.memory.buffer).fill(0, c, c + mp * np);
    return;
  }
  const t = threadsFor(inst.kernel, mp * np * k, mp / TILE_ROWS);
  if (t === 1) {
    for (let k0 = 0; k0 < k; k0 += K_BLOCK) {
      const kb = Math.min(K_BLOCK, k - k0);
      for (let r0 = 0; r0 < mp; r0 += M_BLOCK) {
        const rows = Math.min(M_BLOCK, mp - r0);
        inst.mmi(
          (aRows + r0) * 4,
          k0 * 4,
          (bRows + k0) * 4,
          (c + r0 * np) * 4,
          rows,
          kb,
          np,
          k0 > 0 ? 1 : 0,
        );
      }
    }
    return;
  }
  // Threads own disjoint blocks of rows of C and run the reduction blocks in the same order as
  // one thread does, so every element sees the same sums in the same order.
  const lists = splitRange(mp, t, TILE_ROWS).map(([lo, hi]) => {
    const calls: Call[] = [];
    for (let k0 = 0; k0 < k; k0 += K_BLOCK) {
      const kb = Math.min(K_BLOCK, k - k0);
      for (let r0 = lo; r0 < hi; r0 += M_BLOCK) {
        const rows = Math.min(M_BLOCK, hi - r0);
        const args = [(aRows + r0) * 4, k0 * 4, (bRows + k0) * 4, (c + r0 * np) * 4];
        calls.push([0, ...args, rows, kb, np, k0 > 0 ? 1 : 0]);
      }
    }
    return calls;
  });
  runParallel(inst.kernel, lists);
}
