import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type Conv1dOptions,
  conv1d,
  conv1dGradInput,
  conv1dGradWeight,
  conv1dOutputLength,
} from "../../src/ops/cpu/conv1d.js";
import { type FloatArray, gemm, matmul, matmulInto } from "../../src/ops/cpu/matmul.js";
import { maxPool1d, maxPool1dGather, maxPool1dScatter } from "../../src/ops/cpu/pool.js";

// ---------- helpers ----------

/** Deterministic uniform [-1, 1) values (mulberry32), so big arrays stay cheap to generate. */
function randomArray(
  ctor: Float32ArrayConstructor | Float64ArrayConstructor,
  n: number,
  seed: number,
): FloatArray {
  let s = seed >>> 0;
  const out = new ctor(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}

const prod = (dims: readonly number[]) => dims.reduce((p, d) => p * d, 1);

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

function l1(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i]);
  return s;
}

/** Elementwise |got - want| <= tol * scale[i] + 1e-300, with a readable failure. */
function expectClose(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  scale: ArrayLike<number>,
  tol: number,
): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    if (!(err <= tol * scale[i] + 1e-300)) {
      throw new Error(`index ${i}: got ${got[i]}, want ${want[i]} (err ${err}, scale ${scale[i]})`);
    }
  }
}

const dtypeArb = fc.constantFrom(Float32Array, Float64Array);
// Float32 results are rounded sums of float32-exact products, compared with float64 sums.
const tolFor = (ctor: unknown) => (ctor === Float32Array ? 2e-6 : 1e-13);

// ---------- matmul ----------

function broadcastRef(a: readonly number[], b: readonly number[]): number[] {
  const r = Math.max(a.length, b.length);
  const pa = [...new Array(r - a.length).fill(1), ...a];
  const pb = [...new Array(r - b.length).fill(1), ...b];
  return pa.map((d, i) => {
    if (d !== pb[i] && d !== 1 && pb[i] !== 1) throw new Error("no broadcast");
    return d === 1 ? pb[i] : d;
  });
}

/** Naive float64 reference; also returns sum |a||b| per output for error scaling. */
function matmulRef(
  a: FloatArray,
  aShape: number[],
  b: FloatArray,
  bShape: number[],
): { data: Float64Array; abs: Float64Array; shape: number[] } {
  const [m, k] = aShape.slice(-2);
  const n = bShape[bShape.length - 1];
  const aB = aShape.slice(0, -2);
  const bB = bShape.slice(0, -2);
  const batch = broadcastRef(aB, bB);
  const nb = prod(batch);
  const data = new Float64Array(nb * m * n);
  const abs = new Float64Array(nb * m * n);
  const offset = (idx: number[], dims: number[]) => {
    let off = 0;
    const shift = idx.length - dims.length;
    for (let d = 0; d < dims.length; d++)
      off = off * dims[d] + (dims[d] === 1 ? 0 : idx[d + shift]);
    return off;
  };
  for (let t = 0; t < nb; t++) {
    const idx: number[] = [];
    let rem = t;
    for (let d = batch.length - 1; d >= 0; d--) {
      idx[d] = rem % batch[d];
      rem = Math.floor(rem / batch[d]);
    }
    const ao = offset(idx, aB) * m * k;
    const bo = offset(idx, bB) * k * n;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        let sa = 0;
        for (let p = 0; p < k; p++) {
          const v = a[ao + i * k + p] * b[bo + p * n + j];
          s += v;
          sa += Math.abs(v);
        }
        data[(t * m + i) * n + j] = s;
        abs[(t * m + i) * n + j] = sa;
      }
    }
  }
  return { data, abs, shape: [...batch, m, n] };
}

function checkMatmul(
  ctor: Float32ArrayConstructor | Float64ArrayConstructor,
  aShape: number[],
  bShape: number[],
  seed: number,
): void {
  const a = randomArray(ctor, prod(aShape), seed);
  const b = randomArray(ctor, prod(bShape), seed + 1);
  const got = matmul(a, aShape, b, bShape);
  const ref = matmulRef(a, aShape, b, bShape);
  expect(got.shape).toEqual(ref.shape);
  expect(got.data).toBeInstanceOf(ctor);
  expectClose(got.data, ref.data, ref.abs, tolFor(ctor));
}

const matDim = fc.oneof(fc.integer({ min: 0, max: 5 }), fc.integer({ min: 4, max: 40 }));

describe("matmul", () => {
  it("matches a naive float64 reference with broadcast batch dims", () => {
    fc.assert(
      fc.property(
        fc.record({
          ctor: dtypeArb,
          batch: fc.array(
            fc.record({
              size: fc.integer({ min: 0, max: 3 }),
              aOne: fc.boolean(),
              bOne: fc.boolean(),
            }),
            { maxLength: 3 },
          ),
          dropA: fc.integer({ min: 0, max: 3 }),
          dropB: fc.integer({ min: 0, max: 3 }),
          m: matDim,
          k: matDim,
          n: matDim,
          seed: fc.integer(),
        }),
        ({ ctor, batch, dropA, dropB, m, k, n, seed }) => {
          const aBatch = batch.map((d) => (d.aOne ? 1 : d.size)).slice(dropA);
          const bBatch = batch.map((d) => (d.bOne ? 1 : d.size)).slice(dropB);
          checkMatmul(ctor, [...aBatch, m, k], [...bBatch, k, n], seed);
        },
      ),
      { numRuns: 150 },
    );
  });

  it("handles block boundaries (K > 256, N > 1024, ragged edges)", () => {
    checkMatmul(Float32Array, [7, 600], [600, 1030], 1);
    checkMatmul(Float64Array, [2, 70, 300], [300, 9], 2);
    checkMatmul(Float64Array, [130, 5], [3, 5, 66], 3);
    checkMatmul(Float32Array, [1, 513], [513, 1], 4);
  });

  it("propagates NaN and Infinity through zeros (no zero-skipping)", () => {
    const m = 8;
    const a = new Float64Array(m * m);
    const b = new Float64Array(m * m);
    a[3 * m + 5] = Number.NaN;
    a[6 * m + 1] = Number.POSITIVE_INFINITY;
    const out = matmul(a, [m, m], b, [m, m]).data;
    for (let j = 0; j < m; j++) {
      expect(out[3 * m + j]).toBeNaN();
      expect(out[6 * m + j]).toBeNaN(); // inf * 0
      expect(out[j]).toBe(0);
    }
  });

  it("rejects mismatched shapes", () => {
    const z = new Float64Array(24);
    expect(() => matmul(z, [2, 3, 4], z, [2, 3, 4])).toThrow(Error);
    expect(() => matmul(z, [2, 3, 4], z, [3, 4, 2])).toThrow(Error);
    expect(() => matmul(z, [24], z, [24, 1])).toThrow(Error);
    expect(() => matmul(z, [2, 3, 4], z.subarray(0, 8), [4, 2])).not.toThrow();
  });

  it("matmulInto accumulates and gemm honours strides (transposed operands)", () => {
    const [m, k, n] = [9, 13, 11];
    const a = randomArray(Float64Array, m * k, 5);
    const b = randomArray(Float64Array, k * n, 6);
    const ref = matmulRef(a, [m, k], b, [k, n]);
    const out = new Float64Array(3 + m * n).fill(1);
    matmulInto(out, 3, a, 0, b, 0, m, k, n);
    expectClose(
      out.subarray(3),
      ref.data.map((v) => v + 1),
      ref.abs.map((v) => v + 1),
      1e-13,
    );
    // Same product from a^T (k x m) and b^T (n x k) stored transposed.
    const at = new Float64Array(k * m);
    const bt = new Float64Array(n * k);
    for (let i = 0; i < m; i++) for (let p = 0; p < k; p++) at[p * m + i] = a[i * k + p];
    for (let p = 0; p < k; p++) for (let j = 0; j < n; j++) bt[j * k + p] = b[p * n + j];
    const out2 = new Float64Array(m * n);
    gemm(m, n, k, at, 0, 1, m, bt, 0, 1, k, out2, 0, n);
    expectClose(out2, ref.data, ref.abs, 1e-13);
  });
});

// ---------- conv1d ----------

function conv1dRef(
  x: FloatArray,
  [n, c, l]: number[],
  w: FloatArray,
  [o, , k]: number[],
  opts: Conv1dOptions,
): Float64Array {
  const lout = conv1dOutputLength(l, k, opts);
  const y = new Float64Array(n * o * lout);
  for (let ni = 0; ni < n; ni++)
    for (let oi = 0; oi < o; oi++)
      for (let t = 0; t < lout; t++) {
        let s = 0;
        for (let ci = 0; ci < c; ci++)
          for (let ki = 0; ki < k; ki++) {
            const pos = t * opts.stride + ki * opts.dilation - opts.padding[0];
            if (pos >= 0 && pos < l) s += w[(oi * c + ci) * k + ki] * x[(ni * c + ci) * l + pos];
          }
        y[(ni * o + oi) * lout + t] = s;
      }
  return y;
}

/** Transposes of conv1dRef, written as the scatter loops they are. */
function convGradsRef(
  x: FloatArray,
  [n, c, l]: number[],
  w: FloatArray,
  [o, , k]: number[],
  g: FloatArray,
  opts: Conv1dOptions,
): { dx: Float64Array; dw: Float64Array } {
  const lout = conv1dOutputLength(l, k, opts);
  const dx = new Float64Array(n * c * l);
  const dw = new Float64Array(o * c * k);
  for (let ni = 0; ni < n; ni++)
    for (let oi = 0; oi < o; oi++)
      for (let t = 0; t < lout; t++) {
        const gv = g[(ni * o + oi) * lout + t];
        for (let ci = 0; ci < c; ci++)
          for (let ki = 0; ki < k; ki++) {
            const pos = t * opts.stride + ki * opts.dilation - opts.padding[0];
            if (pos < 0 || pos >= l) continue;
            dx[(ni * c + ci) * l + pos] += gv * w[(oi * c + ci) * k + ki];
            dw[(oi * c + ci) * k + ki] += gv * x[(ni * c + ci) * l + pos];
          }
      }
  return { dx, dw };
}

const convCase = fc.record({
  ctor: dtypeArb,
  n: fc.integer({ min: 0, max: 3 }),
  c: fc.integer({ min: 0, max: 4 }),
  o: fc.integer({ min: 0, max: 4 }),
  k: fc.integer({ min: 1, max: 4 }),
  l: fc.integer({ min: 0, max: 14 }),
  stride: fc.integer({ min: 1, max: 3 }),
  dilation: fc.integer({ min: 1, max: 3 }),
  lo: fc.integer({ min: 0, max: 3 }),
  hi: fc.integer({ min: 0, max: 3 }),
  seed: fc.integer(),
});

type ConvCase = typeof convCase extends fc.Arbitrary<infer T> ? T : never;

function checkConv({ ctor, n, c, o, k, l, stride, dilation, lo, hi, seed }: ConvCase): void {
  const opts: Conv1dOptions = { stride, dilation, padding: [lo, hi] };
  const xShape = [n, c, l];
  const wShape = [o, c, k];
  const lout = conv1dOutputLength(l, k, opts);
  expect(lout).toBe(Math.max(0, Math.floor((l + lo + hi - dilation * (k - 1) - 1) / stride) + 1));
  const x = randomArray(ctor, n * c * l, seed);
  const w = randomArray(ctor, o * c * k, seed + 1);
  const g = randomArray(ctor, n * o * lout, seed + 2);
  const tol = tolFor(ctor) * (c * k + n * lout + 1);

  const y = conv1d(x, xShape, w, wShape, opts);
  expect(y.shape).toEqual([n, o, lout]);
  expect(y.data).toBeInstanceOf(ctor);
  const yRef = conv1dRef(x, xShape, w, wShape, opts);
  expectClose(y.data, yRef, new Float64Array(yRef.length).fill(1), tol);

  const dx = conv1dGradInput(g, [n, o, lout], w, wShape, { ...opts, inputLength: l });
  const dw = conv1dGradWeight(x, xShape, g, [n, o, lout], { ...opts, kernelSize: k });
  expect(dx.shape).toEqual(xShape);
  expect(dw.shape).toEqual(wShape);
  expect(dx.data).toBeInstanceOf(ctor);
  expect(dw.data).toBeInstanceOf(ctor);
  const ref = convGradsRef(x, xShape, w, wShape, g, opts);
  expectClose(dx.data, ref.dx, new Float64Array(ref.dx.length).fill(1), tol);
  expectClose(dw.data, ref.dw, new Float64Array(ref.dw.length).fill(1), tol);

  // Adjoint identities: <conv(x, w), g> = <x, dX(g, w)> = <w, dW(x, g)>.
  const lhs = dot(y.data, g);
  const scale = (l1(y.data) + 1) * (l1(g) + 1) * tol;
  expect(Math.abs(lhs - dot(x, dx.data))).toBeLessThanOrEqual(scale);
  expect(Math.abs(lhs - dot(w, dw.data))).toBeLessThanOrEqual(scale);
}

describe("conv1d", () => {
  it("matches naive references and satisfies the adjoint identities", () => {
    fc.assert(fc.property(convCase, checkConv), { numRuns: 300 });
  });

  it("works at GEMM-sized shapes (packed path)", () => {
    for (const ctor of [Float32Array, Float64Array]) {
      checkConv({
        ctor,
        n: 3,
        c: 7,
        o: 9,
        k: 3,
        l: 50,
        stride: 1,
        dilation: 1,
        lo: 1,
        hi: 1,
        seed: 1,
      });
      checkConv({
        ctor,
        n: 2,
        c: 40,
        o: 6,
        k: 5,
        l: 70,
        stride: 2,
        dilation: 3,
        lo: 3,
        hi: 0,
        seed: 2,
      });
    }
  });

  it("float32 stride 1 (implicit GEMM): several chunks of samples, dilation, uneven padding", () => {
    // n·(L + padding) > 4096 columns splits the batch into chunks; padding beyond the kernel's
    // span takes the im2col route for the input cotangent.
    for (const [n, c, o, k, l, dilation, lo, hi] of [
      [3, 5, 6, 3, 2000, 1, 1, 1],
      [5, 3, 9, 4, 1500, 2, 0, 5],
      [2, 2, 3, 1, 3000, 1, 0, 0],
      [4, 3, 2, 2, 1300, 3, 5, 2],
    ] as const) {
      checkConv({ ctor: Float32Array, n, c, o, k, l, stride: 1, dilation, lo, hi, seed: n + l });
    }
  });

  it("gives an empty output when the kernel does not fit", () => {
    const y = conv1d(new Float64Array(6), [1, 2, 3], new Float64Array(10), [1, 2, 5], {
      stride: 1,
      dilation: 1,
      padding: [0, 1],
    });
    expect(y.shape).toEqual([1, 1, 0]);
    expect(y.data.length).toBe(0);
  });

  it("rejects inconsistent shapes and options", () => {
    const opts: Conv1dOptions = { stride: 1, dilation: 1, padding: [0, 0] };
    const x = new Float64Array(12);
    expect(() => conv1d(x, [1, 3, 4], new Float64Array(4), [1, 2, 2], opts)).toThrow(Error);
    expect(() =>
      conv1d(x, [1, 3, 4], new Float64Array(6), [1, 3, 2], { ...opts, stride: 0 }),
    ).toThrow(Error);
    expect(() =>
      conv1dGradInput(new Float64Array(2), [1, 1, 2], new Float64Array(6), [1, 3, 2], {
        ...opts,
        inputLength: 4,
      }),
    ).toThrow(Error);
  });
});

// ---------- max pooling ----------

function poolRef(x: FloatArray, [n, c, l]: number[], kernel: number, stride: number) {
  const lout = l < kernel ? 0 : Math.floor((l - kernel) / stride) + 1;
  const idx = new Int32Array(n * c * lout);
  for (let r = 0; r < n * c; r++)
    for (let t = 0; t < lout; t++) {
      const win = Array.from({ length: kernel }, (_, j) => x[r * l + t * stride + j]);
      const nan = win.findIndex(Number.isNaN);
      const best = nan >= 0 ? nan : win.indexOf(Math.max(...win));
      idx[r * lout + t] = t * stride + best;
    }
  return { lout, idx };
}

describe("maxPool1d", () => {
  it("matches a naive reference (ties -> first, NaN wins) and its two linear maps are adjoint", () => {
    fc.assert(
      fc.property(
        fc.record({
          ctor: dtypeArb,
          n: fc.integer({ min: 0, max: 3 }),
          c: fc.integer({ min: 0, max: 3 }),
          l: fc.integer({ min: 0, max: 12 }),
          kernel: fc.integer({ min: 1, max: 5 }),
          stride: fc.integer({ min: 1, max: 4 }),
          // Few distinct values force ties; NaN and infinities exercise the edge rules.
          values: fc.array(fc.constantFrom(-2, 0, 1, 3, Number.NaN, -Infinity, Infinity), {
            minLength: 200,
            maxLength: 200,
          }),
          seed: fc.integer(),
        }),
        ({ ctor, n, c, l, kernel, stride, values, seed }) => {
          const x = new ctor(n * c * l).map((_, i) => values[i % values.length]);
          const { data, shape, argmax } = maxPool1d(x, [n, c, l], { kernel, stride });
          const ref = poolRef(x, [n, c, l], kernel, stride);
          expect(shape).toEqual([n, c, ref.lout]);
          expect(data).toBeInstanceOf(ctor);
          expect(Array.from(argmax)).toEqual(Array.from(ref.idx));
          for (let i = 0; i < data.length; i++) {
            const r = Math.floor(i / Math.max(ref.lout, 1));
            expect(Object.is(data[i], x[r * l + ref.idx[i]])).toBe(true);
          }

          const g = randomArray(ctor, data.length, seed);
          const dx = randomArray(ctor, x.length, seed + 1);
          const sc = maxPool1dScatter(g, shape, argmax, l);
          const ga = maxPool1dGather(dx, [n, c, l], argmax, ref.lout);
          expect(sc.shape).toEqual([n, c, l]);
          expect(ga.shape).toEqual(shape);
          expect(sc.data).toBeInstanceOf(ctor);
          expect(ga.data).toBeInstanceOf(ctor);
          const scRef = new Float64Array(x.length);
          for (let i = 0; i < g.length; i++) {
            const r = Math.floor(i / ref.lout);
            scRef[r * l + ref.idx[i]] += g[i];
            expect(ga.data[i]).toBe(dx[r * l + ref.idx[i]]);
          }
          expectClose(sc.data, scRef, new Float64Array(x.length).fill(1), tolFor(ctor) * kernel);
          const tol = tolFor(ctor) * (l1(g) + 1) * (l1(dx) + 1);
          expect(Math.abs(dot(ga.data, g) - dot(dx, sc.data))).toBeLessThanOrEqual(tol);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("infers the output length for gather and rejects bad options", () => {
    const x = Float64Array.from([1, 5, 2, 4, 3, 0]);
    const { data, argmax } = maxPool1d(x, [1, 1, 6], { kernel: 3, stride: 2 });
    expect(Array.from(data)).toEqual([5, 4]);
    expect(Array.from(argmax)).toEqual([1, 3]);
    expect(maxPool1dGather(x, [1, 1, 6], argmax).shape).toEqual([1, 1, 2]);
    expect(() => maxPool1d(x, [1, 1, 6], { kernel: 0, stride: 1 })).toThrow(Error);
    expect(() => maxPool1d(x, [1, 2, 6], { kernel: 2, stride: 1 })).toThrow(Error);
  });
});
