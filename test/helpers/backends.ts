/**
 * The backends every backend-level suite runs on. Suites use
 * `describe.each(testBackends())("... on %s", (backend) => { useTestBackend(backend); ... })`.
 * "webgpu" joins the list when test/webgpu/global-setup.ts found an adapter; where none is, the
 * setup prints one line saying why and how to enable it.
 *
 * Suites read values with `await x.data()` (or `item` and `tolist` in values.ts), so one source
 * runs on both backends. Tolerances are the float32 ones each suite states, the same on both
 * backends: WebGPU (lavapipe) has met them unchanged, whether a suite compares a backend with
 * itself (scan against an unrolled loop, jit against eager), with closed forms and PyTorch's
 * values, or with the CPU's float32 results (bijector laws: rtol = atol = 2e-3). WebGPU differs
 * from the CPU by design where float→int casts saturate (the CPU truncates and wraps) and in
 * float64, which only the CPU has (WGSL has none): such cases stay CPU-only, each in a block
 * saying why.
 */
import { beforeAll, inject } from "vitest";
import type { BackendName } from "../../src/index.js";
import { np } from "../../src/index.js";

export function webgpuAvailable(): boolean {
  return inject("webgpuAvailable") === true;
}

export function testBackends(): BackendName[] {
  return webgpuAvailable() ? ["cpu", "webgpu"] : ["cpu"];
}

export function useTestBackend(name: BackendName): void {
  beforeAll(async () => {
    await np.useBackend(name);
  });
}
