/**
 * Elementwise fusion for jit on the CPU: which runs of equations become fused groups and which
 * generator (WebAssembly SIMD or the JavaScript loop) makes each, and jit(f) equal to f bit for
 * bit through the fused loops, with broadcasting and NaN, ±0 and ±Infinity inputs.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type DType, jit, type Array as NbiArray, np } from "../../src/index.js";
import { fuseElementwise } from "../../src/transforms/fusion.js";
import { type Jaxpr, makeJaxpr } from "../../src/transforms/jaxpr.js";
import { useTestBackend } from "../helpers/backends.js";

const stage = (
  f: (...xs: NbiArray[]) => NbiArray[],
  shapes: number[][],
  dtype: DType = "float32",
) =>
  makeJaxpr(
    f,
    shapes.map((shape) => ({ shape, dtype })),
  ).jaxpr;

const names = (jaxpr: Jaxpr, start: number, end: number) =>
  jaxpr.eqns.slice(start, end).map((e) => e.prim.name);

describe("fuseElementwise groups (cpu)", () => {
  useTestBackend("cpu");

  it("relu(x @ W + b) in float32: add, gt and select form one wasm group after the matmul", () => {
    const jaxpr = stage(
      (x, w, b) => {
        const y = np.add(np.matmul(x, w), b);
        return [np.where(np.greater(y, 0), y, 0)];
      },
      [[5, 3], [3, 4], [4]],
    );
    const groups = fuseElementwise(jaxpr);
    expect(groups).toHaveLength(1);
    const g = groups[0]!;
    expect(g.engine).toBe("wasm");
    expect(names(jaxpr, g.start, g.end)).toEqual(["add", "gt", "select"]);
    expect(jaxpr.eqns[g.start - 1]!.prim.name).toBe("matmul");
    expect(g.shape).toEqual([5, 4]);
    // Only the select's result leaves the group; the matmul's result and b come in.
    expect(g.outputs).toEqual([jaxpr.outs[0]]);
    expect(g.inputs).toContain(jaxpr.eqns[g.start - 1]!.outBinders[0]);
  });

  it("an intermediate read after the group is one of its outputs", () => {
    const jaxpr = stage(
      (x, w) => {
        const h = np.maximum(np.mul(x, 2), np.neg(x));
        const y = np.sub(h, 1);
        return [np.matmul(h, w), y];
      },
      [
        [4, 3],
        [3, 2],
      ],
    );
    const [g] = fuseElementwise(jaxpr);
    expect(g!.engine).toBe("wasm");
    const h = jaxpr.eqns.find((e) => e.prim.name === "max")!.outBinders[0]!;
    expect(g!.outputs).toContain(h);
    expect(g!.outputs).toContain(jaxpr.outs[1]);
  });

  it("a chain with exp is fused by the JavaScript loop", () => {
    const jaxpr = stage((x, y) => [np.mul(np.exp(np.add(x, y)), 0.5)], [[6, 5], [5]]);
    const groups = fuseElementwise(jaxpr);
    expect(groups).toHaveLength(1);
    expect(groups[0]!.engine).toBe("js");
    expect(names(jaxpr, groups[0]!.start, groups[0]!.end)).toEqual(["add", "exp", "mul"]);
  });

  it("a float64 chain is fused by the JavaScript loop", () => {
    const jaxpr = stage(
      (x, y) => [np.where(np.less(x, y), np.sub(x, y), np.mul(x, y))],
      [[8, 8], [8]],
      "float64",
    );
    const groups = fuseElementwise(jaxpr);
    expect(groups).toHaveLength(1);
    expect(groups[0]!.engine).toBe("js");
    expect(groups[0]!.end - groups[0]!.start).toBe(jaxpr.eqns.length);
  });

  it("a single float32 equation forms a wasm group at ≥ 1024 elements and none when small", () => {
    const large = stage((x, y) => [np.add(x, y)], [[32, 32], [32]]);
    const groups = fuseElementwise(large);
    expect(groups).toHaveLength(1);
    expect(groups[0]).toMatchObject({ start: 0, end: 1, engine: "wasm", shape: [32, 32] });
    expect(fuseElementwise(stage((x, y) => [np.add(x, y)], [[4, 4], [4]]))).toEqual([]);
    // A single large equation without a SIMD form stays with the eager kernel.
    expect(fuseElementwise(stage((x) => [np.exp(x)], [[32, 32]]))).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// jit(f) against f

const SPECIALS = [
  Number.NaN,
  0,
  -0,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  1,
  -1,
  0.5,
  -0.5,
  1.401298464324817e-45,
  -3.4028234663852886e38,
];

/** float32 values from a seed: specials, small halves (ties) and wide-ranging magnitudes. */
function f32Values(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
  return Float32Array.from({ length: n }, () => {
    const u = next();
    if (u < 0.3) return SPECIALS[Math.floor(next() * SPECIALS.length)]!;
    if (u < 0.6) return Math.round((next() - 0.5) * 8) / 2;
    return (next() - 0.5) * 2 ** Math.round((next() - 0.5) * 30);
  });
}

const isNaN32 = (bits: number) => (bits & 0x7f800000) === 0x7f800000 && (bits & 0x7fffff) !== 0;

/** Equal shapes, dtypes and values: float32 by bit pattern (any NaN equal to any NaN). */
async function expectBitIdentical(got: NbiArray[], want: NbiArray[], label: string) {
  expect(got.length).toBe(want.length);
  for (let j = 0; j < want.length; j++) {
    expect(got[j]!.shape, `${label} output ${j} shape`).toEqual(want[j]!.shape);
    expect(got[j]!.dtype, `${label} output ${j} dtype`).toBe(want[j]!.dtype);
    const [g, w] = [await got[j]!.data(), await want[j]!.data()];
    const bits = (a: typeof g) =>
      a instanceof Float32Array ? new Uint32Array(a.buffer, a.byteOffset, a.length) : a;
    const [gb, wb] = [bits(g), bits(w)];
    for (let i = 0; i < w.length; i++) {
      const same =
        gb[i] === wb[i] || (w instanceof Float32Array && isNaN32(gb[i]!) && isNaN32(wb[i]!));
      if (!same) {
        throw new Error(`${label} output ${j} element ${i}: jit gave ${g[i]}, eager ${w[i]}`);
      }
    }
  }
}

type Fn = (x: NbiArray, row: NbiArray, col: NbiArray, s: NbiArray) => NbiArray[];

/** Float32 chains over x [R, C], a row [C], a column [R, 1] and a scalar []. */
const chains: [string, Fn][] = [
  [
    "max/min with broadcast operands",
    (x, row, col, s) => [
      np.minimum(np.maximum(np.add(x, row), col), s),
      np.maximum(col, np.mul(x, row)),
      np.minimum(s, np.sub(row, x)),
    ],
  ],
  [
    "sign, abs, neg, floor, sqrt",
    (x, row, _col, s) => [
      np.sign(np.add(x, s)),
      np.floor(np.div(np.neg(x), row)),
      np.sqrt(np.abs(np.sub(x, row))),
    ],
  ],
  [
    "comparisons (bool outputs)",
    (x, row, col, s) => [
      np.equal(x, row),
      np.notEqual(np.add(x, 0), col),
      np.less(x, s),
      np.lessEqual(col, x),
      np.greater(np.mul(x, row), 0),
      np.greaterEqual(row, np.neg(x)),
    ],
  ],
  [
    "select with comparisons and bool equality",
    (x, row, col, s) => {
      const a = np.greater(x, row);
      const b = np.lessEqual(x, col);
      return [
        np.where(a, x, np.mul(row, s)),
        np.where(np.equal(a, b), np.maximum(x, col), np.minimum(row, x)),
        np.where(np.notEqual(a, b), col, s),
      ];
    },
  ],
  [
    "relu-like chain over a row bias",
    (x, row) => {
      const y = np.add(np.mul(x, 3), row);
      return [np.where(np.greater(y, 0), y, 0), np.maximum(y, 0)];
    },
  ],
  ["exp chain (JavaScript loop)", (x, row) => [np.mul(np.exp(np.sub(x, row)), 0.5)]],
];

describe("jit(f) equals f bit for bit through fused loops (cpu)", () => {
  useTestBackend("cpu");

  it.each(chains)("%s", async (label, f) => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 40 }),
        fc.nat(),
        async (r, c, seed) => {
          const x = np.fromTypedArray(f32Values(r * c, seed), [r, c], { dtype: "float32" });
          const row = np.fromTypedArray(f32Values(c, seed + 1), [c], { dtype: "float32" });
          const col = np.fromTypedArray(f32Values(r, seed + 2), [r, 1], { dtype: "float32" });
          const s = np.fromTypedArray(f32Values(1, seed + 3), [], { dtype: "float32" });
          await expectBitIdentical(jit(f)(x, row, col, s), f(x, row, col, s), label);
        },
      ),
      { numRuns: 25 },
    );
  });

  it.each(chains)("%s: the staged program has a fused group", (label, f) => {
    const jaxpr = jit(f).lower(
      np.zeros([3, 5]),
      np.zeros([5]),
      np.zeros([3, 1]),
      np.zeros([]),
    ).jaxpr;
    const engines = fuseElementwise(jaxpr).map((g) => g.engine);
    expect(engines).toContain(label.includes("JavaScript") ? "js" : "wasm");
  });

  it("a broadcast needing three axes falls back to the JavaScript loop, still bit-identical", async () => {
    const f = (a: NbiArray, b: NbiArray, c: NbiArray) => [
      np.where(np.less(a, b), np.maximum(np.add(a, b), c), np.sign(np.sub(c, b))),
    ];
    const shapes = [
      [2, 3, 4],
      [2, 1, 4],
      [1, 3, 1],
    ];
    const engines = fuseElementwise(stage(f, shapes)).map((g) => g.engine);
    expect(engines).toEqual(["js"]);
    for (const seed of [1, 2, 3, 4]) {
      const [a, b, c] = shapes.map((shape, i) =>
        np.fromTypedArray(
          f32Values(
            shape.reduce((p, q) => p * q, 1),
            seed * 10 + i,
          ),
          shape,
          { dtype: "float32" },
        ),
      );
      await expectBitIdentical(jit(f)(a!, b!, c!), f(a!, b!, c!), "three-axis broadcast");
    }
  });

  it("scalar chains (output shape []) match eager", async () => {
    const f = (a: NbiArray, b: NbiArray) => [np.sign(np.minimum(np.mul(a, b), np.neg(b)))];
    for (let seed = 1; seed < 30; seed++) {
      const a = np.fromTypedArray(f32Values(1, seed), [], { dtype: "float32" });
      const b = np.fromTypedArray(f32Values(1, seed + 100), [], { dtype: "float32" });
      await expectBitIdentical(jit(f)(a, b), f(a, b), "scalar chain");
    }
    expect(fuseElementwise(stage(f, [[], []])).map((g) => g.engine)).toEqual(["wasm"]);
  });

  it("a large single equation runs through the SIMD loop and matches eager", async () => {
    const x = np.fromTypedArray(f32Values(48 * 37, 7), [48, 37], { dtype: "float32" });
    const row = np.fromTypedArray(f32Values(37, 8), [37], { dtype: "float32" });
    const f = (a: NbiArray, b: NbiArray) => [np.maximum(a, b)];
    await expectBitIdentical(jit(f)(x, row), f(x, row), "single max");
  });
});
