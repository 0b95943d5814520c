/**
 * The parameters' moving average in training (`emaHalfLife`): what validation scores and what a
 * round keeps. Fixed keys, a small problem with nbi's small-batch, fixed-rate, patience-1 recipe.
 */
import { describe, expect, it } from "vitest";
import { hostKey, normals } from "../../src/inference/host.js";
import {
  fitScales,
  initPosterior,
  posteriorNetwork,
  surrogateLogProb,
  surrogateOf,
} from "../../src/inference/posterior.js";
import { trainPosterior } from "../../src/inference/train.js";

/** n draws of x = θ + N(0, 0.3²) in 2-D, θ ~ N(0, 1). */
function gaussianLinear(n: number, seed: number) {
  const theta = Float64Array.from(normals(hostKey(seed), 2 * n));
  const eps = normals(hostKey(seed + 1), 2 * n);
  return { theta, x: Float32Array.from(theta, (t, i) => t + 0.3 * eps[i]!) };
}

/** 2-D θ from 2 data numbers: a small MAF and MLP featurizer. */
const smallNet = (hidden: number) =>
  posteriorNetwork(
    { nDims: 2, flowHidden: hidden, numBlocks: 2 },
    { type: "mlp", dimIn: 2, dimOut: hidden / 2, hidden: [hidden] },
    [2],
  );

describe("the parameters' moving average (emaHalfLife)", () => {
  it("smooths the validation curve and keeps a network that scores better on fresh data than the raw parameters' best", async () => {
    const net = smallNet(16);
    const params = await initPosterior(net, hostKey(3));
    const data = gaussianLinear(320, 40);
    const scales = fitScales(data.x, data.theta, net.inputShape, 2);
    // nbi's recipe: batch 32, lr = minLr, 32 held out, 40 epochs at most, patience 1.
    const train = (emaHalfLife: number) =>
      trainPosterior(net, params, scales, data, {
        nEpochs: 40,
        batchSize: 32,
        lr: 3e-3,
        minLr: 3e-3,
        earlyStopPatience: 1,
        emaHalfLife,
        key: hostKey(5),
      });
    const raw = await train(0);
    const averaged = await train(1);
    // The raw parameters' validation loss goes up and down from epoch to epoch; the average's
    // less often, so patience 1 stops it later.
    const rises = (r: typeof raw) =>
      r.epochs.filter((e, i) => i > 0 && e.valLoss > r.epochs[i - 1]!.valLoss).length /
      Math.max(1, r.epochs.length - 1);
    expect(rises(averaged)).toBeLessThan(rises(raw));
    expect(averaged.epochs.length).toBeGreaterThan(raw.epochs.length);
    // The kept networks on 4,000 fresh pairs: log q(θ | x) averaged.
    const fresh = gaussianLinear(4_000, 90);
    const score = async (r: typeof raw) => {
      const lq = await surrogateLogProb(
        surrogateOf(net, { params: r.params, scales }),
        fresh.x,
        fresh.theta,
      );
      return lq.reduce((s, v) => s + v, 0) / lq.length;
    };
    const [rawScore, averagedScore] = [await score(raw), await score(averaged)];
    expect(averagedScore).toBeGreaterThan(rawScore + 0.05);
  });

  it("refuses a negative or non-finite half-life, naming it", async () => {
    const net = smallNet(8);
    const params = await initPosterior(net, hostKey(1));
    const data = gaussianLinear(40, 2);
    const scales = fitScales(data.x, data.theta, net.inputShape, 2);
    for (const emaHalfLife of [-1, Number.NaN]) {
      await expect(
        trainPosterior(net, params, scales, data, {
          nEpochs: 1,
          batchSize: 8,
          lr: 1e-3,
          minLr: 1e-3,
          emaHalfLife,
          key: hostKey(2),
        }),
      ).rejects.toThrow(/emaHalfLife expected a number ≥ 0/);
    }
  });
});
