/**
 * Transformers for `maskedAutoregressive`: maps from raw per-coordinate parameters `[..., d, p]`
 * to elementwise bijectors. `affineTransformer` (p = 2: shift, raw log-scale; nbi's MAF) and
 * `rationalQuadraticSpline` (p = 3K − 1; Durkan et al. 2019, the neural spline flow).
 */
import { fail } from "../errors.js";
import * as np from "../ops/np.js";
import type { Array } from "../trace/array.js";
import type { Transformer } from "./combinators.js";
import { type ClampOptions, clampedAffine, elementwise } from "./elementary.js";
import type { ValueAndLogDet } from "./types.js";

function checkRaw(fn: string, raw: Array, p: number): void {
  if (raw.ndim < 2 || raw.shape[raw.ndim - 1] !== p) {
    fail(fn, "raw parameters", `an array [..., d, ${p}]`, raw);
  }
}

/**
 * raw [..., d, 2] = (shift, raw log-scale) → clampedAffine (hard clamp to [-1, 1] by default).
 *
 * @example
 * ```ts
 * const t = bijectors.affineTransformer(); // t.nParams === 2
 * t(np.zeros([4, 3, 2])).forward(np.ones([4, 3])); // shift 0, log-scale 0: the identity
 * ```
 */
export function affineTransformer(options?: ClampOptions): Transformer & {
  /** Raw parameters per coordinate (2). */
  nParams: number;
} {
  const t = (raw: Array) => {
    checkRaw("affineTransformer", raw, 2);
    return clampedAffine(np.index(raw, 0, -1), np.index(raw, 1, -1), options);
  };
  return Object.assign(t, { nParams: 2 });
}

/** Options of `rationalQuadraticSpline` (and `nsf`). */
export interface SplineOptions {
  /** Number of bins K (default 8). */
  bins?: number;
  /** The spline lives on [−bound, bound]; identity outside (default 5). */
  bound?: number;
  /** Smallest bin width, as a fraction of the interval [−B, B] (default 1e-3): bins never collapse. */
  minBinWidth?: number;
  /** Smallest bin height, as a fraction of the interval (default 1e-3). */
  minBinHeight?: number;
  /** Smallest derivative at the interior knots (default 1e-3): keeps the spline strictly monotone. */
  minDerivative?: number;
}

type Matrix = number[][];
const matrix = (rows: number, cols: number, at: (i: number, j: number) => number): Matrix =>
  globalThis.Array.from({ length: rows }, (_, i) =>
    globalThis.Array.from({ length: cols }, (_, j) => at(i, j)),
  );

/**
 * The spline's constant linear maps. Every split, cumulative sum, padding and shift along the
 * short last axis is a product with a small constant matrix (plus a constant row), and a bin's
 * knots and derivatives are picked by a one-hot row instead of a gather: products and their
 * adjoints are GEMMs, where slices, concatenations, pads and gathers of rows of 7–9 numbers (and
 * their adjoints: pads, slices, scatters) copied element by element (bench/RESULTS.md,
 * 2026-12-05: the NSF training step at a batch of 640, 82 → 65 ms).
 */
interface SplineMaps {
  /** raw [..., 3K − 1] → unnormalised widths, heights [..., K] and derivatives [..., K − 1]. */
  pickW: Matrix;
  pickH: Matrix;
  pickD: Matrix;
  /** Bin sizes s [..., K] (summing to 1) → left knots −B + 2B Σ_{i<j} s_i; add `leftRow`. */
  left: Matrix;
  leftRow: number[];
  /** s → bin widths 2B s_j, the last pinned so that the right end is exactly B; add `widthRow`. */
  width: Matrix;
  widthRow: number[];
  /** Interior derivatives [..., K − 1] → left ends' (1, d_0, …) and right ends' (…, d_{K−2}, 1). */
  dLeft: Matrix;
  dLeftRow: number[];
  dRight: Matrix;
  dRightRow: number[];
  /** A bin's indicator from the knot indicators [v ≥ left_j]: e_j − e_{j+1}. */
  firstDifference: Matrix;
}

function splineMaps(K: number, B: number): SplineMaps {
  const P = 3 * K - 1;
  const last = K - 1;
  return {
    pickW: matrix(P, K, (i, j) => (i === j ? 1 : 0)),
    pickH: matrix(P, K, (i, j) => (i === K + j ? 1 : 0)),
    pickD: matrix(P, K - 1, (i, j) => (i === 2 * K + j ? 1 : 0)),
    left: matrix(K, K, (i, j) => (i < j ? 2 * B : 0)),
    leftRow: globalThis.Array.from({ length: K }, () => -B),
    // The last width is B − left_{K−1} = 2B (1 − Σ_{i<K−1} s_i), not 2B s_{K−1}: the sizes'
    // sum rounds, and the spline must end exactly at B.
    width: matrix(K, K, (i, j) => (j < last ? (i === j ? 2 * B : 0) : i < last ? -2 * B : 0)),
    widthRow: globalThis.Array.from({ length: K }, (_, j) => (j === last ? 2 * B : 0)),
    dLeft: matrix(K - 1, K, (i, j) => (j === i + 1 ? 1 : 0)),
    dLeftRow: globalThis.Array.from({ length: K }, (_, j) => (j === 0 ? 1 : 0)),
    dRight: matrix(K - 1, K, (i, j) => (j === i ? 1 : 0)),
    dRightRow: globalThis.Array.from({ length: K }, (_, j) => (j === last ? 1 : 0)),
    firstDifference: matrix(K, K, (i, j) => (i === j ? 1 : i === j + 1 ? -1 : 0)),
  };
}

/**
 * The monotone rational-quadratic spline of Durkan et al. (2019) on [−B, B] with linear (identity)
 * tails: raw [..., d, 3K − 1] = (K widths, K heights, K − 1 interior derivatives, unnormalised).
 *
 * @example
 * ```ts
 * const t = bijectors.rationalQuadraticSpline({ bins: 8 }); // t.nParams === 23
 * t(np.zeros([4, 3, t.nParams])).forward(np.ones([4, 3])); // [4, 3]
 * ```
 */
export function rationalQuadraticSpline(options?: SplineOptions): Transformer & {
  /** Raw parameters per coordinate (3K − 1). */
  nParams: number;
} {
  const K = options?.bins ?? 8;
  const B = options?.bound ?? 5;
  const minW = options?.minBinWidth ?? 1e-3;
  const minH = options?.minBinHeight ?? 1e-3;
  const minD = options?.minDerivative ?? 1e-3;
  if (!Number.isInteger(K) || K < 2)
    fail("rationalQuadraticSpline", "options.bins", "an integer ≥ 2", K);
  if (!(B > 0)) fail("rationalQuadraticSpline", "options.bound", "a positive number", B);
  if (!(minW * K < 1 && minH * K < 1)) {
    fail("rationalQuadraticSpline", "options.minBinWidth", "min sizes with bins · min < 1", [
      minW,
      minH,
    ]);
  }
  const nParams = 3 * K - 1;

  const maps = splineMaps(K, B);

  const t = (raw: Array) => {
    checkRaw("rationalQuadraticSpline", raw, nParams);
    const dtype = raw.dtype === "float64" ? "float64" : "float32";
    const constant = (m: Matrix | number[]) => np.array(m, { dtype });
    const affine = (x: Array, m: Matrix, row: number[]) =>
      np.add(np.matmul(x, constant(m)), constant(row));
    const sizes = (r: Array, min: number) => np.add(np.mul(np.softmax(r, -1), 1 - K * min), min);
    const sw = sizes(np.matmul(raw, constant(maps.pickW)), minW);
    const sh = sizes(np.matmul(raw, constant(maps.pickH)), minH);
    const interior = np.add(np.softplus(np.matmul(raw, constant(maps.pickD))), minD);
    // Per bin [..., d, K]: left knot and width in x and in y, derivative at the bin's two ends.
    const xl = affine(sw, maps.left, maps.leftRow);
    const xw = affine(sw, maps.width, maps.widthRow);
    const yl = affine(sh, maps.left, maps.leftRow);
    const yw = affine(sh, maps.width, maps.widthRow);
    const dl = affine(interior, maps.dLeft, maps.dLeftRow);
    const dr = affine(interior, maps.dRight, maps.dRightRow);

    const evaluate = (v: Array, inverse: boolean): ValueAndLogDet => {
      const inside = np.logicalAnd(np.greaterEqual(v, -B), np.lessEqual(v, B));
      const vin = np.where(inside, v, 0); // keep outside values out of the spline's arithmetic
      // The bin as a one-hot row: [v ≥ left_j] − [v ≥ left_{j+1}] (left_0 = −B exactly).
      const atOrAbove = np.astype(
        np.greaterEqual(np.expandDims(vin, -1), inverse ? yl : xl),
        dtype,
      );
      const onehot = np.matmul(atOrAbove, constant(maps.firstDifference));
      const pick = (a: Array) => np.sum(np.mul(a, onehot), { axis: -1 });
      const xk = pick(xl);
      const wk = pick(xw);
      const yk = pick(yl);
      const hk = pick(yw);
      const dk = pick(dl);
      const dk1 = pick(dr);
      const s = np.div(hk, wk);
      const dsum = np.sub(np.add(dk, dk1), np.mul(2, s));
      let theta: Array;
      let out: Array;
      if (!inverse) {
        theta = np.div(np.sub(vin, xk), wk);
      } else {
        const dy = np.sub(vin, yk);
        const a = np.add(np.mul(hk, np.sub(s, dk)), np.mul(dy, dsum));
        const b = np.sub(np.mul(hk, dk), np.mul(dy, dsum));
        const c = np.mul(np.neg(s), dy);
        const disc = np.maximum(np.sub(np.square(b), np.mul(4, np.mul(a, c))), 0);
        // The root in [0, 1], in the form that avoids cancellation.
        theta = np.div(np.mul(2, c), np.sub(np.neg(b), np.sqrt(disc)));
      }
      const t1 = np.mul(theta, np.sub(1, theta));
      const den = np.add(s, np.mul(dsum, t1));
      if (!inverse) {
        const num = np.mul(hk, np.add(np.mul(s, np.square(theta)), np.mul(dk, t1)));
        out = np.add(yk, np.div(num, den));
      } else {
        out = np.add(xk, np.mul(theta, wk));
      }
      const dnum = np.mul(
        np.square(s),
        np.add(
          np.add(np.mul(dk1, np.square(theta)), np.mul(np.mul(2, s), t1)),
          np.mul(dk, np.square(np.sub(1, theta))),
        ),
      );
      const ld = np.sub(np.log(dnum), np.mul(2, np.log(den)));
      return [
        np.where(inside, out, v),
        np.where(inside, inverse ? np.neg(ld) : ld, np.zerosLike(ld)),
      ];
    };
    return elementwise(
      "rationalQuadraticSpline",
      (x) => evaluate(x, false),
      (y) => evaluate(y, true),
    );
  };
  return Object.assign(t, { nParams });
}
