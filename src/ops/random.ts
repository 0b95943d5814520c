/**
 * JAX-style PRNG: keys are explicit values (uint32 [2]), split into independent keys, and every
 * sampler is a pure function of its key. There is no global random state anywhere. Bits come from
 * Threefry-2x32 with JAX's classic layout, so the same key gives the same numbers on every
 * backend and in every run.
 */
import { fail } from "../errors.js";
import type { Array, ArrayLike } from "../trace/array.js";
import type { BackendName } from "../trace/backend.js";
import { ConcreteArray } from "../trace/concrete-array.js";
import { bind1 } from "../trace/core.js";
import { type DType, isFloat } from "../trace/dtype.js";
import { checkShape, normalizeAxis } from "../trace/shape.js";
import { randomBits, threefry2x32 } from "./cpu/threefry.js";
import { array } from "./creation.js";
import * as np from "./numpy.js";
import * as ew from "./primitives/elementwise.js";
import { shiftRightLogical } from "./primitives/elementwise.js";
import { argsortP, randomBitsP } from "./primitives/random.js";

/**
 * A key from an integer seed (the seed's high and low 32 bits, as JAX's threefry seed).
 *
 * @example
 * ```ts
 * const k = random.key(42);
 * random.normal(k, [3]); // the same three numbers in every run, on every backend
 * ```
 */
export function key(seed: number, options?: { backend?: BackendName }): Array {
  if (!Number.isSafeInteger(seed)) fail("random.key", "seed", "a safe integer", seed);
  return array(seedWords(seed), options);
}

/** A seed's (hi, lo) 32-bit words: JAX's threefry seed. */
function seedWords(seed: number): Uint32Array {
  return Uint32Array.of(Math.floor(seed / 2 ** 32) >>> 0, seed >>> 0);
}

/** One Threefry-2x32 block of key k at counter (c0, c1). */
function block(k: Uint32Array, c0: number, c1: number): [number, number] {
  const o0 = new Uint32Array(1);
  const o1 = new Uint32Array(1);
  threefry2x32(k[0]!, k[1]!, Uint32Array.of(c0), Uint32Array.of(c1), o0, o1);
  return [o0[0]!, o1[0]!];
}

/** A single concrete CPU key's words, read on the host. */
function keyWords(fn: string, k: Array): Uint32Array {
  checkKey(fn, k);
  if (k.ndim !== 1) fail(fn, "key", "a single key (shape [2])", k);
  if (!(k instanceof ConcreteArray))
    fail(fn, "key", "a concrete key (not a traced value inside jit or vmap)", k);
  if (k.backend.name !== "cpu") {
    fail(fn, "key", 'a key on the CPU backend (random.key(seed, { backend: "cpu" }))', k);
  }
  return k.dataSync() as Uint32Array;
}

/**
 * Key `index` of `split(k, n)`, computed alone in constant time on the host: the same key as
 * `splitList(k, n)[index]`, bit for bit, without generating the other n − 1. For a concrete key
 * on the CPU backend (host-side key derivation, as the inference layer does it).
 *
 * @example
 * ```ts
 * const k = random.key(0);
 * random.splitAt(k, 1000, 999); // = random.splitList(k, 1000)[999]
 * ```
 */
export function splitAt(k: Array, n: number, index: number): Array {
  if (!Number.isInteger(n) || n < 1) fail("random.splitAt", "n", "a positive integer", n);
  if (!Number.isInteger(index) || index < 0 || index >= n)
    fail("random.splitAt", "index", `an integer in [0, ${n})`, index);
  const words = keyWords("random.splitAt", k);
  // split(k, n) draws 2n words: counter pairs (j, j + n) for j < n, the first outputs of all
  // pairs then the second ones; key i is words 2i and 2i + 1 of that sequence.
  const word = (t: number) => (t < n ? block(words, t, t + n)[0] : block(words, t - n, t)[1]);
  return array(Uint32Array.of(word(2 * index), word(2 * index + 1)), { backend: "cpu" });
}

/**
 * A new key from a key and an integer (JAX's `fold_in`): Threefry-2x32 of `data`'s seed words
 * under the key. Keys that must not depend on how many others are derived (round r's key, stage
 * s's key) come from folding in r or s. For a concrete key on the CPU backend; the result is
 * one too.
 *
 * @example
 * ```ts
 * const roundKey = random.foldIn(random.key(0), 3);
 * ```
 */
export function foldIn(k: Array, data: number): Array {
  if (!Number.isSafeInteger(data) || data < 0)
    fail("random.foldIn", "data", "a non-negative safe integer", data);
  const words = keyWords("random.foldIn", k);
  const [hi, lo] = seedWords(data);
  return array(Uint32Array.from(block(words, hi!, lo!)), { backend: "cpu" });
}

/**
 * Host-side draws from a concrete CPU key, for callers that want float64 numbers on the host (the
 * inference layer's priors, splits and weights) whatever backend is the default: the same bits,
 * in the same layout, and the same float64 arithmetic as the array versions on the CPU backend,
 * so each equals its array version bit for bit (tested), with no array built and no backend
 * chosen.
 *
 * @example
 * ```ts
 * const k = random.key(0, { backend: "cpu" });
 * random.hostUniforms(k, 3); // = random.uniform(k, [3], { dtype: "float64" }).dataSync()
 * random.hostNormals(k, 3); // = random.normal(k, [3], { dtype: "float64" }).dataSync()
 * random.hostSplit(k, 4); // = random.splitList(k, 4), as CPU keys
 * ```
 */
export function hostUniforms(k: Array, n: number): Float64Array {
  const b = randomBits(keyWords("random.hostUniforms", k), 2 * hostCount("hostUniforms", n));
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = unit53(b[2 * i]!, b[2 * i + 1]!);
  return out;
}

/** Standard normals in float64 on the host (see `hostUniforms`): Box–Muller as `normal`. */
export function hostNormals(k: Array, n: number): Float64Array {
  const b = randomBits(keyWords("random.hostNormals", k), 4 * hostCount("hostNormals", n));
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const u1 = 1 - unit53(b[4 * i]!, b[4 * i + 1]!);
    const u2 = unit53(b[4 * i + 2]!, b[4 * i + 3]!);
    out[i] = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }
  return out;
}

/** `splitList(k, n)` computed on the host (see `hostUniforms`): n CPU keys. */
export function hostSplit(k: Array, n: number): Array[] {
  if (!Number.isInteger(n) || n < 1) fail("random.hostSplit", "n", "a positive integer", n);
  const w = randomBits(keyWords("random.hostSplit", k), 2 * n);
  return globalThis.Array.from({ length: n }, (_, i) =>
    array(w.slice(2 * i, 2 * i + 2), { backend: "cpu" }),
  );
}

function hostCount(fn: string, n: number): number {
  if (!Number.isInteger(n) || n < 0) fail(`random.${fn}`, "n", "a non-negative integer", n);
  return n;
}

/** A float64 in [0, 1) from two words: 27 + 26 high bits, as `unitUniform`'s float64 branch. */
const unit53 = (w0: number, w1: number): number => ((w0 >>> 5) * 2 ** 26 + (w1 >>> 6)) * 2 ** -53;

function checkKey(fn: string, k: Array): void {
  if (k.dtype !== "uint32" || k.shape[k.ndim - 1] !== 2) {
    fail(fn, "key", "a key from random.key or random.split (uint32, shape [..., 2])", k);
  }
}

function bits(fn: string, k: Array, shape: readonly number[]): Array {
  checkKey(fn, k);
  return bind1(randomBitsP, [k], { shape: checkShape(fn, "shape", shape) });
}

/**
 * `n` new independent keys, shape [n, 2].
 *
 * @example
 * ```ts
 * const keys = random.split(random.key(0), 3); // shape [3, 2]
 * const xs = vmap((k: Array) => random.normal(k, [2]))(keys); // shape [3, 2]
 * ```
 */
export function split(k: Array, n = 2): Array {
  if (!Number.isInteger(n) || n < 1) fail("random.split", "n", "a positive integer", n);
  return np.reshape(bits("random.split", k, [2 * n]), [...k.shape.slice(0, -1), n, 2]);
}

/**
 * Keys [n, 2] as a list of keys, for destructuring: `const [k1, k2] = random.splitList(key)`.
 *
 * @example
 * ```ts
 * const [k1, k2] = random.splitList(random.key(0));
 * const x = random.normal(k1, [100]);
 * const noise = random.uniform(k2, [100]);
 * ```
 */
export function splitList(k: Array, n = 2): Array[] {
  const keys = split(k, n);
  return globalThis.Array.from({ length: n }, (_, i) => np.index(keys, i, keys.ndim - 2));
}

/** Uniform floats in [0, 1) with 24 (float32) or 53 (float64) random bits each. */
function unitUniform(fn: string, k: Array, shape: readonly number[], dtype: DType): Array {
  if (dtype === "float64") {
    const b = bits(fn, k, [...shape, 2]);
    const hi = np.astype(shiftRightLogical(np.index(b, 0, -1), np.astype(5, "uint32")), "float64");
    const lo = np.astype(shiftRightLogical(np.index(b, 1, -1), np.astype(6, "uint32")), "float64");
    return np.mul(np.add(np.mul(hi, 2 ** 26), lo), 2 ** -53);
  }
  const b = bits(fn, k, shape);
  return np.mul(np.astype(shiftRightLogical(b, np.astype(8, "uint32")), "float32"), 2 ** -24);
}

/** Options of `uniform`. */
export interface UniformOptions {
  /** Lower bound (inclusive), default 0; an array broadcasts against `shape`. */
  minval?: ArrayLike;
  /** Upper bound (exclusive), default 1; an array broadcasts against `shape`. */
  maxval?: ArrayLike;
  /** float32 (default) or float64. */
  dtype?: DType;
}

/**
 * Uniform floats in `[minval, maxval)` (default [0, 1)): 24 random bits each in float32, 53 in
 * float64.
 *
 * @example
 * ```ts
 * const k = random.key(0);
 * random.uniform(k, [2, 3]); // shape [2, 3], in [0, 1)
 * random.uniform(k, [5], { minval: -1, maxval: 1, dtype: "float64" });
 * ```
 */
export function uniform(k: Array, shape: readonly number[] = [], options?: UniformOptions): Array {
  const dtype = options?.dtype ?? "float32";
  if (!isFloat(dtype)) fail("random.uniform", "options.dtype", "float32 or float64", dtype);
  const u = unitUniform("random.uniform", k, shape, dtype);
  const lo = options?.minval ?? 0;
  const hi = options?.maxval ?? 1;
  const scaled = np.astype(np.add(np.mul(u, np.sub(hi, lo)), lo), dtype);
  // Rounding can reach maxval (e.g. 1 + (1 - 2^-24) = 2 in float32): keep the interval half-open.
  return np.maximum(np.where(np.greaterEqual(scaled, hi), lo, scaled), lo);
}

/**
 * Standard normal samples (Box–Muller on two independent uniforms).
 *
 * @example
 * ```ts
 * const x = random.normal(random.key(0), [1000]);
 * np.mean(x).item(); // ≈ 0
 * ```
 */
export function normal(
  k: Array,
  shape: readonly number[] = [],
  options?: { dtype?: DType },
): Array {
  const dtype = options?.dtype ?? "float32";
  if (!isFloat(dtype)) fail("random.normal", "options.dtype", "float32 or float64", dtype);
  const u = unitUniform("random.normal", k, [...shape, 2], dtype);
  const u1 = np.sub(1, np.index(u, 0, -1)); // (0, 1]: log is finite
  const u2 = np.index(u, 1, -1);
  return np.mul(np.sqrt(np.mul(-2, np.log(u1))), np.cos(np.mul(2 * Math.PI, u2)));
}

/**
 * Standard Gumbel samples, from uniforms on the open interval (0, 1).
 *
 * @example
 * ```ts
 * random.gumbel(random.key(0), [4]); // shape [4]
 * ```
 */
export function gumbel(
  k: Array,
  shape: readonly number[] = [],
  options?: { dtype?: DType },
): Array {
  const dtype = options?.dtype ?? "float32";
  const u = unitUniform("random.gumbel", k, shape, dtype);
  // u ≤ 1 - 2^-24 (float32) keeps log(u) < 0; the smallest normal float keeps log(u) finite.
  const open = np.maximum(
    u,
    dtype === "float64" ? 2.2250738585072014e-308 : 1.1754943508222875e-38,
  );
  return np.neg(np.log(np.neg(np.log(open))));
}

/**
 * Integers uniform in [minval, maxval).
 *
 * @example
 * ```ts
 * random.randint(random.key(0), [10], 0, 6); // int32 dice rolls in 0..5
 * ```
 */
export function randint(k: Array, shape: readonly number[], minval: number, maxval: number): Array {
  if (!Number.isInteger(minval) || !Number.isInteger(maxval) || maxval <= minval) {
    fail("random.randint", "minval, maxval", "integers with minval < maxval", [minval, maxval]);
  }
  const range = maxval - minval;
  if (range > 2 ** 32 - 1) fail("random.randint", "maxval - minval", "at most 2^32 - 1", range);
  // bits mod range in uint32 (exact integer arithmetic on every backend, float64 not needed; the
  // modulo bias is below range / 2^32), then shifted by minval with int32 wrap-around.
  const bits32 = bits("random.randint", k, shape);
  const r = np.astype(range, "uint32");
  const rem = ew.sub(bits32, ew.mul(ew.div(bits32, r), r));
  return np.add(np.astype(rem, "int32"), np.astype(minval, "int32"));
}

/**
 * Bool samples that are true with probability `p` (a number or an array, broadcast against
 * `shape`; `shape` defaults to p's shape).
 *
 * @example
 * ```ts
 * const k = random.key(0);
 * random.bernoulli(k, 0.3, [100]); // bool, shape [100]
 * random.bernoulli(k, np.array([0, 1])).tolist(); // [0, 1]
 * ```
 */
export function bernoulli(k: Array, p: ArrayLike = 0.5, shape?: readonly number[]): Array {
  const pa = np.asArray(p);
  return np.less(uniform(k, shape ?? pa.shape), pa);
}

/**
 * Samples category indices from unnormalised log-probabilities (Gumbel-max).
 *
 * @example
 * ```ts
 * const logits = np.log(np.array([0.2, 0.5, 0.3]));
 * random.categorical(random.key(0), logits, { shape: [1000] }); // int32 indices in 0..2
 * ```
 */
export function categorical(
  k: Array,
  logits: ArrayLike,
  options?: { axis?: number; shape?: readonly number[] },
): Array {
  const l = np.asArray(logits);
  const axis = normalizeAxis("random.categorical", options?.axis ?? -1, l.ndim);
  const batch = l.shape.filter((_, i) => i !== axis);
  const shape = options?.shape ?? batch;
  const moved = np.moveaxis(l, axis, -1);
  const n = l.shape[axis]!;
  const g = gumbel(k, [...shape, n], { dtype: isFloat(l.dtype) ? l.dtype : "float32" });
  return np.argmax(np.add(moved, g), { axis: -1 });
}

/**
 * A random permutation of `arange(n)`, or of an array's leading axis.
 *
 * @example
 * ```ts
 * random.permutation(random.key(0), 5); // int32, a shuffle of [0, 1, 2, 3, 4]
 * random.permutation(random.key(0), np.eye(3)); // rows shuffled
 * ```
 */
export function permutation(k: Array, x: number | Array): Array {
  const n = typeof x === "number" ? x : (x.shape[0] ?? 0);
  if (typeof x === "number" && (!Number.isInteger(x) || x < 0)) {
    fail("random.permutation", "x", "a non-negative integer or an array", x);
  }
  const order = bind1(argsortP, [bits("random.permutation", k, [n])], { axis: 0 });
  return typeof x === "number" ? order : np.take(x, order, 0);
}

/**
 * Draws from `a` (an array's leading axis, or `arange(a)`), with or without replacement,
 * optionally with probabilities `p`.
 *
 * @example
 * ```ts
 * const k = random.key(0);
 * random.choice(k, 10, { shape: [3], replace: false }); // 3 distinct indices in 0..9
 * random.choice(k, np.array([1, 2, 3]), { shape: [5], p: np.array([0.1, 0.1, 0.8]) });
 * ```
 */
export function choice(
  k: Array,
  a: number | Array,
  options?: { shape?: readonly number[]; replace?: boolean; p?: ArrayLike },
): Array {
  const n = typeof a === "number" ? a : (a.shape[0] ?? 0);
  const shape = options?.shape ?? [];
  const count = shape.reduce((s, d) => s * d, 1);
  const replace = options?.replace ?? true;
  let idx: Array;
  if (replace) {
    idx =
      options?.p === undefined
        ? randint(k, shape, 0, n)
        : categorical(k, np.log(np.asArray(options.p)), { shape });
  } else {
    if (count > n) {
      fail("random.choice", "options.shape", `at most ${n} draws without replacement`, shape);
    }
    const scores =
      options?.p === undefined
        ? gumbel(k, [n])
        : np.add(np.log(np.asArray(options.p)), gumbel(k, [n]));
    const order = bind1(argsortP, [np.neg(scores)], { axis: 0 });
    idx = np.reshape(np.slice(order, [0, count]), shape);
  }
  return typeof a === "number" ? idx : np.take(a, idx, 0);
}
