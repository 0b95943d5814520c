/**
 * Reductions (sum, max, min over axis subsets with keepdims; argmax/argmin), matmul, conv1d and
 * maxPool1d, checked against the float64 reference in test/helpers/reference.ts on random shapes
 * with size-1 and size-0 axes, in float32 and float64, including NaN behaviour.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type DType, np } from "../../src/index.js";
import { testBackends, useTestBackend } from "../helpers/backends.js";
import {
  argReduce,
  broadcastShapesArb,
  conv1d,
  dimArb,
  elementFor,
  expectMatches,
  floatDTypes,
  floats,
  map,
  matmul,
  maxPool1d,
  type Ref,
  ref,
  refArb,
  refMax,
  refMin,
  refSum,
  shapeArb,
  smallInts,
  toArray,
} from "../helpers/reference.js";

type AxisArg = number | number[] | undefined;

/** A NumPy axis argument for rank r: all (undefined), one axis, or a shuffled subset, any sign. */
function axisArb(rank: number): fc.Arbitrary<AxisArg> {
  const axes = Array.from({ length: rank }, (_, i) => i);
  const signed = (a: number) => fc.boolean().map((neg) => (neg ? a - rank : a));
  const options: fc.Arbitrary<AxisArg>[] = [fc.constant(undefined)];
  if (rank > 0) {
    options.push(fc.integer({ min: 0, max: rank - 1 }).chain(signed));
    options.push(
      fc
        .shuffledSubarray(axes)
        .chain((sub) => (sub.length === 0 ? fc.constant([]) : fc.tuple(...sub.map(signed)))),
    );
  }
  return fc.oneof(...options);
}

const reducedAxes = (axis: AxisArg, rank: number): number[] =>
  axis === undefined
    ? Array.from({ length: rank }, (_, i) => i)
    : (typeof axis === "number" ? [axis] : axis).map((a) => (a < 0 ? a + rank : a));

/** An array, an axis argument and keepdims. */
const reductionCase = (dtype: DType, element: fc.Arbitrary<number>) =>
  shapeArb().chain((shape) =>
    fc.record({
      x: refArb(shape, dtype, element),
      axis: axisArb(shape.length),
      keepdims: fc.boolean(),
    }),
  );

const withNaN = (element: fc.Arbitrary<number>) =>
  fc.oneof({ weight: 3, arbitrary: element }, { weight: 1, arbitrary: fc.constant(Number.NaN) });

const abs = (x: Ref) => map(x, Math.abs);
const greater = (v: number, best: number) => v > best;
const smaller = (v: number, best: number) => v < best;

describe.each(testBackends())(
  "reductions and contractions against a float64 reference (%s)",
  (backend) => {
    useTestBackend(backend);

    describe.each(floatDTypes(backend))("%s", (dtype) => {
      it("sum over random axis subsets with keepdims (size-0 axes sum to 0)", async () => {
        await fc.assert(
          fc.asyncProperty(reductionCase(dtype, floats(-5, 5)), async ({ x, axis, keepdims }) => {
            const got = np.sum(toArray(x, dtype), { axis, keepdims });
            await expectMatches(got, refSum(x, axis, keepdims), dtype, {
              scale: refSum(abs(x), axis, keepdims),
            });
          }),
          { numRuns: 60 },
        );
      });

      it.each([
        { name: "max", fn: np.max, reference: refMax },
        { name: "min", fn: np.min, reference: refMin },
      ])("$name over random axis subsets with keepdims", async ({ fn, reference }) => {
        await fc.assert(
          fc.asyncProperty(reductionCase(dtype, floats(-5, 5)), async ({ x, axis, keepdims }) => {
            // NumPy refuses max/min over an empty axis; those cases are not part of the contract.
            fc.pre(reducedAxes(axis, x.shape.length).every((a) => x.shape[a]! > 0));
            await expectMatches(
              fn(toArray(x, dtype), { axis, keepdims }),
              reference(x, axis, keepdims),
              dtype,
            );
          }),
          { numRuns: 60 },
        );
      });

      it.each([
        { name: "max", fn: np.max, reference: refMax },
        { name: "min", fn: np.min, reference: refMin },
      ])("$name propagates NaN (NumPy)", async ({ fn, reference }) => {
        await fc.assert(
          fc.asyncProperty(
            reductionCase(dtype, withNaN(smallInts())),
            async ({ x, axis, keepdims }) => {
              fc.pre(reducedAxes(axis, x.shape.length).every((a) => x.shape[a]! > 0));
              await expectMatches(
                fn(toArray(x, dtype), { axis, keepdims }),
                reference(x, axis, keepdims),
                dtype,
              );
            },
          ),
          { numRuns: 60 },
        );
      });

      it.each([
        { name: "argmax", fn: np.argmax, better: greater },
        { name: "argmin", fn: np.argmin, better: smaller },
      ])("$name: first occurrence of ties, first NaN wins", async ({ fn, better }) => {
        const arb = shapeArb({ minDim: 1, maxRank: 3 }).chain((shape) =>
          fc.record({
            x: refArb(shape, dtype, fc.oneof(smallInts(-2, 2), withNaN(smallInts(-2, 2)))),
            axis:
              shape.length === 0
                ? fc.constant(undefined)
                : fc.option(fc.integer({ min: -shape.length, max: shape.length - 1 }), {
                    nil: undefined,
                  }),
            keepdims: fc.boolean(),
          }),
        );
        await fc.assert(
          fc.asyncProperty(arb, async ({ x, axis, keepdims }) => {
            const got = fn(toArray(x, dtype), { axis, keepdims });
            await expectMatches(got, argReduce(x, axis, keepdims, better), "int32");
          }),
          { numRuns: 60 },
        );
      });

      it("argmax/argmin over a size-0 axis of other axes gives an empty result", async () => {
        const x = toArray(ref([0, 3], []), dtype);
        await expectMatches(np.argmax(x, { axis: 1 }), ref([0], []), "int32");
        await expectMatches(np.argmin(x, { axis: 1, keepdims: true }), ref([0, 1], []), "int32");
      });

      it("matmul: batched, broadcasting leading axes, vectors, empty axes", async () => {
        const arb = fc
          .record({
            m: dimArb(0, 5),
            k: dimArb(0, 5),
            n: dimArb(0, 5),
            batch: broadcastShapesArb(2, { maxRank: 2, maxDim: 3 }),
            // 0: a vector operand (NumPy promotes it to a matrix and drops the axis again).
            kindA: fc.integer({ min: 0, max: 3 }),
            kindB: fc.integer({ min: 0, max: 3 }),
          })
          .chain(({ m, k, n, batch, kindA, kindB }) =>
            fc.tuple(
              refArb(kindA === 0 ? [k] : [...batch[0], m, k], dtype, floats(-3, 3)),
              refArb(kindB === 0 ? [k] : [...batch[1], k, n], dtype, floats(-3, 3)),
            ),
          );
        await fc.assert(
          fc.asyncProperty(arb, async ([a, b]) => {
            const got = np.matmul(toArray(a, dtype), toArray(b, dtype));
            await expectMatches(got, matmul(a, b), dtype, { scale: matmul(abs(a), abs(b)) });
          }),
          { numRuns: 150 },
        );
      });

      it("matmul of blocked sizes (packed GEMM path)", async () => {
        const arb = fc
          .record({
            m: fc.integer({ min: 4, max: 24 }),
            k: fc.integer({ min: 4, max: 40 }),
            n: fc.integer({ min: 4, max: 24 }),
            batch: broadcastShapesArb(2, { maxRank: 1, maxDim: 2 }),
          })
          .chain(({ m, k, n, batch }) =>
            fc.tuple(
              refArb([...batch[0], m, k], dtype, floats(-1, 1)),
              refArb([...batch[1], k, n], dtype, floats(-1, 1)),
            ),
          );
        await fc.assert(
          fc.asyncProperty(arb, async ([a, b]) => {
            const got = np.matmul(toArray(a, dtype), toArray(b, dtype));
            await expectMatches(got, matmul(a, b), dtype, { scale: matmul(abs(a), abs(b)) });
          }),
          { numRuns: 10 },
        );
      });

      it("matmul with an empty contraction axis gives zeros of the right shape", async () => {
        for (const [sa, sb] of [
          [
            [2, 3, 0],
            [0, 4],
          ],
          [
            [3, 0],
            [0, 4],
          ],
          [
            [2, 3, 0],
            [2, 0, 4],
          ],
          [[0], [0, 4]],
        ] as const) {
          const a = ref(sa, []);
          const b = ref(sb, []);
          const got = np.matmul(toArray(a, dtype), toArray(b, dtype));
          await expectMatches(got, matmul(a, b), dtype, { label: `[${sa}] @ [${sb}]` });
        }
      });

      it("conv1d: stride, padding (number, pair, valid), dilation", async () => {
        const arb = fc
          .record({
            n: dimArb(0, 3),
            c: dimArb(0, 3),
            l: fc.integer({ min: 0, max: 10 }),
            o: dimArb(0, 3),
            k: fc.integer({ min: 1, max: 4 }),
            stride: fc.integer({ min: 1, max: 3 }),
            dilation: fc.integer({ min: 1, max: 3 }),
            padding: fc.oneof(
              fc.integer({ min: 0, max: 3 }),
              fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 3 })),
              fc.constant("valid" as const),
            ),
          })
          .chain((p) =>
            fc.record({
              p: fc.constant(p),
              x: refArb([p.n, p.c, p.l], dtype, floats(-3, 3)),
              w: refArb([p.o, p.c, p.k], dtype, floats(-3, 3)),
            }),
          );
        await fc.assert(
          fc.asyncProperty(arb, async ({ p, x, w }) => {
            const [lo, hi] =
              p.padding === "valid"
                ? [0, 0]
                : typeof p.padding === "number"
                  ? [p.padding, p.padding]
                  : p.padding;
            const got = np.conv1d(toArray(x, dtype), toArray(w, dtype), {
              stride: p.stride,
              dilation: p.dilation,
              padding: p.padding,
            });
            const want = conv1d(x, w, p.stride, lo, hi, p.dilation);
            const scale = conv1d(abs(x), abs(w), p.stride, lo, hi, p.dilation);
            await expectMatches(got, want, dtype, { scale });
          }),
          { numRuns: 60 },
        );
      });

      it("conv1d 'same' padding keeps the length (stride 1)", async () => {
        const arb = fc
          .record({
            c: fc.integer({ min: 1, max: 3 }),
            l: fc.integer({ min: 1, max: 10 }),
            k: fc.integer({ min: 1, max: 5 }),
            dilation: fc.integer({ min: 1, max: 3 }),
          })
          .chain((p) =>
            fc.record({
              p: fc.constant(p),
              x: refArb([2, p.c, p.l], dtype, floats(-3, 3)),
              w: refArb([3, p.c, p.k], dtype, floats(-3, 3)),
            }),
          );
        await fc.assert(
          fc.asyncProperty(arb, async ({ p, x, w }) => {
            const total = p.dilation * (p.k - 1);
            const lo = Math.floor(total / 2);
            const got = np.conv1d(toArray(x, dtype), toArray(w, dtype), {
              padding: "same",
              dilation: p.dilation,
            });
            expect(got.shape).toEqual([2, 3, p.l]);
            const want = conv1d(x, w, 1, lo, total - lo, p.dilation);
            const scale = conv1d(abs(x), abs(w), 1, lo, total - lo, p.dilation);
            await expectMatches(got, want, dtype, { scale });
          }),
          { numRuns: 30 },
        );
      });

      it("maxPool1d: kernel, stride (default = kernel), NaN propagates", async () => {
        const arb = fc
          .record({
            n: dimArb(0, 3),
            c: dimArb(0, 3),
            l: fc.integer({ min: 0, max: 10 }),
            kernel: fc.integer({ min: 1, max: 4 }),
            stride: fc.option(fc.integer({ min: 1, max: 4 }), { nil: undefined }),
            nan: fc.boolean(),
          })
          .chain((p) =>
            fc.record({
              p: fc.constant(p),
              x: refArb([p.n, p.c, p.l], dtype, p.nan ? withNaN(smallInts()) : floats(-3, 3)),
            }),
          );
        await fc.assert(
          fc.asyncProperty(arb, async ({ p, x }) => {
            const got = np.maxPool1d(toArray(x, dtype), p.kernel, p.stride);
            await expectMatches(got, maxPool1d(x, p.kernel, p.stride ?? p.kernel), dtype);
          }),
          { numRuns: 60 },
        );
      });
    });

    describe("integer reductions", () => {
      const int32 = elementFor("int32");

      it("int32 sum over random axes", async () => {
        await fc.assert(
          fc.asyncProperty(
            reductionCase("int32", smallInts(-1000, 1000)),
            async ({ x, axis, keepdims }) => {
              await expectMatches(
                np.sum(toArray(x, "int32"), { axis, keepdims }),
                refSum(x, axis, keepdims),
                "int32",
              );
            },
          ),
          { numRuns: 40 },
        );
      });

      it.each([
        { name: "max", fn: np.max, reference: refMax },
        { name: "min", fn: np.min, reference: refMin },
      ])("int32 $name over random axes", async ({ fn, reference }) => {
        await fc.assert(
          fc.asyncProperty(reductionCase("int32", int32), async ({ x, axis, keepdims }) => {
            fc.pre(reducedAxes(axis, x.shape.length).every((a) => x.shape[a]! > 0));
            await expectMatches(
              fn(toArray(x, "int32"), { axis, keepdims }),
              reference(x, axis, keepdims),
              "int32",
            );
          }),
          { numRuns: 40 },
        );
      });

      it("sum of a bool array counts the true values (int32)", async () => {
        await fc.assert(
          fc.asyncProperty(
            reductionCase("bool", elementFor("bool")),
            async ({ x, axis, keepdims }) => {
              await expectMatches(
                np.sum(toArray(x, "bool"), { axis, keepdims }),
                refSum(x, axis, keepdims),
                "int32",
              );
            },
          ),
          { numRuns: 30 },
        );
      });

      const extremes = fc.oneof(
        smallInts(-2, 2),
        fc.constant(-2147483648),
        fc.constant(2147483647),
      );
      const uintExtremes = fc.oneof(
        fc.integer({ min: 0, max: 3 }),
        fc.constant(0),
        fc.constant(4294967295),
        fc.constant(2147483648),
      );

      it.each([
        { dtype: "int32" as const, element: extremes },
        { dtype: "uint32" as const, element: uintExtremes },
        { dtype: "bool" as const, element: elementFor("bool") },
      ])(
        "argmax and argmin of $dtype arrays (full value range, ties)",
        async ({ dtype, element }) => {
          const arb = shapeArb({ minDim: 1, minRank: 1, maxRank: 3 }).chain((shape) =>
            fc.record({
              x: refArb(shape, dtype, element),
              axis: fc.option(fc.integer({ min: -shape.length, max: shape.length - 1 }), {
                nil: undefined,
              }),
              keepdims: fc.boolean(),
            }),
          );
          await fc.assert(
            fc.asyncProperty(arb, async ({ x, axis, keepdims }) => {
              const a = toArray(x, dtype);
              await expectMatches(
                np.argmax(a, { axis, keepdims }),
                argReduce(x, axis, keepdims, greater),
                "int32",
                {
                  label: "argmax",
                },
              );
              await expectMatches(
                np.argmin(a, { axis, keepdims }),
                argReduce(x, axis, keepdims, smaller),
                "int32",
                {
                  label: "argmin",
                },
              );
            }),
            { numRuns: 40 },
          );
        },
      );

      it("argmin finds the int32 minimum and the uint32 zero", async () => {
        await expectMatches(
          np.argmin(np.array([5, -2147483648, 0], { dtype: "int32" })),
          ref([], [1]),
          "int32",
          {
            label: "int32",
          },
        );
        await expectMatches(
          np.argmin(np.array([3, 0, 1], { dtype: "uint32" })),
          ref([], [1]),
          "int32",
          {
            label: "uint32",
          },
        );
      });
    });
  },
);
