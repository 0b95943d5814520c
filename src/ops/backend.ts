import { NbiError } from "../errors.js";
import { cpuBackend } from "./cpu/backend.js";
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

/** What `useBackend` chose and why (for "auto", and for reporting). */
export interface BackendChoice {
  /** What `useBackend` was asked for. */
  requested: BackendName | "auto";
  /** The backend it made the default. */
  chosen: BackendName;
  /** Why, in words (for "auto": the adapter found, or why WebGPU was unavailable). */
  reason: string;
  /** The GPU adapter, when WebGPU was initialised. */
  adapter?: {
    api: string;
    vendor: string;
    architecture: string;
    device: string;
    description: string;
    software: boolean;
  };
}

let choice: BackendChoice = {
  requested: "cpu",
  chosen: "cpu",
  reason: "the default until np.useBackend is called",
};

/** Initialises the WebGPU backend (acquires the device once) and registers it. */
async function initWebGpu(): Promise<NonNullable<BackendChoice["adapter"]>> {
  const { acquireDevice } = await import("./webgpu/device.js");
  const { setGpuContext, webgpuBackend } = await import("./webgpu/backend.js");
  const ctx = await acquireDevice();
  setGpuContext(ctx);
  registerBackend(webgpuBackend);
  return ctx.info;
}

/**
 * Makes `name` the backend new arrays are created on. Async because WebGPU acquires a device;
 * "cpu" is always available. "webgpu" throws an NbiError saying why it is unavailable (no
 * adapter, no Vulkan driver, Mesa too old, package missing) and how to fix it. "auto" picks
 * WebGPU on a hardware adapter and the CPU otherwise (software adapters such as lavapipe are
 * slower than the CPU backend for small models); `backendInfo().choice` says what and why.
 *
 * Arrays of two backends in one operation: the operation runs on WebGPU and uploads the CPU
 * operands (a synchronous, cheap copy; this also lets constants captured by `jit` on the CPU
 * serve WebGPU calls). Nothing moves from WebGPU to the CPU implicitly, since that needs an
 * async readback: use `await np.toBackend(x, "cpu")`.
 *
 * @example
 * ```ts
 * await np.useBackend("auto");
 * console.log(np.backendInfo().choice.reason);
 * const x = np.ones([3]); // on the chosen backend
 * ```
 */
export async function useBackend(name: BackendName | "auto"): Promise<Backend> {
  if (name === "cpu") {
    setDefaultBackend("cpu");
    choice = { requested: "cpu", chosen: "cpu", reason: "requested" };
  } else if (name === "webgpu") {
    const adapter = await initWebGpu();
    setDefaultBackend("webgpu");
    choice = { requested: "webgpu", chosen: "webgpu", reason: "requested", adapter };
  } else if (name === "auto") {
    let adapter: BackendChoice["adapter"];
    let reason: string;
    try {
      adapter = await initWebGpu();
      reason = adapter.software
        ? `the WebGPU adapter is a software one (${adapter.description || adapter.device}), ` +
          'slower than the CPU backend; request "webgpu" to use it anyway'
        : `hardware WebGPU adapter: ${adapter.vendor} ${adapter.description || adapter.device}`;
    } catch (e) {
      reason = `WebGPU unavailable: ${(e as Error).message}`;
    }
    const chosen: BackendName = adapter && !adapter.software ? "webgpu" : "cpu";
    setDefaultBackend(chosen);
    choice = adapter
      ? { requested: "auto", chosen, reason, adapter }
      : { requested: "auto", chosen, reason };
  } else {
    throw new NbiError(
      `useBackend: name expected "cpu", "webgpu" or "auto", got ${JSON.stringify(name)}`,
    );
  }
  return getBackend(current);
}

/**
 * Which backend is the default, which are registered, and what useBackend chose and why.
 *
 * @example
 * ```ts
 * const { current, available } = np.backendInfo();
 * console.log(current, available); // cpu [ 'cpu' ]
 * ```
 */
export function backendInfo(): {
  /** The backend new arrays are created on. */
  current: BackendName;
  /** The backends initialised so far ("cpu" always; "webgpu" once `useBackend` has acquired it). */
  available: BackendName[];
  /** The last `useBackend` request, what it chose, and why. */
  choice: BackendChoice;
} {
  return { current, available: [...registry.keys()], choice };
}
