/**
 * Elementary bijectors. All act elementwise on the last (event) axis except `permute`/`reverse`;
 * parameters broadcast against x, so a `[d]` parameter gives each coordinate its own value.
 */
import { fail } from "../errors.js";
import * as np from "../ops/np.js";
import type { Array, ArrayLike } from "../trace/array.js";
import { type Bijector, bijector, type ValueAndLogDet } from "./types.js";

const sumEvent = (ld: Array): Array => np.sum(ld, { axis: -1 });

function checkEvent(fn: string, x: Array): void {
  if (x.ndim < 1) fail(fn, "x", "an array with an event axis (shape [..., d])", x);
}

/** Zero log-dets of x's batch shape and dtype (for volume-preserving maps). */
export function zeroLogDet(x: Array): Array {
  return np.zeros(x.shape.slice(0, -1), { dtype: x.dtype });
}

/**
 * An elementwise bijector from per-element maps returning (value, log |dy/dx|); the log-dets are
 * summed over the event axis.
 *
 * @example
 * ```ts
 * const double = bijectors.elementwise("double",
 *   (x) => [np.mul(x, 2), np.full(x.shape, Math.log(2))],
 *   (y) => [np.div(y, 2), np.full(y.shape, -Math.log(2))]);
 * double.forwardAndLogDet(np.array([[1, 2]])); // [[2, 4]], [2 log 2]
 * ```
 */
export function elementwise(
  name: string,
  forward: (x: Array) => ValueAndLogDet,
  inverse: (y: Array) => ValueAndLogDet,
): Bijector {
  return bijector({
    name,
    autoregressive: true,
    forwardAndLogDet(x) {
      checkEvent(name, x);
      const [y, ld] = forward(x);
      return [y, sumEvent(np.broadcastTo(ld, y.shape))];
    },
    inverseAndLogDet(y) {
      checkEvent(name, y);
      const [x, ld] = inverse(y);
      return [x, sumEvent(np.broadcastTo(ld, x.shape))];
    },
  });
}

/**
 * y = x + shift.
 *
 * @example
 * ```ts
 * bijectors.shift(1).forward(np.array([[0, 1]])); // [[1, 2]]
 * ```
 */
export function shift(s: ArrayLike): Bijector {
  return elementwise(
    "shift",
    (x) => [np.add(x, s), np.zerosLike(x)],
    (y) => [np.sub(y, s), np.zerosLike(y)],
  );
}

/** A parameter as an array; plain numbers take x's dtype (so float64 inputs stay float64). */
const param = (v: ArrayLike, like: Array): Array =>
  typeof v === "number" ? np.asArray(v, like.dtype) : v;

/**
 * y = x · scale (scale ≠ 0).
 *
 * @example
 * ```ts
 * bijectors.scale(np.array([2, 3])).forwardAndLogDet(np.ones([1, 2])); // [[2, 3]], [log 6]
 * ```
 */
export function scale(s: ArrayLike): Bijector {
  const ld = (x: Array) => np.log(np.abs(param(s, x)));
  return elementwise(
    "scale",
    (x) => [np.mul(x, s), ld(x)],
    (y) => [np.div(y, s), np.neg(ld(y))],
  );
}

/**
 * y = x · exp(logScale) + shift.
 *
 * @example
 * ```ts
 * bijectors.affine(np.array([0, 1]), np.array([0, Math.log(2)])).forward(np.ones([1, 2])); // [[1, 3]]
 * ```
 */
export function affine(shiftValue: ArrayLike, logScale: ArrayLike): Bijector {
  return elementwise(
    "affine",
    (x) => {
      const ls = param(logScale, x);
      return [np.add(np.mul(x, np.exp(ls)), shiftValue), ls];
    },
    (y) => {
      const ls = param(logScale, y);
      return [np.mul(np.sub(y, shiftValue), np.exp(np.neg(ls))), np.neg(ls)];
    },
  );
}

/** How `clampedAffine` (and nbi's MAF transformer) bounds its log-scale. */
export interface ClampOptions {
  /** Bounds of the log-scale (default [-1, 1], as nbi's MAF). */
  clamp?: readonly [number, number];
  /**
   * "hard" (default, nbi): clip to [lo, hi], zero gradient outside. "soft" (zuko): the smooth
   * c + (s − c) / (1 + |s − c| / r) with c the centre and r the half-width, never reaching the bounds.
   */
  mode?: "hard" | "soft";
}

/**
 * Clamps raw log-scales as `clampedAffine` does; exported for custom transformers.
 *
 * @example
 * ```ts
 * bijectors.clampLogScale(np.array([-3, 0.5, 3])); // [-1, 0.5, 1]
 * bijectors.clampLogScale(np.array([3]), { mode: "soft" }); // ≈ [0.75], smooth and inside (−1, 1)
 * ```
 */
export function clampLogScale(raw: ArrayLike, options?: ClampOptions): Array {
  const [lo, hi] = options?.clamp ?? [-1, 1];
  if (!(lo < hi)) fail("clampedAffine", "options.clamp", "[lo, hi] with lo < hi", options?.clamp);
  if ((options?.mode ?? "hard") === "hard") return np.clip(raw, lo, hi);
  const c = (lo + hi) / 2;
  const r = (hi - lo) / 2;
  const d = np.sub(raw, c);
  return np.add(np.div(d, np.add(1, np.div(np.abs(d), r))), c);
}

/**
 * An affine map whose log-scale is clamped (hard clip by default, or soft): nbi's MAF transformer.
 * The clamp keeps early training from blowing up the scale.
 *
 * @example
 * ```ts
 * bijectors.clampedAffine(0, 5).forward(np.ones([1, 1])); // log-scale clipped to 1: [[e]]
 * ```
 */
export function clampedAffine(
  shiftValue: ArrayLike,
  rawLogScale: ArrayLike,
  options?: ClampOptions,
): Bijector {
  const b = affine(shiftValue, clampLogScale(rawLogScale, options));
  return { ...b, name: "clampedAffine" };
}

/**
 * y = exp(x), onto the positive reals.
 *
 * @example
 * ```ts
 * bijectors.exp().inverse(np.array([[1, Math.E]])); // [[0, 1]]
 * ```
 */
export const exp = (): Bijector =>
  elementwise(
    "exp",
    (x) => [np.exp(x), x],
    (y) => {
      const x = np.log(y);
      return [x, np.neg(x)];
    },
  );

/**
 * y = log(1 + exp(x)), onto the positive reals.
 *
 * @example
 * ```ts
 * bijectors.softplus().forward(np.array([[0]])); // [[log 2]]
 * ```
 */
export const softplus = (): Bijector =>
  elementwise(
    "softplus",
    (x) => [np.softplus(x), np.logSigmoid(x)],
    (y) => {
      // x = log(exp(y) − 1) = y + log(−expm1(−y)), stable for small and large y.
      const x = np.add(y, np.log(np.neg(np.expm1(np.neg(y)))));
      return [x, np.neg(np.logSigmoid(x))];
    },
  );

const logSigmoidPair = (x: Array) => np.add(np.logSigmoid(x), np.logSigmoid(np.neg(x)));

/**
 * y = 1 / (1 + exp(−x)), onto (0, 1).
 *
 * @example
 * ```ts
 * bijectors.sigmoid().forward(np.array([[0]])); // [[0.5]]
 * ```
 */
export const sigmoid = (): Bijector =>
  elementwise(
    "sigmoid",
    (x) => [np.sigmoid(x), logSigmoidPair(x)],
    (y) => {
      const x = np.sub(np.log(y), np.log1p(np.neg(y)));
      return [x, np.neg(logSigmoidPair(x))];
    },
  );

/**
 * y = log(x / (1 − x)), from (0, 1) onto the reals (the inverse of `sigmoid`).
 *
 * @example
 * ```ts
 * bijectors.logit().forward(np.array([[0.5]])); // [[0]]
 * ```
 */
export const logit = (): Bijector =>
  elementwise(
    "logit",
    (x) => {
      const y = np.sub(np.log(x), np.log1p(np.neg(x)));
      return [y, np.neg(logSigmoidPair(y))];
    },
    (y) => [np.sigmoid(y), logSigmoidPair(y)],
  );

/** log(1 − tanh(x)²) = 2 (log 2 − x − softplus(−2x)), stable for large |x|. */
const logTanhDeriv = (x: Array) =>
  np.mul(2, np.sub(np.sub(Math.log(2), x), np.softplus(np.mul(-2, x))));

/**
 * y = tanh(x), onto (−1, 1).
 *
 * @example
 * ```ts
 * bijectors.tanh().inverse(np.array([[0]])); // [[0]]
 * ```
 */
export const tanh = (): Bijector =>
  elementwise(
    "tanh",
    (x) => [np.tanh(x), logTanhDeriv(x)],
    (y) => {
      const x = np.mul(0.5, np.sub(np.log1p(y), np.log1p(np.neg(y))));
      return [x, np.neg(logTanhDeriv(x))];
    },
  );

/**
 * The bounded-support transform for priors: forward maps the real line onto the interval (lo, hi)
 * by y = lo + (hi − lo) · sigmoid(x); inverse maps the interval back to the reals. Use
 * `invert(bounded(lo, hi))` to unconstrain a bounded parameter.
 *
 * @example
 * ```ts
 * const toReal = bijectors.invert(bijectors.bounded(0, 10));
 * toReal.forward(np.array([[5]])); // [[0]]: the midpoint maps to 0
 * ```
 */
export function bounded(lo: ArrayLike, hi: ArrayLike): Bijector {
  const width = (x: Array) => np.sub(param(hi, x), param(lo, x));
  return elementwise(
    "bounded",
    (x) => [
      np.add(lo, np.mul(width(x), np.sigmoid(x))),
      np.add(np.log(width(x)), logSigmoidPair(x)),
    ],
    (y) => {
      const u = np.div(np.sub(y, lo), width(y));
      const x = np.sub(np.log(u), np.log1p(np.neg(u)));
      return [x, np.neg(np.add(np.log(width(y)), logSigmoidPair(x)))];
    },
  );
}

function checkPermutation(perm: readonly number[]): number[] {
  const n = perm.length;
  const seen = new Set<number>();
  for (const p of perm) {
    if (!Number.isInteger(p) || p < 0 || p >= n || seen.has(p)) {
      fail("permute", "perm", `a permutation of 0..${n - 1}`, perm);
    }
    seen.add(p);
  }
  return [...perm];
}

/**
 * y_i = x_perm[i] along the event axis; log-det 0.
 *
 * @example
 * ```ts
 * bijectors.permute([2, 0, 1]).forward(np.array([[10, 20, 30]])); // [[30, 10, 20]]
 * ```
 */
export function permute(perm: readonly number[]): Bijector {
  const p = checkPermutation(perm);
  const inv = new globalThis.Array<number>(p.length);
  p.forEach((pi, i) => {
    inv[pi] = i;
  });
  const check = (x: Array) => {
    if (x.ndim < 1 || x.shape[x.ndim - 1] !== p.length) {
      fail("permute", "x", `an array whose last axis has size ${p.length}`, x);
    }
  };
  return bijector({
    name: `permute([${p.join(", ")}])`,
    autoregressive: p.every((pi, i) => pi === i),
    forwardAndLogDet(x) {
      check(x);
      return [np.take(x, p, -1), zeroLogDet(x)];
    },
    inverseAndLogDet(y) {
      check(y);
      return [np.take(y, inv, -1), zeroLogDet(y)];
    },
  });
}

/**
 * Reverses the event axis (of any size): the default permutation between MAF blocks.
 *
 * @example
 * ```ts
 * bijectors.reverse().forward(np.array([[1, 2, 3]])); // [[3, 2, 1]]
 * ```
 */
export function reverse(): Bijector {
  const rev = (x: Array): ValueAndLogDet => {
    checkEvent("reverse", x);
    const d = x.shape[x.ndim - 1]!;
    return [
      np.take(
        x,
        globalThis.Array.from({ length: d }, (_, i) => d - 1 - i),
        -1,
      ),
      zeroLogDet(x),
    ];
  };
  return bijector({ name: "reverse", forwardAndLogDet: rev, inverseAndLogDet: rev });
}

/**
 * The identity map (log-det 0): the neutral element of composition (see `bijectorMonoid`).
 *
 * @example
 * ```ts
 * bijectors.identity().forward(np.array([[1, 2]])); // [[1, 2]]
 * ```
 */
export function identity(): Bijector {
  const id = (x: Array): ValueAndLogDet => {
    checkEvent("identity", x);
    return [x, zeroLogDet(x)];
  };
  return bijector({
    name: "identity",
    autoregressive: true,
    forwardAndLogDet: id,
    inverseAndLogDet: id,
  });
}
