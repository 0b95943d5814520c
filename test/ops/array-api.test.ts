/**
 * The user-facing array API: creation, properties, host reads, methods vs functions, JS numbers
 * as operands, printing, broadcasting and the derived functions (logsumexp, softplus, einsum,
 * ...). Expected values are computed independently in plain JS (or written from NumPy's
 * definitions), never read back from the library.
 */
import util from "node:util";
import { describe, expect, it } from "vitest";
import { type Array, type DType, NbiError, np } from "../../src/index.js";
import { testBackends, useTestBackend } from "../helpers/backends.js";

// ---------------------------------------------------------------------------------------------
// Helpers

type Nested = number | boolean | readonly Nested[];

function flatten(v: Nested): number[] {
  if (typeof v === "number") return [v];
  if (typeof v === "boolean") return [v ? 1 : 0];
  return v.flatMap(flatten);
}

function shapeOf(v: Nested): number[] {
  if (typeof v === "number" || typeof v === "boolean") return [];
  return v.length === 0 ? [0] : [v.length, ...shapeOf(v[0]!)];
}

async function vals(x: Array): Promise<number[]> {
  return globalThis.Array.from(await x.data());
}

function close(a: number, b: number, tol: number): boolean {
  if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) && Number.isNaN(b);
  if (!Number.isFinite(a) || !Number.isFinite(b)) return a === b;
  return Math.abs(a - b) <= tol * (1 + Math.abs(b));
}

/**
 * Checks an array's shape (that of the nested expected value unless `shape` is given), values
 * (to a relative/absolute tolerance; NaN matches NaN, infinities match exactly) and dtype.
 */
async function expectArray(
  x: Array,
  expected: Nested,
  options: { tol?: number; dtype?: DType; shape?: readonly number[] } = {},
): Promise<void> {
  expect(x.shape).toEqual(options.shape ?? shapeOf(expected));
  if (options.dtype) expect(x.dtype).toBe(options.dtype);
  const got = await vals(x);
  const want = flatten(expected);
  expect(got.length).toBe(want.length);
  const tol = options.tol ?? 1e-6;
  const bad = want.flatMap((w, i) => (close(got[i]!, w, tol) ? [] : [{ i, got: got[i], want: w }]));
  expect(bad).toEqual([]);
}

/** Two library arrays have the same shape, dtype and values. */
async function expectSame(a: Array, b: Array, tol = 0): Promise<void> {
  expect(a.shape).toEqual(b.shape);
  expect(a.dtype).toBe(b.dtype);
  const x = await vals(a);
  const y = await vals(b);
  const bad = x.flatMap((v, i) => (close(v, y[i]!, tol) ? [] : [{ i, a: v, b: y[i] }]));
  expect(bad).toEqual([]);
}

const range = (n: number) => globalThis.Array.from({ length: n }, (_, i) => i);
const f32 = (v: number) => Math.fround(v);

// ---------------------------------------------------------------------------------------------

describe.each(testBackends())("array API (%s)", (backend) => {
  useTestBackend(backend);

  describe("creation", () => {
    it("np.array from nested numbers defaults to float32 with the nested shape", async () => {
      const x = np.array([
        [1, 2, 3],
        [4, 5, 6.5],
      ]);
      await expectArray(
        x,
        [
          [1, 2, 3],
          [4, 5, 6.5],
        ],
        { dtype: "float32" },
      );
      await expectArray(np.array(3.25), 3.25, { dtype: "float32" });
      await expectArray(np.array([[[1]], [[2]]]), [[[1]], [[2]]]);
      expect(np.array([]).shape).toEqual([0]);
    });

    it("np.array rounds to float32 by default", async () => {
      expect(await vals(np.array([0.1]))).toEqual([f32(0.1)]);
    });

    it("np.array from booleans is bool", async () => {
      await expectArray(np.array([true, false, true]), [1, 0, 1], { dtype: "bool" });
      await expectArray(np.array([[true], [false]]), [[1], [0]], { dtype: "bool" });
    });

    it("np.array with a dtype option converts (truncating to int32)", async () => {
      await expectArray(np.array([1.7, -2.2, 3], { dtype: "int32" }), [1, -2, 3], {
        dtype: "int32",
      });
      await expectArray(np.array([0, 2, -1], { dtype: "bool" }), [0, 1, 1], { dtype: "bool" });
      await expectArray(np.array([true, false], { dtype: "float32" }), [1, 0], {
        dtype: "float32",
      });
    });

    it("np.array from typed arrays keeps their dtype, and copies them", async () => {
      await expectArray(np.array(new Int32Array([1, -2])), [1, -2], { dtype: "int32" });
      await expectArray(np.array(new Uint32Array([7, 2 ** 32 - 1])), [7, 2 ** 32 - 1], {
        dtype: "uint32",
      });
      await expectArray(np.array(new Uint8Array([1, 0])), [1, 0], { dtype: "bool" });
      const src = new Float32Array([1, 2, 3]);
      const x = np.array(src);
      expect(x.dtype).toBe("float32");
      src[0] = 99;
      expect(await vals(x)).toEqual([1, 2, 3]);
      await expectArray(np.array(new Float32Array([1.5, 2.5]), { dtype: "int32" }), [1, 2], {
        dtype: "int32",
      });
      await expectArray(np.array([new Float32Array([1, 2]), new Float32Array([3, 4])]), [
        [1, 2],
        [3, 4],
      ]);
    });

    it("np.array of an array returns it, or casts it with a dtype", async () => {
      const x = np.array([1.5, 2.5]);
      expect(np.array(x)).toBe(x);
      await expectArray(np.array(x, { dtype: "int32" }), [1, 2], { dtype: "int32" });
    });

    it("np.array rejects ragged input with an NbiError naming the rows", () => {
      expect(() => np.array([[1, 2], [3]])).toThrow(NbiError);
      expect(() => np.array([[1, 2], [3]])).toThrow(/np\.array.*rectangular.*\[2\].*\[1\]/);
      expect(() => np.array([[[1], [2]], [[3]]])).toThrow(NbiError);
      expect(() => np.array([1, [2]] as never)).toThrow(NbiError);
    });

    it("np.array rejects non-numeric elements with an NbiError", () => {
      expect(() => np.array([{}] as never)).toThrow(NbiError);
      expect(() => np.array(["a"] as never)).toThrow(NbiError);
    });

    it("zeros, ones, full", async () => {
      await expectArray(np.zeros([2, 3]), [
        [0, 0, 0],
        [0, 0, 0],
      ]);
      expect(np.zeros([2]).dtype).toBe("float32");
      await expectArray(np.ones([3], { dtype: "int32" }), [1, 1, 1], { dtype: "int32" });
      await expectArray(np.full([2, 2], 7.5), [
        [7.5, 7.5],
        [7.5, 7.5],
      ]);
      await expectArray(np.full([2], true), [1, 1], { dtype: "bool" });
      expect(np.zeros([0, 4]).shape).toEqual([0, 4]);
      expect(() => np.zeros([2, -1])).toThrow(NbiError);
      expect(() => np.ones([1.5])).toThrow(NbiError);
    });

    it("arange with integer arguments is int32", async () => {
      await expectArray(np.arange(5), [0, 1, 2, 3, 4], { dtype: "int32" });
      await expectArray(np.arange(2, 10, 3), [2, 5, 8], { dtype: "int32" });
      await expectArray(np.arange(5, 0, -2), [5, 3, 1], { dtype: "int32" });
      expect(np.arange(3, 3).shape).toEqual([0]);
      expect(np.arange(5, 0).shape).toEqual([0]);
    });

    it("arange with fractional arguments is float32", async () => {
      await expectArray(np.arange(0, 1, 0.25), [0, 0.25, 0.5, 0.75], { dtype: "float32" });
      await expectArray(np.arange(0.5, 3), [0.5, 1.5, 2.5], { dtype: "float32" });
      expect(() => np.arange(0, 1, 0)).toThrow(NbiError);
      expect(() => np.arange(0, Number.POSITIVE_INFINITY)).toThrow(NbiError);
    });

    it("linspace includes the endpoint by default, and can exclude it", async () => {
      await expectArray(np.linspace(0, 1, 5), [0, 0.25, 0.5, 0.75, 1]);
      await expectArray(np.linspace(0, 1, 5, { endpoint: false }), [0, 0.2, 0.4, 0.6, 0.8]);
      await expectArray(np.linspace(-1, 1, 3), [-1, 0, 1]);
      await expectArray(np.linspace(2, 3, 1), [2]);
      expect(np.linspace(0, 1, 0).shape).toEqual([0]);
      expect(np.linspace(0, 1).shape).toEqual([50]);
      const last = await vals(np.linspace(0, 0.3, 7));
      expect(last[6]).toBe(f32(0.3));
      expect(() => np.linspace(0, 1, -1)).toThrow(NbiError);
    });

    it("eye, rectangular eye and offset diagonals", async () => {
      await expectArray(np.eye(3), [
        [1, 0, 0],
        [0, 1, 0],
        [0, 0, 1],
      ]);
      await expectArray(np.eye(2, 3), [
        [1, 0, 0],
        [0, 1, 0],
      ]);
      await expectArray(np.eye(3, 3, { k: 1 }), [
        [0, 1, 0],
        [0, 0, 1],
        [0, 0, 0],
      ]);
      await expectArray(np.eye(3, 2, { k: -1 }), [
        [0, 0],
        [1, 0],
        [0, 1],
      ]);
      expect(np.eye(2, 2, { dtype: "int32" }).dtype).toBe("int32");
    });

    it("zerosLike and onesLike keep shape and dtype", async () => {
      const x = np.array(
        [
          [1, 2],
          [3, 4],
        ],
        { dtype: "int32" },
      );
      await expectArray(
        np.zerosLike(x),
        [
          [0, 0],
          [0, 0],
        ],
        { dtype: "int32" },
      );
      await expectArray(
        np.onesLike(x),
        [
          [1, 1],
          [1, 1],
        ],
        { dtype: "int32" },
      );
      await expectArray(np.onesLike(x, { dtype: "float32" }), [
        [1, 1],
        [1, 1],
      ]);
    });

    it("fromTypedArray wraps data with a shape", async () => {
      const x = np.fromTypedArray(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
      await expectArray(
        x,
        [
          [1, 2, 3],
          [4, 5, 6],
        ],
        { dtype: "float32" },
      );
      await expectArray(np.fromTypedArray(new Int32Array([1, 2]), [2, 1]), [[1], [2]], {
        dtype: "int32",
      });
      expect(() => np.fromTypedArray(new Float32Array(5), [2, 3])).toThrow(NbiError);
    });
  });

  describe("properties", () => {
    it("shape, dtype, ndim, size", () => {
      const x = np.zeros([2, 3, 4], { dtype: "int32" });
      expect(x.shape).toEqual([2, 3, 4]);
      expect(x.dtype).toBe("int32");
      expect(x.ndim).toBe(3);
      expect(x.size).toBe(24);
      const s = np.array(1);
      expect(s.ndim).toBe(0);
      expect(s.size).toBe(1);
      expect(np.zeros([3, 0]).size).toBe(0);
    });

    it("await x.data() gives a fresh typed array of the dtype's type", async () => {
      const x = np.array([1, 2, 3]);
      const d = await x.data();
      expect(d).toBeInstanceOf(Float32Array);
      expect(globalThis.Array.from(d)).toEqual([1, 2, 3]);
      d[0] = 100;
      expect(await vals(x)).toEqual([1, 2, 3]);
      expect(await np.array([1], { dtype: "int32" }).data()).toBeInstanceOf(Int32Array);
      expect(await np.array([true]).data()).toBeInstanceOf(Uint8Array);
    });

    it("arrays are immutable: reshaped views keep their values when a read copy changes", async () => {
      const x = np.arange(6);
      const y = np.reshape(x, [2, 3]);
      const d = await y.data();
      d.fill(-1);
      expect(await vals(x)).toEqual(range(6));
      expect(await vals(y)).toEqual(range(6));
    });
  });

  describe("methods and functions", () => {
    const a = () =>
      np.array([
        [0.5, -1.25, 2],
        [3, 0.75, -0.5],
      ]);
    const b = () => np.array([[1.5], [-2]]); // broadcasts against a
    const pos = () =>
      np.array([
        [0.5, 1.25, 2],
        [3, 0.75, 4],
      ]);

    const binary = [
      "add",
      "sub",
      "mul",
      "div",
      "pow",
      "maximum",
      "minimum",
      "equal",
      "notEqual",
      "less",
      "lessEqual",
      "greater",
      "greaterEqual",
    ] as const;

    it.each(binary)("x.%s(y) equals np.%s(x, y), and broadcasts", async (name) => {
      const x = name === "pow" ? pos() : a();
      const y = b();
      const viaMethod = (x[name] as (o: Array) => Array)(y);
      const viaFn = (np[name] as (p: Array, q: Array) => Array)(x, y);
      expect(viaMethod.shape).toEqual([2, 3]);
      await expectSame(viaMethod, viaFn);
    });

    const jsBinary: Record<(typeof binary)[number], (x: number, y: number) => number> = {
      add: (x, y) => x + y,
      sub: (x, y) => x - y,
      mul: (x, y) => x * y,
      div: (x, y) => x / y,
      pow: (x, y) => x ** y,
      maximum: Math.max,
      minimum: Math.min,
      equal: (x, y) => Number(x === y),
      notEqual: (x, y) => Number(x !== y),
      less: (x, y) => Number(x < y),
      lessEqual: (x, y) => Number(x <= y),
      greater: (x, y) => Number(x > y),
      greaterEqual: (x, y) => Number(x >= y),
    };

    it.each(binary)("np.%s matches the JS operator elementwise", async (name) => {
      const xs = [0.5, 1.25, 2, 3, 0.75, 4];
      const ys = [1.5, 1.25, -2, 3, 0.5, 1];
      const out = (np[name] as (p: Array, q: Array) => Array)(np.array(xs), np.array(ys));
      const cmp = name.includes("qual") || name === "less" || name === "greater";
      expect(out.dtype).toBe(cmp ? "bool" : "float32");
      await expectArray(
        out,
        xs.map((x, i) => jsBinary[name](x, ys[i]!)),
        { tol: 1e-6 },
      );
    });

    const unary: [string, (v: number) => number][] = [
      ["neg", (v) => -v],
      ["exp", Math.exp],
      ["log", Math.log],
      ["log1p", Math.log1p],
      ["expm1", Math.expm1],
      ["sin", Math.sin],
      ["cos", Math.cos],
      ["tanh", Math.tanh],
      ["sqrt", Math.sqrt],
      ["abs", Math.abs],
      ["sign", Math.sign],
      ["floor", Math.floor],
      ["square", (v) => v * v],
      ["relu", (v) => Math.max(v, 0)],
      ["sigmoid", (v) => 1 / (1 + Math.exp(-v))],
      ["softplus", (v) => Math.log1p(Math.exp(v))],
    ];

    it.each(unary)("x.%s() equals np.%s(x) and the JS function", async (name, js) => {
      const data = [0.5, 1.25, 2, 3, 0.75, 4, -0.5, -2.5];
      const usable = ["log", "sqrt"].includes(name) ? data.filter((v) => v > 0) : data;
      const x = np.array(usable);
      const viaMethod = (x as unknown as Record<string, () => Array>)[name]!.call(x);
      const viaFn = (np as unknown as Record<string, (y: Array) => Array>)[name]!(x);
      await expectSame(viaMethod, viaFn);
      await expectArray(viaFn, usable.map(js), { tol: 2e-6 });
    });

    it("reductions as methods equal the functions (sum mean max min argmax argmin ...)", async () => {
      const x = a();
      const pairs: [Array, Array][] = [
        [x.sum(), np.sum(x)],
        [x.sum({ axis: 1 }), np.sum(x, { axis: 1 })],
        [x.mean({ axis: 0, keepdims: true }), np.mean(x, { axis: 0, keepdims: true })],
        [x.max({ axis: -1 }), np.max(x, { axis: -1 })],
        [x.min(), np.min(x)],
        [x.argmax({ axis: 1 }), np.argmax(x, { axis: 1 })],
        [x.argmin(), np.argmin(x)],
        [x.logsumexp({ axis: 1 }), np.logsumexp(x, { axis: 1 })],
        [x.var({ ddof: 1 }), np.var(x, { ddof: 1 })],
        [x.std({ axis: 0 }), np.std(x, { axis: 0 })],
        [x.greater(0).all({ axis: 0 }), np.all(np.greater(x, 0), { axis: 0 })],
        [x.greater(0).any({ axis: 1 }), np.any(np.greater(x, 0), { axis: 1 })],
      ];
      for (const [m, f] of pairs) await expectSame(m, f);
      await expectArray(x.sum({ axis: 1 }), [1.25, 3.25]);
      await expectArray(x.max({ axis: 0 }), [3, 0.75, 2]);
      await expectArray(x.argmax({ axis: 1 }), [2, 0], { dtype: "int32" });
      await expectArray(x.argmin(), 1, { dtype: "int32" });
    });

    it("shape methods equal the functions (reshape transpose T broadcastTo ravel ...)", async () => {
      const x = a();
      const pairs: [Array, Array][] = [
        [x.reshape([3, 2]), np.reshape(x, [3, 2])],
        [x.transpose(), np.transpose(x)],
        [x.T, np.transpose(x)],
        [x.transpose([1, 0]), np.transpose(x, [1, 0])],
        [b().broadcastTo([2, 4]), np.broadcastTo(b(), [2, 4])],
        [x.astype("int32"), np.astype(x, "int32")],
        [x.ravel(), np.ravel(x)],
        [b().squeeze(), np.squeeze(b())],
        [x.expandDims(1), np.expandDims(x, 1)],
        [x.take([2, 0], 1), np.take(x, [2, 0], 1)],
        [x.index(1), np.index(x, 1)],
        [x.clip(-1, 1), np.clip(x, -1, 1)],
        [x.matmul(x.T), np.matmul(x, np.transpose(x))],
        [x.dot(x.T), np.dot(x, np.transpose(x))],
      ];
      for (const [m, f] of pairs) await expectSame(m, f);
      await expectArray(x.T, [
        [0.5, 3],
        [-1.25, 0.75],
        [2, -0.5],
      ]);
      await expectArray(x.take([2, 0], 1), [
        [2, 0.5],
        [-0.5, 3],
      ]);
      await expectArray(x.index(1, 1), [-1.25, 0.75]);
      await expectArray(x.astype("int32"), [
        [0, -1, 2],
        [3, 0, 0],
      ]);
    });

    it("methods chain", async () => {
      const x = np.array([1, 2, 3]);
      await expectArray(x.mul(2).add(1).square().sum(), 9 + 25 + 49);
    });
  });

  describe("JS numbers as operands", () => {
    it("are accepted on either side of a binary function and in methods", async () => {
      const x = np.array([1, 2, 3]);
      await expectArray(np.add(1, x), [2, 3, 4]);
      await expectArray(np.sub(10, x), [9, 8, 7]);
      await expectArray(np.div(6, x), [6, 3, 2]);
      await expectArray(np.pow(2, x), [2, 4, 8]);
      await expectArray(x.mul(2), [2, 4, 6]);
      await expectArray(x.pow(2), [1, 4, 9]);
      await expectArray(np.maximum(x, 2), [2, 2, 3]);
      await expectArray(np.where(np.greater(x, 1.5), x, 0), [0, 2, 3]);
      await expectArray(np.where(np.greater(x, 1.5), 1, -1), [-1, 1, 1]);
      await expectArray(np.less(x, 2), [1, 0, 0], { dtype: "bool" });
      await expectArray(np.add(1, 2), 3, { dtype: "float32" });
      await expectArray(np.exp(0), 1);
      await expectArray(np.sum(5), 5);
    });

    it("are weakly typed: they take the array's dtype", () => {
      const i = np.array([1, 2], { dtype: "int32" });
      expect(i.mul(2).dtype).toBe("int32");
      expect(np.add(1, i).dtype).toBe("int32");
      expect(i.mul(0.5).dtype).toBe("float32");
      expect(i.div(2).dtype).toBe("float32");
    });
  });

  describe("broadcasting", () => {
    it("[3, 1] + [1, 4] gives [3, 4]", async () => {
      const col = np.array([[0], [10], [20]]);
      const row = np.array([[1, 2, 3, 4]]);
      await expectArray(
        np.add(col, row),
        [0, 10, 20].map((c) => [1, 2, 3, 4].map((r) => c + r)),
      );
    });

    it("[2, 3] * [3] and [2, 1, 3] - [4, 1]", async () => {
      await expectArray(
        np.mul(
          np.array([
            [1, 2, 3],
            [4, 5, 6],
          ]),
          np.array([10, 0, -1]),
        ),
        [
          [10, 0, -3],
          [40, 0, -6],
        ],
      );
      const x = np.reshape(np.arange(6), [2, 1, 3]).astype("float32");
      const y = np.reshape(np.arange(4), [4, 1]).astype("float32");
      const expected = [0, 1].map((i) => range(4).map((j) => range(3).map((k) => i * 3 + k - j)));
      await expectArray(np.sub(x, y), expected);
    });

    it("a scalar array and a size-0 axis broadcast", async () => {
      await expectArray(np.add(np.array(1), np.ones([2, 2])), [
        [2, 2],
        [2, 2],
      ]);
      expect(np.add(np.zeros([0, 3]), np.zeros([3])).shape).toEqual([0, 3]);
      expect(np.add(np.zeros([0, 1]), np.zeros([1, 3])).shape).toEqual([0, 3]);
    });

    it("broadcastTo repeats along new and size-1 axes", async () => {
      await expectArray(np.broadcastTo(np.array([1, 2]), [3, 2]), [
        [1, 2],
        [1, 2],
        [1, 2],
      ]);
    });

    it("broadcastTo an incompatible shape is an NbiError", () => {
      expect(() => np.broadcastTo(np.array([1, 2]), [3])).toThrow(NbiError);
      expect(() => np.broadcastTo(np.zeros([2, 3]), [3, 3])).toThrow(NbiError);
    });
  });

  describe("derived functions", () => {
    it("logsumexp is stable for large inputs", async () => {
      await expectArray(np.logsumexp(np.array([1000, 1000])), 1000 + Math.LN2, { tol: 1e-7 });
      await expectArray(np.logsumexp(np.array([-1000, -1000])), -1000 + Math.LN2, {
        tol: 1e-7,
      });
      await expectArray(np.logsumexp(np.array([1000, 0])), 1000);
      const v = await vals(np.logsumexp(np.array([88, 89, 90, 1e4, 1e4])));
      expect(Number.isFinite(v[0])).toBe(true);
      expect(v[0]).toBeCloseTo(1e4 + Math.LN2, 2);
      await expectArray(np.logsumexp(np.array([Number.NEGATIVE_INFINITY, 0])), 0);
      await expectArray(
        np.logsumexp(np.array([Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY])),
        Number.NEGATIVE_INFINITY,
      );
    });

    it("logsumexp matches the naive formula for moderate inputs, with axis and keepdims", async () => {
      const rows = [
        [0.5, -1, 2],
        [3, 0, -2],
      ];
      const naive = rows.map((r) => Math.log(r.reduce((s, v) => s + Math.exp(v), 0)));
      await expectArray(np.logsumexp(np.array(rows), { axis: 1 }), naive, { tol: 1e-6 });
      await expectArray(
        np.logsumexp(np.array(rows), { axis: 1, keepdims: true }),
        naive.map((v) => [v]),
        { tol: 1e-6 },
      );
      const all = Math.log(rows.flat().reduce((s, v) => s + Math.exp(v), 0));
      await expectArray(np.logsumexp(np.array(rows)), all, { tol: 1e-6 });
      const cols = [0, 1, 2].map((j) => Math.log(Math.exp(rows[0]![j]!) + Math.exp(rows[1]![j]!)));
      await expectArray(np.logsumexp(np.array(rows), { axis: 0 }), cols, { tol: 1e-6 });
    });

    it("softplus is exact for large |x| (no overflow)", async () => {
      const x = np.array([-1000, -50, -1, 0, 1, 50, 1000]);
      const expected = [
        0,
        Math.exp(-50),
        Math.log1p(Math.exp(-1)),
        Math.LN2,
        1 + Math.log1p(Math.exp(-1)),
        50,
        1000,
      ];
      const got = await vals(np.softplus(x));
      expect(got.every(Number.isFinite)).toBe(true);
      expected.forEach((e, i) => {
        expect(close(got[i]!, e, 1e-6)).toBe(true);
      });
      expect(got[1]).toBeGreaterThan(0); // exp(-50) is representable in float32
    });

    it("sigmoid and logSigmoid at the extremes", async () => {
      const x = np.array([-1000, -100, 0, 100, 1000]);
      const s = await vals(np.sigmoid(x));
      expect(s).toEqual([0, s[1], 0.5, 1, 1]);
      expect(s[1]).toBeGreaterThanOrEqual(0);
      expect(s[1]).toBeLessThan(1e-40);
      const ls = await vals(np.logSigmoid(x));
      expect(ls.every(Number.isFinite)).toBe(true);
      expect(ls[0]).toBe(-1000);
      expect(ls[1]).toBeCloseTo(-100, 4);
      expect(ls[2]).toBeCloseTo(-Math.LN2, 6);
      expect(Math.abs(ls[3]!)).toBeLessThan(1e-40);
      expect(ls[4]).toBeCloseTo(0, 10);
    });

    it("softmax sums to 1 along the axis and equals exp(x) / sum(exp(x))", async () => {
      const rows = [
        [0.5, 1, 2],
        [-5, 0, 5],
      ];
      const x = np.array(rows);
      const s = np.softmax(x);
      await expectArray(np.sum(s, { axis: -1 }), [1, 1], { tol: 1e-6 });
      const js = rows.map((r) => {
        const e = r.map(Math.exp);
        const z = e.reduce((p, q) => p + q, 0);
        return e.map((t) => t / z);
      });
      await expectArray(s, js, { tol: 1e-6 });
      await expectArray(np.sum(np.softmax(x, 0), { axis: 0 }), [1, 1, 1], { tol: 1e-6 });
      await expectArray(np.exp(np.logSoftmax(x)), js, { tol: 1e-6 });
    });

    it("softmax of large inputs is finite, sums to 1 and is shift-invariant", async () => {
      const s = np.softmax(np.array([1000, 1001, 1002]));
      const v = await vals(s);
      expect(v.every(Number.isFinite)).toBe(true);
      const e = [0, 1, 2].map((k) => Math.exp(k - 2));
      const z = e.reduce((p, q) => p + q, 0);
      await expectArray(
        s,
        e.map((t) => t / z),
        { tol: 1e-6 },
      );
      await expectArray(np.sum(s), 1, { tol: 1e-6 });
    });

    it("logSoftmax is shift-invariant to float32 accuracy (x + 1000 gives the same values)", async () => {
      const base = [0, 1, 2];
      const lse = Math.log(base.reduce((s, v) => s + Math.exp(v), 0));
      const expected = base.map((v) => v - lse);
      // x - max is exact here (small integers), so a stable log-softmax loses nothing.
      await expectArray(np.logSoftmax(np.array(base)), expected, { tol: 1e-6 });
      await expectArray(np.logSoftmax(np.array(base.map((v) => v + 1000))), expected, {
        tol: 1e-6,
      });
    });

    it("relu and clip (also with array bounds)", async () => {
      await expectArray(np.relu(np.array([-2, -0.5, 0, 0.5, 2])), [0, 0, 0, 0.5, 2]);
      await expectArray(np.relu(np.array([-2, 3], { dtype: "int32" })), [0, 3], { dtype: "int32" });
      await expectArray(np.clip(np.array([-2, -0.5, 0, 0.5, 2]), -1, 1), [-1, -0.5, 0, 0.5, 1]);
      await expectArray(
        np.clip(np.array([0, 5, 10]), np.array([1, 1, 1]), np.array([2, 6, 8])),
        [1, 5, 8],
      );
    });

    it("mean, var and std with axes and ddof", async () => {
      const rows = [
        [1, 2, 3, 4],
        [2, 4, 6, 8],
      ];
      const x = np.array(rows);
      const m = (r: number[]) => r.reduce((s, v) => s + v, 0) / r.length;
      const ss = (r: number[]) => r.reduce((s, v) => s + (v - m(r)) ** 2, 0);
      await expectArray(np.mean(x), 3.75);
      await expectArray(np.mean(x, { axis: 1 }), rows.map(m));
      await expectArray(
        np.var(x, { axis: 1 }),
        rows.map((r) => ss(r) / 4),
      );
      await expectArray(
        np.var(x, { axis: 1, ddof: 1 }),
        rows.map((r) => ss(r) / 3),
      );
      await expectArray(
        np.std(x, { axis: 1, ddof: 1 }),
        rows.map((r) => Math.sqrt(ss(r) / 3)),
      );
      await expectArray(np.var(x), ss(rows.flat()) / 8);
      await expectArray(np.var(x, { axis: 0, keepdims: true }), [[0.25, 1, 2.25, 4]]);
      await expectArray(np.mean(np.array([1, 2], { dtype: "int32" })), 1.5, { dtype: "float32" });
    });

    it("norm with ord 1, 2 and inf, over all or some axes", async () => {
      const v = [3, -4, 12];
      await expectArray(np.norm(np.array(v)), 13);
      await expectArray(np.norm(np.array(v), { ord: 1 }), 19);
      await expectArray(np.norm(np.array(v), { ord: Number.POSITIVE_INFINITY }), 12);
      await expectArray(np.norm(np.array(v), { ord: 3 }), Math.cbrt(27 + 64 + 1728), {
        tol: 1e-6,
      });
      const m = np.array([
        [3, 4],
        [-6, 8],
      ]);
      await expectArray(np.norm(m, { axis: 1 }), [5, 10]);
      await expectArray(np.norm(m), Math.sqrt(9 + 16 + 36 + 64), { tol: 1e-6 });
      await expectArray(np.norm(m, { axis: 0, ord: 1 }), [9, 12]);
    });

    it("oneHot along a new last axis", async () => {
      await expectArray(np.oneHot(np.array([0, 2, 1], { dtype: "int32" }), 3), [
        [1, 0, 0],
        [0, 0, 1],
        [0, 1, 0],
      ]);
      const o = np.oneHot(np.array([1, 0], { dtype: "int32" }), 2, { dtype: "int32" });
      await expectArray(
        o,
        [
          [0, 1],
          [1, 0],
        ],
        { dtype: "int32" },
      );
      expect(np.oneHot(np.zeros([2, 3], { dtype: "int32" }), 4).shape).toEqual([2, 3, 4]);
      // Out-of-range indices give all-zero rows (as JAX).
      await expectArray(np.oneHot(np.array([5], { dtype: "int32" }), 3), [[0, 0, 0]]);
    });

    it("triu and tril with diagonal offsets k", async () => {
      const rows = [
        [1, 2, 3, 4],
        [5, 6, 7, 8],
        [9, 10, 11, 12],
      ];
      const x = np.array(rows);
      const tri = (k: number, upper: boolean) =>
        rows.map((r, i) => r.map((v, j) => ((upper ? j - i >= k : j - i <= k) ? v : 0)));
      for (const k of [-1, 0, 1, 2]) {
        await expectArray(np.triu(x, k), tri(k, true));
        await expectArray(np.tril(x, k), tri(k, false));
      }
      // Batched: applies to the last two axes.
      const batch = np.stack([x, np.mul(x, -1)]);
      await expectArray(np.tril(batch), [
        tri(0, false),
        tri(0, false).map((r) => r.map((v) => -v)),
      ]);
      expect(() => np.triu(np.array([1, 2]))).toThrow(NbiError);
    });

    it("all and any, over all and single axes", async () => {
      const x = np.array([
        [true, false],
        [true, true],
      ]);
      await expectArray(np.all(x), 0, { dtype: "bool" });
      await expectArray(np.any(x), 1, { dtype: "bool" });
      await expectArray(np.all(x, { axis: 0 }), [1, 0]);
      await expectArray(np.all(x, { axis: 1 }), [0, 1]);
      await expectArray(np.any(np.logicalNot(x), { axis: 1 }), [1, 0]);
      await expectArray(np.all(np.array([1, 2, -3])), 1);
      await expectArray(np.all(np.array([1, 0, -3])), 0);
      await expectArray(np.any(np.zeros([3])), 0);
      await expectArray(np.all(np.zeros([0])), 1);
      await expectArray(np.any(np.zeros([0])), 0);
    });

    it("isnan and isfinite", async () => {
      const x = np.array([1, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 0]);
      await expectArray(np.isnan(x), [0, 1, 0, 0, 0], { dtype: "bool" });
      await expectArray(np.isfinite(x), [1, 0, 0, 0, 1], { dtype: "bool" });
      await expectArray(np.isfinite(np.array([1, 2], { dtype: "int32" })), [1, 1]);
      await expectArray(np.isnan(np.array([1, 2], { dtype: "int32" })), [0, 0]);
    });
  });

  describe("einsum", () => {
    const A = [
      [1, 2, 3],
      [4, 5, 6],
    ];
    const B = [
      [1, -1],
      [0, 2],
      [3, 1],
    ];
    const matmulJs = (p: number[][], q: number[][]) =>
      p.map((r) => q[0]!.map((_, j) => r.reduce((s, v, k) => s + v * q[k]![j]!, 0)));

    it("ij,jk->ik is matmul", async () => {
      const out = np.einsum("ij,jk->ik", np.array(A), np.array(B));
      await expectArray(out, matmulJs(A, B));
      await expectSame(out, np.matmul(np.array(A), np.array(B)), 1e-6);
    });

    it("bij,bjk->bik is batched matmul", async () => {
      const a3 = np.reshape(np.arange(24).astype("float32"), [2, 3, 4]);
      const b3 = np.reshape(np.arange(16).astype("float32").sub(7), [2, 4, 2]);
      const out = np.einsum("bij,bjk->bik", a3, b3);
      expect(out.shape).toEqual([2, 3, 2]);
      await expectSame(out, np.matmul(a3, b3), 1e-6);
      const la = await vals(a3);
      const lb = await vals(b3);
      const expected = [0, 1].map((bb) =>
        range(3).map((i) =>
          range(2).map((k) =>
            range(4).reduce((s, j) => s + la[bb * 12 + i * 4 + j]! * lb[bb * 8 + j * 2 + k]!, 0),
          ),
        ),
      );
      await expectArray(out, expected);
    });

    it("ij->ji transposes; ij-> and ij->i sum", async () => {
      await expectArray(np.einsum("ij->ji", np.array(A)), [
        [1, 4],
        [2, 5],
        [3, 6],
      ]);
      await expectArray(np.einsum("ij->", np.array(A)), 21);
      await expectArray(np.einsum("ij->i", np.array(A)), [6, 15]);
      await expectArray(np.einsum("ij->j", np.array(A)), [5, 7, 9]);
    });

    it("i,j->ij is the outer product; i,i-> is the dot product; ij,ij-> the Frobenius sum", async () => {
      await expectArray(np.einsum("i,j->ij", np.array([1, 2]), np.array([3, 4, 5])), [
        [3, 4, 5],
        [6, 8, 10],
      ]);
      await expectSame(
        np.einsum("i,j->ij", np.array([1, 2]), np.array([3, 4, 5])),
        np.outer(np.array([1, 2]), np.array([3, 4, 5])),
      );
      await expectArray(np.einsum("i,i->", np.array([1, 2, 3]), np.array([4, 5, 6])), 32);
      await expectArray(np.einsum("ij,ij->", np.array(A), np.array(A)), 91);
      await expectArray(np.einsum("ij,ij->i", np.array(A), np.array(A)), [14, 77]);
      await expectArray(np.einsum("ij,j->i", np.array(A), np.array([1, 0, -1])), [-2, -2]);
    });

    it("implicit output: repeated indices are summed, the rest sorted alphabetically", async () => {
      await expectSame(
        np.einsum("ij,jk", np.array(A), np.array(B)),
        np.einsum("ij,jk->ik", np.array(A), np.array(B)),
      );
      // "ba" alone means output "ab": a transpose (as NumPy).
      await expectArray(np.einsum("ba", np.array(A)), [
        [1, 4],
        [2, 5],
        [3, 6],
      ]);
      await expectArray(np.einsum("i,j", np.array([1, 2]), np.array([3])), [[3], [6]]);
      await expectArray(np.einsum("i,i", np.array([1, 2]), np.array([3, 4])), 11);
    });

    it("refuses diagonals and wrong operand counts with NbiError", () => {
      expect(() => np.einsum("ii->", np.eye(3))).toThrow(NbiError);
      expect(() => np.einsum("ij,jk->ik", np.array(A))).toThrow(NbiError);
      expect(() => np.einsum("ij->k", np.array(A))).toThrow(NbiError);
      expect(() => np.einsum("ijk->", np.array(A))).toThrow(NbiError);
    });
  });

  describe("shape manipulation", () => {
    it("split and concatenate / stack round trip", async () => {
      const x = np.reshape(np.arange(24), [4, 6]);
      const parts = np.split(x, 3, 1);
      expect(parts).toHaveLength(3);
      for (const p of parts) expect(p.shape).toEqual([4, 2]);
      await expectSame(np.concatenate(parts, 1), x);
      await expectArray(
        parts[1]!,
        range(4).map((i) => [6 * i + 2, 6 * i + 3]),
      );
      const rows = np.split(x, [1, 3]);
      expect(rows.map((r) => r.shape)).toEqual([
        [1, 6],
        [2, 6],
        [1, 6],
      ]);
      await expectSame(np.concatenate(rows), x);
      const stacked = np.stack(np.split(x, 4, 0).map((r) => np.squeeze(r, 0)));
      await expectSame(stacked, x);
      const s1 = np.stack([np.array([1, 2]), np.array([3, 4])], 1);
      await expectArray(s1, [
        [1, 3],
        [2, 4],
      ]);
      expect(np.stack([np.zeros([2, 3]), np.zeros([2, 3])], -1).shape).toEqual([2, 3, 2]);
      expect(() => np.split(x, 5, 1)).toThrow(NbiError);
    });

    it("squeeze and expandDims", async () => {
      const x = np.zeros([1, 3, 1, 2]);
      expect(np.squeeze(x).shape).toEqual([3, 2]);
      expect(np.squeeze(x, 2).shape).toEqual([1, 3, 2]);
      expect(np.squeeze(x, [0, -2]).shape).toEqual([3, 2]);
      expect(() => np.squeeze(x, 1)).toThrow(NbiError);
      const v = np.array([1, 2, 3]);
      expect(np.expandDims(v, 0).shape).toEqual([1, 3]);
      expect(np.expandDims(v, 1).shape).toEqual([3, 1]);
      expect(np.expandDims(v, -1).shape).toEqual([3, 1]);
      await expectArray(np.expandDims(v, 1), [[1], [2], [3]]);
    });

    it("moveaxis and swapaxes", async () => {
      const x = np.reshape(np.arange(24), [2, 3, 4]);
      const m = np.moveaxis(x, 0, -1);
      expect(m.shape).toEqual([3, 4, 2]);
      const xs = await vals(x);
      const at = (i: number, j: number, k: number) => xs[i * 12 + j * 4 + k]!;
      await expectArray(
        m,
        range(3).map((j) => range(4).map((k) => range(2).map((i) => at(i, j, k)))),
      );
      expect(np.moveaxis(x, 2, 0).shape).toEqual([4, 2, 3]);
      const s = np.swapaxes(x, 0, 2);
      expect(s.shape).toEqual([4, 3, 2]);
      await expectArray(
        s,
        range(4).map((k) => range(3).map((j) => range(2).map((i) => at(i, j, k)))),
      );
      await expectSame(np.swapaxes(x, 1, -1), np.transpose(x, [0, 2, 1]));
      expect(() => np.moveaxis(x, 3, 0)).toThrow(NbiError);
    });
  });
});

// np.prod takes the parity of the negative factors with an integer np.floorDivide (float32 on
// WebGPU, which has no float64).
describe.each(testBackends())("array API, prod on %s", (backend) => {
  useTestBackend(backend);

  it("prod as a method equals the function", async () => {
    const x = np.array([
      [1, -2, 3],
      [0.5, 4, -0.25],
    ]);
    await expectSame(x.prod({ axis: 1 }), np.prod(x, { axis: 1 }));
  });

  it("prod with zeros and negatives", async () => {
    await expectArray(np.prod(np.array([1, 2, 3, 4])), 24, { tol: 1e-6 });
    await expectArray(np.prod(np.array([-1, 2, -3])), 6, { tol: 1e-6 });
    await expectArray(np.prod(np.array([-1, 2, 3])), -6, { tol: 1e-6 });
    await expectArray(np.prod(np.array([-1, 0, 3])), 0);
    await expectArray(np.prod(np.array([0, -2])), 0);
    await expectArray(np.prod(np.array([0.5, -4, -0.25])), 0.5, { tol: 1e-6 });
    await expectArray(
      np.prod(
        np.array([
          [2, -3],
          [0, 5],
          [-1, -1],
        ]),
        { axis: 1 },
      ),
      [-6, 0, 1],
      { tol: 1e-6 },
    );
    await expectArray(np.prod(np.zeros([0])), 1);
  });
});

// float64 exists on the CPU backend only (WGSL has no float64; the WebGPU backend refuses it), so
// the float64 cases of creation and dtype promotion run here, on the CPU alone.
describe("array API, float64 (cpu)", () => {
  useTestBackend("cpu");

  it("creates float64 arrays from numbers, typed arrays, full, arange and fromTypedArray", async () => {
    await expectArray(np.array([0.1, 2], { dtype: "float64" }), [0.1, 2], { dtype: "float64" });
    expect(await vals(np.array([0.1], { dtype: "float64" }))).toEqual([0.1]);
    await expectArray(np.array(new Float64Array([0.1])), [0.1], { dtype: "float64" });
    await expectArray(np.full([], 3, { dtype: "float64" }), 3, { dtype: "float64" });
    await expectArray(np.arange(0, 3, 1, { dtype: "float64" }), [0, 1, 2], { dtype: "float64" });
    await expectArray(
      np.fromTypedArray(new Float32Array([1.5, 2.5]), [2], { dtype: "float64" }),
      [1.5, 2.5],
      { dtype: "float64" },
    );
  });

  it("JS numbers are weakly typed against float64, and float32 with float64 is float64", () => {
    expect(np.array([1], { dtype: "float64" }).add(1).dtype).toBe("float64");
    expect(np.array([1]).add(np.array([1], { dtype: "float64" })).dtype).toBe("float64");
  });
});

// Synchronous host reads and printing are CPU features (other backends use `await x.data()`).
describe("host reads and printing (cpu)", () => {
  useTestBackend("cpu");

  it("dataSync returns a copy: mutating it does not change the array", () => {
    const x = np.array([1, 2, 3]);
    const d = x.dataSync();
    expect(d).toBeInstanceOf(Float32Array);
    d[0] = 42;
    expect(globalThis.Array.from(x.dataSync())).toEqual([1, 2, 3]);
    expect(x.dataSync()).not.toBe(x.dataSync());
    // Derived arrays are unaffected too.
    expect(globalThis.Array.from(x.mul(2).dataSync())).toEqual([2, 4, 6]);
  });

  it("dataSync equals await data()", async () => {
    const x = np.linspace(0, 1, 7);
    expect(globalThis.Array.from(x.dataSync())).toEqual(globalThis.Array.from(await x.data()));
  });

  it("tolist gives nested JS arrays (a number for a scalar)", () => {
    expect(
      np
        .array([
          [1, 2],
          [3, 4],
        ])
        .tolist(),
    ).toEqual([
      [1, 2],
      [3, 4],
    ]);
    expect(np.zeros([2, 0]).tolist()).toEqual([[], []]);
    expect(np.reshape(np.arange(8), [2, 2, 2]).tolist()).toEqual([
      [
        [0, 1],
        [2, 3],
      ],
      [
        [4, 5],
        [6, 7],
      ],
    ]);
    expect(np.array(2.5).tolist()).toBe(2.5);
  });

  it("item returns the single value, and throws NbiError for other sizes", () => {
    expect(np.array(2.5).item()).toBe(2.5);
    expect(np.array([[7]], { dtype: "int32" }).item()).toBe(7);
    expect(np.sum(np.array([1, 2])).item()).toBe(3);
    expect(() => np.array([1, 2]).item()).toThrow(NbiError);
    expect(() => np.array([1, 2]).item()).toThrow(/\[2\]/);
  });

  it("toString is NumPy-like: values, shape and dtype", () => {
    const s = np
      .array([
        [1, 2.5],
        [3, 4],
      ])
      .toString();
    expect(s).toMatch(/^array\(/);
    expect(s).toContain("2.5");
    expect(s).toContain("4.");
    expect(s).toContain("shape=[2, 2]");
    expect(s).toContain("dtype=float32");
    expect(s).not.toContain("...");
    const i = np.array([1, -2], { dtype: "int32" }).toString();
    expect(i).toContain("-2");
    expect(i).toContain("dtype=int32");
    const b = np.array([true, false]).toString();
    expect(b).toContain("true");
    expect(b).toContain("false");
    expect(b).toContain("dtype=bool");
    const sc = np.array(3).toString();
    expect(sc).toContain("3");
    expect(sc).toContain("shape=[]");
    const special = np.array([Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]);
    expect(special.toString()).toMatch(/nan.*inf.*-inf/);
  });

  it("toString elides large arrays with ... and keeps the edges", () => {
    const s = np.arange(2000).toString();
    expect(s).toContain("...");
    expect(s).toContain("1999");
    expect(s).toMatch(/\[0, 1, 2/);
    expect(s).not.toContain("1000");
    expect(s).toContain("shape=[2000]");
    expect(s.length).toBeLessThan(200);
    const m = np.zeros([100, 100]).toString();
    expect(m).toContain("...");
    expect(m).toContain("shape=[100, 100]");
    expect(m.length).toBeLessThan(1000);
  });

  it("Node's util.inspect and template strings use toString", () => {
    const x = np.array([1, 2]);
    expect(util.inspect(x)).toBe(x.toString());
    expect(`${x}`).toBe(x.toString());
    expect(util.inspect({ w: x })).toContain("shape=[2]");
  });
});
