/**
 * Masked autoregressive flows from the bijector blocks: `maf` (nbi's MAF: blocks of a MADE affine
 * with clamped log-scale and a permutation, optional mixture-of-Gaussians final block) and `nsf`
 * (the same blocks with a rational-quadratic spline transformer).
 *
 * The flow bijector maps base noise to data; density evaluation runs its inverse (one pass per
 * block: data → MADE 1 → permutation 1 → ... → base), and sampling its forward (`nDims` passes per
 * block).
 */
import { fail } from "../errors.js";
import * as np from "../ops/np.js";
import * as random from "../ops/random.js";
import type { Array } from "../trace/array.js";
import type { DType } from "../trace/dtype.js";
import type { ParamModule } from "../transforms/module.js";
import { chain, maskedAutoregressive, type Transformer } from "./combinators.js";
import type { Distribution } from "./distributions.js";
import { type ClampOptions, permute, reverse } from "./elementary.js";
import { type Made, type MadeParams, made } from "./made.js";
import { affineTransformer, rationalQuadraticSpline, type SplineOptions } from "./transformers.js";
import type { Bijector } from "./types.js";

/** The architecture of a masked autoregressive flow (`maf` and `nsf`); defaults are nbi's. */
export interface FlowOptions {
  /** Dimension of θ. */
  nDims: number;
  /** Width of the MADE hidden layers (default 64, as nbi). */
  flowHidden?: number;
  /** Number of masked hidden layers per MADE (default 2, as nbi). */
  hiddenLayers?: number;
  /** Number of [MADE, permutation] blocks (default 5, as nbi). */
  numBlocks?: number;
  /** Size of the conditioning context (default 0: unconditional). */
  contextDim?: number;
  /** Mixture components of the final MADE block (default 1: a standard-normal base). */
  nMog?: number;
  /**
   * Permutations between blocks: undefined (default) reverses the coordinates; a number seeds
   * random permutations (static configuration, drawn in JS).
   */
  permSeed?: number;
}

/** Options of `maf`: the flow's architecture and the affine transformer's log-scale clamp. */
export interface MafOptions extends FlowOptions {
  /** Log-scale clamp of the affine transformer (default [-1, 1], as nbi). */
  clamp?: readonly [number, number];
  /** Hard clip (default, nbi) or soft clip (zuko). */
  clampMode?: ClampOptions["mode"];
}

/** Options of `nsf`: the flow's architecture and the spline's bins, bound and minimum sizes. */
export interface NsfOptions extends FlowOptions, SplineOptions {}

/** The parameters of a flow: a plain pytree of MADE weights, one entry per block. */
export interface FlowParams {
  /** The MADE of each [MADE, permutation] block, in order from data to base. */
  readonly blocks: readonly MadeParams[];
  /** The mixture-of-Gaussians final block (when nMog > 1). */
  readonly mog?: MadeParams;
}

/**
 * A conditional density estimator q(θ | context) over `FlowParams`: `init` makes parameters, and
 * `logProb` / `sample` use them. Configuration lives in the closure, so the params are all arrays.
 * A flow is a `ParamModule` like a featurizer or a MADE: `init(key, options?)` gives orthogonal
 * weights and zero biases (float32 unless `dtype` says otherwise), and `apply(params, theta,
 * context?)` is `logProb`, the same function.
 */
export interface Flow extends ParamModule<FlowParams, [theta: Array, context?: Array], Array> {
  /** Dimension of θ. */
  readonly nDims: number;
  /** Size of the conditioning context (0: unconditional). */
  readonly contextDim: number;
  /** The bijector base → data of these parameters. */
  bijector(params: FlowParams): Bijector;
  /** The flow as a Distribution (sample shape [...], context broadcast). */
  distribution(params: FlowParams): Distribution;
  /** log q(θ | context): θ [..., nDims], context [..., contextDim] → [...]. One pass. */
  logProb(params: FlowParams, theta: Array, context?: Array): Array;
  /** n samples [n, nDims]; context [contextDim] (shared) or [n, contextDim]. */
  sample(params: FlowParams, key: Array, n: number, context?: Array): Array;
  /** n samples [n, nDims] and their log q [n] in one pass (what importance sampling needs). */
  sampleAndLogProb(params: FlowParams, key: Array, n: number, context?: Array): [Array, Array];
}

function positive(fn: string, name: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1)
    fail(fn, name, "a positive integer", v);
  return v;
}

/** mulberry32 permutations: static configuration, reproducible from the seed. */
function seededPermutations(seed: number, n: number, count: number): number[][] {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return globalThis.Array.from({ length: count }, () => {
    const p = globalThis.Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(next() * (i + 1));
      [p[i], p[j]] = [p[j]!, p[i]!];
    }
    return p;
  });
}

const LOG_2PI = Math.log(2 * Math.PI);

function autoregressiveFlow(
  fn: string,
  options: FlowOptions,
  transformer: Transformer & { nParams: number },
): Flow {
  if (typeof options !== "object" || options === null) fail(fn, "options", "an object", options);
  const nDims = positive(fn, "options.nDims", options.nDims);
  const hidden = positive(fn, "options.flowHidden", options.flowHidden ?? 64);
  const layers = positive(fn, "options.hiddenLayers", options.hiddenLayers ?? 2);
  const numBlocks = positive(fn, "options.numBlocks", options.numBlocks ?? 5);
  const nMog = positive(fn, "options.nMog", options.nMog ?? 1);
  const contextDim = options.contextDim ?? 0;
  if (!Number.isInteger(contextDim) || contextDim < 0) {
    fail(fn, "options.contextDim", "a non-negative integer", contextDim);
  }
  const hiddenSizes = globalThis.Array.from({ length: layers }, () => hidden);
  const mades: Made[] = globalThis.Array.from({ length: numBlocks }, () =>
    made({ nDims, hidden: hiddenSizes, nParams: transformer.nParams, contextDim }),
  );
  const mogMade =
    nMog > 1 ? made({ nDims, hidden: hiddenSizes, nParams: 3 * nMog, contextDim }) : null;
  const perms: Bijector[] =
    options.permSeed === undefined
      ? globalThis.Array.from({ length: numBlocks }, () => reverse())
      : seededPermutations(options.permSeed, nDims, numBlocks).map((p) => permute(p));

  const checkContext = (context: Array | undefined, what: string) => {
    if (contextDim === 0) return undefined;
    if (
      context === undefined ||
      context.ndim < 1 ||
      context.shape[context.ndim - 1] !== contextDim
    ) {
      fail(fn, what, `an array [..., ${contextDim}]`, context);
    }
    return context;
  };

  const bijectorOf = (params: FlowParams): Bijector => {
    const members: Bijector[] = [];
    mades.forEach((m, i) => {
      members.push(
        maskedAutoregressive((y, c) => m.apply(params.blocks[i]!, y, c), transformer, {
          name: `${fn} block ${i}`,
        }),
        perms[i]!,
      );
    });
    return chain(members);
  };

  // The base: a standard normal, or nbi's autoregressive mixture of Gaussians (a MADE whose
  // outputs per coordinate are K logits, K means and K log-scales).
  const mogParts = (params: FlowParams, u: Array, c: Array | undefined) => {
    const raw = mogMade!.apply(params.mog!, u, c);
    const [lg, m, ls] = np.split(raw, [nMog, 2 * nMog], -1);
    return { logW: np.logSoftmax(lg!, -1), m: m!, ls: ls! };
  };
  const baseLogProb = (params: FlowParams, u: Array, c: Array | undefined): Array => {
    if (mogMade === null) {
      return np.sum(np.sub(np.mul(-0.5, np.square(u)), 0.5 * LOG_2PI), { axis: -1 });
    }
    const { logW, m, ls } = mogParts(params, u, c);
    const z = np.mul(np.sub(np.expandDims(u, -1), m), np.exp(np.neg(ls)));
    const comp = np.sub(np.mul(-0.5, np.square(z)), np.add(ls, 0.5 * LOG_2PI));
    return np.sum(np.logsumexp(np.add(logW, comp), { axis: -1 }), { axis: -1 });
  };
  const baseSample = (
    params: FlowParams,
    key: Array,
    n: number,
    c: Array | undefined,
    dtype: DType,
  ) => {
    const [ke, kg] = random.splitList(key);
    const eps = random.normal(ke!, [n, nDims], { dtype });
    if (mogMade === null) return eps;
    // Draw all noise once; nDims passes then fix one more coordinate each (as maskedAutoregressive).
    const g = random.gumbel(kg!, [n, nDims, nMog], { dtype });
    let u = np.zerosLike(eps);
    for (let k = 0; k < nDims; k++) {
      const { logW, m, ls } = mogParts(params, u, c);
      const pick = np.oneHot(np.argmax(np.add(logW, g), { axis: -1 }), nMog, { dtype });
      const mean = np.sum(np.mul(pick, m), { axis: -1 });
      const logScale = np.sum(np.mul(pick, ls), { axis: -1 });
      u = np.add(mean, np.mul(np.exp(logScale), eps));
    }
    return np.stopGradient(u);
  };

  const logProb = (params: FlowParams, theta: Array, context?: Array) => {
    if (theta.ndim < 1 || theta.shape[theta.ndim - 1] !== nDims) {
      fail(`${fn}.logProb`, "theta", `an array [..., ${nDims}]`, theta);
    }
    const c = checkContext(context, "context");
    const [u, ld] = bijectorOf(params).inverseAndLogDet(theta, c);
    return np.add(baseLogProb(params, u, c), ld);
  };
  const paramsDtype = (params: FlowParams): DType => params.blocks[0]!.layers[0]!.w.dtype;
  const sampleContext = (context: Array | undefined, n: number) => {
    const c = checkContext(context, "context");
    if (c === undefined || c.ndim !== 1) return c;
    return np.broadcastTo(c, [n, contextDim]);
  };
  const sampleAndLogProb = (
    params: FlowParams,
    key: Array,
    n: number,
    context?: Array,
  ): [Array, Array] => {
    positive(`${fn}.sample`, "n", n);
    const c = sampleContext(context, n);
    const u = baseSample(params, key, n, c, paramsDtype(params));
    const [theta, ld] = bijectorOf(params).forwardAndLogDet(u, c);
    return [theta, np.sub(baseLogProb(params, u, c), ld)];
  };

  return {
    nDims,
    contextDim,
    init(key, initOptions) {
      const keys = random.splitList(key, numBlocks + 1);
      const blocks = mades.map((m, i) => m.init(keys[i]!, initOptions));
      return mogMade === null
        ? { blocks }
        : { blocks, mog: mogMade.init(keys[numBlocks]!, initOptions) };
    },
    bijector: bijectorOf,
    logProb,
    apply: logProb,
    sample: (params, key, n, context) => {
      positive(`${fn}.sample`, "n", n);
      const c = sampleContext(context, n);
      return bijectorOf(params).forward(baseSample(params, key, n, c, paramsDtype(params)), c);
    },
    sampleAndLogProb,
    distribution(params) {
      return {
        name: fn,
        batchShape: [],
        eventShape: [nDims],
        dtype: paramsDtype(params),
        logProb: (x, c) => logProb(params, x, c),
        sample: (key, shape = [], c) => {
          const n = shape.reduce((a, b) => a * b, 1);
          const s = sampleAndLogProb(params, key, n, c)[0];
          return np.reshape(s, [...shape, nDims]);
        },
        sampleAndLogProb: (key, shape = [], c) => {
          const n = shape.reduce((a, b) => a * b, 1);
          const [s, lp] = sampleAndLogProb(params, key, n, c);
          return [np.reshape(s, [...shape, nDims]), np.reshape(lp, [...shape])];
        },
      };
    },
  };
}

/**
 * nbi's masked autoregressive flow: `numBlocks` blocks of [MADE affine with log-scale clamped to
 * `clamp`, permutation], then a standard-normal base or (nMog > 1) a MADE mixture of Gaussians.
 * Orthogonal weights and zero biases at init.
 *
 * @example
 * ```ts
 * const flow = bijectors.maf({ nDims: 2, contextDim: 3 });
 * const params = flow.init(random.key(0));
 * const theta = flow.sample(params, random.key(1), 100, np.zeros([3])); // [100, 2]
 * const logQ = flow.logProb(params, theta, np.zeros([100, 3])); // [100]
 * ```
 */
export function maf(options: MafOptions): Flow {
  return autoregressiveFlow(
    "maf",
    options,
    affineTransformer({ clamp: options?.clamp ?? [-1, 1], mode: options?.clampMode ?? "hard" }),
  );
}

/**
 * The neural spline flow: the same blocks with a rational-quadratic spline transformer (more
 * flexible per block than the affine MAF, at about 3K − 1 outputs per coordinate).
 *
 * @example
 * ```ts
 * const flow = bijectors.nsf({ nDims: 2, bins: 8 });
 * const params = flow.init(random.key(0));
 * flow.logProb(params, np.zeros([5, 2])); // [5]
 * ```
 */
export function nsf(options: NsfOptions): Flow {
  return autoregressiveFlow("nsf", options, rationalQuadraticSpline(options));
}
