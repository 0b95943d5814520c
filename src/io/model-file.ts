/**
 * The model folder: a file format of its own, made of two files side by side.
 *
 * - `model.json`, the manifest: a JSON object whose first two fields are `format` (a name such as
 *   "nbi-model") and `version` (an integer from 1), followed by whatever the format records
 *   (configs, labels, history, ...), written with two-space indents and a final newline.
 * - `weights.safetensors`: the named tensors, with `{ format: <name> }` (and any extra strings)
 *   as the header's metadata, so Python's `safetensors.numpy.load_file` opens it.
 *
 * Both files are written atomically and durably (`writeFileAtomic`: a temporary file, fsync,
 * rename), the tensors first, so a crash leaves each file either whole-old or whole-new. Reading
 * checks the manifest's format name and version before anything else; every error names the path,
 * what was expected and what was found. The folder may hold other files beside these two (the
 * engine keeps `ood.safetensors` there); they are no part of this format.
 */
import { mkdir, readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { describe, NbiError } from "../errors.js";
import { writeFileAtomic } from "./atomic.js";
import { decodeSafetensors, encodeSafetensors, type Tensor } from "./safetensors.js";

/** The manifest's file name in a model folder. */
export const MODEL_MANIFEST_FILE = "model.json";
/** The tensors' file name in a model folder. */
export const MODEL_TENSORS_FILE = "weights.safetensors";

/** A model folder's format: its name, and the newest version this code writes and reads. */
export interface ModelFileFormat {
  /** The `format` field of the manifest (and of the tensors' metadata), e.g. "nbi-model". */
  readonly name: string;
  /** The version written; reading accepts versions 1 to this. */
  readonly version: number;
}

/** What `readModelFolder` returns. */
export interface ModelFolder<M extends object = Record<string, unknown>> {
  /** The absolute path of the folder. */
  readonly folder: string;
  /** The manifest's path (errors about its fields should name it). */
  readonly manifestPath: string;
  /** The tensors file's path. */
  readonly tensorsPath: string;
  /** The version the folder was written with (1 to the format's version). */
  readonly version: number;
  /**
   * The whole manifest as parsed, `format` and `version` included. Only those two are checked
   * here: the fields the format records are for the caller to check.
   */
  readonly manifest: M & { readonly format: string; readonly version: number };
  /** The named tensors. */
  readonly tensors: Record<string, Tensor>;
  /** The tensors' header metadata (strings). */
  readonly metadata: Record<string, string>;
}

/** What `writeModelFolder` writes. */
export interface ModelFolderContents {
  /** The manifest's fields besides `format` and `version` (which the format gives). */
  readonly manifest: Readonly<Record<string, unknown>>;
  /** The named tensors. */
  readonly tensors: Readonly<Record<string, Tensor>>;
  /** Extra strings for the tensors' header metadata (`format` is always the format's name). */
  readonly metadata?: Readonly<Record<string, string>>;
}

const errorMessage = (e: unknown) => (e instanceof Error ? e.message : String(e));
const isMissing = (e: unknown) => (e as { code?: unknown } | null)?.code === "ENOENT";

function checkFormat(fn: string, format: ModelFileFormat): void {
  if (typeof format?.name !== "string" || format.name === "") {
    throw new NbiError(
      `${fn}: format.name expected a non-empty string, got ${describe(format?.name)}`,
    );
  }
  if (!Number.isInteger(format.version) || format.version < 1) {
    throw new NbiError(
      `${fn}: format.version expected an integer ≥ 1, got ${describe(format.version)}`,
    );
  }
}

/**
 * Writes a model folder (created if needed): the tensors, then the manifest
 * `{ format, version, ...manifest }`, each atomically. `fn` names the caller in errors.
 *
 * @example
 * ```ts
 * const w = { dtype: "F32", shape: [2], data: Float32Array.of(1, 2) } as const;
 * await writeModelFolder("models/demo", { name: "demo-model", version: 1 }, {
 *   manifest: { labels: ["a", "b"] },
 *   tensors: { w },
 * }); // models/demo/model.json and models/demo/weights.safetensors
 * ```
 */
export async function writeModelFolder(
  dir: string,
  format: ModelFileFormat,
  contents: ModelFolderContents,
  fn = "writeModelFolder",
): Promise<void> {
  checkFormat(fn, format);
  const folder = resolve(dir);
  // The format's own fields first, whatever the manifest holds: a reader checks those.
  const { format: _format, version: _version, ...fields } = contents.manifest;
  const manifest = { format: format.name, version: format.version, ...fields };
  const text = `${JSON.stringify(manifest, null, 2)}\n`;
  const bytes = encodeSafetensors(
    { ...contents.tensors },
    { ...contents.metadata, format: format.name },
  );
  let path = folder;
  try {
    await mkdir(folder, { recursive: true });
    path = join(folder, MODEL_TENSORS_FILE);
    await writeFileAtomic(path, bytes);
    path = join(folder, MODEL_MANIFEST_FILE);
    await writeFileAtomic(path, text);
  } catch (error) {
    throw new NbiError(
      `${fn}: ${path} expected a writable ${path === folder ? "folder" : "file"}, got ${errorMessage(error)}`,
    );
  }
}

/**
 * Reads only a model folder's manifest, checking its format name and version (1 to
 * `format.version`). The fields besides those two are returned unchecked.
 *
 * @example
 * ```ts
 * const { manifest } = await readModelManifest("models/demo", { name: "demo-model", version: 1 });
 * ```
 */
export async function readModelManifest<M extends object = Record<string, unknown>>(
  dir: string,
  format: ModelFileFormat,
  fn = "readModelManifest",
): Promise<Pick<ModelFolder<M>, "folder" | "manifestPath" | "version" | "manifest">> {
  checkFormat(fn, format);
  const folder = resolve(dir);
  const manifestPath = join(folder, MODEL_MANIFEST_FILE);
  const expected = `format ${JSON.stringify(format.name)} version ≤ ${format.version}`;
  let text: string;
  try {
    text = await readFile(manifestPath, "utf8");
  } catch (error) {
    if (isMissing(error)) {
      throw new NbiError(
        `${fn}: ${folder} expected a saved model (${MODEL_MANIFEST_FILE} and ${MODEL_TENSORS_FILE}, ${expected}), found no ${MODEL_MANIFEST_FILE}`,
      );
    }
    throw new NbiError(
      `${fn}: ${manifestPath} expected a readable file, got ${errorMessage(error)}`,
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new NbiError(
      `${fn}: ${manifestPath} expected JSON (${expected}), got a parse error (${errorMessage(error)})`,
    );
  }
  if (typeof value !== "object" || value === null || globalThis.Array.isArray(value)) {
    throw new NbiError(
      `${fn}: ${manifestPath} expected a JSON object (${expected}), got ${describe(value)}`,
    );
  }
  const found = value as { format?: unknown; version?: unknown };
  const { version } = found;
  if (
    found.format !== format.name ||
    typeof version !== "number" ||
    !Number.isInteger(version) ||
    version < 1 ||
    version > format.version
  ) {
    const newer =
      found.format === format.name && typeof version === "number" && version > format.version
        ? ` (written by a newer version of this library: upgrade it to read the folder)`
        : "";
    throw new NbiError(
      `${fn}: ${manifestPath} expected ${expected}, got format ${describe(found.format)} version ${describe(version)}${newer}`,
    );
  }
  return {
    folder,
    manifestPath,
    version,
    manifest: value as ModelFolder<M>["manifest"],
  };
}

/**
 * Reads a model folder: the manifest (format and version checked first), then the tensors.
 * `fn` names the caller in errors (NBI.load passes its own name).
 *
 * @example
 * ```ts
 * const { manifest, tensors } = await readModelFolder("models/demo", { name: "demo-model", version: 1 });
 * tensors.w?.data; // Float32Array [1, 2]
 * ```
 */
export async function readModelFolder<M extends object = Record<string, unknown>>(
  dir: string,
  format: ModelFileFormat,
  fn = "readModelFolder",
): Promise<ModelFolder<M>> {
  const head = await readModelManifest<M>(dir, format, fn);
  const tensorsPath = join(head.folder, MODEL_TENSORS_FILE);
  let bytes: Uint8Array;
  try {
    bytes = await readFile(tensorsPath);
  } catch (error) {
    if (isMissing(error)) {
      throw new NbiError(
        `${fn}: ${head.folder} expected ${MODEL_TENSORS_FILE} beside ${MODEL_MANIFEST_FILE} (${JSON.stringify(format.name)}), found none`,
      );
    }
    throw new NbiError(
      `${fn}: ${tensorsPath} expected a readable file, got ${errorMessage(error)}`,
    );
  }
  const { tensors, metadata } = decodeSafetensors(bytes, tensorsPath);
  return { ...head, tensorsPath, tensors, metadata };
}
