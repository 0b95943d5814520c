/**
 * The backends every backend-level suite runs on. Suites use
 * `describe.each(testBackends())("... on %s", (backend) => { useTestBackend(backend); ... })`.
 * "webgpu" joins the list when test/webgpu/global-setup.ts found an adapter; where none is, the
 * setup prints one line saying why and how to enable it.
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

/**
 * For suites whose test code still reads values synchronously (`dataSync`, `tolist`, `item`) or
 * needs float64, which only the CPU backend has. They run on the CPU only until they are ported
 * to `await x.data()` and float32; the note on the WebGPU issue lists them.
 */
export function hostReadingSuiteBackends(): BackendName[] {
  return ["cpu"];
}
