/**
 * `nbi/core`: the parts of nbi that run anywhere JavaScript runs — browsers, Web Workers, Deno,
 * Node — with no Node built-in reachable from this entry, so it bundles for the browser and
 * tree-shakes: immutable arrays (`np`, `random`), the transforms (`grad`, `vmap`, `jvp`, `vjp`,
 * `jacfwd`, `jacrev`, `hessian`, `scan`, `jit`), bijectors and flows, featurizer networks,
 * optimizers and distributions. The NBI engine, its simulation store and the plots live in the
 * full entry, `nbi` (Node and Deno).
 *
 * ```ts
 * import { type Array, grad, np } from "nbi/core";
 * const f = (x: Array) => np.sum(np.tanh(x).mul(x));
 * grad(f)(np.array([1, 2, 3]));
 * ```
 *
 * @module nbi/core
 */
import * as tree from "./trace/tree.js";

export * as distributions from "./bijectors/distributions.js";
export * as bijectors from "./bijectors/index.js";
export { bijectorLaws } from "./bijectors/laws.js";
export { NbiError } from "./errors.js";
export * as featurizers from "./featurizers/index.js";
export * as np from "./ops/np.js";
export * as random from "./ops/random.js";
export * as optim from "./optim/index.js";
export type { ArrayLike, Axes, ReduceOptions, ShapedArray } from "./trace/array.js";
export { Array } from "./trace/array.js";
export type { BackendName } from "./trace/backend.js";
export type { DType } from "./trace/dtype.js";
export type { AxisSpec, GradOptions, ScanOptions, Tree, VmapOptions } from "./transforms/api.js";
export {
  grad,
  hessian,
  jacfwd,
  jacrev,
  jvp,
  makeJaxpr,
  scan,
  stopGradient,
  valueAndGrad,
  vjp,
  vmap,
} from "./transforms/api.js";
export type { CacheInfo, JitOptions, Jitted } from "./transforms/jit.js";
export { jit } from "./transforms/jit.js";
export { tree };
