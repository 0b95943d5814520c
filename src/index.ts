/**
 * nbi: JAX-style composable array transforms (grad, vmap, jvp, ...) on a CPU backend, and
 * neural posterior estimation for astronomers built on them.
 *
 * This is the full entry, for Node and Deno: everything of `nbi/core` (arrays, transforms,
 * bijectors, flows, featurizers, optimizers, distributions), plus the NBI engine with its
 * on-disk simulation store and worker-thread simulators, the priors and the plots. For browsers,
 * import `nbi/core`, which reaches no Node built-in.
 *
 * ```ts
 * import { type Array, grad, np } from "nbi";
 * const f = (x: Array) => np.sum(np.tanh(x).mul(x));
 * grad(f)(np.array([1, 2, 3]));
 * ```
 *
 * @module nbi
 */
export * from "./core.js";
export { NBI } from "./inference/engine.js";
export * as inference from "./inference/index.js";
export * as priors from "./inference/priors.js";
export * as plots from "./plots/index.js";
