/**
 * The shapes every featurizer and layer shares: a module is an `init(key) → params` and
 * `apply(params, x)` pair over a parameter pytree, the one-input case of the module shape that
 * MADE and the flows share too (`ParamModule`, `transforms/module.ts`). Static configuration
 * (sizes, kernel, depth) lives in the closure that made the module, never in the tree, so `grad`,
 * `vmap` and `jit` see only arrays.
 */
import type { Array } from "../trace/array.js";
import type { ParamModule } from "../transforms/module.js";

export type { InitOptions, ParamModule } from "../transforms/module.js";

/**
 * A layer or network: parameters from a PRNG key, and a pure function of (params, x). The
 * one-input `ParamModule`: `init(key, options?) → P` (PyTorch's default initialisation for nbi's
 * layers) and `apply(params, x: X) → Y`.
 */
export type Module<P, X = Array, Y = Array> = ParamModule<P, [x: X], Y>;

/**
 * A featurizer maps observations `x` (batch × channels × length, or one example without the
 * batch axis) to feature vectors (batch × dimOut, or dimOut). Any object of this shape works
 * wherever a featurizer is expected: a custom network with its own `init`.
 */
export interface Featurizer<P = unknown> extends Module<P> {
  /** Length of the feature vector that `apply` returns. */
  readonly dimOut: number;
}
