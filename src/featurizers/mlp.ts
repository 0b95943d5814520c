/** A multilayer perceptron featurizer, for summary statistics or short fixed-length vectors. */
import { fail } from "../errors.js";
import * as np from "../ops/numpy.js";
import * as random from "../ops/random.js";
import type { Array } from "../trace/array.js";
import { checkSize, type LinearParams, linear } from "./layers.js";
import type { Featurizer, InitOptions } from "./types.js";

/** The nonlinearity between an MLP's hidden layers. */
export type Activation = "relu" | "tanh" | "sigmoid" | "softplus";

const activations: Record<Activation, (x: Array) => Array> = {
  relu: np.relu,
  tanh: np.tanh,
  sigmoid: np.sigmoid,
  softplus: np.softplus,
};

/** Options of `mlp`. */
export interface MlpOptions {
  /** Size of the input (channels · length for sequences). */
  dimIn: number;
  /** Hidden layer widths (default [64, 64]); [] is one linear layer. */
  hidden?: readonly number[];
  /** Length of the feature vector. */
  dimOut: number;
  /** Between hidden layers (default "relu"); the output layer is linear. */
  activation?: Activation;
}

/** The parameters of an `mlp`. */
export interface MlpParams {
  /** The linear layers, input first. */
  readonly layers: readonly LinearParams[];
}

/**
 * x [..., dimIn] → [..., dimOut]. A batch of sequences [batch, channels, length] is flattened to
 * [batch, channels · length] first (then dimIn must be channels · length).
 *
 * @example
 * ```ts
 * const net = featurizers.mlp({ dimIn: 50, dimOut: 16 });
 * net.apply(net.init(random.key(0)), np.zeros([8, 50])); // [8, 16]
 * ```
 */
export function mlp(options: MlpOptions): Featurizer<MlpParams> {
  const dimIn = checkSize("mlp", "dimIn", options.dimIn);
  const dimOut = checkSize("mlp", "dimOut", options.dimOut);
  const hidden = options.hidden ?? [64, 64];
  if (!globalThis.Array.isArray(hidden)) fail("mlp", "hidden", "an array of widths", hidden);
  for (const [i, h] of hidden.entries()) checkSize("mlp", `hidden[${i}]`, h);
  const activationName = options.activation ?? "relu";
  const act = activations[activationName];
  if (act === undefined) {
    fail(
      "mlp",
      "activation",
      Object.keys(activations)
        .map((a) => `"${a}"`)
        .join(" | "),
      activationName,
    );
  }
  const widths = [dimIn, ...hidden, dimOut];
  const layers = widths.slice(1).map((w, i) => linear({ dimIn: widths[i]!, dimOut: w }));
  return {
    dimOut,
    init(key: Array, initOptions?: InitOptions): MlpParams {
      const keys = random.splitList(key, layers.length);
      return { layers: layers.map((l, i) => l.init(keys[i]!, initOptions)) };
    },
    apply(params: MlpParams, x: Array): Array {
      let y = x.ndim === 3 ? np.reshape(x, [x.shape[0]!, x.shape[1]! * x.shape[2]!]) : x;
      if (y.ndim < 1 || y.shape[y.ndim - 1] !== dimIn) {
        fail(
          "mlp",
          "x",
          `[..., ${dimIn}] or [batch, channels, length] with channels·length = ${dimIn}`,
          x,
        );
      }
      layers.forEach((l, i) => {
        y = l.apply(params.layers[i]!, y);
        if (i < layers.length - 1) y = act(y);
      });
      return y;
    },
  };
}
