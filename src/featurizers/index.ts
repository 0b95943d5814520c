/**
 * Featurizers: networks that map light curves and spectra (batch × channels × length) to feature
 * vectors for the flow, as nbi's. Each is an `init(key) → params` / `apply(params, x)` pair over
 * a parameter pytree; `fromConfig` builds them from nbi-style config objects, and the layers are
 * exported for composing custom networks.
 */
export { type GruOptions, type GruParams, gru, runGru } from "./gru.js";
export {
  type BatchNormParams,
  batchNorm1d,
  type Conv1dLayerOptions,
  type Conv1dParams,
  conv1d,
  type GruCell,
  type GruCellParams,
  gruCell,
  gruInputProjection,
  gruStep,
  gruStepGates,
  type LinearOptions,
  type LinearParams,
  linear,
  maxPool1d,
  type WeightNormParams,
  weightFromNorm,
  weightNorm,
} from "./layers.js";
export { type Activation, type MlpOptions, type MlpParams, mlp } from "./mlp.js";
export {
  custom,
  defaultDepth,
  type FeaturizerConfig,
  fromConfig,
  type GruConfig,
  type MlpConfig,
  type ResNetConfig,
  type ResNetGruConfig,
  resolve,
} from "./registry.js";
export {
  type ConvParams,
  type Norm,
  type ResBlockOptions,
  type ResBlockParams,
  type ResNetGruOptions,
  type ResNetGruParams,
  type ResNetOptions,
  type ResNetParams,
  type ResNetTrunk,
  type ResNetTrunkOptions,
  type ResNetTrunkParams,
  resBlock,
  resnet1d,
  resnetGru,
  resnetTrunk,
} from "./resnet.js";
export type { Featurizer, InitOptions, Module, ParamModule } from "./types.js";
