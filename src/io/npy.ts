/**
 * NPY files (numpy's own array format, version 1.0), so stored simulations open in Python with a
 * plain `numpy.load`. Only what the simulation store needs: little-endian float32, float64, int32
 * and uint8 (numpy's bool reads as uint8), C order. Readers also accept versions 2.0 and 3.0, which
 * differ only in the width of the header length.
 *
 * Layout: the magic "\x93NUMPY", two version bytes, the header length (uint16 LE), a Python dict
 * literal `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }` padded with spaces and
 * ended by "\n" so that the data starts at a multiple of 64 bytes (as numpy writes it), then the
 * raw data.
 */
import { readFile, writeFile } from "node:fs/promises";
import { describe, NbiError } from "../errors.js";

/** The typed arrays an NPY file can hold here. */
export type NpyData = Float32Array | Float64Array | Int32Array | Uint8Array;

/** An array read from or written to an NPY file: flat data in C order and its shape. */
export interface NpyArray<T extends NpyData = NpyData> {
  readonly data: T;
  readonly shape: readonly number[];
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"
const ALIGN = 64;

type Ctor = { new (buffer: ArrayBuffer): NpyData; readonly BYTES_PER_ELEMENT: number };

const READ_DTYPES: Record<string, Ctor> = {
  "<f4": Float32Array,
  "<f8": Float64Array,
  "<i4": Int32Array,
  "|u1": Uint8Array,
  "<u1": Uint8Array,
  "|b1": Uint8Array,
};

function descrOf(data: NpyData): string {
  if (data instanceof Float32Array) return "<f4";
  if (data instanceof Float64Array) return "<f8";
  if (data instanceof Int32Array) return "<i4";
  return "|u1";
}

function checkShape(fn: string, shape: readonly number[], length: number): void {
  if (!Array.isArray(shape) || shape.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new NbiError(
      `${fn}: shape expected an array of non-negative integers, got ${describe(shape)}`,
    );
  }
  const size = shape.reduce((a, b) => a * b, 1);
  if (size !== length) {
    throw new NbiError(
      `${fn}: data expected ${size} elements for shape [${shape.join(", ")}], got ${length}`,
    );
  }
}

/** The bytes of an NPY v1.0 file holding `array` (little-endian, C order). */
export function encodeNpy(array: NpyArray): Uint8Array {
  const { data, shape } = array;
  if (
    !(
      data instanceof Float32Array ||
      data instanceof Float64Array ||
      data instanceof Int32Array ||
      data instanceof Uint8Array
    )
  ) {
    throw new NbiError(
      `encodeNpy: data expected a Float32Array, Float64Array, Int32Array or Uint8Array, got ${describe(data)}`,
    );
  }
  checkShape("encodeNpy", shape, data.length);
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
  const dict = `{'descr': '${descrOf(data)}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  // As numpy: spare spaces so the first dimension can grow in place, then pad with spaces and a
  // final newline so the data starts on a 64-byte boundary (numpy pads a full 64 when already
  // aligned, which keeps files byte-identical to numpy's).
  const growth = shape.length > 0 ? Math.max(0, 21 - String(shape[0]).length) : 0;
  const text = dict + " ".repeat(growth);
  const padding = ALIGN - ((MAGIC.length + 4 + text.length + 1) % ALIGN);
  const header = `${text}${" ".repeat(padding)}\n`;
  const headerLength = header.length;
  if (headerLength > 0xffff) {
    throw new NbiError(`encodeNpy: shape expected fewer dimensions, got ${shape.length}`);
  }
  const start = MAGIC.length + 4 + headerLength;
  const out = new Uint8Array(start + data.byteLength);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  out[8] = headerLength & 0xff;
  out[9] = headerLength >> 8;
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i);
  // Typed arrays are in the platform's byte order; every platform Node supports is little-endian.
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), start);
  return out;
}

/**
 * The array held by the bytes of an NPY file. `source` (a file name) is only used in error
 * messages. The data is copied, so the result never aliases `bytes`.
 */
export function decodeNpy(bytes: Uint8Array, source = "the data"): NpyArray {
  return decode(bytes, "decodeNpy", source);
}

function decode(bytes: Uint8Array, fn: string, source: string): NpyArray {
  const bad = (what: string): never => {
    throw new NbiError(`${fn}: ${source} ${what}`);
  };
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) {
    bad("is not an NPY file (expected the magic bytes \\x93NUMPY at the start)");
  }
  const major = bytes[6]!;
  let headerStart: number;
  let headerLength: number;
  if (major === 1) {
    headerStart = 10;
    headerLength = bytes[8]! | (bytes[9]! << 8);
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) bad("is truncated inside its header");
    headerStart = 12;
    headerLength = new DataView(bytes.buffer, bytes.byteOffset + 8, 4).getUint32(0, true);
  } else {
    return bad(`has NPY format version ${major}.${bytes[7]}, expected 1.0, 2.0 or 3.0`);
  }
  if (headerStart + headerLength > bytes.length) bad("is truncated inside its header");
  const header = new TextDecoder().decode(bytes.subarray(headerStart, headerStart + headerLength));
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    return bad(`has an unreadable header ${JSON.stringify(header.trim())}`);
  }
  const ctor = READ_DTYPES[descr];
  if (ctor === undefined) {
    return bad(
      `has dtype '${descr}', expected one of '<f4', '<f8', '<i4', '|u1', '|b1' (little-endian)`,
    );
  }
  if (fortran === "True") {
    bad("is in Fortran order, expected C order (save np.ascontiguousarray(a) instead)");
  }
  const shape = shapeText
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => Number(s.replace(/L$/, "")));
  if (shape.some((d) => !Number.isInteger(d) || d < 0))
    bad(`has an unreadable shape (${shapeText})`);
  const size = shape.reduce((a, b) => a * b, 1);
  const start = headerStart + headerLength;
  const byteLength = size * ctor.BYTES_PER_ELEMENT;
  if (start + byteLength > bytes.length) {
    bad(
      `is truncated: shape [${shape.join(", ")}] needs ${byteLength} data bytes, found ${bytes.length - start}`,
    );
  }
  // Copy into a fresh buffer: the data need not be aligned to its element size in `bytes` (and
  // Buffer#slice would share memory rather than copy).
  const copy = new Uint8Array(byteLength);
  copy.set(bytes.subarray(start, start + byteLength));
  const data = new ctor(copy.buffer);
  return { data, shape };
}

/**
 * Writes `array` to `path` as an NPY v1.0 file (not atomically; the store renames into place).
 *
 * @example
 * ```ts
 * await inference.writeNpy("theta.npy", { data: Float64Array.from([1, 2, 3, 4]), shape: [2, 2] }); // np.load in Python
 * ```
 */
export async function writeNpy(path: string, array: NpyArray): Promise<void> {
  await writeFile(path, encodeNpy(array));
}

/**
 * Reads the NPY file at `path`; errors name the file.
 *
 * @example
 * ```ts
 * await inference.writeNpy("theta.npy", { data: Float64Array.from([1, 2, 3, 4]), shape: [2, 2] });
 * const { data, shape } = await inference.readNpy("theta.npy"); // Float64Array [1, 2, 3, 4], [2, 2]
 * ```
 */
export async function readNpy(path: string): Promise<NpyArray> {
  return decode(await readFile(path), "readNpy", path);
}
