import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  computeReference,
  describeReference,
  loadReference,
  REFERENCE_DIR,
  truncNormal,
} from "../../bench/sbibm/reference.js";
import { Rng } from "../../bench/sbibm/rng.js";
import { getTask, TASK_NAMES } from "../../bench/sbibm/tasks.js";
import { ndtr } from "../../src/inference/special.js";

describe("sbibm reference posteriors: two exact methods agree", () => {
  for (const name of TASK_NAMES) {
    it(`${name}, observation 1: primary and check agree within Monte Carlo error`, () => {
      // A fifth of the full effort keeps the test fast; the z-scores use each method's own errors.
      const ref = computeReference(name, 1, { n: 5000, effort: 0.2, seed: 3 });
      console.log(describeReference(ref));
      expect(ref.samples.length).toBe(5000 * ref.dim);
      expect(ref.agreement.maxMeanZ).toBeLessThan(5);
      expect(ref.agreement.maxSdZ).toBeLessThan(5);
      expect(ref.distinctFraction).toBeGreaterThan(0.9);
      expect(ref.primary.ess).toBeGreaterThan(2000);
      expect(Number.isFinite(ref.priorIs.ess)).toBe(true);
      // The reference draws' own moments are the primary method's, within its error.
      for (let j = 0; j < ref.dim; j++) {
        expect(Math.abs(ref.mean[j]! - ref.primary.mean[j]!)).toBeLessThan(
          5 * Math.hypot(ref.primary.meanSe[j]!, ref.sd[j]! / Math.sqrt(5000)),
        );
      }
      // Every draw is inside the prior.
      const lp = getTask(name).prior.logProb(ref.samples);
      expect(lp.every((v) => v > Number.NEGATIVE_INFINITY)).toBe(true);
      const modes = getTask(name).modes;
      if (modes) {
        modes.exact!.forEach((w, k) => {
          expect(Math.abs(ref.primary.modeWeights![k]! - w)).toBeLessThan(0.03);
          expect(Math.abs(ref.check.modeWeights![k]! - w)).toBeLessThan(0.06);
        });
      }
    });
  }

  it("truncated normal draws by the inverse CDF have the analytic mean, in either tail", () => {
    const phi = (z: number) => Math.exp(-0.5 * z * z) / Math.sqrt(2 * Math.PI);
    const rng = new Rng(9);
    for (const [mu, sd] of [
      [0.3, 0.316],
      [1.4, 0.316],
      [-3, 0.5],
    ] as const) {
      const a = (-1 - mu) / sd;
      const b = (1 - mu) / sd;
      const want = mu + (sd * (phi(a) - phi(b))) / (ndtr(b) - ndtr(a));
      let s = 0;
      const m = 40_000;
      for (let i = 0; i < m; i++) {
        const v = truncNormal(mu, sd, -1, 1, rng.uniform());
        expect(Math.abs(v)).toBeLessThanOrEqual(1);
        s += v;
      }
      expect(Math.abs(s / m - want)).toBeLessThan(0.005);
    }
  });

  it("stored references (observations 1–3) match a fresh computation", () => {
    for (const name of TASK_NAMES) {
      if (!existsSync(join(REFERENCE_DIR, `${name}-obs1.npy`))) continue;
      const stored = loadReference(name, 1);
      expect(stored.samples.length).toBe(10_000 * stored.dim);
      expect(stored.agreement.ok).toBe(true);
      // Recompute the moments from the float32 draws and compare with the stored summary.
      const d = stored.dim;
      for (let j = 0; j < d; j++) {
        let s = 0;
        for (let i = 0; i < 10_000; i++) s += stored.samples[i * d + j]!;
        expect(s / 10_000).toBeCloseTo(stored.mean[j]!, 4);
      }
    }
  });
});
