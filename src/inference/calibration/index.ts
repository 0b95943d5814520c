/**
 * Calibration of amortized posteriors: SBC ranks, HPD expected coverage, TARP, and a verdict in
 * words. Every statistic takes host arrays, so it can be checked against exact posteriors;
 * `NBI.calibrate` feeds them the surrogate's draws at simulated test pairs.
 */
export {
  COVERAGE_LEVELS,
  type CoverageCurve,
  coverageCurve,
  type HpdCoverage,
  hpdCoverage,
  type LevelCoverage,
  QUOTED_LEVELS,
} from "./coverage.js";
export { formatCalibration } from "./format.js";
export { type CalibrateOptions, checkCalibrateOptions } from "./options.js";
export { drawTestPairs, type TestPairOptions, type TestPairs } from "./pairs.js";
export {
  type CalibrationInput,
  type CalibrationResult,
  calibrationFromSamples,
  type FailedPairs,
} from "./result.js";
export { defaultRankBins, type SbcOptions, type SbcParameter, type SbcResult, sbc } from "./sbc.js";
export { type TarpOptions, type TarpResult, tarp } from "./tarp.js";
export {
  chiSquareCounts,
  chiSquarePValue,
  gammaQ,
  ksPValue,
  ksUniform,
  twoSidedNormalPValue,
  type UniformityTest,
} from "./uniformity.js";
export {
  calibrationVerdict,
  type Finding,
  type FindingKind,
  formatPValue,
  type Verdict,
  type VerdictInput,
} from "./verdict.js";
