import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { np } from "../../src/index.js";
import { conv1d, conv1dGradInput, conv1dGradWeight } from "../../src/ops/cpu/conv1d.js";
import {
  PARALLEL_MIN_WORK,
  setThreads,
  shutdownThreads,
  splitRange,
  threadStats,
  threads,
  workerCount,
} from "../../src/ops/cpu/threads.js";
import { simdSupported } from "../../src/ops/cpu/wasm/encoder.js";
import { matmulSimd } from "../../src/ops/cpu/wasm/matmul-simd.js";

const initial = threads();
afterAll(() => {
  setThreads(initial);
  shutdownThreads();
});

function random(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2147483648 - 1;
  }
  return out;
}

/** The results of `run` on 1, 2 and 4 threads, as raw bytes. */
function acrossThreads(run: () => Float32Array | Float64Array): Uint8Array[] {
  return [1, 2, 4].map((t) => {
    setThreads(t);
    const r = run();
    return new Uint8Array(r.buffer.slice(r.byteOffset, r.byteOffset + r.byteLength));
  });
}

function expectSameBits(results: Uint8Array[]): void {
  for (const r of results.slice(1)) expect(Buffer.compare(r, results[0]!)).toBe(0);
}

const simd = simdSupported();

describe.runIf(simd)("thread-count invariance", () => {
  it("splitRange covers the range in unit-aligned, balanced parts", () => {
    expect(splitRange(40, 3, 4)).toEqual([
      [0, 12],
      [12, 24],
      [24, 40],
    ]);
    expect(splitRange(6, 4, 4)).toEqual([
      [0, 0],
      [0, 4],
      [4, 4],
      [4, 6],
    ]);
  });

  it("matmul: 1, 2 and 4 threads give identical bits (transposed operands too)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 260 }),
        fc.integer({ min: 1, max: 200 }),
        fc.integer({ min: 1, max: 300 }),
        fc.boolean(),
        fc.boolean(),
        fc.integer({ min: 1, max: 2 }),
        fc.integer(),
        (m, k, n, transA, transB, batch, seed) => {
          const aShape = transA ? [batch, k, m] : [batch, m, k];
          const bShape = transB ? [n, k] : [k, n];
          const a = random(batch * m * k, seed);
          const b = random(k * n, seed ^ 0x5bd1e995);
          const results = acrossThreads(
            () => matmulSimd(a, aShape, b, bShape, transA, transB).data,
          );
          expectSameBits(results);
        },
      ),
      { numRuns: 25, seed: 7 },
    );
  });

  it("large products run on several threads; small ones stay on one", () => {
    setThreads(2);
    const before = threadStats();
    const big = 160; // 160³ ≈ 4.1M multiply-adds, above the threshold
    expect(big ** 3).toBeGreaterThanOrEqual(PARALLEL_MIN_WORK);
    matmulSimd(random(big * big, 1), [big, big], random(big * big, 2), [big, big]);
    const mid = threadStats();
    expect(mid.parallel).toBe(before.parallel + 1);
    expect(workerCount()).toBe(1);
    const small = 64; // 64³ = 262144 multiply-adds
    matmulSimd(random(small * small, 3), [small, small], random(small * small, 4), [small, small]);
    const after = threadStats();
    expect(after.parallel).toBe(mid.parallel);
    expect(after.serial).toBe(mid.serial + 1);
    // One thread: nothing is split, however large.
    setThreads(1);
    expect(workerCount()).toBe(0);
    matmulSimd(random(big * big, 1), [big, big], random(big * big, 2), [big, big]);
    expect(threadStats().parallel).toBe(after.parallel);
  });

  it("conv1d and its adjoints: 1, 2 and 4 threads give identical bits", () => {
    // Stride 1 runs the implicit GEMM (indirect kernel), stride 2 the packed one.
    for (const stride of [1, 2]) {
      const [n, c, l, o, k] = [8, 24, 200, 64, 5];
      const opts = { stride, padding: [2, 2] as const, dilation: 1 };
      const x = random(n * c * l, 11);
      const w = random(o * c * k, 12);
      const y = conv1d(x, [n, c, l], w, [o, c, k], opts);
      expect(o * c * k * (y.data.length / o)).toBeGreaterThanOrEqual(PARALLEL_MIN_WORK);
      const g = random(y.data.length, 13);
      expectSameBits(acrossThreads(() => conv1d(x, [n, c, l], w, [o, c, k], opts).data));
      expectSameBits(
        acrossThreads(
          () => conv1dGradInput(g, y.shape, w, [o, c, k], { ...opts, inputLength: l }).data,
        ),
      );
      expectSameBits(
        acrossThreads(
          () => conv1dGradWeight(x, [n, c, l], g, y.shape, { ...opts, kernelSize: k }).data,
        ),
      );
    }
  });

  it("np.matmul agrees with itself across thread counts", () => {
    const a = np.fromTypedArray(random(300 * 200, 5), [300, 200]);
    const b = np.fromTypedArray(random(200 * 100, 6), [200, 100]);
    expectSameBits(acrossThreads(() => np.matmul(a, b).dataSync() as Float32Array));
  });
});

describe("thread configuration", () => {
  it("rejects a thread count that is not a positive integer", () => {
    expect(() => setThreads(0)).toThrow(/positive integer/);
    expect(() => setThreads(1.5)).toThrow(/positive integer/);
  });

  it("reads NBI_THREADS, and the process exits with workers still running", () => {
    const module = fileURLToPath(new URL("../../src/ops/cpu/threads.ts", import.meta.url));
    const matmul = fileURLToPath(new URL("../../src/ops/cpu/wasm/matmul-simd.ts", import.meta.url));
    const script = `
      const t = await import(${JSON.stringify(module)});
      const { matmulSimd } = await import(${JSON.stringify(matmul)});
      const n = 256;
      const a = new Float32Array(n * n).fill(1);
      const c = matmulSimd(a, [n, n], a, [n, n]).data;
      console.log(t.threads(), t.workerCount(), c[0]);
    `;
    const r = spawnSync(
      process.execPath,
      ["--import", "tsx", "--input-type=module", "-e", script],
      {
        env: { ...process.env, NBI_THREADS: "3" },
        encoding: "utf8",
        timeout: 30_000,
      },
    );
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const expected = simd ? "3 2 256" : "3 0 256";
    expect(r.stdout.trim()).toBe(expected);
  });
});
