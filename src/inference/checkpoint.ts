/**
 * Network checkpoints as safetensors files: every parameter leaf named by its pytree path
 * (`flow.blocks[0].layers[1].w`), plus the standardisation scales (`scales.xMean`, ...) in float64.
 * Python reads them with `safetensors.numpy.load_file`.
 */
import { NbiError } from "../errors.js";
import { writeFileAtomic } from "../io/atomic.js";
import { encodeSafetensors, readSafetensors, type Tensor } from "../io/safetensors.js";
import * as np from "../ops/np.js";
import type { Array } from "../trace/array.js";
import * as tree from "../trace/tree.js";
import type { PosteriorParams, Scales } from "./posterior.js";
import type { Checkpoint } from "./snpe.js";

const SCALE_KEYS = ["xMean", "xStd", "thetaMean", "thetaStd"] as const;
/** The support bounds of the flow's unbounded map (absent in checkpoints of flows on θ itself). */
const BOUND_KEYS = ["thetaLower", "thetaUpper"] as const;
/** Present (= 1) when the support's map is the probit (see unbounded.ts). */
const PROBIT_KEY = "scales.probit";
/** The calibrated scale of the flow's base noise (absent: 1; see spread.ts). */
const BASE_SCALE_KEY = "scales.baseScale";

/** The leaves of a parameter tree as named float32 tensors (read back from any backend). */
export async function paramsToTensors(params: PosteriorParams): Promise<Record<string, Tensor>> {
  const names = tree.paths(params);
  const leaves = tree.leaves<Array>(params);
  const out: Record<string, Tensor> = {};
  for (let i = 0; i < leaves.length; i++) {
    const leaf = leaves[i]!;
    const data = await leaf.data();
    out[names[i]!] = {
      dtype: leaf.dtype === "float64" ? "F64" : "F32",
      shape: [...leaf.shape],
      data:
        leaf.dtype === "float64"
          ? (data as Float64Array)
          : Float32Array.from(data as ArrayLike<number>),
    };
  }
  return out;
}

/** Fills a parameter tree shaped like `template` from named tensors, checking names and shapes. */
export function tensorsToParams<T>(
  template: T,
  tensors: Record<string, Tensor>,
  source: string,
): T {
  const names = tree.paths(template);
  const [leaves, def] = tree.flatten<Array>(template);
  const filled = leaves.map((leaf, i) => {
    const name = names[i]!;
    const t = tensors[name];
    if (!t) {
      throw new NbiError(
        `load: ${source} expected a tensor named ${name} (shape [${leaf.shape.join(", ")}]) for this network, ` +
          "found none; was it saved from a network with the same flow and featurizer configs?",
      );
    }
    if (t.shape.length !== leaf.shape.length || t.shape.some((s, j) => s !== leaf.shape[j])) {
      throw new NbiError(
        `load: ${source} tensor ${name} expected shape [${leaf.shape.join(", ")}], got [${t.shape.join(", ")}]`,
      );
    }
    return np.reshape(np.array(t.data as Float32Array, { dtype: leaf.dtype }), [...leaf.shape]);
  });
  return tree.unflatten(def, filled) as T;
}

export function scalesToTensors(scales: Scales): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const k of [...SCALE_KEYS, ...BOUND_KEYS]) {
    const v = scales[k];
    // JSON-free float64: ±Infinity marks an open end of the support.
    if (v) out[`scales.${k}`] = { dtype: "F64", shape: [v.length], data: v };
  }
  // The bounded map as a flag tensor (absent: the logit of checkpoints saved before the probit).
  if (scales.boundedMap === "probit")
    out[PROBIT_KEY] = { dtype: "F64", shape: [1], data: Float64Array.of(1) };
  // A calibrated base scale (absent: 1, as in checkpoints saved before it existed).
  if (scales.baseScale !== undefined && scales.baseScale !== 1)
    out[BASE_SCALE_KEY] = { dtype: "F64", shape: [1], data: Float64Array.of(scales.baseScale) };
  return out;
}

export function tensorsToScales(tensors: Record<string, Tensor>, source: string): Scales {
  const get = (k: string) => {
    const t = tensors[`scales.${k}`];
    if (!t) throw new NbiError(`load: ${source} expected a tensor named scales.${k}, found none`);
    return Float64Array.from(t.data as ArrayLike<number>);
  };
  const bounded = tensors["scales.thetaLower"] && tensors["scales.thetaUpper"];
  const baseScale = tensors[BASE_SCALE_KEY]?.data[0];
  if (baseScale !== undefined && !(Number(baseScale) > 0 && Number.isFinite(Number(baseScale))))
    throw new NbiError(
      `load: ${source} tensor ${BASE_SCALE_KEY} expected a finite positive base scale, got ${baseScale}`,
    );
  return {
    xMean: get("xMean"),
    xStd: get("xStd"),
    thetaMean: get("thetaMean"),
    thetaStd: get("thetaStd"),
    ...(bounded ? { thetaLower: get("thetaLower"), thetaUpper: get("thetaUpper") } : {}),
    ...(bounded && tensors[PROBIT_KEY]?.data[0] === 1 ? { boundedMap: "probit" as const } : {}),
    ...(baseScale !== undefined ? { baseScale: Number(baseScale) } : {}),
  };
}

/**
 * Saves a checkpoint (parameters and scales) as a safetensors file, with optional string
 * metadata in its header: written to a temporary file, flushed to disk and renamed into place.
 *
 * @example
 * ```ts
 * await inference.saveCheckpoint("round-2.safetensors", result.state.current, { round: "2" });
 * ```
 */
export async function saveCheckpoint(
  path: string,
  checkpoint: Checkpoint,
  metadata: Record<string, string> = {},
): Promise<void> {
  const tensors = {
    ...(await paramsToTensors(checkpoint.params)),
    ...scalesToTensors(checkpoint.scales),
  };
  const bytes = encodeSafetensors(tensors, { format: "nbi-checkpoint", ...metadata });
  try {
    await writeFileAtomic(path, bytes);
  } catch (error) {
    throw new NbiError(
      `saveCheckpoint: path expected a writable file, got ${JSON.stringify(path)} (${(error as Error).message})`,
    );
  }
}

/**
 * Loads a checkpoint into a tree shaped like `template`, on the default backend.
 *
 * @example
 * ```ts
 * const template = await inference.initPosterior(net, inference.hostKey(0));
 * const { params, scales } = await inference.loadCheckpoint("round-2.safetensors", template);
 * ```
 */
export async function loadCheckpoint(path: string, template: PosteriorParams): Promise<Checkpoint> {
  const { tensors } = await readSafetensors(path);
  return checkpointFromTensors(template, tensors, path);
}

/** A checkpoint from tensors already read (`source` names them in errors). */
export function checkpointFromTensors(
  template: PosteriorParams,
  tensors: Record<string, Tensor>,
  source: string,
): Checkpoint {
  return {
    params: tensorsToParams(template, tensors, source),
    scales: tensorsToScales(tensors, source),
  };
}
