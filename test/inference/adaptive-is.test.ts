import { describe, expect, it } from "vitest";
import { NBI, priors } from "../../src/index.js";
import {
  balanceLogDensity,
  CHOOSE_MIN_ESS,
  chooseComponents,
  temperedWeights,
} from "../../src/inference/adaptive-is.js";
import { hostKey, normals } from "../../src/inference/host.js";
import { importanceWeights, kishEss as kish } from "../../src/inference/importance.js";
import { tempDirs } from "../helpers/temp-dirs.js";

describe("temperedWeights", () => {
  const lw = Float64Array.from({ length: 400 }, (_, i) => (i === 0 ? 0 : -8 - (i % 37) * 0.3));
  const w = importanceWeights(lw).weights;

  it("raises degenerate weights to the power that brings their ESS to the floor, order kept", () => {
    expect(kish(w)).toBeLessThan(2);
    const t = temperedWeights(w, 60);
    expect(kish(t)).toBeGreaterThan(59.9);
    expect(kish(t)).toBeLessThan(61);
    expect(t.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    for (let i = 1; i < w.length; i++) {
      expect(Math.sign(t[i]! - t[i - 1]!)).toBe(Math.sign(w[i]! - w[i - 1]!));
    }
  });

  it("leaves weights whose ESS is already at the floor as they are (normalised)", () => {
    const flat = Float64Array.from({ length: 100 }, (_, i) => 1 + (i % 3));
    const t = temperedWeights(flat, 50);
    const total = flat.reduce((a, b) => a + b, 0);
    for (let i = 0; i < flat.length; i++) expect(t[i]).toBeCloseTo(flat[i]! / total, 14);
  });
});

describe("chooseComponents (the adapted mixture's size, by a held-out score)", () => {
  // A posterior of twelve narrow modes on a circle, weighed draws from a broad normal: eight
  // components cannot give each mode its own, sixteen can.
  const modes = 12;
  const target = (x: number, y: number) => {
    const terms: number[] = [];
    for (let m = 0; m < modes; m++) {
      const a = (2 * Math.PI * m) / modes;
      terms.push(-((x - 5 * Math.cos(a)) ** 2 + (y - 5 * Math.sin(a)) ** 2) / (2 * 0.3 ** 2));
    }
    const top = Math.max(...terms);
    return top + Math.log(terms.reduce((s, t) => s + Math.exp(t - top), 0));
  };
  const weighed = (n: number, seed: number) => {
    const z = normals(hostKey(seed), 2 * n);
    const u = z.map((v) => 4 * v);
    const logTarget = new Float64Array(n);
    const lw = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const [x, y] = [u[2 * i]!, u[2 * i + 1]!];
      logTarget[i] = target(x, y);
      lw[i] = logTarget[i]! + (x * x + y * y) / 32; // − log q up to a constant
    }
    const weights = importanceWeights(lw).weights;
    return { u, logTarget, weights, logJac: new Float64Array(n) };
  };

  it("takes sixteen components for twelve modes when the draws carry enough weight", () => {
    const { u, logTarget, weights, logJac } = weighed(20_000, 3);
    const k = chooseComponents(u, logJac, weights, weights, logTarget, 2, hostKey(4));
    expect(k).toBe(16);
  });

  it("takes eight unscored when half the draws hold fewer than CHOOSE_MIN_ESS effective ones", () => {
    const { u, logTarget, weights, logJac } = weighed(600, 3);
    expect(kish(weights.filter((_, i) => i % 2 === 1))).toBeLessThan(CHOOSE_MIN_ESS);
    expect(chooseComponents(u, logJac, weights, weights, logTarget, 2, hostKey(4))).toBe(8);
  });
});

describe("balanceLogDensity (the stages as one deterministic mixture)", () => {
  // Target N(0, 1) (normalised: Z = 1), two stages: N(−1, 1) and a poor N(2.5, 0.5²).
  const logNormal = (x: number, m: number, s: number) =>
    -0.5 * ((x - m) / s) ** 2 - Math.log(s) - 0.5 * Math.log(2 * Math.PI);
  const z = normals(hostKey(21), 30_000);
  const sizes = [20_000, 10_000];
  const theta = Float64Array.from(z, (v, i) => (i < sizes[0]! ? -1 + v : 2.5 + 0.5 * v));
  const logQ = [
    Float64Array.from(theta, (t) => logNormal(t, -1, 1)),
    Float64Array.from(theta, (t) => logNormal(t, 2.5, 0.5)),
  ];
  const logTarget = Float64Array.from(theta, (t) => logNormal(t, 0, 1));

  it("weighs every draw against all stages' proposals: exact mean, evidence 1", () => {
    const lq = balanceLogDensity(sizes, logQ);
    const imp = importanceWeights(logTarget.map((v, i) => v - lq[i]!));
    let mean = 0;
    imp.weights.forEach((w, i) => {
      mean += w * theta[i]!;
    });
    expect(Math.abs(mean)).toBeLessThan(0.03);
    expect(Math.abs(imp.logEvidence)).toBeLessThan(4 * imp.logEvidenceSe + 0.005);
    // The poor stage's draws in the target's tail get moderate weights, not the largest ones.
    expect(imp.paretoK).toBeLessThan(0.5);
  });

  it("is the log of Σ (n_g / N) q_g", () => {
    const lq = balanceLogDensity(sizes, logQ);
    for (const i of [0, 123, 25_000]) {
      const want = Math.log((2 / 3) * Math.exp(logQ[0]![i]!) + (1 / 3) * Math.exp(logQ[1]![i]!));
      expect(lq[i]).toBeCloseTo(want, 10);
    }
  });
});

describe("predict's adaptive stages", () => {
  // θ ~ U(−3, 3)³, x = (θ, θ) + N(0, 0.3²): the posterior is Gaussian per dimension (mean of the
  // two copies, sd 0.3/√2), far inside the box; the evidence is analytic.
  const sigma = 0.3;
  const truth = [0.4, -1.1, 1.7];
  const eps = normals(hostKey(7), 6);
  const xObs = Float64Array.from({ length: 6 }, (_, i) => truth[i % 3]! + sigma * eps[i]!);
  const path = tempDirs("nbi-adaptive-")();

  it("lifts the ESS of a poor surrogate at the same simulation cost, and stays exact", async () => {
    const engine = new NBI({
      flow: { nDims: 3, flowHidden: 16, numBlocks: 2 },
      featurizer: { type: "mlp", dimIn: 6, dimOut: 8, hidden: [32] },
      simulator: (t: ArrayLike<number>) =>
        Float64Array.of(t[0]!, t[1]!, t[2]!, t[0]!, t[1]!, t[2]!),
      priors: [priors.uniform(-3, 3), priors.uniform(-3, 3), priors.uniform(-3, 3)],
      path,
      seed: 3,
    });
    // A deliberately rough amortized surrogate: few simulations, few epochs.
    await engine.fit({ nSims: 300, nEpochs: 8, batchSize: 32, noise: sigma, progress: false });
    const plain = await engine.predict(xObs, { xErr: sigma, nSamples: 2000, adapt: false });
    const adapted = await engine.predict(xObs, { xErr: sigma, nSamples: 2000 });
    expect(adapted.nSimulations).toBe(plain.nSimulations);
    expect(adapted.samples.length).toBe(plain.samples.length);
    expect(plain.efficiency).toBeLessThan(0.5); // the pilot must have called for adaptation
    expect(adapted.ess).toBeGreaterThan(2 * plain.ess);
    expect(adapted.ess).toBeGreaterThan(500);
    const sd = sigma / Math.SQRT2;
    for (let k = 0; k < 3; k++) {
      let m = 0;
      for (let i = 0; i < 2000; i++) m += adapted.weights[i]! * adapted.samples[3 * i + k]!;
      expect(Math.abs(m - (xObs[k]! + xObs[k + 3]!) / 2)).toBeLessThan(0.1 * sd);
    }
    // log Z = Σ_k log N(x_k − x_{k+3}; 0, 2σ²) − 3 log 6 (the box holds all the mass).
    let logZ = -3 * Math.log(6);
    for (let k = 0; k < 3; k++)
      logZ +=
        (-0.5 * (xObs[k]! - xObs[k + 3]!) ** 2) / (2 * sigma * sigma) -
        0.5 * Math.log(2 * Math.PI * 2 * sigma * sigma);
    expect(Math.abs(adapted.logEvidence - logZ)).toBeLessThan(4 * adapted.logEvidenceSe + 0.01);
  }, 60_000);
});
