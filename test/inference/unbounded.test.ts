/**
 * The flow's unbounded map of the prior's support: a bijection whose log-Jacobian is right, and a
 * surrogate built on it that puts no mass outside a bounded prior and still integrates to 1.
 */
import { describe, expect, it } from "vitest";
import { hostKey } from "../../src/inference/host.js";
import {
  fitScales,
  initPosterior,
  posteriorNetwork,
  surrogateLogProb,
  surrogateSample,
} from "../../src/inference/posterior.js";
import { independent, normal, truncatedNormal, uniform } from "../../src/inference/priors.js";
import { fromUnbounded, toUnbounded } from "../../src/inference/unbounded.js";

const bounds = {
  thetaLower: Float64Array.of(-1, 0, Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY),
  thetaUpper: Float64Array.of(2, Number.POSITIVE_INFINITY, 3, Number.POSITIVE_INFINITY),
};

describe("the unbounded map of the prior's support", () => {
  it("round-trips, and its log-Jacobian is the log-derivative (central differences)", () => {
    const theta = Float64Array.of(0.7, 2.5, -4, 1.5, -0.99, 1e-3, 2.9, -7);
    const { u, logJac } = toUnbounded(bounds, theta, 4);
    const back = fromUnbounded(bounds, u, 4);
    for (let i = 0; i < theta.length; i++) expect(back[i]).toBeCloseTo(theta[i]!, 10);
    for (let r = 0; r < 2; r++) {
      let fd = 0;
      for (let j = 0; j < 4; j++) {
        const h = 1e-6;
        const plus = Float64Array.from(theta.subarray(4 * r, 4 * r + 4));
        const minus = Float64Array.from(plus);
        plus[j]! += h;
        minus[j]! -= h;
        const du =
          (toUnbounded(bounds, plus, 4).u[j]! - toUnbounded(bounds, minus, 4).u[j]!) / (2 * h);
        fd += Math.log(Math.abs(du));
      }
      expect(logJac[r]).toBeCloseTo(fd, 5);
    }
  });

  it("is the identity without bounds", () => {
    const theta = Float64Array.of(1, 2, 3);
    expect(toUnbounded({}, theta, 3).u).toBe(theta);
    expect(fromUnbounded({}, theta, 3)).toBe(theta);
  });

  it("a surrogate on it draws only inside a bounded prior, and its density integrates to 1 there", async () => {
    const prior = independent([
      uniform(-1, 2),
      truncatedNormal(0, 1, 0, Number.POSITIVE_INFINITY),
      normal(0, 2),
    ]);
    const net = posteriorNetwork(
      { nDims: 3, flowHidden: 16, numBlocks: 2 },
      { type: "mlp", dimIn: 2, dimOut: 8, hidden: [16] },
      [2],
    );
    const params = await initPosterior(net, hostKey(1));
    const theta = prior.sample(hostKey(2), 500);
    const scales = fitScales(new Float32Array(1000), theta, [1, 2], 3, undefined, {
      thetaLower: prior.lower,
      thetaUpper: prior.upper,
    });
    const xObs = Float32Array.of(0.2, -0.1);
    const draws = await surrogateSample(net, params, scales, hostKey(3), xObs, 4000);
    expect(prior.inSupport(draws).every((v) => v === 1)).toBe(true);
    // ∫ q dθ by importance sampling from the prior: E_p[q/p] = 1.
    const fromPrior = prior.sample(hostKey(4), 40_000);
    const lq = await surrogateLogProb(net, params, scales, xObs, fromPrior);
    const lp = prior.logProb(fromPrior);
    const integral = lq.reduce((s, v, i) => s + Math.exp(v - lp[i]!), 0) / lq.length;
    expect(Math.abs(integral - 1)).toBeLessThan(0.05);
  });
});
