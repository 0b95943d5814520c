/**
 * The layers the featurizers are built from, exported so users can compose their own networks:
 * `linear`, `conv1d`, `weightNorm`, `batchNorm1d`, `maxPool1d` and `gruCell`. Parameter names and
 * layouts follow PyTorch (weight [out, in] / [out, in, kernel], GRU gates in the order r, z, n),
 * so weights can be exchanged with torch modules; initialisation follows PyTorch's defaults.
 */
import { fail } from "../errors.js";
import { ones, zeros } from "../ops/creation.js";
import * as np from "../ops/numpy.js";
import * as random from "../ops/random.js";
import type { Array } from "../trace/array.js";
import type { InitOptions, Module } from "./types.js";

function checkSize(fn: string, name: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1) {
    fail(fn, name, "a positive integer", v);
  }
  return v;
}

/** U(−bound, bound) of a shape: PyTorch's default for weights and biases (bound = 1/√fan_in). */
function uniform(key: Array, shape: number[], bound: number, options?: InitOptions): Array {
  return random.uniform(key, shape, {
    minval: -bound,
    maxval: bound,
    dtype: options?.dtype ?? "float32",
  });
}

function checkLastAxis(fn: string, x: Array, want: number, what: string): void {
  if (x.ndim < 1 || x.shape[x.ndim - 1] !== want) {
    fail(fn, "x", `an array whose last axis is ${what} = ${want}`, x);
  }
}

// ---------------------------------------------------------------------------------------------
// linear

/** The parameters of a `linear` layer. */
export interface LinearParams {
  /** [dimOut, dimIn], as torch.nn.Linear. */
  readonly weight: Array;
  /** [dimOut]; absent when the layer was made with `bias: false`. */
  readonly bias?: Array;
}

/** Options of `linear`. */
export interface LinearOptions {
  /** Size of the last axis of x. */
  dimIn: number;
  /** Size of the last axis of y. */
  dimOut: number;
  /** Add a bias (default true). */
  bias?: boolean;
}

/**
 * y = x Wᵀ + b over the last axis of x (any leading axes).
 *
 * @example
 * ```ts
 * const layer = featurizers.linear({ dimIn: 3, dimOut: 2 });
 * const params = layer.init(random.key(0));
 * layer.apply(params, np.ones([5, 3])); // [5, 2]
 * ```
 */
export function linear(options: LinearOptions): Module<LinearParams> {
  const dimIn = checkSize("linear", "dimIn", options.dimIn);
  const dimOut = checkSize("linear", "dimOut", options.dimOut);
  const withBias = options.bias ?? true;
  return {
    init(key, initOptions) {
      const [kw, kb] = random.splitList(key);
      const bound = 1 / Math.sqrt(dimIn);
      const weight = uniform(kw!, [dimOut, dimIn], bound, initOptions);
      return withBias ? { weight, bias: uniform(kb!, [dimOut], bound, initOptions) } : { weight };
    },
    apply(params, x) {
      checkLastAxis("linear", x, dimIn, "dimIn");
      const y = np.matmul(x, np.transpose(params.weight));
      return params.bias === undefined ? y : np.add(y, params.bias);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// conv1d

/** The parameters of a `conv1d` layer. */
export interface Conv1dParams {
  /** [outChannels, inChannels, kernel], as torch.nn.Conv1d. */
  readonly weight: Array;
  /** [outChannels]; absent when the layer was made with `bias: false`. */
  readonly bias?: Array;
}

/** Options of `conv1d`. */
export interface Conv1dLayerOptions {
  /** Channels of x. */
  inChannels: number;
  /** Channels of y. */
  outChannels: number;
  /** Kernel size. */
  kernel: number;
  /** Zero padding: a number for both sides, [before, after], or "same" (default) / "valid". */
  padding?: number | [number, number] | "same" | "valid";
  /** Step between output positions (default 1). */
  stride?: number;
  /** Spacing between kernel taps (default 1). */
  dilation?: number;
  /** Add a bias per output channel (default true). */
  bias?: boolean;
}

/**
 * A 1-D convolution layer over x [batch, inChannels, length] (PyTorch's cross-correlation).
 *
 * @example
 * ```ts
 * const conv = featurizers.conv1d({ inChannels: 1, outChannels: 8, kernel: 3 });
 * conv.apply(conv.init(random.key(0)), np.zeros([4, 1, 50])); // [4, 8, 50] ("same" padding)
 * ```
 */
export function conv1d(options: Conv1dLayerOptions): Module<Conv1dParams> {
  const cin = checkSize("conv1d", "inChannels", options.inChannels);
  const cout = checkSize("conv1d", "outChannels", options.outChannels);
  const k = checkSize("conv1d", "kernel", options.kernel);
  const withBias = options.bias ?? true;
  const convOptions = {
    padding: options.padding ?? "same",
    stride: options.stride ?? 1,
    dilation: options.dilation ?? 1,
  };
  return {
    init(key, initOptions) {
      const [kw, kb] = random.splitList(key);
      const bound = 1 / Math.sqrt(cin * k);
      const weight = uniform(kw!, [cout, cin, k], bound, initOptions);
      return withBias ? { weight, bias: uniform(kb!, [cout], bound, initOptions) } : { weight };
    },
    apply(params, x) {
      if (x.ndim !== 3 || x.shape[1] !== cin) {
        fail("conv1d", "x", `an array [batch, ${cin}, length]`, x);
      }
      const y = np.conv1d(x, params.weight, convOptions);
      return params.bias === undefined ? y : np.add(y, np.reshape(params.bias, [cout, 1]));
    },
  };
}

// ---------------------------------------------------------------------------------------------
// weightNorm

/** The parameters of a weight-normalised module: `weight` replaced by direction v and gain g. */
export type WeightNormParams<
  P extends {
    /** The weight that g and v replace. */
    readonly weight: Array;
  },
> = Omit<P, "weight"> & {
  /** Gain per output channel, [out] (torch's weight_g is [out, 1, ...]). */
  readonly g: Array;
  /** Direction, the shape of the wrapped weight (torch's weight_v). */
  readonly v: Array;
};

/**
 * w = g · v / ‖v‖, the norm taken per output channel (over every axis but the first).
 *
 * @example
 * ```ts
 * featurizers.weightFromNorm(np.array([2]), np.array([[3, 4]])); // [[1.2, 1.6]]
 * ```
 */
export function weightFromNorm(g: Array, v: Array): Array {
  const axes = globalThis.Array.from({ length: v.ndim - 1 }, (_, i) => i + 1);
  const norm = np.sqrt(np.sum(np.square(v), { axis: axes, keepdims: true }));
  const gain = np.reshape(g, [v.shape[0]!, ...axes.map(() => 1)]);
  return np.mul(gain, np.div(v, norm));
}

/**
 * Weight normalisation (Salimans & Kingma 2016) of any module whose parameters have a `weight`,
 * as torch.nn.utils.weight_norm(module, dim=0): the weight is reparametrised as g · v/‖v‖ with a
 * norm per output channel. Initialised like torch: v = the wrapped module's weight, g = ‖v‖.
 *
 * @example
 * ```ts
 * const conv = featurizers.weightNorm(featurizers.conv1d({ inChannels: 1, outChannels: 8, kernel: 3 }));
 * const params = conv.init(random.key(0)); // { g, v, bias }
 * conv.apply(params, np.zeros([4, 1, 50])); // [4, 8, 50]
 * ```
 */
export function weightNorm<
  P extends {
    /** The weight to reparametrise. */
    readonly weight: Array;
  },
>(module: Module<P>): Module<WeightNormParams<P>> {
  return {
    init(key, initOptions) {
      const { weight, ...rest } = module.init(key, initOptions);
      const axes = globalThis.Array.from({ length: weight.ndim - 1 }, (_, i) => i + 1);
      const g = np.sqrt(np.sum(np.square(weight), { axis: axes }));
      return { ...rest, g, v: weight } as unknown as WeightNormParams<P>;
    },
    apply(params, x) {
      const { g, v, ...rest } = params;
      return module.apply({ ...rest, weight: weightFromNorm(g, v) } as unknown as P, x);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// batchNorm1d

/** The parameters of a `batchNorm1d` layer. */
export interface BatchNormParams {
  /** Scale per channel (torch's weight). */
  readonly gamma: Array;
  /** Shift per channel (torch's bias). */
  readonly beta: Array;
}

/**
 * Batch normalisation over x [batch, channels, length] with the statistics of the batch (biased
 * variance over batch and length, eps 1e-5), as torch.nn.BatchNorm1d in training mode. No running
 * averages are kept: the output of one example depends on the rest of its batch, so under `vmap`
 * each example is normalised by itself.
 *
 * @example
 * ```ts
 * const bn = featurizers.batchNorm1d({ channels: 8 });
 * bn.apply(bn.init(random.key(0)), random.normal(random.key(1), [4, 8, 50])); // zero mean, unit variance per channel
 * ```
 */
export function batchNorm1d(options: { channels: number; eps?: number }): Module<BatchNormParams> {
  const c = checkSize("batchNorm1d", "channels", options.channels);
  const eps = options.eps ?? 1e-5;
  return {
    init(_key, initOptions) {
      const dtype = initOptions?.dtype ?? "float32";
      return { gamma: ones([c], { dtype }), beta: zeros([c], { dtype }) };
    },
    apply(params, x) {
      if (x.ndim !== 3 || x.shape[1] !== c) fail("batchNorm1d", "x", `[batch, ${c}, length]`, x);
      const mean = np.mean(x, { axis: [0, 2], keepdims: true });
      const centred = np.sub(x, mean);
      const variance = np.mean(np.square(centred), { axis: [0, 2], keepdims: true });
      const scale = np.div(np.reshape(params.gamma, [c, 1]), np.sqrt(np.add(variance, eps)));
      return np.add(np.mul(centred, scale), np.reshape(params.beta, [c, 1]));
    },
  };
}

// ---------------------------------------------------------------------------------------------
// maxPool1d

/**
 * Max pooling over the last axis of x [batch, channels, length] (no padding; floor).
 *
 * @example
 * ```ts
 * featurizers.maxPool1d(np.array([[[1, 3, 2, 5, 4]]])); // [[[3, 5]]]
 * ```
 */
export function maxPool1d(x: Array, kernel = 2, stride = kernel): Array {
  return np.maxPool1d(x, checkSize("maxPool1d", "kernel", kernel), stride);
}

// ---------------------------------------------------------------------------------------------
// gruCell

/** The parameters of a `gruCell` (one GRU layer), in torch.nn.GRU's layout. */
export interface GruCellParams {
  /** `[3·hidden, dimIn]`: the input weights of the gates r, z, n stacked (torch's weight_ih_l{k}). */
  readonly weightIh: Array;
  /** [3·hidden, hidden] (torch's weight_hh_l{k}). */
  readonly weightHh: Array;
  /** [3·hidden] (torch's bias_ih_l{k}). */
  readonly biasIh: Array;
  /** [3·hidden] (torch's bias_hh_l{k}). */
  readonly biasHh: Array;
}

/** A GRU cell: `init` and one step `apply(params, h, x)`. */
export interface GruCell {
  /** Fresh parameters, U(−1/√hidden, 1/√hidden) as PyTorch. */
  init(key: Array, options?: InitOptions): GruCellParams;
  /** One step: the new hidden state from h [..., hidden] and x [..., dimIn]. */
  apply(params: GruCellParams, h: Array, x: Array): Array;
  /** Size of the input x. */
  readonly dimIn: number;
  /** Size of the hidden state h. */
  readonly dimHidden: number;
}

/**
 * One GRU step from a precomputed input projection gi = x W_ihᵀ + b_ih (a sequence's projections
 * are one matmul outside the loop). PyTorch's equations:
 * r = σ(gi_r + gh_r), z = σ(gi_z + gh_z), n = tanh(gi_n + r ⊙ gh_n), h' = (1 − z) ⊙ n + z ⊙ h,
 * with gh = h W_hhᵀ + b_hh.
 *
 * @example
 * ```ts
 * const p = featurizers.gruCell({ dimIn: 2, dimHidden: 4 }).init(random.key(0));
 * const gi = featurizers.gruInputProjection(p, np.ones([1, 2]));
 * featurizers.gruStep(p, np.zeros([1, 4]), gi); // the next hidden state, [1, 4]
 * ```
 */
export function gruStep(params: GruCellParams, h: Array, gi: Array): Array {
  const [ir, iz, inn] = np.split(gi, 3, -1) as [Array, Array, Array];
  return gruStepGates(params, h, ir, iz, inn);
}

/**
 * `gruStep` with the input projection already split into its gates (ir, iz, in, each
 * [..., hidden]): a sequence's projections are split once, outside the loop over time, rather
 * than three slices per step (and three pads per step in the backward pass).
 *
 * @example
 * ```ts
 * const p = featurizers.gruCell({ dimIn: 2, dimHidden: 4 }).init(random.key(0));
 * const [ir, iz, inn] = np.split(featurizers.gruInputProjection(p, np.ones([1, 2])), 3, -1);
 * featurizers.gruStepGates(p, np.zeros([1, 4]), ir, iz, inn); // [1, 4]
 * ```
 */
export function gruStepGates(
  params: GruCellParams,
  h: Array,
  ir: Array,
  iz: Array,
  inn: Array,
): Array {
  const gh = np.add(np.matmul(h, np.transpose(params.weightHh)), params.biasHh);
  const [hr, hz, hn] = np.split(gh, 3, -1) as [Array, Array, Array];
  const r = np.sigmoid(np.add(ir, hr));
  const z = np.sigmoid(np.add(iz, hz));
  const n = np.tanh(np.add(inn, np.mul(r, hn)));
  // (1 − z) n + z h = n + z (h − n)
  return np.add(n, np.mul(z, np.sub(h, n)));
}

/**
 * The input projection of a GRU layer: x W_ihᵀ + b_ih, over the last axis of x.
 *
 * @example
 * ```ts
 * const p = featurizers.gruCell({ dimIn: 2, dimHidden: 4 }).init(random.key(0));
 * featurizers.gruInputProjection(p, np.ones([50, 1, 2])); // [50, 1, 12]: every step in one matmul
 * ```
 */
export function gruInputProjection(params: GruCellParams, x: Array): Array {
  return np.add(np.matmul(x, np.transpose(params.weightIh)), params.biasIh);
}

/**
 * A GRU cell (torch.nn.GRUCell's equations, gate order and weight layout).
 *
 * @example
 * ```ts
 * const cell = featurizers.gruCell({ dimIn: 2, dimHidden: 4 });
 * cell.apply(cell.init(random.key(0)), np.zeros([8, 4]), np.ones([8, 2])); // [8, 4]
 * ```
 */
export function gruCell(options: { dimIn: number; dimHidden: number }): GruCell {
  const dimIn = checkSize("gruCell", "dimIn", options.dimIn);
  const dimHidden = checkSize("gruCell", "dimHidden", options.dimHidden);
  return {
    dimIn,
    dimHidden,
    init(key, initOptions) {
      const [a, b, c, d] = random.splitList(key, 4);
      const bound = 1 / Math.sqrt(dimHidden);
      const h3 = 3 * dimHidden;
      return {
        weightIh: uniform(a!, [h3, dimIn], bound, initOptions),
        weightHh: uniform(b!, [h3, dimHidden], bound, initOptions),
        biasIh: uniform(c!, [h3], bound, initOptions),
        biasHh: uniform(d!, [h3], bound, initOptions),
      };
    },
    apply(params, h, x) {
      checkLastAxis("gruCell", x, dimIn, "dimIn");
      checkLastAxis("gruCell", h, dimHidden, "dimHidden");
      return gruStep(params, h, gruInputProjection(params, x));
    },
  };
}

export { checkSize };
