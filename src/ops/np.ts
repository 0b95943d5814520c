/** The `np` namespace: array creation plus every operation of the numpy layer. */
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
export * from "./numpy.js";
