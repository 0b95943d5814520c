/**
 * The one module shape of nbi's networks: featurizers and their layers, MADE and the flows are
 * each an `init(key) → params` and `apply(params, ...input)` pair over a parameter pytree.
 * Static configuration (sizes, masks, depth, the transformer) lives in the closure that made the
 * module, never in the tree, so `grad`, `vmap` and `jit` see only arrays. Declared here, below
 * both `bijectors/` and `featurizers/`, so that each of them instantiates this interface instead
 * of declaring its own.
 */
import type { Array } from "../trace/array.js";

/** Options of a module's `init`. */
export interface InitOptions {
  /** dtype of the parameters (default float32; float64 on the CPU backend for gradient checks). */
  dtype?: "float32" | "float64";
}

/**
 * A parameterised network: parameters `P` from a PRNG key, and a pure function of
 * (params, ...input) → output. `In` is the tuple of `apply`'s arguments after the params, so
 * one shape covers a featurizer (`[x: Array]`), a MADE (`[y: Array, context?: Array]`) and a
 * flow, whose `apply` is its log density (`[theta: Array, context?: Array]`).
 *
 * @example
 * ```ts
 * const initAndApply = <P, In extends readonly unknown[], Out>(
 *   m: ParamModule<P, In, Out>, key: Array, ...input: In
 * ): Out => m.apply(m.init(key), ...input);
 * ```
 */
export interface ParamModule<P, In extends readonly unknown[] = [x: Array], Out = Array> {
  /** Fresh parameters from a PRNG key (float32 unless `options.dtype` says otherwise). */
  init(key: Array, options?: InitOptions): P;
  /** The output for the input: a pure function of (params, ...input), so `grad`, `vmap` and `jit` apply. */
  apply(params: P, ...input: In): Out;
}
