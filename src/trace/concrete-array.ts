/**
 * Concrete arrays: arrays with data on a backend, the values the eval interpreter computes with
 * and every kernel takes and returns. Moving them between backends and scoping their WebGPU
 * memory is the ops layer's business (ops/backend.ts).
 */
import { Array } from "./array.js";
import type { Backend } from "./backend.js";
import type { DType, TypedArray } from "./dtype.js";
import type { Shape } from "./shape.js";
import { sizeOf } from "./shape.js";

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
