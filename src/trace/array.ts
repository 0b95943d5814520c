/**
 * The array type every layer shares: `Array` (concrete arrays and tracers are both Arrays), its
 * abstract value `ShapedArray`, and the method surface (`x.add(y)`, `x.sum()`, ...) that the
 * numpy layer installs at load time, so this module depends on nothing that depends on it. It
 * also tells the pytree utilities that Arrays are leaves.
 */
import { NbiError } from "../errors.js";
import type { DType, TypedArray } from "./dtype.js";
import type { Shape } from "./shape.js";
import { sizeOf } from "./shape.js";
import { setLeafPredicate } from "./tree.js";

/** The abstract value of an array: what tracing and shape rules see. */
export interface ShapedArray {
  /** The size of each axis, outermost first (`[]` for a scalar). */
  readonly shape: Shape;
  /** The element type. */
  readonly dtype: DType;
}

/** Anything an operation accepts where an array is expected. */
export type ArrayLike = Array | number;

/** Axis arguments of reductions: one axis, several, or null/undefined for all. */
export type Axes = number | readonly number[] | null | undefined;

/** Options of reductions (`sum`, `mean`, `max`, `logsumexp`, ...). */
export interface ReduceOptions {
  /** The axis or axes to reduce (all when omitted or null); negative axes count from the end. */
  axis?: Axes;
  /** Keep the reduced axes with size 1, so the result broadcasts against the input. */
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
 *
 * @example
 * ```ts
 * const x = np.array([[1, 2], [3, 4]]);
 * x.mul(2).sum({ axis: 0 }).tolist(); // [8, 12]
 * x.shape; // [2, 2]
 * ```
 */
export abstract class Array implements ShapedArray {
  /** The size of each axis, outermost first (`[]` for a scalar). */
  abstract readonly shape: Shape;
  /** The element type: float32, float64, int32, uint32 or bool. */
  abstract readonly dtype: DType;

  /** The number of axes (0 for a scalar). */
  get ndim(): number {
    return this.shape.length;
  }
  /** The number of elements (the product of the shape). */
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

  /** Elementwise `this + other`, broadcasting: `np.add`. */
  add(other: ArrayLike): Array {
    return m().add(this, other);
  }
  /** Elementwise `this - other`, broadcasting: `np.sub`. */
  sub(other: ArrayLike): Array {
    return m().sub(this, other);
  }
  /** Elementwise `this * other`, broadcasting: `np.mul`. */
  mul(other: ArrayLike): Array {
    return m().mul(this, other);
  }
  /** Elementwise true division (integers give float32): `np.div`. */
  div(other: ArrayLike): Array {
    return m().div(this, other);
  }
  /** Elementwise `this ** other`: `np.pow`. */
  pow(other: ArrayLike): Array {
    return m().pow(this, other);
  }
  /** Elementwise larger of the two: `np.maximum`. */
  maximum(other: ArrayLike): Array {
    return m().maximum(this, other);
  }
  /** Elementwise smaller of the two: `np.minimum`. */
  minimum(other: ArrayLike): Array {
    return m().minimum(this, other);
  }
  /** Elementwise `this == other` as a bool array: `np.equal`. */
  equal(other: ArrayLike): Array {
    return m().equal(this, other);
  }
  /** Elementwise `this != other` as a bool array: `np.notEqual`. */
  notEqual(other: ArrayLike): Array {
    return m().notEqual(this, other);
  }
  /** Elementwise `this < other` as a bool array: `np.less`. */
  less(other: ArrayLike): Array {
    return m().less(this, other);
  }
  /** Elementwise `this <= other` as a bool array: `np.lessEqual`. */
  lessEqual(other: ArrayLike): Array {
    return m().lessEqual(this, other);
  }
  /** Elementwise `this > other` as a bool array: `np.greater`. */
  greater(other: ArrayLike): Array {
    return m().greater(this, other);
  }
  /** Elementwise `this >= other` as a bool array: `np.greaterEqual`. */
  greaterEqual(other: ArrayLike): Array {
    return m().greaterEqual(this, other);
  }
  /** Elementwise negation: `np.neg`. */
  neg(): Array {
    return m().neg(this);
  }
  /** Elementwise e^x: `np.exp`. */
  exp(): Array {
    return m().exp(this);
  }
  /** Elementwise natural logarithm: `np.log`. */
  log(): Array {
    return m().log(this);
  }
  /** Elementwise log(1 + x), accurate near 0: `np.log1p`. */
  log1p(): Array {
    return m().log1p(this);
  }
  /** Elementwise e^x - 1, accurate near 0: `np.expm1`. */
  expm1(): Array {
    return m().expm1(this);
  }
  /** Elementwise sine: `np.sin`. */
  sin(): Array {
    return m().sin(this);
  }
  /** Elementwise cosine: `np.cos`. */
  cos(): Array {
    return m().cos(this);
  }
  /** Elementwise hyperbolic tangent: `np.tanh`. */
  tanh(): Array {
    return m().tanh(this);
  }
  /** Elementwise square root: `np.sqrt`. */
  sqrt(): Array {
    return m().sqrt(this);
  }
  /** Elementwise absolute value: `np.abs`. */
  abs(): Array {
    return m().abs(this);
  }
  /** Elementwise sign (-1, 0 or 1): `np.sign`. */
  sign(): Array {
    return m().sign(this);
  }
  /** Elementwise round toward negative infinity: `np.floor`. */
  floor(): Array {
    return m().floor(this);
  }
  /** Elementwise `x * x`: `np.square`. */
  square(): Array {
    return m().square(this);
  }
  /** Sum over all axes or `options.axis`: `np.sum`. */
  sum(options?: ReduceOptions): Array {
    return m().sum(this, options);
  }
  /** Arithmetic mean over all axes or `options.axis`: `np.mean`. */
  mean(options?: ReduceOptions): Array {
    return m().mean(this, options);
  }
  /** Maximum over all axes or `options.axis`: `np.max`. */
  max(options?: ReduceOptions): Array {
    return m().max(this, options);
  }
  /** Minimum over all axes or `options.axis`: `np.min`. */
  min(options?: ReduceOptions): Array {
    return m().min(this, options);
  }
  /** Index of the maximum (of the flattened array when no axis is given): `np.argmax`. */
  argmax(options?: { axis?: number; keepdims?: boolean }): Array {
    return m().argmax(this, options);
  }
  /** Index of the minimum (of the flattened array when no axis is given): `np.argmin`. */
  argmin(options?: { axis?: number; keepdims?: boolean }): Array {
    return m().argmin(this, options);
  }
  /** Matrix product, batched over leading axes: `np.matmul`. */
  matmul(other: ArrayLike): Array {
    return m().matmul(this, other);
  }
  /** The same elements in a new shape (one entry may be -1): `np.reshape`. */
  reshape(shape: readonly number[]): Array {
    return m().reshape(this, shape);
  }
  /** Permutes the axes (reverses them by default): `np.transpose`. */
  transpose(axes?: readonly number[]): Array {
    return m().transpose(this, axes);
  }
  /** The transpose (reversed axes), as NumPy's `x.T`. */
  get T(): Array {
    return m().transpose(this);
  }
  /** Broadcasts to a larger shape with NumPy's rules: `np.broadcastTo`. */
  broadcastTo(shape: readonly number[]): Array {
    return m().broadcastTo(this, shape);
  }
  /** Casts to another dtype: `np.astype`. */
  astype(dtype: DType): Array {
    return m().astype(this, dtype);
  }
  /** Flattens to one axis: `np.ravel`. */
  ravel(): Array {
    return m().ravel(this);
  }
  /** Removes axes of size 1 (all of them, or those given): `np.squeeze`. */
  squeeze(axis?: Axes): Array {
    return m().squeeze(this, axis);
  }
  /** Inserts an axis of size 1 at `axis`: `np.expandDims`. */
  expandDims(axis: number): Array {
    return m().expandDims(this, axis);
  }
  /** Picks entries by index along an axis (of the flattened array when none): `np.take`. */
  take(indices: ArrayLike | readonly number[], axis?: number): Array {
    return m().take(this, indices, axis);
  }
  /** `x[i]` along an axis (default the first), removing that axis. */
  index(i: number, axis?: number): Array {
    return m().index(this, i, axis);
  }
  /** log(sum(exp(x))) without overflow: `np.logsumexp`. */
  logsumexp(options?: ReduceOptions): Array {
    return m().logsumexp(this, options);
  }
  /** Variance, with `ddof` delta degrees of freedom (default 0): `np.variance`. */
  var(options?: ReduceOptions & { ddof?: number }): Array {
    return m().variance(this, options);
  }
  /** Standard deviation, with `ddof` delta degrees of freedom (default 0): `np.std`. */
  std(options?: ReduceOptions & { ddof?: number }): Array {
    return m().std(this, options);
  }
  /** Product over all axes or `options.axis`: `np.prod`. */
  prod(options?: ReduceOptions): Array {
    return m().prod(this, options);
  }
  /** Whether every element is nonzero (true): `np.all`. */
  all(options?: ReduceOptions): Array {
    return m().all(this, options);
  }
  /** Whether some element is nonzero (true): `np.any`. */
  any(options?: ReduceOptions): Array {
    return m().any(this, options);
  }
  /** Limits values to `[lo, hi]`: `np.clip`. */
  clip(lo: ArrayLike, hi: ArrayLike): Array {
    return m().clip(this, lo, hi);
  }
  /** max(x, 0) elementwise: `np.relu`. */
  relu(): Array {
    return m().relu(this);
  }
  /** 1 / (1 + e^-x) elementwise: `np.sigmoid`. */
  sigmoid(): Array {
    return m().sigmoid(this);
  }
  /** log(1 + e^x) elementwise, without overflow: `np.softplus`. */
  softplus(): Array {
    return m().softplus(this);
  }
  /** NumPy `dot`: a product with scalars, the matrix product otherwise: `np.dot`. */
  dot(other: ArrayLike): Array {
    return m().dot(this, other);
  }
  /** NumPy-style text of the values (shape and dtype for traced values). */
  toString(): string {
    return m().toString(this);
  }
  /** Node's util.inspect and REPLs print arrays like NumPy. */
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString();
  }
}

setLeafPredicate((x) => x instanceof Array);
