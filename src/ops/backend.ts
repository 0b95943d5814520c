/**
 * Choosing and moving between backends: `np.useBackend` (which initialises WebGPU on demand and
 * registers it with the trace core's registry), `np.backendInfo`, `np.toBackend` and `np.scope`.
 * The registry itself, and the `Backend` record, live in trace/backend.ts, below everything.
 */
import { NbiError } from "../errors.js";
import { Array } from "../trace/array.js";
import {
  type Backend,
  type BackendName,
  defaultBackend,
  getBackend,
  registerBackend,
  registeredBackends,
  runScoped,
  setDefaultBackend,
} from "../trace/backend.js";
import { ConcreteArray, fromHost } from "../trace/concrete-array.js";

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

/**
 * Whether jit's fused groups get WebGPU kernels; NBI_GPU_FUSION=0 leaves the WebGPU backend
 * without fusion, so groups placed there run equation by equation (to compare against the
 * unfused kernels; the CPU's fused loops are unaffected).
 */
const gpuFusion = globalThis.process?.env?.NBI_GPU_FUSION !== "0";

/** Initialises the WebGPU backend (acquires the device once) and registers it. */
async function initWebGpu(): Promise<NonNullable<BackendChoice["adapter"]>> {
  const { acquireDevice } = await import("./webgpu/device.js");
  const { setGpuContext, webgpuBackend } = await import("./webgpu/backend.js");
  const { webgpuFusion } = await import("./webgpu/fused.js");
  const ctx = await acquireDevice();
  setGpuContext(ctx, gpuFusion ? webgpuFusion : undefined);
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
  return defaultBackend();
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
  return { current: defaultBackend().name, available: registeredBackends(), choice };
}

/**
 * Moves (copies) an array to another backend: `await np.toBackend(x, "cpu")`. Async because
 * leaving WebGPU needs a readback. Operations never move WebGPU data to the CPU by themselves
 * (see `useBackend`).
 *
 * @example
 * ```ts
 * await np.useBackend("webgpu");
 * const y = np.ones([3]).mul(2); // on WebGPU
 * const onCpu = await np.toBackend(y, "cpu");
 * onCpu.tolist(); // [2, 2, 2]
 * ```
 */
export async function toBackend(x: Array, name: BackendName): Promise<ConcreteArray> {
  if (!(x instanceof ConcreteArray)) {
    throw new NbiError(
      `toBackend: x expected a concrete array, got a traced value of shape [${x.shape.join(", ")}] ` +
        "(move arrays outside transformed functions)",
    );
  }
  const target = getBackend(name);
  if (x.backend === target) return x;
  const data = await x.data();
  return fromHost(data, x.shape, x.dtype, target);
}

/**
 * Runs `fn` and frees, as soon as it returns, the WebGPU buffers of every array created inside it
 * that its result (any pytree of arrays) does not hold: for tight loops that allocate faster than
 * the garbage collector reclaims. Arrays created inside and not returned must not be used
 * afterwards (doing so throws). `fn` must be synchronous. A no-op on the CPU backend. (Each
 * backend with explicit memory scopes, `Backend.scopes`, takes part.)
 *
 * @example
 * ```ts
 * let w = np.zeros([1000]);
 * for (let i = 0; i < 100; i++) w = np.scope(() => w.add(np.ones([1000]).mul(0.1)));
 * ```
 */
export function scope<T>(fn: () => T): T {
  const result = runScoped(fn, (r, backend) => {
    const held: unknown[] = [];
    const walk = (v: unknown): void => {
      if (v instanceof ConcreteArray) {
        if (v.backend === backend) held.push(v.buffer);
      } else if (globalThis.Array.isArray(v)) v.forEach(walk);
      else if (v !== null && typeof v === "object" && !(v instanceof Array)) {
        Object.values(v).forEach(walk);
      }
    };
    walk(r);
    return held;
  });
  if (result instanceof Promise) {
    throw new NbiError("scope: fn expected a synchronous function, got one returning a Promise");
  }
  return result;
}
