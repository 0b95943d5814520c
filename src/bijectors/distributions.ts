/**
 * Distributions with `logProb`, `sample(key, shape)` and (where finite) `support`: `normal`,
 * `uniform` (scalar events, any batch shape), `independent` (sums batch axes into the event),
 * `mixtureOfGaussians` (vector events, diagonal components) and `transformed(base, bijector)`.
 * `sample(key, shape)` returns `[...shape, ...batchShape, ...eventShape]`; `logProb(x)` returns
 * x's shape with the event axes removed.
 */
import { fail } from "../errors.js";
import * as np from "../ops/np.js";
import * as random from "../ops/random.js";
import type { Array, ArrayLike } from "../trace/array.js";
import { ConcreteArray } from "../trace/concrete-array.js";
import type { DType } from "../trace/dtype.js";
import { type Bijector, checkBijector } from "./types.js";

/**
 * A probability distribution over arrays (the TFP model): a batch of independent distributions,
 * each over events of `eventShape`, with a log-density and a sampler.
 */
export interface Distribution {
  /** A short description, for error messages. */
  readonly name: string;
  /** Shape of the independent distributions stacked in one value (e.g. `[d]` for `normal` with `[d]` parameters). */
  readonly batchShape: readonly number[];
  /** Shape of one draw; `logProb` sums over these axes. */
  readonly eventShape: readonly number[];
  /** dtype of samples and log-densities. */
  readonly dtype: DType;
  /** Bounds of the support where finite (elementwise, broadcast against the event). */
  readonly support?: {
    /** Lower bound. */
    readonly lo: Array;
    /** Upper bound. */
    readonly hi: Array;
  };
  /** log p(x): x `[..., ...batchShape, ...eventShape]` → `[..., ...batchShape]`. */
  logProb(x: Array, context?: Array): Array;
  /** Draws `[...shape, ...batchShape, ...eventShape]`. */
  sample(key: Array, shape?: readonly number[], context?: Array): Array;
  /** A sample and its log-density in one pass (what importance sampling needs). */
  sampleAndLogProb(key: Array, shape?: readonly number[], context?: Array): [Array, Array];
}

type FloatDType = "float32" | "float64";

function floatArray(fn: string, name: string, v: ArrayLike, dtype?: FloatDType): Array {
  const a = np.asArray(v);
  const want: FloatDType = dtype ?? (a.dtype === "float64" ? "float64" : "float32");
  if (a.dtype !== "float32" && a.dtype !== "float64" && typeof v !== "number") {
    fail(fn, name, "a float array or number", v);
  }
  return a.dtype === want ? a : np.astype(a, want);
}

function checkShape(fn: string, shape: unknown): readonly number[] {
  if (
    !globalThis.Array.isArray(shape) ||
    shape.some((d) => !Number.isInteger(d) || (d as number) < 0)
  ) {
    fail(fn, "shape", "a list of non-negative integers", shape);
  }
  return shape as number[];
}

function withSampleAndLogProb(d: Omit<Distribution, "sampleAndLogProb">): Distribution {
  return {
    ...d,
    sampleAndLogProb(key, shape = [], context) {
      const x = d.sample(key, shape, context);
      return [x, d.logProb(x, context)];
    },
  };
}

const LOG_2PI = Math.log(2 * Math.PI);

/**
 * The normal distribution N(loc, scale²), elementwise (scalar events).
 *
 * @example
 * ```ts
 * const d = distributions.normal(0, 1);
 * d.logProb(np.array([0])); // [−0.919]
 * d.sample(random.key(0), [1000]).shape; // [1000]
 * ```
 */
export function normal(
  loc: ArrayLike = 0,
  scaleValue: ArrayLike = 1,
  options?: { dtype?: FloatDType },
): Distribution {
  const dtype = options?.dtype;
  const mu = floatArray("normal", "loc", loc, dtype);
  const sigma = floatArray("normal", "scale", scaleValue, dtype ?? (mu.dtype as FloatDType));
  const [m, s] = np.broadcastArrays(mu, sigma) as [Array, Array];
  return withSampleAndLogProb({
    name: "normal",
    batchShape: m.shape,
    eventShape: [],
    dtype: m.dtype,
    logProb(x) {
      const z = np.div(np.sub(x, m), s);
      return np.sub(np.mul(-0.5, np.square(z)), np.add(np.log(s), 0.5 * LOG_2PI));
    },
    sample(key, shape = []) {
      const sh = [...checkShape("normal.sample", shape), ...m.shape];
      return np.add(m, np.mul(s, random.normal(key, sh, { dtype: m.dtype })));
    },
  });
}

/**
 * The uniform distribution on [lo, hi), elementwise; log-density −∞ outside.
 *
 * @example
 * ```ts
 * distributions.uniform(0, 2).logProb(np.array([1, 3])); // [log 0.5, −∞]
 * ```
 */
export function uniform(
  lo: ArrayLike = 0,
  hi: ArrayLike = 1,
  options?: { dtype?: FloatDType },
): Distribution {
  const a0 = floatArray("uniform", "lo", lo, options?.dtype);
  const b0 = floatArray("uniform", "hi", hi, options?.dtype ?? (a0.dtype as FloatDType));
  const [a, b] = np.broadcastArrays(a0, b0) as [Array, Array];
  // The check reads values on the host: from numbers directly, from CPU arrays synchronously.
  // WebGPU arrays cannot be read synchronously, so bounds given as WebGPU arrays are trusted.
  const hostReadable = [a, b].every((t) => t instanceof ConcreteArray && t.backend.name === "cpu");
  const bad =
    typeof lo === "number" && typeof hi === "number"
      ? !(hi > lo)
      : hostReadable && Boolean(np.any(np.lessEqual(b, a)).item());
  if (bad) fail("uniform", "hi", "values greater than lo", hi);
  return withSampleAndLogProb({
    name: "uniform",
    batchShape: a.shape,
    eventShape: [],
    dtype: a.dtype,
    support: { lo: a, hi: b },
    logProb(x) {
      const inside = np.logicalAnd(np.greaterEqual(x, a), np.less(x, b));
      return np.where(inside, np.neg(np.log(np.sub(b, a))), -Infinity);
    },
    sample(key, shape = []) {
      const sh = [...checkShape("uniform.sample", shape), ...a.shape];
      return random.uniform(key, sh, { minval: a, maxval: b, dtype: a.dtype });
    },
  });
}

/**
 * Reinterprets the last `n` batch axes of `base` as event axes: their log-densities add.
 *
 * @example
 * ```ts
 * const d = distributions.independent(distributions.normal(np.zeros([3]), 1));
 * d.eventShape; // [3]
 * d.logProb(np.zeros([5, 3])); // [5]: one joint log-density per row
 * ```
 */
export function independent(base: Distribution, n = 1): Distribution {
  if (!Number.isInteger(n) || n < 0 || n > base.batchShape.length) {
    fail("independent", "n", `an integer in [0, ${base.batchShape.length}]`, n);
  }
  const cut = base.batchShape.length - n;
  const axes = (x: Array) => {
    const end = x.ndim - base.eventShape.length;
    return globalThis.Array.from({ length: n }, (_, i) => end - n + i);
  };
  return withSampleAndLogProb({
    name: `independent(${base.name})`,
    batchShape: base.batchShape.slice(0, cut),
    eventShape: [...base.batchShape.slice(cut), ...base.eventShape],
    dtype: base.dtype,
    ...(base.support ? { support: base.support } : {}),
    logProb(x, c) {
      const lp = base.logProb(x, c);
      return n === 0 ? lp : np.sum(lp, { axis: axes(x).map((i) => i) });
    },
    sample: (key, shape, c) => base.sample(key, shape, c),
  });
}

/**
 * A mixture of K Gaussians with diagonal covariances over vector events [d]: weights from
 * `logits` [K], `means` and `scales` [K, d].
 *
 * @example
 * ```ts
 * const mog = distributions.mixtureOfGaussians(np.array([0, 0]), np.array([[-2], [2]]), np.ones([2, 1]));
 * mog.sample(random.key(0), [500]).shape; // [500, 1], bimodal
 * ```
 */
export function mixtureOfGaussians(
  logits: ArrayLike,
  means: ArrayLike,
  scales: ArrayLike,
): Distribution {
  const mu = floatArray("mixtureOfGaussians", "means", means);
  const dtype = mu.dtype as FloatDType;
  const lw = floatArray("mixtureOfGaussians", "logits", logits, dtype);
  const sd = floatArray("mixtureOfGaussians", "scales", scales, dtype);
  if (mu.ndim !== 2) fail("mixtureOfGaussians", "means", "an array [K, d]", mu);
  const [K, d] = mu.shape as [number, number];
  if (lw.ndim !== 1 || lw.shape[0] !== K)
    fail("mixtureOfGaussians", "logits", `an array [${K}]`, lw);
  if (sd.ndim !== 2 || sd.shape[0] !== K || sd.shape[1] !== d) {
    fail("mixtureOfGaussians", "scales", `an array [${K}, ${d}]`, sd);
  }
  const logW = np.logSoftmax(lw);
  return withSampleAndLogProb({
    name: "mixtureOfGaussians",
    batchShape: [],
    eventShape: [d],
    dtype,
    logProb(x) {
      if (x.ndim < 1 || x.shape[x.ndim - 1] !== d)
        fail("mixtureOfGaussians.logProb", "x", `an array [..., ${d}]`, x);
      const z = np.div(np.sub(np.expandDims(x, -2), mu), sd); // [..., K, d]
      const comp = np.sum(np.sub(np.mul(-0.5, np.square(z)), np.add(np.log(sd), 0.5 * LOG_2PI)), {
        axis: -1,
      });
      return np.logsumexp(np.add(comp, logW), { axis: -1 });
    },
    sample(key, shape = []) {
      const sh = checkShape("mixtureOfGaussians.sample", shape);
      const [kc, kn] = random.splitList(key);
      const which = np.oneHot(random.categorical(kc!, logW, { shape: sh }), K, { dtype });
      const m = np.matmul(which, mu);
      const s = np.matmul(which, sd);
      return np.add(m, np.mul(s, random.normal(kn!, [...sh, d], { dtype })));
    },
  });
}

/**
 * The distribution of y = f(x), x ~ base, for a bijector f: log p(y) = log p_base(f⁻¹(y)) +
 * log |det ∂f⁻¹/∂y|. The context (if any) goes to the bijector and to the base.
 *
 * @example
 * ```ts
 * const base = distributions.independent(distributions.normal(np.zeros([2]), 1));
 * const logNormal = distributions.transformed(base, bijectors.exp());
 * logNormal.logProb(np.ones([1, 2])); // [−1.838]
 * ```
 */
export function transformed(base: Distribution, b: Bijector): Distribution {
  const f = checkBijector("transformed", "bijector", b);
  return {
    name: `transformed(${base.name}, ${f.name})`,
    batchShape: base.batchShape,
    eventShape: base.eventShape,
    dtype: base.dtype,
    logProb(y, c) {
      const [x, ld] = f.inverseAndLogDet(y, c);
      return np.add(base.logProb(x, c), ld);
    },
    sample: (key, shape, c) => f.forward(base.sample(key, shape, c), c),
    sampleAndLogProb(key, shape, c) {
      const [x, lp] = base.sampleAndLogProb(key, shape, c);
      const [y, ld] = f.forwardAndLogDet(x, c);
      return [y, np.sub(lp, ld)];
    },
  };
}
