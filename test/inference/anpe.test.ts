/**
 * Amortized NPE on a Gaussian-linear problem with an analytic posterior: x = Mθ + N(0, σ²I),
 * θ ~ N(0, I). One fit from the prior; then many observations at once through sampleBatch. The
 * surrogate's posterior means must match the analytic ones, and its 68% and 95% central intervals
 * must cover the true θ as often as they claim, within Monte-Carlo error.
 */
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { NBI } from "../../src/inference/engine.js";
import { hostKey, keyAt, normals } from "../../src/inference/host.js";
import { normal } from "../../src/inference/priors.js";
import { tempDirs } from "../helpers/temp-dirs.js";

const M = [
  [1.0, 0.5],
  [0.3, -1.0],
  [-0.8, 0.2],
  [0.5, 0.9],
  [1.2, -0.4],
  [-0.2, 0.7],
];
const SIGMA = 0.5;
const simulate = (theta: ArrayLike<number>) =>
  Float64Array.from(M, (row) => row[0]! * theta[0]! + row[1]! * theta[1]!);

/** Posterior N(μ, Σ) with Σ = (I + MᵀM/σ²)⁻¹ and μ = Σ Mᵀ x / σ². */
function analytic(x: ArrayLike<number>) {
  let a = 1;
  let b = 0;
  let d = 1;
  let u = 0;
  let v = 0;
  M.forEach((row, i) => {
    a += (row[0]! * row[0]!) / SIGMA ** 2;
    b += (row[0]! * row[1]!) / SIGMA ** 2;
    d += (row[1]! * row[1]!) / SIGMA ** 2;
    u += (row[0]! * x[i]!) / SIGMA ** 2;
    v += (row[1]! * x[i]!) / SIGMA ** 2;
  });
  const det = a * d - b * b;
  const cov = [d / det, -b / det, a / det]; // Σ00, Σ01, Σ11
  return {
    mean: [cov[0]! * u + cov[1]! * v, cov[1]! * u + cov[2]! * v],
    std: [Math.sqrt(cov[0]!), Math.sqrt(cov[2]!)],
  };
}

/** log N(x; 0, MMᵀ + σ²I): the exact evidence p(x), by Cholesky. */
function logEvidence(x: ArrayLike<number>): number {
  const n = M.length;
  const a = M.map((ri, i) =>
    M.map((rj, j) => ri[0]! * rj[0]! + ri[1]! * rj[1]! + (i === j ? SIGMA ** 2 : 0)),
  );
  const l = a.map(() => new Array<number>(n).fill(0));
  for (let i = 0; i < n; i++)
    for (let j = 0; j <= i; j++) {
      let s = a[i]![j]!;
      for (let k = 0; k < j; k++) s -= l[i]![k]! * l[j]![k]!;
      l[i]![j] = i === j ? Math.sqrt(s) : s / l[j]![j]!;
    }
  const z = new Array<number>(n).fill(0);
  let logDet = 0;
  for (let i = 0; i < n; i++) {
    let s = x[i]!;
    for (let k = 0; k < i; k++) s -= l[i]![k]! * z[k]!;
    z[i] = s / l[i]![i]!;
    logDet += 2 * Math.log(l[i]![i]!);
  }
  return -0.5 * (z.reduce((acc, v) => acc + v * v, 0) + logDet + n * Math.log(2 * Math.PI));
}

const path = tempDirs("nbi-anpe-")();

describe("amortized NPE", () => {
  it("matches the analytic Gaussian-linear posterior over many observations", async () => {
    const engine = new NBI({
      flow: { nDims: 2, flowHidden: 32, numBlocks: 3 },
      featurizer: { type: "mlp", dimIn: 6, dimOut: 16, hidden: [64] },
      simulator: simulate,
      priors: { a: normal(0, 1), b: normal(0, 1) },
      path,
      seed: 1,
    });
    const fit = await engine.fit({
      nSims: 3000,
      nEpochs: 25,
      batchSize: 128,
      lr: 2e-3,
      noise: SIGMA,
      progress: false,
    });
    expect(fit.history).toHaveLength(1);
    expect(fit.history[0]!.nEff).toBeUndefined(); // no observation: no importance weights

    const nObs = 200;
    const nDraws = 500;
    const thetaTrue = normals(keyAt(hostKey(99), 0), 2 * nObs);
    const eps = normals(keyAt(hostKey(99), 1), 6 * nObs);
    const xs = new Float64Array(6 * nObs);
    for (let o = 0; o < nObs; o++) {
      const x = simulate(thetaTrue.subarray(2 * o, 2 * o + 2));
      for (let i = 0; i < 6; i++) xs[6 * o + i] = x[i]! + SIGMA * eps[6 * o + i]!;
    }
    const draws = await engine.sampleBatch(xs, nDraws);
    expect(draws.length).toBe(nObs * nDraws * 2);

    let meanError = 0;
    const covered = { 68: 0, 95: 0 };
    for (let o = 0; o < nObs; o++) {
      const exact = analytic(xs.subarray(6 * o, 6 * o + 6));
      for (let j = 0; j < 2; j++) {
        const column = Float64Array.from(
          { length: nDraws },
          (_, k) => draws[(o * nDraws + k) * 2 + j]!,
        ).sort();
        const mean = column.reduce((s, v) => s + v, 0) / nDraws;
        meanError += Math.abs(mean - exact.mean[j]!) / exact.std[j]!;
        const q = (p: number) => column[Math.min(nDraws - 1, Math.floor(p * nDraws))]!;
        const t = thetaTrue[2 * o + j]!;
        if (t >= q(0.16) && t <= q(0.84)) covered[68]++;
        if (t >= q(0.025) && t <= q(0.975)) covered[95]++;
      }
    }
    const n = 2 * nObs;
    meanError /= n;
    const c68 = covered[68] / n;
    const c95 = covered[95] / n;
    console.log(
      `mean |Δμ|/σ ${meanError.toFixed(3)}, coverage 68%: ${(100 * c68).toFixed(1)}%, 95%: ${(100 * c95).toFixed(1)}%`,
    );
    // Posterior means within a fifth of a posterior σ on average (the draws' own MC error is 0.045σ).
    expect(meanError).toBeLessThan(0.2);
    // Coverage within 3 binomial standard errors of the nominal level.
    expect(Math.abs(c68 - 0.68)).toBeLessThan(3 * Math.sqrt((0.68 * 0.32) / n));
    expect(Math.abs(c95 - 0.95)).toBeLessThan(3 * Math.sqrt((0.95 * 0.05) / n));
  }, 300_000);

  it("SNPE-IS: the importance-sampling evidence matches the analytic p(xObs) within its standard error", async () => {
    const engine = new NBI({
      flow: { nDims: 2, flowHidden: 32, numBlocks: 3 },
      featurizer: { type: "mlp", dimIn: 6, dimOut: 16, hidden: [64] },
      simulator: simulate,
      priors: { a: normal(0, 1), b: normal(0, 1) },
      path: join(path, "snpe"),
      seed: 2,
    });
    const eps = normals(keyAt(hostKey(5), 0), 6);
    const xObs = simulate([0.4, -0.7]).map((v, i) => v + SIGMA * eps[i]!);
    await engine.fit({
      xObs,
      nSims: 400,
      nRounds: 2,
      nEpochs: 20,
      batchSize: 64,
      lr: 2e-3,
      noise: SIGMA,
      progress: false,
    });
    const post = await engine.predict(xObs, { xErr: SIGMA, nSamples: 4000 });
    const exact = logEvidence(xObs);
    console.log(
      `log Z: ${post.logEvidence.toFixed(4)} ± ${post.logEvidenceSe.toFixed(4)} (exact ${exact.toFixed(4)}), n_eff ${post.ess.toFixed(0)}, k̂ ${post.paretoK.toFixed(2)}`,
    );
    expect(Math.abs(post.logEvidence - exact)).toBeLessThan(4 * post.logEvidenceSe + 0.01);
    const exactPost = analytic(xObs);
    const w = post.weights;
    for (let j = 0; j < 2; j++) {
      let m = 0;
      for (let i = 0; i < w.length; i++) m += w[i]! * post.samples[2 * i + j]!;
      expect(Math.abs(m - exactPost.mean[j]!)).toBeLessThan(0.1 * exactPost.std[j]!);
    }
  }, 300_000);
});
