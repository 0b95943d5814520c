/**
 * The backend registry: what a backend is (memory plus a way to read it back), the built-in CPU
 * backend, and which backend new arrays are created on. It sits in the trace core, below the
 * kernels, because concrete arrays and the eval interpreter need a backend and nothing more; the
 * WebGPU backend registers itself here when `np.useBackend` (ops/backend.ts) initialises it.
 */
import { NbiError } from "../errors.js";
import type { DType, TypedArray } from "./dtype.js";

/** Where arrays live and kernels run: "cpu" (typed arrays, always available) or "webgpu". */
export type BackendName = "cpu" | "webgpu";

/**
 * A backend owns memory and runs kernels; it knows nothing of transforms. Kernels themselves are
 * declared with their primitives (each primitive record lists its implementation per backend).
 */
export interface Backend {
  readonly name: BackendName;
  /** Takes ownership of host data (the caller must not mutate it afterwards). */
  fromHost(data: TypedArray, dtype: DType): unknown;
  /** Copies a buffer back to the host. */
  read(buffer: unknown, dtype: DType, size: number): Promise<TypedArray>;
  /** Synchronous read where the backend can do it; others throw an error naming `await x.data()`. */
  readSync(buffer: unknown, dtype: DType, size: number): TypedArray;
}

/** The CPU backend: buffers are plain typed arrays that the garbage collector frees. */
export const cpuBackend: Backend = {
  name: "cpu",
  fromHost(data: TypedArray, _dtype: DType): unknown {
    return data;
  },
  read(buffer: unknown): Promise<TypedArray> {
    return Promise.resolve((buffer as TypedArray).slice());
  },
  readSync(buffer: unknown): TypedArray {
    return (buffer as TypedArray).slice();
  },
};

const registry = new Map<BackendName, Backend>([["cpu", cpuBackend]]);
let current: BackendName = "cpu";

export function registerBackend(backend: Backend): void {
  registry.set(backend.name, backend);
}

export function getBackend(name: BackendName = current): Backend {
  const backend = registry.get(name);
  if (!backend) {
    throw new NbiError(
      `getBackend: backend expected one of [${[...registry.keys()].join(", ")}], got "${name}" ` +
        "(initialise it first, e.g. `await np.useBackend(name)`)",
    );
  }
  return backend;
}

/** The backend new arrays are created on. */
export function defaultBackend(): Backend {
  return getBackend(current);
}

export function setDefaultBackend(name: BackendName): void {
  getBackend(name);
  current = name;
}

/** The backends registered so far, in registration order ("cpu" first). */
export function registeredBackends(): BackendName[] {
  return [...registry.keys()];
}
