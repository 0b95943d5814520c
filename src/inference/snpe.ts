/**
 * Sequential neural posterior estimation with importance sampling (nbi's SNPE-IS) as a fold over
 * rounds: `state' = await runRound(state, r)`, each state an immutable value.
 *
 * Round r draws `nSims` parameters from its proposal (the prior in round 0, afterwards the
 * surrogate q(θ | xObs) trained in round r − 1, redrawing draws outside the prior's support),
 * simulates them once (outputs persisted in the store so a killed run resumes), weights them with
 * the exact likelihood, w ∝ p(xObs | θ) p(θ) / q_r(θ), records n_eff, and trains the surrogate.
 *
 * Rounds pool their simulations for training (nReuse = −1 by default; nbi's 0 trains on the
 * round's own draws only); the importance weights make the combined result exact either way.
 */
import { NbiError } from "../errors.js";
import type { Array } from "../ops/array.js";
import { keyAt } from "./host.js";
import { combineRounds, type ImportanceResult, importanceWeights } from "./importance.js";
import { type LogLike, logLikelihoods } from "./likelihood.js";
import {
  type Defensive,
  fitScales,
  initPosterior,
  type PosteriorNetwork,
  type PosteriorParams,
  proposalLogProb,
  proposalSample,
  type Scales,
} from "./posterior.js";
import type { Prior } from "./priors.js";
import {
  type SimulatedRows,
  type Simulator,
  simulateRows,
  simulationSeeds,
} from "./simulate-rows.js";
import type { SimulationStore } from "./store.js";
import { abortError, type EpochRecord, type Noise, trainPosterior } from "./train.js";

export type { Simulator } from "./simulate-rows.js";

/** How each round simulates and trains (nbi's hyperparameters, camelCase). */
export interface RoundOptions {
  /** Simulations per round. */
  nSims: number;
  /** Training epochs per round. */
  nEpochs: number;
  /** Training batch size. */
  batchSize: number;
  /** Peak learning rate: Adam with a cosine decay from lr to minLr over each round. */
  lr: number;
  /** Default nbi's: min(lr, 10·lr / (nSims / batchSize · nEpochs)). */
  minLr?: number;
  /** Fraction of the simulations held out for validation (default 0.1, as nbi). */
  fVal?: number;
  /** Earlier rounds' simulations to train on as well: 0 only this round, −1 all (default −1). */
  nReuse?: number;
  /** Stop a round's training after this many epochs without a better validation loss (default: never). */
  earlyStopPatience?: number;
  /** Stop after a round where n_eff fell, reverting to the previous round's network. */
  earlyStopTrain?: boolean;
  /**
   * Later rounds' proposal: the surrogate mixed with a broadened copy (default { alpha: 0.3,
   * tau: 2 } for flows with a normal base), or false for the surrogate alone (nbi).
   */
  defensive?: Defensive | false;
  /** Stop once the summed n_eff exceeds this. */
  neffStop?: number;
  /** Stop once a round's sampling efficiency exceeds this. */
  fAcceptMin?: number;
}

/** Progress callbacks and cancellation of a fit. */
export interface Hooks {
  /** Aborts the fit: workers stop, finished simulations stay in the store, the call rejects. */
  signal?: AbortSignal;
  /** After each training epoch. */
  onEpoch?: (round: number, record: EpochRecord) => void;
  /** After each training step (for progress bars). */
  onStep?: (round: number, epoch: number, step: number, steps: number) => void;
  /** As simulations finish. */
  onSimulate?: (round: number, done: number, total: number) => void;
  /** After each round, with its record. */
  onRound?: (record: RoundRecord) => void;
  /** Each warning as it is raised (they are also kept in the round's record). */
  onWarning?: (message: string) => void;
}

/** Everything `snpeIS` needs: the network, prior, simulator, observation, and round options. */
export interface SnpeConfig extends RoundOptions, Hooks {
  /** The surrogate network (from `posteriorNetwork`). */
  net: PosteriorNetwork;
  /** The prior: round 0's proposal, and p(θ) in the importance weights. */
  prior: Prior;
  /** The expensive simulator (not needed when every round's outputs are in the store or precomputed). */
  simulator?: Simulator;
  /** Precomputed round-0 simulations (x: n × dataSize, theta: n × d). */
  precomputed?: {
    /** Outputs, n × dataSize. */
    x: Float32Array;
    /** Parameters, n × d. */
    theta: Float64Array;
  };
  /** Where θ and simulations are persisted so a killed run resumes (default: none, nothing is saved). */
  store?: SimulationStore;
  /** The observation to infer; without it every round draws from the prior (amortized NPE). */
  xObs?: Float32Array;
  /** The exact likelihood of the importance weights (needed for weights, with xObs). */
  logLike?: LogLike;
  /** The cheap noise model, applied afresh to every training batch. */
  noise?: Noise;
  /** Most rounds to run (a stopping rule may end the fold sooner). */
  nRounds: number;
  /** Host key derived from the seed; every draw descends from it. */
  key: Array;
  /** Worker threads for a module simulator (default: the number of cores). */
  workers?: number;
}

/** What one round did and measured. */
export interface RoundRecord {
  /** The round's number, from 0. */
  readonly round: number;
  /** Parameters drawn (after redraws) and simulated successfully. */
  readonly nDrawn: number;
  /** Simulations that returned finite outputs (the ones trained on). */
  readonly nSimulated: number;
  /** Simulations dropped: non-finite outputs, simulator errors, crashed workers. */
  readonly dropped: {
    /** Outputs with NaN or ±Infinity. */
    readonly nonFinite: number;
    /** The simulator threw. */
    readonly threw: number;
    /** The worker died (twice) on this θ. */
    readonly crashed: number;
  };
  /** Surrogate draws outside the prior's support that were redrawn. */
  readonly redrawn: number;
  /** The first simulator error's message, if any threw. */
  readonly firstError?: string;
  /** Importance sampling of this round's draws (with xObs and a likelihood). */
  readonly nEff?: number;
  /** Kish's effective sample size 1/Σw². */
  readonly kishEss?: number;
  /** n_eff / draws: nbi's sampling efficiency. */
  readonly efficiency?: number;
  /** log evidence estimated from this round's weights. */
  readonly logEvidence?: number;
  /** Standard error of `logEvidence`. */
  readonly logEvidenceSe?: number;
  /** PSIS k̂ of this round's weights (above 0.7: unreliable, and a warning). */
  readonly paretoK?: number;
  /** Loss and learning rate per training epoch. */
  readonly epochs: readonly EpochRecord[];
  /** The epoch whose parameters were kept (best validation loss; −1: the initial ones). */
  readonly bestEpoch: number;
  /** The validation loss of the kept parameters. */
  readonly bestValLoss: number;
  /** True when training stopped before nEpochs (earlyStopPatience). */
  readonly stoppedEarly: boolean;
  /** False when a stopping rule ended the fold before this round's training. */
  readonly trained: boolean;
  /** Wall-clock time of the round's parts. */
  readonly seconds: {
    /** Drawing, simulating and weighting. */
    readonly simulate: number;
    /** Training. */
    readonly train: number;
  };
  /** The round's warnings (dropped simulations, heavy-tailed weights). */
  readonly warnings: readonly string[];
}

/** One round's simulations that went into training (valid rows only). */
export interface RoundData {
  readonly theta: Float64Array;
  readonly x: Float32Array;
  readonly logWeights?: Float64Array;
  readonly importance?: ImportanceResult;
}

/** A trained surrogate: its parameters and the standardisation they were trained with. */
export interface Checkpoint {
  /** The network's parameters. */
  readonly params: PosteriorParams;
  /** The data and parameter scales of the round that trained them. */
  readonly scales: Scales;
}

/** The fold's state after some rounds: an immutable value, one per round. */
export interface SnpeState {
  /** The surrogate after the last trained round. */
  readonly current: Checkpoint;
  /** proposals[r] drew round r (undefined: the prior). */
  readonly proposals: readonly (Checkpoint | undefined)[];
  /** Each round's valid simulations and importance weights. */
  readonly data: readonly RoundData[];
  /** Each round's record. */
  readonly history: readonly RoundRecord[];
  /** Why the fold stopped, once a stopping rule fired. */
  readonly stopped?: string;
}

/** What `snpeIS` and `anpe` return. */
export interface SnpeResult {
  /** The final state (to continue with `runRound`). */
  readonly state: SnpeState;
  /** All rounds' draws, weights scaled by each round's n_eff (nbi's result()). */
  readonly samples: Float64Array;
  /** One normalised weight per row of `samples`. */
  readonly weights: Float64Array;
  /** n_eff per round (NaN without importance weights). */
  readonly essHistory: readonly number[];
  /** Each round's record. */
  readonly history: readonly RoundRecord[];
  /** Why the fold stopped ("completed all rounds" otherwise). */
  readonly stopped: string;
}

const PARETO_WARN = 0.7;

/** nbi's default minimum learning rate. */
export function defaultMinLr(o: RoundOptions): number {
  return Math.min(o.lr, (o.lr / ((o.nSims / o.batchSize) * o.nEpochs)) * 10);
}

/** The initial state: a freshly initialised network (scales are set by the first round). */
export async function initialState(config: SnpeConfig): Promise<SnpeState> {
  const params = await initPosterior(config.net, keyAt(config.key, 0));
  const d = config.net.nDims;
  const scales: Scales = {
    xMean: new Float64Array(config.net.inputShape[0]),
    xStd: new Float64Array(config.net.inputShape[0]).fill(1),
    thetaMean: new Float64Array(d),
    thetaStd: new Float64Array(d).fill(1),
  };
  return { current: { params, scales }, proposals: [], data: [], history: [] };
}

/**
 * Saves and restores finished rounds (the engine keeps them in the store), so a killed run
 * resumes: restored rounds replay their draws and weights from disk without retraining.
 */
export interface RoundCheckpoints {
  load(round: number): Promise<{ checkpoint: Checkpoint; record: RoundRecord } | undefined>;
  save(round: number, checkpoint: Checkpoint, record: RoundRecord): Promise<void>;
}

/**
 * Runs rounds until nRounds or a stopping rule; returns samples, weights and the ESS history.
 *
 * @example
 * ```ts
 * const net = inference.posteriorNetwork({ nDims: 2 }, { type: "mlp", dimIn: 50, dimOut: 16 }, [50]);
 * const result = await inference.snpeIS({ net, prior, simulator: sine, xObs: Float32Array.from(xObs), noise: 0.1,
 *   logLike: inference.gaussianLogLike(0.1, 50), nRounds: 3, nSims: 500, nEpochs: 20, batchSize: 64, lr: 1e-3, key: inference.hostKey(0) });
 * console.log(result.essHistory, result.stopped);
 * ```
 */
export async function snpeIS(
  config: SnpeConfig,
  from?: SnpeState,
  checkpoints?: RoundCheckpoints,
): Promise<SnpeResult> {
  let state = from ?? (await initialState(config));
  for (let r = state.history.length; r < config.nRounds && state.stopped === undefined; r++) {
    const restored = await checkpoints?.load(r);
    state = await runRound(state, r, config, restored);
    if (!restored) await checkpoints?.save(r, state.current, state.history[r]!);
    config.onRound?.(state.history[r]!);
  }
  return summarize(state, config);
}

/**
 * Amortized NPE: one round from the prior, no observation. The surrogate then serves any
 * observation with one forward pass.
 *
 * @example
 * ```ts
 * const net = inference.posteriorNetwork({ nDims: 2 }, { type: "mlp", dimIn: 50, dimOut: 16 }, [50]);
 * const { state } = await inference.anpe({ net, prior, simulator: sine, noise: 0.1,
 *   nSims: 5000, nEpochs: 20, batchSize: 64, lr: 1e-3, key: inference.hostKey(0) });
 * ```
 */
export async function anpe(config: Omit<SnpeConfig, "xObs" | "nRounds">): Promise<SnpeResult> {
  return snpeIS({ ...config, nRounds: 1 });
}

export function summarize(state: SnpeState, config: SnpeConfig): SnpeResult {
  const d = config.net.nDims;
  const weighted = state.data
    .map(
      (r) =>
        r.importance && { theta: r.theta, weights: r.importance.weights, nEff: r.importance.nEff },
    )
    .filter((r): r is { theta: Float64Array; weights: Float64Array; nEff: number } => !!r);
  const combined =
    weighted.length > 0
      ? combineRounds(weighted, d)
      : { theta: new Float64Array(0), weights: new Float64Array(0) };
  return {
    state,
    samples: combined.theta,
    weights: combined.weights,
    essHistory: state.history.map((h) => h.nEff ?? Number.NaN),
    history: state.history,
    stopped: state.stopped ?? "completed all rounds",
  };
}

/**
 * The key of round `round` under a run's key (`SnpeConfig.key`): the round's parameters are drawn
 * with `keyAt(roundKey, 0)` (see `drawRound`) and its simulators' seeds are
 * `simulationSeeds(keyAt(roundKey, 1), n)`. Sharded simulation (`nbi simulate`) derives the same.
 *
 * @example
 * ```ts
 * const k = inference.roundKeyOf(inference.hostKey(0), 2); // round 2's key
 * ```
 */
export function roundKeyOf(runKey: Array, round: number): Array {
  return keyAt(runKey, round + 1);
}

/** What `drawRound` needs: the run's network, prior, key and budget, and the round's proposal. */
export interface DrawRoundOptions {
  /** The posterior network (the proposal's architecture). */
  net: PosteriorNetwork;
  /** The prior: round 0's distribution, and the support draws must fall in. */
  prior: Prior;
  /** The run's key (`SnpeConfig.key`). */
  key: Array;
  /** The round (0 is drawn from the prior). */
  round: number;
  /** How many parameters to draw. */
  nSims: number;
  /** Sequential rounds: the observation the proposal is conditioned on. */
  xObs?: Float32Array;
  /** Sequential rounds: the proposal, the surrogate after round − 1. */
  proposal?: Checkpoint;
  /** The defensive mixture the proposal is drawn with (see `SnpeConfig.defensive`). */
  defensive?: Defensive;
}

/** A round's parameters and what drawing them took. */
export interface RoundDraw {
  /** nSims × d parameters, row-major. */
  theta: Float64Array;
  /** Draws outside the prior's support that were drawn again. */
  redrawn: number;
  /** The fraction of proposal draws inside the support (its mass there, for the evidence). */
  acceptance: number;
}

/**
 * Round `round`'s parameters exactly as `runRound` draws them: from the prior without a proposal,
 * else from the proposal at xObs (with the defensive mixture), redrawing draws outside the prior.
 *
 * @example
 * ```ts
 * const { theta } = await inference.drawRound({ net, prior, key: inference.hostKey(0), round: 0, nSims: 500 });
 * ```
 */
export async function drawRound(o: DrawRoundOptions): Promise<RoundDraw> {
  const key = keyAt(roundKeyOf(o.key, o.round), 0);
  if (o.proposal && o.xObs) {
    return drawFromProposal(o.net, o.proposal, o.prior, key, o.xObs, o.nSims, o.defensive);
  }
  return { theta: o.prior.sample(key, o.nSims), redrawn: 0, acceptance: 1 };
}

/**
 * Draws n parameters from the proposal at xObs, redrawing those outside the prior's support. The
 * accepted draws follow the proposal truncated to the support, whose density is the proposal's
 * divided by its mass inside; `acceptance` estimates that mass (for the evidence).
 */
export async function drawFromProposal(
  net: PosteriorNetwork,
  proposal: Checkpoint,
  prior: Prior,
  key: Array,
  xObs: Float32Array,
  n: number,
  defensive?: Defensive,
): Promise<{ theta: Float64Array; redrawn: number; acceptance: number }> {
  const d = net.nDims;
  const out = new Float64Array(n * d);
  let filled = 0;
  let redrawn = 0;
  let drawn = 0;
  for (let attempt = 0; filled < n; attempt++) {
    if (attempt >= 50) {
      throw new NbiError(
        "fit: the surrogate posterior put almost all its draws outside the prior's support " +
          `(${filled} of ${n} inside after ${redrawn} redraws); expected a surrogate that overlaps ` +
          "the prior — check that xObs was simulated from a parameter inside the prior",
      );
    }
    const want = Math.max(16, Math.ceil((n - filled) * (attempt === 0 ? 1 : 1.5)));
    const draws = await proposalSample(
      net,
      proposal.params,
      proposal.scales,
      keyAt(key, attempt),
      xObs,
      want,
      defensive,
    );
    const inside = prior.inSupport(draws);
    for (let i = 0; i < want && filled < n; i++) {
      drawn++;
      if (inside[i]) out.set(draws.subarray(i * d, (i + 1) * d), d * filled++);
      else redrawn++;
    }
  }
  return { theta: out, redrawn, acceptance: filled / drawn };
}

/** The defensive mixture to use with this network (none for flows without a normal base). */
export function defensiveFor(
  net: PosteriorNetwork,
  option: Defensive | false | undefined,
): Defensive | undefined {
  if (option === false || !net.normalBase) return undefined;
  return option ?? DEFAULT_DEFENSIVE;
}

/** The default defensive proposal: 30% of draws from the surrogate with base noise doubled. */
export const DEFAULT_DEFENSIVE: Defensive = { alpha: 0.3, tau: 2 };

async function runSimulations(
  config: SnpeConfig,
  round: number,
  theta: Float64Array,
  key: Array,
): Promise<SimulatedRows> {
  const n = theta.length / config.net.nDims;
  if (round === 0 && config.precomputed) {
    return { x: config.precomputed.x, status: new Uint8Array(n) };
  }
  const rows = await simulateRows(
    config.simulator,
    theta,
    config.net.nDims,
    config.net.dataSize,
    simulationSeeds(key, n),
    {
      ...(config.workers !== undefined ? { workers: config.workers } : {}),
      ...(config.signal ? { signal: config.signal } : {}),
      onProgress: (done, total) => config.onSimulate?.(round, done, total),
      ...(config.store ? { store: { store: config.store, round } } : {}),
    },
  );
  if (config.signal?.aborted) throw abortError(config.signal);
  return rows;
}

function countStatus(status: Uint8Array) {
  const c = [0, 0, 0, 0];
  for (const s of status) c[s] = (c[s] ?? 0) + 1;
  return { ok: c[0]!, nonFinite: c[1]!, threw: c[2]!, crashed: c[3]! };
}

function selectRows<T extends Float32Array | Float64Array>(a: T, rows: number[], width: number): T {
  const out = new (a.constructor as new (n: number) => T)(rows.length * width);
  rows.forEach((r, i) => {
    out.set(a.subarray(r * width, (r + 1) * width), i * width);
  });
  return out;
}

function concat<T extends Float32Array | Float64Array>(
  parts: readonly T[],
  ctor: new (n: number) => T,
): T {
  const out = new ctor(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * One round of the fold: draw from the proposal, simulate, weight, check the stopping rules,
 * train. Returns the next state; the given one is unchanged.
 *
 * @example
 * ```ts
 * const next = await inference.runRound(result.state, result.history.length, config); // one more round
 * console.log(next.history.at(-1)?.nEff, next.stopped);
 * ```
 */
export async function runRound(
  state: SnpeState,
  round: number,
  config: SnpeConfig,
  restored?: { checkpoint: Checkpoint; record: RoundRecord },
): Promise<SnpeState> {
  const { net, prior, store } = config;
  const d = net.nDims;
  const warnings: string[] = [];
  const warn = (m: string) => {
    warnings.push(m);
    config.onWarning?.(m);
  };
  const roundKey = roundKeyOf(config.key, round);
  const sequential = config.xObs !== undefined && round > 0;
  const proposal = sequential ? state.current : undefined;
  const t0 = performance.now();

  // 1. Draw (or reload) this round's parameters.
  let theta = await store?.roundParams(round);
  const defensive = defensiveFor(net, config.defensive);
  const saved = await store?.readJson<{ redrawn: number; acceptance: number }>(round, "draws");
  let redrawn = saved?.redrawn ?? 0;
  let acceptance = saved?.acceptance ?? 1;
  if (!theta) {
    if (round === 0 && config.precomputed) theta = config.precomputed.theta;
    else {
      const r = await drawRound({
        net,
        prior,
        key: config.key,
        round,
        nSims: config.nSims,
        ...(proposal ? { proposal, xObs: config.xObs!, defensive } : {}),
      });
      theta = r.theta;
      redrawn = r.redrawn;
      acceptance = r.acceptance;
    }
    await store?.writeJson(round, "draws", { redrawn, acceptance });
    await store?.writeRoundParams(round, theta);
  }

  // 2. Simulate what is not yet in the store.
  const sim = await runSimulations(config, round, theta, keyAt(roundKey, 1));
  const counts = countStatus(sim.status);
  if (counts.nonFinite + counts.threw + counts.crashed > 0) {
    warn(
      `round ${round}: ${counts.nonFinite + counts.threw + counts.crashed} of ${sim.status.length} simulations dropped ` +
        `(${counts.nonFinite} non-finite, ${counts.threw} threw, ${counts.crashed} crashed)` +
        (sim.firstError ? `; first error: ${sim.firstError}` : ""),
    );
  }
  const okRows = globalThis.Array.from(sim.status.keys()).filter((i) => sim.status[i] === 0);
  if (okRows.length < 2) {
    throw new NbiError(
      `fit: round ${round} expected at least 2 valid simulations, got ${okRows.length} of ${sim.status.length}` +
        (sim.firstError ? ` (first simulator error: ${sim.firstError})` : ""),
    );
  }
  const thetaOk = selectRows(theta, okRows, d);
  const xOk = selectRows(sim.x, okRows, net.dataSize);
  const tSim = performance.now();

  // 3. Importance weights with the exact likelihood.
  const logPrior = prior.logProb(thetaOk);
  let importance: ImportanceResult | undefined;
  let logWeights: Float64Array | undefined;
  if (config.xObs !== undefined && config.logLike) {
    const logLike = logLikelihoods(config.logLike, config.xObs, xOk, thetaOk, d);
    // The accepted draws follow the proposal truncated to the prior: its density over the mass
    // inside (estimated by the acceptance rate), which only shifts log-weights by a constant.
    const logQ = proposal
      ? (
          await proposalLogProb(
            net,
            proposal.params,
            proposal.scales,
            config.xObs,
            thetaOk,
            defensive,
          )
        ).map((v) => v - Math.log(acceptance))
      : logPrior;
    logWeights = logLike.map((l, i) => l + logPrior[i]! - logQ[i]!);
    importance = importanceWeights(logWeights);
    if (importance.paretoK > PARETO_WARN) {
      warn(
        `round ${round}: Pareto k̂ = ${importance.paretoK.toFixed(2)} > ${PARETO_WARN}: the importance weights are ` +
          "heavy-tailed and the weighted posterior is unreliable; train longer or simulate more",
      );
    }
  }
  const roundData: RoundData = {
    theta: thetaOk,
    x: xOk,
    ...(logWeights ? { logWeights } : {}),
    ...(importance ? { importance } : {}),
  };
  const data = [...state.data, roundData];
  const proposals = [...state.proposals, proposal];

  // 4. Stopping rules that look at this round's draws (nbi's order), then train.
  const history = state.history;
  const nEffs = [...history.map((h) => h.nEff ?? 0), importance?.nEff ?? 0];
  let stopped: string | undefined;
  let current = state.current;
  let train: Awaited<ReturnType<typeof trainPosterior>> | undefined;
  if (
    importance &&
    config.neffStop !== undefined &&
    config.neffStop > 0 &&
    nEffs.reduce((a, b) => a + b) > config.neffStop
  ) {
    stopped = `the summed n_eff exceeded neffStop (${config.neffStop})`;
  } else if (
    importance &&
    config.fAcceptMin !== undefined &&
    config.fAcceptMin > 0 &&
    importance.efficiency > config.fAcceptMin
  ) {
    stopped = `the sampling efficiency ${(100 * importance.efficiency).toFixed(1)}% exceeded fAcceptMin`;
  } else if (
    importance &&
    config.earlyStopTrain &&
    round >= 2 &&
    importance.nEff > 1 &&
    importance.nEff < (history[round - 1]?.nEff ?? Number.POSITIVE_INFINITY)
  ) {
    // This round's proposal (trained in round − 1) did worse than the one before: revert to it.
    stopped = `n_eff fell (${importance.nEff.toFixed(1)} < ${history[round - 1]!.nEff!.toFixed(1)}): reverted to round ${round - 1}'s proposal`;
    current = proposals[round - 1] ?? current;
  } else if (restored) {
    current = restored.checkpoint;
  } else {
    const nReuse = config.nReuse ?? -1;
    const first = nReuse < 0 ? 0 : Math.max(0, round - nReuse);
    const used = data.slice(first);
    const x = concat(
      used.map((r) => r.x),
      Float32Array,
    );
    const th = concat(
      used.map((r) => r.theta),
      Float64Array,
    );
    const scales = fitScales(x, th, net.inputShape, d);
    train = await trainPosterior(
      net,
      state.current.params,
      scales,
      { x, theta: th },
      {
        nEpochs: config.nEpochs,
        batchSize: config.batchSize,
        lr: config.lr,
        minLr: config.minLr ?? defaultMinLr(config),
        ...(config.fVal !== undefined ? { fVal: config.fVal } : {}),
        ...(config.earlyStopPatience !== undefined
          ? { earlyStopPatience: config.earlyStopPatience }
          : {}),
        ...(config.noise !== undefined ? { noise: config.noise } : {}),
        key: keyAt(roundKey, 2),
        ...(config.signal ? { signal: config.signal } : {}),
        onEpoch: (e) => config.onEpoch?.(round, e),
        onStep: (s, steps, epoch) => config.onStep?.(round, epoch, s, steps),
      },
    );
    current = { params: train.params, scales };
  }
  const tTrain = performance.now();

  const record: RoundRecord = {
    round,
    nDrawn: sim.status.length,
    nSimulated: counts.ok,
    dropped: { nonFinite: counts.nonFinite, threw: counts.threw, crashed: counts.crashed },
    redrawn,
    ...(sim.firstError ? { firstError: sim.firstError } : {}),
    ...(importance
      ? {
          nEff: importance.nEff,
          kishEss: importance.kishEss,
          efficiency: importance.efficiency,
          logEvidence: importance.logEvidence,
          logEvidenceSe: importance.logEvidenceSe,
          paretoK: importance.paretoK,
        }
      : {}),
    epochs: train?.epochs ?? restored?.record.epochs ?? [],
    bestEpoch: train?.bestEpoch ?? restored?.record.bestEpoch ?? -1,
    bestValLoss: train?.bestValLoss ?? restored?.record.bestValLoss ?? Number.NaN,
    stoppedEarly: train?.stoppedEarly ?? restored?.record.stoppedEarly ?? false,
    trained: train !== undefined || (restored?.record.trained ?? false),
    seconds: restored?.record.seconds ?? {
      simulate: (tSim - t0) / 1000,
      train: (tTrain - tSim) / 1000,
    },
    warnings,
  };
  return {
    current,
    proposals,
    data,
    history: [...history, record],
    ...(stopped ? { stopped } : {}),
  };
}
