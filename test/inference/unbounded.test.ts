/**
 * The flow's unbounded map of the prior's support: a bijection whose log-Jacobian is right, and a
 * surrogate built on it that puts no mass outside a bounded prior and still integrates to 1.
 */
import { describe, expect, it } from "vitest";
import { scalesToTensors, tensorsToScales } from "../../src/inference/checkpoint.js";
import { hostKey } from "../../src/inference/host.js";
import {
  fitScales,
  initPosterior,
  posteriorNetwork,
  surrogateLogProb,
  surrogateSample,
} from "../../src/inference/posterior.js";
import { independent, normal, truncatedNormal, uniform } from "../../src/inference/priors.js";
import { drawProposal, type RoundProposal } from "../../src/inference/proposals.js";
import { logNormalPdf } from "../../src/inference/special.js";
import {
  type BoundedMap,
  fromUnbounded,
  mapsExactly,
  toUnbounded,
} from "../../src/inference/unbounded.js";

const MAPS: readonly BoundedMap[] = ["logit", "probit"];
const boundsWith = (boundedMap: BoundedMap) => ({
  thetaLower: Float64Array.of(-1, 0, Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY),
  thetaUpper: Float64Array.of(2, Number.POSITIVE_INFINITY, 3, Number.POSITIVE_INFINITY),
  boundedMap,
});

describe.each(MAPS)("the unbounded map of the prior's support (%s)", (boundedMap) => {
  const bounds = boundsWith(boundedMap);
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
    expect(toUnbounded({ boundedMap }, theta, 3).u).toBe(theta);
    expect(fromUnbounded({ boundedMap }, theta, 3)).toBe(theta);
  });

  it("keeps its digits next to either bound", () => {
    const b1 = { thetaLower: Float64Array.of(-1), thetaUpper: Float64Array.of(2), boundedMap };
    for (const t of [-1 + 3e-11, 2 - 3e-11, -1 + 3e-6, 2 - 3e-6]) {
      const { u } = toUnbounded(b1, Float64Array.of(t), 1);
      const back = fromUnbounded(b1, u, 1)[0]!;
      // Relative to the distance from the nearer bound.
      const gap = Math.min(t + 1, 2 - t);
      expect(Math.abs(back - t) / gap).toBeLessThan(1e-6);
    }
  });

  it("marks the clamping band next to a bound, and nothing else", () => {
    const w = 3; // [-1, 2]
    const theta = Float64Array.of(
      ...[-1, 1, 0, 1], // on the lower bound of θ0
      ...[2 - 0.5e-12 * w, 1, 0, 1], // inside the band below θ0's upper bound
      ...[2 - 2e-12 * w, 1, 0, 1], // just outside the band
      ...[0.5, 0.5e-12, 0, 1], // inside the band of the one-sided bound of θ1
      ...[0.5, 5, 2.5, -9], // interior
    );
    expect([...mapsExactly(bounds, theta, 4)]).toEqual([0, 0, 1, 0, 1]);
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
      boundedMap,
    });
    expect(scales.boundedMap).toBe(boundedMap);
    const xObs = Float32Array.of(0.2, -0.1);
    const draws = await surrogateSample({ net, params, scales }, hostKey(3), xObs, 4000);
    expect(prior.inSupport(draws).every((v) => v === 1)).toBe(true);
    // ∫ q dθ by importance sampling from the prior: E_p[q/p] = 1.
    const fromPrior = prior.sample(hostKey(4), 40_000);
    const lq = await surrogateLogProb({ net, params, scales }, xObs, fromPrior);
    const lp = prior.logProb(fromPrior);
    const integral = lq.reduce((s, v, i) => s + Math.exp(v - lp[i]!), 0) / lq.length;
    expect(Math.abs(integral - 1)).toBeLessThan(0.05);
  });
});

describe("the probit map", () => {
  it("takes a uniform prior to the standard normal: −log w − log|du/dθ| = log φ(u)", () => {
    const b = {
      thetaLower: Float64Array.of(-3),
      thetaUpper: Float64Array.of(5),
      boundedMap: "probit" as const,
    };
    const theta = Float64Array.of(-2.999, -1, 0.3, 4.5, 4.99999);
    const { u, logJac } = toUnbounded(b, theta, 1);
    for (let i = 0; i < theta.length; i++)
      expect(-Math.log(8) - logJac[i]!).toBeCloseTo(logNormalPdf(u[i]!), 9);
  });
});

describe("proposals on the unbounded image", () => {
  it("redraw the flow's draws that round onto a bound, count them in the mass, and give them no density", async () => {
    const prior = independent([uniform(-1, 1), uniform(0, 2)]);
    const net = posteriorNetwork(
      { nDims: 2, flowHidden: 8, numBlocks: 1 },
      { type: "mlp", dimIn: 2, dimOut: 4, hidden: [8] },
      [2],
    );
    const params = await initPosterior(net, hostKey(5));
    const fitted = fitScales(
      new Float32Array(400),
      prior.sample(hostKey(6), 200),
      [1, 2],
      2,
      undefined,
      {
        thetaLower: prior.lower,
        thetaUpper: prior.upper,
        boundedMap: "probit",
      },
    );
    // A surrogate far wider than the prior's image: many of its draws land beyond the probit's
    // last exactly mapped point (|u| ≈ 7.03), so on the bound itself.
    const scales = { ...fitted, thetaStd: Float64Array.of(6, 6) };
    const xObs = Float32Array.of(0, 0);
    const raw = await surrogateSample({ net, params, scales }, hostKey(7), xObs, 20_000);
    const exactRaw = mapsExactly(scales, raw, 2);
    const inside = exactRaw.reduce((s, v) => s + v, 0) / exactRaw.length;
    expect(inside).toBeLessThan(0.9);
    expect(inside).toBeGreaterThan(0.3);
    // Their density is zero: a value at the clamp would not be the density that drew them.
    const lq = await surrogateLogProb({ net, params, scales }, xObs, raw);
    for (let i = 0; i < lq.length; i++) expect(Number.isFinite(lq[i]!)).toBe(exactRaw[i] === 1);
    const plan: RoundProposal = {
      parts: [{ weight: 1, part: { kind: "surrogate", round: 0, logMass: 0 } }],
    };
    const ctx = { net, prior, xObs, checkpoints: [{ params, scales }] };
    const draw = await drawProposal(ctx, plan, hostKey(8), 4000, {
      kind: "surrogate",
      truncationEps: 1e-4,
    });
    expect(mapsExactly(scales, draw.theta, 2).every((v) => v === 1)).toBe(true);
    expect(draw.redrawn).toBeGreaterThan(0);
    const part = draw.proposal.parts[0]!.part;
    if (part.kind !== "surrogate") throw new Error("expected the surrogate part");
    // The estimated mass is the exactly mapped share of the surrogate's own draws.
    expect(Math.exp(part.logMass)).toBeCloseTo(inside, 1);
  });
});

describe("a checkpoint's scales", () => {
  it("keep the probit map, and read as the logit when saved without it", () => {
    const base = {
      xMean: Float64Array.of(0),
      xStd: Float64Array.of(1),
      thetaMean: Float64Array.of(0.1),
      thetaStd: Float64Array.of(2),
      thetaLower: Float64Array.of(-1),
      thetaUpper: Float64Array.of(1),
    };
    const probit = tensorsToScales(scalesToTensors({ ...base, boundedMap: "probit" }), "test");
    expect(probit.boundedMap).toBe("probit");
    expect([...probit.thetaUpper!]).toEqual([1]);
    const logit = tensorsToScales(scalesToTensors(base), "test");
    expect(logit.boundedMap).toBeUndefined();
    const theta = Float64Array.of(0.9);
    expect(toUnbounded(logit, theta, 1).u[0]).toBeCloseTo(Math.log(1.9 / 0.1), 12);
  });
});
