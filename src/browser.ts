/**
 * `nbi/browser`: the NBI engine for web pages (and Web Workers, Deno): amortized NPE and SNPE-IS
 * rounds (`snpeIS`), predict with importance weights, progress through callbacks, simulations kept
 * in IndexedDB (so a reloaded page resumes its run) or in memory. No Node built-in is reachable
 * from this entry. Simulators run in-process (a function) or in Web Workers (a module URL whose
 * worker answers `postMessage` batches; see `webWorkerSimulator`).
 *
 * ```ts
 * import { BrowserNBI, priors } from "nbi/browser";
 * const engine = new BrowserNBI({ flow: { nDims: 2 }, featurizer: { type: "mlp", dimIn: 50, dimOut: 16 },
 *   priors: { f: priors.uniform(0.5, 2), phi: priors.uniform(0, Math.PI) }, simulator: sine, dataShape: [50] });
 * const fit = await engine.fit({ xObs, xErr: 0.1, noise: 0.1, nRounds: 3, nSims: 500 });
 * const post = await engine.predict(xObs, { xErr: 0.1, nSamples: 1000 });
 * ```
 *
 * @module nbi/browser
 */
import type { Flow } from "./bijectors/flows.js";
import { fail, NbiError } from "./errors.js";
import type { FeaturizerConfig } from "./featurizers/registry.js";
import type { Featurizer } from "./featurizers/types.js";
import { drawsToPool, type FitDraws, fitDrawsOf } from "./inference/fit-draws.js";
import { isGappedLightCurves } from "./inference/gaps.js";
import { hostKey, keyAt } from "./inference/host.js";
import { hasIndexedDb, openIndexedDbStore } from "./inference/idb-store.js";
import type { ImportanceResult } from "./inference/importance.js";
import { gaussianLogLike, type LogLike } from "./inference/likelihood.js";
import { memoryStore } from "./inference/memory-store.js";
import {
  type FlowConfig,
  type PosteriorNetwork,
  posteriorNetwork,
  surrogateOf,
} from "./inference/posterior.js";
import { type Prior, resolvePriors } from "./inference/priors.js";
import type { PredictResult } from "./inference/results.js";
import { simulateRows } from "./inference/simulation/rows.js";
import type { SimulatorFn } from "./inference/simulation/simulate.js";
import { webWorkerSimulator } from "./inference/simulation/web-worker.js";
import {
  type Checkpoint,
  type Hooks,
  type RoundOptions,
  type SnpeResult,
  snpeIS,
} from "./inference/snpe.js";
import type { SimulationStore } from "./inference/store.js";
import type { Noise } from "./inference/train.js";
import { weightedDraws } from "./inference/weighted-draws.js";
import { backendInfo, useBackend } from "./ops/backend.js";
import type { BackendName } from "./trace/backend.js";

export { NbiError } from "./errors.js";
export { deleteIndexedDbStore, hasIndexedDb, openIndexedDbStore } from "./inference/idb-store.js";
export { memoryStore } from "./inference/memory-store.js";
export * as priors from "./inference/priors.js";
export { serveSimulator, webWorkerSimulator } from "./inference/simulation/web-worker.js";
export type { RoundRecord, SnpeResult } from "./inference/snpe.js";
export type { SimulationStore, StoreMeta } from "./inference/store.js";

/** What `new BrowserNBI(options)` takes. */
export interface BrowserNbiOptions {
  /** Flow hyperparameters (nbi's, camelCase; nDims required) or a custom flow. */
  flow: FlowConfig | Flow;
  /** A featurizer config ({ type: "mlp", dimIn, dimOut, ... }) or a custom featurizer. */
  featurizer: FeaturizerConfig | Featurizer;
  /**
   * (θ, { seed }) → data, in-process; or `{ workerUrl, workers? }`: a module Web Worker (see
   * `webWorkerSimulator`) run in `workers` copies (default navigator.hardwareConcurrency).
   */
  simulator: SimulatorFn | { workerUrl: string | URL; workers?: number };
  /** One prior, an array of priors, or an object of named priors (its keys become the labels). */
  priors: Prior | readonly Prior[] | Readonly<Record<string, Prior>>;
  /** Shape of one simulation: [length] or [channels, length]. */
  dataShape: readonly number[];
  /** One name per parameter (default: the priors' keys, or θ0, θ1, ...). */
  labels?: readonly string[];
  /**
   * Where simulations are kept: "indexeddb" (the default where IndexedDB exists: a reload
   * resumes), "memory" (the default elsewhere), or a store of your own.
   */
  store?: "indexeddb" | "memory" | SimulationStore;
  /** The IndexedDB store's name (default "nbi-run"). */
  storeName?: string;
  /** Backend of the network: "webgpu" (navigator.gpu), "cpu", or "auto" (default: as set). */
  backend?: BackendName | "auto";
  /** Seed of every random draw (default 0). */
  seed?: number;
}

/** Options of `BrowserNBI.fit`: the round options (defaults as the Node engine's) and hooks. */
export interface BrowserFitOptions extends Partial<RoundOptions>, Hooks {
  /** The observation: SNPE-IS rounds toward it; without it, one amortized round. */
  xObs?: ArrayLike<number>;
  /** Gaussian errors of xObs (the likelihood of the importance weights). */
  xErr?: number | ArrayLike<number>;
  /** An exact log-likelihood instead of the Gaussian one. */
  logLike?: LogLike;
  /** The cheap noise model applied to every training batch (a sigma or a function). */
  noise?: Noise;
  /** Most rounds (default 1 without xObs, 3 with it). */
  nRounds?: number;
}

/** What `BrowserNBI.fit` returns: the fold's result and where it ran. */
export interface BrowserFitResult extends SnpeResult {
  /** "indexeddb", "memory" or "custom": where the simulations are. */
  readonly storeKind: string;
  /** The backend the network trained on. */
  readonly backend: BackendName;
}

/** Options of `BrowserNBI.predict`. Give `xErr` or `logLike`. */
export interface BrowserPredictOptions {
  xErr?: number | ArrayLike<number>;
  logLike?: LogLike;
  /** Surrogate draws simulated and weighted (default 1000). */
  nSamples?: number;
  /** Top up until n_eff reaches this (default: no top-up). */
  neffMin?: number;
  /** At most this many draws (default 10 × nSamples). */
  nMax?: number;
  /** Adaptive importance sampling after a pilot (default true; see the Node engine's predict). */
  adapt?: boolean;
  /**
   * Pool the last fit's weighed rounds where predict's target is the fit's and the rounds hold
   * (default true; see the Node engine's predict and fit-draws.ts).
   */
  pool?: boolean;
  signal?: AbortSignal;
  onSimulate?: (done: number, total: number) => void;
}

/**
 * What `BrowserNBI.predict` returns: the Node engine's `PredictResult` fields that the page
 * computes (no trust report, no dropped or redrawn counts), with the same meanings.
 */
export type BrowserPredictResult = Pick<
  PredictResult,
  | "samples"
  | "weights"
  | "ess"
  | "efficiency"
  | "paretoK"
  | "logEvidence"
  | "pooled"
  | "nSimulations"
  | "labels"
  | "warnings"
>;

/**
 * The engine in a page: fit (amortized or SNPE-IS) and predict with importance weights.
 *
 * @example
 * ```ts
 * const engine = new BrowserNBI({ flow: { nDims: 2 }, featurizer: { type: "mlp", dimIn: 50, dimOut: 16 },
 *   priors: [priors.uniform(0.5, 2), priors.uniform(0, 3.14)], simulator: sine, dataShape: [50] });
 * const fit = await engine.fit({ xObs, xErr: 0.1, noise: 0.1, nRounds: 2, nSims: 300,
 *   onRound: (r) => console.log(r.round, r.nEff) });
 * ```
 */
export class BrowserNBI {
  readonly prior: Prior;
  readonly labels: readonly string[];
  readonly net: PosteriorNetwork;
  private checkpoint: Checkpoint | undefined;
  /** The last fit's weighed draws, which predict pools at the fit's target (fit-draws.ts). */
  private fitDraws: FitDraws | undefined;
  private storeHandle: { store: SimulationStore; kind: string } | undefined;
  private readonly seed: number;

  constructor(private readonly options: BrowserNbiOptions) {
    if (options === null || typeof options !== "object") {
      fail("BrowserNBI", "options", "{ flow, featurizer, simulator, priors, dataShape }", options);
    }
    const sim = options.simulator as unknown;
    if (
      typeof sim !== "function" &&
      !(sim !== null && typeof sim === "object" && "workerUrl" in sim)
    ) {
      fail("BrowserNBI", "simulator", "a function (θ) → data or { workerUrl, workers? }", sim);
    }
    this.seed = options.seed ?? 0;
    if (!Number.isInteger(this.seed)) fail("BrowserNBI", "seed", "an integer", options.seed);
    this.prior = resolvePriors(options.priors, options.labels);
    this.labels = this.prior.labels ?? Array.from({ length: this.prior.dim }, (_, i) => `θ${i}`);
    this.net = posteriorNetwork(options.flow, options.featurizer, options.dataShape);
    if (this.net.nDims !== this.prior.dim) {
      fail("BrowserNBI", "flow.nDims", `the priors' dimension ${this.prior.dim}`, this.net.nDims);
    }
  }

  /** Runs rounds (SNPE-IS toward xObs, or one amortized round) and keeps the trained surrogate. */
  async fit(options: BrowserFitOptions = {}): Promise<BrowserFitResult> {
    const o = options;
    const xObs = o.xObs === undefined ? undefined : this.observation("fit", o.xObs);
    if (o.nSims === undefined || !Number.isInteger(o.nSims) || o.nSims < 2) {
      fail("fit", "nSims", "an integer ≥ 2", o.nSims);
    }
    if (isGappedLightCurves(o.noise)) {
      fail(
        "fit",
        "noise",
        "Gaussian sigmas or a noise function (the gapped observation model is served by the Node engine, NBI, for now)",
        o.noise.toString(),
      );
    }
    const logLike = this.likelihood(o.logLike, o.xErr);
    if (xObs && !logLike) {
      fail("fit", "xErr", "a number or array (or logLike) for the importance weights", o.xErr);
    }
    if (this.options.backend) await useBackend(this.options.backend);
    const { store, kind } = await this.store();
    const { xObs: _x, xErr: _e, logLike: _l, ...rest } = o;
    const result = await snpeIS({
      ...rest,
      nSims: o.nSims,
      nEpochs: o.nEpochs ?? 10,
      batchSize: o.batchSize ?? 64,
      lr: o.lr ?? 1e-3,
      nRounds: o.nRounds ?? (xObs ? 3 : 1),
      net: this.net,
      prior: this.prior,
      simulator: this.simulator(),
      store,
      key: keyAt(hostKey(this.seed), 0),
      ...(xObs ? { xObs } : {}),
      ...(logLike ? { logLike } : {}),
    });
    this.checkpoint = result.state.current;
    this.fitDraws = fitDrawsOf(result.state.data, this.net.nDims, this.net.dataSize);
    return { ...result, storeKind: kind, backend: backendInfo().current };
  }

  /** Draws from the surrogate at xObs, simulates them, and weights them with the likelihood. */
  async predict(
    xObs: ArrayLike<number>,
    options: BrowserPredictOptions = {},
  ): Promise<BrowserPredictResult> {
    const x = this.observation("predict", xObs);
    if (!this.checkpoint) throw new NbiError("predict: expected a fitted engine; call fit first");
    const logLike = this.likelihood(options.logLike, options.xErr);
    if (!logLike) fail("predict", "xErr", "a number or array (or logLike)", options.xErr);
    const nSamples = options.nSamples ?? 1000;
    if (!Number.isInteger(nSamples) || nSamples < 2)
      fail("predict", "nSamples", "an integer ≥ 2", nSamples);
    const nMax = options.nMax ?? 10 * nSamples;
    if (!Number.isInteger(nMax) || nMax < nSamples)
      fail("predict", "nMax", `an integer ≥ nSamples (${nSamples})`, nMax);
    if (options.pool !== undefined && typeof options.pool !== "boolean")
      fail("predict", "pool", "true or false", options.pool);
    const d = this.net.nDims;
    const fitDraws = drawsToPool(this.fitDraws, options.pool, this.prior, logLike, x);
    const simulator = this.simulator();
    const r = await weightedDraws({
      surrogate: surrogateOf(this.net, this.checkpoint),
      prior: this.prior,
      xObs: x,
      logLike,
      key: keyAt(hostKey(this.seed), 4),
      nSamples,
      nMax,
      neffMin: options.neffMin ?? 0,
      fAcceptMin: 0,
      defensive: undefined,
      adapt: options.adapt ?? true,
      simulate: (draws, seeds, onProgress) =>
        simulateRows(simulator, draws, d, this.net.dataSize, seeds, {
          ...(options.signal ? { signal: options.signal } : {}),
          onProgress,
        }),
      ...(options.onSimulate ? { onSimulate: options.onSimulate } : {}),
      ...(fitDraws ? { earlier: fitDraws.groups } : {}),
    });
    const imp: ImportanceResult = r.importance;
    return {
      samples: r.samples,
      weights: imp.weights,
      ess: imp.nEff,
      efficiency: imp.nEff / (r.samples.length / d),
      paretoK: imp.paretoK,
      logEvidence: imp.logEvidence,
      pooled: r.pooled,
      nSimulations: r.nSimulations,
      labels: this.labels,
      warnings: r.warnings,
    };
  }

  /** The store the fits use (opened on the first fit). */
  async store(): Promise<{ store: SimulationStore; kind: string }> {
    if (this.storeHandle) return this.storeHandle;
    const choice = this.options.store ?? (hasIndexedDb() ? "indexeddb" : "memory");
    const meta = {
      paramDim: this.prior.dim,
      dataShape: [...this.options.dataShape],
      labels: [...this.labels],
    };
    if (choice === "indexeddb") {
      const name = this.options.storeName ?? "nbi-run";
      this.storeHandle = { store: await openIndexedDbStore(name, meta), kind: "indexeddb" };
    } else if (choice === "memory") {
      this.storeHandle = { store: memoryStore(meta), kind: "memory" };
    } else if (choice !== null && typeof choice === "object" && "readRound" in choice) {
      this.storeHandle = { store: choice, kind: "custom" };
    } else {
      fail("BrowserNBI", "store", '"indexeddb", "memory" or a SimulationStore', choice);
    }
    return this.storeHandle!;
  }

  private simulator() {
    const sim = this.options.simulator;
    return typeof sim === "function" ? sim : webWorkerSimulator(sim.workerUrl, sim.workers);
  }

  private likelihood(
    logLike: LogLike | undefined,
    xErr: number | ArrayLike<number> | undefined,
  ): LogLike | undefined {
    return logLike ?? (xErr !== undefined ? gaussianLogLike(xErr, this.net.dataSize) : undefined);
  }

  private observation(fn: string, xObs: ArrayLike<number>): Float32Array {
    const size = this.net.dataSize;
    if (xObs === null || typeof xObs !== "object" || xObs.length !== size) {
      fail(fn, "xObs", `${size} numbers (dataShape [${this.options.dataShape.join(", ")}])`, xObs);
    }
    const x = Float32Array.from(xObs);
    if (!x.every(Number.isFinite)) fail(fn, "xObs", "finite numbers", xObs);
    return x;
  }
}
