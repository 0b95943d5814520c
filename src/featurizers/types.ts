/**
 * The shapes every featurizer and layer shares: a module is an `init(key) → params` and
 * `apply(params, x)` pair over a parameter pytree. Static configuration (sizes, kernel, depth)
 * lives in the closure that made the module, never in the tree, so `grad`, `vmap` and `jit`
 * see only arrays.
 */
import type { Array } from "../trace/array.js";

/** Options of a module's `init`. */
export interface InitOptions {
  /** dtype of the parameters (default float32; float64 on the CPU backend for gradient checks). */
  dtype?: "float32" | "float64";
}

/** A layer or network: parameters from a PRNG key, and a pure function of (params, x). */
export interface Module<P, X = Array, Y = Array> {
  /** Fresh parameters from a PRNG key (PyTorch's default initialisation for nbi's layers). */
  init(key: Array, options?: InitOptions): P;
  /** The output for x: a pure function of (params, x), so `grad`, `vmap` and `jit` apply. */
  apply(params: P, x: X): Y;
}

/**
 * A featurizer maps observations `x` (batch × channels × length, or one example without the
 * batch axis) to feature vectors (batch × dimOut, or dimOut). Any object of this shape works
 * wherever a featurizer is expected: a custom network with its own `init`.
 */
export interface Featurizer<P = unknown> extends Module<P> {
  /** Length of the feature vector that `apply` returns. */
  readonly dimOut: number;
}
