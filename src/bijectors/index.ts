/**
 * Bijectors (the distrax/TFP model), their combinators, MADE, masked autoregressive flows and the
 * laws every bijector must satisfy. Distributions are exported separately (`distributions`).
 */

export type { InitOptions, ParamModule } from "../transforms/module.js";
export {
  blockwise,
  type Conditioner,
  chain,
  conditional,
  invert,
  maskedAutoregressive,
  type Transformer,
} from "./combinators.js";
export {
  affine,
  bounded,
  type ClampOptions,
  clampedAffine,
  clampLogScale,
  elementwise,
  exp,
  identity,
  logit,
  permute,
  reverse,
  scale,
  shift,
  sigmoid,
  softplus,
  tanh,
} from "./elementary.js";
export {
  type Flow,
  type FlowOptions,
  type FlowParams,
  type MafOptions,
  maf,
  type NsfOptions,
  nsf,
} from "./flows.js";
export {
  type HostBijector,
  type HostValueAndLogDet,
  hostChain,
  hostStandardise,
} from "./host.js";
export { bijectorLaws, type LawOptions } from "./laws.js";
export {
  type Made,
  type MadeOptions,
  type MadeParams,
  made,
  madeMasks,
  orthogonal,
} from "./made.js";
export { bijectorMonoid, composeAll } from "./monoid.js";
export { affineTransformer, rationalQuadraticSpline, type SplineOptions } from "./transformers.js";
export { type Bijector, type BijectorSpec, bijector, type ValueAndLogDet } from "./types.js";
