/**
 * The safetensors format (Hugging Face), so trained weights move between this library and
 * PyTorch/JAX/numpy: an 8-byte little-endian header length N, N bytes of JSON header
 * `{"__metadata__": {string: string}, name: {"dtype", "shape", "data_offsets": [begin, end]}}`,
 * then the raw little-endian tensor bytes, offsets relative to the start of that data section.
 *
 * Like the reference writer, tensors are laid out by element size (largest first) then name, and
 * the header is padded with spaces to a multiple of 8, so every tensor starts aligned to its
 * element size. The reader enforces what the reference reader enforces: known dtypes, byte spans
 * that match the shapes, and spans that tile the data section exactly (no gaps, overlaps or
 * trailing bytes).
 */
import { readFile, rename, unlink, writeFile } from "node:fs/promises";
import { describe as describeValue, NbiError } from "../errors.js";

/** The dtypes read and written here, with the typed array that holds each (BOOL: 0/1 bytes). */
export interface SafetensorsDataTypes {
  F64: Float64Array;
  F32: Float32Array;
  U32: Uint32Array;
  I32: Int32Array;
  U8: Uint8Array;
  BOOL: Uint8Array;
}
export type SafetensorsDtype = keyof SafetensorsDataTypes;

export type SafetensorsData = SafetensorsDataTypes[SafetensorsDtype];

/**
 * One tensor: its dtype, shape and row-major data, in the typed array of that dtype (checked when
 * encoding: F32 data must be a Float32Array, and so on).
 */
export interface Tensor {
  dtype: SafetensorsDtype;
  shape: readonly number[];
  data: SafetensorsData;
}
export type SafetensorsTensor = Tensor;

export interface SafetensorsContents {
  tensors: Record<string, SafetensorsTensor>;
  /** The header's `__metadata__` map; empty when the file has none. */
  metadata: Record<string, string>;
}

type TypedArrayClass = {
  new (length: number): SafetensorsData;
  readonly BYTES_PER_ELEMENT: number;
  readonly name: string;
};

// Largest element first, the reference writer's order, so offsets stay aligned.
const DTYPES: Record<SafetensorsDtype, TypedArrayClass> = {
  F64: Float64Array,
  F32: Float32Array,
  U32: Uint32Array,
  I32: Int32Array,
  U8: Uint8Array,
  BOOL: Uint8Array,
};
const DTYPE_ORDER = Object.keys(DTYPES) as SafetensorsDtype[];
const SUPPORTED = DTYPE_ORDER.join(", ");
const METADATA_KEY = "__metadata__";
/** The reference implementation's limit; a larger header means a corrupt length prefix. */
const MAX_HEADER_BYTES = 100_000_000;
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const isDtype = (d: unknown): d is SafetensorsDtype =>
  typeof d === "string" && Object.hasOwn(DTYPES, d);
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !globalThis.Array.isArray(v);
const shapeText = (shape: readonly number[]): string => `[${shape.join(", ")}]`;
/** Sets an own property, so a tensor named "__proto__" is a tensor, not a prototype change. */
const setOwn = (target: object, key: string, value: unknown): void => {
  Object.defineProperty(target, key, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
};

/** Serialises tensors (and optional string metadata) to safetensors bytes. */
export function encodeSafetensors(
  tensors: Record<string, SafetensorsTensor>,
  metadata?: Record<string, string>,
): Uint8Array {
  return encode("encodeSafetensors", tensors, metadata);
}

/**
 * Parses safetensors bytes. Every tensor's data is copied into a fresh typed array, so the result
 * does not alias `bytes`. `source` names the bytes in error messages (readSafetensors passes the
 * path).
 */
export function decodeSafetensors(
  bytes: Uint8Array,
  source = "the safetensors bytes",
): SafetensorsContents {
  return decode("decodeSafetensors", bytes, source);
}

/**
 * Writes a .safetensors file, through a temporary file and a rename so a crash leaves no half file.
 *
 * @example
 * ```ts
 * const w = { dtype: "F32", shape: [2], data: Float32Array.from([1, 2]) } as const;
 * await inference.writeSafetensors("w.safetensors", { w }, { note: "demo" });
 * ```
 */
export async function writeSafetensors(
  path: string,
  tensors: Record<string, SafetensorsTensor>,
  metadata?: Record<string, string>,
): Promise<void> {
  const bytes = encode("writeSafetensors", tensors, metadata);
  const temporary = `${path}.${process.pid}.tmp`;
  try {
    await writeFile(temporary, bytes);
    await rename(temporary, path);
  } catch (error) {
    await unlink(temporary).catch(() => undefined);
    throw new NbiError(
      `writeSafetensors: path expected a writable file, got ${JSON.stringify(path)} (${message(error)})`,
    );
  }
}

/**
 * Reads and validates a .safetensors file (any writer's: PyTorch's, numpy's, this library's).
 *
 * @example
 * ```ts
 * const { tensors, metadata } = await inference.readSafetensors("runs/sine/round-000/checkpoint.safetensors");
 * tensors["scales.thetaMean"]?.data; // Float64Array
 * ```
 */
export async function readSafetensors(path: string): Promise<SafetensorsContents> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw new NbiError(
      `readSafetensors: path expected a readable file, got ${JSON.stringify(path)} (${message(error)})`,
    );
  }
  return decode("readSafetensors", bytes, path);
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Throws the NbiError for one bad argument (typed so TypeScript narrows after a call). */
type Bad = (argument: string, expected: string, got: string) => never;

function encode(
  fn: string,
  tensors: Record<string, SafetensorsTensor>,
  metadata: Record<string, string> | undefined,
): Uint8Array {
  const bad: Bad = (argument, expected, got) => {
    throw new NbiError(`${fn}: ${argument} expected ${expected}, got ${got}`);
  };
  if (!isPlainObject(tensors)) bad("tensors", "an object of named tensors", describeValue(tensors));
  if (metadata !== undefined) {
    if (!isPlainObject(metadata)) bad("metadata", "an object of strings", describeValue(metadata));
    for (const [key, value] of Object.entries(metadata)) {
      if (typeof value !== "string") {
        bad(`metadata[${JSON.stringify(key)}]`, "a string", describeValue(value));
      }
    }
  }
  const entries = Object.entries(tensors).map(([name, tensor]) => {
    const where = `tensors[${JSON.stringify(name)}]`;
    if (name === "" || name === METADATA_KEY) {
      bad("tensors", `names other than "" and "${METADATA_KEY}"`, JSON.stringify(name));
    }
    if (!isPlainObject(tensor)) bad(where, "{dtype, shape, data}", describeValue(tensor));
    const { dtype, shape, data } = tensor;
    if (!isDtype(dtype)) bad(`${where}.dtype`, `one of ${SUPPORTED}`, describeValue(dtype));
    if (!globalThis.Array.isArray(shape) || !shape.every(isCount)) {
      bad(`${where}.shape`, "an array of non-negative integers", describeValue(shape));
    }
    const count = shape.reduce((a, b) => a * b, 1);
    const Class = DTYPES[dtype];
    if (!(data instanceof Class) || data.length !== count) {
      const got =
        ArrayBuffer.isView(data) && "length" in data
          ? `a ${data.constructor.name} of ${data.length} values`
          : describeValue(data);
      bad(
        `${where}.data`,
        `a ${Class.name} of ${count} values for dtype ${dtype} and shape ${shapeText(shape)}`,
        got,
      );
    }
    if (dtype === "BOOL")
      checkBool(data, (i, v) => bad(`${where}.data[${i}]`, "0 or 1", String(v)));
    return { name, dtype, shape, data };
  });
  entries.sort(
    (a, b) =>
      DTYPE_ORDER.indexOf(a.dtype) - DTYPE_ORDER.indexOf(b.dtype) ||
      (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
  );

  const header: Record<string, unknown> = {};
  if (metadata !== undefined && Object.keys(metadata).length > 0) header[METADATA_KEY] = metadata;
  let offset = 0;
  for (const { name, dtype, shape, data } of entries) {
    setOwn(header, name, { dtype, shape, data_offsets: [offset, offset + data.byteLength] });
    offset += data.byteLength;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerLength = json.length + ((8 - (json.length % 8)) % 8);
  const out = new Uint8Array(8 + headerLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLength);
  let at = 8 + headerLength;
  for (const { data } of entries) {
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), at);
    if (!LITTLE_ENDIAN) swapBytes(out.subarray(at, at + data.byteLength), data.BYTES_PER_ELEMENT);
    at += data.byteLength;
  }
  return out;
}

interface TensorEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

function decode(fn: string, bytes: Uint8Array, source: string): SafetensorsContents {
  const bad: Bad = (argument, expected, got) => {
    throw new NbiError(`${fn}: ${argument} of ${source} expected ${expected}, got ${got}`);
  };
  if (!(bytes instanceof Uint8Array)) {
    throw new NbiError(`${fn}: bytes expected a Uint8Array, got ${describeValue(bytes)}`);
  }
  if (bytes.length < 8) {
    bad("the length prefix", "8 bytes (a safetensors file)", `a file of ${bytes.length} bytes`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const declared = view.getBigUint64(0, true);
  if (declared > BigInt(Math.min(bytes.length - 8, MAX_HEADER_BYTES))) {
    bad(
      "the header length",
      `at most ${Math.min(bytes.length - 8, MAX_HEADER_BYTES)} bytes (the file's size after the prefix)`,
      `${declared} (a truncated or corrupt file?)`,
    );
  }
  const headerLength = Number(declared);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + headerLength));
  } catch {
    return bad("the header", "UTF-8 JSON", "invalid UTF-8");
  }
  if (!text.startsWith("{"))
    bad("the header", 'JSON starting with "{"', JSON.stringify(text.slice(0, 20)));
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (error) {
    return bad("the header", "valid JSON", `a parse error (${message(error)})`);
  }
  if (!isPlainObject(header)) bad("the header", "a JSON object", describeValue(header));

  const dataStart = 8 + headerLength;
  const dataLength = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const entries: TensorEntry[] = [];
  for (const [name, info] of Object.entries(header)) {
    if (name === METADATA_KEY) {
      if (!isPlainObject(info)) bad(METADATA_KEY, "an object of strings", describeValue(info));
      for (const [key, value] of Object.entries(info)) {
        if (typeof value !== "string") {
          bad(`${METADATA_KEY}[${JSON.stringify(key)}]`, "a string", describeValue(value));
        }
        setOwn(metadata, key, value);
      }
      continue;
    }
    const where = `tensor ${JSON.stringify(name)}`;
    if (!isPlainObject(info)) bad(where, "{dtype, shape, data_offsets}", describeValue(info));
    const { dtype, shape, data_offsets: offsets } = info;
    if (!isDtype(dtype)) bad(`${where} dtype`, `one of ${SUPPORTED}`, describeValue(dtype));
    if (!globalThis.Array.isArray(shape) || !shape.every(isCount)) {
      bad(`${where} shape`, "an array of non-negative integers", describeValue(shape));
    }
    if (
      !globalThis.Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every(isCount) ||
      offsets[0] > offsets[1]
    ) {
      bad(`${where} data_offsets`, "[begin, end] with 0 ≤ begin ≤ end", describeValue(offsets));
    }
    const [begin, end] = offsets as [number, number];
    if (end > dataLength) {
      bad(
        `${where} data_offsets`,
        `offsets within the data section of ${dataLength} bytes`,
        `[${begin}, ${end}] (a truncated file?)`,
      );
    }
    const size = DTYPES[dtype].BYTES_PER_ELEMENT;
    const count = shape.reduce((a: number, b: number) => a * b, 1);
    if (end - begin !== count * size) {
      bad(
        `${where} data_offsets`,
        `a span of ${count * size} bytes for shape ${shapeText(shape)} of ${dtype}`,
        `[${begin}, ${end}] (${end - begin} bytes)`,
      );
    }
    entries.push({ name, dtype, shape: [...shape], begin, end });
  }

  // The spans must tile the data section: sorted by start, each begins where the last ended.
  const byOffset = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  let previous: TensorEntry | undefined;
  for (const entry of byOffset) {
    if (entry.begin !== covered) {
      const what =
        entry.begin < covered ? `overlapping tensor ${JSON.stringify(previous?.name)}` : "a gap";
      bad(
        `tensor ${JSON.stringify(entry.name)} data_offsets`,
        `to start at byte ${covered} (tensors stored contiguously)`,
        `[${entry.begin}, ${entry.end}], ${what}`,
      );
    }
    covered = entry.end;
    previous = entry;
  }
  if (covered !== dataLength) {
    bad("the data section", `${covered} bytes (the tensors' total)`, `${dataLength} bytes`);
  }

  const tensors: Record<string, SafetensorsTensor> = {};
  for (const { name, dtype, shape, begin, end } of entries) {
    const Class = DTYPES[dtype];
    const data = new Class((end - begin) / Class.BYTES_PER_ELEMENT);
    const raw = new Uint8Array(data.buffer);
    raw.set(bytes.subarray(dataStart + begin, dataStart + end));
    if (!LITTLE_ENDIAN) swapBytes(raw, Class.BYTES_PER_ELEMENT);
    if (dtype === "BOOL") {
      checkBool(data, (i, v) =>
        bad(`tensor ${JSON.stringify(name)} element ${i}`, "0 or 1 (BOOL)", String(v)),
      );
    }
    setOwn(tensors, name, { dtype, shape, data });
  }
  return { tensors, metadata };
}

function checkBool(data: ArrayLike<number>, onBad: (index: number, value: number) => never): void {
  for (let i = 0; i < data.length; i++) if (data[i]! > 1) onBad(i, data[i]!);
}

/** Reverses each `size`-byte element in place (only on big-endian hosts). */
function swapBytes(bytes: Uint8Array, size: number): void {
  if (size === 1) return;
  for (let at = 0; at < bytes.length; at += size) bytes.subarray(at, at + size).reverse();
}
