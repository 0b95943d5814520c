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

/** Inclusive cumulative sum along the last axis (small K: a matmul with a triangular matrix). */
function cumsumLast(x: Array): Array {
  const k = x.shape[x.ndim - 1]!;
  const rows = globalThis.Array.from({ length: k }, (_, i) =>
    globalThis.Array.from({ length: k }, (_, j) => (i <= j ? 1 : 0)),
  );
  return np.matmul(x, np.array(rows, { dtype: x.dtype === "float64" ? "float64" : "float32" }));
}

/** Knot positions [..., K + 1] from unnormalised widths: −B, ..., B with each bin ≥ min. */
function knots(raw: Array, bound: number, minSize: number): [Array, Array] {
  const k = raw.shape[raw.ndim - 1]!;
  const sizes = np.add(np.mul(np.softmax(raw, -1), 1 - k * minSize), minSize);
  const cum = np.sub(np.mul(cumsumLast(sizes), 2 * bound), bound);
  const lead = np.full([...raw.shape.slice(0, -1), 1], -bound, { dtype: raw.dtype });
  // Pin the last knot to exactly B (the cumulative sum rounds).
  const inner = np.slice(cum, ...raw.shape.slice(0, -1).map(() => null), [0, k - 1]);
  const last = np.full([...raw.shape.slice(0, -1), 1], bound, { dtype: raw.dtype });
  const all = np.concatenate([lead, inner, last], -1);
  const size = np.sub(
    np.slice(all, ...raw.shape.slice(0, -1).map(() => null), [1, k + 1]),
    np.slice(all, ...raw.shape.slice(0, -1).map(() => null), [0, k]),
  );
  return [all, size];
}

const gather = (a: Array, idx: Array) => np.squeeze(np.takeAlongAxis(a, idx, -1), -1);

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

  const t = (raw: Array) => {
    checkRaw("rationalQuadraticSpline", raw, nParams);
    const [rw, rh, rd] = np.split(raw, [K, 2 * K], -1);
    const [xs, ws] = knots(rw!, B, minW);
    const [ys, hs] = knots(rh!, B, minH);
    const ones = np.ones([...raw.shape.slice(0, -1), 1], { dtype: raw.dtype });
    const ds = np.concatenate([ones, np.add(np.softplus(rd!), minD), ones], -1); // [..., d, K + 1]

    const evaluate = (v: Array, inverse: boolean): ValueAndLogDet => {
      const inside = np.logicalAnd(np.greaterEqual(v, -B), np.lessEqual(v, B));
      const vin = np.where(inside, v, 0); // keep outside values out of the spline's arithmetic
      const grid = inverse ? ys : xs;
      const interior = np.slice(grid, ...grid.shape.slice(0, -1).map(() => null), [1, K]);
      const bin = np.astype(
        np.sum(np.astype(np.greaterEqual(np.expandDims(vin, -1), interior), "int32"), { axis: -1 }),
        "int32",
      );
      const idx = np.expandDims(bin, -1);
      const idx1 = np.add(idx, 1);
      const xk = gather(xs, idx);
      const wk = gather(ws, idx);
      const yk = gather(ys, idx);
      const hk = gather(hs, idx);
      const dk = gather(ds, idx);
      const dk1 = gather(ds, idx1);
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
