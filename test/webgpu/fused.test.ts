/**
 * jit on WebGPU: elementwise runs become one generated WGSL kernel, and a matmul followed by a
 * run that alone reads its product (bias + activation) becomes one kernel (ops/webgpu/fused.ts).
 * Results are compared with the CPU's at the jit-against-eager float32 tolerance of the
 * backend suites (|got − want| <= 1e-6 + 1e-5·|want|; NaN and ±Infinity exactly), and the
 * kernel counters show the fused kernels ran. Skipped (see global-setup.ts) where no adapter
 * exists.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Array, type BackendName, jit, np, valueAndGrad } from "../../src/index.js";
import { gpuDevice } from "../../src/ops/webgpu/backend.js";
import { dispatchStats } from "../../src/ops/webgpu/dispatch.js";
import { fusedStats } from "../../src/ops/webgpu/fused.js";
import { webgpuAvailable } from "../helpers/backends.js";
import { uniforms } from "../helpers/finite-diff.js";

interface Data {
  shape: number[];
  values: number[];
}

const sizeOf = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** Uniform values in [-scale, scale). */
const rand = (shape: number[], seed: number, scale = 2): Data => ({
  shape,
  values: uniforms(sizeOf(shape), seed).map((u) => (2 * u - 1) * scale),
});

const on = (backend: BackendName, d: Data) =>
  np.fromTypedArray(Float32Array.from(d.values), d.shape, { backend });

type Fn = (...xs: Array[]) => Array | Array[];
const leaves = (r: Array | Array[]) => (globalThis.Array.isArray(r) ? r : [r]);

/** f on the CPU backend (its constants too), eagerly. */
async function onCpu(f: Fn, inputs: Data[]): Promise<Array[]> {
  await np.useBackend("cpu");
  try {
    return leaves(f(...inputs.map((d) => on("cpu", d))));
  } finally {
    await np.useBackend("webgpu");
  }
}

async function expectClose(got: Array[], want: Array[], label: string) {
  expect(got.length, label).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const [g, w] = [got[i]!, want[i]!];
    expect(g.shape, `${label} out ${i} shape`).toEqual(w.shape);
    expect(g.dtype, `${label} out ${i} dtype`).toBe(w.dtype);
    const [gv, wv] = [await g.data(), await w.data()];
    const bad: string[] = [];
    for (let k = 0; k < wv.length; k++) {
      const [x, y] = [Number(gv[k]), Number(wv[k])];
      const ok =
        x === y ||
        (Number.isNaN(x) && Number.isNaN(y)) ||
        (Number.isFinite(y) && Math.abs(x - y) <= 1e-6 + 1e-5 * Math.abs(y));
      if (!ok && bad.length < 5) bad.push(`[${k}] got ${x}, expected ${y}`);
    }
    expect(bad, `${label} out ${i}`).toEqual([]);
  }
}

/** Runs jit(f) twice on WebGPU (the second call warm) and returns its outputs and counters. */
async function runJit(f: Fn, inputs: Data[]) {
  const xs = inputs.map((d) => on("webgpu", d));
  const jf = jit(f);
  const first = leaves(jf(...xs));
  await Promise.all(first.map((x) => x.data()));
  const d0 = dispatchStats();
  const f0 = fusedStats();
  const outs = leaves(jf(...xs));
  const d1 = dispatchStats();
  const f1 = fusedStats();
  return {
    outs,
    dispatches: d1.dispatches - d0.dispatches,
    compiled: d1.compiled - d0.compiled,
    elementwise: f1.elementwise - f0.elementwise,
    matmul: f1.matmul - f0.matmul,
  };
}

/** Kernels dispatched by f run eagerly on WebGPU (one per operation). */
async function eagerGpu(f: Fn, inputs: Data[]) {
  const xs = inputs.map((d) => on("webgpu", d));
  const d0 = dispatchStats();
  const outs = leaves(f(...xs));
  const dispatches = dispatchStats().dispatches - d0.dispatches;
  return { outs, dispatches };
}

async function checkAgainstCpu(f: Fn, inputs: Data[], label: string) {
  const r = await runJit(f, inputs);
  await expectClose(r.outs, await onCpu(f, inputs), label);
  return r;
}

describe.skipIf(!webgpuAvailable())("fused WebGPU kernels under jit", () => {
  beforeAll(async () => {
    await np.useBackend("webgpu");
  });
  afterAll(async () => {
    await np.useBackend("cpu");
  });

  it("float32 chains with broadcast bias rows, columns and scalars equal the CPU", async () => {
    const cases: [string, Fn, Data[]][] = [
      [
        "bias row, column, scalars",
        (x, b, c) =>
          np
            .tanh(np.add(np.mul(x!, 2), b!))
            .mul(c!)
            .sub(np.exp(np.neg(np.abs(x!)))),
        [rand([5, 7], 1), rand([7], 2), rand([5, 1], 3)],
      ],
      [
        "two outputs of one run",
        (x) => {
          const y = x!.mul(x!).add(1);
          return [np.sqrt(y), np.log(y).div(3)];
        },
        [rand([4, 6], 4)],
      ],
      [
        "rank 3 against [3, 1] and [4]",
        (x, b, c) =>
          np
            .sin(x!.add(b!))
            .mul(np.cos(c!))
            .add(np.log1p(np.abs(x!))),
        [rand([2, 3, 4], 5), rand([3, 1], 6), rand([4], 7)],
      ],
      [
        "pow and division",
        (x, b) => np.pow(np.abs(x!).add(0.5), b!).div(x!.sub(3)),
        [rand([4, 5], 10), rand([5], 16)],
      ],
      [
        "a run closed by sums",
        (x, b) => {
          const y = x!.mul(b!).add(1);
          return [np.tanh(y), np.sum(y, { axis: 0 }), np.sum(y.mul(y))];
        },
        [rand([6, 5], 17), rand([5], 18)],
      ],
      [
        "many workgroups",
        (x, b) => np.expm1(x!.mul(0.25)).add(b!).mul(np.sign(x!)),
        [rand([300, 257], 8), rand([257], 9)],
      ],
    ];
    for (const [label, f, inputs] of cases) {
      const r = await checkAgainstCpu(f, inputs, label);
      expect(r.elementwise, label).toBeGreaterThanOrEqual(1);
    }
  });

  it("comparisons and select (bools kept in registers) equal the CPU", async () => {
    const cases: [string, Fn, Data[]][] = [
      ["relu", (x) => np.relu(x!.mul(3)).add(1), [rand([6, 5], 11)]],
      [
        "where(less) with arithmetic on both sides",
        (x, y) => np.where(np.less(x!, y!), x!.mul(2), y!.sub(1)).add(x!),
        [rand([4, 8], 12), rand([8], 13)],
      ],
      [
        "bool outputs",
        (x, y) => [
          np.greater(x!.add(y!), 0),
          np.where(np.lessEqual(x!, y!), x!, y!).mul(3),
          np.equal(np.floor(x!), np.floor(y!)),
        ],
        [rand([3, 5], 14, 3), rand([3, 5], 15, 3)],
      ],
    ];
    for (const [label, f, inputs] of cases) {
      const r = await checkAgainstCpu(f, inputs, label);
      expect(r.elementwise, label).toBeGreaterThanOrEqual(1);
    }
  });

  it("NaN and ±Infinity through maximum, minimum and comparisons equal the CPU", async () => {
    const x: Data = {
      shape: [2, 8],
      values: [
        NaN,
        Infinity,
        -Infinity,
        1,
        -1,
        0,
        NaN,
        2,
        3,
        -Infinity,
        Infinity,
        NaN,
        0,
        5,
        -2,
        1,
      ],
    };
    const y: Data = {
      shape: [2, 8],
      values: [
        1,
        NaN,
        3,
        Infinity,
        -Infinity,
        -0,
        NaN,
        -2,
        Infinity,
        Infinity,
        NaN,
        0,
        1,
        -5,
        -2,
        NaN,
      ],
    };
    const cases: [string, Fn][] = [
      ["max + min", (a, b) => np.maximum(a!, b!).add(np.minimum(a!, b!).mul(0.5))],
      ["clip", (a) => np.maximum(np.minimum(a!.mul(2), 1), -1).sub(0.5)],
      [
        "comparisons",
        (a, b) => [
          np.equal(a!.add(0), b!),
          np.notEqual(a!.add(0), b!),
          np.where(np.greaterEqual(a!.mul(1), b!), a!, b!).add(1),
        ],
      ],
    ];
    for (const [label, f] of cases) await checkAgainstCpu(f, [x, y], label);
  });

  it("the fused path runs: fewer kernels per jit call than eager", async () => {
    const f: Fn = (x, b) => np.tanh(x!.mul(2).add(b!)).mul(x!).sub(np.exp(x!)).add(1);
    const inputs = [rand([8, 16], 21), rand([16], 22)];
    const jitted = await runJit(f, inputs);
    const eager = await eagerGpu(f, inputs);
    expect(eager.dispatches).toBe(7);
    expect(jitted.dispatches).toBe(1);
    expect(jitted.elementwise).toBe(1);
    await expectClose(jitted.outs, eager.outs, "fused against unfused");
  });

  it("matmul + bias + activation runs as one kernel equal to the unfused kernels", async () => {
    const cases: [string, Fn, Data[]][] = [
      [
        "relu(x @ w + b), sizes off the 16-tile",
        (x, w, b) => np.relu(x!.matmul(w!).add(b!)),
        [rand([33, 17], 31), rand([17, 20], 32), rand([20], 33)],
      ],
      [
        "maximum(x @ w + b, 0)",
        (x, w, b) => np.maximum(x!.matmul(w!).add(b!), 0),
        [rand([5, 3], 34), rand([3, 4], 35), rand([4], 36)],
      ],
      [
        "tanh(x @ wᵀ + b) (transposed operand)",
        (x, w, b) => np.tanh(x!.matmul(w!.T).add(b!)),
        [rand([7, 9], 37), rand([6, 9], 38), rand([6], 39)],
      ],
      [
        "batched",
        (x, w, b) => np.tanh(x!.matmul(w!).add(b!)).mul(2),
        [rand([2, 9, 5], 40), rand([5, 6], 41), rand([6], 42)],
      ],
      [
        "register-blocked product (64 × 64 tiles, ragged), transposed operand, batched",
        (x, w, b) => np.relu(x!.matmul(w!.T).add(b!)),
        [rand([2, 130, 19], 46), rand([150, 19], 47), rand([150], 48)],
      ],
    ];
    for (const [label, f, inputs] of cases) {
      const jitted = await runJit(f, inputs);
      expect(jitted.matmul, label).toBe(1);
      expect(jitted.dispatches, label).toBe(1);
      const eager = await eagerGpu(f, inputs);
      expect(eager.dispatches, label).toBeGreaterThan(1);
      await expectClose(jitted.outs, eager.outs, `${label}: fused against unfused`);
      await expectClose(jitted.outs, await onCpu(f, inputs), `${label}: against the CPU`);
    }
    // A product read elsewhere too is stored: the matmul runs alone, the run fuses by itself.
    const shared: Fn = (x, w, b) => {
      const h = x!.matmul(w!);
      return [h, np.relu(h.add(b!))];
    };
    const inputs = [rand([4, 3], 43), rand([3, 5], 44), rand([5], 45)];
    const r = await checkAgainstCpu(shared, inputs, "shared product");
    expect(r.matmul).toBe(0);
    expect(r.elementwise).toBe(1);
    expect(r.dispatches).toBe(2);
  });

  it("an MLP training step (valueAndGrad, sums and epilogues in the backward pass) equals the CPU", async () => {
    type P = { w1: Array; b1: Array; w2: Array; b2: Array };
    const loss = (p: P, x: Array, y: Array) => {
      const h = np.relu(x.matmul(p.w1).add(p.b1));
      return np.mean(np.square(np.tanh(h.matmul(p.w2).add(p.b2)).sub(y)));
    };
    const step: Fn = (w1, b1, w2, b2, x, y) => {
      const p = { w1: w1!, b1: b1!, w2: w2!, b2: b2! };
      const [l, g] = valueAndGrad(loss)(p, x!, y!) as [Array, P];
      return [l, ...(["w1", "b1", "w2", "b2"] as const).map((k) => p[k].sub(g[k].mul(0.1)))];
    };
    const inputs = [
      rand([8, 12], 71, 0.5),
      rand([12], 72, 0.1),
      rand([12, 3], 73, 0.5),
      rand([3], 74, 0.1),
      rand([20, 8], 75),
      rand([20, 3], 76),
    ];
    const r = await checkAgainstCpu(step, inputs, "training step");
    expect(r.matmul).toBeGreaterThanOrEqual(1);
    expect(r.elementwise).toBeGreaterThanOrEqual(1);
  });

  it("CPU operands of a fused run are uploaded, as for an unfused kernel", async () => {
    const f: Fn = (x, b) => np.tanh(x!.add(b!)).mul(2);
    const x = rand([3, 4], 51);
    const b = rand([4], 52);
    const got = jit(f)(on("webgpu", x), on("cpu", b)) as Array;
    expect((got as unknown as { backend: { name: string } }).backend.name).toBe("webgpu");
    await expectClose([got], await onCpu(f, [x, b]), "mixed backends");
  });

  it("the pipeline cache: same shapes compile nothing new, even from a new jit", async () => {
    const f: Fn = (x, w, b) =>
      np.relu(x!.matmul(w!).add(b!)).mul(np.sigmoid(x!.sum({ axis: 1, keepdims: true })));
    const inputs = [rand([6, 4], 61), rand([4, 5], 62), rand([5], 63)];
    const again = await runJit(f, inputs); // the second call of a fresh jit
    expect(again.compiled).toBe(0);
    const d0 = dispatchStats();
    const fresh = leaves(jit(f)(...inputs.map((d) => on("webgpu", d))));
    await Promise.all(fresh.map((x) => x.data()));
    const d1 = dispatchStats();
    expect(d1.compiled - d0.compiled).toBe(0);
    expect(d1.cacheHits - d0.cacheHits).toBe(d1.dispatches - d0.dispatches);
    // Another bias length is another kernel (the row count is not baked in: it is launch data).
    const other = [rand([6, 4], 64), rand([4, 7], 65), rand([7], 66)];
    const d2 = dispatchStats();
    await Promise.all(leaves(jit(f)(...other.map((d) => on("webgpu", d)))).map((x) => x.data()));
    expect(dispatchStats().compiled - d2.compiled).toBeGreaterThan(0);
  });
  it("a run wider than the device's storage bindings runs as a few kernels, equal to the CPU", async () => {
    const limit = gpuDevice().limits.maxStorageBuffersPerShaderStage;
    // limit + 2 inputs, each joining the chain, and every other value returned: one kernel
    // would bind about 1.5 × limit buffers.
    const n = limit + 2;
    const f: Fn = (...xs) => {
      let v = np.tanh(xs[0]!);
      const outs: Array[] = [];
      for (let k = 1; k < n; k++) {
        v = np.add(np.mul(v, xs[k]!), 0.5);
        if (k % 2 === 0) outs.push(v);
      }
      return [...outs, np.exp(np.neg(np.abs(v)))];
    };
    const inputs = globalThis.Array.from({ length: n }, (_, k) => rand([3, 5], 100 + k, 1));
    const f0 = fusedStats();
    const r = await checkAgainstCpu(f, inputs, "wide run");
    expect(fusedStats().chunked - f0.chunked).toBeGreaterThan(0);
    // Unfused it would take about 2n kernels; chunked, a handful.
    expect(r.elementwise).toBeGreaterThanOrEqual(2);
    expect(r.dispatches).toBeLessThan(n / 2);
  });
});
