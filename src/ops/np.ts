/** The `np` namespace: array creation plus every operation of the numpy layer. */

export { backendInfo, scope, toBackend, useBackend } from "./backend.js";
export { setThreads, threads } from "./cpu/threads.js";
export {
  arange,
  array,
  type CreateOptions,
  eye,
  fromTypedArray,
  full,
  linspace,
  type NestedValue,
  ones,
  onesLike,
  zeros,
  zerosLike,
} from "./creation.js";
export { einsum } from "./einsum.js";
export * from "./numpy.js";
export { poolStats } from "./webgpu/backend.js";
