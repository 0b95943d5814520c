/**
 * Featurizers from nbi-style config objects, so nobody has to design a network for sequential
 * data: `fromConfig({ type: "resnet-gru", dimIn: 1, depth: 3 })`.
 */
import { describe, fail, NbiError } from "../errors.js";
import * as random from "../ops/random.js";
import type { Array } from "../trace/array.js";
import { type GruParams, gru } from "./gru.js";
import { type LinearParams, linear } from "./layers.js";
import { type Activation, mlp } from "./mlp.js";
import { type Norm, resnet1d, resnetGru } from "./resnet.js";
import type { Featurizer, InitOptions } from "./types.js";

/**
 * An nbi featurizer config. Defaults are nbi's: kernel 3, dimConvMin 32, dimConvMax 256, two
 * residual blocks per stage (nLayer), norm "weight_norm", nRnn 2 GRU layers after the ResNet,
 * and dimOut = the last stage's channels for the ResNet types.
 *
 * Choosing `depth` (nbi's rule of thumb): depth ≈ log2(L) − 5 for a sequence of length L, at
 * least 1, so the GRU runs over a few dozen pooled steps (L = 1000 → depth 5; the sine example,
 * L = 50, uses depth 3). The sequence is max-pooled depth − 1 times, so depth may be at most
 * log2(L) + 1. Give `length` to have it checked here (and depth defaulted by the rule of thumb);
 * otherwise the check happens at the first `apply`.
 *
 * - "resnet-gru" (nbi's default): ResNet trunk, GRU (hidden = last stage's channels), linear.
 * - "resnet": ResNet trunk, mean over length, linear.
 * - "gru": stacked GRU of `dimHidden` units (`nRnn` layers, or nbi's spelling `depth`), linear.
 * - "mlp": `hidden` widths with `activation` (sequences are flattened; dimIn = channels·length).
 */
export type FeaturizerConfig = ResNetGruConfig | ResNetConfig | GruConfig | MlpConfig;

interface ResNetCommon {
  /** Input channels (flux; flux and error; one per band). */
  dimIn: number;
  /** Features out (default: the last stage's channels). */
  dimOut?: number;
  /** Stages of the ResNet (see the rule of thumb above). Required unless `length` is given. */
  depth?: number;
  /** Sequence length, optional: checks depth now and defaults it by the rule of thumb. */
  length?: number;
  /** Channels of the first stage (default 32); they double each stage up to dimConvMax. */
  dimConvMin?: number;
  /** Most channels of a stage (default 256). */
  dimConvMax?: number;
  /** Convolution kernel size, odd (default 3). */
  kernel?: number;
  /** Residual blocks per stage (default 2). */
  nLayer?: number;
  /** "weight_norm" (default, as nbi) or "batch_norm". */
  norm?: Norm;
}

/** Config of nbi's default featurizer: ResNet trunk, GRU, linear (see `FeaturizerConfig`). */
export interface ResNetGruConfig extends ResNetCommon {
  /** Selects this featurizer. */
  type: "resnet-gru";
  /** GRU layers (default 2). */
  nRnn?: number;
}

/** Config of a ResNet without GRU: trunk, mean over length, linear. */
export interface ResNetConfig extends ResNetCommon {
  /** Selects this featurizer. */
  type: "resnet";
}

/** Config of a stacked GRU followed by a linear layer. */
export interface GruConfig {
  /** Selects this featurizer. */
  type: "gru";
  /** Input channels. */
  dimIn: number;
  /** Features out. */
  dimOut: number;
  /** Hidden size of every GRU layer. */
  dimHidden: number;
  /** GRU layers (default 2). */
  nRnn?: number;
  /** nbi's name for the GRU's layer count; give this or nRnn. */
  depth?: number;
}

/** Config of a multilayer perceptron (for summary statistics or short vectors). */
export interface MlpConfig {
  /** Selects this featurizer. */
  type: "mlp";
  /** Input size; sequences are flattened, so channels · length. */
  dimIn: number;
  /** Features out. */
  dimOut: number;
  /** Hidden layer widths (default [64, 64]). */
  hidden?: number[];
  /** Nonlinearity between hidden layers (default "relu"). */
  activation?: Activation;
}

const FN = "featurizers.fromConfig";

const resnetKeys = [
  "type",
  "dimIn",
  "dimOut",
  "depth",
  "length",
  "dimConvMin",
  "dimConvMax",
  "kernel",
  "nLayer",
  "norm",
];
const allowedKeys: Record<FeaturizerConfig["type"], readonly string[]> = {
  "resnet-gru": [...resnetKeys, "nRnn"],
  resnet: resnetKeys,
  gru: ["type", "dimIn", "dimOut", "dimHidden", "nRnn", "depth"],
  mlp: ["type", "dimIn", "dimOut", "hidden", "activation"],
};

const camel = (s: string) => s.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

function positiveInt(
  config: Record<string, unknown>,
  key: string,
  required: boolean,
): number | undefined {
  const v = config[key];
  if (v === undefined) {
    if (required) fail(FN, `config.${key}`, "a positive integer (it is required)", v);
    return undefined;
  }
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1) {
    fail(FN, `config.${key}`, "a positive integer", v);
  }
  return v;
}

/**
 * The rule-of-thumb depth for a sequence of length L: round(log2 L − 5), within [1, log2 L + 1].
 *
 * @example
 * ```ts
 * featurizers.defaultDepth(1000); // 5
 * ```
 */
export function defaultDepth(length: number): number {
  const most = Math.floor(Math.log2(length)) + 1;
  return Math.min(most, Math.max(1, Math.round(Math.log2(length) - 5)));
}

/**
 * A featurizer from an nbi-style config. Unknown keys and impossible values are refused with an
 * NbiError naming the key and saying why.
 *
 * @example
 * ```ts
 * const net = featurizers.fromConfig({ type: "resnet-gru", dimIn: 1, length: 200 }); // depth 3 by the rule of thumb
 * net.apply(net.init(random.key(0)), np.zeros([4, 1, 200])); // [4, 128]
 * ```
 */
export function fromConfig(config: FeaturizerConfig): Featurizer {
  if (typeof config !== "object" || config === null || globalThis.Array.isArray(config)) {
    fail(FN, "config", 'an object such as { type: "resnet-gru", dimIn: 1, depth: 3 }', config);
  }
  const c = config as unknown as Record<string, unknown>;
  const type = c.type;
  if (typeof type !== "string" || !(type in allowedKeys)) {
    fail(FN, "config.type", '"resnet-gru", "resnet", "gru" or "mlp"', type);
  }
  const allowed = allowedKeys[type as FeaturizerConfig["type"]];
  for (const key of Object.keys(c)) {
    if (!allowed.includes(key)) {
      const hint = allowed.includes(camel(key)) ? ` (did you mean ${camel(key)}?)` : "";
      throw new NbiError(
        `${FN}: config.${key} is not a key of a "${type}" config${hint}; ` +
          `expected some of ${allowed.join(", ")}`,
      );
    }
  }
  const dimIn = positiveInt(c, "dimIn", true)!;
  switch (type) {
    case "resnet-gru":
    case "resnet": {
      const length = positiveInt(c, "length", false);
      let depth = positiveInt(c, "depth", length === undefined);
      if (depth === undefined) depth = defaultDepth(length!);
      if (length !== undefined && 2 ** (depth - 1) > length) {
        throw new NbiError(
          `${FN}: config.depth ${depth} pools a sequence of length ${length} below length 1 ` +
            `(depth − 1 = ${depth - 1} halvings need length ≥ ${2 ** (depth - 1)}); ` +
            `expected depth ≤ ${Math.floor(Math.log2(length)) + 1}`,
        );
      }
      const dimConvMin = positiveInt(c, "dimConvMin", false) ?? 32;
      const dimConvMax = positiveInt(c, "dimConvMax", false) ?? 256;
      if (dimConvMax < dimConvMin) {
        fail(FN, "config.dimConvMax", `at least config.dimConvMin (${dimConvMin})`, dimConvMax);
      }
      const kernel = positiveInt(c, "kernel", false) ?? 3;
      if (kernel % 2 === 0) {
        fail(FN, "config.kernel", "an odd kernel size (nbi pads (kernel − 1)/2 per side)", kernel);
      }
      const norm = c.norm ?? "weight_norm";
      if (norm !== "weight_norm" && norm !== "batch_norm") {
        fail(FN, "config.norm", '"weight_norm" or "batch_norm"', norm);
      }
      const options = {
        dimIn,
        depth,
        dimOut: positiveInt(c, "dimOut", false),
        dimConvMin,
        dimConvMax,
        kernel,
        nLayer: positiveInt(c, "nLayer", false) ?? 2,
        norm: norm as Norm,
      };
      return type === "resnet"
        ? resnet1d(options)
        : resnetGru({ ...options, nRnn: positiveInt(c, "nRnn", false) ?? 2 });
    }
    case "gru": {
      const dimOut = positiveInt(c, "dimOut", true)!;
      const dimHidden = positiveInt(c, "dimHidden", true)!;
      const nRnn = positiveInt(c, "nRnn", false);
      const depth = positiveInt(c, "depth", false);
      if (nRnn !== undefined && depth !== undefined && nRnn !== depth) {
        throw new NbiError(
          `${FN}: config.depth (${depth}) and config.nRnn (${nRnn}) both give the GRU's layer ` +
            "count and disagree; give one of them",
        );
      }
      const body = gru({ dimIn, dimHidden, nLayers: nRnn ?? depth ?? 2 });
      const head = linear({ dimIn: dimHidden, dimOut });
      return {
        dimOut,
        init(key: Array, initOptions?: InitOptions) {
          const [kb, kh] = splitTwo(key);
          return { gru: body.init(kb, initOptions), head: head.init(kh, initOptions) };
        },
        apply(params: unknown, x: Array) {
          const p = params as { gru: GruParams; head: LinearParams };
          return head.apply(p.head, body.apply(p.gru, x));
        },
      };
    }
    case "mlp": {
      const hidden = c.hidden ?? [64, 64];
      if (!globalThis.Array.isArray(hidden))
        fail(FN, "config.hidden", "an array of widths", hidden);
      hidden.forEach((h, i) => {
        if (typeof h !== "number" || !Number.isInteger(h) || h < 1) {
          fail(FN, `config.hidden[${i}]`, "a positive integer", h);
        }
      });
      return mlp({
        dimIn,
        dimOut: positiveInt(c, "dimOut", true)!,
        hidden: hidden as number[],
        activation: (c.activation ?? "relu") as Activation,
      });
    }
  }
  throw new NbiError(`${FN}: unreachable config type ${describe(type)}`);
}

function splitTwo(key: Array): [Array, Array] {
  const [a, b] = random.splitList(key);
  return [a!, b!];
}

/**
 * Checks a user-written featurizer — any `{ init(key), apply(params, x), dimOut }` — and returns
 * it, so custom networks go wherever a config would.
 *
 * @example
 * ```ts
 * const meanFlux = featurizers.custom({ dimOut: 1, init: () => ({}), apply: (_p, x) => np.mean(x, { axis: -1 }) });
 * meanFlux.apply({}, np.ones([4, 1, 50])); // [4, 1]
 * ```
 */
export function custom<P>(featurizer: Featurizer<P>): Featurizer<P> {
  const f = featurizer as unknown as Record<string, unknown>;
  if (typeof f !== "object" || f === null) {
    fail("featurizers.custom", "featurizer", "an object { init, apply, dimOut }", featurizer);
  }
  if (typeof f.init !== "function") {
    fail("featurizers.custom", "featurizer.init", "a function (key, options?) => params", f.init);
  }
  if (typeof f.apply !== "function") {
    fail("featurizers.custom", "featurizer.apply", "a function (params, x) => features", f.apply);
  }
  if (typeof f.dimOut !== "number" || !Number.isInteger(f.dimOut) || f.dimOut < 1) {
    fail("featurizers.custom", "featurizer.dimOut", "a positive integer", f.dimOut);
  }
  return featurizer;
}

/**
 * A featurizer from a config object or a custom featurizer (checked): what `NBI` does with its
 * `featurizer` option.
 *
 * @example
 * ```ts
 * featurizers.resolve({ type: "mlp", dimIn: 50, dimOut: 16 }).dimOut; // 16
 * ```
 */
export function resolve(spec: FeaturizerConfig | Featurizer): Featurizer {
  if (typeof spec === "object" && spec !== null && "apply" in spec) return custom(spec);
  return fromConfig(spec as FeaturizerConfig);
}
