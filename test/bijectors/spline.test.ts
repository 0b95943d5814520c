/**
 * The rational-quadratic spline against a scalar rendering of Durkan et al. (2019)'s formulas
 * (knots from the softmax sizes' running sums, the bin found by a loop, eqs. 4 and 5 and the
 * log-derivative): the array form builds knots, bins and per-bin values with constant matrix
 * products and one-hot rows, so this pins it to the published spline, not only to a bijection.
 */
import { describe, expect, it } from "vitest";
import * as bij from "../../src/bijectors/index.js";
import { np, random } from "../../src/index.js";
import { useTestBackend } from "../helpers/backends.js";

const f64 = { dtype: "float64" as const };
const softplus = (v: number) => Math.max(v, 0) + Math.log1p(Math.exp(-Math.abs(v)));

/** One coordinate: raw = K widths, K heights, K − 1 derivatives; returns [y, log dy/dx]. */
function scalarSpline(raw: number[], x: number, K: number, B: number, min: number): number[] {
  if (x < -B || x > B) return [x, 0];
  const knotsOf = (r: number[]) => {
    const m = Math.max(...r);
    const e = r.map((v) => Math.exp(v - m));
    const total = e.reduce((a, b) => a + b, 0);
    const sizes = e.map((v) => (v / total) * (1 - K * min) + min);
    const k = [-B];
    for (let j = 0; j < K - 1; j++) k.push(k[j]! + 2 * B * sizes[j]!);
    k.push(B);
    return k;
  };
  const xs = knotsOf(raw.slice(0, K));
  const ys = knotsOf(raw.slice(K, 2 * K));
  const ds = [1, ...raw.slice(2 * K).map((v) => softplus(v) + min), 1];
  let b = 0;
  while (b < K - 1 && x >= xs[b + 1]!) b++;
  const w = xs[b + 1]! - xs[b]!;
  const h = ys[b + 1]! - ys[b]!;
  const s = h / w;
  const t = (x - xs[b]!) / w;
  const d0 = ds[b]!;
  const d1 = ds[b + 1]!;
  const den = s + (d0 + d1 - 2 * s) * t * (1 - t);
  const y = ys[b]! + (h * (s * t * t + d0 * t * (1 - t))) / den;
  const dnum = s * s * (d1 * t * t + 2 * s * t * (1 - t) + d0 * (1 - t) ** 2);
  return [y, Math.log(dnum) - 2 * Math.log(den)];
}

describe("rational-quadratic spline (cpu, float64)", () => {
  useTestBackend("cpu");

  it("matches the scalar formulas in value and log-derivative, inside and outside [−B, B]", () => {
    for (const [K, B] of [
      [8, 5],
      [3, 2],
    ] as const) {
      const t = bij.rationalQuadraticSpline({ bins: K, bound: B });
      const n = 40;
      const raw = np.mul(random.normal(random.key(K), [n, 2, t.nParams], f64), 1.5);
      const x = np.mul(random.normal(random.key(K + 1), [n, 2], f64), B * 0.7);
      const rawRows = raw.tolist() as number[][][];
      const xRows = x.tolist() as number[][];
      const [y, ld] = t(raw).forwardAndLogDet(x);
      const yRows = y.tolist() as number[][];
      const ldRows = ld.tolist() as number[];
      let outside = 0;
      for (let i = 0; i < n; i++) {
        let sum = 0;
        for (let j = 0; j < 2; j++) {
          const v = xRows[i]![j]!;
          if (Math.abs(v) > B) outside++;
          const [ye, lde] = scalarSpline(rawRows[i]![j]!, v, K, B, 1e-3);
          expect(yRows[i]![j]!).toBeCloseTo(ye!, 10);
          sum += lde!;
        }
        expect(ldRows[i]!).toBeCloseTo(sum, 9);
      }
      expect(outside).toBeGreaterThan(0); // the draws reach the identity tails too
      const back = t(raw).inverse(y);
      expect(np.max(np.abs(np.sub(back, x))).item()).toBeLessThan(1e-8);
    }
  });
});
