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
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join, resolve as resolvePath } from "node:path";
import type { Flow } from "../bijectors/flows.js";
import { describe, fail, failText, NbiError } from "../errors.js";
import type { FeaturizerConfig } from "../featurizers/registry.js";
import type { Featurizer } from "../featurizers/types.js";
import type { Array } from "../ops/array.js";
import { backendInfo, useBackend } from "../ops/backend.js";
import { weightAdvice } from "./advice.js";
import { loadCheckpoint, saveCheckpoint } from "./checkpoint.js";
import { withDisplay } from "./display.js";
import { hostKey, keyAt } from "./host.js";
import { type ImportanceResult, importanceWeights } from "./importance.js";
import { gaussianLogLike, type LogLike, logLikelihoods, needsSimulation } from "./likelihood.js";
import {
  type Defensive,
  type FlowConfig,
  initPosterior,
  type PosteriorNetwork,
  posteriorNetwork,
  surrogateLogProb,
  surrogateSample,
} from "./posterior.js";
import { fromSpec, type Prior, type PriorSpec, resolvePriors } from "./priors.js";
import {
  drawProposal,
  type ProposalContext,
  proposalLogDensity,
  type RoundProposal,
} from "./proposals.js";
import { type Simulator, simulateRows, simulationSeeds } from "./simulate-rows.js";
import {
  type Checkpoint,
  defensiveFor,
  type Hooks,
  type RoundCheckpoints,
  type RoundOptions,
  type RoundRecord,
  type SnpeConfig,
  type SnpeResult,
  snpeIS,
} from "./snpe.js";
import { openStore, type SimulationStore } from "./store.js";
import type { Noise } from "./train.js";

export const MODEL_FORMAT = "nbi-model";
export const MODEL_VERSION = 1;

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
  /** The run's folder: simulation store, round checkpoints (default "nbi-run"). */
  path?: string;
  /** Backend for the network (default: the current default backend). */
  backend?: "cpu" | "webgpu" | "auto";
  /** Seed of every random draw (default 0). Results do not depend on the worker count. */
  seed?: number;
  /** Worker threads for a module simulator (default: the number of cores). */
  workers?: number;
  /** Shape of one simulation ([length] or [channels, length]); inferred when omitted. */
  dataShape?: readonly number[];
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
  /** Gaussian noise sigmas (also the default likelihood), or a noise function (key, x, θ) → x'. */
  noise?: Noise;
  /** Exact log-likelihood for the importance weights (default: Gaussian with the noise sigmas). */
  logLike?: LogLike;
  /** Progress bars on stderr (default: when stderr is a terminal). */
  progress?: boolean;
}

/** What `NBI.fit` returns; it prints as a table of rounds and the weighted posterior. */
export interface FitResult {
  /** Per round: ESS, efficiency, losses, epochs, simulations made, dropped and redrawn. */
  readonly history: readonly RoundRecord[];
  /** Weighted draws of all rounds (n × d) and their normalised weights (nbi's result()). */
  readonly samples: Float64Array;
  /** One normalised weight per row of `samples`, each round's scaled by its n_eff. */
  readonly weights: Float64Array;
  /** n_eff per round (NaN for rounds without importance weights, e.g. amortized NPE). */
  readonly essHistory: readonly number[];
  /** Why the run stopped. */
  readonly stopped: string;
  /** One name per parameter (the columns of `samples`). */
  readonly labels: readonly string[];
}

/** Options of `NBI.predict`. Give `xErr` or `logLike` for importance weights. */
export interface PredictOptions {
  /** Gaussian measurement errors of xObs (one sigma or one per element). */
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
}

/** What `NBI.predict` returns; it prints as a table of the weighted posterior. */
export interface PredictResult {
  /** Draws from the proposal, n × d in the user's units. */
  readonly samples: Float64Array;
  /** Normalised importance weights, one per row of `samples` (uniform when surrogateOnly). */
  readonly weights: Float64Array;
  /** nbi's n_eff = 1/Σw² − 1, and Kish's 1/Σw². */
  readonly ess: number;
  /** Kish's effective sample size 1/Σw². */
  readonly kishEss: number;
  /** n_eff / draws: the sampling efficiency (near 1 when the surrogate matches the posterior). */
  readonly efficiency: number;
  /** log of the evidence p(xObs) estimated from the weights. */
  readonly logEvidence: number;
  /** Standard error of `logEvidence`. */
  readonly logEvidenceSe: number;
  /** PSIS k̂ of the weights: below 0.7 the weighted results can be trusted. */
  readonly paretoK: number;
  /** Simulations run (all top-ups included). */
  readonly nSimulations: number;
  /** Simulations dropped (non-finite output, simulator error, crashed worker). */
  readonly dropped: number;
  /** Proposal draws outside the prior's support, redrawn. */
  readonly redrawn: number;
  /** True when no likelihood was given: samples are the surrogate's, weights uniform. */
  readonly surrogateOnly: boolean;
  /** Diagnostics worth reading (heavy-tailed weights, dropped simulations, a short n_eff). */
  readonly warnings: readonly string[];
  /** One name per parameter (the columns of `samples`). */
  readonly labels: readonly string[];
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

function toFloat32(fn: string, name: string, v: unknown): Float32Array {
  return Float32Array.from(toFloat64(fn, name, v));
}

function checkObservation(fn: string, xObs: Float32Array): void {
  const bad = xObs.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) {
    throw new NbiError(
      `${fn}: xObs expected finite numbers, got ${xObs[bad]} at index ${bad} ` +
        "(mask or interpolate missing data before inference)",
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
    this.net = posteriorNetwork(this.options.flow, this.options.featurizer, shape);
    return this.net;
  }

  /** Runs the simulator once (at a prior draw) to learn its output length. */
  private async probeDataShape(): Promise<number[]> {
    const theta = this.prior.sample(keyAt(this.rootKey, 5), 1);
    const rows = await this.simulateOnce(theta);
    return [rows.length];
  }

  private async simulateOnce(theta: Float64Array): Promise<Float32Array> {
    let out: Float32Array | undefined;
    const { simulate } = await import("./simulate.js");
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
      { workers: 1 },
    );
    if (!out || report.ok !== 1) {
      throw new NbiError(
        `NBI: could not learn the data shape: the simulator failed at θ = [${globalThis.Array.from(theta).join(", ")}]` +
          (report.firstError ? ` (${report.firstError})` : ""),
      );
    }
    return out;
  }

  private async openRunStore(net: PosteriorNetwork): Promise<SimulationStore> {
    if (!this.store) {
      this.store = await openStore(this.path, {
        paramDim: net.nDims,
        dataShape:
          net.inputShape[0] === 1 && (this.options.dataShape?.length ?? 1) === 1
            ? [net.inputShape[1]]
            : [...net.inputShape],
        labels: this.labels,
      });
    }
    return this.store;
  }

  /**
   * Trains the surrogate: SNPE-IS with xObs, amortized NPE without. Resumes from the store.
   *
   * @example
   * ```ts
   * const fit = await engine.fit({ xObs, nSims: 500, nRounds: 4, nEpochs: 20, noise: 0.1 });
   * console.log(fit.essHistory, fit.stopped);
   * const amortized = await engine.fit({ nSims: 10000, noise: 0.1 }); // no xObs: one round from the prior
   * ```
   */
  async fit(options: FitOptions): Promise<FitResult> {
    if (typeof options !== "object" || options === null)
      fail("fit", "options", "an object", options);
    const o = options;
    const xObsRaw = o.xObs === undefined ? undefined : toFloat32("fit", "xObs", o.xObs);
    if (xObsRaw) checkObservation("fit", xObsRaw);
    const net = await this.network(xObsRaw ? [xObsRaw.length] : undefined);
    if (xObsRaw && xObsRaw.length !== net.dataSize) {
      failText(
        "fit",
        "xObs",
        `${net.dataSize} numbers (the simulator's output size)`,
        `${xObsRaw.length} numbers`,
      );
    }
    const d = net.nDims;
    let precomputed: SnpeConfig["precomputed"];
    if (o.x !== undefined || o.theta !== undefined) {
      const x = toFloat32("fit", "x", o.x);
      const theta = toFloat64("fit", "theta", o.theta);
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
      precomputed = { x, theta };
    }
    const nRounds = o.nRounds ?? 1;
    if (!Number.isInteger(nRounds) || nRounds < 1)
      fail("fit", "nRounds", "a positive integer", nRounds);
    if (nRounds > 1 && !xObsRaw)
      fail("fit", "xObs", "an observation for sequential rounds (nRounds > 1)", undefined);
    const nSims = o.nSims ?? (precomputed ? precomputed.theta.length / d : Number.NaN);
    if (!Number.isInteger(nSims) || nSims < 2) fail("fit", "nSims", "an integer ≥ 2", o.nSims);
    const logLike =
      o.logLike ??
      (o.noise !== undefined && typeof o.noise !== "function"
        ? gaussianLogLike(o.noise as number | ArrayLike<number>, net.dataSize)
        : undefined);
    if (xObsRaw && nRounds > 1 && !logLike) {
      fail(
        "fit",
        "logLike",
        "a likelihood for importance weights (or Gaussian noise sigmas)",
        undefined,
      );
    }
    const store = await this.openRunStore(net);
    const progress = o.progress ?? Boolean(process.stderr.isTTY);
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
      ...(xObsRaw ? { xObs: xObsRaw } : {}),
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
        "earlyStopTrain",
        "neffStop",
        "fAcceptMin",
        "loss",
        "atoms",
        "proposal",
        "truncationEps",
        "defensive",
      ]),
      key: fitKey(this.seed),
      ...(this.options.workers !== undefined ? { workers: this.options.workers } : {}),
    };
    const result: SnpeResult = await snpeIS(config, undefined, this.roundCheckpoints(store, net));
    this.checkpoint = result.state.current;
    this.runHistory = [...result.history];
    return withDisplay(
      {
        history: result.history,
        samples: result.samples,
        weights: result.weights,
        essHistory: result.essHistory,
        stopped: result.stopped,
        labels: this.labels,
      },
      "fit",
    );
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
        return { checkpoint, record: { ...record, bestValLoss: record.bestValLoss ?? Number.NaN } };
      },
      save: async (round, checkpoint, record) => {
        await mkdir(store.roundDir(round), { recursive: true });
        await saveCheckpoint(join(store.roundDir(round), "checkpoint.safetensors"), checkpoint, {
          round: String(round),
        });
        await store.writeJson(round, "record", record); // last: a round counts as finished once this exists
      },
    };
  }

  private trained(fn: string): { net: PosteriorNetwork; checkpoint: Checkpoint } {
    if (!this.net || !this.checkpoint) {
      throw new NbiError(
        `${fn}: the engine has no trained network yet; call fit() first or NBI.load(dir)`,
      );
    }
    return { net: this.net, checkpoint: this.checkpoint };
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
    checkObservation(fn, x);
    return x;
  }

  /**
   * n draws from the surrogate q(θ | xObs), n × d, unweighted (no simulations: fast, but only as
   * good as the surrogate; `predict` corrects it).
   *
   * @example
   * ```ts
   * const theta = await engine.sample(xObs, 1000); // 1000 × d, row-major
   * ```
   */
  async sample(
    xObs: ArrayLike<number>,
    n: number,
    options?: { key?: Array },
  ): Promise<Float64Array> {
    const x = this.observation("sample", xObs);
    if (!Number.isInteger(n) || n < 1) fail("sample", "n", "a positive integer", n);
    const { net, checkpoint } = this.trained("sample");
    return surrogateSample(
      net,
      checkpoint.params,
      checkpoint.scales,
      options?.key ?? keyAt(this.rootKey, 2),
      x,
      n,
    );
  }

  /**
   * log q(θ | xObs) for each row of θ (n × d).
   *
   * @example
   * ```ts
   * const logQ = await engine.logProb(xObs, [[3, 6.2], [2.5, 7]]); // one value per row
   * ```
   */
  async logProb(
    xObs: ArrayLike<number>,
    theta: ArrayLike<number> | readonly ArrayLike<number>[],
  ): Promise<Float64Array> {
    const x = this.observation("logProb", xObs);
    const { net, checkpoint } = this.trained("logProb");
    const t = toFloat64("logProb", "theta", theta);
    if (t.length % net.nDims !== 0 || t.length === 0)
      failText("logProb", "theta", `rows of ${net.nDims} numbers`, `${t.length} numbers`);
    return surrogateLogProb(net, checkpoint.params, checkpoint.scales, x, t);
  }

  /**
   * Amortized inference for many observations at once: n draws for each of m observations
   * (xObsMany: m × dataSize), returned as [m, n, d] row-major. One featurizer pass and one flow
   * pass per batch.
   *
   * @example
   * ```ts
   * const draws = await engine.sampleBatch([xObs, xObs], 500); // [2, 500, d] row-major
   * ```
   */
  async sampleBatch(
    xObsMany: ArrayLike<number> | readonly ArrayLike<number>[],
    n: number,
    options?: { key?: Array },
  ): Promise<Float64Array> {
    const x = this.observation("sampleBatch", xObsMany as ArrayLike<number>, true);
    if (!Number.isInteger(n) || n < 1) fail("sampleBatch", "n", "a positive integer", n);
    const { net, checkpoint } = this.trained("sampleBatch");
    return surrogateSample(
      net,
      checkpoint.params,
      checkpoint.scales,
      options?.key ?? keyAt(this.rootKey, 3),
      x,
      n,
    );
  }

  /**
   * Posterior samples at xObs with importance weights from the exact likelihood: draws from the
   * surrogate, simulates them, reweights, and tops up until n_eff reaches neffMin (or the
   * efficiency drops below fAcceptMin, or nMax simulations are spent).
   *
   * @example
   * ```ts
   * const post = await engine.predict(xObs, { xErr: 0.1, nSamples: 2000, neffMin: 500 });
   * console.log(post.ess, post.logEvidence, post.paretoK);
   * ```
   */
  async predict(xObs: ArrayLike<number>, options: PredictOptions = {}): Promise<PredictResult> {
    const x = this.observation("predict", xObs);
    const { net, checkpoint } = this.trained("predict");
    const d = net.nDims;
    const nSamples = options.nSamples ?? 1000;
    if (!Number.isInteger(nSamples) || nSamples < 2)
      fail("predict", "nSamples", "an integer ≥ 2", nSamples);
    const nMax = options.nMax ?? 10 * nSamples;
    if (!Number.isInteger(nMax) || nMax < nSamples)
      fail("predict", "nMax", `an integer ≥ nSamples (${nSamples})`, nMax);
    const neffMin = options.neffMin ?? 0;
    const fAcceptMin = options.fAcceptMin ?? 0;
    const logLike =
      options.logLike ??
      (options.xErr !== undefined ? gaussianLogLike(options.xErr, net.dataSize) : undefined);
    const key = options.key ?? keyAt(this.rootKey, 4);
    const warnings: string[] = [];
    if (!logLike) {
      const samples = await surrogateSample(
        net,
        checkpoint.params,
        checkpoint.scales,
        key,
        x,
        nSamples,
      );
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
          surrogateOnly: true,
          warnings: [
            "no likelihood given (xErr or logLike): these are the surrogate's samples, unweighted",
          ],
          labels: this.labels,
        },
        "predict",
      );
    }
    let thetaAll: Float64Array<ArrayBuffer> = new Float64Array(0);
    let logW: Float64Array<ArrayBuffer> = new Float64Array(0);
    let nSimulations = 0;
    let dropped = 0;
    let redrawn = 0;
    let batch = nSamples;
    let importance: ImportanceResult | undefined;
    const defensive = defensiveFor(net, options.defensive);
    const ctx: ProposalContext = { net, prior: this.prior, xObs: x, checkpoints: [checkpoint] };
    const plan: RoundProposal = {
      parts: [
        {
          weight: 1,
          part: { kind: "surrogate", round: 0, ...(defensive ? { defensive } : {}), logMass: 0 },
        },
      ],
    };
    // A likelihood of θ alone needs no simulations.
    const simulate = needsSimulation(logLike);
    let accepted = 0;
    let tried = 0;
    for (let attempt = 0; batch > 0; attempt++) {
      const draw = await drawProposal(ctx, plan, keyAt(key, 2 * attempt), batch, {
        kind: "surrogate",
        ...(defensive ? { defensive } : {}),
        truncationEps: 1e-4,
      });
      const draws = draw.theta;
      redrawn += draw.redrawn;
      accepted += batch;
      tried += batch + draw.redrawn;
      const sim = simulate
        ? await simulateRows(
            this.options.simulator,
            draws,
            d,
            net.dataSize,
            simulationSeeds(keyAt(key, 2 * attempt + 1), batch),
            {
              ...(this.options.workers !== undefined ? { workers: this.options.workers } : {}),
              ...(options.signal ? { signal: options.signal } : {}),
              ...(options.onSimulate
                ? {
                    onProgress: (done: number) =>
                      options.onSimulate!(nSimulations + done, nSamples),
                  }
                : {}),
            },
          )
        : { x: undefined, status: new Uint8Array(batch) };
      if (simulate) nSimulations += batch;
      const lp = this.prior.logProb(draws);
      // The surrogate's density on the support, unnormalised: the evidence is corrected below.
      const lq = await proposalLogDensity(ctx, plan, draws, lp);
      const ll = logLikelihoods(logLike, x, sim.x, draws, d);
      const lw = new Float64Array(batch);
      for (let r = 0; r < batch; r++) {
        if (sim.status[r] !== 0) {
          dropped++;
          lw[r] = Number.NaN; // excluded and counted, never weighted
        } else lw[r] = ll[r]! + lp[r]! - lq[r]!;
      }
      thetaAll = concat64(thetaAll, draws);
      logW = concat64(logW, lw);
      importance = importanceWeights(logW);
      const drawn = thetaAll.length / d;
      const efficiency = importance.nEff / drawn;
      if (importance.nEff >= neffMin || drawn >= nMax || efficiency < fAcceptMin) break;
      // Enough further draws to reach neffMin at the efficiency seen so far.
      const need = Math.ceil((neffMin - importance.nEff) / Math.max(efficiency, 1e-3));
      batch = Math.min(Math.max(need, 2), nMax - drawn);
    }
    const imp = importance!;
    if (imp.paretoK > 0.7) {
      warnings.push(
        `Pareto k̂ = ${imp.paretoK.toFixed(2)} > 0.7: the weights are heavy-tailed; the weighted posterior is unreliable`,
      );
    }
    if (neffMin > 0 && imp.nEff < neffMin) {
      warnings.push(
        `n_eff ${imp.nEff.toFixed(1)} is below neffMin ${neffMin} after ${nSimulations} simulations`,
      );
    }
    const advice = weightAdvice({
      ess: imp.nEff,
      efficiency: imp.nEff / (thetaAll.length / d),
      paretoK: imp.paretoK,
      draws: thetaAll.length / d,
      redrawn,
      target: neffMin,
    });
    if (advice) warnings.push(advice);
    return withDisplay(
      {
        samples: thetaAll,
        weights: imp.weights,
        ess: imp.nEff,
        kishEss: imp.kishEss,
        efficiency: imp.nEff / (thetaAll.length / d),
        // The draws follow the proposal truncated to the prior: correct by its mass inside.
        logEvidence: imp.logEvidence + Math.log(accepted / tried),
        logEvidenceSe: imp.logEvidenceSe,
        paretoK: imp.paretoK,
        nSimulations,
        dropped,
        redrawn,
        surrogateOnly: false,
        warnings,
        labels: this.labels,
      },
      "predict",
    );
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
   * Saves the trained network: `model.json` (format, version, configs, data shape, labels, prior,
   * history) and `weights.safetensors` (parameters by pytree path, scales in float64).
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
    await saveCheckpoint(join(folder, "weights.safetensors"), checkpoint, { format: MODEL_FORMAT });
    const model: ModelFile = {
      format: MODEL_FORMAT,
      version: MODEL_VERSION,
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
    };
    const tmp = join(folder, "model.json.tmp");
    await writeFile(tmp, `${JSON.stringify(model, null, 2)}\n`);
    await rename(tmp, join(folder, "model.json"));
  }

  /**
   * Loads a saved engine. The simulator is needed for predict (and further fits); priors default
   * to the saved ones; a custom flow or featurizer must be given again.
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
        "simulator" | "priors" | "flow" | "featurizer" | "path" | "backend" | "workers" | "seed"
      >
    > = {},
  ): Promise<NBI> {
    const folder = resolvePath(dir);
    let model: ModelFile;
    try {
      model = JSON.parse(await readFile(join(folder, "model.json"), "utf8")) as ModelFile;
    } catch (e) {
      throw new NbiError(
        `NBI.load: ${folder} expected a saved model (model.json), got ${(e as Error).message}`,
      );
    }
    if (model.format !== MODEL_FORMAT || model.version > MODEL_VERSION) {
      throw new NbiError(
        `NBI.load: ${folder}/model.json expected format ${MODEL_FORMAT} version ≤ ${MODEL_VERSION}, got ${describe(model.format)} version ${model.version}`,
      );
    }
    const flow = options.flow ?? (model.flow === "custom" ? undefined : model.flow);
    const featurizer =
      options.featurizer ?? (model.featurizer === "custom" ? undefined : model.featurizer);
    if (!flow || !featurizer) {
      throw new NbiError(
        `NBI.load: ${folder} was saved with a custom ${!flow ? "flow" : "featurizer"}; pass it again in options`,
      );
    }
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
    });
    const net = await engine.network();
    const template = await initPosterior(net, keyAt(engine.rootKey, 0));
    engine.checkpoint = await loadCheckpoint(join(folder, "weights.safetensors"), template);
    engine.runHistory = model.history ?? [];
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

function concat64(a: Float64Array, b: Float64Array): Float64Array<ArrayBuffer> {
  const out = new Float64Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function pick<T extends object, K extends keyof T>(o: T, keys: readonly K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}
