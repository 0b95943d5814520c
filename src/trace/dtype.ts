/**
 * Element types: the dtype names, their typed arrays, promotion between them (NumPy's rules, with
 * JS numbers weakly typed) and typed-array allocation. Pure data, below everything that computes.
 */
import { fail } from "../errors.js";

/** Element types. `bool` is stored one byte per element, `uint32` holds PRNG bits. */
export type DType = "float32" | "float64" | "int32" | "uint32" | "bool";

export const DTYPES: readonly DType[] = ["float32", "float64", "int32", "uint32", "bool"];

export type TypedArray = Float32Array | Float64Array | Int32Array | Uint32Array | Uint8Array;

export type TypedArrayFor<D extends DType> = D extends "float32"
  ? Float32Array
  : D extends "float64"
    ? Float64Array
    : D extends "int32"
      ? Int32Array
      : D extends "uint32"
        ? Uint32Array
        : Uint8Array;

export function isDType(value: unknown): value is DType {
  return typeof value === "string" && (DTYPES as readonly string[]).includes(value);
}

export function isFloat(dtype: DType): boolean {
  return dtype === "float32" || dtype === "float64";
}

export function isInteger(dtype: DType): boolean {
  return dtype === "int32" || dtype === "uint32";
}

/**
 * Recycled storage: typed arrays whose last reader has finished, handed back by the jit
 * interpreter (interpret.ts `runPlan`, which knows every intermediate's last use and that
 * nothing else holds it). Reusing them spares the allocator, the page faults of fresh memory
 * and the garbage collections that churn of large buffers triggers. Bounded in total size.
 */
const recycled: Record<DType, Map<number, TypedArray[]>> = {
  float32: new Map(),
  float64: new Map(),
  int32: new Map(),
  uint32: new Map(),
  bool: new Map(),
};
let recycledBytes = 0;
const BYTES: Record<DType, number> = { float32: 4, float64: 8, int32: 4, uint32: 4, bool: 1 };
const RECYCLE_LIMIT_BYTES = 64 * 1024 * 1024;
const RECYCLE_PER_SIZE = 8;
/** Smaller buffers are cheap to allocate fresh. */
const RECYCLE_MIN_BYTES = 1024;

/** The recycled storage of exactly this dtype and size, if any (none below the minimum). */
function takeRecycled(dtype: DType, size: number): TypedArray | undefined {
  if (recycledBytes === 0 || size * BYTES[dtype] < RECYCLE_MIN_BYTES) return undefined;
  const a = recycled[dtype].get(size)?.pop();
  if (a) recycledBytes -= a.byteLength;
  return a;
}

function dtypeOfArray(a: TypedArray): DType {
  if (a instanceof Float32Array) return "float32";
  if (a instanceof Float64Array) return "float64";
  if (a instanceof Int32Array) return "int32";
  if (a instanceof Uint32Array) return "uint32";
  return "bool";
}

/**
 * Hands a typed array back for reuse. Only for storage nothing will read again: the caller
 * guarantees that no array, view or user value still refers to it. Views are not taken.
 */
export function recycle(a: TypedArray): void {
  const bytes = a.byteLength;
  if (bytes < RECYCLE_MIN_BYTES || a.byteOffset !== 0 || bytes !== a.buffer.byteLength) return;
  if (recycledBytes + bytes > RECYCLE_LIMIT_BYTES) return;
  const pool = recycled[dtypeOfArray(a)];
  let list = pool.get(a.length);
  if (!list) {
    list = [];
    pool.set(a.length, list);
  }
  if (list.length >= RECYCLE_PER_SIZE) return;
  list.push(a);
  recycledBytes += bytes;
}

/**
 * Allocates a typed array whose contents are unspecified (recycled storage is not cleared): for
 * kernels that write every element.
 */
export function allocateUnfilled(dtype: DType, size: number): TypedArray {
  return takeRecycled(dtype, size) ?? fresh(dtype, size);
}

/** Allocates a zero-filled typed array of the dtype's storage type. */
export function allocate(dtype: DType, size: number): TypedArray {
  return takeRecycled(dtype, size)?.fill(0) ?? fresh(dtype, size);
}

function fresh(dtype: DType, size: number): TypedArray {
  switch (dtype) {
    case "float32":
      return new Float32Array(size);
    case "float64":
      return new Float64Array(size);
    case "int32":
      return new Int32Array(size);
    case "uint32":
      return new Uint32Array(size);
    case "bool":
      return new Uint8Array(size);
  }
}

/** The dtype a typed array stores natively (Uint8Array is read as bool). */
export function dtypeOfTypedArray(data: TypedArray): DType {
  if (data instanceof Float32Array) return "float32";
  if (data instanceof Float64Array) return "float64";
  if (data instanceof Int32Array) return "int32";
  if (data instanceof Uint32Array) return "uint32";
  return "bool";
}

const RANK: Record<DType, number> = { bool: 0, uint32: 1, int32: 2, float32: 3, float64: 4 };

/**
 * Result dtype of a binary operation between two arrays: bool < uint32 < int32 < float32 < float64
 * (a deliberately small lattice; JAX's is larger because it has more types).
 */
export function promoteTypes(a: DType, b: DType): DType {
  return RANK[a] >= RANK[b] ? a : b;
}

/**
 * The dtype a JS number takes when it meets an array of dtype `other`: numbers are weakly typed
 * (as in JAX), so `x.mul(2)` keeps x's dtype; a fractional number meeting an integer array
 * promotes to float32.
 */
export function weakDType(value: number, other: DType): DType {
  if (isFloat(other)) return other;
  if (Number.isInteger(value)) return other === "bool" ? "int32" : other;
  return "float32";
}

/** Converts one JS number to the value the dtype stores (rounding, truncation, wrap). */
export function coerce(value: number, dtype: DType): number {
  switch (dtype) {
    case "float32":
      return Math.fround(value);
    case "float64":
      return value;
    case "int32":
      return value | 0;
    case "uint32":
      return value >>> 0;
    case "bool":
      return value ? 1 : 0;
  }
}

export function checkDType(fn: string, argument: string, value: unknown): DType {
  if (!isDType(value)) fail(fn, argument, `one of ${DTYPES.join(", ")}`, value);
  return value;
}
