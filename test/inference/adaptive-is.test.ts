import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { NBI, priors } from "../../src/index.js";
import { combineStages } from "../../src/inference/adaptive-is.js";
import { hostKey, normals } from "../../src/inference/host.js";
import { importanceWeights } from "../../src/inference/importance.js";

describe("combineStages", () => {
  const lw0 = normals(hostKey(1), 400);
  const lw1 = normals(hostKey(2), 300).map((v) => 0.2 * v - 1);

  it("one stage is plain importance weighting, its evidence shifted by the offset", () => {
    const one = combineStages([{ logWeights: lw0, logEvidenceOffset: -0.5 }]);
    const plain = importanceWeights(lw0);
    expect([...one.weights]).toEqual([...plain.weights]);
    expect(one.nEff).toBe(plain.nEff);
    expect(one.logEvidence).toBeCloseTo(plain.logEvidence - 0.5, 12);
  });

  it("stages count in proportion to their ESS, the evidence likewise", () => {
    const both = combineStages([
      { logWeights: lw0, logEvidenceOffset: 0 },
      { logWeights: lw1, logEvidenceOffset: 0 },
    ]);
    const a = importanceWeights(lw0);
    const b = importanceWeights(lw1);
    const share = a.kishEss / (a.kishEss + b.kishEss);
    let first = 0;
    for (let i = 0; i < 400; i++) first += both.weights[i]!;
    expect(first).toBeCloseTo(share, 10);
    expect(both.weights[500]! / b.weights[100]!).toBeCloseTo(1 - share, 10);
    const z = share * Math.exp(a.logEvidence) + (1 - share) * Math.exp(b.logEvidence);
    expect(both.logEvidence).toBeCloseTo(Math.log(z), 10);
    expect(both.logEvidenceSe).toBeGreaterThan(0);
    expect(both.logEvidenceSe).toBeLessThan(Math.max(a.logEvidenceSe, b.logEvidenceSe));
  });
});

describe("predict's adaptive stages", () => {
  // θ ~ U(−3, 3)³, x = (θ, θ) + N(0, 0.3²): the posterior is Gaussian per dimension (mean of the
  // two copies, sd 0.3/√2), far inside the box; the evidence is analytic.
  const sigma = 0.3;
  const truth = [0.4, -1.1, 1.7];
  const eps = normals(hostKey(7), 6);
  const xObs = Float64Array.from({ length: 6 }, (_, i) => truth[i % 3]! + sigma * eps[i]!);
  const path = mkdtempSync(join(os.tmpdir(), "nbi-adaptive-"));
  afterAll(() => rmSync(path, { recursive: true, force: true }));

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
