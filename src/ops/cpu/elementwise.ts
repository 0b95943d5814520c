/**
 * Elementwise CPU kernels, generated once per (operation, dtype-class) from an expression so each
 * loop is monomorphic and V8 can optimise it (a shared loop calling a function per element is
 * several times slower). Broadcasting is handled with strides, never by materialising copies.
 */
import type { TypedArray } from "../../trace/dtype.js";
import { type Shape, stridesOf } from "../../trace/shape.js";
import { F32_MATH } from "./math-f32.js";

type UnaryLoop = (a: TypedArray, out: TypedArray, n: number) => void;
type BinaryLoop = (
  a: TypedArray,
  b: TypedArray,
  out: TypedArray,
  outShape: Shape,
  aStrides: number[],
  bStrides: number[],
) => void;

const unaryCache = new Map<string, Map<number, UnaryLoop>>();
const binaryCache = new Map<string, Map<number, BinaryLoop>>();

/**
 * A fresh function per (expression, typed-array types): V8 optimises element access per call
 * site, and one loop shared by Float32Array, Float64Array and Uint8Array goes megamorphic (3-5×
 * slower). Types are keyed by a small number so the per-call lookup allocates nothing.
 */
function typeCode(a: TypedArray): number {
  if (a instanceof Float32Array) return 0;
  if (a instanceof Float64Array) return 1;
  if (a instanceof Int32Array) return 2;
  if (a instanceof Uint32Array) return 3;
  return 4;
}
function typesOf(...arrays: TypedArray[]): number {
  let key = 0;
  for (const a of arrays) key = key * 5 + typeCode(a);
  return key;
}

function cached<L>(
  cache: Map<string, Map<number, L>>,
  expr: string,
  types: number,
  make: () => L,
): L {
  let byType = cache.get(expr);
  if (!byType) {
    byType = new Map();
    cache.set(expr, byType);
  }
  let loop = byType.get(types);
  if (!loop) {
    loop = make();
    byType.set(types, loop);
  }
  return loop;
}

const helperNames = Object.keys(F32_MATH);
const helpers = Object.values(F32_MATH);

/**
 * `new Function(...params, body)` with the float32 math helpers (expf32, tanhf32) in scope, so
 * expressions can call them.
 */
export function withMathHelpers<F>(params: readonly string[], body: string): F {
  const make = new Function(
    ...helperNames,
    `return function (${params.join(", ")}) {\n${body}\n};`,
  );
  return make(...helpers) as F;
}

/** `expr` uses `a`, e.g. "Math.exp(a)". */
export function unaryLoop(expr: string, types = 0): UnaryLoop {
  return cached(unaryCache, expr, types, () =>
    withMathHelpers<UnaryLoop>(
      ["A", "O", "n"],
      `for (let i = 0; i < n; i++) { const a = A[i]; O[i] = ${expr}; }`,
    ),
  );
}

/** Ternary `where` is rare enough to share the strided walker below with a 3-operand body. */
export function binaryLoop(expr: string, types = 0): BinaryLoop {
  return cached(binaryCache, expr, types, () => {
    // Fast paths: same shape (both contiguous), scalar on either side; general: an odometer over
    // all but the last axis with an inner strided loop.
    const body = `
      const n = O.length;
      const rank = shape.length;
      if (n === 0) return;
      let same = true;
      for (let d = 0; d < rank; d++) if (sa[d] !== sb[d]) { same = false; break; }
      const contiguous = same && A.length === n;
      if (contiguous) { for (let i = 0; i < n; i++) { const a = A[i], b = B[i]; O[i] = ${expr}; } return; }
      if (A.length === 1 && B.length === n) { const a = A[0]; for (let i = 0; i < n; i++) { const b = B[i]; O[i] = ${expr}; } return; }
      if (B.length === 1 && A.length === n) { const b = B[0]; for (let i = 0; i < n; i++) { const a = A[i]; O[i] = ${expr}; } return; }
      if (rank === 0) { const a = A[0], b = B[0]; O[0] = ${expr}; return; }
      const last = shape[rank - 1];
      const la = sa[rank - 1], lb = sb[rank - 1];
      const idx = new Array(rank).fill(0);
      let ia = 0, ib = 0, o = 0;
      while (o < n) {
        let pa = ia, pb = ib;
        for (let j = 0; j < last; j++) { const a = A[pa], b = B[pb]; O[o++] = ${expr}; pa += la; pb += lb; }
        let d = rank - 2;
        for (; d >= 0; d--) {
          idx[d]++; ia += sa[d]; ib += sb[d];
          if (idx[d] < shape[d]) break;
          ia -= sa[d] * idx[d]; ib -= sb[d] * idx[d]; idx[d] = 0;
        }
        if (d < 0) break;
      }`;
    return withMathHelpers<BinaryLoop>(["A", "B", "O", "shape", "sa", "sb"], body);
  });
}

/** Strides of an input as seen from a broadcast output (0 along broadcast axes). */
export function broadcastStrides(inShape: Shape, outShape: Shape): number[] {
  const strides = stridesOf(inShape);
  const offset = outShape.length - inShape.length;
  const out = new Array<number>(outShape.length).fill(0);
  for (let i = 0; i < inShape.length; i++) out[offset + i] = inShape[i] === 1 ? 0 : strides[i]!;
  return out;
}

export function runUnary(expr: string, a: TypedArray, out: TypedArray): void {
  unaryLoop(expr, typesOf(a, out))(a, out, a.length);
}

export function runBinary(
  expr: string,
  a: TypedArray,
  aShape: Shape,
  b: TypedArray,
  bShape: Shape,
  out: TypedArray,
  outShape: Shape,
): void {
  binaryLoop(expr, typesOf(a, b, out))(
    a,
    b,
    out,
    outShape,
    broadcastStrides(aShape, outShape),
    broadcastStrides(bShape, outShape),
  );
}

type SelectLoop = (
  cond: TypedArray,
  x: TypedArray,
  y: TypedArray,
  out: TypedArray,
  shape: Shape,
  sc: number[],
  sx: number[],
  sy: number[],
) => void;

const SELECT_SOURCE = `
  const n = out.length;
  if (n === 0) return;
  if (cond.length === n && x.length === n && y.length === n) {
    for (let i = 0; i < n; i++) out[i] = cond[i] ? x[i] : y[i];
    return;
  }
  if (cond.length === n && x.length === n && y.length === 1) {
    const yv = y[0];
    for (let i = 0; i < n; i++) out[i] = cond[i] ? x[i] : yv;
    return;
  }
  if (cond.length === n && x.length === 1 && y.length === n) {
    const xv = x[0];
    for (let i = 0; i < n; i++) out[i] = cond[i] ? xv : y[i];
    return;
  }
  const rank = shape.length;
  const last = shape[rank - 1];
  const lc = sc[rank - 1], lx = sx[rank - 1], ly = sy[rank - 1];
  const idx = new Array(rank).fill(0);
  let ic = 0, ix = 0, iy = 0, o = 0;
  while (o < n) {
    for (let j = 0, pc = ic, px = ix, py = iy; j < last; j++, pc += lc, px += lx, py += ly) {
      out[o++] = cond[pc] ? x[px] : y[py];
    }
    let d = rank - 2;
    for (; d >= 0; d--) {
      idx[d]++; ic += sc[d]; ix += sx[d]; iy += sy[d];
      if (idx[d] < shape[d]) break;
      ic -= sc[d] * idx[d]; ix -= sx[d] * idx[d]; iy -= sy[d] * idx[d]; idx[d] = 0;
    }
    if (d < 0) break;
  }`;
const selectCache = new Map<string, Map<number, SelectLoop>>();

/** `where(cond, x, y)` with broadcasting of all three operands. */
export function runSelect(
  cond: TypedArray,
  condShape: Shape,
  x: TypedArray,
  xShape: Shape,
  y: TypedArray,
  yShape: Shape,
  out: TypedArray,
  outShape: Shape,
): void {
  const loop = cached(
    selectCache,
    "select",
    typesOf(cond, x, y, out),
    () =>
      new Function("cond", "x", "y", "out", "shape", "sc", "sx", "sy", SELECT_SOURCE) as SelectLoop,
  );
  if (outShape.length === 0) {
    out[0] = cond[0] ? x[0]! : y[0]!;
    return;
  }
  loop(
    cond,
    x,
    y,
    out,
    outShape,
    broadcastStrides(condShape, outShape),
    broadcastStrides(xShape, outShape),
    broadcastStrides(yShape, outShape),
  );
}
