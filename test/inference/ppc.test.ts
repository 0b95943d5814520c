/**
 * Posterior predictive checks. On host arrays: bands and moments against known Gaussians, the
 * leave-one-out statistic against a brute-force recomputation, p-values that flag a shifted
 * observation and not a typical one. Through the engine: a sine model fitted (amortized) flags a
 * square wave and a linear trend (small p) and passes a sine observation; the plot renders.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { NbiError } from "../../src/errors.js";
import { NBI } from "../../src/inference/engine.js";
import { hostKey, keyAt, normals } from "../../src/inference/host.js";
import { predictiveCheck } from "../../src/inference/ppc.js";
import { uniform } from "../../src/inference/priors.js";
import { ppcPlot, writePlot } from "../../src/plots/index.js";
import { tempDirs } from "../helpers/temp-dirs.js";

/** K replicated datasets of n points: mu_i + sigma·z. */
function replicas(K: number, mu: readonly number[], sigma: number, seed: number): Float64Array {
  const z = normals(hostKey(seed), K * mu.length);
  return Float64Array.from(z, (v, j) => mu[j % mu.length]! + sigma * v);
}

describe("predictiveCheck on host arrays", () => {
  const n = 30;
  const mu = Array.from({ length: n }, (_, i) => Math.sin(i / 4));
  const K = 2000;
  const reps = replicas(K, mu, 0.5, 1);

  it("gives the predictive median and 68%/95% bands of Gaussian replicates", () => {
    const check = predictiveCheck(mu, reps);
    for (let i = 0; i < n; i++) {
      // Monte-Carlo error of a quantile from 2000 draws is about 0.03·σ·few.
      expect(Math.abs(check.median[i]! - mu[i]!)).toBeLessThan(0.06);
      expect(Math.abs(check.lower68[i]! - (mu[i]! - 0.497))).toBeLessThan(0.07);
      expect(Math.abs(check.upper95[i]! - (mu[i]! + 0.98))).toBeLessThan(0.1);
      expect(Math.abs(check.sd[i]! - 0.5)).toBeLessThan(0.04);
    }
    expect(check.nDraws).toBe(K);
    expect(check.dataShape).toEqual([1, n]);
  });

  it("scores each replicate against the predictive of the others (leave-one-out, exact)", () => {
    const small = replicas(40, mu.slice(0, 5), 0.3, 2);
    const check = predictiveCheck(mu.slice(0, 5), small);
    for (const k of [0, 17, 39]) {
      let t = 0;
      for (let i = 0; i < 5; i++) {
        const others = [];
        for (let j = 0; j < 40; j++) if (j !== k) others.push(small[j * 5 + i]!);
        const m = others.reduce((a, b) => a + b, 0) / 39;
        const s = Math.sqrt(others.reduce((a, b) => a + (b - m) ** 2, 0) / 38);
        t += ((small[k * 5 + i]! - m) / s) ** 2;
      }
      expect(check.replicated[k]).toBeCloseTo(t, 9);
    }
  });

  it("passes a typical observation and flags a shifted one or a pattern the model lacks", () => {
    const z = normals(hostKey(3), n);
    const typical = mu.map((m, i) => m + 0.5 * z[i]!);
    const ok = predictiveCheck(typical, reps);
    expect(ok.pValue).toBeGreaterThan(0.05);
    expect(ok.fit).toBe("ok");
    expect(ok.coverage95).toBeGreaterThan(0.85);
    const shifted = predictiveCheck(
      typical.map((v) => v + 0.6),
      reps,
    );
    expect(shifted.pValue).toBeLessThan(0.01);
    expect(shifted.fit).toBe("misfit");
    expect(shifted.message).toMatch(/does not describe it/);
    // A slope across the points: within 2.4σ at every point, large in sum.
    const trend = predictiveCheck(
      typical.map((v, i) => v + (2.4 * (i - n / 2)) / n),
      reps,
    );
    expect(trend.pValue).toBeLessThan(0.01);
  });

  it("drops non-finite replicates and validates its arguments", () => {
    const withNaN = Float64Array.from(reps.subarray(0, 25 * n));
    withNaN[3 * n + 2] = Number.NaN;
    expect(predictiveCheck(mu, withNaN).nDraws).toBe(24);
    expect(() => predictiveCheck(mu, reps.subarray(0, 10 * n))).toThrow(
      /replicas expected at least 20 finite replicated datasets/,
    );
    expect(() => predictiveCheck(mu, reps.subarray(0, 10 * n + 1))).toThrow(NbiError);
    expect(() => predictiveCheck([1, Number.NaN], reps)).toThrow(/observed\[1\] expected a finite/);
    expect(() => predictiveCheck(mu, reps, [2, 7])).toThrow(/dataShape expected/);
  });
});

describe("predictiveCheck of a light curve with gaps", () => {
  const n = 30;
  const mu = Array.from({ length: n }, (_, i) => Math.sin(i / 4));
  const K = 300;
  const reps = replicas(K, mu, 0.5, 5);
  const z = normals(hostKey(6), n);
  const gone = new Set([1, 7, 8, 20]);
  const y = mu.map((m, i) => (gone.has(i) ? Number.NaN : m + 0.5 * z[i]!));
  const kept = mu.map((_, i) => i).filter((i) => !gone.has(i));

  it("scores the observed points only, as the check of the observed subset does; bands everywhere", () => {
    const check = predictiveCheck(y, reps, undefined, { missing: true });
    const subset = predictiveCheck(
      kept.map((i) => y[i]!),
      Float64Array.from({ length: K * kept.length }, (_, j) => {
        const k = Math.floor(j / kept.length);
        return reps[k * n + kept[j % kept.length]!]!;
      }),
    );
    expect(check.nMissing).toBe(4);
    expect(check.statistic).toBeCloseTo(subset.statistic, 10);
    expect(Array.from(check.replicated)).toEqual(Array.from(subset.replicated));
    expect(check.pValue).toBe(subset.pValue);
    expect(check.coverage68).toBe(subset.coverage68);
    for (const i of gone) {
      expect(check.residuals[i]).toBeNaN();
      expect(check.standardized[i]).toBeNaN();
      expect(Number.isFinite(check.median[i]!)).toBe(true);
      expect(check.upper95[i]!).toBeGreaterThan(check.lower95[i]!);
    }
    expect(check.message).toMatch(/over 26 observed points \(4 missing\), p = /);
    // Without the option a NaN is an error; with it, Infinity still is, and so is no point at all.
    expect(() => predictiveCheck(y, reps)).toThrow(
      /observed\[1\] expected a finite number, got NaN/,
    );
    expect(() =>
      predictiveCheck([Number.POSITIVE_INFINITY, ...y.slice(1)], reps, undefined, {
        missing: true,
      }),
    ).toThrow(/observed\[0\] expected a finite number or NaN \(a missing point\), got Infinity/);
    expect(() =>
      predictiveCheck(new Array(n).fill(Number.NaN), reps, undefined, { missing: true }),
    ).toThrow(/observed expected at least one observed \(non-NaN\) point, got every point NaN/);
  });

  it("marks the missing points in the plot", async () => {
    const gapped = await ppcPlot(predictiveCheck(y, reps, undefined, { missing: true }));
    expect(gapped.svg).toContain(">missing</text>");
    expect(gapped.svg).toMatch(/T = [\d.]+ over 26 observed points \(4 missing\)/);
    const full = await ppcPlot(predictiveCheck(mu, reps));
    expect(full.svg).not.toContain(">missing</text>");
  });
});

describe("ppcPlot", () => {
  it("draws data with bands beside residuals, per channel, as SVG and PNG", async () => {
    const two = replicas(200, [...mu2(), ...mu2()], 0.2, 4);
    const check = predictiveCheck([...mu2(), ...mu2()], two, [2, 20]);
    const dir = mkdtempSync(join(tmpdir(), "nbi-ppc-plot-"));
    try {
      const plot = await ppcPlot(check, {
        grid: Array.from({ length: 20 }, (_, i) => i * 0.5),
        xLabel: "time [d]",
        channels: ["g", "r"],
      });
      expect(plot.svg).toContain("residuals: observed − median (g)");
      expect(plot.svg).toContain("observation and posterior predictive (r)");
      expect(plot.svg).toContain("time [d]");
      expect(plot.svg).toContain("68% band");
      expect(plot.svg).toMatch(/T = [\d.]+ over 40 points/);
      const paths = await writePlot(plot, join(dir, "ppc"));
      const png = readFileSync(paths.png);
      expect([...png.subarray(1, 4)]).toEqual([80, 78, 71]); // "PNG"
      await expect(ppcPlot(check, { grid: [1, 2, 3] })).rejects.toThrow(
        /options\.grid expected 20 x values/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

function mu2(): number[] {
  return Array.from({ length: 20 }, (_, i) => Math.cos(i / 3));
}

// ---- through the engine --------------------------------------------------------------------

const T = Array.from({ length: 24 }, (_, i) => i / 23);
const SIGMA = 0.2;
/** A sine of amplitude A and angular frequency ω on [0, 1]. */
const sine = (theta: ArrayLike<number>) =>
  Float64Array.from(T, (t) => theta[0]! * Math.sin(theta[1]! * t));
const noisy = (x: ArrayLike<number>, seed: number) => {
  const z = normals(keyAt(hostKey(seed), 1), T.length);
  return Array.from(x, (v, i) => v + SIGMA * z[i]!);
};

describe("posteriorPredictive through the engine (sine model)", () => {
  const path = tempDirs("nbi-ppc-")();
  let engine: NBI;
  beforeAll(async () => {
    engine = new NBI({
      flow: { nDims: 2, flowHidden: 32, numBlocks: 3 },
      featurizer: { type: "mlp", dimIn: T.length, dimOut: 16, hidden: [64] },
      simulator: sine,
      priors: { A: uniform(0.5, 2), omega: uniform(2, 8) },
      path,
      seed: 3,
    });
    await engine.fit({
      nSims: 1500,
      nEpochs: 12,
      batchSize: 64,
      lr: 2e-3,
      noise: SIGMA,
      progress: false,
    });
  }, 60_000);

  const check = async (xObs: number[]) => {
    const post = await engine.predict(xObs, { xErr: SIGMA, nSamples: 600 });
    return engine.posteriorPredictive(xObs, post, { nDraws: 300 });
  };

  it("passes an observation the sine model made", async () => {
    const c = await check(noisy(sine([1.3, 5]), 10));
    expect(c.fit).toBe("ok");
    expect(c.pValue).toBeGreaterThan(0.05);
    expect(c.nDraws).toBe(300);
    expect(c.coverage95).toBeGreaterThan(0.8);
  });

  it("flags a square wave and a linear trend (data from a different function)", async () => {
    const square = await check(
      noisy(
        T.map((t) => 1.3 * Math.sign(Math.sin(5 * t + 0.1))),
        11,
      ),
    );
    expect(square.fit).toBe("misfit");
    expect(square.pValue).toBeLessThan(0.01);
    const trend = await check(
      noisy(
        T.map((t) => 1.5 * t - 0.4),
        12,
      ),
    );
    expect(trend.fit).toBe("misfit");
    expect(trend.pValue).toBeLessThan(0.01);
    expect(trend.message).toMatch(/posterior predictive check fails/);
  });

  it("validates its arguments, naming them", async () => {
    const xObs = noisy(sine([1, 4]), 13);
    const post = await engine.predict(xObs, { xErr: SIGMA, nSamples: 50 });
    await expect(engine.posteriorPredictive(xObs, post, { nDraws: 5 })).rejects.toThrow(
      /posteriorPredictive: nDraws expected an integer in \[20, 1e6\], got 5/,
    );
    await expect(
      engine.posteriorPredictive(xObs, { samples: post.samples, weights: new Float64Array(3) }),
    ).rejects.toThrow(/result\.weights expected a Float64Array of \d+ weights/);
    await expect(engine.posteriorPredictive(xObs, post, { xErr: 0.1, noise: 0.1 })).rejects.toThrow(
      /xErr expected either xErr or noise, not both/,
    );
    await expect(engine.posteriorPredictive(xObs, post, { xErr: [0.1, 0.2] })).rejects.toThrow(
      /xErr expected one sigma or 24 sigmas/,
    );
    await expect(engine.posteriorPredictive([1, 2], post)).rejects.toThrow(
      /posteriorPredictive: xObs expected 24 numbers/,
    );
  });
});
