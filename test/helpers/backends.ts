/**
 * The backends every backend-level suite runs on. Suites use
 * `describe.each(testBackends())("... on %s", (backend) => { useTestBackend(backend); ... })`.
 * The WebGPU backend joins this list when it exists and an adapter is present; where none is,
 * it is skipped with one line saying why.
 */
import { beforeAll } from "vitest";
import type { BackendName } from "../../src/index.js";
import { np } from "../../src/index.js";

export function testBackends(): BackendName[] {
  return ["cpu"];
}

export function useTestBackend(name: BackendName): void {
  beforeAll(async () => {
    await np.useBackend(name);
  });
}
