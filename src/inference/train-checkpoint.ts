/**
 * A round's training stopped between epochs (Ctrl-C, SIGTERM, an AbortSignal), kept in the
 * store as `round-RRR/training.safetensors`: the parameters, the optimizer state and the best
 * parameters so far as tensors (`params.<path>`, `optState.<path>`, `best.<path>`), and the next
 * epoch, the best loss and epoch, the epoch records and the training's setup as JSON in the
 * header's `training` metadata. One file, written atomically: a second signal during the write
 * leaves the previous state or the new one. Removed once the round's training finishes.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { NbiError } from "../errors.js";
import { writeFileAtomic } from "../io/atomic.js";
import {
  decodeSafetensors,
  encodeSafetensors,
  type SafetensorsDtype,
  type Tensor,
} from "../io/safetensors.js";
import * as np from "../ops/np.js";
import type { Array } from "../trace/array.js";
import type { DType } from "../trace/dtype.js";
import * as tree from "../trace/tree.js";
import type { EpochRecord, TrainCheckpoint, TrainTemplate } from "./train.js";

const FORMAT = "nbi-training";

const TO_SAFETENSORS: Record<DType, SafetensorsDtype> = {
  float32: "F32",
  float64: "F64",
  int32: "I32",
  uint32: "U32",
  bool: "BOOL",
};

/**
 * Where a round's interrupted training is kept, in a store (a `SimulationStore`; typed by the one
 * method read, since the store imports this module).
 */
export function trainCheckpointPath(
  store: { roundDir(round: number): string },
  round: number,
): string {
  return join(store.roundDir(round), "training.safetensors");
}

function prefixed(prefix: string, path: string): string {
  return path === "" ? prefix : path.startsWith("[") ? `${prefix}${path}` : `${prefix}.${path}`;
}

async function treeTensors(prefix: string, value: unknown, out: Record<string, Tensor>) {
  const names = tree.paths(value);
  const leaves = tree.leaves<Array>(value);
  for (let i = 0; i < leaves.length; i++) {
    const leaf = leaves[i]!;
    out[prefixed(prefix, names[i]!)] = {
      dtype: TO_SAFETENSORS[leaf.dtype],
      shape: [...leaf.shape],
      data: await leaf.data(),
    };
  }
}

function fromTensors<T>(
  prefix: string,
  template: T,
  tensors: Record<string, Tensor>,
  path: string,
): T {
  const names = tree.paths(template);
  const [leaves, def] = tree.flatten<Array>(template);
  const filled = leaves.map((leaf, i) => {
    const name = prefixed(prefix, names[i]!);
    const t = tensors[name];
    const want = `${TO_SAFETENSORS[leaf.dtype]} [${leaf.shape.join(", ")}]`;
    if (
      !t ||
      t.dtype !== TO_SAFETENSORS[leaf.dtype] ||
      t.shape.length !== leaf.shape.length ||
      t.shape.some((s, j) => s !== leaf.shape[j])
    ) {
      throw new NbiError(
        `fit: ${path} expected a tensor ${name} of ${want} for this training, got ${t ? `${t.dtype} [${t.shape.join(", ")}]` : "none"}`,
      );
    }
    return np.reshape(np.array(t.data as Float32Array, { dtype: leaf.dtype }), [...leaf.shape]);
  });
  return tree.unflatten(def, filled) as T;
}

/** JSON keeps no NaN or ±Infinity: such losses travel as strings. */
const encodeNumber = (v: number): number | string => (Number.isFinite(v) ? v : String(v));
const decodeNumber = (v: unknown): number => (typeof v === "string" ? Number(v) : Number(v));

interface TrainingMeta {
  setup: string;
  epoch: number;
  bestLoss: number | string;
  bestEpoch: number;
  epochs: Record<Exclude<keyof EpochRecord, "candidate">, number | string>[];
}

/**
 * Saves an interrupted training (see `TrainOptions.onInterrupt`) to `path`, atomically.
 *
 * @example
 * ```ts
 * onInterrupt: (cp) => saveTrainCheckpoint("store/round-001/training.safetensors", cp)
 * ```
 */
export async function saveTrainCheckpoint(
  path: string,
  checkpoint: TrainCheckpoint,
): Promise<void> {
  const tensors: Record<string, Tensor> = {};
  await treeTensors("params", checkpoint.params, tensors);
  await treeTensors("optState", checkpoint.optState, tensors);
  await treeTensors("best", checkpoint.best.params, tensors);
  const meta: TrainingMeta = {
    setup: checkpoint.setup,
    epoch: checkpoint.epoch,
    bestLoss: encodeNumber(checkpoint.best.loss),
    bestEpoch: checkpoint.best.epoch,
    epochs: checkpoint.epochs.map((e) => ({
      epoch: e.epoch,
      trainLoss: encodeNumber(e.trainLoss),
      valLoss: encodeNumber(e.valLoss),
      lr: encodeNumber(e.lr),
      seconds: encodeNumber(e.seconds),
    })),
  };
  await writeFileAtomic(
    path,
    encodeSafetensors(tensors, { format: FORMAT, training: JSON.stringify(meta) }),
  );
}

/** The metadata of a saved training, or undefined when there is none at `path`. */
async function readTraining(path: string) {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  const { tensors, metadata } = decodeSafetensors(bytes, path);
  if (metadata?.format !== FORMAT || typeof metadata.training !== "string") {
    throw new NbiError(
      `fit: ${path} expected a saved training (format ${FORMAT}), got format ${JSON.stringify(metadata?.format)}`,
    );
  }
  return { tensors, meta: JSON.parse(metadata.training) as TrainingMeta };
}

/**
 * Loads an interrupted training saved by `saveTrainCheckpoint` into arrays shaped like the
 * template's (see `TrainOptions.resume`); undefined when `path` does not exist. The caller
 * compares its `setup` with the template's.
 *
 * @example
 * ```ts
 * resume: (template) => loadTrainCheckpoint("store/round-001/training.safetensors", template)
 * ```
 */
export async function loadTrainCheckpoint(
  path: string,
  template: TrainTemplate,
): Promise<TrainCheckpoint | undefined> {
  const saved = await readTraining(path);
  if (!saved) return undefined;
  const { tensors, meta } = saved;
  return {
    setup: meta.setup,
    epoch: meta.epoch,
    params: fromTensors("params", template.params, tensors, path),
    optState: fromTensors("optState", template.optState, tensors, path),
    best: {
      params: fromTensors("best", template.params, tensors, path),
      loss: decodeNumber(meta.bestLoss),
      epoch: meta.bestEpoch,
    },
    epochs: meta.epochs.map((e) => ({
      epoch: decodeNumber(e.epoch),
      trainLoss: decodeNumber(e.trainLoss),
      valLoss: decodeNumber(e.valLoss),
      lr: decodeNumber(e.lr),
      seconds: decodeNumber(e.seconds),
    })),
  };
}

/** The epoch a saved training resumes at, or undefined when none is saved (or unreadable). */
export async function savedTrainingEpoch(path: string): Promise<number | undefined> {
  try {
    return (await readTraining(path))?.meta.epoch;
  } catch {
    return undefined;
  }
}
