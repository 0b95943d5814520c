/**
 * Structural primitives (reshape, transpose, broadcastTo, slice, index, concatenate, stack,
 * split, pad, take, takeAlongAxis) checked against the reference in test/helpers/reference.ts on
 * random shapes with size-1 and size-0 axes, for every dtype the backend has. These operations
 * only move data, so results must match exactly.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type DType, NbiError, np } from "../../src/index.js";
import { testBackends, useTestBackend } from "../helpers/backends.js";
import {
  allDTypes,
  broadcastableTo,
  broadcastTo,
  concatenate,
  dimArb,
  elementFor,
  expectMatches,
  pad,
  type Ref,
  ref,
  refArb,
  reshape,
  shapeArb,
  sizeOf,
  sliceBound,
  sliceRef,
  storeAs,
  take,
  takeAlongAxis,
  toArray,
  transpose,
} from "../helpers/reference.js";

/** An array of random shape (rank limits as given) with the dtype's typical values. */
const arrayOf = (dtype: DType, options?: Parameters<typeof shapeArb>[0]) =>
  shapeArb(options).chain((s) => refArb(s, dtype, elementFor(dtype)));

/** A random axis of rank r (r > 0), negative half of the time. */
const axisOf = (rank: number) =>
  fc
    .tuple(fc.integer({ min: 0, max: rank - 1 }), fc.boolean())
    .map(([a, neg]) => (neg ? a - rank : a));

const norm = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);

/**
 * A target shape for reshaping `shape`: its dims shuffled, adjacent ones merged, size-1 axes
 * inserted, and maybe one entry replaced by -1.
 */
function reshapeTargetArb(shape: readonly number[]) {
  return fc
    .record({
      order: fc.shuffledSubarray([...shape], { minLength: shape.length, maxLength: shape.length }),
      merges: fc.array(fc.boolean(), { minLength: shape.length, maxLength: shape.length }),
      ones: fc.array(fc.nat(), { maxLength: 2 }),
      unknown: fc.option(fc.nat(), { nil: undefined }),
    })
    .map(({ order, merges, ones, unknown }) => {
      const dims: number[] = [];
      order.forEach((d, i) => {
        if (merges[i] && dims.length > 0) dims[dims.length - 1]! *= d;
        else dims.push(d);
      });
      for (const at of ones) dims.splice(at % (dims.length + 1), 0, 1);
      const resolved = [...dims];
      if (unknown !== undefined && dims.length > 0) dims[unknown % dims.length] = -1;
      return { target: dims, resolved };
    });
}

/** A slice range in the style of np.slice: null, [start] or [start, stop], any sign. */
const rangeArb = (n: number) =>
  fc.oneof(
    fc.constant(null),
    fc.tuple(fc.integer({ min: -n - 2, max: n + 2 })),
    fc.tuple(fc.integer({ min: -n - 2, max: n + 2 }), fc.integer({ min: -n - 2, max: n + 2 })),
  );

describe.each(testBackends())("structural primitives against a reference (%s)", (backend) => {
  useTestBackend(backend);

  describe.each(allDTypes(backend))("%s", (dtype) => {
    it("reshape, with and without -1", async () => {
      const arb = arrayOf(dtype).chain((x) =>
        fc.record({ x: fc.constant(x), t: reshapeTargetArb(x.shape) }),
      );
      await fc.assert(
        fc.asyncProperty(arb, async ({ x, t }) => {
          const a = toArray(x, dtype);
          const known = t.target.filter((d) => d !== -1);
          if (t.target.includes(-1) && sizeOf(known) === 0) {
            // NumPy cannot infer -1 when the other entries multiply to 0.
            expect(() => np.reshape(a, t.target)).toThrow(NbiError);
            return;
          }
          await expectMatches(np.reshape(a, t.target), reshape(x, t.resolved), dtype);
          await expectMatches(a.reshape(t.target), reshape(x, t.resolved), dtype);
        }),
        { numRuns: 40 },
      );
    });

    it("transpose by random permutations (negative axes too) and the default reversal", async () => {
      const arb = arrayOf(dtype).chain((x) => {
        const r = x.shape.length;
        const axes = Array.from({ length: r }, (_, i) => i);
        return fc.record({
          x: fc.constant(x),
          perm: fc.shuffledSubarray(axes, { minLength: r, maxLength: r }),
          negs: fc.array(fc.boolean(), { minLength: r, maxLength: r }),
        });
      });
      await fc.assert(
        fc.asyncProperty(arb, async ({ x, perm, negs }) => {
          const r = x.shape.length;
          const a = toArray(x, dtype);
          const signed = perm.map((p, i) => (negs[i] ? p - r : p));
          await expectMatches(np.transpose(a, signed), transpose(x, perm), dtype);
          const reversed = perm.map((_, i) => r - 1 - i);
          await expectMatches(np.transpose(a), transpose(x, reversed), dtype, { label: "default" });
          await expectMatches(a.T, transpose(x, reversed), dtype, { label: ".T" });
        }),
        { numRuns: 40 },
      );
    });

    it("broadcastTo adds leading axes and stretches size-1 axes (including to 0)", async () => {
      const arb = shapeArb().chain((out) =>
        broadcastableTo(out).chain((s) =>
          fc.record({ out: fc.constant(out), x: refArb(s, dtype, elementFor(dtype)) }),
        ),
      );
      await fc.assert(
        fc.asyncProperty(arb, async ({ out, x }) => {
          await expectMatches(np.broadcastTo(toArray(x, dtype), out), broadcastTo(x, out), dtype);
        }),
        { numRuns: 40 },
      );
    });

    it("slice with negative, out-of-range and reversed bounds (Python semantics)", async () => {
      const arb = arrayOf(dtype, { minRank: 1 }).chain((x) =>
        fc.record({
          x: fc.constant(x),
          ranges: fc
            .integer({ min: 0, max: x.shape.length })
            .chain((k) => fc.tuple(...x.shape.slice(0, k).map(rangeArb))),
        }),
      );
      await fc.assert(
        fc.asyncProperty(arb, async ({ x, ranges }) => {
          const starts = x.shape.map(() => 0);
          const limits = [...x.shape];
          ranges.forEach((r, i) => {
            if (r === null) return;
            const n = x.shape[i]!;
            starts[i] = sliceBound(r[0], n);
            limits[i] = Math.max(starts[i]!, r.length > 1 ? sliceBound(r[1]!, n) : n);
          });
          const got = np.slice(toArray(x, dtype), ...ranges);
          await expectMatches(got, sliceRef(x, starts, limits), dtype);
        }),
        { numRuns: 40 },
      );
    });

    it("index removes one axis", async () => {
      const arb = arrayOf(dtype, { minRank: 1, minDim: 1 }).chain((x) =>
        axisOf(x.shape.length).chain((axis) => {
          const n = x.shape[norm(axis, x.shape.length)]!;
          return fc.record({
            x: fc.constant(x),
            axis: fc.constant(axis),
            i: fc.integer({ min: -n, max: n - 1 }),
          });
        }),
      );
      await fc.assert(
        fc.asyncProperty(arb, async ({ x, axis, i }) => {
          const ax = norm(axis, x.shape.length);
          const n = x.shape[ax]!;
          const k = i < 0 ? i + n : i;
          const starts = x.shape.map((_, j) => (j === ax ? k : 0));
          const limits = x.shape.map((d, j) => (j === ax ? k + 1 : d));
          const want = reshape(
            sliceRef(x, starts, limits),
            x.shape.filter((_, j) => j !== ax),
          );
          await expectMatches(np.index(toArray(x, dtype), i, axis), want, dtype);
        }),
        { numRuns: 30 },
      );
    });

    it("concatenate along a random axis (empty pieces allowed)", async () => {
      const arb = shapeArb({ minRank: 1, maxRank: 3 }).chain((base) =>
        axisOf(base.length).chain((axis) =>
          fc.record({
            axis: fc.constant(axis),
            xs: fc.array(
              dimArb(0, 3).chain((d) => {
                const shape = base.map((b, i) => (i === norm(axis, base.length) ? d : b));
                return refArb(shape, dtype, elementFor(dtype));
              }),
              { minLength: 1, maxLength: 4 },
            ),
          }),
        ),
      );
      await fc.assert(
        fc.asyncProperty(arb, async ({ axis, xs }) => {
          const got = np.concatenate(
            xs.map((x) => toArray(x, dtype)),
            axis,
          );
          await expectMatches(got, concatenate(xs, axis), dtype);
        }),
        { numRuns: 40 },
      );
    });

    it("stack along a new axis at any position", async () => {
      const arb = shapeArb({ maxRank: 3 }).chain((shape) =>
        fc.record({
          axis: fc.integer({ min: -(shape.length + 1), max: shape.length }),
          xs: fc.array(refArb(shape, dtype, elementFor(dtype)), { minLength: 1, maxLength: 4 }),
        }),
      );
      await fc.assert(
        fc.asyncProperty(arb, async ({ axis, xs }) => {
          const r = xs[0]!.shape.length + 1;
          const ax = norm(axis, r);
          const expanded = xs.map((x) =>
            reshape(x, [...x.shape.slice(0, ax), 1, ...x.shape.slice(ax)]),
          );
          const got = np.stack(
            xs.map((x) => toArray(x, dtype)),
            axis,
          );
          await expectMatches(got, concatenate(expanded, ax), dtype);
        }),
        { numRuns: 40 },
      );
    });

    it("split into equal sections or at indices (past-the-end and decreasing indices)", async () => {
      const arb = arrayOf(dtype, { minRank: 1, maxRank: 3 }).chain((x) =>
        axisOf(x.shape.length).chain((axis) => {
          const n = x.shape[norm(axis, x.shape.length)]!;
          const divisors = Array.from({ length: Math.max(n, 3) }, (_, i) => i + 1).filter(
            (s) => n % s === 0,
          );
          return fc.record({
            x: fc.constant(x),
            axis: fc.constant(axis),
            sections: fc.oneof(
              fc.constantFrom(...divisors),
              fc.array(fc.integer({ min: 0, max: n + 2 }), { maxLength: 3 }),
              fc
                .array(fc.integer({ min: 0, max: n }), { maxLength: 3 })
                .map((v) => v.sort((p, q) => p - q)),
            ),
          });
        }),
      );
      await fc.assert(
        fc.asyncProperty(arb, async ({ x, axis, sections }) => {
          const ax = norm(axis, x.shape.length);
          const n = x.shape[ax]!;
          const bounds =
            typeof sections === "number"
              ? Array.from({ length: sections - 1 }, (_, i) => ((i + 1) * n) / sections)
              : sections;
          const edges = [0, ...bounds, n];
          const parts = np.split(toArray(x, dtype), sections, axis);
          expect(parts.length).toBe(edges.length - 1);
          for (let i = 0; i < parts.length; i++) {
            // NumPy: part i is x[edges[i]:edges[i+1]] along the axis.
            const start = Math.min(edges[i]!, n);
            const stop = Math.max(start, Math.min(edges[i + 1]!, n));
            const starts = x.shape.map((_, j) => (j === ax ? start : 0));
            const limits = x.shape.map((d, j) => (j === ax ? stop : d));
            await expectMatches(parts[i]!, sliceRef(x, starts, limits), dtype, {
              label: `part ${i}`,
            });
          }
        }),
        { numRuns: 40 },
      );
    });

    it("pad with per-axis or uniform widths and a constant", async () => {
      const arb = arrayOf(dtype, { maxRank: 3 }).chain((x) =>
        fc.record({
          x: fc.constant(x),
          widths: fc.oneof(
            fc.integer({ min: 0, max: 2 }),
            fc.tuple(
              ...x.shape.map(() =>
                fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 3 })),
              ),
            ),
          ),
          value: fc.option(elementFor(dtype), { nil: undefined }),
        }),
      );
      await fc.assert(
        fc.asyncProperty(arb, async ({ x, widths, value }) => {
          const pairs =
            typeof widths === "number"
              ? x.shape.map(() => [widths, widths] as [number, number])
              : (widths as [number, number][]);
          const got = np.pad(
            toArray(x, dtype),
            widths,
            value === undefined ? undefined : { value },
          );
          const want = pad(
            x,
            pairs.map((p) => p[0]),
            pairs.map((p) => p[1]),
            storeAs(value ?? 0, dtype),
          );
          await expectMatches(got, want, dtype);
        }),
        { numRuns: 40 },
      );
    });

    it("take: flattened or along an axis, negative indices wrap, out-of-range indices clamp", async () => {
      const arb = arrayOf(dtype, { minRank: 1, maxRank: 3, minDim: 1 }).chain((x) =>
        fc.option(axisOf(x.shape.length), { nil: undefined }).chain((axis) => {
          const n = axis === undefined ? x.data.length : x.shape[norm(axis, x.shape.length)]!;
          const index = fc.integer({ min: -n - 3, max: n + 2 });
          return fc.record({
            x: fc.constant(x),
            axis: fc.constant(axis),
            indices: shapeArb({ maxRank: 2, maxDim: 3 }).chain((s) => refArb(s, "int32", index)),
            asList: fc.boolean(),
          });
        }),
      );
      await fc.assert(
        fc.asyncProperty(arb, async ({ x, axis, indices, asList }) => {
          const a = toArray(x, dtype);
          const list = asList && indices.shape.length === 1;
          const idx = list ? [...indices.data] : toArray(indices, "int32");
          const want =
            axis === undefined
              ? take(reshape(x, [x.data.length]), indices, 0)
              : take(x, indices, axis);
          await expectMatches(np.take(a, idx, axis), want, dtype);
          await expectMatches(a.take(idx, axis), want, dtype, { label: "method" });
        }),
        { numRuns: 50 },
      );
    });

    it("takeAlongAxis broadcasts the other axes and clamps indices like take", async () => {
      const arb = shapeArb({ minRank: 1, maxRank: 3, minDim: 1 }).chain((lead) =>
        axisOf(lead.length).chain((axis) => {
          const ax = norm(axis, lead.length);
          const ones = fc.array(fc.boolean(), { minLength: lead.length, maxLength: lead.length });
          return fc
            .record({
              n: fc.integer({ min: 1, max: 4 }),
              m: fc.integer({ min: 0, max: 4 }),
              xOnes: ones,
              iOnes: ones,
            })
            .chain(({ n, m, xOnes, iOnes }) => {
              const xs = lead.map((d, i) => (i === ax ? n : xOnes[i] ? 1 : d));
              const is = lead.map((d, i) => (i === ax ? m : iOnes[i] ? 1 : d));
              return fc.record({
                axis: fc.constant(axis),
                x: refArb(xs, dtype, elementFor(dtype)),
                indices: refArb(is, "int32", fc.integer({ min: -n - 2, max: n + 2 })),
              });
            });
        }),
      );
      await fc.assert(
        fc.asyncProperty(arb, async ({ axis, x, indices }) => {
          const got = np.takeAlongAxis(toArray(x, dtype), toArray(indices, "int32"), axis);
          await expectMatches(got, takeAlongAxis(x, indices, axis), dtype);
        }),
        { numRuns: 50 },
      );
    });
  });

  it("take clamps and wraps exactly as documented on a small case", async () => {
    const x = ref([5], [10, 11, 12, 13, 14]);
    const idx = [-1, -5, -6, -100, 4, 5, 100, 0];
    // Negative indices wrap once (-1 -> 4, -5 -> 0); what is still out of range clamps.
    const want = ref([8], [14, 10, 10, 10, 14, 14, 14, 10]);
    await expectMatches(np.take(toArray(x, "float32"), idx), want, "float32");
  });

  it("concatenate and stack promote mixed dtypes", async () => {
    const a: Ref = ref([2], [1, 2]);
    const b: Ref = ref([2], [0.5, -1]);
    const got = np.concatenate([toArray(a, "int32"), toArray(b, "float32")]);
    await expectMatches(got, concatenate([a, b], 0), "float32");
    const stacked = np.stack([toArray(a, "bool"), toArray(a, "int32")], 1);
    await expectMatches(stacked, ref([2, 2], [1, 1, 1, 2]), "int32");
  });
});
