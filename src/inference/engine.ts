/**
 * The NBI engine: a thin facade over the functional core (`snpeIS`, `anpe`, the surrogate
 * network and the simulation store) with nbi's vocabulary.
 *
 * ```ts
 * const engine = new NBI({ flow: { nDims: 3 }, featurizer: { type: "resnet-gru", dimIn: 1, depth: 3 },
 *   simulator: sine, priors: { phi0: uniform(0, 2 * Math.PI), A: uniform(1, 5), omega: uniform(2 * Math.PI, 12 * Math.PI) },
 *   path: "runs/sine", seed: 0 });
 * const run = await engine.fit({ xObs, nSims: 320, nRounds: 3, nEpochs: 20, batchSize: 32, noise: 1 });
 * const post = await engine.predict(xObs, { xErr: 1, nSamples: 2000 });
 * ```
 */
import { createHash } from "node:crypto";
import { access, mkdir, readFile, rm } from "node:fs/promises";
import { join, resolve as resolvePath } from "node:path";
import { fileURLToPath } from "node:url";
import type { Flow } from "../bijectors/flows.js";
import { describe, fail, failText, NbiError } from "../errors.js";
import type { FeaturizerConfig } from "../featurizers/registry.js";
import type { Featurizer } from "../featurizers/types.js";
import { type ModelFileFormat, readModelFolder, writeModelFolder } from "../io/model-file.js";
import { backendInfo, useBackend } from "../ops/backend.js";
import type { Array } from "../trace/array.js";
import { addNoise } from "./add-noise.js";
import { weightAdvice } from "./advice.js";
import { type CalibrateOptions, checkCalibrateOptions } from "./calibration/options.js";
import { drawTestPairs } from "./calibration/pairs.js";
import { type CalibrationResult, calibrationFromSamples } from "./calibration/result.js";
import {
  checkpointFromTensors,
  loadCheckpoint,
  paramsToTensors,
  saveCheckpoint,
  scalesToTensors,
} from "./checkpoint.js";
import { withDisplay } from "./display.js";
import { drawsToPool, type FitDraws, fitDrawsOf } from "./fit-draws.js";
import { FIT_DRAWS_FILE, readFitDraws, writeFitDraws } from "./fit-draws-file.js";
import { checkFitSettings, didYouMean, orThrow } from "./fit-settings.js";
import {
  GAPPED_CHANNELS,
  type GappedLightCurves,
  type GappedLightCurvesSpec,
  gappedFromSpec,
  gapWarnings,
  isGappedLightCurves,
  type PackedObservations,
  packObservations,
  sampleGappedObservations,
} from "./gaps.js";
import { hostKey, keyAt, permutation } from "./host.js";
import { resample } from "./importance.js";
import { interiorSample } from "./interior-sample.js";
import { gaussianLogLike, type LogLike, maskedGaussianLogLike } from "./likelihood.js";
import { acquireLock } from "./lock.js";
import { checkSavedSizes } from "./model-size.js";
import {
  type FeatureStatistics,
  featureStatistics,
  type OodReport,
  oodReport,
  oodUnavailable,
  squaredDistances,
} from "./ood.js";
import { OOD_FILE, readFeatureStatistics, writeFeatureStatistics } from "./ood-file.js";
import {
  type Defensive,
  deviceKey,
  type FlowConfig,
  initPosterior,
  observationSize,
  type PosteriorNetwork,
  posteriorNetwork,
  type Surrogate,
  surrogateContexts,
  surrogateLogProb,
  surrogateOf,
  surrogateSample,
} from "./posterior.js";
import { type PredictiveCheck, predictiveCheck } from "./ppc.js";
import { fromSpec, type Prior, type PriorSpec, resolvePriors } from "./priors.js";
import type { FitResult, PredictResult } from "./results.js";
import { moduleUrlOf } from "./simulation/pool.js";
import { type Simulator, simulateRows, simulationSeeds } from "./simulation/rows.js";
import {
  type Checkpoint,
  type Hooks,
  type RoundCheckpoints,
  type RoundOptions,
  type RoundRecord,
  type SnpeConfig,
  type SnpeResult,
  sequentialOptions,
  snpeIS,
} from "./snpe.js";
import { openStore, resetStore, type SimulationStore, type StoreFingerprint } from "./store.js";
import { EMA_HALF_LIFE, type Noise } from "./train.js";
import { savedTrainingEpoch, trainCheckpointPath } from "./train-checkpoint.js";
import { trustReport } from "./trust.js";

export { didYouMean } from "./fit-settings.js";
export type { FitResult, PredictResult } from "./results.js";

import { weightedDraws } from "./weighted-draws.js";

export const MODEL_FORMAT = "nbi-model";
export const MODEL_VERSION = 1;
/** The saved model's folder format: model.json + weights.safetensors (src/io/model-file.ts). */
const MODEL_FILE_FORMAT: ModelFileFormat = { name: MODEL_FORMAT, version: MODEL_VERSION };
/** The lock file a writer holds in a run's folder (see `acquireLock`). */
export const LOCK_FILE = "nbi.lock";
/** A round's challenger (kept for the next round's pilot to judge), beside its checkpoint. */
const CHALLENGER_FILE = "challenger.safetensors";

/** What `new NBI(options)` takes: the networks, the simulator, the priors and where the run lives. */
export interface NbiOptions {
  /** Flow hyperparameters (nbi's, camelCase; nDims required) or a custom flow. */
  flow: FlowConfig | Flow;
  /** A featurizer config ({ type: "resnet-gru", dimIn, depth, ... }) or a custom featurizer. */
  featurizer: FeaturizerConfig | Featurizer;
  /** (θ) → data, sync or async, in-process; or { module, exportName } run in worker threads. */
  simulator?: Simulator;
  /** One prior, an array of priors, or an object of named priors (its keys become the labels). */
  priors: Prior | readonly Prior[] | Readonly<Record<string, Prior>>;
  /** One name per parameter (default: the priors' keys, or θ0, θ1, ...). */
  labels?: readonly string[];
  /**
   * The run's folder: simulation store, round checkpoints (default "nbi-run" in the working
   * directory; `fit` then names the absolute folder, through onWarning or on stderr).
   */
  path?: string;
  /** Backend for the network (default: the current default backend). */
  backend?: "cpu" | "webgpu" | "auto";
  /** Seed of every random draw (default 0). Results do not depend on the worker count. */
  seed?: number;
  /** Worker threads for a module simulator (default: the number of cores). */
  workers?: number;
  /**
   * Shape of one simulation ([length] or [channels, length]). When omitted, `fit` takes it from
   * the run's store or precomputed simulations, or else runs the simulator once at a prior draw
   * (a probe, not stored), so that an xObs of the wrong length is blamed on xObs.
   */
  dataShape?: readonly number[];
  /**
   * A name for the in-process simulator's version, recorded in the run's fingerprint: change it
   * whenever the simulator's results change. Without it an in-process function is identified by
   * a hash of its source text (`fn.toString()`), which misses changes in what it closes over;
   * a module simulator is identified by its path, export and a hash of the module file.
   */
  simulatorVersion?: string;
  /**
   * Longest one simulation may run, in milliseconds (default: no limit). A worker simulator past
   * it is terminated and its θ counted as timed out; the other simulations go on.
   */
  simTimeoutMs?: number;
}

/**
 * Options of `NBI.fit`: the round options (all optional here: nEpochs 10, batchSize 64, lr 1e-3;
 * nSims is required unless x and θ are given), progress hooks, the observation and the noise.
 */
export interface FitOptions extends Partial<RoundOptions>, Hooks {
  /** The observation (SNPE-IS); without it, amortized NPE from the prior (one round). */
  xObs?: ArrayLike<number>;
  /** Precomputed round-0 simulations: x (n × dataSize, or n rows) and θ (n × d, or n rows). */
  x?: ArrayLike<number> | readonly ArrayLike<number>[];
  /** The θ of the precomputed simulations `x`, row for row. */
  theta?: ArrayLike<number> | readonly ArrayLike<number>[];
  /** Rounds of SNPE-IS (default 1); more than one needs xObs and a likelihood (or noise sigmas). */
  nRounds?: number;
  /**
   * Gaussian noise sigmas (also the default likelihood), a noise function (key, x, θ) → x', or
   * `gappedLightCurves({ missing, sigma })`: light curves with missing points and per-point error
   * bars, drawn afresh for every batch (the featurizer's dimIn is then 3 × channels, an MLP's
   * 3 × channels × length). With it, a fit is amortized (no xObs) or sequential around one
   * light curve: xObs with NaN where a point is missing, and its `xErr`.
   */
  noise?: Noise;
  /**
   * With the gapped observation model and an xObs: the observation's own error bars (one sigma,
   * or one per point; NaN where a point is missing). The rounds' proposals see xObs encoded with
   * them, and the importance weights use the Gaussian likelihood of the observed points only.
   * Training keeps the model's random gaps and sigmas (the network stays amortized over them).
   */
  xErr?: number | ArrayLike<number>;
  /** Exact log-likelihood for the importance weights (default: Gaussian with the noise sigmas). */
  logLike?: LogLike;
  /** Progress bars on stderr (default: when stderr is a terminal). */
  progress?: boolean;
  /**
   * What to do with simulations already stored in the run's folder. The store records a
   * fingerprint of what decided them (prior, simulator identity, data shape, nSims, seed, noise,
   * observation, likelihood) and of what decided training (networks, epochs, batch size, rates,
   * loss, proposal). "ifSame" (the default) resumes when the fingerprint matches and otherwise
   * refuses, naming what changed; "force" resumes anyway (a warning names the changes); "never"
   * deletes the stored simulations and starts afresh. nRounds, the stopping rules, workers and
   * the backend are not part of it: more rounds continue a finished run.
   */
  resume?: "never" | "ifSame" | "force";
  /** Called once when the fit resumes stored rounds ("resumed 2 rounds from …"). */
  onResume?: (info: { rounds: number; path: string; message: string }) => void;
}

/** Options of `NBI.predict`. Give `xErr` or `logLike` for importance weights. */
export interface PredictOptions {
  /**
   * Gaussian measurement errors of xObs (one sigma or one per element). With the gapped
   * observation model it is required (the network reads it), a NaN in xObs marks a missing point
   * (its sigma may be NaN too), and the likelihood sums over the observed points only.
   */
  xErr?: number | ArrayLike<number>;
  /** An exact log-likelihood instead of the Gaussian one from `xErr`. */
  logLike?: LogLike;
  /** Surrogate draws simulated and weighted (default 1000). */
  nSamples?: number;
  /** Top up until n_eff reaches this (default: no top-up). */
  neffMin?: number;
  /** Stop topping up when the efficiency falls below this (default 0). */
  fAcceptMin?: number;
  /** At most this many draws in all (default 10 × nSamples). */
  nMax?: number;
  /** PRNG key of the draws (default: derived from the engine's seed, so predict is reproducible). */
  key?: Array;
  /** Aborts the simulations and the call. */
  signal?: AbortSignal;
  /** Progress of the simulations: done so far and the first batch's size (top-ups go beyond it). */
  onSimulate?: (done: number, total: number) => void;
  /**
   * The proposal: the surrogate mixed with a broadened copy (default { alpha: 0.3, tau: 2 }, for
   * flows with a normal base), which bounds the weights where the surrogate is too narrow; false
   * draws from the surrogate alone.
   */
  defensive?: Defensive | false;
  /**
   * Adaptive importance sampling (default true): a pilot quarter of nSamples draws from the
   * surrogate; when its efficiency is below 50%, the rest come in up to ten stages from a
   * Student-t mixture refitted to the weighted draws so far (mixed 80/20 with the surrogate);
   * each stage's draws are weighed against its own proposal and the stages combined by their ESS
   * (unbiased). Same number of draws (and simulations); false draws everything from the surrogate.
   */
  adapt?: boolean;
  /**
   * Pool the fit's weighed draws (default true): a sequential fit with a likelihood weighed every
   * round's draws at its observation, exact importance samples paid for already. Where predict's
   * target is the fit's (the same prior, likelihood and observation, checked by weighing a few
   * of the fit's rows again), they join the result after predict's own draws (`pooled` says how
   * many rows and what n_eff they brought; each group counts by its ESS), the rounds whose
   * weights have light tails and whose evidence agrees with predict's own. false: predict's own
   * draws only.
   */
  pool?: boolean;
}

/** Options of `NBI.posteriorPredictive`. */
export interface PredictiveOptions {
  /** Posterior draws to simulate (resampled by weight; default 500, at least 20). */
  nDraws?: number;
  /** Gaussian measurement errors of the replicated data (one sigma or one per element). */
  xErr?: number | ArrayLike<number>;
  /** The noise model of the replicated data instead of xErr (sigmas or a noise function). */
  noise?: Noise;
  /** PRNG key of the resampling, the simulations and the noise (default: from the engine's seed). */
  key?: Array;
  /** Aborts the simulations. */
  signal?: AbortSignal;
  /** Progress of the simulations. */
  onSimulate?: (done: number, total: number) => void;
}

/**
 * Error bars of one or many observations (gapped observation model): one sigma for every point,
 * one per point (shared by all observations), or one row per observation (NaN where missing).
 */
export type ObservationErrors = number | ArrayLike<number> | readonly ArrayLike<number>[];

/** What `sampleBatch(..., { ood: true })` returns: the draws and one distance report per observation. */
export interface SampleBatchResult {
  /** [m, n, d] row-major, as `sampleBatch` returns without `ood`. */
  readonly samples: Float64Array;
  /** The out-of-distribution alarm's report for each observation. */
  readonly ood: readonly OodReport[];
}

interface ModelFile {
  format: typeof MODEL_FORMAT;
  version: number;
  flow: FlowConfig | "custom";
  featurizer: FeaturizerConfig | "custom";
  dataShape: number[];
  labels: string[];
  prior: PriorSpec;
  seed: number;
  history: RoundRecord[];
  /** The gapped observation model the network encodes for, when it has one. */
  observation?: GappedLightCurvesSpec;
}

const isConfig = (v: unknown) =>
  typeof v === "object" && v !== null && !("apply" in v) && !("logProb" in v);

/** Flattens numbers or rows of numbers (arrays, typed arrays) into float64. */
function toFloat64(fn: string, name: string, v: unknown): Float64Array {
  if (v === undefined || v === null || typeof (v as ArrayLike<number>).length !== "number") {
    fail(fn, name, "an array of numbers", v);
  }
  const rows = v as ArrayLike<unknown>;
  const flat: number[] = [];
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i];
    if (typeof r === "number") flat.push(r);
    else if (r && typeof (r as ArrayLike<number>).length === "number") {
      for (let j = 0; j < (r as ArrayLike<number>).length; j++)
        flat.push((r as ArrayLike<number>)[j]!);
    } else fail(fn, `${name}[${i}]`, "a number or an array of numbers", r);
  }
  return Float64Array.from(flat);
}

/**
 * One gapped observation's values: `size` numbers, each finite or NaN (a missing point), at
 * least one observed.
 */
function gappedValues(fn: string, xObs: unknown, size: number): Float32Array {
  const x = toFloat32(fn, "xObs", xObs);
  if (x.length !== size) {
    failText(
      fn,
      "xObs",
      `${size} numbers (the simulator's output size; NaN where a point is missing)`,
      `${x.length} numbers`,
    );
  }
  packObservations(fn, { x: "xObs", err: "xErr" }, x, 1, size); // finite or NaN, one observed
  return x;
}

/**
 * The sigmas of a gapped observation's replicated data, one per point: the observation's own
 * (checked as predict checks them), and at a missing point its own sigma when it is given one
 * (finite > 0), else the median of the observed points' sigmas.
 */
function replicateSigmas(
  fn: string,
  x: Float32Array,
  xErr: number | ArrayLike<number>,
  size: number,
): Float64Array {
  const { packed } = packObservations(fn, { x: "xObs", err: "xErr" }, x, xErr, size);
  const given = typeof xErr === "number" ? undefined : toFloat64(fn, "xErr", xErr);
  const observed = globalThis.Array.from(packed.subarray(size), Number).filter(
    (v) => !Number.isNaN(v),
  );
  observed.sort((a, b) => a - b);
  const h = (observed.length - 1) / 2;
  const median = 0.5 * (observed[Math.floor(h)]! + observed[Math.ceil(h)]!);
  const sigmaAt = (i: number) =>
    given === undefined ? (xErr as number) : given.length === 1 ? given[0]! : given[i]!;
  return Float64Array.from({ length: size }, (_, i) => {
    const own = sigmaAt(i);
    return !Number.isNaN(x[i]!) || (own > 0 && Number.isFinite(own)) ? own : median;
  });
}

function toFloat32(fn: string, name: string, v: unknown): Float32Array {
  return Float32Array.from(toFloat64(fn, name, v));
}

function checkObservation(fn: string, xObs: Float32Array, argument = "xObs"): void {
  const bad = xObs.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) {
    throw new NbiError(
      `${fn}: ${argument} expected finite values (or fit with the gapped observation model, ` +
        "noise: gappedLightCurves({ missing, sigma }), to leave missing points NaN), " +
        `got ${xObs[bad]} at index ${bad}`,
    );
  }
}

/**
 * The run key `NBI.fit` hands snpeIS for a seed: round r's draws and simulator seeds derive from
 * it (`roundKeyOf`), so sharded simulation (`nbi simulate`) reproduces them.
 */
export function fitKey(seed: number): Array {
  return keyAt(hostKey(seed), 0);
}

/**
 * The NBI engine, nbi's interface: give it a flow, a featurizer, a simulator and priors; `fit`
 * trains the surrogate posterior (SNPE-IS with an observation, amortized NPE without), `predict`
 * returns importance-weighted posterior samples, and `save` / `NBI.load` persist it. A killed fit
 * resumes from the simulation store in `path`.
 *
 * @example
 * ```ts
 * const engine = new NBI({ flow: { nDims: 2 }, featurizer: { type: "mlp", dimIn: 50, dimOut: 16 },
 *   priors: { A: priors.uniform(1, 5), omega: priors.uniform(2, 10) }, simulator: sine, path: "runs/sine" });
 * const fit = await engine.fit({ xObs, nSims: 500, nRounds: 3, noise: 0.1 });
 * const { samples, weights, ess } = await engine.predict(xObs, { xErr: 0.1 });
 * ```
 */
export class NBI {
  /** The prior over θ: the product of the given priors. */
  readonly prior: Prior;
  /** One name per parameter (the priors' keys, the given labels, or θ0, θ1, ...). */
  readonly labels: readonly string[];
  /** The run's folder (absolute): simulation store and round checkpoints. */
  readonly path: string;
  /** The seed every random draw descends from. */
  readonly seed: number;
  private readonly options: NbiOptions;
  private net?: PosteriorNetwork;
  private store?: SimulationStore;
  private checkpoint?: Checkpoint;
  private runHistory: RoundRecord[] = [];
  /** The training simulations' feature statistics (the out-of-distribution alarm), once fitted. */
  private ood?: FeatureStatistics;
  /** Why there are none (said by the alarm's reports). */
  private oodMissing = "the engine has no training statistics yet";
  /** The fit's noise model, in words for ood.safetensors. */
  private oodNoise = "none";
  /** The last fit's noise model: the default noise of posteriorPredictive's replicated data. */
  private fitNoise?: Noise;
  /** The last fit's weighed draws, which predict pools at the fit's target (fit-draws.ts). */
  private fitDraws?: FitDraws;
  /** The gapped observation model the network encodes for (from fit's noise or model.json). */
  private gaps?: GappedLightCurves;
  /** The shape of one simulation, once known. */
  private shape?: number[];

  /**
   * Checks the options (the priors' dimension against flow.nDims, the simulator's form, that the
   * prior's density is finite at its own draws). The network is built at the first `fit`.
   */
  constructor(options: NbiOptions) {
    if (typeof options !== "object" || options === null) {
      fail("NBI", "options", "an object { flow, featurizer, simulator, priors, ... }", options);
    }
    if (options.flow === undefined)
      fail("NBI", "flow", "a flow config such as { nDims: 3 }", undefined);
    if (options.featurizer === undefined) {
      fail(
        "NBI",
        "featurizer",
        'a featurizer config such as { type: "resnet-gru", dimIn: 1, depth: 3 }',
        undefined,
      );
    }
    if (options.priors === undefined)
      fail("NBI", "priors", "a prior, an array of priors or an object of named priors", undefined);
    this.prior = resolvePriors(options.priors, options.labels);
    this.labels = this.prior.labels;
    const nDims = (options.flow as { nDims?: number }).nDims;
    if (nDims !== this.prior.dim) {
      fail("NBI", "flow.nDims", `the priors' dimension (${this.prior.dim})`, nDims);
    }
    const seed = options.seed ?? 0;
    if (!Number.isSafeInteger(seed)) fail("NBI", "seed", "an integer", seed);
    this.seed = seed;
    this.path = resolvePath(options.path ?? "nbi-run");
    if (options.simulator !== undefined && typeof options.simulator !== "function") {
      const s = options.simulator as { module?: unknown };
      if (typeof s !== "object" || s === null || typeof s.module !== "string") {
        fail(
          "NBI",
          "simulator",
          "a function (θ) → data or { module, exportName }",
          options.simulator,
        );
      }
    }
    if (
      options.simTimeoutMs !== undefined &&
      !(options.simTimeoutMs > 0 && options.simTimeoutMs <= 2 ** 31 - 1)
    ) {
      fail("NBI", "simTimeoutMs", "a positive number of milliseconds", options.simTimeoutMs);
    }
    if (options.simulatorVersion !== undefined && typeof options.simulatorVersion !== "string") {
      fail(
        "NBI",
        "simulatorVersion",
        "a string naming the simulator's version",
        options.simulatorVersion,
      );
    }
    this.options = options;
    this.checkPriorSupport();
  }

  /** The prior must contain its own samples (a support that excludes them is a bug). */
  private checkPriorSupport(): void {
    const draws = this.prior.sample(keyAt(hostKey(this.seed), 7), 64);
    const lp = this.prior.logProb(draws);
    const bad = lp.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) {
      const theta = globalThis.Array.from(
        draws.subarray(bad * this.prior.dim, (bad + 1) * this.prior.dim),
      );
      throw new NbiError(
        `NBI: priors expected a log-density that is finite at the priors' own samples, got ${lp[bad]} ` +
          `at θ = [${theta.join(", ")}] (${this.prior.toString()})`,
      );
    }
  }

  private get rootKey(): Array {
    return hostKey(this.seed);
  }

  /** The surrogate network, built once the data shape is known. */
  private async network(dataShape?: readonly number[]): Promise<PosteriorNetwork> {
    if (this.net) {
      if (dataShape && dataShape.reduce((a, b) => a * b, 1) !== this.net.dataSize) {
        failText(
          "NBI",
          "xObs",
          `${this.net.dataSize} numbers (the simulator's output size)`,
          `${dataShape.reduce((a, b) => a * b, 1)} numbers`,
        );
      }
      return this.net;
    }
    if (this.options.backend) await useBackend(this.options.backend);
    const shape = this.options.dataShape ?? dataShape ?? (await this.probeDataShape());
    checkFeaturizerInput(this.options.featurizer, shape, this.gaps);
    this.net = posteriorNetwork(this.options.flow, this.options.featurizer, shape, this.gaps);
    this.shape = [...shape];
    return this.net;
  }

  /**
   * The shape of one simulation, learned before anything is simulated for a round: the option,
   * the run's store, precomputed simulations, or one probe simulation at a prior draw (not
   * stored); xObs must then match it, so a wrong observation is blamed on xObs.
   */
  private async learnShape(
    xObs: Float32Array | undefined,
    precomputed: { x: Float32Array; theta: Float64Array } | undefined,
    fresh: boolean,
  ): Promise<readonly number[] | undefined> {
    if (this.net) return this.shape;
    if (this.options.dataShape) return this.options.dataShape;
    if (!fresh) {
      const stored = await readStoredShape(this.path);
      if (stored) return stored;
    }
    if (precomputed) {
      const rows = precomputed.theta.length / this.prior.dim;
      if (Number.isInteger(rows) && rows > 0 && precomputed.x.length % rows === 0) {
        return [precomputed.x.length / rows];
      }
      return undefined; // the row check below names x and θ
    }
    if (this.options.simulator) return this.probeDataShape();
    return xObs ? [xObs.length] : undefined;
  }

  /** Runs the simulator once (at a prior draw) to learn its output length. */
  private async probeDataShape(): Promise<number[]> {
    const theta = this.prior.sample(keyAt(this.rootKey, 5), 1);
    const rows = await this.simulateOnce(theta);
    return [rows.length];
  }

  private async simulateOnce(theta: Float64Array): Promise<Float32Array> {
    let out: Float32Array | undefined;
    const { simulate } = await import("./simulation/simulate.js");
    if (!this.options.simulator)
      fail(
        "NBI",
        "simulator",
        "a simulator to learn the data shape from (or give dataShape)",
        undefined,
      );
    const report = await simulate(
      this.options.simulator,
      {
        theta,
        paramDim: this.prior.dim,
        indices: Int32Array.of(0),
        onChunk: (c) => {
          out = c.x;
        },
      },
      {
        workers: 1,
        ...(this.options.simTimeoutMs !== undefined
          ? { simTimeoutMs: this.options.simTimeoutMs }
          : {}),
      },
    );
    // A non-finite output still tells the length.
    if (!out || report.ok + report.nonFinite !== 1) {
      throw new NbiError(
        `NBI: could not learn the data shape: the simulator failed at θ = [${globalThis.Array.from(theta).join(", ")}]` +
          (report.firstError ? ` (${report.firstError})` : "") +
          "; give dataShape to skip this probe",
      );
    }
    return out;
  }

  private async openRunStore(net: PosteriorNetwork): Promise<SimulationStore> {
    if (!this.store) {
      this.store = await openStore(this.path, {
        paramDim: net.nDims,
        dataShape:
          net.inputShape[0] === 1 && (this.shape?.length ?? 1) === 1
            ? [net.inputShape[1]]
            : [...net.inputShape],
        labels: this.labels,
      });
    }
    return this.store;
  }

  /**
   * Trains the surrogate: SNPE-IS with xObs, amortized NPE without. Resumes from the store when
   * what decided its simulations is unchanged (see `FitOptions.resume`); one fit at a time per
   * run folder (a lock file, `nbi.lock`, held for the call).
   *
   * @example
   * ```ts
   * const fit = await engine.fit({ xObs, nSims: 500, nRounds: 4, nEpochs: 20, noise: 0.1 });
   * console.log(fit.essHistory, fit.stopped);
   * const amortized = await engine.fit({ nSims: 10000, noise: 0.1 }); // no xObs: one round from the prior
   * // one light curve with gaps (NaN) and its own error bars, gapped observation model
   * const lc = await engine.fit({ xObs, xErr, noise: gappedLightCurves({ sigma: [0.1, 0.5] }), nRounds: 3, nSims: 1000 });
   * ```
   */
  async fit(options: FitOptions): Promise<FitResult> {
    if (typeof options !== "object" || options === null)
      fail("fit", "options", "an object", options);
    const o = options;
    checkFitOptions(o);
    const resume = o.resume ?? "ifSame";
    this.useGaps(o.noise);
    if (o.xErr !== undefined && !this.gaps) {
      fail(
        "fit",
        "xErr",
        "no xErr without the gapped observation model (noise's Gaussian sigmas are the weights' likelihood; or give logLike)",
        describe(o.xErr),
      );
    }
    if (o.xErr !== undefined && o.xObs === undefined) {
      failText(
        "fit",
        "xErr",
        "the error bars of an xObs (an amortized fit, without xObs, trains over the model's sigmas)",
        "no xObs",
      );
    }
    const xObsRaw = o.xObs === undefined ? undefined : toFloat32("fit", "xObs", o.xObs);
    if (xObsRaw && !this.gaps) checkObservation("fit", xObsRaw);
    let precomputed: SnpeConfig["precomputed"];
    if (o.x !== undefined || o.theta !== undefined) {
      precomputed = { x: toFloat32("fit", "x", o.x), theta: toFloat64("fit", "theta", o.theta) };
    }
    const shape = await this.learnShape(xObsRaw, precomputed, resume === "never");
    const size = shape?.reduce((a, b) => a * b, 1);
    if (xObsRaw && size !== undefined && xObsRaw.length !== size) {
      failText(
        "fit",
        "xObs",
        `${size} numbers (one simulator output${this.options.dataShape ? `: dataShape [${this.options.dataShape.join(", ")}]` : ""})`,
        `${xObsRaw.length} numbers`,
      );
    }
    const net = await this.network(shape);
    const d = net.nDims;
    // A gapped observation: NaN where missing, its own error bars (xErr); the proposals see it
    // encoded as predict's network does, the weights use the masked Gaussian likelihood.
    const gapped =
      xObsRaw && this.gaps
        ? packObservations("fit", { x: "xObs", err: "xErr" }, xObsRaw, o.xErr, net.dataSize)
        : undefined;
    if (precomputed) {
      const { x, theta } = precomputed;
      if (
        x.length % net.dataSize !== 0 ||
        theta.length % d !== 0 ||
        x.length / net.dataSize !== theta.length / d
      ) {
        failText(
          "fit",
          "x",
          `as many simulations (${net.dataSize} numbers each) as θ rows (${d} numbers each)`,
          `${x.length} and ${theta.length} numbers`,
        );
      }
    }
    const nRounds = o.nRounds ?? 1;
    if (nRounds > 1 && !xObsRaw)
      fail("fit", "xObs", "an observation for sequential rounds (nRounds > 1)", undefined);
    const nSims = o.nSims ?? (precomputed ? precomputed.theta.length / d : Number.NaN);
    if (!Number.isInteger(nSims) || nSims < 2) fail("fit", "nSims", "an integer ≥ 2", o.nSims);
    const logLike =
      o.logLike ??
      (gapped
        ? maskedGaussianLogLike(o.xErr as number | ArrayLike<number>, net.dataSize)
        : o.noise !== undefined && typeof o.noise !== "function" && !isGappedLightCurves(o.noise)
          ? gaussianLogLike(o.noise as number | ArrayLike<number>, net.dataSize)
          : undefined);
    if (gapped && this.gaps) for (const w of gapWarnings(this.gaps, gapped)) o.onWarning?.(w);
    if (xObsRaw && nRounds > 1 && !logLike) {
      fail(
        "fit",
        "logLike",
        "a likelihood for importance weights (or Gaussian noise sigmas)",
        undefined,
      );
    }
    const fingerprint = await runFingerprint(
      { options: this.options, prior: this.prior, seed: this.seed },
      o,
      {
        net,
        nSims,
        xObs: xObsRaw,
        precomputed,
        shape: this.shape ?? [net.dataSize],
      },
    );
    await mkdir(this.path, { recursive: true });
    const lock = await acquireLock(join(this.path, LOCK_FILE), "fit");
    try {
      return await this.fitLocked(o, {
        net,
        nRounds,
        nSims,
        xObs: xObsRaw,
        ...(gapped ? { netInput: gapped.packed } : {}),
        precomputed,
        logLike,
        fingerprint,
        resume,
      });
    } finally {
      await lock.release();
    }
  }

  /**
   * The fingerprint `fit(options)` records in the store (and compares when it resumes): what
   * decides the stored simulations and the training. Tools that write into a run's store
   * themselves (`nbi simulate`) use it to stay consistent with the fit.
   *
   * @example
   * ```ts
   * const fp = await engine.fitFingerprint({ xObs, nSims: 500, nRounds: 3, noise: 0.1 });
   * ```
   */
  async fitFingerprint(options: FitOptions): Promise<StoreFingerprint> {
    const o = options;
    this.useGaps(o.noise);
    const xObs = o.xObs === undefined ? undefined : toFloat32("fit", "xObs", o.xObs);
    const precomputed =
      o.x !== undefined || o.theta !== undefined
        ? { x: toFloat32("fit", "x", o.x), theta: toFloat64("fit", "theta", o.theta) }
        : undefined;
    const net = await this.network(await this.learnShape(xObs, precomputed, false));
    const nSims = o.nSims ?? (precomputed ? precomputed.theta.length / net.nDims : Number.NaN);
    return runFingerprint({ options: this.options, prior: this.prior, seed: this.seed }, o, {
      net,
      nSims,
      xObs,
      precomputed,
      shape: this.shape ?? [net.dataSize],
    });
  }

  /**
   * Adopts the gapped observation model a fit's noise names (or none), before the network is
   * built: a featurizer config's dimIn must take its channels (checked in full once the data
   * shape is known), and a network already built must encode the same way.
   */
  private useGaps(noise: Noise | undefined): void {
    const gaps = isGappedLightCurves(noise) ? noise : undefined;
    if (this.net) {
      if (Boolean(this.net.gaps) !== Boolean(gaps)) {
        failText(
          "fit",
          "noise",
          this.net.gaps
            ? "the gapped observation model this engine's network was built for (gappedLightCurves)"
            : "a noise model without gaps (this engine's network was built without the gapped observation model; make a new NBI to train one)",
          gaps ? gaps.toString() : describe(noise),
        );
      }
      if (gaps) this.gaps = gaps;
      return;
    }
    const featurizer = this.options.featurizer;
    if (gaps && isConfig(featurizer)) {
      const dimIn = (featurizer as FeaturizerConfig).dimIn;
      if (typeof dimIn === "number" && dimIn % GAPPED_CHANNELS !== 0) {
        failText(
          "NBI",
          "featurizer.dimIn",
          `a multiple of ${GAPPED_CHANNELS} (the gapped observation model feeds the featurizer values, mask and sigmas for each data channel)`,
          String(dimIn),
        );
      }
    }
    this.gaps = gaps;
  }

  /** The fit once the run folder is locked: resume checks, the rounds, the summary. */
  private async fitLocked(
    o: FitOptions,
    run: {
      net: PosteriorNetwork;
      nRounds: number;
      nSims: number;
      xObs: Float32Array | undefined;
      netInput?: Float32Array;
      precomputed: SnpeConfig["precomputed"];
      logLike: LogLike | undefined;
      fingerprint: StoreFingerprint;
      resume: "never" | "ifSame" | "force";
    },
  ): Promise<FitResult> {
    const { net, nRounds, nSims, xObs, precomputed, logLike, fingerprint } = run;
    const progress = o.progress ?? Boolean(process.stderr.isTTY);
    // A folder nobody chose (./nbi-run, relative to the working directory): say where it is,
    // through onWarning when given, else on stderr, whatever `progress` says.
    if (this.options.path === undefined) {
      const notice = `no path given to new NBI: this run's simulations and checkpoints go to ${this.path}`;
      if (o.onWarning) o.onWarning(notice);
      else process.stderr.write(`nbi: ${notice}\n`);
    }
    if (run.resume === "never") {
      this.store = undefined;
      await resetStore(this.path);
    }
    let store = await this.openRunStore(net);
    const resumed = await this.checkResume(store, fingerprint, run.resume, o);
    if (resumed.message) {
      if (o.onResume)
        o.onResume({ rounds: resumed.rounds, path: this.path, message: resumed.message });
      else if (progress) process.stderr.write(`${resumed.message}\n`);
    }
    store = await this.openRunStore(net);
    const hooks: Hooks = pick(o, [
      "signal",
      "onEpoch",
      "onStep",
      "onSimulate",
      "onRound",
      "onWarning",
    ]);
    const bars = progress ? await (await import("./progress.js")).progressHooks(hooks) : hooks;
    const config: SnpeConfig = {
      ...bars,
      net,
      prior: this.prior,
      ...(this.options.simulator ? { simulator: this.options.simulator } : {}),
      ...(precomputed ? { precomputed } : {}),
      store,
      ...(xObs ? { xObs } : {}),
      ...(run.netInput ? { netInput: run.netInput } : {}),
      ...(logLike ? { logLike } : {}),
      ...(o.noise !== undefined ? { noise: o.noise } : {}),
      nRounds,
      nSims,
      nEpochs: o.nEpochs ?? 10,
      batchSize: o.batchSize ?? 64,
      lr: o.lr ?? 1e-3,
      ...pick(o, [
        "minLr",
        "fVal",
        "nReuse",
        "earlyStopPatience",
        "calibrateSpread",
        "emaHalfLife",
        "earlyStopTrain",
        "neffStop",
        "fAcceptMin",
        "loss",
        "atoms",
        "proposal",
        "truncationEps",
        "adaptRounds",
        "defensive",
        "flowSpace",
      ]),
      key: fitKey(this.seed),
      ...(this.options.workers !== undefined ? { workers: this.options.workers } : {}),
      ...(this.options.simTimeoutMs !== undefined
        ? { simTimeoutMs: this.options.simTimeoutMs }
        : {}),
    };
    const result: SnpeResult = await snpeIS(config, undefined, this.roundCheckpoints(store, net));
    this.checkpoint = result.state.current;
    this.runHistory = [...result.history];
    this.fitDraws = fitDrawsOf(result.state.data, net.nDims, net.dataSize);
    this.fitNoise = o.noise;
    await this.learnTrainingFeatures(net, result.state.current, result.state.data, o.noise);
    if (result.emptyRounds.length > 0) {
      const all = result.weights.length === 0;
      const which = `round${result.emptyRounds.length === 1 ? "" : "s"} ${result.emptyRounds.join(", ")}`;
      o.onWarning?.(
        all
          ? `no round has usable importance weights (n_eff 0 in ${which}): the weighted result is empty; ` +
              "the network is trained and can be saved; check the likelihood and noise, or simulate more"
          : `${which} had no usable importance weights (n_eff 0): kept in the history, left out of the weighted result`,
      );
    }
    return withDisplay(
      {
        history: result.history,
        samples: result.samples,
        weights: result.weights,
        essHistory: result.essHistory,
        stopped: result.stopped,
        labels: this.labels,
        emptyRounds: result.emptyRounds,
        resumedRounds: resumed.rounds,
      },
      "fit",
    );
  }

  /**
   * Compares the store's fingerprint with this fit's (refusing, warning or recording as
   * `resume` says), checks the stored θ, and describes what is resumed.
   */
  private async checkResume(
    store: SimulationStore,
    fingerprint: StoreFingerprint,
    resume: "never" | "ifSame" | "force",
    o: FitOptions,
  ): Promise<{ rounds: number; message?: string }> {
    const rounds = await store.rounds();
    const stored = await store.fingerprint();
    if (rounds.length > 0 && stored !== undefined) {
      const changes = fingerprintChanges(stored, fingerprint);
      if (changes.length > 0 && resume !== "force") {
        throw new NbiError(
          `fit: the run folder ${this.path} holds simulations made with another setup: ${changes.join("; ")}. ` +
            "Resuming would mix them with new ones (or return the old results): start afresh with " +
            'resume: "never" (deletes the stored simulations; CLI --fresh), keep them anyway with ' +
            'resume: "force" (CLI --force-resume), or give another path',
        );
      }
      if (changes.length > 0) {
        o.onWarning?.(
          `resuming ${this.path} despite a changed setup (resume: "force"): ${changes.join("; ")}`,
        );
      }
    }
    if (
      stored === undefined ||
      JSON.stringify(stored) !== JSON.stringify(fingerprint) ||
      rounds.length === 0
    ) {
      await store.writeFingerprint(fingerprint);
    }
    if (rounds.length === 0) return { rounds: 0 };
    // What is resumed must be usable: θ inside the prior (the file is named if not).
    let finished = 0;
    let partial = "";
    for (const r of rounds) {
      const theta = (await store.roundParams(r))!;
      const inside = this.prior.inSupport(theta);
      const bad = inside.indexOf(0);
      if (bad >= 0) {
        const row = globalThis.Array.from(
          theta.subarray(bad * this.prior.dim, (bad + 1) * this.prior.dim),
        );
        throw new NbiError(
          `fit: ${join(store.roundDir(r), "theta.npy")} expected θ inside the prior's support, got [${row.join(", ")}] in row ${bad} ` +
            `(${this.prior.toString()}); the store belongs to another prior: start afresh with resume: "never" or give another path`,
        );
      }
      if (await store.readJson(r, "record")) finished++;
      else {
        const { done, n } = await store.readRound(r);
        const k = done.reduce((a, b) => a + b, 0);
        const epoch = await savedTrainingEpoch(trainCheckpointPath(store, r));
        partial =
          `; round ${r}: ${k} of ${n} simulations stored` +
          (epoch !== undefined ? `, training resumes at epoch ${epoch}` : "");
      }
    }
    const note = stored === undefined ? " (no fingerprint was recorded: recorded now)" : "";
    return {
      rounds: finished,
      message: `resumed ${finished} round${finished === 1 ? "" : "s"} from ${this.path}${partial}${note}`,
    };
  }

  private roundCheckpoints(store: SimulationStore, net: PosteriorNetwork): RoundCheckpoints {
    return {
      load: async (round) => {
        const record = await store.readJson<RoundRecord>(round, "record");
        if (!record) return undefined;
        const template = await initPosterior(net, keyAt(this.rootKey, 0));
        const checkpoint = await loadCheckpoint(
          join(store.roundDir(round), "checkpoint.safetensors"),
          template,
        );
        // A round that kept a challenger for the next round's pilot (snpe.ts) saved it beside.
        const challenger = record.challenger
          ? await loadCheckpoint(join(store.roundDir(round), CHALLENGER_FILE), template)
          : undefined;
        return {
          checkpoint,
          record: { ...record, bestValLoss: record.bestValLoss ?? Number.NaN },
          ...(challenger ? { challenger } : {}),
        };
      },
      save: async (round, checkpoint, record, challenger) => {
        await mkdir(store.roundDir(round), { recursive: true });
        await saveCheckpoint(join(store.roundDir(round), "checkpoint.safetensors"), checkpoint, {
          round: String(round),
        });
        if (challenger) {
          await saveCheckpoint(join(store.roundDir(round), CHALLENGER_FILE), challenger, {
            round: String(round),
            challenger: "true",
          });
        }
        await store.writeJson(round, "record", record); // last: a round counts as finished once this exists
      },
    };
  }

  private trained(fn: string): {
    net: PosteriorNetwork;
    checkpoint: Checkpoint;
    surrogate: Surrogate;
  } {
    if (!this.net || !this.checkpoint) {
      throw new NbiError(
        `${fn}: the engine has no trained network yet; call fit() first or NBI.load(dir)`,
      );
    }
    return {
      net: this.net,
      checkpoint: this.checkpoint,
      surrogate: surrogateOf(this.net, this.checkpoint),
    };
  }

  private observation(fn: string, xObs: ArrayLike<number>, many = false): Float32Array {
    const { net } = this.trained(fn);
    const x = toFloat32(fn, many ? "xObsMany" : "xObs", xObs);
    if (many ? x.length % net.dataSize !== 0 || x.length === 0 : x.length !== net.dataSize) {
      failText(
        fn,
        many ? "xObsMany" : "xObs",
        many
          ? `a multiple of ${net.dataSize} numbers`
          : `${net.dataSize} numbers (the simulator's output size)`,
        `${x.length} numbers`,
      );
    }
    checkObservation(fn, x, many ? "xObsMany" : "xObs");
    return x;
  }

  /**
   * Observations as the network takes them. Without the gapped observation model: the checked
   * values (xErr is not read). With it: NaN marks a missing point, xErr (one sigma, one per
   * point, or one row per observation) is required, and values and sigmas are packed.
   */
  private networkInput(
    fn: string,
    xObs: ArrayLike<number> | readonly ArrayLike<number>[],
    xErr: unknown,
    many = false,
  ): { values: Float32Array; input: Float32Array; packed?: PackedObservations } {
    const { net } = this.trained(fn);
    if (!net.gaps) {
      const values = this.observation(fn, xObs as ArrayLike<number>, many);
      return { values, input: values };
    }
    const name = many ? "xObsMany" : "xObs";
    const values = toFloat32(fn, name, xObs);
    if (
      many
        ? values.length % net.dataSize !== 0 || values.length === 0
        : values.length !== net.dataSize
    ) {
      failText(
        fn,
        name,
        many
          ? `a multiple of ${net.dataSize} numbers`
          : `${net.dataSize} numbers (the simulator's output size; NaN where a point is missing)`,
        `${values.length} numbers`,
      );
    }
    const packed = packObservations(fn, { x: name, err: "xErr" }, values, xErr, net.dataSize);
    return { values, input: packed.packed, packed };
  }

  /**
   * n draws from the surrogate q(θ | xObs), n × d, unweighted (no simulations: fast, but only as
   * good as the surrogate; `predict` corrects it). Draws in the float64 band at a two-sided
   * bound, where a surrogate trained with APT leaks mass no training simulation constrains, are
   * rejected and drawn again (sbi's leakage correction; interior-sample.ts). With the gapped
   * observation model, xObs may hold NaN (missing points) and `xErr` (its error bars) is required.
   *
   * @example
   * ```ts
   * const theta = await engine.sample(xObs, 1000); // 1000 × d, row-major
   * ```
   */
  async sample(
    xObs: ArrayLike<number>,
    n: number,
    options?: { key?: Array; xErr?: number | ArrayLike<number> },
  ): Promise<Float64Array> {
    const x = this.networkInput("sample", xObs, options?.xErr).input;
    if (!Number.isInteger(n) || n < 1) fail("sample", "n", "a positive integer", n);
    const { surrogate } = this.trained("sample");
    const { theta } = await interiorSample(
      (k, m) => surrogateSample(surrogate, k, x, m),
      this.prior.lower,
      this.prior.upper,
      options?.key ?? keyAt(this.rootKey, 2),
      n,
    );
    return theta;
  }

  /**
   * log q(θ | xObs) for each row of θ (n × d). With the gapped observation model, xObs may hold
   * NaN (missing points) and `options.xErr` (its error bars) is required.
   *
   * @example
   * ```ts
   * const logQ = await engine.logProb(xObs, [[3, 6.2], [2.5, 7]]); // one value per row
   * ```
   */
  async logProb(
    xObs: ArrayLike<number>,
    theta: ArrayLike<number> | readonly ArrayLike<number>[],
    options?: { xErr?: number | ArrayLike<number> },
  ): Promise<Float64Array> {
    const x = this.networkInput("logProb", xObs, options?.xErr).input;
    const { net, surrogate } = this.trained("logProb");
    const t = toFloat64("logProb", "theta", theta);
    if (t.length % net.nDims !== 0 || t.length === 0)
      failText("logProb", "theta", `rows of ${net.nDims} numbers`, `${t.length} numbers`);
    return surrogateLogProb(surrogate, x, t);
  }

  /**
   * Amortized inference for many observations at once: n draws for each of m observations
   * (xObsMany: m × dataSize), returned as [m, n, d] row-major. One featurizer pass and one flow
   * pass per batch. With the gapped observation model, each light curve may have its own gaps
   * (NaN) and `xErr` its own error bars: one sigma, one per point (shared), or m rows.
   *
   * @example
   * ```ts
   * const draws = await engine.sampleBatch([xObs, xObs], 500); // [2, 500, d] row-major
   * const { samples, ood } = await engine.sampleBatch(table, 500, { ood: true });
   * ood.filter((r) => r.level !== "ok"); // observations unlike the training simulations
   * const gapped = await engine.sampleBatch([lc1, lc2], 500, { xErr: [err1, err2] }); // NaN gaps
   * ```
   */
  sampleBatch(
    xObsMany: ArrayLike<number> | readonly ArrayLike<number>[],
    n: number,
    options?: { key?: Array; ood?: false; xErr?: ObservationErrors },
  ): Promise<Float64Array>;
  /** With `ood: true`: the draws and the out-of-distribution alarm's report per observation. */
  sampleBatch(
    xObsMany: ArrayLike<number> | readonly ArrayLike<number>[],
    n: number,
    options: { key?: Array; ood: true; xErr?: ObservationErrors },
  ): Promise<SampleBatchResult>;
  sampleBatch(
    xObsMany: ArrayLike<number> | readonly ArrayLike<number>[],
    n: number,
    options?: { key?: Array; ood?: boolean; xErr?: ObservationErrors },
  ): Promise<Float64Array | SampleBatchResult>;
  async sampleBatch(
    xObsMany: ArrayLike<number> | readonly ArrayLike<number>[],
    n: number,
    options?: { key?: Array; ood?: boolean; xErr?: ObservationErrors },
  ): Promise<Float64Array | SampleBatchResult> {
    const x = this.networkInput("sampleBatch", xObsMany, options?.xErr, true).input;
    if (!Number.isInteger(n) || n < 1) fail("sampleBatch", "n", "a positive integer", n);
    if (options?.ood !== undefined && typeof options.ood !== "boolean")
      fail("sampleBatch", "options.ood", "true or false", options.ood);
    const { surrogate } = this.trained("sampleBatch");
    const samples = await surrogateSample(surrogate, options?.key ?? keyAt(this.rootKey, 3), x, n);
    return options?.ood ? { samples, ood: await this.distanceReports(x) } : samples;
  }

  /**
   * The out-of-distribution alarm for one or many observations (xObsMany: m × dataSize): how far
   * each lies from the training simulations in the featurizer's space, its tail probability
   * among the training simulations' own distances, and a level (ok, caution below 1%,
   * do-not-trust below 0.1%). No simulations: one featurizer pass. With the gapped observation
   * model, NaN marks missing points and `options.xErr` (as sampleBatch's) is required.
   *
   * @example
   * ```ts
   * const [report] = await engine.outOfDistribution(xObs);
   * if (report.level !== "ok") console.warn(report.message);
   * ```
   */
  async outOfDistribution(
    xObsMany: ArrayLike<number> | readonly ArrayLike<number>[],
    options?: { xErr?: ObservationErrors },
  ): Promise<OodReport[]> {
    return this.distanceReports(
      this.networkInput("outOfDistribution", xObsMany, options?.xErr, true).input,
    );
  }

  /** One distance report per observation in x (m observations as the network takes them). */
  private async distanceReports(x: Float32Array): Promise<OodReport[]> {
    const { net, surrogate } = this.trained("outOfDistribution");
    const m = x.length / observationSize(net);
    const stats = this.ood;
    if (!stats) return globalThis.Array.from({ length: m }, () => oodUnavailable(this.oodMissing));
    const features = await surrogateContexts(surrogate, x);
    return globalThis.Array.from(squaredDistances(stats, features), (d2) => oodReport(stats, d2));
  }

  /**
   * Summarises the featurizer's outputs on the training simulations (noisy as the fit made
   * them; at most 4096, drawn at random) for the alarm, with the validation split's as the
   * reference distances. Too few simulations or features that do not vary leave the alarm
   * unavailable, with the reason; they do not fail the fit.
   */
  private async learnTrainingFeatures(
    net: PosteriorNetwork,
    checkpoint: Checkpoint,
    data: readonly {
      readonly x: Float32Array;
      readonly theta: Float64Array;
      readonly valMask: Uint8Array;
    }[],
    noise: Noise | undefined,
  ): Promise<void> {
    const { dataSize, nDims } = net;
    const rows: { train: [number, number][]; held: [number, number][] } = { train: [], held: [] };
    data.forEach((round, r) => {
      for (let i = 0; i < round.theta.length / nDims; i++) {
        (round.valMask[i] ? rows.held : rows.train).push([r, i]);
      }
    });
    this.oodNoise =
      noise === undefined
        ? "none"
        : typeof noise === "function"
          ? "function"
          : isGappedLightCurves(noise)
            ? JSON.stringify(noise.toJSON())
            : JSON.stringify(typeof noise === "number" ? noise : globalThis.Array.from(noise));
    const features = async (which: [number, number][], index: number) => {
      const limit = 4096;
      const picked =
        which.length <= limit
          ? which
          : globalThis.Array.from(
              permutation(keyAt(this.rootKey, 11 + 2 * index), which.length)
                .subarray(0, limit)
                .sort(),
              (k) => which[k]!,
            );
      const x = new Float32Array(picked.length * dataSize);
      const theta = new Float64Array(picked.length * nDims);
      picked.forEach(([r, i], k) => {
        const round = data[r]!;
        x.set(round.x.subarray(i * dataSize, (i + 1) * dataSize), k * dataSize);
        theta.set(round.theta.subarray(i * nDims, (i + 1) * nDims), k * nDims);
      });
      const noisy =
        noise === undefined
          ? x
          : isGappedLightCurves(noise)
            ? await sampleGappedObservations(
                noise,
                deviceKey(keyAt(this.rootKey, 12 + 2 * index)),
                x,
                theta,
                net.inputShape,
                nDims,
              )
            : await addNoise(
                noise,
                keyAt(this.rootKey, 12 + 2 * index),
                x,
                theta,
                net.inputShape,
                nDims,
                "fit",
                "noise",
              );
      return surrogateContexts(surrogateOf(net, checkpoint), noisy);
    };
    const train = await features(rows.train, 0);
    const held = rows.held.length > 0 ? await features(rows.held, 1) : undefined;
    try {
      this.ood = featureStatistics(train, net.featurizer.dimOut, held);
    } catch (error) {
      if (!(error instanceof NbiError)) throw error;
      this.ood = undefined;
      this.oodMissing = error.message.replace(/^featureStatistics: /, "");
    }
  }

  /**
   * A posterior predictive check: the simulator run at nDraws posterior draws (resampled from
   * `result` by its weights: a `predict` or `fit` result), the measurement noise added, and the
   * observation compared with those replicated data: predictive median and 68%/95% bands per
   * data point, residuals, and the statistic T = Σ ((y − ȳ)/s)² with its posterior predictive
   * p-value (see ppc.ts). A small p-value says the model does not describe xObs.
   *
   * With the gapped observation model, NaN in xObs marks a missing point and `xErr` holds the
   * observation's own error bars (as `predict` takes them): the replicated data get Gaussian noise
   * with those sigmas, at a missing point its own sigma when given, else the median of the
   * observed points' sigmas, so the bands are drawn at every point; the residuals, the statistic
   * and its p-value run over the observed points only.
   *
   * A method of its own, not an option of `predict`: it costs nDraws more simulations, a user
   * checks the observations worth checking, and it takes any weighted result (a fit's too).
   * predict's own simulations belong to proposal draws, not posterior draws; reusing them would
   * tie the check to the weights' quality.
   *
   * @example
   * ```ts
   * const post = await engine.predict(xObs, { xErr: 0.1 });
   * const check = await engine.posteriorPredictive(xObs, post, { xErr: 0.1, nDraws: 500 });
   * check.pValue; check.message; // plots.ppcPlot(check) draws it
   * // gapped observation model: NaN where a point is missing, one sigma per point
   * const gapped = await engine.posteriorPredictive(lc, post, { xErr: lcErr });
   * ```
   */
  async posteriorPredictive(
    xObs: ArrayLike<number>,
    result: { readonly samples: Float64Array; readonly weights: Float64Array },
    options: PredictiveOptions = {},
  ): Promise<PredictiveCheck> {
    const fn = "posteriorPredictive";
    const { net } = this.trained(fn);
    const d = net.nDims;
    if (typeof options !== "object" || options === null) fail(fn, "options", "an object", options);
    const x = net.gaps ? gappedValues(fn, xObs, net.dataSize) : this.observation(fn, xObs);
    if (typeof result !== "object" || result === null)
      fail(fn, "result", "a predict or fit result { samples, weights }", result);
    const { samples, weights } = result;
    if (!(samples instanceof Float64Array) || samples.length === 0 || samples.length % d !== 0)
      fail(fn, "result.samples", `a Float64Array of rows of ${d} parameters`, samples);
    if (!(weights instanceof Float64Array) || weights.length !== samples.length / d) {
      fail(
        fn,
        "result.weights",
        `a Float64Array of ${samples.length / d} weights (one per draw)`,
        weights,
      );
    }
    const badWeight = weights.findIndex((w) => !(w >= 0 && Number.isFinite(w)));
    if (badWeight >= 0)
      fail(fn, `result.weights[${badWeight}]`, "a finite weight ≥ 0", weights[badWeight]);
    if (!weights.some((w) => w > 0))
      failText(fn, "result.weights", "at least one positive weight", "all 0");
    const nDraws = options.nDraws ?? 500;
    if (!Number.isInteger(nDraws) || nDraws < 20 || nDraws > 1e6)
      fail(fn, "nDraws", "an integer in [20, 1e6]", nDraws);
    if (options.xErr !== undefined && options.noise !== undefined)
      failText(fn, "xErr", "either xErr or noise, not both", "both");
    if (isGappedLightCurves(options.noise)) {
      fail(
        fn,
        "noise",
        "Gaussian sigmas or a noise function (the replicated data have no gaps: give xErr, the observation's error bars)",
        options.noise.toString(),
      );
    }
    const noise =
      options.noise ??
      (net.gaps && options.xErr !== undefined
        ? replicateSigmas(fn, x, options.xErr, net.dataSize)
        : options.xErr) ??
      (isGappedLightCurves(this.fitNoise) ? undefined : this.fitNoise);
    if (noise === undefined && net.gaps) {
      fail(
        fn,
        "xErr",
        "the observation's error bars (one sigma, or one per point; NaN where a point is missing): the replicated data get noise with those sigmas",
        undefined,
      );
    }
    if (noise === undefined) {
      fail(
        fn,
        "xErr",
        "the measurement noise of the replicated data: xErr sigmas or a noise function (noise), as fit's noise; 0 for none",
        undefined,
      );
    }
    if (!this.options.simulator) {
      fail(
        fn,
        "simulator",
        "a simulator to replicate data with (give it to NBI or NBI.load)",
        undefined,
      );
    }
    const key = options.key ?? keyAt(this.rootKey, 16);
    const theta = resample(keyAt(key, 0), samples, weights, d, nDraws);
    const sim = await simulateRows(
      this.options.simulator,
      theta,
      d,
      net.dataSize,
      simulationSeeds(keyAt(key, 1), nDraws),
      {
        ...(this.options.workers !== undefined ? { workers: this.options.workers } : {}),
        ...(this.options.simTimeoutMs !== undefined
          ? { simTimeoutMs: this.options.simTimeoutMs }
          : {}),
        ...(options.signal ? { signal: options.signal } : {}),
        ...(options.onSimulate ? { onProgress: options.onSimulate } : {}),
      },
    );
    const simulated = sim.status.reduce((s, v) => s + (v === 0 ? 1 : 0), 0);
    if (simulated < 20) {
      throw new NbiError(
        `${fn}: expected at least 20 successful simulations of the ${nDraws} posterior draws, got ${simulated}` +
          (sim.firstError ? ` (first simulator error: ${sim.firstError})` : ""),
      );
    }
    // Failed simulations are NaN rows: the check leaves them out.
    const replicas = await addNoise(
      noise,
      keyAt(key, 2),
      sim.x,
      theta,
      net.inputShape,
      d,
      fn,
      options.noise !== undefined ? "noise" : "xErr",
    );
    return predictiveCheck(x, replicas, net.inputShape, { missing: Boolean(net.gaps) });
  }

  /**
   * Posterior samples at xObs with importance weights from the exact likelihood: draws from the
   * surrogate, simulates them, reweights, and tops up until n_eff reaches neffMin (or the
   * efficiency drops below fAcceptMin, or nMax simulations are spent). With the gapped
   * observation model, NaN in xObs marks a missing point: the network sees the gaps and `xErr`
   * (required) as it did in training, and the Gaussian likelihood sums over observed points only
   * (a custom `logLike` receives xObs with its NaN).
   *
   * @example
   * ```ts
   * const post = await engine.predict(xObs, { xErr: 0.1, nSamples: 2000, neffMin: 500 });
   * console.log(post.ess, post.logEvidence, post.paretoK);
   * // gapped observation model: NaN where a point is missing, one sigma per point
   * const gapped = await engine.predict([1.2, Number.NaN, 0.7 ], { xErr: [0.1, Number.NaN, 0.3] });
   * ```
   */
  async predict(xObs: ArrayLike<number>, options: PredictOptions = {}): Promise<PredictResult> {
    const { net, surrogate } = this.trained("predict");
    const { values: x, input, packed } = this.networkInput("predict", xObs, options.xErr);
    const d = net.nDims;
    const nSamples = options.nSamples ?? 1000;
    if (!Number.isInteger(nSamples) || nSamples < 2)
      fail("predict", "nSamples", "an integer ≥ 2", nSamples);
    const nMax = options.nMax ?? 10 * nSamples;
    if (!Number.isInteger(nMax) || nMax < nSamples)
      fail("predict", "nMax", `an integer ≥ nSamples (${nSamples})`, nMax);
    const neffMin = options.neffMin ?? 0;
    const fAcceptMin = options.fAcceptMin ?? 0;
    if (options.pool !== undefined && typeof options.pool !== "boolean")
      fail("predict", "pool", "true or false", options.pool);
    const logLike =
      options.logLike ??
      (options.xErr === undefined
        ? undefined
        : net.gaps
          ? maskedGaussianLogLike(options.xErr, net.dataSize)
          : gaussianLogLike(options.xErr, net.dataSize));
    const key = options.key ?? keyAt(this.rootKey, 4);
    const warnings: string[] = this.gaps && packed ? gapWarnings(this.gaps, packed) : [];
    const [ood] = await this.distanceReports(input);
    if (!logLike) {
      const trust = trustReport(ood!);
      const samples = await surrogateSample(surrogate, key, input, nSamples);
      return withDisplay(
        {
          samples,
          weights: new Float64Array(nSamples).fill(1 / nSamples),
          ess: Number.NaN,
          kishEss: Number.NaN,
          efficiency: Number.NaN,
          logEvidence: Number.NaN,
          logEvidenceSe: Number.NaN,
          paretoK: Number.NaN,
          nSimulations: 0,
          dropped: 0,
          redrawn: 0,
          pooled: { rows: 0, nEff: 0 },
          surrogateOnly: true,
          warnings: [
            "no likelihood given (xErr or logLike): these are the surrogate's samples, unweighted",
            ...warnings,
            ...(trust.verdict !== "ok" ? [trust.message] : []),
          ],
          labels: this.labels,
          trust,
        },
        "predict",
      );
    }
    // The draws, simulations and weights (browser-safe: nbi/browser's predict runs the same).
    const simulator = this.options.simulator;
    // The fit's weighed draws, where predict's target is the fit's (fit-draws.ts).
    const fitDraws = drawsToPool(this.fitDraws, options.pool, this.prior, logLike, x);
    const {
      samples: thetaAll,
      importance: imp,
      pooled,
      nSimulations,
      dropped,
      redrawn,
      warnings: weightWarnings,
    } = await weightedDraws({
      surrogate,
      prior: this.prior,
      xObs: x,
      netInput: input,
      logLike,
      key,
      nSamples,
      nMax,
      neffMin,
      fAcceptMin,
      defensive: options.defensive,
      adapt: options.adapt ?? true,
      simulate: (draws, seeds, onProgress) =>
        simulateRows(simulator, draws, d, net.dataSize, seeds, {
          ...(this.options.workers !== undefined ? { workers: this.options.workers } : {}),
          ...(this.options.simTimeoutMs !== undefined
            ? { simTimeoutMs: this.options.simTimeoutMs }
            : {}),
          ...(options.signal ? { signal: options.signal } : {}),
          onProgress,
        }),
      ...(options.onSimulate ? { onSimulate: options.onSimulate } : {}),
      ...(fitDraws ? { earlier: fitDraws.groups } : {}),
    });
    warnings.push(...weightWarnings);
    const advice = weightAdvice({
      ess: imp.nEff,
      efficiency: imp.nEff / (thetaAll.length / d),
      paretoK: imp.paretoK,
      draws: thetaAll.length / d,
      redrawn,
      target: neffMin,
      adapted: options.adapt ?? true,
    });
    if (advice) warnings.push(advice);
    const trust = trustReport(ood!, {
      ess: imp.nEff,
      efficiency: imp.nEff / (thetaAll.length / d),
      paretoK: imp.paretoK,
      target: neffMin,
    });
    if (trust.verdict !== "ok") warnings.push(trust.message);
    return withDisplay(
      {
        samples: thetaAll,
        weights: imp.weights,
        ess: imp.nEff,
        kishEss: imp.kishEss,
        efficiency: imp.nEff / (thetaAll.length / d),
        logEvidence: imp.logEvidence,
        logEvidenceSe: imp.logEvidenceSe,
        paretoK: imp.paretoK,
        nSimulations,
        dropped,
        redrawn,
        pooled,
        surrogateOnly: false,
        warnings,
        labels: this.labels,
        trust,
      },
      "predict",
    );
  }

  /**
   * Calibration of an amortized fit over the prior predictive: nTest test pairs (θ* from the
   * prior, x simulated with the fit's noise), nSamples surrogate draws at each x, then SBC ranks
   * per parameter, the expected coverage of highest-density regions, TARP, and a verdict in
   * words with sizes ("over-confident: the 90% highest-density region covers 71% of true
   * parameters ..."). Failed test simulations are left out and counted in `failed`.
   *
   * @example
   * ```ts
   * await engine.fit({ nSims: 5000, noise: 0.1 }); // amortized: no xObs
   * const cal = await engine.calibrate({ nTest: 300, nSamples: 500 });
   * console.log(cal.verdict.summary);
   * ```
   */
  async calibrate(options: CalibrateOptions = {}): Promise<CalibrationResult> {
    const o = checkCalibrateOptions(options);
    const { net, surrogate } = this.trained("calibrate");
    if (this.runHistory.length > 1) {
      failText(
        "calibrate",
        "the engine",
        "an amortized fit (one round from the prior)",
        `a sequential fit of ${this.runHistory.length} rounds, whose surrogate is trained around its xObs ` +
          "and is not meant to be calibrated over the prior predictive (predict's importance weights check it)",
      );
    }
    const key = o.key ?? keyAt(this.rootKey, 20);
    const noise = o.noise ?? this.fitNoise;
    // The gapped observation model: test observations get their own gaps and error bars.
    const gaps = isGappedLightCurves(noise) ? noise : undefined;
    if (Boolean(net.gaps) !== Boolean(gaps)) {
      failText(
        "calibrate",
        "noise",
        net.gaps
          ? "the gapped observation model the network was trained with (gappedLightCurves)"
          : "Gaussian sigmas or a noise function (the network was trained without gaps)",
        noise === undefined
          ? "none"
          : isGappedLightCurves(noise)
            ? noise.toString()
            : describe(noise),
      );
    }
    const pairs = await drawTestPairs({
      prior: this.prior,
      simulator: this.options.simulator,
      nTest: o.nTest,
      inputShape: net.inputShape,
      key: keyAt(key, 0),
      ...(noise !== undefined && !gaps ? { noise } : {}),
      ...(this.options.workers !== undefined ? { workers: this.options.workers } : {}),
      ...(this.options.simTimeoutMs !== undefined
        ? { simTimeoutMs: this.options.simTimeoutMs }
        : {}),
      ...(o.signal ? { signal: o.signal } : {}),
      ...(o.onSimulate ? { onSimulate: o.onSimulate } : {}),
    });
    const n = pairs.theta.length / net.nDims;
    if (n < 2) {
      throw new NbiError(
        `calibrate: ${pairs.failed.total} of ${o.nTest} test simulations failed, leaving ${n}` +
          (pairs.failed.firstError ? ` (first error: ${pairs.failed.firstError})` : "") +
          "; check the simulator over the prior's support",
      );
    }
    const L = o.nSamples;
    const xs = gaps
      ? await sampleGappedObservations(
          gaps,
          deviceKey(keyAt(key, 3)),
          pairs.x,
          pairs.theta,
          net.inputShape,
          net.nDims,
        )
      : pairs.x;
    const size = observationSize(net);
    const samples = await surrogateSample(surrogate, keyAt(key, 1), xs, L);
    // log q at θ* and at the draws, one observation at a time (its context computed once).
    const d = net.nDims;
    const logProbTrue = new Float64Array(n);
    const logProbSamples = new Float64Array(n * L);
    const rows = new Float64Array((L + 1) * d);
    for (let i = 0; i < n; i++) {
      o.signal?.throwIfAborted();
      rows.set(pairs.theta.subarray(i * d, (i + 1) * d));
      rows.set(samples.subarray(i * L * d, (i + 1) * L * d), d);
      const x = xs.subarray(i * size, (i + 1) * size);
      const lq = await surrogateLogProb(surrogate, x, rows);
      logProbTrue[i] = lq[0]!;
      logProbSamples.set(lq.subarray(1), i * L);
    }
    return calibrationFromSamples({
      theta: pairs.theta,
      samples,
      logProbTrue,
      logProbSamples,
      nDims: d,
      nSamples: L,
      labels: this.labels,
      key: keyAt(key, 2),
      failed: pairs.failed,
      significance: o.significance,
    });
  }

  /**
   * The fit's per-round history.
   *
   * @example
   * ```ts
   * engine.history.map((r) => r.nEff); // n_eff per round
   * ```
   */
  get history(): readonly RoundRecord[] {
    return this.runHistory;
  }

  /**
   * The gapped observation model the network encodes for (fit's noise, or restored from
   * model.json by `NBI.load`), or undefined for a network trained without gaps.
   *
   * @example
   * ```ts
   * const loaded = await NBI.load("runs/gaps/model");
   * loaded.observationModel?.toString(); // "gappedLightCurves(missing [0, 0.5], sigma [0.15, 0.5])"
   * ```
   */
  get observationModel(): GappedLightCurves | undefined {
    return this.gaps;
  }

  /**
   * Saves the trained network: `model.json` (format, version, configs, data shape, labels, prior,
   * history, and the gapped observation model when it has one, functions as "function") and
   * `weights.safetensors` (parameters by pytree path, scales in float64).
   *
   * @example
   * ```ts
   * await engine.save("models/sine"); // models/sine/model.json and weights.safetensors
   * ```
   */
  async save(dir: string): Promise<void> {
    const { net, checkpoint } = this.trained("save");
    const folder = resolvePath(dir);
    await mkdir(folder, { recursive: true });
    const lock = await acquireLock(join(folder, LOCK_FILE), "save", { reentrant: true });
    try {
      await this.saveLocked(folder, net, checkpoint);
    } finally {
      await lock.release();
    }
  }

  private async saveLocked(
    folder: string,
    net: PosteriorNetwork,
    checkpoint: Checkpoint,
  ): Promise<void> {
    const model: Omit<ModelFile, "format" | "version"> = {
      flow: isConfig(this.options.flow) ? (this.options.flow as FlowConfig) : "custom",
      featurizer: isConfig(this.options.featurizer)
        ? (this.options.featurizer as FeaturizerConfig)
        : "custom",
      dataShape: this.options.dataShape
        ? [...this.options.dataShape]
        : net.inputShape[0] === 1
          ? [net.inputShape[1]]
          : [...net.inputShape],
      labels: [...this.labels],
      prior: this.prior.toJSON(),
      seed: this.seed,
      history: this.runHistory,
      ...(net.gaps && this.gaps ? { observation: this.gaps.toJSON() } : {}),
    };
    // The model folder's format (src/io/model-file.ts): weights.safetensors, then model.json.
    await writeModelFolder(
      folder,
      MODEL_FILE_FORMAT,
      {
        manifest: model,
        tensors: {
          ...(await paramsToTensors(checkpoint.params)),
          ...scalesToTensors(checkpoint.scales),
        },
      },
      "save",
    );
    // The alarm's statistics beside the weights; none (a stale file from another model) removed.
    if (this.ood) await writeFeatureStatistics(join(folder, OOD_FILE), this.ood, this.oodNoise);
    else await rm(join(folder, OOD_FILE), { force: true });
    // The fit's weighed draws, which predict pools at the fit's target (none: a stale file removed).
    if (this.fitDraws) await writeFitDraws(join(folder, FIT_DRAWS_FILE), this.fitDraws);
    else await rm(join(folder, FIT_DRAWS_FILE), { force: true });
  }

  /**
   * Loads a saved engine. The simulator is needed for predict (and further fits); priors default
   * to the saved ones; a custom flow or featurizer must be given again, and so must a gapped
   * observation model given functions (`noise`; one given ranges is restored from model.json).
   * `noise` is also the default noise of `calibrate` and `posteriorPredictive`. Loading reads data only:
   * model.json's sizes are checked against the weights file (and sane limits) before any network
   * is built, so a damaged or foreign model.json cannot make it allocate gigabytes.
   *
   * @example
   * ```ts
   * const engine = await NBI.load("models/sine", { simulator: sine });
   * const post = await engine.predict(xObs, { xErr: 0.1 });
   * ```
   */
  static async load(
    dir: string,
    options: Partial<
      Pick<
        NbiOptions,
        | "simulator"
        | "priors"
        | "flow"
        | "featurizer"
        | "path"
        | "backend"
        | "workers"
        | "seed"
        | "simulatorVersion"
        | "simTimeoutMs"
      >
    > & {
      /** The fit's noise model (needed again for a gapped observation model with functions). */
      noise?: Noise;
    } = {},
  ): Promise<NBI> {
    // model.json's format and version are checked first (src/io/model-file.ts).
    const {
      folder,
      manifest: model,
      manifestPath: modelPath,
      tensors,
      tensorsPath: weightsPath,
    } = await readModelFolder<ModelFile>(dir, MODEL_FILE_FORMAT, "NBI.load");
    const flow = options.flow ?? (model.flow === "custom" ? undefined : model.flow);
    const featurizer =
      options.featurizer ?? (model.featurizer === "custom" ? undefined : model.featurizer);
    if (!flow || !featurizer) {
      throw new NbiError(
        `NBI.load: ${folder} was saved with a custom ${!flow ? "flow" : "featurizer"}; pass it again in options`,
      );
    }
    const shape = model.dataShape as unknown;
    if (
      !globalThis.Array.isArray(shape) ||
      shape.length < 1 ||
      shape.length > 2 ||
      !shape.every((v) => Number.isInteger(v) && v >= 1 && v <= 2 ** 31)
    ) {
      fail("NBI.load", `${modelPath} dataShape`, "[length] or [channels, length]", shape);
    }
    // The weights (read above) bound what model.json may ask to build.
    const inputShape: [number, number] =
      shape.length === 1 ? [1, shape[0] as number] : [shape[0] as number, shape[1] as number];
    const nDims = isConfig(flow) ? (flow as FlowConfig).nDims : Number.NaN;
    const scaleLength = (k: string) => tensors[`scales.${k}`]?.data.length;
    for (const [k, want] of [
      ["xMean", inputShape[0]],
      ["xStd", inputShape[0]],
      ["thetaMean", nDims],
      ["thetaStd", nDims],
    ] as const) {
      const got = scaleLength(k);
      if (got !== undefined && Number.isFinite(want) && got !== want) {
        throw new NbiError(
          `NBI.load: ${weightsPath} scales.${k} expected ${want} values (${k.startsWith("x") ? `the channels of dataShape [${shape.join(", ")}]` : "flow.nDims"} in ${modelPath}), got ${got}; the two files do not belong together`,
        );
      }
    }
    let fileParameters = 0;
    for (const [name, t] of Object.entries(tensors)) {
      if (!name.startsWith("scales.")) fileParameters += t.data.length;
    }
    checkSavedSizes(
      modelPath,
      options.flow === undefined ? (flow as FlowConfig) : undefined,
      options.featurizer === undefined ? (featurizer as FeaturizerConfig) : undefined,
      inputShape,
      Number.isFinite(nDims) ? nDims : 1,
      fileParameters,
      weightsPath,
    );
    const engine = new NBI({
      flow,
      featurizer,
      priors: options.priors ?? fromSpec(model.prior),
      labels: model.labels,
      dataShape: model.dataShape,
      seed: options.seed ?? model.seed,
      ...(options.simulator ? { simulator: options.simulator } : {}),
      ...(options.path ? { path: options.path } : { path: folder }),
      ...(options.backend ? { backend: options.backend } : {}),
      ...(options.workers !== undefined ? { workers: options.workers } : {}),
      ...(options.simulatorVersion !== undefined
        ? { simulatorVersion: options.simulatorVersion }
        : {}),
      ...(options.simTimeoutMs !== undefined ? { simTimeoutMs: options.simTimeoutMs } : {}),
    });
    if (model.observation !== undefined) {
      engine.gaps = gappedFromSpec(
        model.observation,
        "NBI.load",
        `${modelPath} observation`,
        isGappedLightCurves(options.noise) ? options.noise : undefined,
      );
    }
    if (
      options.noise !== undefined &&
      Boolean(engine.gaps) !== isGappedLightCurves(options.noise)
    ) {
      failText(
        "NBI.load",
        "noise",
        engine.gaps
          ? `the gapped observation model ${modelPath} records`
          : `a noise model without gaps (${modelPath} records no gapped observation model)`,
        isGappedLightCurves(options.noise) ? options.noise.toString() : describe(options.noise),
      );
    }
    if (options.noise !== undefined) engine.fitNoise = options.noise;
    else if (engine.gaps) engine.fitNoise = engine.gaps;
    const net = await engine.network();
    const template = await initPosterior(net, keyAt(engine.rootKey, 0));
    engine.checkpoint = checkpointFromTensors(template, tensors, weightsPath);
    engine.runHistory = model.history ?? [];
    const oodPath = join(folder, OOD_FILE);
    if (await fileExists(oodPath))
      engine.ood = await readFeatureStatistics(oodPath, net.featurizer.dimOut);
    else {
      engine.oodMissing = `${folder} was saved without training statistics (${OOD_FILE}; models saved before the alarm existed, or fitted on fewer than 25 simulations): fit and save again to enable it`;
    }
    const drawsPath = join(folder, FIT_DRAWS_FILE);
    if (await fileExists(drawsPath)) engine.fitDraws = await readFitDraws(drawsPath, net.nDims);
    return engine;
  }

  /** Node's util.inspect, Deno and REPLs print the engine as its toString. */
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString();
  }

  /**
   * A one-line summary: the prior, rounds fitted, backend and path.
   *
   * @example
   * ```ts
   * String(engine); // "NBI(independent{A: uniform(1, 5), omega: uniform(2, 10)}, 3 rounds fitted, backend cpu, path …)"
   * ```
   */
  toString(): string {
    const rounds = this.runHistory.length;
    return `NBI(${this.prior.toString()}, ${rounds} round${rounds === 1 ? "" : "s"} fitted, backend ${backendInfo().current}, path ${this.path})`;
  }
}

function pick<T extends object, K extends keyof T>(o: T, keys: readonly K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}

/** Every option `fit` takes (the compiler checks this list against FitOptions). */
const FIT_KEYS: Record<keyof FitOptions, true> = {
  xObs: true,
  xErr: true,
  x: true,
  theta: true,
  nRounds: true,
  noise: true,
  logLike: true,
  progress: true,
  resume: true,
  onResume: true,
  nSims: true,
  nEpochs: true,
  batchSize: true,
  lr: true,
  minLr: true,
  fVal: true,
  nReuse: true,
  earlyStopPatience: true,
  calibrateSpread: true,
  emaHalfLife: true,
  earlyStopTrain: true,
  defensive: true,
  loss: true,
  atoms: true,
  proposal: true,
  truncationEps: true,
  adaptRounds: true,
  flowSpace: true,
  neffStop: true,
  fAcceptMin: true,
  signal: true,
  onEpoch: true,
  onStep: true,
  onSimulate: true,
  onRound: true,
  onWarning: true,
};

/** Every problem of fit's options at once: unknown keys, and each plain setting's rule. */
function checkFitOptions(o: FitOptions): void {
  const known = Object.keys(FIT_KEYS);
  orThrow(
    "fit",
    checkFitSettings(o as Readonly<Record<string, unknown>>, {
      known,
      unknown: (keys) => {
        const named = keys.map((k) => {
          const hint = didYouMean(k, known);
          return `${JSON.stringify(k)}${hint ? ` (did you mean ${hint}?)` : ""}`;
        });
        return [
          `options expected only known options, got unknown ${named.join(", ")}; known: ${known.join(", ")}`,
        ];
      },
    }),
  );
}

/**
 * A featurizer config's dimIn must fit the data: channels for the sequence featurizers, the
 * flattened size for an MLP. Checked when the network is built, before round 0 simulates.
 */
function checkFeaturizerInput(
  featurizer: FeaturizerConfig | Featurizer,
  shape: readonly number[],
  gaps?: GappedLightCurves,
): void {
  if (!isConfig(featurizer)) return;
  const config = featurizer as FeaturizerConfig;
  const [C, L] = shape.length === 1 ? [1, shape[0]!] : [shape[0]!, shape[1]!];
  const k = gaps ? GAPPED_CHANNELS : 1;
  const expected = config.type === "mlp" ? k * C * L : k * C;
  if (typeof config.dimIn === "number" && config.dimIn !== expected) {
    const channels = gaps
      ? `${GAPPED_CHANNELS} × ${C} channel${C === 1 ? "" : "s"}: the gapped observation model feeds values, mask and sigmas for each of the data's channels, data of shape [${shape.join(", ")}]`
      : `the data's channels: data of shape [${shape.join(", ")}]${shape.length === 1 ? ", one channel" : ""}`;
    failText(
      "NBI",
      "featurizer.dimIn",
      config.type === "mlp"
        ? gaps
          ? `${expected} (an MLP sees each observation flattened: ${channels}, length ${L})`
          : `${expected} (an MLP sees each simulation flattened: data of shape [${shape.join(", ")}])`
        : `${expected} (${channels})`,
      String(config.dimIn),
    );
  }
}

/** The data shape recorded by an existing store in `path`, if there is one. */
async function readStoredShape(path: string): Promise<number[] | undefined> {
  const text = await readFile(join(path, "manifest.json"), "utf8").catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    const shape = (JSON.parse(text) as { dataShape?: unknown }).dataShape;
    return globalThis.Array.isArray(shape) &&
      shape.length >= 1 &&
      shape.length <= 2 &&
      shape.every((v) => Number.isInteger(v) && v >= 1)
      ? (shape as number[])
      : undefined;
  } catch {
    return undefined; // openStore names the damaged manifest
  }
}

function sha256(...parts: (string | ArrayBufferView)[]): string {
  const hash = createHash("sha256");
  for (const part of parts) {
    hash.update(
      typeof part === "string"
        ? part
        : new Uint8Array(part.buffer, part.byteOffset, part.byteLength),
    );
  }
  return hash.digest("hex");
}

/** What identifies the simulator: module, export and content; a version; or a source hash. */
async function simulatorIdentity(
  simulator: Simulator | undefined,
  version: string | undefined,
): Promise<Record<string, unknown>> {
  const tagged = version !== undefined ? { version } : {};
  if (simulator === undefined) return { kind: "none", ...tagged };
  if (typeof simulator === "function") {
    return version !== undefined
      ? { kind: "version", version }
      : { kind: "source", sha256: sha256(simulator.toString()) };
  }
  const file = fileURLToPath(moduleUrlOf(simulator));
  const bytes = await readFile(file);
  return {
    kind: "module",
    module: file,
    exportName: simulator.exportName ?? "default",
    sha256: sha256(bytes),
    ...tagged,
  };
}

/** The noise model as plain JSON: sigmas, or a function's source hash. */
function noiseIdentity(noise: Noise | undefined): unknown {
  if (noise === undefined) return null;
  if (typeof noise === "function") return { function: sha256(noise.toString()) };
  if (isGappedLightCurves(noise)) {
    const part = (v: GappedLightCurves["missing"] | GappedLightCurves["sigma"]) =>
      typeof v === "function" ? { function: sha256(v.toString()) } : v;
    return { gappedLightCurves: { missing: part(noise.missing), sigma: part(noise.sigma) } };
  }
  return typeof noise === "number" ? noise : globalThis.Array.from(noise);
}

/**
 * What decides a fit's stored simulations (`data`) and its training (`training`), as recorded in
 * the store's manifest. Functions are identified by a hash of their source text.
 */
async function runFingerprint(
  engine: { options: NbiOptions; prior: Prior; seed: number },
  o: FitOptions,
  run: {
    net: PosteriorNetwork;
    nSims: number;
    xObs: Float32Array | undefined;
    precomputed: SnpeConfig["precomputed"];
    shape: readonly number[];
  },
): Promise<StoreFingerprint> {
  const { options } = engine;
  const seq = sequentialOptions(o, run.net);
  return {
    data: {
      prior: engine.prior.toJSON(),
      simulator: await simulatorIdentity(options.simulator, options.simulatorVersion),
      dataShape: [...run.shape],
      nSims: run.nSims,
      seed: engine.seed,
      noise: noiseIdentity(o.noise),
      xObs: run.xObs ? sha256(run.xObs) : null,
      // Only when given: a store fingerprinted before xErr existed still resumes.
      ...(o.xErr !== undefined ? { xErr: sha256(toFloat32("fit", "xErr", o.xErr)) } : {}),
      logLike: o.logLike ? { function: sha256(o.logLike.toString()) } : null,
      precomputed: run.precomputed ? sha256(run.precomputed.x, run.precomputed.theta) : null,
    },
    training: {
      flow: isConfig(options.flow) ? options.flow : "custom",
      featurizer: isConfig(options.featurizer) ? options.featurizer : "custom",
      nEpochs: o.nEpochs ?? 10,
      batchSize: o.batchSize ?? 64,
      lr: o.lr ?? 1e-3,
      minLr: o.minLr ?? null,
      fVal: o.fVal ?? 0.1,
      nReuse: o.nReuse ?? "auto",
      earlyStopPatience: o.earlyStopPatience ?? null,
      emaHalfLife: o.emaHalfLife ?? EMA_HALF_LIFE,
      // Only when off: a store fingerprinted before the calibration existed still resumes.
      ...(o.calibrateSpread === false ? { calibrateSpread: false } : {}),
      sequential: JSON.parse(JSON.stringify(seq)) as unknown,
    },
  };
}

const short = (value: unknown): string => {
  const text = JSON.stringify(value) ?? "undefined";
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
};

/** What differs between a stored fingerprint and this fit's, in words ([] when nothing does). */
export function fingerprintChanges(stored: StoreFingerprint, now: StoreFingerprint): string[] {
  const out: string[] = [];
  for (const part of ["data", "training"] as const) {
    const a = (stored[part] ?? {}) as Record<string, unknown>;
    const b = (now[part] ?? {}) as Record<string, unknown>;
    for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
      if (JSON.stringify(a[key]) === JSON.stringify(b[key])) continue;
      out.push(describeChange(key, a[key], b[key]));
    }
  }
  return out;
}

function describeChange(key: string, before: unknown, after: unknown): string {
  if (key === "simulator") {
    const a = (before ?? {}) as Record<string, unknown>;
    const b = (after ?? {}) as Record<string, unknown>;
    if (a.kind === "module" && b.kind === "module" && a.module === b.module) {
      if (a.exportName !== b.exportName) {
        return `simulator export ${short(a.exportName)} → ${short(b.exportName)}`;
      }
      if (a.sha256 !== b.sha256) {
        return `simulator module ${String(b.module)} changed (content hash ${String(a.sha256).slice(0, 12)} → ${String(b.sha256).slice(0, 12)})`;
      }
      return `simulatorVersion ${short(a.version)} → ${short(b.version)}`;
    }
    if (a.kind === "source" && b.kind === "source") {
      return (
        "simulator: the in-process function's source text changed (it is identified by a hash of " +
        "fn.toString() because no simulatorVersion was given; give simulatorVersion to name versions yourself)"
      );
    }
    if (a.kind === "version" && b.kind === "version") {
      return `simulatorVersion ${short(a.version)} → ${short(b.version)}`;
    }
    return `simulator ${short(before)} → ${short(after)}`;
  }
  if (key === "xObs" || key === "precomputed" || key === "logLike") return `${key} changed`;
  return `${key} ${short(before)} → ${short(after)}`;
}

/** Whether a file is there to read (an optional file of a saved model's folder). */
function fileExists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}
