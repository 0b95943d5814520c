/**
 * The surrogate's calibrated spread (spread.ts): a base scale τ gives the flow's exact density
 * with base N(0, τ²I) on every host path, it is fitted in closed form at weighted draws, kept only
 * when it wins there, and survives a checkpoint.
 */

import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  loadCheckpoint,
  saveCheckpoint,
  scalesToTensors,
  tensorsToScales,
} from "../../src/inference/checkpoint.js";
import { hostKey } from "../../src/inference/host.js";
import { thetaLogLike } from "../../src/inference/likelihood.js";
import { SELECT_MIN_ESS, SELECT_Z } from "../../src/inference/loss-selection.js";
import {
  defensiveLogProb,
  fitScales,
  initPosterior,
  posteriorNetwork,
  proposalSample,
  type Surrogate,
  surrogateLatent,
  surrogateLogProb,
  surrogateOf,
  surrogateSample,
} from "../../src/inference/posterior.js";
import { independent, normal } from "../../src/inference/priors.js";
import { snpeIS } from "../../src/inference/snpe.js";
import { chiSquareCdf, chiSquareQuantile } from "../../src/inference/special.js";
import { calibrateSpread, huberScale, SPREAD_CAP_QUANTILE } from "../../src/inference/spread.js";

const d = 2;
const prior = independent([normal(0.5, 2), normal(-1, 1.5)]);
const xObs = Float32Array.of(0.3, -0.2);

async function surrogate(): Promise<Surrogate> {
  const net = posteriorNetwork(
    { nDims: d, flowHidden: 16, numBlocks: 2 },
    { type: "mlp", dimIn: 2, dimOut: 8, hidden: [16] },
    [2],
  );
  const params = await initPosterior(net, hostKey(1));
  const theta = prior.sample(hostKey(2), 500);
  const x = Float32Array.from(theta, (v) => v + 0.1);
  return { net, params, scales: fitScales(x, theta, [1, 2], d) };
}

const withScale = (s: Surrogate, tau: number): Surrogate => ({
  ...s,
  scales: { ...s.scales, baseScale: tau },
});

const mean = (v: ArrayLike<number>) => Array.from(v).reduce((a, b) => a + b, 0) / v.length;

describe("a base scale τ", () => {
  it("gives the flow's density with base N(0, τ²I), which integrates to 1, and draws that follow it", async () => {
    const plain = await surrogate();
    const tau = 1.7;
    const wide = withScale(plain, tau);
    const theta = prior.sample(hostKey(3), 200);
    const [lq1, lqTau, { sq }] = await Promise.all([
      surrogateLogProb(plain, xObs, theta),
      surrogateLogProb(wide, xObs, theta),
      surrogateLatent(plain, xObs, theta),
    ]);
    for (let i = 0; i < 200; i++)
      expect(lqTau[i]! - lq1[i]!).toBeCloseTo(
        -0.5 * sq[i]! * (1 / tau ** 2 - 1) - d * Math.log(tau),
        4,
      );
    // ∫ q_τ dθ by importance sampling from a density wider than q_τ: E_g[q_τ / g] = 1.
    const g = independent([normal(0.5, 8), normal(-1, 6)]);
    const wideDraws = g.sample(hostKey(9), 40_000);
    const lg = g.logProb(wideDraws);
    const lqWide = await surrogateLogProb(wide, xObs, wideDraws);
    expect(mean(Array.from(lqWide, (v, i) => Math.exp(v - lg[i]!)))).toBeCloseTo(1, 1);
    // Draws from q_τ have base points of mean square τ² per dimension (1 without the scale).
    for (const [s, want] of [
      [wide, tau ** 2],
      [plain, 1],
    ] as const) {
      const draws = await surrogateSample(s, hostKey(4), xObs, 4000);
      const u = await surrogateLatent(plain, xObs, draws);
      expect(mean(u.sq) / d / want).toBeCloseTo(1, 1);
    }
  });

  it("widens both components of the defensive proposal alike", async () => {
    const tau = 1.3;
    const wide = withScale(await surrogate(), tau);
    const defensive = { alpha: 0.3, tau: 2 };
    const theta = prior.sample(hostKey(5), 300);
    const [lq, { sq, logDet, logJac }] = await Promise.all([
      defensiveLogProb(wide, xObs, theta, defensive),
      surrogateLatent(wide, xObs, theta),
    ]);
    const logN = (s: number, t: number) =>
      -0.5 * (s / (t * t)) - d * Math.log(t) - 0.5 * d * Math.log(2 * Math.PI);
    for (let i = 0; i < theta.length / d; i++) {
      const want = Math.log(
        0.7 * Math.exp(logN(sq[i]!, tau)) + 0.3 * Math.exp(logN(sq[i]!, 2 * tau)),
      );
      expect(lq[i]!).toBeCloseTo(want + logDet[i]! + logJac[i]!, 4);
    }
    // Its draws: the broad share's base points at (2τ)², the rest at τ².
    const draws = await proposalSample(wide, hostKey(6), xObs, 6000, defensive);
    const u = await surrogateLatent(wide, xObs, draws);
    expect(mean(u.sq) / d / (tau ** 2 * (0.7 + 0.3 * 4))).toBeCloseTo(1, 1);
  });
});

describe("Huber's scale of the base points", () => {
  it("reads τ² from normal base points, and one heavy weight far out barely moves it", () => {
    expect(chiSquareQuantile(0.99, 3)).toBeCloseTo(11.3449, 4);
    expect(chiSquareCdf(chiSquareQuantile(SPREAD_CAP_QUANTILE, 5), 5)).toBeCloseTo(0.99, 10);
    expect(chiSquareCdf(2, 2)).toBeCloseTo(1 - Math.exp(-1), 12);
    // |u|² of 20,000 normal points of scale 1.3 in 3 dimensions, equal weights.
    const n = 20_000;
    const z = normal(0, 1.3).sample(hostKey(11), 3 * n);
    const sq = Float64Array.from(
      { length: n },
      (_, i) => z[3 * i]! ** 2 + z[3 * i + 1]! ** 2 + z[3 * i + 2]! ** 2,
    );
    const w = new Float64Array(n).fill(1 / n);
    const { tau2, se } = huberScale(w, sq, 3);
    expect(Math.abs(tau2 - 1.69)).toBeLessThan(3 * se);
    expect(se).toBeLessThan(0.03);
    // 2% of the weight on a point at |u|² = 110: the plain mean moves by 0.7, Huber's by ≤ 0.15.
    const heavy = Float64Array.from(w, (v) => v * 0.98);
    heavy[0] = 0.02 + heavy[0]!;
    const far = Float64Array.from(sq);
    far[0] = 110;
    const plainMean = far.reduce((s, v, i) => s + heavy[i]! * v, 0) / 3;
    expect(plainMean - 1.69).toBeGreaterThan(0.6);
    expect(Math.abs(huberScale(heavy, far, 3).tau2 - tau2)).toBeLessThan(0.15);
  });
});

describe("calibrateSpread", () => {
  it("fits τ² = Σ w̄ |u|² / d at the weighted draws and keeps it when it wins by SELECT_Z standard errors", async () => {
    const plain = await surrogate();
    const { net, params } = plain;
    // Draws of a posterior 1.5 times as wide as the network in its base space, equal weights.
    const theta = await surrogateSample(withScale(plain, 1.5), hostKey(7), xObs, 3000);
    const weights = new Float64Array(3000).fill(1 / 3000);
    // The checkpoint's own scale, if any, is replaced.
    const start = { params, scales: { ...plain.scales, baseScale: 0.5 } };
    const { checkpoint, fit } = await calibrateSpread(net, xObs, start, { theta, weights });
    const { sq } = await surrogateLatent(plain, xObs, theta);
    expect(fit.tau! ** 2).toBeCloseTo(huberScale(weights, sq, d).tau2, 9);
    expect(fit.tau!).toBeGreaterThan(1.45);
    expect(fit.tau!).toBeLessThan(1.55);
    expect(fit.tau! ** 2 - 1).toBeGreaterThan(SELECT_Z * fit.se!);
    expect(fit.applied).toBe(true);
    expect(checkpoint.scales.baseScale).toBe(fit.tau);
    expect(checkpoint.params).toBe(params);
    // The gain is the score's rise at the draws: Σ w̄ (log q_τ − log q).
    const [lq1, lqTau] = await Promise.all([
      surrogateLogProb(plain, xObs, theta),
      surrogateLogProb({ net, params, scales: checkpoint.scales }, xObs, theta),
    ]);
    expect(fit.gain!).toBeCloseTo(mean(lqTau) - mean(lq1), 4);
  });

  it("leaves a surrogate that already fits the draws as trained, and does not fit at too few effective draws", async () => {
    const plain = await surrogate();
    const { net, params, scales } = plain;
    const theta = await surrogateSample(plain, hostKey(8), xObs, 3000);
    const even = new Float64Array(3000).fill(1 / 3000);
    const fits = await calibrateSpread(net, xObs, { params, scales }, { theta, weights: even });
    expect(Math.abs(fits.fit.tau! - 1)).toBeLessThan(0.03);
    expect(fits.fit.applied).toBe(false);
    expect(fits.checkpoint.scales.baseScale).toBeUndefined();
    // Weight on five draws: below SELECT_MIN_ESS effective ones, nothing is fitted.
    const five = new Float64Array(3000);
    five.fill(0.2, 0, 5);
    const few = await calibrateSpread(net, xObs, { params, scales }, { theta, weights: five });
    expect(few.fit).toEqual({ ess: expect.closeTo(5, 9), applied: false });
    expect(few.fit.ess).toBeLessThan(SELECT_MIN_ESS);
    expect(few.checkpoint.scales).toEqual(scales);
  });

  it("only widens: draws narrower than the network fit τ < 1, which is not kept", async () => {
    const plain = await surrogate();
    const { net, params, scales } = plain;
    const theta = await surrogateSample(withScale(plain, 0.6), hostKey(12), xObs, 3000);
    const even = new Float64Array(3000).fill(1 / 3000);
    const { checkpoint, fit } = await calibrateSpread(
      net,
      xObs,
      { params, scales },
      {
        theta,
        weights: even,
      },
    );
    expect(fit.tau!).toBeGreaterThan(0.55);
    expect(fit.tau!).toBeLessThan(0.65);
    expect(1 - fit.tau! ** 2).toBeGreaterThan(10 * fit.se!);
    expect(fit.applied).toBe(false);
    expect(checkpoint.scales.baseScale).toBeUndefined();
  });
});

describe("a checkpoint's base scale", () => {
  it("is saved to a file and read back, and the loaded surrogate has the same density", async () => {
    const wide = withScale(await surrogate(), 1.42);
    const dir = mkdtempSync(join(os.tmpdir(), "nbi-spread-"));
    try {
      const file = join(dir, "checkpoint.safetensors");
      await saveCheckpoint(file, wide);
      const loaded = await loadCheckpoint(file, wide.params);
      expect(loaded.scales.baseScale).toBe(1.42);
      const theta = prior.sample(hostKey(10), 50);
      expect(await surrogateLogProb({ net: wide.net, ...loaded }, xObs, theta)).toEqual(
        await surrogateLogProb(wide, xObs, theta),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("survives the tensors, reads as absent from a file without it, and is refused when not a positive number", () => {
    const scales = {
      xMean: Float64Array.of(0),
      xStd: Float64Array.of(1),
      thetaMean: Float64Array.of(0.1),
      thetaStd: Float64Array.of(2),
    };
    expect(tensorsToScales(scalesToTensors({ ...scales, baseScale: 1.37 }), "t").baseScale).toBe(
      1.37,
    );
    expect(tensorsToScales(scalesToTensors(scales), "t").baseScale).toBeUndefined();
    const bad = scalesToTensors({ ...scales, baseScale: 1.37 });
    bad["scales.baseScale"] = { dtype: "F64", shape: [1], data: Float64Array.of(-2) };
    expect(() => tensorsToScales(bad, "round-002/network.safetensors")).toThrow(
      /round-002\/network\.safetensors tensor scales\.baseScale expected a finite positive base scale, got -2/,
    );
  });
});

describe("a sequential fit's calibrated spread", () => {
  // x = θ + N(0, 0.1²) under a standard normal prior: the posterior is normal, known exactly.
  const sd = 0.1;
  const x = Float32Array.of(0.4, -0.3);
  const shrink = 1 / (1 + sd * sd);
  const posterior = independent([
    normal(0.4 * shrink, sd * Math.sqrt(shrink)),
    normal(-0.3 * shrink, sd * Math.sqrt(shrink)),
  ]);
  const fitToy = async (calibrate: boolean) => {
    const net = posteriorNetwork(
      { nDims: 2, flowHidden: 16, numBlocks: 2 },
      { type: "mlp", dimIn: 2, dimOut: 8, hidden: [16] },
      [2],
    );
    const r = await snpeIS({
      net,
      prior: independent([normal(0, 1), normal(0, 1)]),
      simulator: (t: Float64Array) => [t[0]!, t[1]!],
      xObs: x,
      noise: sd,
      logLike: thetaLogLike(
        (xs, t) => -(1 / (2 * sd ** 2)) * ((xs[0]! - t[0]!) ** 2 + (xs[1]! - t[1]!) ** 2),
      ),
      nSims: 300,
      nRounds: 3,
      nEpochs: 6,
      batchSize: 20,
      lr: 3e-3,
      key: hostKey(3),
      // nbi's rounds: NLL on each round's own simulations (n_reuse = 0).
      loss: "nll",
      nReuse: 0,
      calibrateSpread: calibrate,
    });
    return { r, net };
  };
  const klTo = async (s: Surrogate) => {
    const draws = posterior.sample(hostKey(99), 4000);
    const lq = await surrogateLogProb(s, x, draws);
    const lp = posterior.logProb(draws);
    return mean(Array.from(lq, (v, i) => lp[i]! - v));
  };

  it("widens nbi's rounds' networks (NLL on each round's own draws) to the spread their held-out draws ask for, closer to the posterior", async () => {
    const on = await fitToy(true);
    const off = await fitToy(false);
    expect(off.r.history.every((h) => h.spread === undefined)).toBe(true);
    expect(off.r.state.current.scales.baseScale).toBeUndefined();
    for (const h of on.r.history) {
      // Only an NLL network trained on later rounds' draws alone is calibrated.
      const ownNll = h.loss === "nll" && h.trainedFrom! > 0;
      expect(h.spread !== undefined).toBe(ownNll);
      const kept = on.r.state.checkpoints[h.round]!;
      expect(kept.scales.baseScale).toBe(h.spread?.applied ? h.spread.tau : undefined);
    }
    // At this key the last round's network, NLL on its own draws, is narrower than the posterior.
    const last = on.r.history.at(-1)!;
    expect(last.trainedFrom).toBe(2);
    const s = last.spread!;
    expect(s.ess).toBeGreaterThanOrEqual(SELECT_MIN_ESS);
    expect(s.tau! ** 2 - 1).toBeGreaterThan(SELECT_Z * s.se!);
    expect(s.applied).toBe(true);
    // The same network with and without its fitted scale.
    const { baseScale: _, ...asTrained } = on.r.state.current.scales;
    const calibrated = await klTo(surrogateOf(on.net, on.r.state.current));
    const trained = await klTo(surrogateOf(on.net, { ...on.r.state.current, scales: asTrained }));
    expect(calibrated).toBeLessThan(trained - 0.01);
  }, 120_000);
});
