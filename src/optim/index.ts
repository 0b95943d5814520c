/**
 * Optax-style optimizers: pure functions over parameter pytrees. A `GradientTransformation` has
 * `init(params) → state` and `update(grads, state, params?, extra?) → { updates, state }`;
 * `applyUpdates(params, updates)` adds the updates. State holds arrays only (the step count is an
 * array), so a whole training step can be `jit`-ted. Learning rates are numbers or schedules of the
 * step count. States are typed from the parameters': `optim.adam(lr).init(params)` is an
 * `AdamState<typeof params>`, whose moments are pytrees shaped like the parameters.
 *
 * ```ts
 * const opt = optim.chain(optim.clipByGlobalNorm(5), optim.adam(optim.cosineWarmRestarts({ init: 1e-3, period: 1000 })));
 * let state = opt.init(params);
 * const { updates, state: next } = opt.update(grads, state, params);
 * params = optim.applyUpdates(params, updates);
 * ```
 */
import { fail } from "../errors.js";
import * as np from "../ops/np.js";
import type { Array, ArrayLike } from "../trace/array.js";
import * as tree from "../trace/tree.js";

/** A learning rate as a function of the step count (0 at the first update). */
export type Schedule = (count: Array) => ArrayLike;

/** Extra inputs of `update` that some transformations read. */
export interface UpdateExtra {
  /** The current loss: read by `reduceOnPlateau`. */
  value?: ArrayLike;
}

/**
 * How a transformation's state type depends on the parameters' type P: `state` is written in terms
 * of `this["params"]`, and `StateOf<F, P>` reads it with `params` set to P. (TypeScript has no type
 * parameters that are themselves generic; this is the usual stand-in.)
 */
export interface StateFamily {
  /** The parameters' type, set by `StateOf`. */
  readonly params: unknown;
  /** The state's type, in terms of `this["params"]`. */
  readonly state: unknown;
}

/**
 * The state a transformation of family F keeps for parameters of type P.
 *
 * @example
 * ```ts
 * type S = optim.StateOf<optim.AdamFamily, { w: Array }>; // optim.AdamState<{ w: Array }>
 * ```
 */
export type StateOf<F extends StateFamily, P> = (F & {
  /** Sets the family's parameters' type to P. */
  readonly params: P;
})["state"];

/** The family of a state that does not depend on the parameters (clipping, plateau detection). */
export interface FixedState<S> extends StateFamily {
  /** The state, whatever the parameters. */
  readonly state: S;
}

/** What `update` returns: the updates (shaped like the gradients) and the next state. */
export interface Update<P, S> {
  /** What `applyUpdates` adds to the parameters (a pytree like `grads`). */
  updates: P;
  /** The state for the next call. */
  state: S;
}

/**
 * An optimizer or gradient transformation (optax's): pure `init` and `update` over pytrees. F says
 * how its state depends on the parameters' type (see `StateFamily`); the bare
 * `GradientTransformation` is any transformation, its state unknown.
 */
export interface GradientTransformation<F extends StateFamily = StateFamily> {
  /** The initial state for these parameters (arrays only, so a step can be jitted). */
  init<P>(params: P): StateOf<F, P>;
  /** The updates to add to the parameters, and the next state. `params` is read by weight decay, `extra` by reduceOnPlateau. */
  update<P>(
    grads: P,
    state: StateOf<F, P>,
    params?: P,
    extra?: UpdateExtra,
  ): Update<P, StateOf<F, P>>;
}

/**
 * The state a transformation keeps for parameters of type P.
 *
 * @example
 * ```ts
 * const opt = optim.chain(optim.clipByGlobalNorm(1), optim.adam(1e-3));
 * type S = optim.OptimizerState<typeof opt, { w: Array }>; // [{}, optim.AdamState<{ w: Array }>]
 * ```
 */
export type OptimizerState<T extends GradientTransformation, P> = StateOf<FamilyOf<T>, P>;

/** The state family of a transformation type. */
export type FamilyOf<T extends GradientTransformation> =
  T extends GradientTransformation<infer F> ? F : never;

const mapTree = <T>(f: (...xs: Array[]) => Array, t: T, ...rest: unknown[]): T =>
  tree.map(f as (...xs: unknown[]) => unknown, t, ...rest) as T;

/**
 * params + updates, leaf by leaf.
 *
 * @example
 * ```ts
 * optim.applyUpdates({ w: np.ones([3]) }, { w: np.full([3], -0.1) }); // { w: [0.9, 0.9, 0.9] }
 * ```
 */
export function applyUpdates<T>(params: T, updates: T): T {
  return mapTree((p, u) => np.add(p, u), params, updates);
}

const learningRateAt = (lr: number | Schedule, count: Array): ArrayLike =>
  typeof lr === "number" ? lr : lr(count);

function checkRate(fn: string, lr: unknown): void {
  if (typeof lr === "function") return;
  if (typeof lr !== "number" || !(lr > 0))
    fail(fn, "learningRate", "a positive number or a schedule", lr);
}

const zeroCount = () => np.array(0, { dtype: "int32" });

/** The state of `sgd` for parameters of type P. */
export interface SgdState<P = unknown> {
  /** Updates so far. */
  count: Array;
  /** The momentum buffer, a pytree like the params (zeros, unused, without momentum). */
  velocity: P;
}

/** The state family of `sgd`: `SgdState` of the parameters. */
export interface SgdFamily extends StateFamily {
  /** `SgdState` of the parameters. */
  readonly state: SgdState<this["params"]>;
}

/**
 * Stochastic gradient descent, with optional (heavy-ball) momentum.
 *
 * @example
 * ```ts
 * const opt = optim.sgd(0.1, { momentum: 0.9 });
 * const params = { w: np.zeros([3]) };
 * const { updates } = opt.update({ w: np.ones([3]) }, opt.init(params));
 * optim.applyUpdates(params, updates); // { w: [-0.1, -0.1, -0.1] }
 * ```
 */
export function sgd(
  learningRate: number | Schedule,
  options?: { momentum?: number },
): GradientTransformation<SgdFamily> {
  checkRate("sgd", learningRate);
  const mu = options?.momentum ?? 0;
  return {
    init: (params) => ({ count: zeroCount(), velocity: mapTree((p) => np.zerosLike(p), params) }),
    update(grads, state) {
      const lr = learningRateAt(learningRate, state.count);
      const velocity =
        mu === 0 ? grads : mapTree((v, g) => np.add(np.mul(v, mu), g), state.velocity, grads);
      const updates = mapTree((v) => np.astype(np.mul(v, np.neg(lr)), v.dtype), velocity);
      return {
        updates,
        state: { count: np.add(state.count, 1), velocity: mu === 0 ? state.velocity : velocity },
      };
    },
  };
}

/** Options of `adam` and `adamw` (optax's names and defaults). */
export interface AdamOptions {
  /** Decay of the first-moment average (default 0.9). */
  b1?: number;
  /** Decay of the second-moment average (default 0.999). */
  b2?: number;
  /** Added to the denominator for stability (default 1e-8). */
  eps?: number;
}

/** The state of `adam` and `adamw` for parameters of type P. */
export interface AdamState<P = unknown> {
  /** Updates so far (for bias correction and schedules). */
  count: Array;
  /** First-moment estimates, a pytree like the params. */
  mu: P;
  /** Second-moment estimates, a pytree like the params. */
  nu: P;
}

/** The state family of `adam` and `adamw`: `AdamState` of the parameters. */
export interface AdamFamily extends StateFamily {
  /** `AdamState` of the parameters. */
  readonly state: AdamState<this["params"]>;
}

function adamCore(
  fn: string,
  learningRate: number | Schedule,
  options: AdamOptions | undefined,
  weightDecay: number,
) {
  checkRate(fn, learningRate);
  const b1 = options?.b1 ?? 0.9;
  const b2 = options?.b2 ?? 0.999;
  const eps = options?.eps ?? 1e-8;
  const t: GradientTransformation<AdamFamily> = {
    init: (params) => ({
      count: zeroCount(),
      mu: mapTree((p) => np.zerosLike(p), params),
      nu: mapTree((p) => np.zerosLike(p), params),
    }),
    update(grads, state, params) {
      if (weightDecay !== 0 && params === undefined)
        fail(fn, "params", "the parameters (weight decay reads them)", params);
      const count = np.add(state.count, 1);
      const mu = mapTree((m, g) => np.add(np.mul(m, b1), np.mul(g, 1 - b1)), state.mu, grads);
      const nu = mapTree(
        (v, g) => np.add(np.mul(v, b2), np.mul(np.square(g), 1 - b2)),
        state.nu,
        grads,
      );
      const c = np.astype(count, "float32");
      const c1 = np.sub(1, np.pow(b1, c));
      const c2 = np.sub(1, np.pow(b2, c));
      const lr = learningRateAt(learningRate, state.count);
      const step = (m: Array, v: Array, p?: Array) => {
        let u = np.div(np.div(m, c1), np.add(np.sqrt(np.div(v, c2)), eps));
        if (weightDecay !== 0) u = np.add(u, np.mul(p!, weightDecay)); // decoupled (Loshchilov & Hutter)
        return np.astype(np.mul(u, np.neg(lr)), m.dtype);
      };
      const updates =
        weightDecay === 0
          ? mapTree((m, v) => step(m, v), mu, nu)
          : mapTree((m, v, p) => step(m, v, p), mu, nu, params);
      return { updates, state: { count, mu, nu } };
    },
  };
  return t;
}

/**
 * Adam (Kingma & Ba), with bias correction.
 *
 * @example
 * ```ts
 * const opt = optim.adam(1e-3);
 * let params = { w: np.zeros([3]) };
 * let state = opt.init(params);
 * const step = opt.update({ w: np.ones([3]) }, state, params); // grads: grad(loss)(params)
 * [params, state] = [optim.applyUpdates(params, step.updates), step.state];
 * ```
 */
export function adam(
  learningRate: number | Schedule,
  options?: AdamOptions,
): GradientTransformation<AdamFamily> {
  return adamCore("adam", learningRate, options, 0);
}

/**
 * AdamW: Adam with decoupled weight decay (default 1e-4, as optax). `update` needs the params.
 *
 * @example
 * ```ts
 * const opt = optim.adamw(1e-3, { weightDecay: 1e-2 });
 * const params = { w: np.ones([3]) };
 * const { updates } = opt.update({ w: np.zeros([3]) }, opt.init(params), params); // decay alone: −1e-5 each
 * ```
 */
export function adamw(
  learningRate: number | Schedule,
  options?: AdamOptions & { weightDecay?: number },
): GradientTransformation<AdamFamily> {
  return adamCore("adamw", learningRate, options, options?.weightDecay ?? 1e-4);
}

/** The state family of `chain(...transforms)`: the tuple of their states. */
export interface ChainFamily<Ts extends GradientTransformation[]> extends StateFamily {
  /** Each transformation's state, in order. */
  readonly state: { [K in keyof Ts]: StateOf<FamilyOf<Ts[K]>, this["params"]> };
}

/**
 * Applies transformations in order, each to the previous one's updates (optax.chain).
 *
 * @example
 * ```ts
 * const opt = optim.chain(optim.clipByGlobalNorm(5), optim.adam(1e-3));
 * const state = opt.init({ w: np.zeros([3]) }); // [clip state, adam state]
 * ```
 */
export function chain<Ts extends GradientTransformation[]>(
  ...transforms: Ts
): GradientTransformation<ChainFamily<Ts>> {
  // The tuple of states is built by position: TypeScript cannot follow it through map.
  type States<P> = StateOf<ChainFamily<Ts>, P>;
  const all: readonly GradientTransformation[] = transforms;
  return {
    init: <P>(params: P) => all.map((t) => t.init(params)) as States<P>,
    update<P>(grads: P, state: States<P>, params?: P, extra?: UpdateExtra) {
      let g = grads;
      const states: readonly unknown[] = state;
      const next = all.map((t, i) => {
        const r = t.update(g, states[i], params, extra);
        g = r.updates;
        return r.state;
      });
      return { updates: g, state: next as States<P> };
    },
  };
}

/**
 * The Euclidean norm of all leaves together.
 *
 * @example
 * ```ts
 * optim.globalNorm({ a: np.array([3]), b: np.array([4]) }); // 5
 * ```
 */
export function globalNorm(t: unknown): Array {
  const leaves = tree.leaves<Array>(t);
  if (leaves.length === 0) return np.array(0);
  return np.sqrt(
    leaves.map((l) => np.sum(np.square(np.astype(l, "float32")))).reduce((a, b) => np.add(a, b)),
  );
}

function scaleTree<T>(t: T, factor: Array): T {
  return mapTree((g) => np.astype(np.mul(g, factor), g.dtype), t);
}

/**
 * Rescales the gradients so their global norm is at most maxNorm.
 *
 * @example
 * ```ts
 * const clip = optim.clipByGlobalNorm(1);
 * clip.update({ g: np.array([3, 4]) }, clip.init({})).updates; // { g: [0.6, 0.8] }
 * ```
 */
export function clipByGlobalNorm(
  maxNorm: number,
): GradientTransformation<FixedState<Record<string, never>>> {
  if (!(maxNorm > 0)) fail("clipByGlobalNorm", "maxNorm", "a positive number", maxNorm);
  return {
    init: () => ({}),
    update(grads, state) {
      const n = globalNorm(grads);
      const factor = np.where(np.greater(n, maxNorm), np.div(maxNorm, n), 1);
      return { updates: scaleTree(grads, factor), state };
    },
  };
}

/** The state of `adaptiveClip`. */
export interface AdaptiveClipState {
  /** The last `window` gradient norms (a ring buffer) and how many have been seen. */
  history: Array;
  /** Gradient norms seen so far. */
  count: Array;
}

/**
 * nbi's adaptive clip (AutoClip, Seetharaman et al. 2020): clips the global norm to the given
 * percentile of the norms seen so far (the last `window` of them). The first update is unclipped.
 *
 * @example
 * ```ts
 * const opt = optim.chain(optim.adaptiveClip({ percentile: 85 }), optim.adam(1e-3)); // nbi's recipe
 * ```
 */
export function adaptiveClip(options?: {
  percentile?: number;
  window?: number;
}): GradientTransformation<FixedState<AdaptiveClipState>> {
  const q = options?.percentile ?? 10;
  const w = options?.window ?? 1000;
  if (!(q >= 0 && q <= 100)) fail("adaptiveClip", "options.percentile", "a number in [0, 100]", q);
  if (!Number.isInteger(w) || w < 1)
    fail("adaptiveClip", "options.window", "a positive integer", w);
  const slots = np.arange(0, w, 1, { dtype: "int32" });
  return {
    init: () => ({ history: np.zeros([w]), count: np.array(0, { dtype: "int32" }) }),
    update(grads, state) {
      const n = globalNorm(grads);
      const history = np.where(
        // count mod w, in float32 (exact below 2^24 steps; WebGPU has no float64 for floorDivide).
        np.equal(
          slots,
          np.sub(
            state.count,
            np.mul(np.astype(np.floor(np.div(np.astype(state.count, "float32"), w)), "int32"), w),
          ),
        ),
        n,
        state.history,
      );
      const count = np.add(state.count, 1);
      const seen = np.minimum(count, w);
      const valid = np.less(slots, seen);
      // The percentile (lower nearest rank) of the valid entries, without sorting: the value whose
      // rank among the valid entries is floor(q/100 · (seen − 1)).
      const target = np.floor(np.mul(np.astype(np.sub(seen, 1), "float32"), q / 100));
      const vals = np.where(valid, history, Infinity);
      const below = np.sum(
        np.astype(np.less(np.expandDims(vals, 0), np.expandDims(vals, 1)), "float32"),
        { axis: 1 },
      );
      const ok = np.logicalAnd(valid, np.lessEqual(below, target));
      const clip = np.max(np.where(ok, vals, -Infinity));
      const factor = np.where(np.greater(n, clip), np.div(clip, n), 1);
      return { updates: scaleTree(grads, factor), state: { history, count } };
    },
  };
}

/** The state of `paramAverage` for parameters of type P. */
export interface ParamAverageState<P = unknown> {
  /** Updates so far. */
  count: Array;
  /** The moving average of the parameters after each update, a pytree like them. */
  average: P;
}

/** The state family of `paramAverage`: `ParamAverageState` of the parameters. */
export interface ParamAverageFamily extends StateFamily {
  /** `ParamAverageState` of the parameters. */
  readonly state: ParamAverageState<this["params"]>;
}

/**
 * An exponential moving average of the parameters (Polyak averaging, Polyak & Juditsky 1992, in
 * its exponential form): last in a chain, it passes the updates through unchanged and keeps
 * average ← β · average + (1 − β) · (params + updates). With `fromStart` (a warm start: the
 * parameters `init` is given are a trained network's) β = decay from the first update, so the
 * average begins at them; without it β = min(decay, t / (t + 1)) at the t-th update (from 0),
 * the plain mean of the steps so far until the window 1 / (1 − decay) is full, so a random start
 * carries no weight that must decay away. The average is the one to evaluate and keep: it
 * smooths the step-to-step noise of small-batch training. `update` needs the params.
 *
 * @example
 * ```ts
 * const opt = optim.chain(optim.adam(1e-3), optim.paramAverage({ decay: 0.9 }));
 * const state = opt.init({ w: np.zeros([3]) });
 * // after updates: state[1].average holds the averaged parameters
 * ```
 */
export function paramAverage(options: {
  decay: number;
  fromStart?: boolean;
}): GradientTransformation<ParamAverageFamily> {
  const decay = options.decay;
  const fromStart = options.fromStart ?? false;
  if (!(decay >= 0 && decay < 1))
    fail("paramAverage", "options.decay", "a number in [0, 1)", decay);
  return {
    init: (params) => ({
      count: zeroCount(),
      // A copy: the state may be donated to a jitted step that reuses its storage.
      average: mapTree((p) => np.add(np.zerosLike(p), p), params),
    }),
    update(updates, state, params) {
      if (params === undefined)
        fail("paramAverage", "params", "the parameters (the average follows them)", params);
      const t = np.astype(state.count, "float32");
      const beta = fromStart ? decay : np.minimum(decay, np.div(t, np.add(t, 1)));
      const average = mapTree(
        (a, p, u) =>
          np.astype(np.add(np.mul(a, beta), np.mul(np.add(p, u), np.sub(1, beta))), a.dtype),
        state.average,
        params,
        updates,
      );
      return { updates, state: { count: np.add(state.count, 1), average } };
    },
  };
}

/** The state of `reduceOnPlateau`. */
export interface PlateauState {
  /** The factor currently applied to the updates. */
  scale: Array;
  /** The best loss so far. */
  best: Array;
  /** Updates since the loss last improved. */
  badSteps: Array;
  /** Updates left before bad steps count again. */
  cooldown: Array;
}

/**
 * Reduce-on-plateau (optax.contrib.reduce_on_plateau): scales the updates by `factor` after
 * `patience` updates without the loss (`extra.value`) improving by more than `rtol`·|best| + `atol`.
 * Chain it after the optimizer and pass the loss to `update`.
 *
 * @example
 * ```ts
 * const opt = optim.chain(optim.adam(1e-3), optim.reduceOnPlateau({ patience: 5 }));
 * const params = { w: np.zeros([3]) };
 * const { state } = opt.update({ w: np.ones([3]) }, opt.init(params), params, { value: 0.5 }); // the loss, every step
 * ```
 */
export function reduceOnPlateau(options?: {
  factor?: number;
  patience?: number;
  rtol?: number;
  atol?: number;
  cooldown?: number;
  minScale?: number;
}): GradientTransformation<FixedState<PlateauState>> {
  const factor = options?.factor ?? 0.1;
  const patience = options?.patience ?? 10;
  const rtol = options?.rtol ?? 1e-4;
  const atol = options?.atol ?? 0;
  const cooldown = options?.cooldown ?? 0;
  const minScale = options?.minScale ?? 0;
  if (!(factor > 0 && factor < 1))
    fail("reduceOnPlateau", "options.factor", "a number in (0, 1)", factor);
  return {
    init: () => ({
      scale: np.array(1),
      best: np.array(Infinity),
      badSteps: np.array(0),
      cooldown: np.array(0),
    }),
    update(grads, state, _params, extra) {
      if (extra?.value === undefined)
        fail("reduceOnPlateau.update", "extra.value", "the current loss", undefined);
      const v = np.astype(np.asArray(extra.value), "float32");
      // (inf − rtol·inf is NaN: the first loss always improves on the initial +inf.)
      const threshold = np.where(
        np.isfinite(state.best),
        np.sub(state.best, np.add(np.mul(np.abs(state.best), rtol), atol)),
        Infinity,
      );
      const improved = np.less(v, threshold);
      const best = np.where(improved, v, state.best);
      const cooling = np.greater(state.cooldown, 0);
      const bad = np.where(np.logicalOr(improved, cooling), 0, np.add(state.badSteps, 1));
      const reduce = np.greater(bad, patience);
      const scale = np.where(
        reduce,
        np.maximum(np.mul(state.scale, factor), minScale),
        state.scale,
      );
      const nextCooldown = np.where(reduce, cooldown, np.maximum(np.sub(state.cooldown, 1), 0));
      return {
        updates: scaleTree(grads, scale),
        state: { scale, best, badSteps: np.where(reduce, 0, bad), cooldown: nextCooldown },
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Schedules: functions of the step count (an int array), usable under jit.

/**
 * Cosine annealing with warm restarts (SGDR, Loshchilov & Hutter; PyTorch's
 * CosineAnnealingWarmRestarts, nbi's default): periods T0, T0·mult, T0·mult², ... each decaying from
 * `init` to `min` (default 0).
 *
 * @example
 * ```ts
 * const lr = optim.cosineWarmRestarts({ init: 1e-3, period: 1000 }); // 1e-3 → 0 over 1000 steps, then again
 * const opt = optim.adam(lr);
 * ```
 */
export function cosineWarmRestarts(options: {
  init: number;
  period: number;
  mult?: number;
  min?: number;
}): Schedule {
  const { init, period } = options;
  const mult = options.mult ?? 1;
  const eta = options.min ?? 0;
  if (!(init > 0)) fail("cosineWarmRestarts", "options.init", "a positive number", init);
  if (!Number.isInteger(period) || period < 1)
    fail("cosineWarmRestarts", "options.period", "a positive integer", period);
  if (!(mult >= 1)) fail("cosineWarmRestarts", "options.mult", "a number ≥ 1", mult);
  return (count) => {
    // float32: WebGPU has no float64, and counts stay exact up to 2^24 steps.
    const t = np.astype(count, "float32");
    let tCur: Array;
    let tI: Array | number;
    if (mult === 1) {
      tCur = np.sub(t, np.mul(np.floor(np.div(t, period)), period));
      tI = period;
    } else {
      // Cycle i starts at T0 (mult^i − 1)/(mult − 1).
      const i = np.floor(np.div(np.log1p(np.div(np.mul(t, mult - 1), period)), Math.log(mult)));
      const start = np.div(np.mul(np.sub(np.pow(mult, i), 1), period), mult - 1);
      tI = np.mul(period, np.pow(mult, i));
      tCur = np.sub(t, start);
    }
    const cos = np.cos(np.mul(Math.PI, np.div(tCur, tI)));
    return np.astype(np.add(eta, np.mul((init - eta) / 2, np.add(1, cos))), "float32");
  };
}

/**
 * Step decay: init · gamma^floor(count / stepSize).
 *
 * @example
 * ```ts
 * optim.stepDecay({ init: 1e-2, stepSize: 100 })(np.array(250, { dtype: "int32" })); // 1e-4
 * ```
 */
export function stepDecay(options: { init: number; stepSize: number; gamma?: number }): Schedule {
  const gamma = options.gamma ?? 0.1;
  if (!Number.isInteger(options.stepSize) || options.stepSize < 1) {
    fail("stepDecay", "options.stepSize", "a positive integer", options.stepSize);
  }
  return (count) =>
    np.astype(
      np.mul(
        options.init,
        np.pow(gamma, np.floor(np.div(np.astype(count, "float32"), options.stepSize))),
      ),
      "float32",
    );
}

/**
 * A constant learning rate as a schedule.
 *
 * @example
 * ```ts
 * const opt = optim.adam(optim.constant(1e-3)); // the same as optim.adam(1e-3)
 * ```
 */
export const constant =
  (value: number): Schedule =>
  () =>
    value;
