/**
 * Array-core baseline benchmarks (eager CPU): matmul GFLOP/s, elementwise throughput and the
 * overhead of one eager op call. Prints a table; figures go to bench/RESULTS.md with the machine.
 * Usage: npm run bench [-- --quick]
 */
import os from "node:os";
import type { Array } from "../src/index.js";
import { np } from "../src/index.js";

const quick = process.argv.includes("--quick");

/** Median seconds per call over repeated timed batches, after a warm-up. */
function time(fn: () => unknown, minSeconds = quick ? 0.2 : 1): number {
  for (let i = 0; i < 3; i++) fn();
  const samples: number[] = [];
  const deadline = performance.now() + minSeconds * 1000;
  let reps = 1;
  while (performance.now() < deadline || samples.length < 5) {
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) fn();
    const dt = (performance.now() - t0) / 1000 / reps;
    samples.push(dt);
    if (dt * reps < 0.01) reps *= 2;
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)]!;
}

function randomArray(shape: number[], dtype: "float32" | "float64" = "float32"): Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = dtype === "float32" ? new Float32Array(n) : new Float64Array(n);
  for (let i = 0; i < n; i++) data[i] = Math.random() * 2 - 1;
  return np.fromTypedArray(data, shape);
}

const rows: [string, string, string][] = [];
function report(name: string, value: string, unit: string) {
  rows.push([name, value, unit]);
  console.log(`${name.padEnd(44)} ${value.padStart(10)} ${unit}`);
}

console.log(
  `nbi array-core benchmarks — ${os.cpus()[0]?.model ?? "cpu"} × ${os.cpus().length}, Node ${process.version}, ${np.threads()} threads\n`,
);

for (const n of [64, 256, 1024]) {
  const a = randomArray([n, n]);
  const b = randomArray([n, n]);
  const s = time(() => np.matmul(a, b), n === 1024 && quick ? 0.5 : undefined);
  report(`matmul float32 ${n}×${n}`, ((2 * n ** 3) / s / 1e9).toFixed(2), "GFLOP/s");
}
{
  const n = 256;
  const a = randomArray([n, n], "float64");
  const b = randomArray([n, n], "float64");
  const s = time(() => np.matmul(a, b));
  report(`matmul float64 ${n}×${n}`, ((2 * n ** 3) / s / 1e9).toFixed(2), "GFLOP/s");
}

// The float32 SIMD kernel split across worker threads (np.setThreads; the rows above use the
// default, one thread per core). Results are bitwise identical for any thread count.
{
  const threads = np.threads();
  for (const n of [256, 1024]) {
    const a = randomArray([n, n]);
    const b = randomArray([n, n]);
    for (const t of [1, 2]) {
      np.setThreads(t);
      const s = time(() => np.matmul(a, b), n === 1024 && quick ? 0.5 : undefined);
      report(
        `matmul float32 ${n}×${n}, ${t} thread${t > 1 ? "s" : ""}`,
        ((2 * n ** 3) / s / 1e9).toFixed(2),
        "GFLOP/s",
      );
    }
  }
  np.setThreads(threads);
}

const size = 1 << 20;
const x = randomArray([size]);
const y = randomArray([size]);
report(
  "add float32 (1M, same shape)",
  (size / time(() => np.add(x, y)) / 1e6).toFixed(0),
  "Melem/s",
);
report("mul by scalar float32 (1M)", (size / time(() => np.mul(x, 2)) / 1e6).toFixed(0), "Melem/s");
report("exp float32 (1M)", (size / time(() => np.exp(x)) / 1e6).toFixed(0), "Melem/s");
const row = randomArray([1024]);
const mat = randomArray([1024, 1024]);
report(
  "add broadcast [1024,1024]+[1024]",
  ((1024 * 1024) / time(() => np.add(mat, row)) / 1e6).toFixed(0),
  "Melem/s",
);
report("sum float32 (1M)", (size / time(() => np.sum(x)) / 1e6).toFixed(0), "Melem/s");
report(
  "sum axis 0 [1024,1024]",
  ((1024 * 1024) / time(() => np.sum(mat, { axis: 0 })) / 1e6).toFixed(0),
  "Melem/s",
);

const s1 = np.array(1);
const s2 = np.array(2);
report("eager op overhead (scalar add)", (time(() => np.add(s1, s2)) * 1e6).toFixed(2), "µs/op");
const v1 = randomArray([16]);
const v2 = randomArray([16]);
report(
  "eager op overhead (16-element mul)",
  (time(() => np.mul(v1, v2)) * 1e6).toFixed(2),
  "µs/op",
);
report(
  "eager op overhead (x.add(1), method + weak scalar)",
  (time(() => v1.add(1)) * 1e6).toFixed(2),
  "µs/op",
);

// ---------------------------------------------------------------------------------------------
// WebGPU column (where an adapter exists; on lavapipe it measures a CPU-emulated GPU).

async function timeAsync(
  fn: () => Promise<unknown>,
  minSeconds = quick ? 0.3 : 1,
): Promise<number> {
  for (let i = 0; i < 2; i++) await fn();
  const samples: number[] = [];
  const deadline = performance.now() + minSeconds * 1000;
  while (performance.now() < deadline || samples.length < 3) {
    const t0 = performance.now();
    await fn();
    samples.push((performance.now() - t0) / 1000);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)]!;
}

try {
  await np.useBackend("webgpu");
  const info = np.backendInfo();
  console.log(`\nWebGPU (${JSON.stringify(info.choice?.adapter ?? "adapter")}):`);
  const n = 256;
  const a = np.fromTypedArray(
    Float32Array.from({ length: n * n }, () => Math.random()),
    [n, n],
  );
  const b = np.fromTypedArray(
    Float32Array.from({ length: n * n }, () => Math.random()),
    [n, n],
  );
  const reps = 20;
  const s = await timeAsync(async () => {
    let c = a;
    for (let i = 0; i < reps; i++) c = np.matmul(a, b);
    await c.data();
  });
  report(
    "webgpu matmul float32 256×256 (20 per sync)",
    ((2 * n ** 3 * reps) / s / 1e9).toFixed(2),
    "GFLOP/s",
  );
  const big = np.fromTypedArray(
    Float32Array.from({ length: size }, () => Math.random()),
    [size],
  );
  const t = await timeAsync(async () => {
    await np.add(big, big).data();
  });
  report("webgpu add float32 1M (incl. readback)", (size / t / 1e6).toFixed(0), "Melem/s");
  const one = np.array([1]);
  const chain = 200;
  const d = await timeAsync(async () => {
    let v = one;
    for (let i = 0; i < chain; i++) v = np.add(v, one);
    await v.data();
  });
  report("webgpu dispatch overhead (dependent adds)", ((d / chain) * 1e6).toFixed(1), "µs/kernel");
  // The host's share alone: the time to record launches (independent adds of the same shapes,
  // in a scope as a training step runs), the GPU's execution excluded (it is awaited after).
  const launches = 512;
  const hostSamples: number[] = [];
  await timeAsync(async () => {
    const t0 = performance.now();
    const last = np.scope(() => {
      let v = one;
      for (let i = 0; i < launches; i++) v = np.add(one, one);
      return v;
    });
    hostSamples.push((performance.now() - t0) / 1000);
    await last.data();
  });
  hostSamples.sort((p, q) => p - q);
  const host = hostSamples[Math.floor(hostSamples.length / 2)]!;
  report(
    "webgpu host time per launch (recording)",
    ((host / launches) * 1e6).toFixed(1),
    "µs/kernel",
  );
} catch (e) {
  console.log(`\nWebGPU column skipped: ${(e as Error).message.split("\n")[0]}`);
}
