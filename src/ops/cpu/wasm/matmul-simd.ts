/**
 * float32 matmul in WebAssembly SIMD. A generated microkernel keeps an R×8 tile of C in
 * registers (R rows × two f32x4 vectors) and, for each k, broadcasts one element of each of
 * the R rows of A (v128.load32_splat) against one 8-wide row segment of B. Operands are copied
 * into the module's memory padded to whole tiles (copies are O(n²) against O(n³) work), so the
 * kernel has no edge cases. Accumulation is in float32, as BLAS does.
 */
import { allocateUnfilled } from "../../../trace/dtype.js";
import { batchedProduct } from "../matmul.js";
import {
  type Call,
  instantiateKernel,
  type Kernel,
  runParallel,
  splitRange,
  threadsFor,
} from "../threads.js";
import {
  Code,
  encodeModule,
  type FunctionSpec,
  fmaSupported,
  simdSupported,
  ValType,
} from "./encoder.js";
import type { WasmMemory } from "./runtime.js";

/** Rows per register tile: 4 measured fastest on x64 (8 accumulators + 3 operand registers; 2: 40, 4: 59, 6: 30, 8: 33 GFLOP/s kernel-only at 256³ on a 2.6 GHz EPYC). */
export const TILE_ROWS = 4;
const TILE_COLS = 8;

/** Local indices of an R×8 tile's registers in a generated kernel. */
export interface TileLocals {
  /** Pointer to the current 8-wide row segment of B. */
  pb: number;
  /** Pointer into row r of A. */
  pa: (r: number) => number;
  /** Accumulator of row r, half h (columns 4h..4h+3). */
  acc: (r: number, h: number) => number;
  b0: number;
  b1: number;
  av: number;
  /**
   * A stored transposed (k-major, rows of A adjacent): row r's value is at pa(0) + 4r and the
   * caller advances pa(0) by A's row stride after each step.
   */
  aTransposed?: boolean;
}

/** Emits acc = 0 for every register of the tile. */
export function emitZeroTile(c: Code, rows: number, acc: TileLocals["acc"]): void {
  for (let r = 0; r < rows; r++) {
    for (let h = 0; h < 2; h++) c.f32(0).f32x4Splat().set(acc(r, h));
  }
}

/**
 * Emits one step of the reduction: loads 8 values of B at pb and, for each row r, adds the
 * broadcast A value at pa(r) times them to the row's accumulators, then advances pa(r).
 */
export function emitTileUpdate(c: Code, rows: number, t: TileLocals): void {
  const { pb, pa, acc, b0, b1, av } = t;
  const fused = fmaSupported();
  c.get(pb).v128Load(0).set(b0);
  c.get(pb).v128Load(16).set(b1);
  for (let r = 0; r < rows; r++) {
    if (t.aTransposed)
      c.get(pa(0))
        .v128Load32Splat(4 * r)
        .set(av);
    else c.get(pa(r)).v128Load32Splat(0).set(av);
    if (fused) {
      c.get(av).get(b0).get(acc(r, 0)).f32x4RelaxedMadd().set(acc(r, 0));
      c.get(av).get(b1).get(acc(r, 1)).f32x4RelaxedMadd().set(acc(r, 1));
    } else {
      c.get(acc(r, 0)).get(av).get(b0).f32x4Mul().f32x4Add().set(acc(r, 0));
      c.get(acc(r, 1)).get(av).get(b1).f32x4Mul().f32x4Add().set(acc(r, 1));
    }
    if (!t.aTransposed) c.get(pa(r)).i32(4).i32Add().set(pa(r));
  }
}

/** Emits acc = the tile of C at pc, rows rowBytes (a local) apart; pc is left unchanged. */
function emitLoadTile(
  c: Code,
  rows: number,
  pc: number,
  rowBytes: number,
  acc: TileLocals["acc"],
): void {
  for (let r = 0; r < rows; r++) {
    c.get(pc);
    if (r > 0) c.get(rowBytes).i32(r).i32Mul().i32Add();
    c.v128Load(0).set(acc(r, 0));
    c.get(pc);
    if (r > 0) c.get(rowBytes).i32(r).i32Mul().i32Add();
    c.v128Load(16).set(acc(r, 1));
  }
}

/** Emits the store of the tile's rows at pc, rowBytes (a local) apart; advances pc. */
export function emitTileStore(
  c: Code,
  rows: number,
  pc: number,
  rowBytes: number,
  acc: TileLocals["acc"],
): void {
  for (let r = 0; r < rows; r++) {
    c.get(pc).get(acc(r, 0)).v128Store(0);
    c.get(pc).get(acc(r, 1)).v128Store(16);
    c.get(pc).get(rowBytes).i32Add().set(pc);
  }
}

/**
 * The kernels `mm(a, b, c, M, K, N, lda, add)` and `mmT(...)` with the same parameters: byte
 * offsets; M a multiple of R, N of 8; C = A·B over K steps of the reduction, B and C with row
 * stride N; with `add` ≠ 0, C += A·B (the tile starts from C: a long reduction runs as blocks of
 * K that keep B's block in cache, with every add in the same order as one pass). `mm` reads A
 * row-major (row stride lda); `mmT` reads A stored transposed (lda apart from one k to the next,
 * the M rows adjacent), so a transposed operand needs no gather when it is packed.
 */
export function matmulKernelModule(rows = TILE_ROWS, sharedMaxPages?: number): Uint8Array {
  return encodeModule(
    [matmulKernel(rows, false), matmulKernel(rows, true), transposeKernel()],
    1,
    sharedMaxPages,
  );
}

/** i32 lanes → the 16 byte indices of i8x16.shuffle (lanes 0–3 first operand, 4–7 second). */
const lanes32 = (...l: number[]) => l.flatMap((x) => [4 * x, 4 * x + 1, 4 * x + 2, 4 * x + 3]);

/**
 * `tr(src, dst, rows, cols, srcStride, dstStride)`: dst = srcᵀ for the top-left rows × cols
 * block (both multiples of 4; strides in elements, src and dst byte offsets), by 4 × 4 blocks
 * transposed in registers: packing a large transposed operand row-major, which element by
 * element in JavaScript cost as much as a fifth of a training step.
 */
export function transposeKernel(): FunctionSpec {
  const [SRC, DST, ROWS, COLS, SS, DS] = [0, 1, 2, 3, 4, 5];
  const [p, i, ss4, ds4, a, d] = [6, 7, 8, 9, 10, 11];
  const v = (q: number) => 12 + q; // four source rows
  const t = (q: number) => 16 + q; // interleaved pairs
  const c = new Code();
  c.get(SS).i32(4).i32Mul().set(ss4);
  c.get(DS).i32(4).i32Mul().set(ds4);
  c.i32(0).set(p);
  c.block().loop();
  c.get(p).get(ROWS).i32GeU().brIf(1);
  c.i32(0).set(i);
  c.block().loop();
  c.get(i).get(COLS).i32GeU().brIf(1);
  c.get(SRC).get(p).get(ss4).i32Mul().i32Add().get(i).i32(4).i32Mul().i32Add().set(a);
  for (let q = 0; q < 4; q++) {
    c.get(a).v128Load(0).set(v(q));
    if (q < 3) c.get(a).get(ss4).i32Add().set(a);
  }
  // Interleave rows pairwise (t0 = r0[0] r1[0] r0[1] r1[1], ...), then pairs of pairs below.
  for (let q = 0; q < 4; q++) {
    const [x, y] = q < 2 ? [v(0), v(1)] : [v(2), v(3)];
    c.get(x)
      .get(y)
      .i8x16Shuffle(q % 2 === 0 ? lanes32(0, 4, 1, 5) : lanes32(2, 6, 3, 7));
    c.set(t(q));
  }
  c.get(DST).get(i).get(ds4).i32Mul().i32Add().get(p).i32(4).i32Mul().i32Add().set(d);
  const outs: [number, number, number[]][] = [
    [t(0), t(2), lanes32(0, 1, 4, 5)],
    [t(0), t(2), lanes32(2, 3, 6, 7)],
    [t(1), t(3), lanes32(0, 1, 4, 5)],
    [t(1), t(3), lanes32(2, 3, 6, 7)],
  ];
  for (const [x, y, sel] of outs) {
    c.get(d).get(x).get(y).i8x16Shuffle(sel).v128Store(0);
    c.get(d).get(ds4).i32Add().set(d);
  }
  c.get(i).i32(4).i32Add().set(i);
  c.br(0);
  c.end().end();
  c.get(p).i32(4).i32Add().set(p);
  c.br(0);
  c.end().end();
  return {
    name: "tr",
    params: new Array<ValType>(6).fill(ValType.i32),
    results: [],
    locals: [
      ...new Array<ValType>(6).fill(ValType.i32),
      ...new Array<ValType>(8).fill(ValType.v128),
    ],
    body: c,
  };
}

function matmulKernel(rows: number, aTransposed: boolean): FunctionSpec {
  const [A, B, C, M, K, N, LDA, ADD] = [0, 1, 2, 3, 4, 5, 6, 7];
  const first = 8;
  const [i, j, k, pb, K4, N4, pc] = [0, 1, 2, 3, 4, 5, 6].map((x) => first + x) as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const pa = (r: number) => first + 7 + r; // row pointers into A
  const accBase = first + 7 + rows;
  const acc = (r: number, h: number) => accBase + r * 2 + h;
  const b0 = accBase + rows * 2;
  const b1 = b0 + 1;
  const av = b0 + 2;
  const locals: ValType[] = [
    ...new Array<ValType>(7 + rows).fill(ValType.i32),
    ...new Array<ValType>(rows * 2 + 3).fill(ValType.v128),
  ];
  const c = new Code();
  // K4 holds lda·4: A's row stride (mm) or its step from one k to the next (mmT).
  c.get(LDA).i32(4).i32Mul().set(K4);
  c.get(N).i32(4).i32Mul().set(N4);
  c.i32(0).set(j);
  c.block().loop(); // over column strips
  c.get(j).get(N).i32GeU().brIf(1);
  c.i32(0).set(i);
  c.block().loop(); // over row panels
  c.get(i).get(M).i32GeU().brIf(1);
  c.get(C).get(i).get(N).i32Mul().get(j).i32Add().i32(4).i32Mul().i32Add().set(pc);
  c.block();
  c.block();
  c.get(ADD).i32Eqz().brIf(0);
  emitLoadTile(c, rows, pc, N4, acc);
  c.br(1);
  c.end();
  emitZeroTile(c, rows, acc);
  c.end();
  if (aTransposed) c.get(A).get(i).i32(4).i32Mul().i32Add().set(pa(0));
  else {
    c.get(A).get(i).get(K4).i32Mul().i32Add().set(pa(0));
    for (let r = 1; r < rows; r++)
      c.get(pa(r - 1))
        .get(K4)
        .i32Add()
        .set(pa(r));
  }
  c.get(B).get(j).i32(4).i32Mul().i32Add().set(pb);
  c.get(K).set(k);
  c.block().loop(); // over k
  c.get(k).i32Eqz().brIf(1);
  emitTileUpdate(c, rows, { pb, pa, acc, b0, b1, av, aTransposed });
  if (aTransposed) c.get(pa(0)).get(K4).i32Add().set(pa(0));
  c.get(pb).get(N4).i32Add().set(pb);
  c.get(k).i32(1).i32Sub().set(k);
  c.br(0);
  c.end().end();
  emitTileStore(c, rows, pc, N4, acc);
  c.get(i).i32(rows).i32Add().set(i);
  c.br(0);
  c.end().end();
  c.get(j).i32(TILE_COLS).i32Add().set(j);
  c.br(0);
  c.end().end();
  return {
    name: aTransposed ? "mmT" : "mm",
    params: new Array<ValType>(8).fill(ValType.i32),
    results: [],
    locals,
    body: c,
  };
}

interface Instance {
  kernel: Kernel;
  memory: WasmMemory;
  /** [mm, mmT]: (a, b, c, m, k, n, lda, add). */
  kernels: readonly KernelFn[];
  /** (src, dst, rows, cols, srcStride, dstStride): see transposeKernel. */
  transpose: KernelFn;
}

type KernelFn = (...args: number[]) => void;

let instance: Instance | null | undefined;

function getInstance(): Instance | null {
  if (instance !== undefined) return instance;
  if (!simdSupported()) {
    instance = null;
    return null;
  }
  const kernel = instantiateKernel(
    (max) => matmulKernelModule(TILE_ROWS, max),
    ["mm", "mmT", "tr"],
  );
  instance = {
    kernel,
    memory: kernel.memory,
    kernels: [kernel.exports.mm as KernelFn, kernel.exports.mmT as KernelFn],
    transpose: kernel.exports.tr as KernelFn,
  };
  return instance;
}

export function wasmMatmulAvailable(): boolean {
  return getInstance() !== null;
}

const roundUp = (x: number, m: number) => Math.ceil(x / m) * m;

/** The largest transposed A read in place by `mmT` (measured: 64 KB as fast as `mm`, 1 MB 1.6× slower). */
const TRANSPOSED_A_MAX_BYTES = 256 * 1024;

/** out[oOff..] = A·B for one pair of row-major matrices. */
export function matmul2dSimd(
  a: Float32Array | Float64Array,
  aOff: number,
  b: Float32Array | Float64Array,
  bOff: number,
  out: Float32Array,
  oOff: number,
  m: number,
  k: number,
  n: number,
): void {
  gemmSimd(m, n, k, a, aOff, k, 1, b, bOff, n, 1, out, oOff, n, false);
}

/**
 * Batched, broadcasting float32 matmul on the SIMD kernel: a [..., M, K] @ b [..., K, N], with
 * `transA` / `transB` reading a stored [..., K, M] / b stored [..., N, K] transposed.
 */
export function matmulSimd(
  a: Float32Array,
  aShape: readonly number[],
  b: Float32Array,
  bShape: readonly number[],
  transA = false,
  transB = false,
): { data: Float32Array; shape: number[] } {
  const r = batchedProduct(
    a,
    aShape,
    b,
    bShape,
    transA,
    transB,
    // gemmSimd overwrites every element (accumulate false)
    (len) => allocateUnfilled("float32", len) as Float32Array,
    (m, n, k, x, xOff, xRs, xCs, y, yOff, yRs, yCs, out, oOff, oRs) =>
      gemmSimd(m, n, k, x, xOff, xRs, xCs, y, yOff, yRs, yCs, out, oOff, oRs, false),
  );
  return r as { data: Float32Array; shape: number[] };
}

/**
 * out[oOff + i·oRs + j] += Σ_p a[aOff + i·aRs + p·aCs] · b[bOff + p·bRs + j·bCs] on the SIMD
 * kernel: the strided (e.g. transposed) operands are gathered while they are copied into the
 * module's memory anyway, so transposes cost nothing extra. Same contract as the JS `gemm`.
 */
export function gemmSimd(
  m: number,
  n: number,
  k: number,
  a: Float32Array | Float64Array,
  aOff: number,
  aRs: number,
  aCs: number,
  b: Float32Array | Float64Array,
  bOff: number,
  bRs: number,
  bCs: number,
  out: Float32Array | Float64Array,
  oOff: number,
  oRs: number,
  /** false: overwrite the output block instead of adding to it. */
  accumulate = true,
): void {
  if (m === 0 || n === 0) return;
  if (k === 0) {
    if (!accumulate) for (let i = 0; i < m; i++) out.fill(0, oOff + i * oRs, oOff + i * oRs + n);
    return;
  }
  // A stored transposed (its rows adjacent) is copied as it is, for the kernel that reads it so,
  // while it fits in cache or is read in few passes (one per 8 columns of C): the kernel walks it
  // k-major, one line per k, which a large A spreads over too many lines and pages (at
  // 256 × 1024 with N = 256 the gathering copy plus the row-major kernel is faster).
  const aTransposed =
    aRs === 1 && aCs !== 1 && m > 1 && (k * m * 4 <= TRANSPOSED_A_MAX_BYTES || n <= 2 * TILE_COLS);
  // Otherwise a transposed A is copied as it is behind the operands, then transposed in place.
  const gatherA = aRs === 1 && aCs !== 1 && !aTransposed;
  const gatherB = bRs === 1 && bCs !== 1 && n > 1;
  const scratch = Math.max(gatherA ? k * m : 0, gatherB ? n * k : 0);
  const ws = simdWorkspace(m, n, k, aTransposed, scratch);
  const { mem, np } = ws;
  const bBase = ws.b;
  const cBase = ws.c;
  if (aTransposed) {
    const mp = ws.mp;
    if (aCs === mp) mem.set(a.subarray(aOff, aOff + k * mp), 0);
    else {
      for (let p = 0; p < k; p++) {
        const src = aOff + p * aCs;
        const dst = p * mp;
        for (let i = 0; i < m; i++) mem[dst + i] = a[src + i]!;
      }
    }
  } else if (gatherA) transposeInto(ws, a, aOff, aCs, k, m, ws.a, k);
  else if (aCs === 1 && aRs === k) mem.set(a.subarray(aOff, aOff + m * k), 0);
  else {
    for (let i = 0; i < m; i++) {
      const src = aOff + i * aRs;
      const dst = i * k;
      if (aCs === 1) mem.set(a.subarray(src, src + k), dst);
      else for (let p = 0; p < k; p++) mem[dst + p] = a[src + p * aCs]!;
    }
  }
  if (gatherB) transposeInto(ws, b, bOff, bCs, n, k, bBase, np);
  else if (bCs === 1 && bRs === n && np === n) mem.set(b.subarray(bOff, bOff + k * n), bBase);
  else
    for (let p = 0; p < k; p++) {
      const src = bOff + p * bRs;
      const dst = bBase + p * np;
      if (bCs === 1) mem.set(b.subarray(src, src + n), dst);
      else for (let j = 0; j < n; j++) mem[dst + j] = b[src + j * bCs]!;
    }
  simdRun(ws);
  if (!accumulate && np === n && oRs === n) {
    out.set(mem.subarray(cBase, cBase + m * n), oOff);
    return;
  }
  for (let i = 0; i < m; i++) {
    const src = cBase + i * np;
    const dst = oOff + i * oRs;
    if (!accumulate) out.set(mem.subarray(src, src + n), dst);
    else for (let j = 0; j < n; j++) out[dst + j]! += mem[src + j]!;
  }
}

/**
 * The kernel's operands laid out in its memory, for callers that pack them themselves (conv1d
 * writes im2col columns straight into B): A is mp × k at float offset `a` (row stride k), B is
 * k × np at `b` (row stride np), C is mp × np at `c`. The caller writes A's first m rows and the
 * first n columns of each row of B; the padding is zeroed here. Valid until the next call.
 */
export interface SimdWorkspace {
  readonly mem: Float32Array;
  /** A is stored transposed: k × mp (row stride mp), its rows in the first m columns. */
  readonly aTransposed: boolean;
  readonly m: number;
  readonly n: number;
  readonly k: number;
  readonly mp: number;
  readonly np: number;
  readonly a: number;
  readonly b: number;
  readonly c: number;
  /** Float offset of the scratch space asked for, after C. */
  readonly scratch: number;
}

export function simdWorkspace(
  m: number,
  n: number,
  k: number,
  aTransposed = false,
  scratch = 0,
): SimdWorkspace {
  const inst = getInstance()!;
  const mp = roundUp(m, TILE_ROWS);
  const np = roundUp(n, TILE_COLS);
  const need = (mp * k + k * np + mp * np + scratch) * 4;
  const have = inst.memory.buffer.byteLength;
  if (need > have) inst.memory.grow(Math.ceil((need - have) / 65536));
  const mem = new Float32Array(inst.memory.buffer);
  const b = mp * k;
  // Padding rows of A only reach padding rows of C (discarded), but keep them finite and quiet.
  if (aTransposed) for (let p = 0; p < k; p++) mem.fill(0, p * mp + m, (p + 1) * mp);
  else mem.fill(0, m * k, mp * k);
  if (np > n) for (let p = 0; p < k; p++) mem.fill(0, b + p * np + n, b + (p + 1) * np);
  const c = b + k * np;
  return { mem, aTransposed, m, n, k, mp, np, a: 0, b, c, scratch: c + mp * np };
}

/**
 * Writes the transpose of `src` (rows × cols, row stride `stride` from `off`) into the
 * workspace at float offset `dst`, row stride `dstStride`: copied as it is into the scratch
 * space, transposed there by 4 × 4 blocks, the ragged edges done here. Packs a transposed
 * operand row-major (element by element in JavaScript it cost as much as the product).
 */
function transposeInto(
  ws: SimdWorkspace,
  src: Float32Array | Float64Array,
  off: number,
  stride: number,
  rows: number,
  cols: number,
  dst: number,
  dstStride: number,
) {
  const { mem, scratch } = ws;
  if (stride === cols) mem.set(src.subarray(off, off + rows * cols), scratch);
  else {
    for (let r = 0; r < rows; r++) {
      mem.set(src.subarray(off + r * stride, off + r * stride + cols), scratch + r * cols);
    }
  }
  transposeInMemory(mem, getInstance()!.transpose, scratch, dst, rows, cols, dstStride);
}

/**
 * mem[dst + c·dstStride + r] = mem[src + r·cols + c] for a rows × cols block already in a
 * module's memory, with `tr` that module's transpose kernel (transposeKernel) doing the 4 × 4
 * blocks and this function the ragged edges. Offsets in floats.
 */
export function transposeInMemory(
  mem: Float32Array,
  tr: (...args: number[]) => void,
  src: number,
  dst: number,
  rows: number,
  cols: number,
  dstStride: number,
): void {
  const [r4, c4] = [rows - (rows % 4), cols - (cols % 4)];
  tr(src * 4, dst * 4, r4, c4, cols, dstStride);
  for (let c = 0; c < cols; c++) {
    for (let r = c < c4 ? r4 : 0; r < rows; r++) {
      mem[dst + c * dstStride + r] = mem[src + r * cols + c]!;
    }
  }
}

/**
 * C = A·B on a workspace whose operands are packed. Large products are split by blocks of rows
 * of C across threads (threads.ts); every tile of C is computed whole by one kernel call, so the
 * split does not change any bit of the result.
 */
export function simdRun(ws: SimdWorkspace): void {
  const inst = getInstance()!;
  const { k, mp, np } = ws;
  const t = threadsFor(inst.kernel, mp * np * k, mp / TILE_ROWS);
  if (t === 1) {
    for (const [f, ...args] of kernelCalls(ws, 0, mp)) inst.kernels[f!]!(...args);
    return;
  }
  runParallel(
    inst.kernel,
    splitRange(mp, t, TILE_ROWS).map(([lo, hi]) => kernelCalls(ws, lo, hi)),
  );
}

/**
 * Reduction block: long reductions run in blocks of this many k, so that the block of B the
 * kernel sweeps for every block of rows (KC × N) is not evicted between them (1024³: 22 → 50
 * GFLOP/s on one core).
 */
const KC = 256;

/** The kernel calls that compute rows [lo, hi) of C: reduction blocks, each over blocks of rows. */
function kernelCalls(ws: SimdWorkspace, lo: number, hi: number): Call[] {
  const { k, mp, np } = ws;
  const calls: Call[] = [];
  for (let p0 = 0; p0 < k; p0 += KC) {
    const kc = Math.min(KC, k - p0);
    const add = p0 > 0 ? 1 : 0;
    // Rows per call: their block of A (rows × kc) stays in cache while the strips of B pass.
    const block = Math.max(TILE_ROWS, Math.floor(32768 / kc / TILE_ROWS) * TILE_ROWS);
    for (let r0 = lo; r0 < hi; r0 += block) {
      const rows = Math.min(block, hi - r0);
      const b = (ws.b + p0 * np) * 4;
      const c = (ws.c + r0 * np) * 4;
      if (ws.aTransposed) calls.push([1, (ws.a + p0 * mp + r0) * 4, b, c, rows, kc, np, mp, add]);
      else calls.push([0, (ws.a + r0 * k + p0) * 4, b, c, rows, kc, np, k, add]);
    }
  }
  return calls;
}
