/**
 * nbi's residual 1-D CNN (nbi/nn/resnet.py) and its ResNet-GRU: residual blocks of two
 * same-padded convolutions with ReLU, a 1×1 convolution on the skip path when the channels
 * change, weight normalisation (nbi's default) or batch normalisation, max-pooling by 2 between
 * stages, and channels doubling from dimConvMin up to dimConvMax.
 */
import { fail, NbiError } from "../errors.js";
import * as np from "../ops/numpy.js";
import * as random from "../ops/random.js";
import type { Array } from "../trace/array.js";
import { type GruParams, runGru, withBatchAxis } from "./gru.js";
import {
  type BatchNormParams,
  batchNorm1d,
  type Conv1dParams,
  checkSize,
  conv1d,
  gruCell,
  type LinearParams,
  linear,
  maxPool1d,
  type WeightNormParams,
  weightNorm,
} from "./layers.js";
import type { Featurizer, InitOptions, Module } from "./types.js";

/** The normalisation of the residual blocks: weight normalisation (nbi's default) or batch normalisation. */
export type Norm = "weight_norm" | "batch_norm";

/** The convolution parameters of a block: weight-normalised {g, v, bias} or plain {weight, bias}. */
export type ConvParams = WeightNormParams<Conv1dParams> | Conv1dParams;

/** One residual block. `skip` (a 1×1 convolution) exists when the channels change. */
export interface ResBlockParams {
  /** The first convolution (inChannels → outChannels). */
  readonly conv1: ConvParams;
  /** The second convolution (outChannels → outChannels). */
  readonly conv2: ConvParams;
  /** Batch-norm scales and shifts after each convolution (norm "batch_norm" only). */
  readonly bn1?: BatchNormParams;
  /** As `bn1`, after the second convolution. */
  readonly bn2?: BatchNormParams;
  /** The 1×1 convolution on the skip path, when the channels change. */
  readonly skip?: Conv1dParams;
}

/** Options of `resBlock`. */
export interface ResBlockOptions {
  /** Channels of x. */
  inChannels: number;
  /** Channels of the output. */
  outChannels: number;
  /** Kernel size, odd (default 3). */
  kernel?: number;
  /** "weight_norm" (default, as nbi) or "batch_norm". */
  norm?: Norm;
}

function checkKernel(fn: string, kernel: unknown): number {
  const k = checkSize(fn, "kernel", kernel);
  // nbi pads (k − 1)/2 on each side: an even kernel would shorten the sequence and the residual
  // sum would not line up.
  if (k % 2 === 0) fail(fn, "kernel", "an odd kernel size (same padding)", kernel);
  return k;
}

function checkNorm(fn: string, norm: unknown): Norm {
  if (norm !== "weight_norm" && norm !== "batch_norm") {
    fail(fn, "norm", '"weight_norm" or "batch_norm"', norm);
  }
  return norm;
}

/**
 * nbi's ResBlock: y = relu(conv2(relu(conv1(x)))) + skip(x), with batch norm after each
 * convolution when norm is "batch_norm"; skip is a 1×1 convolution (no weight norm, as in nbi)
 * when the channels change and the identity otherwise.
 *
 * @example
 * ```ts
 * const block = featurizers.resBlock({ inChannels: 1, outChannels: 32 });
 * block.apply(block.init(random.key(0)), np.zeros([4, 1, 64])); // [4, 32, 64]
 * ```
 */
export function resBlock(options: ResBlockOptions): Module<ResBlockParams> {
  const cin = checkSize("resBlock", "inChannels", options.inChannels);
  const cout = checkSize("resBlock", "outChannels", options.outChannels);
  const kernel = checkKernel("resBlock", options.kernel ?? 3);
  const norm = checkNorm("resBlock", options.norm ?? "weight_norm");
  const padding = (kernel - 1) / 2;
  const plain1 = conv1d({ inChannels: cin, outChannels: cout, kernel, padding });
  const plain2 = conv1d({ inChannels: cout, outChannels: cout, kernel, padding });
  const c1 = (norm === "weight_norm" ? weightNorm(plain1) : plain1) as Module<ConvParams>;
  const c2 = (norm === "weight_norm" ? weightNorm(plain2) : plain2) as Module<ConvParams>;
  const bn = batchNorm1d({ channels: cout });
  const skip = cin !== cout ? conv1d({ inChannels: cin, outChannels: cout, kernel: 1 }) : null;
  return {
    init(key, initOptions) {
      const [k1, k2, k3] = random.splitList(key, 3);
      const p: {
        conv1: ConvParams;
        conv2: ConvParams;
        bn1?: BatchNormParams;
        bn2?: BatchNormParams;
        skip?: Conv1dParams;
      } = { conv1: c1.init(k1!, initOptions), conv2: c2.init(k2!, initOptions) };
      if (norm === "batch_norm") {
        p.bn1 = bn.init(k1!, initOptions);
        p.bn2 = bn.init(k2!, initOptions);
      }
      if (skip) p.skip = skip.init(k3!, initOptions);
      return p;
    },
    apply(params, x) {
      let y = c1.apply(params.conv1, x);
      if (params.bn1) y = bn.apply(params.bn1, y);
      y = np.relu(y);
      y = c2.apply(params.conv2, y);
      if (params.bn2) y = bn.apply(params.bn2, y);
      y = np.relu(y);
      return np.add(y, skip ? skip.apply(params.skip!, x) : x);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The trunk

/** Options of `resnetTrunk` (and the ResNet featurizers built on it). */
export interface ResNetTrunkOptions {
  /** Input channels (e.g. 1 for flux, 2 for flux and error, or one per band). */
  dimIn: number;
  /** Stages; the sequence is max-pooled by 2 between stages (depth − 1 times). */
  depth: number;
  /** Residual blocks per stage (default 2). */
  nLayer?: number;
  /** Kernel size, odd (default 3). */
  kernel?: number;
  /** Channels of the first stage (default 32); they double each stage... */
  dimConvMin?: number;
  /** ...up to this many (default 256). */
  dimConvMax?: number;
  /** "weight_norm" (default, as nbi) or "batch_norm". */
  norm?: Norm;
}

/** The parameters of a `resnetTrunk`. */
export interface ResNetTrunkParams {
  /** The residual blocks in order; pooling sits before the first block of every stage but one. */
  readonly blocks: readonly ResBlockParams[];
}

interface BlockSpec {
  inChannels: number;
  outChannels: number;
  poolBefore: boolean;
}

/** Channels of stage i: min(dimConvMax, dimConvMin · 2^i). */
function stageChannels(i: number, min: number, max: number): number {
  return Math.min(max, min * 2 ** i);
}

/** The ResNet trunk module, with the sizes a head needs to attach to it. */
export interface ResNetTrunk extends Module<ResNetTrunkParams> {
  /** Channels of the last stage (the trunk's output channels). */
  readonly channels: number;
  /** Number of stages. */
  readonly depth: number;
  /** Length of the trunk's output for an input of length L. */
  outLength(length: number): number;
}

/**
 * nbi's ResNetBase: x [batch, dimIn, L] → [batch, channels, ⌊L / 2^(depth−1)⌋].
 *
 * @example
 * ```ts
 * const trunk = featurizers.resnetTrunk({ dimIn: 1, depth: 3 });
 * trunk.apply(trunk.init(random.key(0)), np.zeros([4, 1, 64])); // [4, 128, 16]
 * ```
 */
export function resnetTrunk(options: ResNetTrunkOptions, fn = "resnetTrunk"): ResNetTrunk {
  const dimIn = checkSize(fn, "dimIn", options.dimIn);
  const depth = checkSize(fn, "depth", options.depth);
  const nLayer = checkSize(fn, "nLayer", options.nLayer ?? 2);
  const kernel = checkKernel(fn, options.kernel ?? 3);
  const min = checkSize(fn, "dimConvMin", options.dimConvMin ?? 32);
  const max = checkSize(fn, "dimConvMax", options.dimConvMax ?? 256);
  if (max < min) fail(fn, "dimConvMax", `at least dimConvMin (${min})`, max);
  const norm = checkNorm(fn, options.norm ?? "weight_norm");
  const specs: BlockSpec[] = [];
  for (let stage = 0; stage < depth; stage++) {
    const c = stageChannels(stage, min, max);
    const cPrev = stage === 0 ? dimIn : stageChannels(stage - 1, min, max);
    for (let j = 0; j < nLayer; j++) {
      specs.push({
        inChannels: j === 0 ? cPrev : c,
        outChannels: c,
        poolBefore: stage > 0 && j === 0,
      });
    }
  }
  const blocks = specs.map((s) =>
    resBlock({ inChannels: s.inChannels, outChannels: s.outChannels, kernel, norm }),
  );
  const outLength = (length: number) => Math.floor(length / 2 ** (depth - 1));
  return {
    channels: stageChannels(depth - 1, min, max),
    depth,
    outLength,
    init(key, initOptions) {
      const keys = random.splitList(key, blocks.length);
      return { blocks: blocks.map((b, i) => b.init(keys[i]!, initOptions)) };
    },
    apply(params, x) {
      if (x.ndim !== 3 || x.shape[1] !== dimIn) fail(fn, "x", `[batch, ${dimIn}, length]`, x);
      const length = x.shape[2]!;
      if (outLength(length) < 1) {
        throw new NbiError(
          `${fn}: depth ${depth} pools a sequence of length ${length} below length 1 ` +
            `(it needs length ≥ ${2 ** (depth - 1)}); use depth ≤ ${Math.floor(Math.log2(length)) + 1}`,
        );
      }
      let y = x;
      specs.forEach((s, i) => {
        if (s.poolBefore) y = maxPool1d(y, 2);
        y = blocks[i]!.apply(params.blocks[i]!, y);
      });
      return y;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// ResNet and ResNet-GRU featurizers

/** Options of `resnet1d`. */
export interface ResNetOptions extends ResNetTrunkOptions {
  /** Features out (default: the last stage's channels, as nbi's dim_out = -1). */
  dimOut?: number;
}

/** The parameters of a `resnet1d`. */
export interface ResNetParams {
  /** The residual blocks. */
  readonly trunk: ResNetTrunkParams;
  /** The linear layer from the trunk's channels to dimOut. */
  readonly head: LinearParams;
}

/**
 * nbi's ResNet without RNN: trunk, mean over length, then a linear layer to dimOut.
 *
 * @example
 * ```ts
 * const net = featurizers.resnet1d({ dimIn: 2, depth: 3, dimOut: 32 });
 * net.apply(net.init(random.key(0)), np.zeros([4, 2, 64])); // [4, 32]
 * ```
 */
export function resnet1d(options: ResNetOptions): Featurizer<ResNetParams> {
  const trunk = resnetTrunk(options, "resnet1d");
  const dimOut = checkSize("resnet1d", "dimOut", options.dimOut ?? trunk.channels);
  const head = linear({ dimIn: trunk.channels, dimOut });
  return {
    dimOut,
    init(key: Array, initOptions?: InitOptions): ResNetParams {
      const [kt, kh] = random.splitList(key);
      return { trunk: trunk.init(kt!, initOptions), head: head.init(kh!, initOptions) };
    },
    apply(params: ResNetParams, x: Array): Array {
      return withBatchAxis("resnet1d", x, options.dimIn, (xb) =>
        head.apply(params.head, np.mean(trunk.apply(params.trunk, xb), { axis: 2 })),
      );
    },
  };
}

/** Options of `resnetGru`. */
export interface ResNetGruOptions extends ResNetOptions {
  /** GRU layers after the trunk (default 2, as nbi). */
  nRnn?: number;
}

/** The parameters of a `resnetGru`. */
export interface ResNetGruParams {
  /** The residual blocks. */
  readonly trunk: ResNetTrunkParams;
  /** The GRU layers over the pooled sequence. */
  readonly gru: GruParams;
  /** The linear layer from the GRU's last hidden state to dimOut. */
  readonly head: LinearParams;
}

/**
 * nbi's default featurizer: the ResNet trunk, then a GRU (nRnn layers, hidden size = the last
 * stage's channels) over the pooled sequence, its last hidden state through a linear layer.
 *
 * @example
 * ```ts
 * const net = featurizers.resnetGru({ dimIn: 1, depth: 3, dimOut: 32 });
 * net.apply(net.init(random.key(0)), np.zeros([4, 1, 64])); // [4, 32]
 * ```
 */
export function resnetGru(options: ResNetGruOptions): Featurizer<ResNetGruParams> {
  const trunk = resnetTrunk(options, "resnetGru");
  const h = trunk.channels;
  const dimOut = checkSize("resnetGru", "dimOut", options.dimOut ?? h);
  const nRnn = checkSize("resnetGru", "nRnn", options.nRnn ?? 2);
  const cell = gruCell({ dimIn: h, dimHidden: h });
  const head = linear({ dimIn: h, dimOut });
  return {
    dimOut,
    init(key: Array, initOptions?: InitOptions): ResNetGruParams {
      const [kt, kg, kh] = random.splitList(key, 3);
      return {
        trunk: trunk.init(kt!, initOptions),
        gru: { layers: random.splitList(kg!, nRnn).map((k) => cell.init(k, initOptions)) },
        head: head.init(kh!, initOptions),
      };
    },
    apply(params: ResNetGruParams, x: Array): Array {
      return withBatchAxis("resnetGru", x, options.dimIn, (xb) => {
        const y = trunk.apply(params.trunk, xb);
        return head.apply(params.head, runGru(params.gru, np.transpose(y, [2, 0, 1])));
      });
    },
  };
}
