/**
 * The float32 exp, tanh, log and log1p (cpu/math-f32.ts): accurate to 1 ulp (log1p: 2) of the
 * correctly rounded value (float32 of Math's) over the whole float32 range, right at the edge
 * values, and the same bits everywhere they run: the eager float32 kernels, the generated
 * JavaScript fused loops and the WebAssembly SIMD fused loops (exp, tanh, log, log1p and
 * sigmoid = 1 / (1 + exp(−x))).
 */
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { type Array as NbiArray, np } from "../../src/index.js";
import { expf32, log1pf32, logf32, tanhf32 } from "../../src/ops/cpu/math-f32.js";
import { jit } from "../../src/transforms/jit.js";

const EDGES = [
  0,
  -0,
  1,
  -1,
  0.5,
  -0.5,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  Number.NaN,
  88.72283172607422, // largest finite exp
  88.72283935546875, // exp overflows
  -87.33654022216797, // exp at the smallest normal
  -103.27892303466797, // exp at the smallest subnormal
  -103.97207641601562, // exp rounds to 0
  -104,
  -200,
  200,
  1e-8,
  -1e-30,
  1.401298464324817e-45,
  -1.401298464324817e-45,
  0.625, // tanh's branch point
  -0.625,
  0.6249999403953552,
  9.010913848876953, // tanh rounds to 1 from here
  -9.5,
  20,
  3.4028234663852886e38,
  -3.4028234663852886e38,
  1.1754943508222875e-38, // the smallest normal (log's subnormal scaling starts below it)
  1.1754942106924411e-38, // the largest subnormal
  0.7071067690849304, // log's mantissa branch point √½, either side
  0.7071068286895752,
  1.0000001192092896, // log near 1
  0.9999999403953552,
  2 ** -24, // log1p: 1 + x rounds to 1 below it
  -(2 ** -25),
  -0.9999999403953552, // log1p near −1
  -1.0000001192092896,
];

const bits = new Float32Array(1);
const word = new Int32Array(bits.buffer);
function ulps(a: number, b: number): number {
  bits[0] = a;
  const ia = word[0]!;
  bits[0] = b;
  return Math.abs(ia - word[0]!);
}

/** Within `max` ulps of float32(ref(x)); NaN for NaN, infinities exact. */
function close(got: number, want: number, max: number): boolean {
  if (Number.isNaN(want)) return Number.isNaN(got);
  if (!Number.isFinite(want)) return got === want;
  return Number.isFinite(got) && Math.sign(got) === Math.sign(want) && ulps(got, want) <= max;
}

const f32 = fc.float();
const moderate = fc.float({ min: -120, max: 120, noNaN: true });

const CASES = [
  { name: "exp", scalar: expf32, ref: Math.exp, op: (x: NbiArray) => np.exp(x), ulp: 1 },
  { name: "tanh", scalar: tanhf32, ref: Math.tanh, op: (x: NbiArray) => np.tanh(x), ulp: 1 },
  { name: "log", scalar: logf32, ref: Math.log, op: (x: NbiArray) => np.log(x), ulp: 1 },
  { name: "log1p", scalar: log1pf32, ref: Math.log1p, op: (x: NbiArray) => np.log1p(x), ulp: 2 },
] as const;

/** Positive float32 values of every binade, subnormals included (log's whole domain). */
const positive = fc.float({ min: 0, noNaN: true });

describe("float32 exp, tanh, log and log1p", () => {
  beforeAll(async () => {
    await np.useBackend("cpu");
  });

  it.each(CASES)(
    "$name is within $ulp ulp of the correctly rounded value",
    ({ scalar, ref, ulp }) => {
      for (const x of EDGES) {
        expect(close(scalar(x), Math.fround(ref(x)), ulp), `x = ${x}`).toBe(true);
      }
      fc.assert(
        fc.property(fc.oneof(f32, moderate, positive), (x) =>
          close(scalar(x), Math.fround(ref(x)), ulp),
        ),
        { numRuns: 20000 },
      );
    },
  );

  it("keeps exact values: exp(±0) = 1, tanh(±0) = ±0, exp(−inf) = 0, tanh(±inf) = ±1", () => {
    expect(expf32(0)).toBe(1);
    expect(expf32(-0)).toBe(1);
    expect(Object.is(tanhf32(0), 0)).toBe(true);
    expect(Object.is(tanhf32(-0), -0)).toBe(true);
    expect(expf32(Number.NEGATIVE_INFINITY)).toBe(0);
    expect(expf32(Number.POSITIVE_INFINITY)).toBe(Number.POSITIVE_INFINITY);
    expect(tanhf32(Number.POSITIVE_INFINITY)).toBe(1);
    expect(tanhf32(Number.NEGATIVE_INFINITY)).toBe(-1);
    expect(tanhf32(Number.NaN)).toBeNaN();
    expect(logf32(1)).toBe(0);
    expect(logf32(0)).toBe(Number.NEGATIVE_INFINITY);
    expect(logf32(-0)).toBe(Number.NEGATIVE_INFINITY);
    expect(logf32(Number.POSITIVE_INFINITY)).toBe(Number.POSITIVE_INFINITY);
    expect(logf32(-1)).toBeNaN();
    expect(logf32(Number.NaN)).toBeNaN();
    expect(Object.is(log1pf32(0), 0)).toBe(true);
    expect(Object.is(log1pf32(-0), -0)).toBe(true);
    expect(log1pf32(-1)).toBe(Number.NEGATIVE_INFINITY);
    expect(log1pf32(Number.POSITIVE_INFINITY)).toBe(Number.POSITIVE_INFINITY);
    expect(log1pf32(-2)).toBeNaN();
    expect(log1pf32(Number.NEGATIVE_INFINITY)).toBeNaN();
  });

  it.each(CASES)(
    "eager float32 $name is the scalar form; float64 stays Math's",
    ({ scalar, ref, op }) => {
      fc.assert(
        fc.property(
          fc.array(fc.oneof(fc.constantFrom(...EDGES), f32, moderate), { maxLength: 300 }),
          (xs) => {
            const x = np.array(xs, { dtype: "float32" });
            const got = op(x).dataSync();
            const xf = x.dataSync();
            for (let i = 0; i < xs.length; i++) {
              if (!Object.is(got[i], scalar(xf[i]!))) return false;
            }
            const y = op(np.array(xs, { dtype: "float64" })).dataSync();
            return xs.every((v, i) => Object.is(y[i], ref(v)));
          },
        ),
        { numRuns: 200 },
      );
    },
  );

  // Fused loops: a chain long enough to fuse, over ≥ 1024 elements for a single equation. The
  // SIMD loop takes exp, tanh, log and log1p; a sin in the chain sends the whole group to the JS
  // loop.
  const fusedForms = {
    "SIMD, single equation": (f: (x: NbiArray) => NbiArray) => jit(f),
    "SIMD, in a chain": (f: (x: NbiArray) => NbiArray) =>
      jit((x: NbiArray) => np.mul(f(np.mul(x, 1)), 1)),
    "JavaScript loop (a sin in the group)": (f: (x: NbiArray) => NbiArray) =>
      jit((x: NbiArray) => np.add(f(x), np.mul(np.sin(x), 0))),
  };
  const funcs = {
    exp: (x: NbiArray) => np.exp(x),
    tanh: (x: NbiArray) => np.tanh(x),
    sigmoid: (x: NbiArray) => np.sigmoid(x),
    log: (x: NbiArray) => np.log(x),
    log1p: (x: NbiArray) => np.log1p(x),
  };
  const eagerForms = {
    "SIMD, single equation": (f: (x: NbiArray) => NbiArray) => f,
    "SIMD, in a chain": (f: (x: NbiArray) => NbiArray) => (x: NbiArray) =>
      np.mul(f(np.mul(x, 1)), 1),
    "JavaScript loop (a sin in the group)": (f: (x: NbiArray) => NbiArray) => (x: NbiArray) =>
      np.add(f(x), np.mul(np.sin(x), 0)),
  };

  for (const [form, fused] of Object.entries(fusedForms)) {
    for (const [name, f] of Object.entries(funcs)) {
      it(`jit ${name} (${form}) equals eager bit for bit, edge values included`, () => {
        fc.assert(
          fc.property(
            fc.array(fc.oneof(fc.constantFrom(...EDGES), f32, moderate), {
              minLength: 1,
              maxLength: 64,
            }),
            fc.integer({ min: 1, max: 1100 }),
            (head, pad) => {
              // Lengths on both sides of 1024 and of the 4-lane vectors (tails of 0–3).
              const xs = [...EDGES, ...head, ...Array.from({ length: pad }, (_, i) => i / 37 - 14)];
              const x = np.array(xs, { dtype: "float32" });
              const want = new Uint32Array(
                Float32Array.from(eagerForms[form as keyof typeof eagerForms](f)(x).dataSync())
                  .buffer,
              );
              const got = new Uint32Array(Float32Array.from(fused(f)(x).dataSync()).buffer);
              for (let i = 0; i < want.length; i++) {
                const nan = (w: number) => (w & 0x7f800000) === 0x7f800000 && (w & 0x7fffff) !== 0;
                if (got[i] !== want[i] && !(nan(got[i]!) && nan(want[i]!))) return false;
              }
              return true;
            },
          ),
          { numRuns: 30 },
        );
      });
    }
  }
});
