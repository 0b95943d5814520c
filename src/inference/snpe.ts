/**
 * Sequential neural posterior estimation with importance sampling (nbi's SNPE-IS) as a fold over
 * rounds: `state' = await runRound(state, r)`, each state an immutable value.
 *
 * Round r draws `nSims` parameters from its proposal (the prior in round 0, afterwards the
 * surrogate q(θ | xObs) trained in round r − 1, redrawing draws outside the prior's support),
 * simulates them once (outputs persisted in the store so a killed run resumes), weights them with
 * the exact likelihood, w ∝ p(xObs | θ) p(θ) / q_r(θ), records n_eff, and trains the surrogate.
 *
 * Rounds pool their simulations for training; a round whose own draws found the posterior also
 * tries training on them alone and keeps what scores better at held-out draws, or — too few of
 * those — leaves it as a challenger for the next round's pilot to judge (nReuse "auto"; nbi's 0
 * always trains on the round's own, −1 on all); the importance weights make the combined result
 * exact either way.
 */
import { NbiError } from "../errors.js";
import type { Array } from "../trace/array.js";
import { concat, drawAndSimulate, selectRows, weighDraws } from "./draw-weigh.js";
import {
  checkFitSettings,
  type FLOW_SPACES,
  orThrow,
  type SEQUENTIAL_LOSSES,
} from "./fit-settings.js";
import { afterRound, type FoldState, initialFoldState } from "./fold-state.js";
import { keyAt, permutation } from "./host.js";
import {
  combineRounds,
  combineStages,
  type ImportanceResult,
  importanceWeights,
  kishEss,
  PARETO_K_UNRELIABLE,
  type WeightedRound,
} from "./importance.js";
import type { LogLike } from "./likelihood.js";
import {
  chooseLoss,
  chooseOwn,
  type LossChoice,
  type LossScores,
  SELECT_MIN_ESS,
} from "./loss-selection.js";
import {
  type Checkpoint,
  type Defensive,
  fitScales,
  initPosterior,
  type PosteriorNetwork,
  type Scales,
} from "./posterior.js";
import type { Prior } from "./priors.js";
import {
  type DrawStage,
  drawProposal,
  type PilotDraws,
  type PilotDuel,
  PRIOR_PROPOSAL,
  type ProposalContext,
  type ProposalDraw,
  type ProposalKind,
  type ProposalOptions,
  planProposal,
  proposalJson,
  proposalLogDensity,
  type RoundProposal,
  revivedProposal,
} from "./proposals.js";
import { firstTrainingRound, offersChallenger, type Reuse } from "./round-reuse.js";
import { type SimulatedRows, type Simulator, simulationSeeds } from "./simulation/rows.js";
import { calibrateSpread, type SpreadFit } from "./spread.js";
import { stageable, stagedDraws, type WeighedDraws } from "./staged-draws.js";
import {
  restoreStaged,
  type StagedSimulations,
  simulateForRound,
  stagedRows,
  stageLogTarget,
} from "./staged-simulations.js";
import type { SimulationStore } from "./store.js";
import { type EpochRecord, type Noise, trainPosterior } from "./train.js";
import type { SupportBounds } from "./unbounded.js";

export type { Simulator } from "./simulation/rows.js";

/** The loss of sequential rounds (see `RoundOptions.loss`). */
export type SequentialLoss = (typeof SEQUENTIAL_LOSSES)[number];

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
  /**
   * Earlier rounds' simulations to train on as well: 0 only this round (nbi's default), −1 all,
   * or "auto" (the default): all rounds, and a "select" round whose own draws hold ≥ 3 effective
   * samples and ≥ 100 rows per parameter also trains NLL on them alone, kept when it scores
   * better at held-out draws (see round-reuse.ts and loss-selection.ts).
   */
  nReuse?: Reuse;
  /** Stop a round's training after this many epochs without a better validation loss (default: never). */
  earlyStopPatience?: number;
  /**
   * Calibrate the spread of a round's NLL surrogate trained on later rounds' draws alone (its
   * own, as nbi's n_reuse = 0 trains every round, or a select round's own-draws candidate) at
   * held-out weighted draws (default true with an observation and a likelihood, for flows with
   * a normal base): the base noise's scale those draws ask for, kept when it exceeds 1 by two
   * standard errors (spread.ts). false: the surrogate as trained (nbi).
   */
  calibrateSpread?: boolean;
  /**
   * Half-life in epochs of the parameters' moving average that validation scores and a round
   * keeps (default 2; 0: the raw parameters, as nbi). See `TrainOptions.emaHalfLife`.
   */
  emaHalfLife?: number;
  /**
   * Stop after a round whose proposal did worse than the previous round's, reverting to the
   * previous round's network (nbi's rule: n_eff fell; rounds drawn in stages compare their
   * pilots' efficiencies, the surrogates' own).
   */
  earlyStopTrain?: boolean;
  /**
   * Later rounds' proposal: the surrogate mixed with a broadened copy (default { alpha: 0.3,
   * tau: 2 } for flows with a normal base), or false for the surrogate alone (nbi).
   */
  defensive?: Defensive | false;
  /**
   * The training loss of sequential rounds (round 0 and amortized fits always use NLL on prior
   * draws): "nll" (nbi's; on proposal draws it converges to p(θ|x)·q̃(θ)/p(θ)), "apt" (atomic
   * APT / SNPE-C, Greenberg et al. 2019, with `atoms` atoms), "weighted-nll" (each pair weighted by
   * p(θ)/q̃(θ), q̃ the mixture of the proposals that drew the pooled data, self-normalised),
   * "gated" (per round: NLL while the round's draws show a proposal much wider than the posterior,
   * APT once it is close; see `roundLoss`), "select" (per round: both APT and NLL trained from the
   * same start, the one whose surrogate scores higher at the run's weighted draws kept; twice the
   * training, no extra simulation; see loss-selection.ts), or "auto" (the default; see
   * `sequentialOptions`: "select").
   */
  loss?: SequentialLoss;
  /** Atoms per example of the APT loss, the true θ included (default 10, as sbi). 1: NLL. */
  atoms?: number;
  /**
   * Later rounds' proposal: "surrogate" (the surrogate at xObs, with the `defensive` mixture),
   * "truncated" (TSNPE: the prior restricted to the surrogate's highest-density region holding
   * 1 − truncationEps of its mass), "mixture" (prior + earlier rounds' proposals + the surrogate,
   * the exact mixture density in the weights), or "auto" (the default).
   */
  proposal?: ProposalKind;
  /** Mass left outside the truncated proposal's region (default 1e-4, as TSNPE). */
  truncationEps?: number;
  /**
   * With a likelihood, draw a surrogate proposal's round in adaptive stages: a pilot quarter from
   * the surrogate, then stages from a t mixture fitted to the round's weighted draws while their
   * efficiency is below 50% (staged-draws.ts); a likelihood that reads the simulations gets each
   * stage's before the next is drawn. The same simulations and likelihood calls; default true.
   * false draws every round from the surrogate in one batch (what sharded rounds do).
   */
  adaptRounds?: boolean;
  /**
   * Where the flow lives: "unbounded" (default: the image of the prior's support under a probit
   * per parameter bounded at both ends, a log per one-sided bound, so no mass leaks outside the
   * prior), "logit" (the same with a scaled logit for the two-sided bounds, as fits before the
   * probit; see unbounded.ts for why the probit suits a normal base) or "theta" (θ itself, as
   * nbi; draws outside the prior are redrawn).
   */
  flowSpace?: FlowSpace;
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
  /**
   * After each training step (for progress bars); in a "select" round, with the candidate that
   * stepped (both train in turn).
   */
  onStep?: (
    round: number,
    epoch: number,
    step: number,
    steps: number,
    candidate?: "apt" | "nll",
  ) => void;
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
  /**
   * The observation as the network takes it, when that differs from xObs: the gapped observation
   * model's packed values (NaN where missing) and sigmas (see gaps.ts). The proposals condition
   * on it; the likelihood still reads xObs. Default: xObs.
   */
  netInput?: Float32Array;
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
  /** Longest one simulation may run, in milliseconds (see `SimulateOptions.simTimeoutMs`). */
  simTimeoutMs?: number;
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
    /** The simulation ran past simTimeoutMs and was stopped (absent in older records). */
    readonly timedOut?: number;
  };
  /** Surrogate draws outside the prior's support that were redrawn. */
  readonly redrawn: number;
  /** What drew the round's parameters: a mixture of parts with their estimated masses. */
  readonly proposal?: RoundProposal;
  /**
   * The loss the round trained with ("nll" in round 0 and amortized fits; a "select" round's
   * chosen candidate, "apt" or "nll").
   */
  readonly loss?: Exclude<SequentialLoss, "auto" | "select">;
  /** A "select" round's candidate scores, which chose its loss (see loss-selection.ts). */
  readonly lossScores?: LossScores;
  /** The first simulator error's message, if any threw. */
  readonly firstError?: string;
  /** Importance sampling of this round's draws (with xObs and a likelihood). */
  readonly nEff?: number;
  /** Kish's effective sample size 1/Σw². */
  readonly kishEss?: number;
  /** n_eff / draws: nbi's sampling efficiency. */
  readonly efficiency?: number;
  /**
   * A round drawn in adaptive stages: its pilot, drawn from the surrogate alone, and the pilot's
   * n_eff (the round's `efficiency` is the stages', mostly the adaptation's; the pilot's
   * nEff / draws is the surrogate's own). earlyStopTrain compares these.
   */
  readonly pilot?: PilotDraws;
  /**
   * A round drawn after one that kept a challenger: its pilot split between the two networks, and
   * which drew the rest of the round and started its training.
   */
  readonly duel?: PilotDuel;
  /**
   * True when the round kept a challenger: its candidate trained on its own draws, which its
   * held-out draws could not judge (too few effective ones there or in the round's own draws),
   * left for the next round's pilot to judge.
   */
  readonly challenger?: boolean;
  /**
   * The calibration of the kept surrogate's spread at held-out weighted draws (spread.ts; absent
   * where the round did not train, had no weighted draws, or kept a network that needs none).
   */
  readonly spread?: SpreadFit;
  /** The same for the round's challenger. */
  readonly challengerSpread?: SpreadFit;
  /** log evidence estimated from this round's weights. */
  readonly logEvidence?: number;
  /** Standard error of `logEvidence`. */
  readonly logEvidenceSe?: number;
  /** PSIS k̂ of this round's weights (above 0.7: unreliable, and a warning). */
  readonly paretoK?: number;
  /**
   * The first round whose simulations this round trained on: it trained on rounds trainedFrom…round
   * (fit's `nReuse`; absent where the round did not train).
   */
  readonly trainedFrom?: number;
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
  /** log p(θ) per row. */
  readonly logPrior: Float64Array;
  /** 1 for rows held out for validation, fixed for the whole run. */
  readonly valMask: Uint8Array;
  /** What drew the rows (its density weighs them). */
  readonly proposal: RoundProposal;
  readonly logWeights?: Float64Array;
  /** log p(xObs | θ) + log p(θ) per row, where the fit has a likelihood. */
  readonly logTarget?: Float64Array;
  /**
   * The weights against `proposal` (for a staged round, the stages' deterministic mixture): what
   * later rounds' stages, the loss choice and the spread are fitted to.
   */
  readonly importance?: ImportanceResult;
  /**
   * A staged round's estimates: each stage weighed against the proposal that drew it, combined by
   * ESS (`combineStages`; unbiased, where the mixture recycles draws into the stages fitted to
   * them). The round's reported n_eff, efficiency and evidence, its stopping rules and its share
   * of the result read these (`importance` where absent).
   */
  readonly estimate?: ImportanceResult;
  /**
   * The round's challenger: its NLL candidate trained on its own draws, which the held-out draws
   * could not judge; the next round's pilot judges it (`RoundRecord.duel`).
   */
  readonly challenger?: Checkpoint;
}

export type { Checkpoint } from "./posterior.js";
export type { ProposalKind } from "./proposals.js";

/** The fold's state after some rounds: an immutable value, one per round. */
export type SnpeState = FoldState<Checkpoint, RoundData, RoundRecord>;

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
  /**
   * Rounds with importance weights that could not contribute to `samples`: n_eff 0 (one draw
   * holds all the weight) or no finite weight at all. They stay in `history`; when every
   * weighted round is empty, `samples` and `weights` are empty.
   */
  readonly emptyRounds: readonly number[];
}

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
  return initialFoldState({ params, scales });
}

/**
 * Saves and restores finished rounds (the engine keeps them in the store), so a killed run
 * resumes: restored rounds replay their draws and weights from disk without retraining.
 */
export interface RoundCheckpoints {
  /** The finished round `round` as the store kept it (undefined: not finished). */
  load(round: number): Promise<RestoredRound | undefined>;
  /** Keeps a finished round: its surrogate, record and challenger (if it kept one). */
  save(
    round: number,
    checkpoint: Checkpoint,
    record: RoundRecord,
    challenger?: Checkpoint,
  ): Promise<void>;
}

/** A finished round read back from the store: its surrogate, record and challenger (if kept). */
export interface RestoredRound {
  /** The surrogate the round kept. */
  checkpoint: Checkpoint;
  /** The round's record. */
  record: RoundRecord;
  /** The round's challenger, where it kept one. */
  challenger?: Checkpoint;
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
    if (!restored) {
      await checkpoints?.save(r, state.current, state.history[r]!, state.data[r]!.challenger);
    }
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
  // Rounds without usable weights (n_eff 0, or none finite) are left out and reported, so one
  // empty round never makes a finished (and resumable) run fail at its very end.
  const emptyRounds: number[] = [];
  const weighted: WeightedRound[] = [];
  state.data.forEach((r, round) => {
    const usable = usableWeights(r, "estimate");
    if (usable) weighted.push(usable);
    else if (r.importance || state.history[round]?.nEff !== undefined) emptyRounds.push(round);
  });
  const combined =
    weighted.length > 0
      ? combineRounds(weighted, d)
      : { theta: new Float64Array(0), weights: new Float64Array(0) };
  return {
    emptyRounds,
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
  /** Sequential rounds: the observation the proposal is conditioned on, as the network takes it. */
  xObs?: Float32Array;
  /** Sequential rounds: the surrogates after each earlier round (checkpoints[r] after round r). */
  checkpoints?: readonly Checkpoint[];
  /** Sequential rounds: the earlier rounds' challengers (challengers[r]: round r's, if kept). */
  challengers?: readonly (Checkpoint | undefined)[];
  /** Sequential rounds: how the proposal is made (see `sequentialOptions`). */
  proposal?: ProposalOptions;
  /**
   * Sequential rounds: log p(xObs | θ) + log p(θ) at rows of θ (simulating them first when the
   * likelihood reads simulations). With it, a surrogate proposal is drawn in adaptive stages
   * (staged-draws.ts).
   */
  logTarget?: (theta: Float64Array) => Promise<Float64Array>;
  /** Staged rounds: earlier rounds' weighed draws, which the adapted stages are fitted to too. */
  earlier?: readonly WeighedDraws[];
}

/** A round's parameters and what drawing them took. */
export interface RoundDraw {
  /** nSims × d parameters, row-major. */
  theta: Float64Array;
  /** Draws outside the prior's support (or a truncation region) that were drawn again. */
  redrawn: number;
  /** The fraction of surrogate draws kept (1 without surrogate parts). */
  acceptance: number;
  /** What drew them, with its estimated masses (plain JSON: kept in the store). */
  proposal: RoundProposal;
  /**
   * A staged round's pilot: its draws from the round's surrogate alone and their n_eff (what the
   * surrogate is worth as a proposal, before the stages adapt).
   */
  pilot?: PilotDraws;
  /** A staged round after one that kept a challenger: the pilot's verdict. */
  duel?: PilotDuel;
  /** A staged round's stages, each with the proposal that drew it (its unbiased weights). */
  stages?: readonly DrawStage[];
}

/**
 * Round `round`'s parameters exactly as `runRound` draws them: from the prior without a proposal,
 * else from the round's proposal at xObs (see `RoundOptions.proposal`), inside the prior.
 *
 * @example
 * ```ts
 * const { theta } = await inference.drawRound({ net, prior, key: inference.hostKey(0), round: 0, nSims: 500 });
 * ```
 */
export async function drawRound(o: DrawRoundOptions): Promise<RoundDraw> {
  const key = keyAt(roundKeyOf(o.key, o.round), 0);
  if (o.round > 0 && o.xObs && o.proposal && o.checkpoints) {
    const ctx: ProposalContext = {
      net: o.net,
      prior: o.prior,
      xObs: o.xObs,
      checkpoints: o.checkpoints,
      ...(o.challengers ? { challengers: o.challengers } : {}),
    };
    const plan = planProposal(o.round, o.proposal);
    if (o.logTarget && stageable(plan)) {
      // The stages' log targets are the caller's (`logTarget` keeps them); the draw is the rest.
      const { logTarget: _, ...draw } = await stagedDraws({
        ctx,
        plan,
        key,
        n: o.nSims,
        options: o.proposal,
        logTarget: o.logTarget,
        ...(o.earlier ? { earlier: o.earlier } : {}),
      });
      return draw;
    }
    return drawProposal(ctx, plan, key, o.nSims, o.proposal);
  }
  return {
    theta: o.prior.sample(key, o.nSims),
    redrawn: 0,
    acceptance: 1,
    proposal: PRIOR_PROPOSAL,
  };
}

/**
 * The loss and proposal of sequential rounds with "auto" resolved: "select" — atomic APT (its
 * surrogate targets the posterior whatever drew θ, where NLL on proposal draws learns
 * p(θ|x)·q̃(θ)/p(θ)), unless NLL's candidate, trained from the same start, scores clearly higher
 * at the run's weighted draws (loss-selection.ts) — on the defensive surrogate (measured on nbi's
 * sine and the sbibm tasks: bench/RESULTS.md). The defensive mixture applies to surrogate parts
 * of flows with a normal base.
 *
 * @example
 * ```ts
 * inference.sequentialOptions({ loss: "auto" }, net).loss; // "select"
 * ```
 */
export function sequentialOptions(
  o: Pick<
    RoundOptions,
    "loss" | "atoms" | "proposal" | "truncationEps" | "defensive" | "flowSpace"
  >,
  net: PosteriorNetwork,
): SequentialSettings {
  // The fit's own rules (fit-settings.ts), for callers of snpeIS that bypass NBI.fit.
  const { loss, atoms, proposal, truncationEps, flowSpace } = o;
  orThrow(
    "fit",
    checkFitSettings(
      { loss, atoms, proposal, truncationEps, flowSpace },
      { known: ["loss", "atoms", "proposal", "truncationEps", "flowSpace"], unknown: () => [""] },
    ),
  );
  const eps = o.truncationEps ?? 1e-4;
  const defensive = defensiveFor(net, o.defensive);
  return {
    flowSpace: o.flowSpace ?? "unbounded",
    loss: !o.loss || o.loss === "auto" ? AUTO_LOSS : o.loss,
    atoms: o.atoms ?? 10,
    proposal: {
      kind: !o.proposal || o.proposal === "auto" ? AUTO_PROPOSAL : o.proposal,
      ...(defensive ? { defensive } : {}),
      truncationEps: eps,
    },
  };
}

/**
 * The per-dimension efficiency below which the "gated" loss trains a round with NLL: the round's
 * draws weigh at efficiency^(1/d) < ½, as a Gaussian proposal ≳ 2.8× the posterior's width in
 * every direction does. NLL on such draws targets p(θ|x)·q̃(θ)/p(θ), which q̃ barely tilts there
 * (a Gaussian posterior's sd shrinks by ≤ 6%), and it learns from each pair's own density; APT's
 * atoms from so wide a proposal resolve the posterior only to their spacing, so it learns slowly
 * (nbi's sine: bench/RESULTS.md). Once the proposal is close to the posterior, NLL's target would
 * approach the posterior squared, and APT (exact whatever drew θ) takes over.
 */
export const GATED_NLL_BELOW = 0.5;

/**
 * The loss a sequential round trains with: "gated" resolved by the round's importance
 * efficiency (none: APT), any other loss as it is.
 */
export function roundLoss(
  loss: SequentialSettings["loss"],
  efficiency: number | undefined,
  nDims: number,
): Exclude<SequentialLoss, "auto" | "gated"> {
  if (loss !== "gated") return loss;
  return efficiency !== undefined && efficiency ** (1 / nDims) < GATED_NLL_BELOW ? "nll" : "apt";
}

/** The loss and proposal of sequential rounds, "auto" resolved. */
export interface SequentialSettings {
  /** The training loss of rounds after the first ("gated": chosen per round, `roundLoss`). */
  readonly loss: Exclude<SequentialLoss, "auto">;
  /** APT atoms per example. */
  readonly atoms: number;
  /** Where the flow lives (see `RoundOptions.flowSpace`). */
  readonly flowSpace: FlowSpace;
  /** How the rounds' proposals are made. */
  readonly proposal: ProposalOptions;
}

/** Where the surrogate's flow lives (see `RoundOptions.flowSpace`). */
export type FlowSpace = (typeof FLOW_SPACES)[number];

/** The support map a flow space fits its scales with (see unbounded.ts). */
export function flowSupport(prior: Prior, space: Exclude<FlowSpace, "theta">): SupportBounds {
  return {
    thetaLower: prior.lower,
    thetaUpper: prior.upper,
    boundedMap: space === "logit" ? "logit" : "probit",
  };
}

/** What "auto" means (see `sequentialOptions`). */
const AUTO_LOSS = "select";
const AUTO_PROPOSAL = "surrogate";

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
  return simulateForRound(config, round, theta, simulationSeeds(key, n), { persist: true });
}

function countStatus(status: Uint8Array) {
  const c = [0, 0, 0, 0, 0];
  for (const s of status) {
    if (s >= c.length) {
      throw new NbiError(`fit: simulation status expected a code 0 to ${c.length - 1}, got ${s}`);
    }
    c[s]!++;
  }
  return { ok: c[0]!, nonFinite: c[1]!, threw: c[2]!, crashed: c[3]!, timedOut: c[4]! };
}

/**
 * Round `round`'s parameters: those the store kept (a resumed run), or a fresh draw (`drawRound`;
 * round 0 of a precomputed fit takes its parameters), written to the store before they are
 * simulated.
 */
async function roundDraws(
  state: SnpeState,
  round: number,
  config: SnpeConfig,
  seq: SequentialSettings,
  ctx: ProposalContext | undefined,
  staged: StagedSimulations,
): Promise<ProposalDraw> {
  const { net, prior, store } = config;
  const sequential = config.xObs !== undefined && round > 0;
  let theta = await store?.roundParams(round);
  const saved = await store?.readJson<{
    redrawn: number;
    acceptance: number;
    proposal?: RoundProposal;
    pilot?: PilotDraws;
    duel?: PilotDuel;
    stages?: DrawStage[];
  }>(round, "draws");
  let redrawn = saved?.redrawn ?? 0;
  let pilot = saved?.pilot;
  let duel = saved?.duel;
  let stages: readonly DrawStage[] | undefined = saved?.stages?.map((st) => ({
    size: st.size,
    proposal: revivedProposal(st.proposal),
  }));
  let acceptance = saved?.acceptance ?? 1;
  let proposal: RoundProposal = saved?.proposal
    ? revivedProposal(saved.proposal)
    : sequential && saved
      ? legacyProposal(round, saved.acceptance, seq)
      : PRIOR_PROPOSAL;
  if (!theta) {
    if (round === 0 && config.precomputed) theta = config.precomputed.theta;
    else {
      const r = await drawRound({
        net,
        prior,
        key: config.key,
        round,
        nSims: config.nSims,
        ...(sequential
          ? {
              xObs: ctx!.xObs,
              checkpoints: state.checkpoints,
              ...(ctx!.challengers ? { challengers: ctx!.challengers } : {}),
              proposal: seq.proposal,
              ...(stagedRounds(config)
                ? {
                    logTarget: stageLogTarget(
                      config,
                      round,
                      keyAt(roundKeyOf(config.key, round), 1),
                      staged,
                    ),
                    earlier: weighedRounds(state.data),
                  }
                : {}),
            }
          : {}),
      });
      theta = r.theta;
      redrawn = r.redrawn;
      acceptance = r.acceptance;
      proposal = r.proposal;
      pilot = r.pilot;
      duel = r.duel;
      stages = r.stages;
      await store?.writeJson(round, "draws", {
        redrawn,
        acceptance: r.acceptance,
        proposal: proposalJson(proposal),
        ...(pilot ? { pilot } : {}),
        ...(duel ? { duel } : {}),
        ...(stages
          ? { stages: stages.map((st) => ({ size: st.size, proposal: proposalJson(st.proposal) })) }
          : {}),
      });
    }
    if (round === 0 && config.precomputed)
      await store?.writeJson(round, "draws", { redrawn, acceptance: 1, proposal });
    await store?.writeRoundParams(round, theta);
  } else if (store && sequential) {
    await restoreStaged(store, round, theta, net.nDims, staged);
  }
  return {
    theta,
    redrawn,
    proposal,
    acceptance,
    ...(pilot ? { pilot } : {}),
    ...(duel ? { duel } : {}),
    ...(stages ? { stages } : {}),
  };
}

/**
 * nbi's earlyStopTrain test: whether this round's proposal did worse than the previous round's,
 * worded (undefined when it did not). Rounds drawn in stages compare their pilots' efficiencies,
 * the surrogates' own: a staged round's n_eff is mostly its adaptation's, which the earlier
 * rounds' draws lift from round to round whatever the surrogate (a second round that adapted to
 * 11% and a third at 10.7% reverted nbi's sine to the network trained on prior draws alone). A
 * previous pilot with less than one effective draw (n_eff = 1/Σw² − 1 < 1) showed nothing to fall
 * from, and the round goes on (a pilot at 0.8% of 80 draws against one at 0% reverted the same
 * test to that network too).
 */
export function proposalFell(
  previous: RoundRecord | undefined,
  importance: ImportanceResult,
  pilot: PilotDraws | undefined,
): string | undefined {
  if (!previous) return undefined;
  const before = previous.pilot;
  if (pilot && before) {
    const [now, then] = [pilot.nEff / pilot.draws, before.nEff / before.draws];
    return before.nEff >= 1 && now < then
      ? `the pilot's efficiency fell (${(100 * now).toFixed(1)}% < ${(100 * then).toFixed(1)}%)`
      : undefined;
  }
  const nEffBefore = previous.nEff ?? Number.POSITIVE_INFINITY;
  return importance.nEff < nEffBefore
    ? `n_eff fell (${importance.nEff.toFixed(1)} < ${nEffBefore.toFixed(1)})`
    : undefined;
}

/**
 * The earlier rounds' weighed draws, with the importance weights their rounds computed (rounds
 * without a likelihood's weights are left out).
 */
function weighedRounds(data: readonly RoundData[]): WeighedDraws[] {
  return data.flatMap((r) =>
    r.importance && r.logTarget
      ? [
          {
            theta: r.theta,
            logTarget: r.logTarget,
            weights: r.importance.weights,
            nEff: r.importance.nEff,
          },
        ]
      : [],
  );
}

/** Whether rounds draw in adaptive stages (`adaptRounds`): a weighted fit's default. */
function stagedRounds(config: SnpeConfig): boolean {
  return config.adaptRounds !== false && config.logLike !== undefined;
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
  restored?: RestoredRound,
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
  const seq = sequentialOptions(config, net);
  const challengers = state.data.map((r) => r.challenger);
  const ctx: ProposalContext | undefined =
    config.xObs !== undefined
      ? {
          net,
          prior,
          xObs: config.netInput ?? config.xObs,
          checkpoints: state.checkpoints,
          ...(challengers.some((c) => c !== undefined) ? { challengers } : {}),
        }
      : undefined;
  const t0 = performance.now();

  // 1–2. Draw (or reload) this round's parameters, and simulate what is not yet in the store
  // (a round simulates whatever its likelihood reads: it trains on the outputs).
  // Staged draws (adaptRounds) may simulate as they go: the round then reuses those rows.
  const staged: StagedSimulations = { theta: [], x: [], status: [], logTarget: [], rows: 0 };
  const drawn = await drawAndSimulate({
    draw: () => roundDraws(state, round, config, seq, ctx, staged),
    nDims: d,
    simulate: async (theta) =>
      staged.rows > 0 && staged.rows === theta.length / d
        ? stagedRows(config, round, staged)
        : runSimulations(config, round, theta, keyAt(roundKey, 1)),
    alwaysSimulate: true,
  });
  const { theta, redrawn, proposal, pilot, duel, stages } = drawn.draw;
  // The previous round's challenger won this round's pilot: training starts from it.
  const start =
    (duel?.winner === "challenger" ? state.data[round - 1]?.challenger : undefined) ??
    state.current;
  const sim = drawn.simulation!;
  const counts = countStatus(sim.status);
  const nDropped = counts.nonFinite + counts.threw + counts.crashed + counts.timedOut;
  if (nDropped > 0) {
    warn(
      `round ${round}: ${nDropped} of ${sim.status.length} simulations dropped ` +
        `(${counts.nonFinite} non-finite, ${counts.threw} threw, ${counts.crashed} crashed` +
        `${counts.timedOut > 0 ? `, ${counts.timedOut} timed out` : ""})` +
        (sim.firstError ? `; first error: ${sim.firstError}` : ""),
    );
  }
  if (sim.remarked) {
    warn(
      `round ${round}: ${sim.remarked} stored simulations marked ok held non-finite outputs; ` +
        "they were re-marked non-finite and dropped (the store was modified or damaged)",
    );
  }
  const okRows = drawn.okRows;
  if (okRows.length < 2) {
    throw new NbiError(
      `fit: round ${round} expected at least 2 valid simulations, got ${okRows.length} of ${sim.status.length}` +
        (sim.firstError ? ` (first simulator error: ${sim.firstError})` : ""),
    );
  }
  const thetaOk = selectRows(theta, okRows, d);
  const xOk = selectRows(sim.x, okRows, net.dataSize);
  const tSim = performance.now();

  // 3. Importance weights with the exact likelihood: log p(x|θ) + log p(θ) at the valid rows.
  // A staged round weighed its draws as it drew them: the likelihood is not called again.
  const stagedTarget =
    staged.logTarget.length > 0 ? concat(staged.logTarget, Float64Array) : undefined;
  const weighed =
    stagedTarget && stagedTarget.length === theta.length / d
      ? { logPrior: prior.logProb(theta), logTarget: stagedTarget }
      : weighDraws(
          drawn,
          prior,
          d,
          ctx && config.logLike ? { logLike: config.logLike, xObs: config.xObs! } : undefined,
        );
  const logPrior = selectRows(weighed.logPrior, okRows, 1);
  let importance: ImportanceResult | undefined;
  /** A staged round's unbiased weights (see `RoundData.estimate`). */
  let estimate: ImportanceResult | undefined;
  let logWeights: Float64Array | undefined;
  let rowTargets: Float64Array | undefined;
  /** A weighted round none of whose log-weights is finite: n_eff 0, kept and reported. */
  let noValidWeights = false;
  if (ctx && weighed.logTarget) {
    const logTarget = selectRows(weighed.logTarget, okRows, 1);
    rowTargets = logTarget;
    // Each draw weighed by the exact density of the mixture that drew it (its parts normalised on
    // the prior's support with their estimated masses).
    const logQ = sequential ? await proposalLogDensity(ctx, proposal, thetaOk, logPrior) : logPrior;
    logWeights = logTarget.map((t, i) => t - logQ[i]!);
    noValidWeights = !logWeights.some((v) => Number.isFinite(v));
    if (noValidWeights) {
      warn(
        `round ${round}: all ${logWeights.length} log-weights are invalid (NaN or ±Infinity): n_eff 0; ` +
          "the round is kept and trained on, and left out of the weighted result. Check that the " +
          "likelihood, prior and proposal log-densities are finite for the drawn parameters.",
      );
    } else importance = importanceWeights(logWeights);
    // A staged round's estimates weigh each stage against the proposal that drew it; the
    // stages' mixture (`importance`) stays what later stages and candidates are fitted to.
    const stageRows = stages?.reduce((a, st) => a + st.size, 0);
    if (stages && stageRows !== theta.length / d) {
      warn(
        `round ${round}: the store's stages hold ${stageRows} draws, the round ${theta.length / d}; ` +
          "its estimates weigh every draw against the stages' mixture instead (the draws record was modified or damaged)",
      );
    } else if (importance && sequential && stages) {
      estimate = await stagedEstimate(
        ctx,
        stages,
        theta,
        weighed.logPrior,
        weighed.logTarget,
        okRows,
      );
    }
  }
  /** The weights the round reports and its stopping rules read (see `RoundData.estimate`). */
  const reported = estimate ?? importance;
  // Round 0 draws from the prior: heavy tails there only say the posterior is narrow.
  if (reported && round > 0 && reported.paretoK > PARETO_K_UNRELIABLE) {
    warn(
      `round ${round}: Pareto k̂ = ${reported.paretoK.toFixed(2)} > ${PARETO_K_UNRELIABLE}: the importance weights are ` +
        "heavy-tailed and the weighted posterior is unreliable; train longer or simulate more",
    );
  }
  const roundData: RoundData = {
    theta: thetaOk,
    x: xOk,
    logPrior,
    valMask: validationMask(keyAt(keyAt(roundKey, 2), 0), okRows.length, config.fVal ?? 0.1),
    proposal,
    ...(logWeights ? { logWeights } : {}),
    ...(rowTargets ? { logTarget: rowTargets } : {}),
    ...(importance ? { importance } : {}),
    ...(estimate ? { estimate } : {}),
  };
  const data = [...state.data, roundData];

  // 4. Stopping rules that look at this round's draws (nbi's order), then train.
  const history = state.history;
  const nEffs = [...history.map((h) => h.nEff ?? 0), reported?.nEff ?? 0];
  let stopped: string | undefined;
  let current = start;
  let train: Awaited<ReturnType<typeof trainPosterior>> | undefined;
  /** A "select" round's choice among its candidates. */
  let selected: LossChoice | undefined;
  /** The first round whose simulations this round trained on (round-reuse.ts). */
  let trainedFrom: number | undefined;
  /** The round's challenger for the next round's pilot (a select round's own candidate). */
  let challenger: Checkpoint | undefined = restored?.challenger;
  /** The calibration of the kept network's spread, and of the challenger's (spread.ts). */
  let spread: SpreadFit | undefined;
  let challengerSpread: SpreadFit | undefined;
  const loss = sequential ? roundLoss(seq.loss, importance?.efficiency, d) : "nll";
  // earlyStopTrain's verdict on this round's proposal (undefined: it did not do worse).
  const fell =
    reported && config.earlyStopTrain && round >= 2 && reported.nEff > 1
      ? proposalFell(history[round - 1], reported, pilot)
      : undefined;
  if (
    reported &&
    config.neffStop !== undefined &&
    config.neffStop > 0 &&
    nEffs.reduce((a, b) => a + b) > config.neffStop
  ) {
    stopped = `the summed n_eff exceeded neffStop (${config.neffStop})`;
  } else if (
    reported &&
    config.fAcceptMin !== undefined &&
    config.fAcceptMin > 0 &&
    reported.efficiency > config.fAcceptMin
  ) {
    stopped = `the sampling efficiency ${(100 * reported.efficiency).toFixed(1)}% exceeded fAcceptMin`;
  } else if (fell) {
    // This round's proposal (trained in round − 1) did worse than the one before: revert to it.
    stopped = `${fell}: reverted to round ${round - 1}'s proposal`;
    current = state.checkpoints[round - 2] ?? current;
  } else if (restored) {
    current = restored.checkpoint;
  } else {
    const reuse = config.nReuse ?? "auto";
    // "auto" pools every round; a select round whose own draws found the posterior also trains
    // NLL on them alone, a third candidate (round-reuse.ts, loss-selection.ts).
    const pooledFrom = reuse === "auto" ? 0 : firstTrainingRound(data, reuse, d);
    const ownFrom =
      reuse === "auto" && loss === "select" ? firstTrainingRound(data, "auto", d) : pooledFrom;
    const trainingSet = async (from: number) => {
      const used = data.slice(from);
      const x = concat(
        used.map((r) => r.x),
        Float32Array,
      );
      const th = concat(
        used.map((r) => r.theta),
        Float64Array,
      );
      // The flow lives on the unbounded image of the prior's support (no mass leaks outside it).
      const scales = fitScales(
        x,
        th,
        net.inputShape,
        d,
        undefined,
        seq.flowSpace === "theta" ? undefined : flowSupport(prior, seq.flowSpace),
      );
      const weights =
        loss === "weighted-nll" && ctx ? await proposalCorrection(ctx, used) : undefined;
      const rows = {
        x,
        theta: th,
        valMask: concat(
          used.map((r) => r.valMask),
          Uint8Array,
        ),
        logPrior: concat(
          used.map((r) => r.logPrior),
          Float64Array,
        ),
        ...(weights ? { weights } : {}),
      };
      return { from, rows, scales };
    };
    const pooled = await trainingSet(pooledFrom);
    /** The training set of the candidate kept. */
    let kept = pooled;
    // A training stopped by the signal keeps its last finished epoch in the round's folder, and
    // the next fit on the store continues from there. A "select" round trains its candidates in
    // turn; the folder holds the one that was stopped, and the others pass it by.
    const keeper = store?.training;
    const trainingPath = keeper?.where(round);
    const trainWith = (candidate: "apt" | "nll", select: boolean, training = pooled) =>
      trainPosterior(net, start.params, training.scales, training.rows, {
        nEpochs: config.nEpochs,
        batchSize: config.batchSize,
        lr: config.lr,
        minLr: config.minLr ?? defaultMinLr(config),
        ...(config.fVal !== undefined ? { fVal: config.fVal } : {}),
        ...(config.earlyStopPatience !== undefined
          ? { earlyStopPatience: config.earlyStopPatience }
          : {}),
        ...(config.emaHalfLife !== undefined ? { emaHalfLife: config.emaHalfLife } : {}),
        // Later rounds start from the network the previous rounds trained.
        warmStart: round > 0,
        ...(config.noise !== undefined ? { noise: config.noise } : {}),
        loss: candidate,
        atoms: seq.atoms,
        key: keyAt(roundKey, 2),
        ...(config.signal ? { signal: config.signal } : {}),
        onEpoch: (e) => config.onEpoch?.(round, select ? { ...e, candidate } : e),
        onStep: (s, steps, epoch) =>
          config.onStep?.(round, epoch, s, steps, select ? candidate : undefined),
        ...(keeper
          ? {
              resume: async (template) => {
                let saved: Awaited<ReturnType<typeof keeper.load>>;
                try {
                  saved = await keeper.load(round, template);
                } catch (error) {
                  warn(
                    `round ${round}: the saved training ${trainingPath} could not be used (${(error as Error).message}); the round trains from its start`,
                  );
                  return undefined;
                }
                // Another candidate's training: this one starts afresh.
                if (saved && select && saved.setup !== template.setup) return undefined;
                if (saved && saved.setup !== template.setup) {
                  warn(
                    `round ${round}: the saved training ${trainingPath} belongs to another setup (${saved.setup}, now ${template.setup}); the round trains from its start`,
                  );
                  return undefined;
                }
                return saved;
              },
              onInterrupt: async (checkpoint) => {
                try {
                  await keeper.save(round, checkpoint);
                } catch (error) {
                  warn(
                    `round ${round}: could not save the training stopped after epoch ${checkpoint.epoch - 1} to ${trainingPath} (${(error as Error).message}); the round will train from its start`,
                  );
                }
              },
            }
          : {}),
      });
    // A candidate that the held-out draws cannot judge: where a next round draws in stages from
    // this round's surrogate, its pilot judges it instead (staged-draws.ts).
    const challengerWanted =
      reuse === "auto" &&
      loss === "select" &&
      stagedRounds(config) &&
      round + 1 < config.nRounds &&
      seq.proposal.kind === "surrogate" &&
      offersChallenger(data, d);
    const trainChallenger = async () => {
      const own = await trainingSet(round);
      const nllOwn = await trainWith("nll", true, own);
      challenger = { params: nllOwn.params, scales: own.scales };
    };
    const scoring = loss === "select" ? scoringDraws(data, d) : undefined;
    const scoringEssNow = scoring ? kishEss(scoring.weights) : 0;
    if (loss === "select" && ctx && scoring && scoringEssNow >= SELECT_MIN_ESS) {
      const apt = await trainWith("apt", true);
      const nll = await trainWith("nll", true);
      const choice = await chooseLoss(
        net,
        ctx.xObs,
        {
          apt: { params: apt.params, scales: pooled.scales },
          nll: { params: nll.params, scales: pooled.scales },
        },
        scoring,
      );
      train = choice.loss === "nll" ? nll : apt;
      selected = choice;
      // The candidate on the round's own draws, judged at held-out draws (loss-selection.ts).
      const heldOut = ownFrom !== pooledFrom ? heldOutDraws(data, d) : undefined;
      const heldOutEss = heldOut ? kishEss(heldOut.weights) : 0;
      if (heldOut && heldOutEss >= SELECT_MIN_ESS) {
        const own = await trainingSet(ownFrom);
        const nllOwn = await trainWith("nll", true, own);
        const judged = await chooseOwn(
          net,
          ctx.xObs,
          {
            pooled: { params: train.params, scales: pooled.scales },
            own: { params: nllOwn.params, scales: own.scales },
          },
          heldOut,
        );
        if (judged.own) {
          train = nllOwn;
          kept = own;
        }
        selected = {
          loss: judged.own ? "nll" : choice.loss,
          ...(judged.own ? { own: true } : {}),
          scores: { ...choice.scores, own: judged.scores },
        };
      } else {
        if (challengerWanted) await trainChallenger();
        if (heldOut) {
          selected = { ...choice, scores: { ...choice.scores, own: { ess: heldOutEss } } };
        }
      }
    } else {
      // A select round whose draws are too few to choose NLL trains APT alone.
      if (scoring) selected = { loss: "apt", scores: { ess: scoringEssNow } };
      train = await trainWith(loss === "apt" || loss === "select" ? "apt" : "nll", false);
      if (challengerWanted) await trainChallenger();
    }
    await keeper?.remove(round);
    trainedFrom = kept.from;
    current = { params: train.params, scales: kept.scales };
    // The spread of each NLL network trained on later rounds' draws alone, fitted at weighted
    // draws it did not train on (spread.ts says why only those).
    if (ctx && importance && config.calibrateSpread !== false && net.normalBase) {
      const calibrate = async (checkpoint: Checkpoint, from: number) => {
        const heldOut = heldOutDraws(data, d, from);
        return heldOut
          ? calibrateSpread(net, ctx.xObs, checkpoint, heldOut)
          : { checkpoint, fit: undefined };
      };
      const keptLoss = selected?.loss ?? (loss === "select" ? "apt" : loss);
      if (keptLoss === "nll" && kept.from > 0) {
        const mine = await calibrate(current, kept.from);
        current = mine.checkpoint;
        spread = mine.fit;
      }
      // A challenger is NLL on its round's own draws.
      if (challenger) {
        const theirs = await calibrate(challenger, round);
        challenger = theirs.checkpoint;
        challengerSpread = theirs.fit;
      }
    }
  }
  const tTrain = performance.now();

  const record: RoundRecord = {
    round,
    nDrawn: sim.status.length,
    nSimulated: counts.ok,
    dropped: {
      nonFinite: counts.nonFinite,
      threw: counts.threw,
      crashed: counts.crashed,
      ...(counts.timedOut > 0 ? { timedOut: counts.timedOut } : {}),
    },
    redrawn,
    proposal,
    // A restored round keeps what its training chose.
    loss: selected?.loss ?? restored?.record.loss ?? (loss === "select" ? "apt" : loss),
    ...(selected
      ? { lossScores: selected.scores }
      : restored?.record.lossScores
        ? { lossScores: restored.record.lossScores }
        : {}),
    ...(sim.firstError ? { firstError: sim.firstError } : {}),
    ...(reported
      ? {
          nEff: reported.nEff,
          kishEss: reported.kishEss,
          efficiency: reported.efficiency,
          logEvidence: reported.logEvidence,
          logEvidenceSe: reported.logEvidenceSe,
          paretoK: reported.paretoK,
        }
      : noValidWeights
        ? { nEff: 0, kishEss: 0, efficiency: 0 }
        : {}),
    ...(pilot ? { pilot } : {}),
    ...(duel ? { duel } : {}),
    ...(challenger ? { challenger: true } : {}),
    ...(spread ? { spread } : restored?.record.spread ? { spread: restored.record.spread } : {}),
    ...(challengerSpread
      ? { challengerSpread }
      : restored?.record.challengerSpread
        ? { challengerSpread: restored.record.challengerSpread }
        : {}),
    ...(trainedFrom !== undefined
      ? { trainedFrom }
      : restored?.record.trainedFrom !== undefined
        ? { trainedFrom: restored.record.trainedFrom }
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
  return afterRound(state, {
    current,
    data: challenger ? { ...roundData, challenger } : roundData,
    record,
    ...(stopped ? { stopped } : {}),
  });
}

/**
 * Each simulation's validation assignment, drawn once when its round is simulated and kept for
 * the whole run: round(n·fVal) rows (at least one) of a permutation. Round 0's equals the split
 * `trainPosterior` would draw itself with the round's training key.
 */
export function validationMask(key: Array, n: number, fVal: number): Uint8Array {
  const nVal = Math.max(1, Math.round(n * fVal));
  const order = permutation(key, n);
  const mask = new Uint8Array(n);
  for (let i = n - nVal; i < n; i++) mask[order[i]!] = 1;
  return mask;
}

/**
 * The proposal-corrected NLL's weights: p(θ) / q̄(θ) for every pooled row, q̄ the mixture of the
 * rounds' proposals in proportion to their rows (the balance heuristic of multiple importance
 * sampling; bounded by the number of rounds where the prior drew round 0), normalised to mean 1.
 */
export async function proposalCorrection(
  ctx: ProposalContext,
  used: readonly RoundData[],
): Promise<Float64Array> {
  const n = used.reduce((s, r) => s + r.logPrior.length, 0);
  const out = new Float64Array(n);
  const logQbar: Float64Array[] = used.map((r) =>
    new Float64Array(r.logPrior.length).fill(Number.NEGATIVE_INFINITY),
  );
  for (const drawer of used) {
    const share = Math.log(drawer.logPrior.length / n);
    for (let k = 0; k < used.length; k++) {
      const r = used[k]!;
      const lq = await proposalLogDensity(ctx, drawer.proposal, r.theta, r.logPrior);
      const acc = logQbar[k]!;
      for (let i = 0; i < acc.length; i++) {
        const a = acc[i]!;
        const b = share + lq[i]!;
        const m = Math.max(a, b);
        acc[i] =
          m === Number.NEGATIVE_INFINITY ? m : m + Math.log(Math.exp(a - m) + Math.exp(b - m));
      }
    }
  }
  let o = 0;
  for (let k = 0; k < used.length; k++) {
    const r = used[k]!;
    for (let i = 0; i < r.logPrior.length; i++)
      out[o++] = Math.exp(r.logPrior[i]! - logQbar[k]![i]!);
  }
  let mean = 0;
  for (const w of out) mean += w / n;
  return out.map((w) => w / mean);
}

/**
 * The weighted draws a "select" round scores its candidates at: every round's with usable
 * importance weights, combined as in the result (each round's weights scaled by its n_eff), or
 * undefined when no round has any.
 */
function scoringDraws(
  data: readonly RoundData[],
  d: number,
): { theta: Float64Array; weights: Float64Array } | undefined {
  const weighted = data.flatMap((r) => usableWeights(r) ?? []);
  return weighted.length > 0 ? combineRounds(weighted, d) : undefined;
}

/**
 * The scoring draws that a network trained on rounds from…last did not train on: those rounds'
 * validation rows and every row of the rounds before `from` (default 0: the validation rows
 * alone, which no candidate trained on), each round's weights restricted to them and counting
 * for the n_eff they hold there (combined as in `scoringDraws`), or undefined when none hold any.
 */
function heldOutDraws(
  data: readonly RoundData[],
  d: number,
  from = 0,
): { theta: Float64Array; weights: Float64Array } | undefined {
  const held = data.flatMap((r, round): WeightedRound[] => {
    const usable = usableWeights(r);
    if (!usable) return [];
    const rows: number[] = [];
    r.valMask.forEach((v, i) => {
      if (v === 1 || round < from) rows.push(i);
    });
    const theta = selectRows(r.theta, rows, d);
    const weights = selectRows(usable.weights, rows, 1);
    // nbi's n_eff of the held-out rows' weights, as each round's is (1/Σw² − 1, normalised).
    const nEff = kishEss(weights) - 1;
    return nEff > 0 ? [{ theta, weights, nEff }] : [];
  });
  return held.length > 0 ? combineRounds(held, d) : undefined;
}

/**
 * A round's draws and weights when they can contribute (n_eff finite and above 0): those later
 * stages and candidates are fitted to, or (`"estimate"`) its unbiased ones, for the result.
 */
function usableWeights(r: RoundData, which: "fit" | "estimate" = "fit"): WeightedRound | undefined {
  const imp = which === "estimate" ? (r.estimate ?? r.importance) : r.importance;
  return imp && imp.nEff > 0 && Number.isFinite(imp.nEff)
    ? { theta: r.theta, weights: imp.weights, nEff: imp.nEff }
    : undefined;
}

/**
 * A staged round's unbiased weights at its valid rows: each stage's rows weighed against the
 * proposal that drew them, the stages combined by their ESS (`combineStages`). `theta`,
 * `logPrior` and `logTarget` hold every drawn row (the stages' sizes sum to their number);
 * `okRows` the valid ones, ascending.
 */
async function stagedEstimate(
  ctx: ProposalContext,
  stages: readonly DrawStage[],
  theta: Float64Array,
  logPrior: Float64Array,
  logTarget: Float64Array,
  okRows: readonly number[],
): Promise<ImportanceResult | undefined> {
  const d = ctx.net.nDims;
  const groups: Float64Array[] = [];
  let at = 0;
  let k = 0;
  for (const st of stages) {
    const end = at + st.size;
    const lq = await proposalLogDensity(
      ctx,
      st.proposal,
      theta.subarray(at * d, end * d),
      logPrior.subarray(at, end),
    );
    const rows: number[] = [];
    while (k < okRows.length && okRows[k]! < end) rows.push(okRows[k++]!);
    groups.push(Float64Array.from(rows, (row) => logTarget[row]! - lq[row - at]!));
    at = end;
  }
  return groups.some((g) => g.some(Number.isFinite)) ? combineStages(groups) : undefined;
}

/** A store written before proposals were recorded: the defensive surrogate of the last round. */
function legacyProposal(
  round: number,
  acceptance: number,
  seq: ReturnType<typeof sequentialOptions>,
): RoundProposal {
  return {
    parts: [
      {
        weight: 1,
        part: {
          kind: "surrogate",
          round: round - 1,
          ...(seq.proposal.defensive ? { defensive: seq.proposal.defensive } : {}),
          logMass: Math.log(acceptance),
        },
      },
    ],
  };
}
