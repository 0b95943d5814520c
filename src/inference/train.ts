/**
 * Training the surrogate on NLL, nbi's recipe made exact: Adam with a cosine decay from `lr` to
 * `minLr` over the round, nbi's adaptive gradient clip (85th percentile of recent norms), a
 * validation split, and the best-validation parameters kept. One jit-compiled step does batch
 * gathering, the cheap noise model (fresh noise every batch), standardisation, the loss, its
 * gradient and the update, so an epoch is a loop of compiled calls with no per-op dispatch.
 */
import { fail, failText } from "../errors.js";
import * as np from "../ops/np.js";
import * as random from "../ops/random.js";
import * as optim from "../optim/index.js";
import type { Array } from "../trace/array.js";
import * as tree from "../trace/tree.js";
import { valueAndGrad } from "../transforms/api.js";
import { jit } from "../transforms/jit.js";
import { FIT_SETTING_RULES } from "./fit-settings.js";
import { type GappedLightCurves, gappedTrainingInput, isGappedLightCurves } from "./gaps.js";
import { keyAt, permutation, uniforms, yieldToEventLoop } from "./host.js";
import {
  deviceKey,
  type PosteriorNetwork,
  type PosteriorParams,
  type Scales,
  standardiseTheta,
} from "./posterior.js";

/**
 * The cheap part of the forward model, applied afresh to every batch: Gaussian sigmas (one number,
 * or one per data element), or a traceable function of (key, x [B, C, L], θ [B, d]) written with
 * `np`/`random` in the data's units.
 */
export type NoiseFn = (key: Array, x: Array, theta: Array) => Array;
/**
 * The noise model: Gaussian sigmas (one, or one per data element), a `NoiseFn`, or light curves
 * with missing points and per-point error bars (`gappedLightCurves`, whose featurizer sees the
 * values, the mask and the sigmas).
 */
export type Noise = number | ArrayLike<number> | NoiseFn | GappedLightCurves;

/** One training epoch, as `onEpoch` and `RoundRecord.epochs` report it. */
export interface EpochRecord {
  /** The epoch's number within its round, from 0. */
  readonly epoch: number;
  /** Mean training loss (NLL in standardised units) over the epoch's batches. */
  readonly trainLoss: number;
  /** Validation loss after the epoch. */
  readonly valLoss: number;
  /** Learning rate at the epoch's last step. */
  readonly lr: number;
  /** Wall-clock time of the epoch. */
  readonly seconds: number;
  /**
   * In a "select" round, as the progress hooks report it: the candidate this epoch trained (both
   * candidates report their epochs; the round's record keeps the chosen one's).
   */
  readonly candidate?: "apt" | "nll";
}

export interface TrainOptions {
  nEpochs: number;
  batchSize: number;
  lr: number;
  minLr: number;
  /** Fraction held out for validation (default 0.1, as nbi). */
  fVal?: number;
  /** Stop after this many epochs without a better validation loss (default: never). */
  earlyStopPatience?: number;
  /**
   * Half-life, in epochs, of an exponential moving average of the parameters over the steps
   * (`optim.paramAverage`): validation scores the average and training keeps the best average.
   * Small batches at a fixed learning rate move the network more from one epoch to the next than
   * the epochs improve it, so a validation loss read off the raw parameters zigzags and early
   * stopping ends on a lucky or an unlucky step; the average moves smoothly. 0 evaluates and
   * keeps the raw parameters, as nbi. Default 2.
   */
  emaHalfLife?: number;
  /**
   * The starting parameters are a trained network's (a sequential round's warm start): the
   * moving average begins at them. Default false: a fresh network, whose random start the
   * average leaves out (see `optim.paramAverage`'s `fromStart`).
   */
  warmStart?: boolean;
  /**
   * "nll" (default): the weighted NLL. "apt": atomic APT (SNPE-C): each example's θ contrasted
   * with `atoms − 1` others of its batch, −log softmax of log q(θ|x) − log p(θ) (needs
   * `TrainData.logPrior`).
   */
  loss?: "nll" | "apt";
  /** Atoms per example of the APT loss, the true θ included (default 10; 1 gives the NLL). */
  atoms?: number;
  noise?: Noise;
  /** Host key for the split, shuffles and noise. */
  key: Array;
  /**
   * Stops training between steps (the call rejects with the signal's reason). With `onInterrupt`,
   * the state at the last finished epoch is handed over first.
   */
  signal?: AbortSignal;
  onEpoch?: (record: EpochRecord) => void;
  onStep?: (step: number, steps: number, epoch: number) => void;
  /**
   * A training stopped by `signal` to continue: called once, before the first epoch, with
   * templates of the parameters and the optimizer state (their structure, dtypes and shapes) and
   * this training's `setup`; returns the state `onInterrupt` saved, or undefined to start afresh.
   * A state whose `setup` differs is refused. Resumed at an epoch boundary, training continues
   * exactly as if never stopped (same batches, noise, schedule, clip history and best epoch).
   */
  resume?: (template: TrainTemplate) => Promise<TrainCheckpoint | undefined>;
  /**
   * Called when `signal` stops training after at least one epoch finished (since the start or
   * the resumed epoch), with the state at the last finished epoch: the steps of an epoch cut short
   * are lost, and a resume repeats that epoch from its start. The call then rejects.
   */
  onInterrupt?: (checkpoint: TrainCheckpoint) => Promise<void>;
}

/**
 * The optimizer state of a training: the adaptive clip's, Adam's, then (with `emaHalfLife` > 0)
 * the parameters' moving average.
 */
export type TrainOptState = [
  optim.AdaptiveClipState,
  optim.AdamState<PosteriorParams>,
  optim.ParamAverageState<PosteriorParams>?,
];

/** What `TrainOptions.resume` is given: the shapes to fill and the training's setup. */
export interface TrainTemplate {
  /** Parameters shaped like the network's (the starting parameters). */
  readonly params: PosteriorParams;
  /** The optimizer's initial state (a pytree of arrays). */
  readonly optState: TrainOptState;
  /** What fixes this training's course (see `TrainCheckpoint.setup`). */
  readonly setup: string;
}

/** A training stopped at an epoch boundary: everything needed to continue it exactly. */
export interface TrainCheckpoint {
  /**
   * What fixes the course of the training (rows to train on and held out, batch size, steps,
   * epochs, learning-rate schedule, loss, atoms, patience), as JSON: a resume must match it.
   */
  readonly setup: string;
  /** The next epoch to run (epochs 0 … epoch − 1 are done). */
  readonly epoch: number;
  /** The parameters after epoch − 1. */
  readonly params: PosteriorParams;
  /** The optimizer state after epoch − 1 (Adam's moments and step count, the clip's history). */
  readonly optState: TrainOptState;
  /** The best validation so far (epoch −1: the starting parameters). */
  readonly best: {
    readonly params: PosteriorParams;
    readonly loss: number;
    readonly epoch: number;
  };
  /** The records of the epochs done. */
  readonly epochs: readonly EpochRecord[];
}

export interface TrainData {
  /** Raw simulator outputs, n × dataSize. */
  x: Float32Array;
  /** Raw parameters, n × nDims. */
  theta: Float64Array;
  /** Per-example loss weights (proposal correction); default all 1. */
  weights?: Float64Array;
  /**
   * 1 for the rows held out for validation. Sequential rounds fix each simulation's assignment
   * for the whole run, so a warm-started network is never validated on rows it trained on. Default:
   * a fresh random split of `fVal`.
   */
  valMask?: Uint8Array;
  /** log p(θ) per row (the APT loss's prior term). */
  logPrior?: Float64Array;
}

export interface TrainResult {
  readonly params: PosteriorParams;
  readonly epochs: readonly EpochRecord[];
  readonly bestEpoch: number;
  readonly bestValLoss: number;
  readonly stoppedEarly: boolean;
  readonly nTrain: number;
  readonly nVal: number;
}

interface Consts {
  xMean: Array;
  xStd: Array;
  sigma?: Array;
}

function checkOptions(o: TrainOptions): void {
  const posInt = (name: string, v: unknown) => {
    if (typeof v !== "number" || !Number.isInteger(v) || v < 1)
      fail("fit", name, "a positive integer", v);
  };
  posInt("nEpochs", o.nEpochs);
  posInt("batchSize", o.batchSize);
  if (!(o.lr > 0)) fail("fit", "lr", "a positive number", o.lr);
  if (!(o.minLr >= 0 && o.minLr <= o.lr))
    fail("fit", "minLr", `a number in [0, lr = ${o.lr}]`, o.minLr);
  const fVal = o.fVal ?? 0.1;
  if (!(fVal > 0 && fVal < 1)) fail("fit", "fVal", "a fraction in (0, 1)", fVal);
  if (o.earlyStopPatience !== undefined && o.earlyStopPatience !== -1)
    posInt("earlyStopPatience", o.earlyStopPatience);
  const halfLife = FIT_SETTING_RULES.emaHalfLife;
  if (o.emaHalfLife !== undefined && !halfLife.ok(o.emaHalfLife))
    fail("fit", "emaHalfLife", halfLife.expected, o.emaHalfLife);
  if (o.loss !== undefined && o.loss !== "nll" && o.loss !== "apt")
    fail("fit", "loss", '"nll" or "apt"', o.loss);
  if (o.atoms !== undefined) posInt("atoms", o.atoms);
}

/**
 * A batch's noise as a traceable function of (key, x, θ, consts): the noisy data, or with
 * `encoded` the featurizer's whole input (the gapped model's values, mask and sigmas).
 */
type BatchNoise = ((k: Array, x: Array, t: Array, c: Consts) => Array) & {
  readonly encoded?: boolean;
};

/** The noise model as a traceable function of (key, x, θ, consts). */
function noiseModel(noise: Noise | undefined, dataSize: number): BatchNoise | undefined {
  if (noise === undefined) return undefined;
  if (typeof noise === "function") return (k, x, t) => noise(k, x, t);
  if (isGappedLightCurves(noise)) {
    return Object.assign(
      (k: Array, x: Array, t: Array, c: Consts) =>
        gappedTrainingInput(noise, k, x, t, c.xMean, c.xStd),
      { encoded: true },
    );
  }
  const sig = typeof noise === "number" ? [noise] : globalThis.Array.from(noise);
  if (sig.length !== 1 && sig.length !== dataSize) {
    fail(
      "fit",
      "noise",
      `one sigma or ${dataSize} sigmas (one per data element)`,
      `${sig.length} sigmas`,
    );
  }
  if (sig.some((s) => !(s >= 0) || !Number.isFinite(s)))
    fail("fit", "noise", "finite sigmas ≥ 0", noise);
  return (k, x, _t, c) => np.add(x, np.mul(c.sigma!, random.normal(k, x.shape)));
}

/** The Gaussian sigmas shaped [C, L] (or a scalar), on the default backend. */
export function sigmaArray(
  noise: Noise | undefined,
  inputShape: readonly [number, number],
): Array | undefined {
  if (noise === undefined || typeof noise === "function" || isGappedLightCurves(noise))
    return undefined;
  const sig = typeof noise === "number" ? [noise] : globalThis.Array.from(noise);
  if (sig.length === 1) return np.array(sig[0]!, { dtype: "float32" });
  return np.reshape(np.array(sig, { dtype: "float32" }), [...inputShape]);
}

export function makeConsts(scales: Scales, net: PosteriorNetwork, noise?: Noise): Consts {
  const [C] = net.inputShape;
  const f32 = (a: Float64Array, shape: number[]) =>
    np.reshape(np.array(globalThis.Array.from(a), { dtype: "float32" }), shape);
  const sigma = sigmaArray(noise, net.inputShape);
  return {
    xMean: f32(scales.xMean, [C, 1]),
    xStd: f32(scales.xStd, [C, 1]),
    ...(sigma ? { sigma } : {}),
  };
}

/** A batch's observations with fresh noise, standardised: what the featurizer sees. */
function noisyStandardised(
  noise: ReturnType<typeof noiseModel>,
  key: Array,
  x: Array,
  theta: Array,
  c: Consts,
): Array {
  if (noise?.encoded) return noise(key, x, theta, c);
  const xn = noise ? noise(key, x, theta, c) : x;
  return np.div(np.sub(xn, c.xMean), c.xStd);
}

/**
 * Weighted mean NLL of a batch in the flow's units: θ (user's units, for the noise model) and ts,
 * its standardised unbounded image (see `standardiseTheta`).
 */
function makeLoss(net: PosteriorNetwork, noise: ReturnType<typeof noiseModel>) {
  return (
    params: PosteriorParams,
    x: Array,
    theta: Array,
    ts: Array,
    w: Array,
    key: Array,
    c: Consts,
  ) => {
    const lp = net.logProbStd(params, noisyStandardised(noise, key, x, theta, c), ts);
    return np.neg(np.div(np.sum(np.mul(w, lp)), np.sum(w)));
  };
}

/**
 * Atomic APT (Greenberg et al. 2019, sbi's SNPE-C) over a batch: x [B, C, L], the atoms'
 * standardised θ [B·K, d] (row i·K is example i's own), their log-priors in the flow's units
 * (log p(θ) − log |det ∂θs/∂θ|) [B·K]. Each example's loss is
 * −log softmax_k (log q(θ_ik | x_i) − log p(θ_ik)) at k = 0: the surrogate fitted to the
 * posterior whatever proposal drew θ, so later rounds need no importance correction.
 */
function makeAptLoss(net: PosteriorNetwork, noise: ReturnType<typeof noiseModel>) {
  return (
    params: PosteriorParams,
    x: Array,
    tTrue: Array,
    tsAtoms: Array,
    lpAtoms: Array,
    w: Array,
    key: Array,
    c: Consts,
  ) => {
    const B = x.shape[0]!;
    const atoms = tsAtoms.shape[0]! / B;
    const ctx = net.context(params, noisyStandardised(noise, key, x, tTrue, c));
    const F = ctx.shape[1]!;
    const ctxAtoms = np.reshape(np.broadcastTo(np.reshape(ctx, [B, 1, F]), [B, atoms, F]), [
      B * atoms,
      F,
    ]);
    const lq = np.reshape(net.flow.logProb(params.flow, tsAtoms, ctxAtoms), [B, atoms]);
    const logits = np.sub(lq, np.reshape(lpAtoms, [B, atoms]));
    const own = np.reshape(np.take(logits, np.array(new Int32Array(1), { dtype: "int32" }), 1), [
      B,
    ]);
    const perExample = np.sub(np.logsumexp(logits, { axis: 1 }), own);
    return np.div(np.sum(np.mul(w, perExample)), np.sum(w));
  };
}

/**
 * For each example of a batch (global row indices), `atoms − 1` distinct other rows of the same
 * batch (Floyd's sampling), after the example's own row: [B·atoms] global indices.
 */
export function atomIndices(batch: ArrayLike<number>, atoms: number, u: Float64Array): Int32Array {
  const B = batch.length;
  const out = new Int32Array(B * atoms);
  const chosen = new Set<number>();
  let next = 0;
  for (let i = 0; i < B; i++) {
    out[i * atoms] = batch[i]!;
    chosen.clear();
    // Floyd: atoms − 1 distinct offsets in [0, B − 1), each ≥ 1 step away from i.
    for (let j = B - atoms; j < B - 1; j++) {
      const t = Math.floor(u[next++ % u.length]! * (j + 1));
      chosen.add(chosen.has(t) ? j : t);
    }
    let k = 1;
    for (const o of chosen) out[i * atoms + k++] = batch[(i + 1 + o) % B]!;
  }
  return out;
}

/**
 * Moves host data to the default backend as [n, C, L] / [n, d] / [n] float32 arrays: x, θ in the
 * user's units (for a noise function), ts (θ as the flow sees it) and the loss weights; with the
 * APT loss also log p(θ) in the flow's units.
 */
function deviceData(data: TrainData, net: PosteriorNetwork, scales: Scales, apt: boolean) {
  const d = net.nDims;
  const n = data.theta.length / d;
  const [C, L] = net.inputShape;
  const { ts, logJac } = standardiseTheta(scales, data.theta, d);
  return {
    x: np.reshape(np.array(data.x, { dtype: "float32" }), [n, C, L]),
    theta: np.reshape(np.array(Float32Array.from(data.theta), { dtype: "float32" }), [n, d]),
    ts: np.reshape(np.array(ts, { dtype: "float32" }), [n, d]),
    lp: apt
      ? np.array(
          Float32Array.from(data.logPrior!, (v, i) => v - logJac[i]!),
          { dtype: "float32" },
        )
      : undefined,
    w: np.array(data.weights ? Float32Array.from(data.weights) : new Float32Array(n).fill(1), {
      dtype: "float32",
    }),
  };
}

/**
 * Trains `params` on the data with the given scales; returns the best-validation parameters and
 * the per-epoch record.
 *
 * @example
 * ```ts
 * const params = await inference.initPosterior(net, inference.hostKey(0));
 * const result = await inference.trainPosterior(net, params, scales, { x, theta },
 *   { nEpochs: 20, batchSize: 64, lr: 1e-3, minLr: 1e-5, noise: 0.1, key: inference.hostKey(1) });
 * ```
 */
export async function trainPosterior(
  net: PosteriorNetwork,
  params0: PosteriorParams,
  scales: Scales,
  data: TrainData,
  options: TrainOptions,
): Promise<TrainResult> {
  checkOptions(options);
  const n = data.theta.length / net.nDims;
  const { trainIdx, valIdx } = data.valMask
    ? fixedSplit(data.valMask, n)
    : randomSplit(keyAt(options.key, 0), n, options.fVal ?? 0.1);
  const nTrain = trainIdx.length;
  const nVal = valIdx.length;
  if (nTrain < 1 || nVal < 1)
    failText(
      "fit",
      "data",
      "at least 2 valid simulations to train on (one held out)",
      `${nTrain} to train on, ${nVal} held out`,
    );
  const batch = Math.min(options.batchSize, nTrain);
  const stepsPerEpoch = Math.floor(nTrain / batch); // drop the last partial batch, as nbi
  const apt = options.loss === "apt" && (options.atoms ?? 10) > 1;
  if (apt && !data.logPrior)
    failText("fit", "data.logPrior", "log p(θ) per row for the APT loss", "none");
  // Contrasting atoms come from the batch (at least one other example is needed).
  const atoms = apt ? Math.min(options.atoms ?? 10, batch, 512) : 1;

  const dev = deviceData(data, net, scales, apt);
  const lpAll = dev.lp;
  const noise = noiseModel(options.noise, net.dataSize);
  const consts = makeConsts(scales, net, options.noise);
  const loss = makeLoss(net, noise);
  const aptLoss = makeAptLoss(net, noise);

  const totalSteps = stepsPerEpoch * options.nEpochs;
  const schedule = optim.cosineWarmRestarts({
    init: options.lr,
    period: totalSteps,
    min: options.minLr,
  });
  const emaHalfLife = options.emaHalfLife ?? EMA_HALF_LIFE;
  const clipAdam = [
    optim.adaptiveClip({ percentile: 85, window: 256 }),
    optim.adam(schedule),
  ] as const;
  // The average's decay per step: half its weight on the last emaHalfLife epochs' steps.
  const optimizer = (
    emaHalfLife > 0
      ? optim.chain(
          ...clipAdam,
          optim.paramAverage({
            decay: 2 ** (-1 / (emaHalfLife * stepsPerEpoch)),
            fromStart: options.warmStart ?? false,
          }),
        )
      : optim.chain(...clipAdam)
  ) as optim.GradientTransformation<optim.FixedState<TrainOptState>>;
  /** The parameters validation scores: the moving average when one is kept. */
  const scored = (p: PosteriorParams, st: TrainOptState) => st[2]?.average ?? p;
  const step = jit(
    (
      p: PosteriorParams,
      s: TrainOptState,
      xAll: Array,
      tAll: Array,
      tsAll: Array,
      wAll: Array,
      idx: Array,
      k: Array,
      c: Consts,
    ) => {
      const x = np.take(xAll, idx, 0);
      const t = np.take(tAll, idx, 0);
      const ts = np.take(tsAll, idx, 0);
      const w = np.take(wAll, idx, 0);
      const [value, grads] = valueAndGrad(loss)(p, x, t, ts, w, k, c);
      const { updates, state } = optimizer.update<PosteriorParams>(grads, s, p);
      return [optim.applyUpdates(p, updates), state, value] as const;
    },
    // The optimizer state is replaced every step and held nowhere else: its storage is reused.
    // (Not the parameters: the best epoch's are kept.)
    { donateArgnums: [1] },
  );
  const aptStep = jit(
    (
      p: PosteriorParams,
      s: TrainOptState,
      xAll: Array,
      tAll: Array,
      tsAll: Array,
      wAll: Array,
      lp: Array,
      idx: Array,
      atomIdx: Array,
      k: Array,
      c: Consts,
    ) => {
      const [value, grads] = valueAndGrad(aptLoss)(
        p,
        np.take(xAll, idx, 0),
        np.take(tAll, idx, 0),
        np.take(tsAll, atomIdx, 0),
        np.take(lp, atomIdx, 0),
        np.take(wAll, idx, 0),
        k,
        c,
      );
      const { updates, state } = optimizer.update<PosteriorParams>(grads, s, p);
      return [optim.applyUpdates(p, updates), state, value] as const;
    },
    { donateArgnums: [1] },
  );
  const evaluate = jit(
    (p: PosteriorParams, x: Array, t: Array, ts: Array, w: Array, k: Array, c: Consts) =>
      np.mul(loss(p, x, t, ts, w, k, c), np.sum(w)),
  );
  const evaluateApt = jit(
    (
      p: PosteriorParams,
      x: Array,
      t: Array,
      tA: Array,
      lpA: Array,
      w: Array,
      k: Array,
      c: Consts,
    ) => np.mul(aptLoss(p, x, t, tA, lpA, w, k, c), np.sum(w)),
  );
  // Validation chunks (and, for APT, their atoms: fixed, so epochs compare alike). A chunk too
  // small to hold every atom joins the one before it.
  const valChunks: { idx: Array; atomIdx?: Array }[] = [];
  const chunkStarts: number[] = [];
  for (let i = 0; i < nVal; i += 512) chunkStarts.push(i);
  if (chunkStarts.length > 1 && nVal - chunkStarts.at(-1)! < atoms) chunkStarts.pop();
  chunkStarts.forEach((start, c) => {
    const end = c + 1 < chunkStarts.length ? chunkStarts[c + 1]! : nVal;
    const rows = valIdx.slice(start, end);
    const chunkAtoms = Math.min(atoms, rows.length);
    valChunks.push({
      idx: np.array(rows, { dtype: "int32" }),
      ...(apt && chunkAtoms > 1
        ? {
            atomIdx: np.array(
              atomIndices(
                rows,
                chunkAtoms,
                uniforms(keyAt(options.key, 1_000 + c), rows.length * (chunkAtoms - 1)),
              ),
              { dtype: "int32" },
            ),
          }
        : {}),
    });
  });
  const valWeight = valIdx.reduce((s, i) => s + (data.weights ? data.weights[i]! : 1), 0);
  const valKey = deviceKey(keyAt(options.key, 1));
  const validate = async (p: PosteriorParams) => {
    let total = 0;
    for (const { idx, atomIdx } of valChunks) {
      const x = np.take(dev.x, idx, 0);
      const t = np.take(dev.theta, idx, 0);
      const w = np.take(dev.w, idx, 0);
      const r = atomIdx
        ? evaluateApt(
            p,
            x,
            t,
            np.take(dev.ts, atomIdx, 0),
            np.take(lpAll!, atomIdx, 0),
            w,
            valKey,
            consts,
          )
        : evaluate(p, x, t, np.take(dev.ts, idx, 0), w, valKey, consts);
      total += (await r.data())[0]!;
    }
    return total / valWeight;
  };

  const patience = options.earlyStopPatience ?? -1;
  const setup = JSON.stringify({
    nTrain,
    nVal,
    batchSize: batch,
    stepsPerEpoch,
    nEpochs: options.nEpochs,
    lr: options.lr,
    minLr: options.minLr,
    loss: apt ? "apt" : "nll",
    atoms,
    patience,
    // Written only when set, so that checkpoints saved before the average existed still resume.
    ...(emaHalfLife > 0 ? { emaHalfLife, warmStart: options.warmStart ?? false } : {}),
  });
  let params = params0;
  let state: TrainOptState = optimizer.init(params);
  const epochs: EpochRecord[] = [];
  const resumed = options.resume
    ? await options.resume({ params, optState: state, setup })
    : undefined;
  if (
    resumed &&
    (resumed.setup !== setup ||
      !Number.isInteger(resumed.epoch) ||
      resumed.epoch < 0 ||
      resumed.epoch >= options.nEpochs ||
      resumed.epochs.length !== resumed.epoch)
  ) {
    failText(
      "trainPosterior",
      "options.resume",
      `a checkpoint of this training (setup ${setup}, an epoch in [0, ${options.nEpochs}))`,
      `setup ${resumed.setup}, epoch ${resumed.epoch}`,
    );
  }
  const start = resumed?.epoch ?? 0;
  let best: { params: PosteriorParams; loss: number; epoch: number };
  if (resumed) {
    params = resumed.params;
    state = resumed.optState;
    best = { ...resumed.best };
    epochs.push(...resumed.epochs);
  } else best = { params, loss: await validate(params), epoch: -1 };
  let stoppedEarly = false;
  // The state at the last finished epoch, for `onInterrupt`: the optimizer state is copied to
  // the host there, since the next step reuses its storage.
  let boundary: {
    epoch: number;
    params: PosteriorParams;
    optState: () => TrainOptState;
    best: typeof best;
  } = {
    epoch: start,
    params,
    // Never read: `onInterrupt` is called only once an epoch has finished (epoch > start).
    optState: () => state,
    best,
  };
  // The steps are synchronous: without a pause now and then, signal handlers (Ctrl-C), timers and
  // I/O would wait for the round's end. A pause every YIELD_MS costs well under 1% of a step loop.
  let lastYield = performance.now();
  for (let epoch = start; epoch < options.nEpochs; epoch++) {
    const t0 = performance.now();
    const perm = permutation(keyAt(options.key, 2 + 2 * epoch), nTrain);
    let key = deviceKey(keyAt(options.key, 3 + 2 * epoch));
    const atomU = apt
      ? uniforms(keyAt(keyAt(options.key, 2 + 2 * epoch), 1), stepsPerEpoch * batch * (atoms - 1))
      : undefined;
    const losses: Array[] = [];
    for (let s = 0; s < stepsPerEpoch; s++) {
      if (options.signal?.aborted) {
        if (options.onInterrupt && boundary.epoch > start) {
          await options.onInterrupt({
            setup,
            epoch: boundary.epoch,
            params: boundary.params,
            optState: boundary.optState(),
            best: boundary.best,
            epochs: epochs.slice(0, boundary.epoch),
          });
        }
        throw abortError(options.signal);
      }
      const idx = new Int32Array(batch);
      for (let b = 0; b < batch; b++) idx[b] = trainIdx[perm[s * batch + b]!]!;
      const [kStep, kNext] = random.splitList(key, 2);
      key = kNext!;
      const batchIdx = np.array(idx, { dtype: "int32" });
      const [p, st, value] = atomU
        ? aptStep(
            params,
            state,
            dev.x,
            dev.theta,
            dev.ts,
            dev.w,
            lpAll!,
            batchIdx,
            np.array(
              atomIndices(
                idx,
                atoms,
                atomU.subarray(s * batch * (atoms - 1), (s + 1) * batch * (atoms - 1)),
              ),
              { dtype: "int32" },
            ),
            kStep!,
            consts,
          )
        : step(params, state, dev.x, dev.theta, dev.ts, dev.w, batchIdx, kStep!, consts);
      params = p;
      state = st;
      losses.push(value);
      options.onStep?.(s + 1, stepsPerEpoch, epoch);
      if (performance.now() - lastYield >= YIELD_MS) {
        await yieldToEventLoop();
        lastYield = performance.now();
      }
    }
    let trainLoss = 0;
    for (const l of losses) trainLoss += (await l.data())[0]!;
    trainLoss /= losses.length;
    const current = scored(params, state);
    const valLoss = await validate(current);
    const lr = Number(
      (
        await np
          .asArray(schedule(np.array((epoch + 1) * stepsPerEpoch - 1, { dtype: "int32" })))
          .data()
      )[0],
    );
    const record = { epoch, trainLoss, valLoss, lr, seconds: (performance.now() - t0) / 1000 };
    epochs.push(record);
    options.onEpoch?.(record);
    if (Number.isFinite(valLoss) && valLoss < best.loss) {
      // The average lives in the optimizer state, whose storage the next step reuses: copy it
      // (on the device: no round trip through the host).
      const kept =
        current === params ? params : tree.map((a: Array) => np.add(np.zerosLike(a), a), current);
      best = { params: kept, loss: valLoss, epoch };
    }
    if (patience > 0 && epoch - best.epoch > patience) {
      stoppedEarly = true;
      break;
    }
    if (options.onInterrupt) {
      boundary = { epoch: epoch + 1, params, optState: await hostCopy(state), best };
    }
  }
  // Keep the best-validation epoch (the initial parameters count as epoch −1).
  return {
    params: best.params,
    epochs,
    bestEpoch: best.epoch,
    bestValLoss: best.loss,
    stoppedEarly,
    nTrain,
    nVal,
  };
}

/** The moving average's half-life in epochs when `TrainOptions.emaHalfLife` is not given. */
export const EMA_HALF_LIFE = 2;

/** A copy of a pytree of arrays on the host, and a function making device arrays of it again. */
async function hostCopy<T>(value: T): Promise<() => T> {
  const [leaves, def] = tree.flatten<Array>(value);
  const data = await Promise.all(leaves.map((l) => l.data()));
  return () =>
    tree.unflatten(
      def,
      leaves.map((l, i) => np.reshape(np.array(data[i]!, { dtype: l.dtype }), [...l.shape])),
    );
}

/** Longest stretch of training steps between pauses for the event loop (ms). */
const YIELD_MS = 20;

/** A fresh random split: the last round(n·fVal) rows of a permutation are held out. */
function randomSplit(key: Array, n: number, fVal: number) {
  const nVal = Math.max(1, Math.round(n * fVal));
  const order = permutation(key, n);
  return { trainIdx: order.subarray(0, n - nVal), valIdx: order.subarray(n - nVal) };
}

/** The split a validation mask fixes. */
function fixedSplit(valMask: Uint8Array, n: number) {
  if (valMask.length !== n)
    failText("fit", "data.valMask", `${n} entries (one per row)`, `${valMask.length}`);
  const trainIdx: number[] = [];
  const valIdx: number[] = [];
  for (let i = 0; i < n; i++) (valMask[i] ? valIdx : trainIdx).push(i);
  return { trainIdx: Int32Array.from(trainIdx), valIdx: Int32Array.from(valIdx) };
}

export function abortError(signal: AbortSignal): Error {
  const reason = signal.reason;
  return reason instanceof Error ? reason : new DOMException("fit was aborted", "AbortError");
}
