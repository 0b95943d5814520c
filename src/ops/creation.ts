/** Array creation from JS values: array, zeros, ones, full, arange, linspace, eye, *Like. */
import { fail, NbiError } from "../errors.js";
import type { Array } from "../trace/array.js";
import { type BackendName, defaultBackend, getBackend } from "../trace/backend.js";
import { ConcreteArray, fromHost } from "../trace/concrete-array.js";
import {
  allocate,
  checkDType,
  coerce,
  type DType,
  dtypeOfTypedArray,
  type TypedArray,
} from "../trace/dtype.js";
import { checkShape, type Shape, sizeOf } from "../trace/shape.js";

/** Nested JS arrays of numbers or booleans, a number, a boolean, or a typed array. */
export type NestedValue = number | boolean | readonly NestedValue[] | TypedArray;

/** Options of the creation functions. */
export interface CreateOptions {
  /** The element type; each function says its default (usually float32). */
  dtype?: DType;
  /** Where to create the array; the default backend (see `np.useBackend`) when omitted. */
  backend?: BackendName;
}

function dtypeOption(fn: string, options: CreateOptions | undefined, fallback: DType): DType {
  return options?.dtype === undefined ? fallback : checkDType(fn, "options.dtype", options.dtype);
}

function backendOf(options?: CreateOptions) {
  return options?.backend ? getBackend(options.backend) : defaultBackend();
}

function isTypedArray(v: unknown): v is TypedArray {
  return (
    v instanceof Float32Array ||
    v instanceof Float64Array ||
    v instanceof Int32Array ||
    v instanceof Uint32Array ||
    v instanceof Uint8Array
  );
}

/** Shape of nested JS arrays, checking that they are rectangular. */
function inferShape(value: NestedValue, path = "value"): number[] {
  if (typeof value === "number" || typeof value === "boolean") return [];
  if (isTypedArray(value)) return [value.length];
  if (!globalThis.Array.isArray(value)) {
    fail("np.array", path, "a number, boolean, nested array or typed array", value);
  }
  if (value.length === 0) return [0];
  const inner = inferShape(value[0]!, `${path}[0]`);
  for (let i = 1; i < value.length; i++) {
    const s = inferShape(value[i]!, `${path}[${i}]`);
    if (s.length !== inner.length || s.some((d, k) => d !== inner[k])) {
      throw new NbiError(
        `np.array: ${path} expected a rectangular nested array, got rows of shapes [${inner.join(", ")}] and [${s.join(", ")}] (at index ${i})`,
      );
    }
  }
  return [value.length, ...inner];
}

function hasBoolean(value: NestedValue): boolean {
  if (typeof value === "boolean") return true;
  if (!globalThis.Array.isArray(value)) return false;
  return value.length > 0 && hasBoolean(value[0]!);
}

/**
 * An array from JS data. Numbers default to float32 (as JAX), booleans to bool, typed arrays to
 * their own type; `dtype` overrides. An existing array is returned as is (or cast).
 *
 * @example
 * ```ts
 * np.array([[1, 2], [3, 4]]); // float32, shape [2, 2]
 * np.array([1, 2, 3], { dtype: "int32" });
 * np.array([true, false]).dtype; // "bool"
 * ```
 */
export function array(value: NestedValue | Array, options?: CreateOptions): Array {
  if (
    typeof value === "object" &&
    value !== null &&
    "shape" in value &&
    "dtype" in value &&
    !isTypedArray(value)
  ) {
    const arr = value as Array;
    if (options?.dtype && options.dtype !== arr.dtype) return arr.astype(options.dtype);
    return arr;
  }
  const dtype = options?.dtype
    ? checkDType("np.array", "options.dtype", options.dtype)
    : isTypedArray(value)
      ? dtypeOfTypedArray(value)
      : hasBoolean(value)
        ? "bool"
        : "float32";
  const shape = inferShape(value);
  const data = allocate(dtype, sizeOf(shape));
  if (isTypedArray(value)) {
    if (dtypeOfTypedArray(value) === dtype) data.set(value);
    else for (let i = 0; i < value.length; i++) data[i] = coerce(value[i]!, dtype);
  } else {
    let k = 0;
    const fill = (v: NestedValue) => {
      if (typeof v === "number") data[k++] = coerce(v, dtype);
      else if (typeof v === "boolean") data[k++] = v ? 1 : 0;
      else if (isTypedArray(v)) for (const e of v) data[k++] = coerce(e, dtype);
      else for (const e of v) fill(e);
    };
    fill(value);
  }
  return fromHost(data, shape, dtype, backendOf(options));
}

/**
 * Wraps a typed array with a shape (no copy: the array takes ownership).
 *
 * @example
 * ```ts
 * const x = np.fromTypedArray(new Float64Array([1, 2, 3, 4, 5, 6]), [2, 3]);
 * x.dtype; // "float64"
 * ```
 */
export function fromTypedArray(data: TypedArray, shape: Shape, options?: CreateOptions): Array {
  const s = checkShape("np.fromTypedArray", "shape", shape);
  if (sizeOf(s) !== data.length) {
    fail("np.fromTypedArray", "shape", `${data.length} elements to match data`, s);
  }
  const dtype = dtypeOption("np.fromTypedArray", options, dtypeOfTypedArray(data));
  const own = dtypeOfTypedArray(data) === dtype ? data : allocate(dtype, data.length);
  if (own !== data) for (let i = 0; i < data.length; i++) own[i] = coerce(data[i]!, dtype);
  return fromHost(own, s, dtype, backendOf(options));
}

/**
 * An array of the given shape filled with `value` (float32 for numbers, bool for booleans).
 *
 * @example
 * ```ts
 * np.full([2, 3], 7).tolist(); // [[7, 7, 7], [7, 7, 7]]
 * np.full([4], true).dtype; // "bool"
 * ```
 */
export function full(shape: Shape, value: number | boolean, options?: CreateOptions): Array {
  const s = checkShape("np.full", "shape", shape);
  const dtype = dtypeOption("np.full", options, typeof value === "boolean" ? "bool" : "float32");
  const data = allocate(dtype, sizeOf(s));
  data.fill(coerce(Number(value), dtype));
  return fromHost(data, s, dtype, backendOf(options));
}

/**
 * An array of zeros (float32 unless `options.dtype` says otherwise).
 *
 * @example
 * ```ts
 * np.zeros([2, 3]).shape; // [2, 3]
 * np.zeros([5], { dtype: "int32" });
 * ```
 */
export function zeros(shape: Shape, options?: CreateOptions): Array {
  return full(shape, 0, options);
}

/**
 * An array of ones (float32 unless `options.dtype` says otherwise).
 *
 * @example
 * ```ts
 * np.ones([3]).tolist(); // [1, 1, 1]
 * ```
 */
export function ones(shape: Shape, options?: CreateOptions): Array {
  return full(shape, 1, options);
}

/**
 * Zeros with the shape, dtype and backend of `x` (options override them).
 *
 * @example
 * ```ts
 * const x = np.array([[1, 2], [3, 4]], { dtype: "float64" });
 * np.zerosLike(x).dtype; // "float64"
 * ```
 */
export function zerosLike(x: Array, options?: CreateOptions): Array {
  return full(x.shape, 0, { dtype: x.dtype, ...withBackendOf(x), ...options });
}

/**
 * Ones with the shape, dtype and backend of `x` (options override them).
 *
 * @example
 * ```ts
 * np.onesLike(np.arange(4)).tolist(); // [1, 1, 1, 1] (int32, as arange(4))
 * ```
 */
export function onesLike(x: Array, options?: CreateOptions): Array {
  return full(x.shape, 1, { dtype: x.dtype, ...withBackendOf(x), ...options });
}

function withBackendOf(x: Array): CreateOptions {
  return x instanceof ConcreteArray ? { backend: x.backend.name } : {};
}

/**
 * `arange(stop)` or `arange(start, stop, step)`; integer arguments give int32, else float32.
 *
 * @example
 * ```ts
 * np.arange(4).tolist(); // [0, 1, 2, 3] (int32)
 * np.arange(0, 1, 0.25).tolist(); // [0, 0.25, 0.5, 0.75] (float32)
 * ```
 */
export function arange(start: number, stop?: number, step = 1, options?: CreateOptions): Array {
  if (stop === undefined) {
    stop = start;
    start = 0;
  }
  if (!Number.isFinite(start) || !Number.isFinite(stop) || !Number.isFinite(step) || step === 0) {
    fail("np.arange", "start, stop, step", "finite numbers with step != 0", [start, stop, step]);
  }
  const n = Math.max(0, Math.ceil((stop - start) / step));
  const integral = [start, stop, step].every(Number.isInteger);
  const dtype = dtypeOption("np.arange", options, integral ? "int32" : "float32");
  const data = allocate(dtype, n);
  for (let i = 0; i < n; i++) data[i] = coerce(start + i * step, dtype);
  return fromHost(data, [n], dtype, backendOf(options));
}

/**
 * `num` evenly spaced values from `start` to `stop` (inclusive unless `options.endpoint` is
 * false), float32 by default. The last value is exactly `stop`.
 *
 * @example
 * ```ts
 * np.linspace(0, 1, 5).tolist(); // [0, 0.25, 0.5, 0.75, 1]
 * np.linspace(0, 1, 4, { endpoint: false }).tolist(); // [0, 0.25, 0.5, 0.75]
 * ```
 */
export function linspace(
  start: number,
  stop: number,
  num = 50,
  options?: CreateOptions & { endpoint?: boolean },
): Array {
  if (!Number.isInteger(num) || num < 0) fail("np.linspace", "num", "a non-negative integer", num);
  const endpoint = options?.endpoint ?? true;
  const dtype = dtypeOption("np.linspace", options, "float32");
  const data = allocate(dtype, num);
  const div = endpoint ? num - 1 : num;
  const step = div > 0 ? (stop - start) / div : 0;
  for (let i = 0; i < num; i++) data[i] = coerce(start + i * step, dtype);
  if (endpoint && num > 1) data[num - 1] = coerce(stop, dtype);
  return fromHost(data, [num], dtype, backendOf(options));
}

/**
 * An `n`×`m` matrix (square by default) with ones on the diagonal `options.k` (0: the main
 * diagonal, positive: above it) and zeros elsewhere.
 *
 * @example
 * ```ts
 * np.eye(2).tolist(); // [[1, 0], [0, 1]]
 * np.eye(2, 3, { k: 1 }).tolist(); // [[0, 1, 0], [0, 0, 1]]
 * ```
 */
export function eye(n: number, m?: number, options?: CreateOptions & { k?: number }): Array {
  const cols = m ?? n;
  checkShape("np.eye", "n, m", [n, cols]);
  const dtype = dtypeOption("np.eye", options, "float32");
  const k = options?.k ?? 0;
  const data = allocate(dtype, n * cols);
  for (let i = 0; i < n; i++) {
    const j = i + k;
    if (j >= 0 && j < cols) data[i * cols + j] = 1;
  }
  return fromHost(data, [n, cols], dtype, backendOf(options));
}

/** A scalar constant of a dtype (used for JS numbers meeting arrays). */
export function scalar(value: number, dtype: DType): Array {
  const data = allocate(dtype, 1);
  data[0] = coerce(value, dtype);
  return fromHost(data, [], dtype, defaultBackend());
}

export { ConcreteArray };
