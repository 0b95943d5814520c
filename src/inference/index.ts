/**
 * Neural posterior estimation: the NBI engine and the functional core under it — priors, the
 * simulation store, simulators in worker threads, the surrogate network and its training,
 * SNPE-IS as a fold over rounds, amortized NPE, importance sampling and its diagnostics, and the
 * file formats (NPY for simulations, safetensors for weights) that Python reads.
 */

export { readNpy, writeNpy } from "../io/npy.js";
export { readSafetensors, writeSafetensors } from "../io/safetensors.js";
export { type WeightDiagnostics, weightAdvice } from "./advice.js";
export {
  type CalibrateOptions,
  type CalibrationInput,
  type CalibrationResult,
  calibrationFromSamples,
  calibrationVerdict,
  type Finding,
  formatCalibration,
  type HpdCoverage,
  hpdCoverage,
  type SbcParameter,
  type SbcResult,
  sbc,
  type TarpResult,
  tarp,
  type Verdict,
} from "./calibration/index.js";
export { loadCheckpoint, saveCheckpoint } from "./checkpoint.js";
export { formatFitResult, formatPredictResult, withDisplay } from "./display.js";
export {
  type FitOptions,
  type FitResult,
  NBI,
  type NbiOptions,
  type ObservationErrors,
  type PredictiveOptions,
  type PredictOptions,
  type PredictResult,
  type SampleBatchResult,
} from "./engine.js";
export {
  encodeGapped,
  GAPPED_CHANNELS,
  type GappedLightCurves,
  type GappedLightCurvesOptions,
  type GappedLightCurvesSpec,
  gappedLightCurves,
  isGappedLightCurves,
  type MaskSampler,
  type SigmaSampler,
} from "./gaps.js";
export { hostKey, keyAt, normals, uniforms } from "./host.js";
export {
  combineRounds,
  combineStages,
  generalizedParetoFit,
  type ImportanceResult,
  importanceWeights,
  kishEss,
  PARETO_K_UNRELIABLE,
  paretoKHat,
  resample,
  weightedMoments,
  weightedQuantiles,
} from "./importance.js";
export {
  gaussianLogLike,
  type LogLike,
  maskedGaussianLogLike,
  needsSimulation,
  thetaLogLike,
} from "./likelihood.js";
export {
  chooseLoss,
  chooseOwn,
  decideLoss,
  type LossChoice,
  type LossScores,
  type OwnChoice,
  type OwnScores,
  type ScoringDraws,
  SELECT_MIN_ESS,
  SELECT_Z,
} from "./loss-selection.js";
export {
  type DistanceTail,
  type FeatureStatistics,
  featureStatistics,
  OOD_CAUTION_TAIL,
  OOD_MIN_TRAINING,
  OOD_REJECT_TAIL,
  type OodReport,
  oodReport,
  oodUnavailable,
  restoreFeatureStatistics,
  squaredDistances,
  type TrustLevel,
  tailProbability,
} from "./ood.js";
export { OOD_FILE, readFeatureStatistics, writeFeatureStatistics } from "./ood-file.js";
export {
  type Defensive,
  type FlowConfig,
  initPosterior,
  type LatentPoints,
  type PosteriorNetwork,
  type PosteriorParams,
  posteriorNetwork,
  proposalLogProb,
  proposalSample,
  type Scales,
  type Surrogate,
  surrogateContexts,
  surrogateLatent,
  surrogateLogProb,
  surrogateOf,
  surrogateSample,
  thetaMap,
} from "./posterior.js";
export {
  PPC_CAUTION_P,
  PPC_MISFIT_P,
  type PredictiveCheck,
  type PredictiveCheckOptions,
  predictiveCheck,
} from "./ppc.js";
export {
  type DrawStage,
  type PilotDraws,
  type PilotDuel,
  type ProposalContext,
  type ProposalPart,
  proposalLogDensity,
  type RoundProposal,
} from "./proposals.js";
export {
  firstTrainingRound,
  offersChallenger,
  REUSE_EFFECTIVE_PER_DIM,
  REUSE_ROWS_PER_DIM,
  type Reuse,
  type ReuseRound,
} from "./round-reuse.js";
export { type SimulatorFn, simulate, type WorkerSimulatorSpec } from "./simulation/simulate.js";
export {
  anpe,
  type Checkpoint,
  DEFAULT_DEFENSIVE,
  type DrawRoundOptions,
  drawRound,
  GATED_NLL_BELOW,
  type ProposalKind,
  type RestoredRound,
  type RoundCheckpoints,
  type RoundDraw,
  type RoundOptions,
  type RoundRecord,
  roundKeyOf,
  roundLoss,
  runRound,
  type SequentialLoss,
  type SequentialSettings,
  type SnpeConfig,
  type SnpeResult,
  type SnpeState,
  sequentialOptions,
  snpeIS,
} from "./snpe.js";
export { type CalibratedSpread, calibrateSpread, type SpreadFit } from "./spread.js";
export { openStore, type SimulationStore } from "./store.js";
export { type EpochRecord, type Noise, type NoiseFn, trainPosterior } from "./train.js";
export {
  type TrustReport,
  trustReport,
  type WeightHealth,
  type WeightVerdict,
  weightLevel,
} from "./trust.js";
export {
  fromUnbounded,
  type SupportBounds,
  supportMap,
  toUnbounded,
  type UnboundedImage,
} from "./unbounded.js";
