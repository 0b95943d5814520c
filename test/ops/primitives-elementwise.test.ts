/**
 * Elementwise primitives (unary math, broadcasting binary arithmetic, comparisons, where, cast)
 * and NumPy-style dtype promotion, checked against the float64 reference in
 * test/helpers/reference.ts on random shapes (broadcasting, size-1 and size-0 axes) in float32
 * and float64. Expected values always come from plain JS (Math.*) on the same stored inputs.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type Array, type DType, NbiError, np } from "../../src/index.js";
import { testBackends, useTestBackend } from "../helpers/backends.js";
import {
  broadcastShapesArb,
  elementFor,
  expectMatches,
  floatDTypes,
  floats,
  map,
  ref,
  refArb,
  shapeArb,
  smallInts,
  storeAs,
  stored,
  toArray,
  zipWith,
} from "../helpers/reference.js";

type Unary = (x: Array) => Array;
type Binary = (a: Array, b: Array) => Array;

/** Doubles of magnitude in [lo, hi], either sign. */
const magnitudes = (lo: number, hi: number) =>
  fc
    .tuple(fc.double({ min: lo, max: hi, noNaN: true }), fc.boolean())
    .map(([v, negative]) => (negative ? -v : v));

/** One array of random shape with values from `element`, stored in the dtype. */
const oneArray = (dtype: DType, element: fc.Arbitrary<number>) =>
  shapeArb().chain((s) => refArb(s, dtype, element));

/** Two arrays of shapes that broadcast together. */
const twoArrays = (dtype: DType, ea: fc.Arbitrary<number>, eb: fc.Arbitrary<number> = ea) =>
  broadcastShapesArb(2).chain(([sa, sb]) => fc.tuple(refArb(sa, dtype, ea), refArb(sb, dtype, eb)));

const sign = (a: number) => (a > 0 ? 1 : a < 0 ? -1 : a);

interface UnaryCase {
  name: string;
  fn: Unary;
  ref: (a: number) => number;
  element: fc.Arbitrary<number>;
}

const unaryCases: UnaryCase[] = [
  { name: "neg", fn: np.neg, ref: (a) => -a, element: floats(-10, 10) },
  { name: "exp", fn: np.exp, ref: Math.exp, element: floats(-20, 20) },
  { name: "log", fn: np.log, ref: Math.log, element: floats(1e-6, 1e3) },
  { name: "log1p", fn: np.log1p, ref: Math.log1p, element: floats(-0.999, 10) },
  { name: "expm1", fn: np.expm1, ref: Math.expm1, element: floats(-20, 20) },
  { name: "sin", fn: np.sin, ref: Math.sin, element: floats(-10, 10) },
  { name: "cos", fn: np.cos, ref: Math.cos, element: floats(-10, 10) },
  { name: "tanh", fn: np.tanh, ref: Math.tanh, element: floats(-10, 10) },
  { name: "sqrt", fn: np.sqrt, ref: Math.sqrt, element: floats(0, 100) },
  { name: "abs", fn: np.abs, ref: Math.abs, element: floats(-10, 10) },
  { name: "sign", fn: np.sign, ref: sign, element: floats(-3, 3) },
  { name: "floor", fn: np.floor, ref: Math.floor, element: floats(-10, 10) },
];

interface BinaryCase {
  name: string;
  fn: Binary;
  ref: (a: number, b: number) => number;
  a: fc.Arbitrary<number>;
  b: fc.Arbitrary<number>;
}

const nanMax = (a: number, b: number) =>
  Number.isNaN(a) || Number.isNaN(b) ? Number.NaN : Math.max(a, b);
const nanMin = (a: number, b: number) =>
  Number.isNaN(a) || Number.isNaN(b) ? Number.NaN : Math.min(a, b);

const binaryCases: BinaryCase[] = [
  { name: "add", fn: np.add, ref: (a, b) => a + b, a: floats(-5, 5), b: floats(-5, 5) },
  { name: "sub", fn: np.sub, ref: (a, b) => a - b, a: floats(-5, 5), b: floats(-5, 5) },
  { name: "mul", fn: np.mul, ref: (a, b) => a * b, a: floats(-5, 5), b: floats(-5, 5) },
  {
    name: "div",
    fn: np.div,
    ref: (a, b) => a / b,
    a: floats(-5, 5),
    // Zeros give ±inf and NaN; other divisors stay away from float32's subnormals.
    b: fc.oneof(magnitudes(0.01, 5), fc.constant(0)),
  },
  {
    name: "pow (positive base)",
    fn: np.pow,
    ref: Math.pow,
    a: fc.double({ min: 0.01, max: 5, noNaN: true }),
    b: floats(-3, 3),
  },
  {
    name: "pow (integer exponent)",
    fn: np.pow,
    ref: Math.pow,
    a: floats(-5, 5),
    b: smallInts(-3, 3),
  },
  { name: "maximum", fn: np.maximum, ref: Math.max, a: floats(-3, 3), b: floats(-3, 3) },
  { name: "minimum", fn: np.minimum, ref: Math.min, a: floats(-3, 3), b: floats(-3, 3) },
];

interface CompareCase {
  name: string;
  fn: Binary;
  ref: (a: number, b: number) => boolean;
}

const compareCases: CompareCase[] = [
  { name: "equal", fn: np.equal, ref: (a, b) => a === b },
  { name: "notEqual", fn: np.notEqual, ref: (a, b) => a !== b },
  { name: "less", fn: np.less, ref: (a, b) => a < b },
  { name: "lessEqual", fn: np.lessEqual, ref: (a, b) => a <= b },
  { name: "greater", fn: np.greater, ref: (a, b) => a > b },
  { name: "greaterEqual", fn: np.greaterEqual, ref: (a, b) => a >= b },
];

const withNaN = (element: fc.Arbitrary<number>) =>
  fc.oneof({ weight: 4, arbitrary: element }, { weight: 1, arbitrary: fc.constant(Number.NaN) });

describe.each(testBackends())(
  "elementwise primitives against a float64 reference (%s)",
  (backend) => {
    useTestBackend(backend);

    describe.each(floatDTypes(backend))("%s", (dtype) => {
      it.each(unaryCases)("unary $name on random shapes", async ({ fn, ref: f, element }) => {
        await fc.assert(
          fc.asyncProperty(oneArray(dtype, element), async (x) => {
            await expectMatches(fn(toArray(x, dtype)), map(x, f), dtype);
          }),
          { numRuns: 30 },
        );
      });

      it("unary functions on NaN, ±inf and ±0 follow IEEE (Math.*)", async () => {
        const specials = [Number.NaN, Infinity, -Infinity, 0, -0, -1, 1];
        const x = ref([specials.length], specials);
        for (const { name, fn, ref: f } of unaryCases) {
          await expectMatches(fn(toArray(x, dtype)), map(x, f), dtype, { label: name });
        }
      });

      it("log1p and expm1 keep their relative accuracy near zero", async () => {
        const tol = { rtol: dtype === "float32" ? 1e-5 : 1e-12, atol: 0 };
        await fc.assert(
          fc.asyncProperty(oneArray(dtype, magnitudes(1e-12, 1e-4)), async (x) => {
            const a = toArray(x, dtype);
            await expectMatches(np.log1p(a), map(x, Math.log1p), dtype, { tol, label: "log1p" });
            await expectMatches(np.expm1(a), map(x, Math.expm1), dtype, { tol, label: "expm1" });
          }),
          { numRuns: 20 },
        );
      });

      it.each(binaryCases)("binary $name with broadcasting", async ({ fn, ref: f, a, b }) => {
        await fc.assert(
          fc.asyncProperty(twoArrays(dtype, a, b), async ([x, y]) => {
            await expectMatches(
              fn(toArray(x, dtype), toArray(y, dtype)),
              zipWith([x, y], f),
              dtype,
            );
          }),
          { numRuns: 40 },
        );
      });

      it("maximum and minimum propagate NaN from either operand", async () => {
        await fc.assert(
          fc.asyncProperty(twoArrays(dtype, withNaN(smallInts())), async ([x, y]) => {
            const a = toArray(x, dtype);
            const b = toArray(y, dtype);
            await expectMatches(np.maximum(a, b), zipWith([x, y], nanMax), dtype, { label: "max" });
            await expectMatches(np.minimum(a, b), zipWith([x, y], nanMin), dtype, { label: "min" });
          }),
          { numRuns: 40 },
        );
      });

      it.each(compareCases)("comparison $name (ties and NaN)", async ({ fn, ref: f }) => {
        await fc.assert(
          fc.asyncProperty(twoArrays(dtype, withNaN(smallInts(-2, 2))), async ([x, y]) => {
            const want = zipWith([x, y], (a, b) => (f(a, b) ? 1 : 0));
            await expectMatches(fn(toArray(x, dtype), toArray(y, dtype)), want, "bool");
          }),
          { numRuns: 30 },
        );
      });

      it("where broadcasts condition, x and y together", async () => {
        const arb = broadcastShapesArb(3).chain(([sc, sx, sy]) =>
          fc.tuple(
            refArb(sc, "bool", elementFor("bool")),
            refArb(sx, dtype, floats(-5, 5)),
            refArb(sy, dtype, floats(-5, 5)),
          ),
        );
        await fc.assert(
          fc.asyncProperty(arb, async ([c, x, y]) => {
            const got = np.where(toArray(c, "bool"), toArray(x, dtype), toArray(y, dtype));
            await expectMatches(
              got,
              zipWith([c, x, y], (cc, a, b) => (cc ? a : b)),
              dtype,
            );
          }),
          { numRuns: 40 },
        );
      });

      it("where takes a numeric condition as condition != 0 (NaN is true)", async () => {
        const cond = fc.oneof(smallInts(-1, 1), fc.constant(-0), fc.constant(Number.NaN));
        const arb = broadcastShapesArb(3).chain(([sc, sx, sy]) =>
          fc.tuple(
            refArb(sc, dtype, cond),
            refArb(sx, dtype, floats(-5, 5)),
            refArb(sy, dtype, floats(-5, 5)),
          ),
        );
        await fc.assert(
          fc.asyncProperty(arb, async ([c, x, y]) => {
            const got = np.where(toArray(c, dtype), toArray(x, dtype), toArray(y, dtype));
            await expectMatches(
              got,
              zipWith([c, x, y], (cc, a, b) => (cc !== 0 ? a : b)),
              dtype,
            );
          }),
          { numRuns: 30 },
        );
      });
    });

    describe("integer arithmetic", () => {
      const int32 = elementFor("int32");

      it.each([
        { name: "neg", fn: np.neg, f: (a: number) => -a },
        { name: "abs", fn: np.abs, f: Math.abs },
        { name: "sign", fn: np.sign, f: sign },
        { name: "floor", fn: np.floor, f: Math.floor },
      ])("int32 $name wraps like two's complement and stays int32", async ({ fn, f }) => {
        await fc.assert(
          fc.asyncProperty(oneArray("int32", int32), async (x) => {
            await expectMatches(
              fn(toArray(x, "int32")),
              map(x, (a) => storeAs(f(a), "int32")),
              "int32",
            );
          }),
          { numRuns: 30 },
        );
      });

      it.each([
        { name: "add", fn: np.add, f: (a: number, b: number) => a + b },
        { name: "sub", fn: np.sub, f: (a: number, b: number) => a - b },
        {
          name: "mul",
          fn: np.mul,
          f: (a: number, b: number) => Number((BigInt(a) * BigInt(b)) % 2n ** 32n),
        },
        { name: "maximum", fn: np.maximum, f: Math.max },
        { name: "minimum", fn: np.minimum, f: Math.min },
      ])("int32 $name wraps modulo 2^32 and broadcasts", async ({ fn, f }) => {
        await fc.assert(
          fc.asyncProperty(twoArrays("int32", int32), async ([x, y]) => {
            const want = zipWith([x, y], (a, b) => storeAs(f(a, b), "int32"));
            await expectMatches(fn(toArray(x, "int32"), toArray(y, "int32")), want, "int32");
          }),
          { numRuns: 30 },
        );
      });

      it("uint32 add and mul wrap modulo 2^32", async () => {
        await fc.assert(
          fc.asyncProperty(twoArrays("uint32", elementFor("uint32")), async ([x, y]) => {
            const a = toArray(x, "uint32");
            const b = toArray(y, "uint32");
            const mod = (v: bigint) => Number(((v % 2n ** 32n) + 2n ** 32n) % 2n ** 32n);
            await expectMatches(
              np.add(a, b),
              zipWith([x, y], (p, q) => mod(BigInt(p) + BigInt(q))),
              "uint32",
            );
            await expectMatches(
              np.mul(a, b),
              zipWith([x, y], (p, q) => mod(BigInt(p) * BigInt(q))),
              "uint32",
            );
          }),
          { numRuns: 30 },
        );
      });

      it("int32 division is true division in float32", async () => {
        const arb = twoArrays("int32", smallInts(-50, 50), fc.integer({ min: -9, max: 9 }));
        await fc.assert(
          fc.asyncProperty(arb, async ([x, y]) => {
            const got = np.div(toArray(x, "int32"), toArray(y, "int32"));
            await expectMatches(
              got,
              zipWith([x, y], (a, b) => a / b),
              "float32",
            );
          }),
          { numRuns: 30 },
        );
      });

      it.each(compareCases)("int32 comparison $name", async ({ fn, ref: f }) => {
        await fc.assert(
          fc.asyncProperty(twoArrays("int32", smallInts(-2, 2)), async ([x, y]) => {
            const want = zipWith([x, y], (a, b) => (f(a, b) ? 1 : 0));
            await expectMatches(fn(toArray(x, "int32"), toArray(y, "int32")), want, "bool");
          }),
          { numRuns: 20 },
        );
      });

      it("float functions of integer arrays compute in float32", async () => {
        const x = ref([5], [-2, -1, 0, 3, 7]);
        const a = toArray(x, "int32");
        await expectMatches(np.exp(a), map(x, Math.exp), "float32", { label: "exp" });
        await expectMatches(np.sin(a), map(x, Math.sin), "float32", { label: "sin" });
        await expectMatches(np.sqrt(a), map(x, Math.sqrt), "float32", { label: "sqrt" });
      });
    });

    describe("cast (astype)", () => {
      const fdts = floatDTypes(backend);

      /** NumPy's conversion: floats to integers truncate toward zero; to bool is x != 0. */
      function convert(v: number, from: DType, to: DType): number {
        if (to === "bool") return v !== 0 ? 1 : 0;
        if ((from === "float32" || from === "float64") && (to === "int32" || to === "uint32")) {
          return storeAs(Math.trunc(v), to);
        }
        return storeAs(v, to);
      }

      const sources: { from: DType; element: fc.Arbitrary<number> }[] = [
        ...fdts.map((from) => ({
          from,
          element: fc.oneof(floats(-1000, 1000), fc.constant(-0), magnitudes(0, 1)),
        })),
        { from: "int32", element: elementFor("int32") },
        { from: "uint32", element: elementFor("uint32") },
        { from: "bool", element: elementFor("bool") },
      ];
      const targets: DType[] = [...fdts, "int32", "bool"];
      const pairs = sources.flatMap((s) =>
        targets.filter((to) => to !== s.from).map((to) => ({ ...s, to })),
      );

      it.each(pairs)("$from -> $to", async ({ from, to, element }) => {
        await fc.assert(
          fc.asyncProperty(oneArray(from, element), async (x) => {
            const got = np.astype(toArray(x, from), to);
            await expectMatches(
              got,
              map(x, (v) => convert(v, from, to)),
              to,
              // float64 -> float32 rounds once: exact against Math.fround.
              { tol: { rtol: 0, atol: 0 } },
            );
          }),
          { numRuns: 25 },
        );
      });

      it.each(fdts)("non-negative %s -> uint32 truncates toward zero", async (from) => {
        await fc.assert(
          fc.asyncProperty(oneArray(from, floats(0, 1e6)), async (x) => {
            const got = np.astype(toArray(x, from), "uint32");
            await expectMatches(
              got,
              map(x, (v) => Math.trunc(v)),
              "uint32",
            );
          }),
          { numRuns: 25 },
        );
      });

      it.each(fdts)("%s NaN -> bool is true (NumPy: x != 0)", async (from) => {
        const x = ref([4], [Number.NaN, 0, -0, 2]);
        await expectMatches(np.astype(toArray(x, from), "bool"), ref([4], [1, 0, 0, 1]), "bool");
      });

      it("float -> int truncates toward zero on both sides", async () => {
        const x = ref([6], [2.9, -2.9, 0.5, -0.5, 1e-8, -7]);
        await expectMatches(
          np.astype(toArray(x, "float32"), "int32"),
          ref([6], [2, -2, 0, 0, 0, -7]),
          "int32",
        );
      });
    });

    describe("dtype promotion", () => {
      const fdts = floatDTypes(backend);
      const dtypes: DType[] = ["bool", "uint32", "int32", ...fdts];
      // The documented lattice: bool < uint32 < int32 < float32 < float64.
      const rank = (d: DType) => dtypes.indexOf(d);
      const pairs = dtypes.flatMap((a) => dtypes.map((b) => ({ a, b })));

      it.each(pairs)("$a op $b promotes along the lattice", async ({ a, b }) => {
        const want = rank(a) >= rank(b) ? a : b;
        const x = ref([2, 1], [0, 1]);
        const y = ref([3], [1, 0, 1]);
        const xa = toArray(x, a);
        const yb = toArray(y, b);
        for (const fn of [np.add, np.sub, np.mul, np.maximum, np.minimum, np.pow]) {
          if (want === "bool" && fn === np.sub) {
            // NumPy refuses boolean subtraction; so do we, with an NbiError.
            expect(() => fn(xa, yb)).toThrow(NbiError);
          } else if (want === "bool" && fn === np.pow) {
            expect(fn(xa, yb).dtype, fn.name).toBe("int32");
          } else expect(fn(xa, yb).dtype, fn.name).toBe(want);
        }
        expect(np.equal(xa, yb).dtype).toBe("bool");
        expect(np.where(np.array([true, false, true]), xa, yb).dtype).toBe(want);
        expect(np.concatenate([np.reshape(xa, [2]), np.reshape(yb, [3])]).dtype).toBe(want);
        if (want !== "bool") {
          await expectMatches(
            np.add(xa, yb),
            zipWith([x, y], (p, q) => p + q),
            want,
          );
          await expectMatches(np.maximum(xa, yb), zipWith([x, y], Math.max), want);
        }
      });

      it("float32 + float64 -> float64, int32 + float32 -> float32 (values kept)", async () => {
        const x = ref([3], [1.1, -2.5, 3]);
        const y = ref([3], [0.1, 0.2, 1e-10]);
        if (fdts.includes("float64")) {
          const got = np.add(toArray(stored(x, "float32"), "float32"), toArray(y, "float64"));
          const want = zipWith([stored(x, "float32"), y], (p, q) => p + q);
          await expectMatches(got, want, "float64");
        }
        const i = ref([3], [16777217, -3, 7]);
        const got = np.add(toArray(i, "int32"), toArray(stored(y, "float32"), "float32"));
        const want = zipWith([stored(i, "float32"), stored(y, "float32")], (p, q) => p + q);
        await expectMatches(got, want, "float32");
      });

      it("JS numbers are weakly typed: integral numbers keep an integer array's dtype", async () => {
        const x = ref([2, 2], [1, -2, 2147483647, 0]);
        const a = toArray(x, "int32");
        await expectMatches(
          np.add(a, 2),
          map(x, (v) => storeAs(v + 2, "int32")),
          "int32",
        );
        await expectMatches(
          np.add(2, a),
          map(x, (v) => storeAs(v + 2, "int32")),
          "int32",
        );
        await expectMatches(
          np.mul(a, 3),
          map(x, (v) => storeAs(v * 3, "int32")),
          "int32",
        );
        await expectMatches(
          np.sub(5, a),
          map(x, (v) => storeAs(5 - v, "int32")),
          "int32",
        );
        await expectMatches(
          a.maximum(0),
          map(x, (v) => Math.max(v, 0)),
          "int32",
        );
        const u = toArray(ref([2], [0, 4294967295]), "uint32");
        await expectMatches(np.add(u, 1), ref([2], [1, 0]), "uint32");
      });

      it("a fractional JS number meeting an integer array promotes to float32", async () => {
        const x = ref([3], [1, -2, 5]);
        const a = toArray(x, "int32");
        await expectMatches(
          np.add(a, 0.5),
          map(x, (v) => v + 0.5),
          "float32",
        );
        await expectMatches(
          np.mul(0.25, a),
          map(x, (v) => v * 0.25),
          "float32",
        );
        await expectMatches(
          np.less(a, 0.5),
          map(x, (v) => (v < 0.5 ? 1 : 0)),
          "bool",
        );
        await expectMatches(
          np.where(np.array([true, false, true]), a, 0.5),
          ref([3], [1, 0.5, 5]),
          "float32",
        );
        await expectMatches(
          np.where(np.array([true, false, true]), a, 2),
          ref([3], [1, 2, 5]),
          "int32",
        );
      });

      it.each(fdts)("JS numbers keep a %s array's dtype", async (dtype) => {
        const x = ref([3], [1, -2, 0.1]).data.map((v) => storeAs(v, dtype));
        const a = toArray(ref([3], x), dtype);
        const want = ref(
          [3],
          x.map((v) => v + 1e-3),
        );
        await expectMatches(np.add(a, 1e-3), want, dtype);
        expect(np.mul(a, 2).dtype).toBe(dtype);
        expect(np.pow(2, a).dtype).toBe(dtype);
      });

      it("bool arrays meeting JS numbers: integers give int32, fractions float32", async () => {
        const b = toArray(ref([2], [1, 0]), "bool");
        await expectMatches(np.add(b, 1), ref([2], [2, 1]), "int32");
        await expectMatches(np.add(b, 0.5), ref([2], [1.5, 0.5]), "float32");
      });

      it("bool + bool and bool * bool stay bool with logical values (NumPy: or / and)", async () => {
        const x = ref([4], [1, 1, 0, 0]);
        const y = ref([4], [1, 0, 1, 0]);
        const a = toArray(x, "bool");
        const b = toArray(y, "bool");
        await expectMatches(np.add(a, b), ref([4], [1, 1, 1, 0]), "bool", { label: "add" });
        await expectMatches(np.mul(a, b), ref([4], [1, 0, 0, 0]), "bool", { label: "mul" });
        // What a bool holds must survive a cast: True + True is 1, never 2.
        await expectMatches(np.add(a, b).astype("float32"), ref([4], [1, 1, 1, 0]), "float32");
      });
    });
  },
);
