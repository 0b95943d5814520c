/**
 * WebGPU-only behaviour: pooled memory stays flat over a long loop, async readback, float64
 * refusal, explicit moves between backends, and "auto". Skipped (see global-setup.ts) where no
 * adapter exists.
 */
import { describe, expect, it } from "vitest";
import { jit, type Array as NbiArray, NbiError, np, random } from "../../src/index.js";
import { gpuDevice } from "../../src/ops/webgpu/backend.js";
import { webgpuAvailable } from "../helpers/backends.js";

describe.skipIf(!webgpuAvailable())("webgpu backend", () => {
  it("10,000 small steps in np.scope keep the pool's counters bounded", async () => {
    await np.useBackend("webgpu");
    const w = np.array([
      [0.5, -0.25],
      [0.125, 1],
    ]);
    let x = np.array([[1, 2]]);
    const step = () => np.tanh(np.add(np.matmul(x, w), 0.1));
    // Inner scopes free each step's intermediates; the outer scope frees the carries the loop
    // dropped (they were created inside it), keeping only the last.
    const epoch = () => {
      for (let i = 0; i < 1000; i++) x = np.scope(step);
      return x;
    };
    x = np.scope(epoch);
    const before = np.poolStats();
    let mid = before;
    for (let e = 0; e < 10; e++) {
      x = np.scope(epoch);
      await x.data(); // one readback per epoch, as a training loop reads its loss
      if (e === 4) mid = np.poolStats();
    }
    const after = np.poolStats();
    // Each step's 3 intermediates (the 0.1 constant, matmul, add) go back at once, and each epoch's dropped carries when the
    // epoch's scope ends. What remains is the one carry per epoch that the loop drops outside
    // any scope: the garbage collector reclaims those.
    expect(after.releasedByScope - before.releasedByScope).toBeGreaterThanOrEqual(10_000 * 3);
    expect(after.created - before.created).toBeLessThanOrEqual(20);
    expect(after.created - mid.created).toBeLessThanOrEqual(6);
    expect(after.inUse - before.inUse).toBeLessThanOrEqual(12);
    const v = await x.data();
    expect(Number.isFinite(v[0]!)).toBe(true);
  }, 120_000);

  it("a jit first traced inside np.scope keeps its captured constants for later calls", async () => {
    await np.useBackend("webgpu");
    // relu's 0 and the 0.5 are constants made while tracing; the cache keeps them.
    const f = jit((x: NbiArray) => np.mul(np.maximum(x, 0), 0.5));
    const x = np.array([-2, 4]);
    const first = np.scope(() => f(x));
    expect(Array.from(await first.data())).toEqual([0, 2]);
    const again = np.scope(() => f(np.array([6, -1])));
    expect(Array.from(await again.data())).toEqual([3, 0]);
    expect(Array.from(await f(x).data())).toEqual([0, 2]);
  });

  it("reads back asynchronously; dataSync names `await x.data()`", async () => {
    await np.useBackend("webgpu");
    const x = np.array([1, 2, 3]);
    expect(Array.from(await np.mul(x, 2).data())).toEqual([2, 4, 6]);
    expect(() => x.dataSync()).toThrow(/await x\.data\(\)/);
  });

  it("refuses float64 with a clear error", async () => {
    await np.useBackend("webgpu");
    expect(() => np.array([1], { dtype: "float64" })).toThrow(NbiError);
    expect(() => np.array([1], { dtype: "float64" })).toThrow(/float64 is not supported/);
  });

  it("a GPU validation error makes the next readback throw instead of returning garbage", async () => {
    await np.useBackend("webgpu");
    // An invalid buffer (MAP_READ with STORAGE) is a validation error reported asynchronously.
    gpuDevice().createBuffer({ size: 16, usage: 0x0001 | 0x0080 });
    await new Promise((r) => setTimeout(r, 50));
    await expect(np.add(np.array([1, 2]), 1).data()).rejects.toThrow(/GPU reported an error/);
    // The error is reported once; later readbacks work again.
    expect(Array.from(await np.add(np.array([1, 2]), 1).data())).toEqual([2, 3]);
  });

  it("moves arrays explicitly with toBackend; CPU operands are uploaded", async () => {
    await np.useBackend("webgpu");
    const g = np.array([1, 2]);
    const c = np.array([10, 20], { backend: "cpu" });
    const sum = np.add(g, c);
    expect((sum as { backend?: { name: string } }).backend?.name).toBe("webgpu");
    const back = await np.toBackend(sum, "cpu");
    expect(Array.from(back.dataSync())).toEqual([11, 22]);
  });

  it("random bits (split keys) are bit-identical to the CPU's", async () => {
    await np.useBackend("webgpu");
    const g = await random.split(random.key(42), 7).data();
    await np.useBackend("cpu");
    const c = random.split(random.key(42), 7).dataSync();
    expect(Array.from(g)).toEqual(Array.from(c));
  });

  it("integer and categorical samplers give the same draws as the CPU (no float64 needed)", async () => {
    const draw = () => [
      random.randint(random.key(7), [64], -5, 7),
      random.randint(random.key(8), [16], -(2 ** 31), 2 ** 31 - 1),
      random.permutation(random.key(9), 20),
    ];
    await np.useBackend("webgpu");
    const g = await Promise.all(draw().map((x) => x.data()));
    await np.useBackend("cpu");
    const c = draw().map((x) => x.dataSync());
    g.forEach((v, i) => {
      expect(Array.from(v)).toEqual(Array.from(c[i]!));
    });
  });

  it('"auto" says what it chose and why', async () => {
    await np.useBackend("auto");
    const info = np.backendInfo();
    expect(info.choice.requested).toBe("auto");
    expect(info.choice.reason.length).toBeGreaterThan(0);
    if (info.choice.adapter?.software) expect(info.current).toBe("cpu");
    await np.useBackend("cpu");
  });
});
