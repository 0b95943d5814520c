/**
 * The proof on nbi's own example: the sine light curve with nbi's budget (3 rounds × 320
 * simulations, batch 32). For each of 3 seeds, predict's importance-weighted posterior must hold
 * an n_eff of at least 1,000 of its 5,000 draws and its mean must lie within 0.2 posterior σ of a
 * brute-force quadrature reference; and the rounds must lift the proposal: the final round's
 * sampling efficiency at least 20% in the median (nbi 0.4.1: about 5%) and above the first round's.
 *
 * The bar is the staged rounds' (adaptRounds): seeds 0–2 give 23.8/39.8/40.7%; drawn from the
 * surrogate in one batch they gave 15.4/14.4/22.8% (median 15.4%), so the test fails without the
 * stages. Which seeds land high changes with the last bits of the arithmetic, hence the median
 * and the margin; `npm run bench:sine` reports five seeds (bench/RESULTS.md).
 */
import { describe, expect, it } from "vitest";
import {
  flow,
  mlpFeaturizer,
  NOISE_SIGMA,
  observation,
  priors,
  sine,
  times,
} from "../../examples/sine-model.js";
import { NBI } from "../../src/inference/engine.js";
import { weightedMoments } from "../../src/inference/importance.js";
import { sineReference } from "../helpers/sine-reference.js";
import { tempDirs } from "../helpers/temp-dirs.js";

const tempDir = tempDirs("nbi-sine-");

async function runSeed(seed: number) {
  const xObs = observation(seed);
  const path = tempDir();
  const engine = new NBI({ flow, featurizer: mlpFeaturizer, simulator: sine, priors, path, seed });
  const fit = await engine.fit({
    xObs,
    nSims: 320,
    nRounds: 3,
    nEpochs: 60,
    batchSize: 32,
    noise: NOISE_SIGMA,
    progress: false,
  });
  const post = await engine.predict(xObs, { xErr: NOISE_SIGMA, nSamples: 5000 });
  const moments = weightedMoments(post.samples, post.weights, 3);
  return { fit, post, moments, reference: sineReference(times, xObs, NOISE_SIGMA) };
}

describe("SNPE-IS on nbi's sine example", () => {
  it("weighs a posterior of n_eff ≥ 1,000 / 5,000 at the reference mean, after rounds that lift the proposal", async () => {
    const runs = [];
    for (const seed of [0, 1, 2]) runs.push(await runSeed(seed));
    const efficiencies = runs.map((r) => r.fit.history.at(-1)!.efficiency!);
    const lines = runs.map((r, s) => {
      const z = Array.from(
        r.moments.mean,
        (m, d) => (m - r.reference.mean[d]!) / r.reference.std[d]!,
      );
      return `seed ${s}: efficiency by round ${r.fit.history.map((h) => `${(100 * h.efficiency!).toFixed(1)}%`).join(" ")}, predict n_eff ${r.post.ess.toFixed(0)} k̂ ${r.post.paretoK.toFixed(2)}, mean offset/σ ${z.map((v) => v.toFixed(3)).join(" ")}`;
    });
    console.log(lines.join("\n"));
    const median = [...efficiencies].sort((a, b) => a - b)[1]!;
    expect(median).toBeGreaterThanOrEqual(0.2);
    for (const r of runs) {
      expect(r.fit.history.at(-1)!.efficiency!).toBeGreaterThan(r.fit.history[0]!.efficiency!);
      expect(r.post.ess).toBeGreaterThanOrEqual(1000);
      for (let d = 0; d < 3; d++) {
        expect(Math.abs(r.moments.mean[d]! - r.reference.mean[d]!)).toBeLessThan(
          0.2 * r.reference.std[d]!,
        );
      }
    }
  }, 600_000);
});
