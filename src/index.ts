/**
 * nbi: JAX-style composable array transforms (grad, vmap, jvp, ...) on a CPU backend, and
 * neural posterior estimation for astronomers built on them.
 *
 * ```ts
 * import { np, grad } from "nbi";
 * const f = (x: Array) => np.sum(np.tanh(x).mul(x));
 * grad(f)(np.array([1, 2, 3]));
 * ```
 */
import * as tree from "./transforms/tree.js";

export * as distributions from "./bijectors/distributions.js";
export * as bijectors from "./bijectors/index.js";
export { bijectorLaws } from "./bijectors/laws.js";
export { NbiError } from "./errors.js";
export * as featurizers from "./featurizers/index.js";
export { NBI } from "./inference/engine.js";
export * as inference from "./inference/index.js";
export * as optim from "./inference/optim/index.js";
export * as priors from "./inference/priors.js";
export type { ArrayLike, Axes, ReduceOptions, ShapedArray } from "./ops/array.js";
export { Array } from "./ops/array.js";
export type { BackendName } from "./ops/backend.js";
export type { DType } from "./ops/dtype.js";
export * as np from "./ops/np.js";
export * as random from "./ops/random.js";
export * as plots from "./plots/index.js";
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
