import type { Backend } from "../backend.js";
import type { ConcreteArray } from "../concrete-array.js";
import type { DType, TypedArray } from "../dtype.js";

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

/** The typed array behind a CPU array, without a copy (kernels only; never exposed). */
export function cpuData(x: ConcreteArray): TypedArray {
  return x.buffer as TypedArray;
}
