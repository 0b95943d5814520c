/**
 * The WebGPU launch cache (launch-cache.ts): a step's repeated kernels reuse their meta buffers,
 * results stay equal to the CPU backend's through a pool trim and through the
 * cache starting over. Skipped (see global-setup.ts) where no adapter exists.
 */
import { describe, expect, it } from "vitest";
import { type Array as NbiArray, np } from "../../src/index.js";
import { trimPool } from "../../src/ops/webgpu/backend.js";
import { launchCacheStats, META_CACHE_LIMIT } from "../../src/ops/webgpu/launch-cache.js";
import { webgpuAvailable } from "../helpers/backends.js";

const w = [
  [0.5, -0.25, 1],
  [0.125, 1, -2],
];
const x0 = [
  [1, 2],
  [-3, 0.5],
];

/** One step of a small network, on the current backend, scoped as a training loop scopes it. */
function step(x: NbiArray): NbiArray {
  return np.scope(() => np.tanh(np.add(np.matmul(x, np.array(w)), 0.1)));
}

/** WGSL's tanh and the CPU's may differ in the last bits. */
function expectClose(got: ArrayLike<number>, want: readonly number[]): void {
  expect(got.length).toBe(want.length);
  for (const [i, v] of want.entries()) expect(Math.abs(got[i]! - v)).toBeLessThan(1e-6);
}

async function onCpu(): Promise<number[]> {
  await np.useBackend("cpu");
  return Array.from(await step(np.array(x0)).data());
}

describe.skipIf(!webgpuAvailable())("webgpu launch caches", () => {
  it("repeated steps reuse their meta buffers, with the CPU's results", async () => {
    const expected = await onCpu();
    await np.useBackend("webgpu");
    const x = np.array(x0);
    await step(x).data();
    const before = launchCacheStats();
    for (let i = 0; i < 50; i++) expectClose(await step(x).data(), expected);
    const after = launchCacheStats();
    // The same shapes every step: no meta content is new after the first.
    expect(after.metaUploads - before.metaUploads).toBe(0);
    expect(after.metaHits - before.metaHits).toBeGreaterThanOrEqual(50 * 2);
  });

  it("after a pool trim destroys the free buffers, results are unchanged", async () => {
    const expected = await onCpu();
    await np.useBackend("webgpu");
    const x = np.array(x0);
    await step(x).data();
    trimPool();
    const before = launchCacheStats();
    for (let i = 0; i < 3; i++) expectClose(await step(x).data(), expected);
    // The meta words are still on the GPU: the pool's buffers are not the cache's.
    expect(launchCacheStats().metaUploads - before.metaUploads).toBe(0);
  });

  it("more distinct shapes than the meta cache holds start it over, results unchanged", async () => {
    await np.useBackend("webgpu");
    const n = META_CACHE_LIMIT + 64;
    const before = launchCacheStats();
    let pending: { a: NbiArray; n: number }[] = [];
    const check = async () => {
      for (const { a, n: len } of pending) {
        const v = await a.data();
        expect(v.length).toBe(len);
        expect(v[0]).toBe(2);
        expect(v[len - 1]).toBe(2 * len);
      }
      pending = [];
    };
    for (let len = 1; len <= n; len++) {
      // Lengths 1..n: every launch's meta words are new.
      const a = np.mul(np.arange(1, len + 1, 1, { dtype: "float32" }), 2);
      pending.push({ a, n: len });
      if (pending.length === 256) await check();
    }
    await check();
    expect(launchCacheStats().metaUploads - before.metaUploads).toBeGreaterThanOrEqual(n);
  }, 120_000);
});
