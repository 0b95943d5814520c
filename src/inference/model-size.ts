/**
 * How big a saved model's networks must be, from model.json alone: `NBI.load` checks it against
 * the weights file before building anything, since building a flow allocates its masks and
 * initialising it allocates its parameters (a model.json asking for hidden [6000, 6000] or
 * flowHidden 3000 × 10 blocks is gigabytes). The counts are lower bounds (weights of the
 * unavoidable layers, biases and norms left out), so a genuine pair of files always passes and
 * networks far larger than the file's tensors are refused before any allocation.
 */
import { NbiError } from "../errors.js";
import type { FeaturizerConfig } from "../featurizers/registry.js";
import type { FlowConfig } from "./posterior.js";

/** Largest width (units, channels, dimensions) a saved config may name. */
const MAX_WIDTH = 1 << 20;
/** Largest count (blocks, layers, stages) a saved config may name. */
const MAX_COUNT = 4096;

const COUNT_KEYS = new Set(["numBlocks", "hiddenLayers", "nMog", "depth", "nLayer", "nRnn"]);
const SKIP_KEYS = new Set(["type", "permSeed", "norm", "activation", "length"]);

/** Refuses sizes no saved network could have (non-integers, absurd widths or counts). */
function checkLimits(source: string, what: string, config: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(config)) {
    if (SKIP_KEYS.has(key) || value === undefined) continue;
    const values = Array.isArray(value) ? value : [value];
    const limit = COUNT_KEYS.has(key) ? MAX_COUNT : MAX_WIDTH;
    for (const v of values) {
      if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > limit) {
        throw new NbiError(
          `NBI.load: ${source} ${what}.${key} expected an integer in [0, ${limit}], got ${JSON.stringify(value)}`,
        );
      }
    }
  }
}

/** A lower bound on the flow's parameter count (MAF/NSF: MADE weights per block). */
function flowLowerBound(flow: FlowConfig, nDims: number, contextDim: number): number {
  const h = flow.flowHidden ?? 64;
  const layers = flow.hiddenLayers ?? 2;
  const blocks = flow.numBlocks ?? 5;
  const nMog = flow.nMog ?? 1;
  // Per MADE: d → h, (layers − 1) × h → h, h → d (at least), and the context into the first layer.
  const made = 2 * nDims * h + (layers - 1) * h * h + contextDim * h;
  return blocks * made + (nMog > 1 ? made : 0);
}

/** A lower bound on the featurizer's parameter count, and its output width. */
function featurizerLowerBound(
  config: FeaturizerConfig,
  inputShape: readonly [number, number],
): { count: number; dimOut: number } {
  const [C, L] = inputShape;
  switch (config.type) {
    case "mlp": {
      const widths = [config.dimIn ?? C * L, ...(config.hidden ?? [64, 64]), config.dimOut];
      let count = 0;
      for (let i = 0; i + 1 < widths.length; i++) count += widths[i]! * widths[i + 1]!;
      return { count, dimOut: config.dimOut };
    }
    case "gru": {
      const h = config.dimHidden;
      const layers = config.nRnn ?? config.depth ?? 2;
      const count = 3 * h * (config.dimIn + h) + (layers - 1) * 6 * h * h + h * config.dimOut;
      return { count, dimOut: config.dimOut };
    }
    case "resnet":
    case "resnet-gru": {
      const min = config.dimConvMin ?? 32;
      const max = config.dimConvMax ?? 256;
      const kernel = config.kernel ?? 3;
      const nLayer = config.nLayer ?? 2;
      const depth = config.depth ?? 1;
      let count = 0;
      let previous = config.dimIn;
      let channels = previous;
      for (let stage = 0; stage < depth; stage++) {
        channels = Math.min(max, min * 2 ** stage);
        // Each residual block holds at least one convolution in → out.
        count += kernel * (previous * channels + (nLayer - 1) * channels * channels);
        previous = channels;
      }
      const dimOut = config.dimOut ?? channels;
      if (config.type === "resnet-gru") count += (config.nRnn ?? 2) * 6 * channels * channels;
      return { count: count + channels * dimOut, dimOut };
    }
    default:
      return { count: 0, dimOut: (config as { dimOut?: number }).dimOut ?? 0 };
  }
}

/**
 * Checks model.json's network configs against the weights file's tensors before anything is
 * built: sane sizes, and at least as many parameters in the file as the configs need.
 *
 * @example
 * ```ts
 * checkSavedSizes("models/sine/model.json", flow, featurizer, [1, 50], 3, 12_345);
 * ```
 */
export function checkSavedSizes(
  source: string,
  flow: FlowConfig | undefined,
  featurizer: FeaturizerConfig | undefined,
  inputShape: readonly [number, number],
  nDims: number,
  fileParameters: number,
  weightsPath: string,
): void {
  if (flow) checkLimits(source, "flow", flow as unknown as Record<string, unknown>);
  if (featurizer) {
    checkLimits(source, "featurizer", featurizer as unknown as Record<string, unknown>);
  }
  const feat = featurizer ? featurizerLowerBound(featurizer, inputShape) : { count: 0, dimOut: 0 };
  const needed = feat.count + (flow ? flowLowerBound(flow, nDims, feat.dimOut) : 0);
  if (needed > fileParameters) {
    throw new NbiError(
      `NBI.load: ${source} describes networks of at least ${needed.toLocaleString("en")} parameters ` +
        `(flow ${JSON.stringify(flow ?? "custom")}, featurizer ${JSON.stringify(featurizer ?? "custom")}), ` +
        `but ${weightsPath} holds ${fileParameters.toLocaleString("en")}: the two files do not belong ` +
        "together (refused before building the networks)",
    );
  }
}
