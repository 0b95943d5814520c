import { NbiError } from "../errors.js";
import { setLeafPredicate } from "../transforms/tree.js";
import type { DType, TypedArray } from "./dtype.js";
import type { Shape } from "./shape.js";
import { sizeOf } from "./shape.js";

/** The abstract value of an array: what tracing and shape rules see. */
export interface ShapedArray {
  readonly shape: Shape;
  readonly dtype: DType;
}

/** Anything an operation accepts where an array is expected. */
export type ArrayLike = Array | number;

/** Axis arguments of reductions: one axis, several, or null/undefined for all. */
export type Axes = number | readonly number[] | null | undefined;

export interface ReduceOptions {
  axis?: Axes;
  keepdims?: boolean;
}

/**
 * The method surface of arrays. Implemented by the numpy layer and installed at load time, so
 * this module (which every other imports) depends on nothing that depends on it.
 */
export interface ArrayMethods {
  add(a: ArrayLike, b: ArrayLike): Array;
  sub(a: ArrayLike, b: ArrayLike): Array;
  mul(a: ArrayLike, b: ArrayLike): Array;
  div(a: ArrayLike, b: ArrayLike): Array;
  pow(a: ArrayLike, b: ArrayLike): Array;
  maximum(a: ArrayLike, b: ArrayLike): Array;
  minimum(a: ArrayLike, b: ArrayLike): Array;
  equal(a: ArrayLike, b: ArrayLike): Array;
  notEqual(a: ArrayLike, b: ArrayLike): Array;
  less(a: ArrayLike, b: ArrayLike): Array;
  lessEqual(a: ArrayLike, b: ArrayLike): Array;
  greater(a: ArrayLike, b: ArrayLike): Array;
  greaterEqual(a: ArrayLike, b: ArrayLike): Array;
  neg(a: ArrayLike): Array;
  exp(a: ArrayLike): Array;
  log(a: ArrayLike): Array;
  log1p(a: ArrayLike): Array;
  expm1(a: ArrayLike): Array;
  sin(a: ArrayLike): Array;
  cos(a: ArrayLike): Array;
  tanh(a: ArrayLike): Array;
  sqrt(a: ArrayLike): Array;
  abs(a: ArrayLike): Array;
  sign(a: ArrayLike): Array;
  floor(a: ArrayLike): Array;
  square(a: ArrayLike): Array;
  sum(a: ArrayLike, options?: ReduceOptions): Array;
  mean(a: ArrayLike, options?: ReduceOptions): Array;
  max(a: ArrayLike, options?: ReduceOptions): Array;
  min(a: ArrayLike, options?: ReduceOptions): Array;
  argmax(a: ArrayLike, options?: { axis?: number; keepdims?: boolean }): Array;
  argmin(a: ArrayLike, options?: { axis?: number; keepdims?: boolean }): Array;
  matmul(a: ArrayLike, b: ArrayLike): Array;
  reshape(a: ArrayLike, shape: readonly number[]): Array;
  transpose(a: ArrayLike, axes?: readonly number[]): Array;
  broadcastTo(a: ArrayLike, shape: readonly number[]): Array;
  astype(a: ArrayLike, dtype: DType): Array;
  ravel(a: ArrayLike): Array;
  squeeze(a: ArrayLike, axis?: Axes): Array;
  expandDims(a: ArrayLike, axis: number): Array;
  take(a: ArrayLike, indices: ArrayLike | readonly number[], axis?: number): Array;
  index(a: ArrayLike, i: number, axis?: number): Array;
  logsumexp(a: ArrayLike, options?: ReduceOptions): Array;
  variance(a: ArrayLike, options?: ReduceOptions & { ddof?: number }): Array;
  std(a: ArrayLike, options?: ReduceOptions & { ddof?: number }): Array;
  prod(a: ArrayLike, options?: ReduceOptions): Array;
  all(a: ArrayLike, options?: ReduceOptions): Array;
  any(a: ArrayLike, options?: ReduceOptions): Array;
  clip(a: ArrayLike, lo: ArrayLike, hi: ArrayLike): Array;
  relu(a: ArrayLike): Array;
  sigmoid(a: ArrayLike): Array;
  softplus(a: ArrayLike): Array;
  dot(a: ArrayLike, b: ArrayLike): Array;
  toString(a: Array): string;
}

let methods: ArrayMethods | null = null;

export function installArrayMethods(m: ArrayMethods): void {
  methods = m;
}

function m(): ArrayMethods {
  if (methods === null) throw new NbiError("array methods used before the numpy layer loaded");
  return methods;
}

/**
 * An immutable n-dimensional array. Concrete arrays hold data on a backend; tracers stand for
 * arrays inside transforms (grad, vmap, jit). Both have the same methods, so user code is written
 * once. Arrays are never disposed by users: the garbage collector (and, on WebGPU, a
 * FinalizationRegistry) reclaims them.
 */
export abstract class Array implements ShapedArray {
  abstract readonly shape: Shape;
  abstract readonly dtype: DType;

  get ndim(): number {
    return this.shape.length;
  }
  get size(): number {
    return sizeOf(this.shape);
  }

  /** The values as a flat typed array (a copy), on every backend. */
  abstract data(): Promise<TypedArray>;
  /** The values synchronously: CPU arrays only; other backends say to use `await x.data()`. */
  abstract dataSync(): TypedArray;

  /** Values as nested JS arrays (CPU; use `await x.data()` elsewhere). */
  tolist(): unknown {
    const flat = globalThis.Array.from(this.dataSync());
    const build = (axis: number, offset: number): unknown => {
      if (axis === this.shape.length) return flat[offset];
      const stride = sizeOf(this.shape.slice(axis + 1));
      return globalThis.Array.from({ length: this.shape[axis]! }, (_, i) =>
        build(axis + 1, offset + i * stride),
      );
    };
    return build(0, 0);
  }

  /** The single value of a size-1 array as a JS number. */
  item(): number {
    if (this.size !== 1) {
      throw new NbiError(
        `item: expected an array of size 1, got an array of shape [${this.shape.join(", ")}]`,
      );
    }
    return this.dataSync()[0]!;
  }

  add(other: ArrayLike): Array {
    return m().add(this, other);
  }
  sub(other: ArrayLike): Array {
    return m().sub(this, other);
  }
  mul(other: ArrayLike): Array {
    return m().mul(this, other);
  }
  div(other: ArrayLike): Array {
    return m().div(this, other);
  }
  pow(other: ArrayLike): Array {
    return m().pow(this, other);
  }
  maximum(other: ArrayLike): Array {
    return m().maximum(this, other);
  }
  minimum(other: ArrayLike): Array {
    return m().minimum(this, other);
  }
  equal(other: ArrayLike): Array {
    return m().equal(this, other);
  }
  notEqual(other: ArrayLike): Array {
    return m().notEqual(this, other);
  }
  less(other: ArrayLike): Array {
    return m().less(this, other);
  }
  lessEqual(other: ArrayLike): Array {
    return m().lessEqual(this, other);
  }
  greater(other: ArrayLike): Array {
    return m().greater(this, other);
  }
  greaterEqual(other: ArrayLike): Array {
    return m().greaterEqual(this, other);
  }
  neg(): Array {
    return m().neg(this);
  }
  exp(): Array {
    return m().exp(this);
  }
  log(): Array {
    return m().log(this);
  }
  log1p(): Array {
    return m().log1p(this);
  }
  expm1(): Array {
    return m().expm1(this);
  }
  sin(): Array {
    return m().sin(this);
  }
  cos(): Array {
    return m().cos(this);
  }
  tanh(): Array {
    return m().tanh(this);
  }
  sqrt(): Array {
    return m().sqrt(this);
  }
  abs(): Array {
    return m().abs(this);
  }
  sign(): Array {
    return m().sign(this);
  }
  floor(): Array {
    return m().floor(this);
  }
  square(): Array {
    return m().square(this);
  }
  sum(options?: ReduceOptions): Array {
    return m().sum(this, options);
  }
  mean(options?: ReduceOptions): Array {
    return m().mean(this, options);
  }
  max(options?: ReduceOptions): Array {
    return m().max(this, options);
  }
  min(options?: ReduceOptions): Array {
    return m().min(this, options);
  }
  argmax(options?: { axis?: number; keepdims?: boolean }): Array {
    return m().argmax(this, options);
  }
  argmin(options?: { axis?: number; keepdims?: boolean }): Array {
    return m().argmin(this, options);
  }
  matmul(other: ArrayLike): Array {
    return m().matmul(this, other);
  }
  reshape(shape: readonly number[]): Array {
    return m().reshape(this, shape);
  }
  transpose(axes?: readonly number[]): Array {
    return m().transpose(this, axes);
  }
  /** The transpose (reversed axes), as NumPy's `x.T`. */
  get T(): Array {
    return m().transpose(this);
  }
  broadcastTo(shape: readonly number[]): Array {
    return m().broadcastTo(this, shape);
  }
  astype(dtype: DType): Array {
    return m().astype(this, dtype);
  }
  ravel(): Array {
    return m().ravel(this);
  }
  squeeze(axis?: Axes): Array {
    return m().squeeze(this, axis);
  }
  expandDims(axis: number): Array {
    return m().expandDims(this, axis);
  }
  take(indices: ArrayLike | readonly number[], axis?: number): Array {
    return m().take(this, indices, axis);
  }
  /** `x[i]` along an axis (default the first), removing that axis. */
  index(i: number, axis?: number): Array {
    return m().index(this, i, axis);
  }
  logsumexp(options?: ReduceOptions): Array {
    return m().logsumexp(this, options);
  }
  var(options?: ReduceOptions & { ddof?: number }): Array {
    return m().variance(this, options);
  }
  std(options?: ReduceOptions & { ddof?: number }): Array {
    return m().std(this, options);
  }
  prod(options?: ReduceOptions): Array {
    return m().prod(this, options);
  }
  all(options?: ReduceOptions): Array {
    return m().all(this, options);
  }
  any(options?: ReduceOptions): Array {
    return m().any(this, options);
  }
  clip(lo: ArrayLike, hi: ArrayLike): Array {
    return m().clip(this, lo, hi);
  }
  relu(): Array {
    return m().relu(this);
  }
  sigmoid(): Array {
    return m().sigmoid(this);
  }
  softplus(): Array {
    return m().softplus(this);
  }
  dot(other: ArrayLike): Array {
    return m().dot(this, other);
  }
  toString(): string {
    return m().toString(this);
  }
  /** Node's util.inspect and REPLs print arrays like NumPy. */
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString();
  }
}

setLeafPredicate((x) => x instanceof Array);
