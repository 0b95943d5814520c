/**
 * WebGPU against the CPU backend, for a machine that has a GPU but no Node toolchain (bundled by
 * scripts/device/pack.sh, run by scripts/device/run.sh): products of several shapes (the tiled
 * and register-blocked kernels, transposed operands), jit-fused elementwise runs and a matmul
 * epilogue, grad and vmap, and a jit-compiled MLP training step. Prints the adapter, each check's
 * largest relative error and PASS or FAIL; exits 1 when any check fails. The vitest suite is the
 * real test; this is its portable subset.
 */
import { type Array, grad, jit, np, random, valueAndGrad, vmap } from "../../src/index.js";

type Fn = (...xs: Array[]) => Array;

async function host(x: Array): Promise<Float32Array> {
  return Float32Array.from(await x.data());
}

/** Runs f on both backends from the same host data; returns the largest relative error. */
async function compare(f: Fn, shapes: number[][], seed: number): Promise<number> {
  await np.useBackend("cpu");
  const inputs = shapes.map((s, i) => random.normal(random.key(seed + i), s));
  const data = await Promise.all(inputs.map(host));
  const want = await host(f(...inputs));
  await np.useBackend("webgpu");
  const onGpu = data.map((d, i) => np.fromTypedArray(d, shapes[i]!));
  const got = await host(f(...onGpu));
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    worst = Math.max(worst, Math.abs(got[i]! - want[i]!) / (1 + Math.abs(want[i]!)));
  }
  return got.length === want.length ? worst : Number.POSITIVE_INFINITY;
}

const checks: [string, Fn, number[][]][] = [
  [
    "matmul 33×70 · 70×45 (tiled)",
    (a, b) => np.matmul(a!, b!),
    [
      [33, 70],
      [70, 45],
    ],
  ],
  [
    "matmul 512×256 · 256×384 (blocked)",
    (a, b) => np.matmul(a!, b!),
    [
      [512, 256],
      [256, 384],
    ],
  ],
  [
    "matmul aᵀ·bᵀ 130×37 / 200×37",
    (a, b) => np.matmul(a!.T, b!.T),
    [
      [37, 130],
      [200, 37],
    ],
  ],
  [
    "batched matmul 4×96×80 · 80×72",
    (a, b) => np.matmul(a!, b!),
    [
      [4, 96, 80],
      [80, 72],
    ],
  ],
  [
    "jit relu(x·w + b) (matmul epilogue)",
    jit((x: Array, w: Array, b: Array) => np.relu(x.matmul(w).add(b))),
    [[256, 64], [64, 96], [96]],
  ],
  [
    "jit fused chain with broadcasting",
    jit((x: Array, r: Array) => np.tanh(x.mul(2).add(r)).mul(x).sub(np.exp(x.neg()))),
    [[300, 257], [257]],
  ],
  [
    "grad of a tanh network",
    (x: Array, w: Array) => grad((v: Array) => np.sum(np.tanh(x.matmul(v))))(w),
    [
      [64, 32],
      [32, 16],
    ],
  ],
  [
    "vmap of a per-row product",
    (x: Array, w: Array) => vmap((r: Array) => r.matmul(w))(x),
    [
      [50, 20],
      [20, 30],
    ],
  ],
  [
    "jit MLP training step (loss and gradients)",
    (x: Array, y: Array, w1: Array, w2: Array) => {
      const loss = (p: Array[], xx: Array, yy: Array) =>
        np.mean(np.square(np.tanh(xx.matmul(p[0]!)).matmul(p[1]!).sub(yy)));
      const [value, [g1, g2]] = jit(valueAndGrad(loss))([w1, w2], x, y);
      return np.concatenate([np.reshape(value, [1]), np.ravel(g1!), np.ravel(g2!)]);
    },
    [
      [256, 16],
      [256, 1],
      [16, 128],
      [128, 1],
    ],
  ],
];

await np.useBackend("webgpu");
console.log("adapter:", JSON.stringify(np.backendInfo()));
const tolerance = 1e-3;
let failed = 0;
for (const [i, [name, f, shapes]] of checks.entries()) {
  const err = await compare(f, shapes, 100 * i);
  const ok = err <= tolerance;
  if (!ok) failed++;
  console.log(`${ok ? "PASS" : "FAIL"} ${name}: max relative error ${err.toExponential(2)}`);
}
console.log(failed === 0 ? "all checks passed" : `${failed} checks failed`);
process.exitCode = failed === 0 ? 0 : 1;
