/**
 * WebGPU data movement that packs many pieces into one kernel: concatenation of up to 14 pieces
 * a kernel, and the leading-axis unstacking scan uses instead of a slice per step. Both move
 * values only, so they must equal the CPU exactly. Skipped (see global-setup.ts) where no
 * adapter exists.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Array as NbiArray, np, scan } from "../../src/index.js";
import { unstackLeading } from "../../src/ops/primitives/structural.js";
import { dispatchStats } from "../../src/ops/webgpu/dispatch.js";
import type { ConcreteArray } from "../../src/trace/concrete-array.js";
import { webgpuAvailable } from "../helpers/backends.js";
import { uniforms } from "../helpers/finite-diff.js";

const values = (n: number, seed: number) => uniforms(n, seed).map((u) => Math.round(100 * u));
const on = (backend: "cpu" | "webgpu", shape: number[], seed: number) =>
  np.fromTypedArray(
    Float32Array.from(
      values(
        shape.reduce((a, b) => a * b, 1),
        seed,
      ),
    ),
    shape,
    { backend },
  );

describe.skipIf(!webgpuAvailable())("webgpu concatenation and unstacking", () => {
  beforeAll(async () => {
    await np.useBackend("webgpu");
  });
  afterAll(async () => {
    await np.useBackend("cpu");
  });

  it("concatenates 31 pieces (empty ones among them) along each axis as the CPU does", async () => {
    for (const axis of [0, 1, 2]) {
      const shapes = Array.from({ length: 31 }, (_, k) => {
        const shape = [2, 3, 4];
        shape[axis] = k % 5 === 3 ? 0 : 1 + (k % 3);
        return shape;
      });
      const cpu = np.concatenate(
        shapes.map((s, k) => on("cpu", s, 10 * axis + k)),
        axis,
      );
      const d0 = dispatchStats().dispatches;
      const gpu = np.concatenate(
        shapes.map((s, k) => on("webgpu", s, 10 * axis + k)),
        axis,
      );
      // 25 non-empty pieces: a few kernels, not one each.
      expect(dispatchStats().dispatches - d0).toBeLessThanOrEqual(13);
      expect(gpu.shape).toEqual(cpu.shape);
      expect(Array.from(await gpu.data())).toEqual(Array.from(await cpu.data()));
    }
  });

  it("splits into 31 pieces (empty ones among them) along each axis as the CPU does, and back", async () => {
    for (const axis of [0, 1, 2]) {
      const sizes = Array.from({ length: 31 }, (_, k) => (k % 5 === 3 ? 0 : 1 + (k % 3)));
      const bounds = sizes
        .slice(0, -1)
        .map((_, k) => sizes.slice(0, k + 1).reduce((a, b) => a + b, 0));
      const shape = [2, 3, 4];
      shape[axis] = sizes.reduce((a, b) => a + b, 0);
      const cpu = np.split(on("cpu", shape, axis), bounds, axis);
      const x = on("webgpu", shape, axis);
      const d0 = dispatchStats().dispatches;
      const gpu = np.split(x, bounds, axis);
      expect(dispatchStats().dispatches - d0).toBeLessThanOrEqual(13);
      expect(gpu).toHaveLength(31);
      for (let k = 0; k < 31; k++) {
        expect(gpu[k]!.shape).toEqual(cpu[k]!.shape);
        expect(Array.from(await gpu[k]!.data())).toEqual(Array.from(await cpu[k]!.data()));
      }
      // Concatenating the pieces gives x back.
      const again = np.concatenate(gpu, axis);
      expect(Array.from(await again.data())).toEqual(Array.from(await x.data()));
    }
  });

  it("unstacks the leading axis into its slices in a few kernels", async () => {
    const x = on("webgpu", [20, 3, 5], 7) as ConcreteArray;
    const d0 = dispatchStats().dispatches;
    const pieces = unstackLeading(x);
    expect(dispatchStats().dispatches - d0).toBeLessThanOrEqual(10);
    const all = Array.from(await x.data());
    expect(pieces).toHaveLength(20);
    for (let i = 0; i < 20; i++) {
      expect(pieces[i]!.shape).toEqual([3, 5]);
      expect(Array.from(await pieces[i]!.data())).toEqual(all.slice(15 * i, 15 * (i + 1)));
    }
  });

  it("a scan over 20 steps with stacked outputs equals the CPU's", async () => {
    const body = (c: NbiArray, x: NbiArray): [NbiArray, NbiArray] => {
      const next = np.tanh(np.add(np.mul(c, 0.5), x));
      return [next, np.mul(next, 2)];
    };
    const run = (backend: "cpu" | "webgpu") =>
      scan(body, on(backend, [3, 4], 1).div(100), on(backend, [20, 3, 4], 2).div(100));
    const [cCpu, yCpu] = run("cpu");
    const [cGpu, yGpu] = run("webgpu");
    expect(yGpu.shape).toEqual([20, 3, 4]);
    const close = async (g: NbiArray, w: NbiArray) => {
      const [gv, wv] = [await g.data(), await w.data()];
      for (let i = 0; i < wv.length; i++) expect(Math.abs(gv[i]! - wv[i]!)).toBeLessThan(1e-6);
    };
    await close(cGpu, cCpu);
    await close(yGpu, yCpu);
  });
});
