/**
 * A stacked GRU over sequences, built on the `scan` primitive, with PyTorch's equations, gate
 * order and weight layout (so torch.nn.GRU weights can be loaded: `weight_ih_l{k}` → layers[k]
 * .weightIh, and so on).
 */
import { fail } from "../errors.js";
import { zeros } from "../ops/creation.js";
import * as np from "../ops/numpy.js";
import * as random from "../ops/random.js";
import type { Array } from "../trace/array.js";
import { scan } from "../transforms/api.js";
import {
  checkSize,
  type GruCellParams,
  gruCell,
  gruInputProjection,
  gruStepGates,
} from "./layers.js";
import type { Featurizer, InitOptions } from "./types.js";

/** Parameters of a stacked GRU: one cell per layer, bottom first. */
export interface GruParams {
  /** One GRU cell's parameters per layer, bottom (input side) first. */
  readonly layers: readonly GruCellParams[];
}

/**
 * Runs a stacked GRU over xs [length, batch, dimIn] from zero initial states and returns the
 * last hidden state of the top layer, [batch, hidden] (torch's `h_n[-1]`).
 *
 * @example
 * ```ts
 * const net = featurizers.gru({ dimIn: 2, dimHidden: 16 });
 * featurizers.runGru(net.init(random.key(0)), np.zeros([50, 8, 2])); // [8, 16]
 * ```
 */
export function runGru(params: GruParams, xs: Array): Array {
  let seq = xs;
  let last: Array | null = null;
  params.layers.forEach((layer, k) => {
    const top = k === params.layers.length - 1;
    const hidden = layer.weightHh.shape[1]!;
    const gi = gruInputProjection(layer, seq);
    const h0 = zeros([seq.shape[1]!, hidden], { dtype: gi.dtype });
    // The input gates split once for the whole sequence, not per step.
    const gates = np.split(gi, 3, -1) as [Array, Array, Array];
    const [h, ys] = scan(
      (hPrev: Array, [ir, iz, inn]: [Array, Array, Array]): [Array, Array | null] => {
        const hNext = gruStepGates(layer, hPrev, ir, iz, inn);
        // The top layer's outputs are not needed, only its last state.
        return [hNext, top ? null : hNext];
      },
      h0,
      gates,
    );
    if (!top) seq = ys as Array;
    last = h;
  });
  return last!;
}

/** Options of `gru`. */
export interface GruOptions {
  /** Input channels. */
  dimIn: number;
  /** Hidden size of every layer. */
  dimHidden: number;
  /** Stacked layers (default 2). */
  nLayers?: number;
}

/**
 * GRU featurizer: x [batch, dimIn, length] (or [dimIn, length]) → the last hidden state of the
 * top layer, [batch, dimHidden]. The sequence runs along the last axis, as in nbi (which permutes
 * N C L → L N C before torch.nn.GRU).
 *
 * @example
 * ```ts
 * const net = featurizers.gru({ dimIn: 1, dimHidden: 32 });
 * net.apply(net.init(random.key(0)), np.zeros([8, 1, 100])); // [8, 32]
 * ```
 */
export function gru(options: GruOptions): Featurizer<GruParams> {
  const dimIn = checkSize("gru", "dimIn", options.dimIn);
  const dimHidden = checkSize("gru", "dimHidden", options.dimHidden);
  const nLayers = checkSize("gru", "nLayers", options.nLayers ?? 2);
  return {
    dimOut: dimHidden,
    init(key: Array, initOptions?: InitOptions): GruParams {
      const keys = random.splitList(key, nLayers);
      return {
        layers: keys.map((k, i) =>
          gruCell({ dimIn: i === 0 ? dimIn : dimHidden, dimHidden }).init(k, initOptions),
        ),
      };
    },
    apply(params: GruParams, x: Array): Array {
      return withBatchAxis("gru", x, dimIn, (xb) => runGru(params, np.transpose(xb, [2, 0, 1])));
    },
  };
}

/**
 * Calls f on x [batch, channels, length]; one example [channels, length] gets a batch axis of
 * 1 that is removed from the result (so `vmap(apply)` over examples works).
 */
export function withBatchAxis(
  fn: string,
  x: Array,
  channels: number,
  f: (xb: Array) => Array,
): Array {
  if ((x.ndim !== 3 && x.ndim !== 2) || x.shape[x.ndim - 2] !== channels) {
    fail(fn, "x", `[batch, ${channels}, length] or [${channels}, length] (dimIn = ${channels})`, x);
  }
  if (x.ndim === 3) return f(x);
  const y = f(np.reshape(x, [1, ...x.shape]));
  return np.reshape(y, y.shape.slice(1));
}
