/**
 * The fit's weighed draws on disk (fit-draws.ts): `draws.safetensors` beside a saved model's
 * `model.json`, so a loaded engine's predict pools them as the fitted one did. Tensors, per
 * weighed round i: `group.i.theta` [n, d], `group.i.log_target` [n] and `group.i.log_weights`
 * [n] (float64); the spots `spots.theta` [k, d] (float64), `spots.x` [k, dataSize] (float32) and
 * `spots.log_target` [k]; metadata `format: "nbi-fit-draws"`, `version`, `groups`. Python reads
 * it with `safetensors.numpy.load_file`. A model saved without it (amortized, no likelihood, or
 * saved before the file existed) loads as before: its predict pools nothing.
 */
import { NbiError } from "../errors.js";
import { writeFileAtomic } from "../io/atomic.js";
import { encodeSafetensors, readSafetensors, type Tensor } from "../io/safetensors.js";
import { checkFitDraws, type FitDraws } from "./fit-draws.js";

/** The file's name in a saved model's folder. */
export const FIT_DRAWS_FILE = "draws.safetensors";
const FORMAT = "nbi-fit-draws";
const VERSION = 1;

/** Writes the fit's weighed draws (atomically). */
export async function writeFitDraws(path: string, draws: FitDraws): Promise<void> {
  const d = draws.nDims;
  const tensors: Record<string, Tensor> = {};
  draws.groups.forEach((g, i) => {
    const n = g.logWeights.length;
    tensors[`group.${i}.theta`] = { dtype: "F64", shape: [n, d], data: g.theta };
    tensors[`group.${i}.log_target`] = { dtype: "F64", shape: [n], data: g.logTarget };
    tensors[`group.${i}.log_weights`] = { dtype: "F64", shape: [n], data: g.logWeights };
  });
  const { spots } = draws;
  const k = spots.logTarget.length;
  tensors["spots.theta"] = { dtype: "F64", shape: [k, d], data: spots.theta };
  tensors["spots.x"] = {
    dtype: "F32",
    shape: [k, k > 0 ? spots.x.length / k : 0],
    data: spots.x,
  };
  tensors["spots.log_target"] = { dtype: "F64", shape: [k], data: spots.logTarget };
  const bytes = encodeSafetensors(tensors, {
    format: FORMAT,
    version: String(VERSION),
    groups: String(draws.groups.length),
  });
  await writeFileAtomic(path, bytes);
}

/**
 * Reads the fit's weighed draws back, checking the format and that θ has `nDims` columns (a
 * file from another model is refused by name).
 */
export async function readFitDraws(path: string, nDims: number): Promise<FitDraws> {
  const { tensors, metadata } = await readSafetensors(path);
  if (metadata.format !== FORMAT || !(Number(metadata.version) <= VERSION)) {
    throw new NbiError(
      `load: ${path} expected format ${FORMAT} version ≤ ${VERSION}, got ${JSON.stringify(metadata.format)} version ${JSON.stringify(metadata.version)}`,
    );
  }
  const get = <T extends Tensor["data"]>(
    name: string,
    dtype: Tensor["dtype"],
  ): Tensor & { data: T } => {
    const t = tensors[name];
    if (!t || t.dtype !== dtype) {
      throw new NbiError(
        `load: ${path} expected a ${dtype} tensor named ${name}, found ${t ? t.dtype : "none"}`,
      );
    }
    return t as Tensor & { data: T };
  };
  const nGroups = Number(metadata.groups);
  if (!Number.isInteger(nGroups) || nGroups < 1) {
    throw new NbiError(
      `load: ${path} expected metadata groups ≥ 1, got ${JSON.stringify(metadata.groups)}`,
    );
  }
  const theta = get<Float64Array>("spots.theta", "F64");
  if (theta.shape[1] !== nDims) {
    throw new NbiError(
      `load: ${path} expected draws of ${nDims} parameters (flow.nDims), got ${theta.shape[1]}; the file belongs to another model`,
    );
  }
  return checkFitDraws(
    {
      nDims,
      groups: Array.from({ length: nGroups }, (_, i) => ({
        theta: get<Float64Array>(`group.${i}.theta`, "F64").data,
        logTarget: get<Float64Array>(`group.${i}.log_target`, "F64").data,
        logWeights: get<Float64Array>(`group.${i}.log_weights`, "F64").data,
      })),
      spots: {
        theta: theta.data,
        x: get<Float32Array>("spots.x", "F32").data,
        logTarget: get<Float64Array>("spots.log_target", "F64").data,
      },
    },
    path,
  );
}
