/**
 * Elementwise fusion for jit on the CPU: which runs of equations become fused groups and which
 * generator (WebAssembly SIMD or the JavaScript loop) makes each, and jit(f) equal to f bit for
 * bit through the fused loops, with broadcasting and NaN, ±0 and ±Infinity inputs.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type DType, grad, jit, type Array as NbiArray, np } from "../../src/index.js";
import { cpuBackend, type FusedProgram } from "../../src/trace/backend.js";
import type { ConcreteArray } from "../../src/trace/concrete-array.js";
import { fuseElementwise } from "../../src/transforms/fusion.js";
import { evalClosedJaxpr, type Jaxpr, makeJaxpr } from "../../src/transforms/jaxpr.js";
import { optimizeJaxpr, sumsBesideProducers } from "../../src/transforms/rewrite.js";
import { useTestBackend } from "../helpers/backends.js";
import { FLOAT32_SPECIALS } from "../helpers/values.js";

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

  it("a chain with sin is fused by the JavaScript loop", () => {
    const jaxpr = stage((x, y) => [np.mul(np.sin(np.add(x, y)), 0.5)], [[6, 5], [5]]);
    const groups = fuseElementwise(jaxpr);
    expect(groups).toHaveLength(1);
    expect(groups[0]!.engine).toBe("js");
    expect(names(jaxpr, groups[0]!.start, groups[0]!.end)).toEqual(["add", "sin", "mul"]);
  });

  it("a chain with log and log1p (a spline's, a softplus) is fused by the SIMD loop", () => {
    const jaxpr = stage(
      (x, y) => [np.mul(np.log(np.add(x, y)), np.log1p(np.exp(np.neg(np.abs(x)))))],
      [[6, 5], [5]],
    );
    const groups = fuseElementwise(jaxpr);
    expect(groups).toHaveLength(1);
    expect(groups[0]!.engine).toBe("wasm");
    expect(names(jaxpr, groups[0]!.start, groups[0]!.end)).toContain("log1p");
  });

  it("a chain with exp and tanh (a GRU's gates) is fused by the SIMD loop", () => {
    const jaxpr = stage(
      (x, y) => [np.tanh(np.mul(np.sigmoid(np.add(x, y)), np.exp(x)))],
      [[6, 5], [5]],
    );
    const groups = fuseElementwise(jaxpr);
    expect(groups).toHaveLength(1);
    expect(groups[0]!.engine).toBe("wasm");
    expect(names(jaxpr, groups[0]!.start, groups[0]!.end)).toContain("tanh");
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

  it("relu backward: the bias-gradient sum moves beside the select and closes its wasm group", () => {
    // d = where(h > 0, g, 0); dW = xᵀ d; db = sum(d, 0); dx = d Wᵀ: staged, the sum comes after
    // the first matmul that reads d.
    const staged = stage(
      (g, h, x, w) => {
        const d = np.where(np.greater(h, 0), g, 0);
        return [
          np.matmul(np.transpose(x), d),
          np.sum(d, { axis: 0 }),
          np.matmul(d, np.transpose(w)),
        ];
      },
      [
        [6, 4],
        [6, 4],
        [6, 3],
        [5, 4],
      ],
    );
    const at = (j: Jaxpr, name: string) => j.eqns.findIndex((e) => e.prim.name === name);
    expect(at(staged, "reduce_sum")).toBeGreaterThan(at(staged, "matmul"));
    const jaxpr = optimizeJaxpr(staged);
    const select = at(jaxpr, "select");
    expect(names(jaxpr, select, select + 2)).toEqual(["select", "reduce_sum"]);
    const groups = fuseElementwise(jaxpr);
    expect(groups).toHaveLength(1);
    const g = groups[0]!;
    expect(g.engine).toBe("wasm");
    expect(names(jaxpr, g.start, g.end)).toEqual(["gt", "select", "reduce_sum"]);
    expect(g.shape).toEqual([6, 4]);
    const d = jaxpr.eqns[select]!.outBinders[0]!;
    const db = jaxpr.eqns[select + 1]!.outBinders[0]!;
    // d is read by the matmuls after the group; db is the jaxpr's output, of the reduced shape.
    expect(g.outputs).toEqual([d, db]);
    expect(db.aval.shape).toEqual([4]);
    // The CPU backend's kernel for the group, made when it was planned.
    const on = (data: Float32Array, shape: number[]) =>
      np.fromTypedArray(data, shape) as ConcreteArray;
    const outs = g.kernel([
      on(new Float32Array(24).fill(1), [6, 4]), // h
      on(new Float32Array([0]), []), // the constant 0 of h > 0
      on(
        Float32Array.from({ length: 24 }, (_, i) => i),
        [6, 4],
      ), // g
      on(new Float32Array([0]), []), // the constant 0 of where
    ]);
    expect(outs.map((o) => o.shape)).toEqual([[6, 4], [4]]);
    expect([...outs[1]!.dataSync()]).toEqual([60, 66, 72, 78]);
  });

  it("float64: the sum stays out of the JavaScript loop", () => {
    const jaxpr = optimizeJaxpr(
      stage(
        (x, b) => {
          const y = np.add(x, b);
          return [np.sum(np.where(np.greater(y, 0), y, 0), { axis: 0 })];
        },
        [[8, 8], [8]],
        "float64",
      ),
    );
    const groups = fuseElementwise(jaxpr);
    expect(groups).toHaveLength(1);
    expect(groups[0]!.engine).toBe("js");
    expect(names(jaxpr, groups[0]!.start, groups[0]!.end)).toEqual(["add", "gt", "select"]);
  });

  it("a single float32 equation forms a wasm group at ≥ 1024 elements and none when small", () => {
    const large = stage((x, y) => [np.add(x, y)], [[32, 32], [32]]);
    const groups = fuseElementwise(large);
    expect(groups).toHaveLength(1);
    expect(groups[0]).toMatchObject({ start: 0, end: 1, engine: "wasm", shape: [32, 32] });
    expect(fuseElementwise(stage((x, y) => [np.add(x, y)], [[4, 4], [4]]))).toEqual([]);
    // A single large equation without a SIMD form stays with the eager kernel.
    expect(fuseElementwise(stage((x) => [np.sin(x)], [[32, 32]]))).toEqual([]);
  });

  it("are what the CPU backend's fusion compiler (Backend.fusion) takes", () => {
    const fusion = cpuBackend.fusion!;
    expect(fusion.sums).toBe(true);
    const program = (dtype: "float32" | "float64", op: string, n: number): FusedProgram => ({
      shape: [n, 4],
      inputs: [{ shape: [n, 4], dtype }],
      steps: [
        { op, args: [{ input: 0 }, { input: 0 }], dtype },
        { op: "reduce_sum", args: [{ step: 0 }], dtype, axes: [0] },
      ],
      outputs: [1],
    });
    // A sum closes a SIMD loop; float64 has none, and a run with sums then compiles to nothing.
    expect(fusion.compile(program("float32", "mul", 8))?.engine).toBe("wasm");
    expect(fusion.compile(program("float64", "mul", 8))).toBeNull();
    // Without the sum: the JavaScript loop where SIMD has no form, reading the scalar-op table.
    const elementwise = (p: FusedProgram): FusedProgram => ({
      ...p,
      steps: [p.steps[0]!, { op: "exp", args: [{ step: 0 }], dtype: p.steps[0]!.dtype }],
      outputs: [1],
    });
    const js = fusion.compile(elementwise(program("float64", "add", 8)))!;
    expect(js.engine).toBe("js");
    const x = np.fromTypedArray(
      Float64Array.from({ length: 32 }, (_, i) => i / 8),
      [8, 4],
    );
    const [y] = js([x as ConcreteArray]);
    expect([...y!.dataSync()]).toEqual([...np.exp(np.add(x, x)).dataSync()]);
    // A single step: only a large SIMD loop.
    const single = (n: number, op: string): FusedProgram => ({
      ...program("float32", op, n),
      steps: [program("float32", op, n).steps[0]!],
      outputs: [0],
    });
    expect(fusion.compile(single(256, "add"))?.engine).toBe("wasm");
    expect(fusion.compile(single(8, "add"))).toBeNull();
    expect(fusion.compile(single(256, "pow"))).toBeNull();
  });
});

// ---------------------------------------------------------------------------------------------
// jit(f) against f

const SPECIALS = FLOAT32_SPECIALS;

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
        w instanceof Float64Array
          ? Object.is(g[i], w[i]) || (Number.isNaN(g[i]) && Number.isNaN(w[i]))
          : gb[i] === wb[i] || (w instanceof Float32Array && isNaN32(gb[i]!) && isNaN32(wb[i]!));
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
  ["sin chain (JavaScript loop)", (x, row) => [np.mul(np.sin(np.sub(x, row)), 0.5)]],
  [
    "exp chain with sin (JavaScript loop)",
    (x, row) => [np.add(np.exp(np.sub(x, row)), np.sin(np.abs(x)))],
  ],
  [
    "log, log1p and a softplus",
    (x, row) => [
      np.add(np.log(np.abs(np.sub(x, row))), np.log1p(np.exp(np.neg(np.abs(x))))),
      np.log1p(np.mul(x, row)),
    ],
  ],
  [
    "GRU gates: sigmoid, tanh, exp",
    (x, row) => {
      const r = np.sigmoid(np.add(x, row));
      const n = np.tanh(np.add(x, np.mul(r, row)));
      return [np.add(n, np.mul(r, np.sub(np.exp(np.mul(x, 0.1)), n)))];
    },
  ],
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

  it("a broadcast needing three loop axes runs in SIMD; four fall back to JS; both bit-identical", async () => {
    const f = (a: NbiArray, b: NbiArray, c: NbiArray) => [
      np.where(np.less(a, b), np.maximum(np.add(a, b), c), np.sign(np.sub(c, b))),
    ];
    const four = [
      [2, 3, 4, 5],
      [2, 1, 4, 1],
      [1, 3, 1, 5],
    ];
    expect(fuseElementwise(stage(f, four)).map((g) => g.engine)).toEqual(["js"]);
    for (const seed of [1, 2]) {
      const [a, b, c] = four.map((shape, i) =>
        np.fromTypedArray(
          f32Values(
            shape.reduce((p, q) => p * q, 1),
            seed * 10 + i,
          ),
          shape,
          { dtype: "float32" },
        ),
      );
      await expectBitIdentical(jit(f)(a!, b!, c!), f(a!, b!, c!), "four-axis broadcast");
    }
    const shapes = [
      [2, 3, 4],
      [2, 1, 4],
      [1, 3, 1],
    ];
    const engines = fuseElementwise(stage(f, shapes)).map((g) => g.engine);
    expect(engines).toEqual(["wasm"]);
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

// ---------------------------------------------------------------------------------------------
// Sums closing fused loops

type SumFn = (x: NbiArray, b: NbiArray, col: NbiArray) => NbiArray[];
const relu = (y: NbiArray) => np.where(np.greater(y, 0), y, 0);

/** Sums of elementwise chains over x [R, C], a bias row b [C] and a column [R, 1]. */
const sums: [string, SumFn][] = [
  ["sum over axis 0 of relu(x + b)", (x, b) => [np.sum(relu(np.add(x, b)), { axis: 0 })]],
  ["sum over axis 1 of relu(x + b)", (x, b) => [np.sum(relu(np.add(x, b)), { axis: 1 })]],
  ["sum of all of relu(x + b)", (x, b) => [np.sum(relu(np.add(x, b)))]],
  [
    "relu(x + b) and its sums over both axes",
    (x, b) => {
      const r = relu(np.add(x, b));
      return [r, np.sum(r, { axis: 0 }), np.sum(r, { axis: 1 })];
    },
  ],
  [
    "relu backward: masked cotangent, its matmul and its bias-gradient sum",
    (x, b, col) => {
      const d = np.where(np.greater(np.add(x, b), 0), np.mul(x, col), 0);
      return [np.matmul(np.transpose(x), d), np.sum(d, { axis: 0 }), np.sum(np.abs(d))];
    },
  ],
  [
    "sums of an intermediate and of an input, keepdims and mean",
    (x, b, col) => {
      const y = np.maximum(np.sub(x, col), b);
      return [
        np.sum(np.mul(y, y), { axis: 1, keepdims: true }),
        np.sum(x, { axis: 0 }),
        np.mean(np.sqrt(np.abs(y)), { axis: 0 }),
      ];
    },
  ],
];

function sumInputs(r: number, c: number, seed: number, dtype: DType) {
  const make = (n: number, shape: number[], k: number) => {
    const v = f32Values(n, seed + k);
    // Wide magnitudes so float32 accumulation (or another order) would change the sums.
    v.forEach((y, i) => {
      if ((seed + i) % 5 === 0 && Number.isFinite(y)) v[i] = y * 2 ** 24;
    });
    const data = dtype === "float64" ? Float64Array.from(v) : v;
    return np.fromTypedArray(data, shape, { dtype });
  };
  return [make(r * c, [r, c], 0), make(c, [c], 1), make(r, [r, 1], 2)] as const;
}

describe("jit(f) equals f bit for bit with sums in fused loops (cpu)", () => {
  useTestBackend("cpu");

  it.each(sums)("%s", async (label, f) => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 40 }),
        fc.nat(),
        async (r, c, seed) => {
          const [x, b, col] = sumInputs(r, c, seed, "float32");
          await expectBitIdentical(jit(f)(x, b, col), f(x, b, col), label);
        },
      ),
      { numRuns: 25 },
    );
  });

  it.each(sums)("%s: a sum closes a wasm group", (label, f) => {
    const jaxpr = optimizeJaxpr(
      jit(f).lower(np.zeros([6, 5]), np.zeros([5]), np.zeros([6, 1])).jaxpr,
    );
    const withSum = fuseElementwise(jaxpr).filter((g) =>
      names(jaxpr, g.start, g.end).includes("reduce_sum"),
    );
    expect(withSum.length, label).toBeGreaterThan(0);
    for (const g of withSum) {
      expect(g.engine).toBe("wasm");
      for (let k = g.start; k < g.end; k++) {
        const e = jaxpr.eqns[k]!;
        if (e.prim.name !== "reduce_sum") continue;
        expect(g.outputs).toContain(e.outBinders[0]);
        expect(e.outBinders[0]!.aval.shape.length).toBeLessThan(g.shape.length);
      }
    }
  });

  it("sums only over size-1 axes and over a middle axis stay eager, still bit-identical", async () => {
    const cases: [number[], number[]][] = [
      [[1, 7], [0]],
      [[7, 1], [1]],
      [[3, 5, 6], [1]],
      [[1, 5, 6], [1]],
    ];
    for (const [shape, axes] of cases) {
      const f = (x: NbiArray, y: NbiArray) => {
        const r = relu(np.mul(x, y));
        return [r, np.sum(r, { axis: axes })];
      };
      for (const seed of [1, 2, 3]) {
        const n = shape.reduce((p, q) => p * q, 1);
        const x = np.fromTypedArray(f32Values(n, seed), shape, { dtype: "float32" });
        const y = np.fromTypedArray(f32Values(n, seed + 50), shape, { dtype: "float32" });
        await expectBitIdentical(jit(f)(x, y), f(x, y), `sum over ${axes} of ${shape}`);
      }
    }
  });
});

describe("the gradient of a dense relu layer (cpu)", () => {
  useTestBackend("cpu");

  const loss = (w: NbiArray, b: NbiArray, x: NbiArray) => {
    const y = np.add(np.matmul(x, w), b);
    return np.sum(np.mul(np.where(np.greater(y, 0), y, 0), 0.5));
  };
  const dLoss = (w: NbiArray, b: NbiArray, x: NbiArray) =>
    grad(loss, { argnums: [0, 1] })(w, b, x) as NbiArray[];

  it("the bias gradient is a sum in the wasm group of the masked cotangent", () => {
    const jaxpr = optimizeJaxpr(
      jit(dLoss).lower(np.zeros([3, 4]), np.zeros([4]), np.zeros([6, 3])).jaxpr,
    );
    const groups = fuseElementwise(jaxpr).filter((g) =>
      names(jaxpr, g.start, g.end).includes("reduce_sum"),
    );
    expect(groups).toHaveLength(1);
    const g = groups[0]!;
    expect(g.engine).toBe("wasm");
    expect(names(jaxpr, g.end - 2, g.end)).toEqual(["select", "reduce_sum"]);
    expect(g.outputs.map((v) => v.aval.shape)).toEqual([[6, 4], [4]]);
  });

  it("jit(grad) equals grad bit for bit", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 9 }),
        fc.nat(),
        async (n, h, d, seed) => {
          const f32 = (len: number, shape: number[], k: number) =>
            np.fromTypedArray(f32Values(len, seed + k), shape, { dtype: "float32" });
          const [w, b, x] = [f32(d * h, [d, h], 0), f32(h, [h], 1), f32(n * d, [n, d], 2)];
          await expectBitIdentical(jit(dLoss)(w, b, x), dLoss(w, b, x), "dense relu grad");
        },
      ),
      { numRuns: 25 },
    );
  });
});

describe("sums in float64 programs (cpu, float64)", () => {
  useTestBackend("cpu");

  it.each(sums)("%s: no sum in the JavaScript loop; jit(f) equals f", async (label, f) => {
    const jaxpr = optimizeJaxpr(
      jit(f).lower(
        np.zeros([6, 5], { dtype: "float64" }),
        np.zeros([5], { dtype: "float64" }),
        np.zeros([6, 1], { dtype: "float64" }),
      ).jaxpr,
    );
    for (const g of fuseElementwise(jaxpr)) {
      expect(g.engine).toBe("js");
      expect(names(jaxpr, g.start, g.end)).not.toContain("reduce_sum");
    }
    for (const [r, c, seed] of [
      [1, 1, 1],
      [3, 7, 2],
      [17, 5, 3],
      [40, 33, 4],
    ] as const) {
      const [x, b, col] = sumInputs(r, c, seed, "float64");
      await expectBitIdentical(jit(f)(x, b, col), f(x, b, col), `${label} (float64)`);
    }
  });
});

describe("sumsBesideProducers", () => {
  useTestBackend("cpu");

  it("moves sums of elementwise results beside their producers and keeps every dependency", async () => {
    const closed = makeJaxpr(
      (x, w) => {
        const y = np.add(x, 1);
        const m = np.matmul(y, w);
        const sx = np.sum(x, { axis: 0 }); // a jaxpr input: stays
        const sm = np.sum(m, { axis: 1 }); // a matmul output: stays
        const z = np.mul(y, 2);
        const sy = np.sum(y, { axis: 0 }); // moves to after the add
        const sz = np.sum(z); // already beside the mul
        const sy2 = np.sum(y); // moves too, after sy
        const ss = np.sum(sy); // a sum of a sum: stays
        return [m, sx, sm, sy, sz, sy2, ss];
      },
      [
        { shape: [4, 3], dtype: "float32" },
        { shape: [3, 2], dtype: "float32" },
      ],
    );
    const { jaxpr } = closed;
    const moved = sumsBesideProducers(jaxpr);
    const show = (j: Jaxpr) =>
      j.eqns.map((e) =>
        e.prim.name === "reduce_sum" ? `sum(${producerName(j, e.inputs[0]!)})` : e.prim.name,
      );
    const producerName = (j: Jaxpr, v: (typeof jaxpr.inBinders)[number]) =>
      j.eqns.find((e) => e.outBinders.includes(v))?.prim.name ?? "input";
    expect(show(jaxpr)).toEqual([
      "add",
      "matmul",
      "sum(input)",
      "sum(matmul)",
      "mul",
      "sum(add)",
      "sum(mul)",
      "sum(add)",
      "sum(reduce_sum)",
    ]);
    expect(show(moved)).toEqual([
      "add",
      "sum(add)",
      "sum(add)",
      "matmul",
      "sum(input)",
      "sum(matmul)",
      "mul",
      "sum(mul)",
      "sum(reduce_sum)",
    ]);
    // The same equations (objects), the two sums of y in their original order.
    expect(new Set(moved.eqns)).toEqual(new Set(jaxpr.eqns));
    expect(moved.eqns.length).toBe(jaxpr.eqns.length);
    const sumsOfY = jaxpr.eqns.filter((e) => e.inputs[0] === jaxpr.eqns[0]!.outBinders[0]);
    expect(moved.eqns.slice(1, 3)).toEqual(sumsOfY.filter((e) => e.prim.name === "reduce_sum"));
    expect(moved.inBinders).toBe(jaxpr.inBinders);
    expect(moved.outs).toBe(jaxpr.outs);
    // Every input is defined before it is read.
    const defined = new Set(moved.inBinders);
    for (const e of moved.eqns) {
      for (const v of e.inputs) expect(defined.has(v)).toBe(true);
      for (const v of e.outBinders) defined.add(v);
    }
    // Same values.
    const x = np.fromTypedArray(f32Values(12, 3), [4, 3], { dtype: "float32" });
    const w = np.fromTypedArray(f32Values(6, 4), [3, 2], { dtype: "float32" });
    await expectBitIdentical(
      evalClosedJaxpr({ jaxpr: moved, consts: closed.consts }, [x, w]),
      evalClosedJaxpr(closed, [x, w]),
      "sumsBesideProducers",
    );
  });

  it("returns the jaxpr itself when no sum reads an elementwise result", () => {
    const { jaxpr } = makeJaxpr(
      (x, w) => [np.sum(x, { axis: 0 }), np.sum(np.matmul(x, w))],
      [
        { shape: [4, 3], dtype: "float32" },
        { shape: [3, 2], dtype: "float32" },
      ],
    );
    expect(sumsBesideProducers(jaxpr)).toBe(jaxpr);
  });
});
