/**
 * The out-of-distribution statistics on disk: `ood.safetensors` beside a saved model's
 * `model.json` and `weights.safetensors`. Float64 tensors `ood.mean` [F], `ood.whitening` [F, F]
 * (lower triangular: d² = |W(f − μ)|², W = L⁻¹D⁻¹ for the shrunk covariance DLLᵀD) and
 * `ood.reference` [N] (the reference squared distances, ascending); metadata `format: "nbi-ood"`,
 * `version`, `shrinkage`, `reference` ("held-out" or "cross-fitted") and `noise` (how the
 * training simulations were made noisy). Python reads it with `safetensors.numpy.load_file`. A
 * model saved without it (before the alarm existed) still loads; its alarm reports itself
 * unavailable.
 */
import { NbiError } from "../errors.js";
import { writeFileAtomic } from "../io/atomic.js";
import { encodeSafetensors, readSafetensors } from "../io/safetensors.js";
import { type FeatureStatistics, restoreFeatureStatistics } from "./ood.js";

/** The file's name in a saved model's folder. */
export const OOD_FILE = "ood.safetensors";
const FORMAT = "nbi-ood";
const VERSION = 1;

/** Writes the statistics (atomically); `noise` describes the noise the features were made with. */
export async function writeFeatureStatistics(
  path: string,
  stats: FeatureStatistics,
  noise: string,
): Promise<void> {
  const F = stats.dim;
  const bytes = encodeSafetensors(
    {
      "ood.mean": { dtype: "F64", shape: [F], data: stats.mean },
      "ood.whitening": { dtype: "F64", shape: [F, F], data: stats.whitening },
      "ood.reference": { dtype: "F64", shape: [stats.reference.length], data: stats.reference },
    },
    {
      format: FORMAT,
      version: String(VERSION),
      shrinkage: String(stats.shrinkage),
      reference: stats.referenceSource,
      noise,
    },
  );
  await writeFileAtomic(path, bytes);
}

/**
 * Reads the statistics back, checking the format and that their dimension is the featurizer's
 * (`featureDim`): a file from another model is refused by name.
 */
export async function readFeatureStatistics(
  path: string,
  featureDim: number,
): Promise<FeatureStatistics> {
  const { tensors, metadata } = await readSafetensors(path);
  if (metadata.format !== FORMAT || !(Number(metadata.version) <= VERSION)) {
    throw new NbiError(
      `load: ${path} expected format ${FORMAT} version ≤ ${VERSION}, got ${JSON.stringify(metadata.format)} version ${JSON.stringify(metadata.version)}`,
    );
  }
  const get = (name: string) => {
    const t = tensors[name];
    if (!t) throw new NbiError(`load: ${path} expected a tensor named ${name}, found none`);
    return t.data as ArrayLike<number>;
  };
  const stats = restoreFeatureStatistics(
    {
      mean: get("ood.mean"),
      whitening: get("ood.whitening"),
      reference: get("ood.reference"),
      shrinkage: Number(metadata.shrinkage),
      ...(metadata.reference !== undefined ? { referenceSource: metadata.reference } : {}),
    },
    path,
  );
  if (stats.dim !== featureDim) {
    throw new NbiError(
      `load: ${path} expected statistics of ${featureDim} features (the featurizer's dimOut), got ${stats.dim}; the file belongs to another model`,
    );
  }
  return stats;
}
