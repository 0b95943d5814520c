import { NbiError } from "../errors.js";
import { cpuBackend } from "./cpu/backend.js";
import type { DType, TypedArray } from "./dtype.js";

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

/**
 * Makes `name` the backend new arrays are created on. Async because GPU backends acquire a
 * device; "cpu" is always available.
 */
export async function useBackend(name: BackendName): Promise<Backend> {
  setDefaultBackend(name);
  return getBackend(name);
}

/** Which backend is the default, and which are registered. */
export function backendInfo(): { current: BackendName; available: BackendName[] } {
  return { current, available: [...registry.keys()] };
}
