import { NbiError } from "../errors.js";
import { Array } from "./array.js";
import { type Backend, type BackendName, getBackend } from "./backend.js";
import type { DType, TypedArray } from "./dtype.js";
import type { Shape } from "./shape.js";
import { sizeOf } from "./shape.js";
import { type GpuBuf, runScoped } from "./webgpu/backend.js";

/** An array with real data on a backend. Immutable: kernels always write fresh buffers. */
export class ConcreteArray extends Array {
  constructor(
    readonly shape: Shape,
    readonly dtype: DType,
    readonly backend: Backend,
    /** Backend-owned storage: a typed array on the CPU, a GPU buffer on WebGPU. */
    readonly buffer: unknown,
  ) {
    super();
  }

  data(): Promise<TypedArray> {
    return this.backend.read(this.buffer, this.dtype, sizeOf(this.shape));
  }

  dataSync(): TypedArray {
    return this.backend.readSync(this.buffer, this.dtype, sizeOf(this.shape));
  }
}

/** Wraps host data as a concrete array on a backend (taking ownership of `data`). */
export function fromHost(
  data: TypedArray,
  shape: Shape,
  dtype: DType,
  backend: Backend,
): ConcreteArray {
  return new ConcreteArray([...shape], dtype, backend, backend.fromHost(data, dtype));
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
 * afterwards (doing so throws). `fn` must be synchronous. A no-op on the CPU backend.
 *
 * @example
 * ```ts
 * let w = np.zeros([1000]);
 * for (let i = 0; i < 100; i++) w = np.scope(() => w.add(np.ones([1000]).mul(0.1)));
 * ```
 */
export function scope<T>(fn: () => T): T {
  return runScoped(fn, (result) => {
    const held: GpuBuf[] = [];
    const walk = (v: unknown): void => {
      if (v instanceof ConcreteArray) {
        if (v.backend.name === "webgpu") held.push(v.buffer as GpuBuf);
      } else if (globalThis.Array.isArray(v)) v.forEach(walk);
      else if (v !== null && typeof v === "object" && !(v instanceof Array)) {
        Object.values(v).forEach(walk);
      }
    };
    walk(result);
    return held;
  });
}
