/**
 * Light curves as they come (issue 18): missing points and per-point error bars. Units: the
 * gapped model's training draws (missing fractions, sigma ranges), the host encoding of an
 * observation with NaN against the training encoding, the masked Gaussian likelihood against a
 * brute-force sum, and the validation errors. The proof, on y_t = a·sin(ωt) + b with ω known and
 * Gaussian priors (a linear-Gaussian model, so the posterior is analytic whatever points are
 * missing): with 30% of the points missing and a sigma per point, predict's weighted posterior
 * matches the analytic means within 0.1 σ, sampleBatch serves light curves of different gaps and
 * errors in one call, and the amortized network's coverage on gapped observations is calibrated.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { resolveConfig } from "../../src/cli/config.js";
import { NbiError } from "../../src/errors.js";
import { NBI } from "../../src/inference/engine.js";
import {
  drawGaps,
  encodeGapped,
  encodePacked,
  type GappedLightCurves,
  gappedLightCurves,
  gappedTrainingInput,
  packObservations,
  sampleGappedObservations,
} from "../../src/inference/gaps.js";
import { hostKey, keyAt, normals, permutation, uniforms } from "../../src/inference/host.js";
import { gaussianLogLike, maskedGaussianLogLike } from "../../src/inference/likelihood.js";
import {
  deviceKey,
  initPosterior,
  posteriorNetwork,
  surrogateSample,
} from "../../src/inference/posterior.js";
import { normal } from "../../src/inference/priors.js";
import * as np from "../../src/ops/np.js";
import * as random from "../../src/ops/random.js";
import type { Array as NdArray } from "../../src/trace/array.js";
import { jit } from "../../src/transforms/jit.js";
import { tempDirs } from "../helpers/temp-dirs.js";

const runs = tempDirs("nbi-gaps-")();

const data = async (a: NdArray) => Float64Array.from((await a.data()) as ArrayLike<number>);

describe("the gapped observation model's training draws", () => {
  const B = 400;
  const L = 50;
  const x = np.reshape(np.array(new Float32Array(B * L).fill(2), { dtype: "float32" }), [B, 1, L]);
  const theta = np.zeros([B, 2], { dtype: "float32" });

  it("draws each light curve's missing fraction from the range and sigmas log-uniformly in theirs", async () => {
    const model = gappedLightCurves({ missing: [0.1, 0.5], sigma: [0.05, 0.2] });
    const { observed, sigma, noisy } = drawGaps(model, random.key(1), x, theta);
    const [o, s, y] = await Promise.all([data(observed), data(sigma), data(noisy)]);
    const rowFractions = Array.from({ length: B }, (_, i) => {
      let missing = 0;
      for (let l = 0; l < L; l++) missing += 1 - o[i * L + l]!;
      return missing / L;
    });
    const mean = rowFractions.reduce((a, b) => a + b, 0) / B;
    const sd = Math.sqrt(rowFractions.reduce((a, f) => a + (f - mean) ** 2, 0) / B);
    // Uniform(0.1, 0.5): mean 0.3; its sd 0.115 plus the binomial spread within a curve (≈ 0.06).
    expect(Math.abs(mean - 0.3)).toBeLessThan(0.02);
    expect(sd).toBeGreaterThan(0.1);
    expect(sd).toBeLessThan(0.17);
    expect(Math.min(...rowFractions)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...rowFractions)).toBeLessThan(0.8);
    expect(o.every((v) => v === 0 || v === 1)).toBe(true);
    // Sigmas inside [0.05, 0.2], log-uniform: the mean of log σ is the range's midpoint.
    expect(Math.min(...s)).toBeGreaterThanOrEqual(0.05 * (1 - 1e-6));
    expect(Math.max(...s)).toBeLessThanOrEqual(0.2 * (1 + 1e-6));
    const logMean = s.reduce((a, v) => a + Math.log(v), 0) / s.length;
    expect(Math.abs(logMean - 0.5 * (Math.log(0.05) + Math.log(0.2)))).toBeLessThan(0.02);
    // The noise has the drawn sigmas: (y − x)/σ is standard normal.
    const z = Array.from(y, (v, k) => (v - 2) / s[k]!);
    const zMean = z.reduce((a, b) => a + b, 0) / z.length;
    const zSd = Math.sqrt(z.reduce((a, v) => a + (v - zMean) ** 2, 0) / z.length);
    expect(Math.abs(zMean)).toBeLessThan(0.03);
    expect(Math.abs(zSd - 1)).toBeLessThan(0.03);
  });

  it("a fixed fraction and sigma stay fixed; a mask sampler replaces the fraction", async () => {
    const fixed = gappedLightCurves({ missing: 0.3, sigma: 0.1 });
    const draws = drawGaps(fixed, random.key(2), x, theta);
    const o = await data(draws.observed);
    const missing = 1 - o.reduce((a, b) => a + b, 0) / o.length;
    expect(Math.abs(missing - 0.3)).toBeLessThan(0.01);
    expect((await data(draws.sigma)).every((v) => Math.abs(v - 0.1) < 1e-7)).toBe(true);
    // Gaps in one run: the last 10 points of every curve.
    const run = gappedLightCurves({
      missing: (_key, shape) =>
        np.broadcastTo(
          np.array(
            Float32Array.from({ length: shape[2] }, (_, l) => (l < shape[2] - 10 ? 1 : 0)),
            {
              dtype: "float32",
            },
          ),
          [...shape],
        ),
      sigma: [0.1, 0.2],
    });
    const r = await data(drawGaps(run, random.key(3), x, theta).observed);
    expect(r.slice(0, L)).toEqual(Float64Array.from({ length: L }, (_, l) => (l < L - 10 ? 1 : 0)));
  });
});

describe("encoding", () => {
  const C = 2;
  const L = 6;
  const m = 3;
  const xMean = Float64Array.of(1, -2);
  const xStd = Float64Array.of(2, 0.5);
  const column = (a: Float64Array) =>
    np.reshape(np.array(Float32Array.from(a), { dtype: "float32" }), [C, 1]);
  const x = Float64Array.from(normals(hostKey(4), m * C * L), (v) => 3 * v);
  const theta = new Float64Array(m * 2);
  const model = gappedLightCurves({ missing: [0.2, 0.6], sigma: [0.1, 1] });

  it("an observation with NaN encodes exactly as training encodes its gaps", async () => {
    const key = deviceKey(keyAt(hostKey(5), 0));
    const packed = await sampleGappedObservations(model, key, x, theta, [C, L], 2);
    expect(packed.some(Number.isNaN)).toBe(true);
    const host = await data(encodePacked(packed, [C, L], xMean, xStd));
    const xs = np.reshape(np.array(Float32Array.from(x), { dtype: "float32" }), [m, C, L]);
    const ts = np.zeros([m, 2], { dtype: "float32" });
    const eager = await data(gappedTrainingInput(model, key, xs, ts, column(xMean), column(xStd)));
    const traced = await data(
      jit((k: NdArray, a: NdArray, t: NdArray, mu: NdArray, sd: NdArray) =>
        gappedTrainingInput(model, k, a, t, mu, sd),
      )(key, xs, ts, column(xMean), column(xStd)),
    );
    expect(host.length).toBe(m * 3 * C * L);
    for (let i = 0; i < host.length; i++) {
      expect(host[i]!).toBeCloseTo(eager[i]!, 5);
      expect(traced[i]!).toBeCloseTo(eager[i]!, 5);
    }
    // Brute force: channel c holds (value − mean)/std or 0, channel C + c the mask, 2C + c σ/std.
    const size = C * L;
    for (let i = 0; i < m; i++)
      for (let c = 0; c < C; c++)
        for (let l = 0; l < L; l++) {
          const v = packed[2 * i * size + c * L + l]!;
          const s = packed[(2 * i + 1) * size + c * L + l]!;
          const at = (ch: number) => host[i * 3 * size + ch * L + l]!;
          const seen = !Number.isNaN(v);
          expect(at(c)).toBeCloseTo(seen ? (v - xMean[c]!) / xStd[c]! : 0, 4);
          expect(at(C + c)).toBe(seen ? 1 : 0);
          expect(at(2 * C + c)).toBeCloseTo(seen ? s / xStd[c]! : 0, 5);
        }
  });

  it("packs observations and their error bars, checking every observed point", () => {
    const obs = Float64Array.of(1, Number.NaN, 3, 4);
    const p = packObservations(
      "predict",
      { x: "xObs", err: "xErr" },
      obs,
      [0.1, Number.NaN, 0.3, 0.4],
      4,
    );
    expect(Array.from(p.packed.slice(0, 4))).toEqual([1, Number.NaN, 3, 4]);
    expect(Array.from(p.packed.slice(4)).map((v) => (Number.isNaN(v) ? v : +v.toFixed(4)))).toEqual(
      [0.1, Number.NaN, 0.3, 0.4],
    );
    expect(p.missingFraction[0]).toBe(0.25);
    expect(p.sigmaRange[0]).toBeCloseTo(0.1, 6);
    const pack = (v: ArrayLike<number>, e: unknown) =>
      packObservations("predict", { x: "xObs", err: "xErr" }, Float64Array.from(v), e, 4);
    expect(() => pack(obs, undefined)).toThrow(
      /predict: xErr expected the observation's error bars .*, got undefined/,
    );
    expect(() => pack(obs, [0.1, 0.2])).toThrow(
      /predict: xErr expected one sigma, 4 sigmas \(one per point\), got 2 sigmas/,
    );
    expect(() => pack(obs, [0.1, 0.2, Number.NaN, 0.4])).toThrow(
      /predict: xErr\[2\] expected a finite sigma > 0 \(xObs\[2\] is observed\), got NaN/,
    );
    expect(() => pack(obs, -1)).toThrow(/predict: xErr expected a finite sigma > 0 .*got -1/);
    expect(() => pack([1, Number.POSITIVE_INFINITY, 3, 4], 0.1)).toThrow(
      /predict: xObs\[1\] expected a finite value or NaN \(a missing point\), got Infinity/,
    );
    expect(() => pack([Number.NaN, Number.NaN, Number.NaN, Number.NaN], 0.1)).toThrow(
      /predict: xObs expected at least one observed \(non-NaN\) point per observation, got every point NaN/,
    );
  });
});

describe("the masked Gaussian likelihood", () => {
  it("sums over the observed points only, as a brute-force sum does", () => {
    const size = 40;
    const u = uniforms(hostKey(6), 3 * size);
    const sigma = Float64Array.from({ length: size }, (_, i) => 0.1 + u[i]!);
    const xSim = Float32Array.from({ length: size }, (_, i) => Math.sin(i / 3));
    const xObs = Float64Array.from({ length: size }, (_, i) =>
      u[size + i]! < 0.3 ? Number.NaN : xSim[i]! + sigma[i]! * (u[2 * size + i]! - 0.5),
    );
    const sigmaWithNaN = Float64Array.from(sigma, (s, i) =>
      Number.isNaN(xObs[i]!) ? Number.NaN : s,
    );
    let brute = 0;
    const kept: number[] = [];
    for (let i = 0; i < size; i++) {
      if (Number.isNaN(xObs[i]!)) continue;
      kept.push(i);
      brute +=
        -0.5 * ((xObs[i]! - xSim[i]!) / sigma[i]!) ** 2 -
        Math.log(sigma[i]! * Math.sqrt(2 * Math.PI));
    }
    expect(kept.length).toBeLessThan(size);
    const theta = Float64Array.of(0);
    expect(maskedGaussianLogLike(sigma, size)(xObs, xSim, theta)).toBeCloseTo(brute, 10);
    expect(maskedGaussianLogLike(sigmaWithNaN, size)(xObs, xSim, theta)).toBeCloseTo(brute, 10);
    // The same as the plain Gaussian likelihood on the observed subset.
    const subset = gaussianLogLike(
      kept.map((i) => sigma[i]!),
      kept.length,
    )(
      Float64Array.from(kept, (i) => xObs[i]!),
      Float32Array.from(kept, (i) => xSim[i]!),
      theta,
    );
    expect(maskedGaussianLogLike(sigma, size)(xObs, xSim, theta)).toBeCloseTo(subset, 10);
    // Without missing points it is the Gaussian likelihood.
    const full = Float64Array.from(xSim, (v) => v + 0.05);
    expect(maskedGaussianLogLike(0.2, size)(full, xSim, theta)).toBeCloseTo(
      gaussianLogLike(0.2, size)(full, xSim, theta),
      10,
    );
  });

  it("refuses sigmas that are not positive (NaN allowed: a missing point's)", () => {
    expect(() => maskedGaussianLogLike([0.1, 0], 2)).toThrow(
      /maskedGaussianLogLike: sigma\[1\] expected a finite positive number \(or NaN at a missing point\), got 0/,
    );
    expect(() => maskedGaussianLogLike([0.1], 2)).toThrow(
      /maskedGaussianLogLike: sigma expected 1 or 2 sigmas \(one per point\), got 1 sigmas/,
    );
  });
});

describe("validation", () => {
  it("gappedLightCurves names the option, the expectation and what was given", () => {
    expect(() => gappedLightCurves({ sigma: 0.1, missing: 1.2 })).toThrow(
      /gappedLightCurves: missing expected fractions in \[0, 1\), got 1\.2/,
    );
    expect(() => gappedLightCurves({ sigma: [0.3, 0.1] })).toThrow(
      /gappedLightCurves: sigma expected a range \[lo ≤ hi\] of finite sigmas > 0, got \[0\.3, 0\.1\]/,
    );
    expect(() => gappedLightCurves({} as never)).toThrow(
      /gappedLightCurves: sigma expected the per-point error bars.*, got undefined/,
    );
    expect(() => gappedLightCurves({ sigma: 0.1, gaps: 0.2 } as never)).toThrow(
      /gappedLightCurves: options expected only missing and sigma, got unknown "gaps"/,
    );
    expect(() => gappedLightCurves({ sigma: "0.1" as never })).toThrow(
      /gappedLightCurves: sigma expected finite sigmas > 0: a number, a range \[lo, hi\] or a function, got "0\.1"/,
    );
    const model = gappedLightCurves({ missing: [0, 0.4], sigma: [0.1, 0.3] });
    expect(String(model)).toBe("gappedLightCurves(missing [0, 0.4], sigma [0.1, 0.3])");
    expect(model.toJSON()).toEqual({
      type: "gapped-light-curves",
      missing: [0, 0.4],
      sigma: [0.1, 0.3],
    });
  });

  it("the featurizer's dimIn is checked before any simulation runs", async () => {
    let calls = 0;
    const counting = (t: ArrayLike<number>) => {
      calls++;
      return new Float64Array(20).fill(t[0]!);
    };
    const gaps = gappedLightCurves({ sigma: 0.1 });
    const make = (
      featurizer: ConstructorParameters<typeof NBI>[0]["featurizer"],
      shape?: number[],
    ) =>
      new NBI({
        flow: { nDims: 1 },
        featurizer,
        simulator: counting,
        priors: { a: normal(0, 1) },
        path: join(runs, `dim-${calls}-${Math.random()}`),
        ...(shape ? { dataShape: shape } : {}),
      });
    await expect(
      make({ type: "resnet-gru", dimIn: 1, depth: 2 }).fit({ nSims: 50, noise: gaps }),
    ).rejects.toThrow(
      /NBI: featurizer\.dimIn expected a multiple of 3 \(the gapped observation model feeds the featurizer values, mask and sigmas for each data channel\), got 1/,
    );
    await expect(
      make({ type: "resnet-gru", dimIn: 6, depth: 2 }, [20]).fit({ nSims: 50, noise: gaps }),
    ).rejects.toThrow(
      /NBI: featurizer\.dimIn expected 3 \(3 × 1 channel: the gapped observation model feeds values, mask and sigmas for each of the data's channels, data of shape \[20\]\), got 6/,
    );
    await expect(
      make({ type: "mlp", dimIn: 30, dimOut: 4 }, [20]).fit({ nSims: 50, noise: gaps }),
    ).rejects.toThrow(
      /NBI: featurizer\.dimIn expected 60 \(an MLP sees each observation flattened: .*length 20\), got 30/,
    );
    // A sequential fit of one gapped light curve needs its error bars, checked as predict's are.
    const xObs = Float64Array.from({ length: 20 }, (_, i) => (i % 4 === 1 ? Number.NaN : i));
    await expect(
      make({ type: "mlp", dimIn: 60, dimOut: 4 }, [20]).fit({ nSims: 50, noise: gaps, xObs }),
    ).rejects.toThrow(
      /fit: xErr expected the observation's error bars .*the gapped observation model feeds them to the network, got undefined/,
    );
    await expect(
      make({ type: "mlp", dimIn: 60, dimOut: 4 }, [20]).fit({
        nSims: 50,
        noise: gaps,
        xObs,
        xErr: Float64Array.from(xObs, (v) => (v === 2 ? 0 : 0.1)),
      }),
    ).rejects.toThrow(
      /fit: xErr\[2\] expected a finite sigma > 0 \(xObs\[2\] is observed\), got 0/,
    );
    await expect(
      make({ type: "mlp", dimIn: 20, dimOut: 4 }, [20]).fit({ nSims: 50, noise: 0.1, xErr: 0.1 }),
    ).rejects.toThrow(/fit: xErr expected no xErr without the gapped observation model/);
    await expect(
      make({ type: "mlp", dimIn: 60, dimOut: 4 }, [20]).fit({ nSims: 50, noise: gaps, xErr: 0.1 }),
    ).rejects.toThrow(/fit: xErr expected the error bars of an xObs .*, got no xObs/);
    expect(calls).toBe(0);
  });

  it("the ResNet-GRU with dimIn 3 takes the encoding of a gapped light curve", async () => {
    const gaps = gappedLightCurves({ missing: [0, 0.5], sigma: [0.05, 0.2] });
    const net = posteriorNetwork(
      { nDims: 2, flowHidden: 8, numBlocks: 1 },
      { type: "resnet-gru", dimIn: 3, depth: 2, dimConvMin: 8, dimConvMax: 8, nRnn: 1 },
      [16],
      gaps,
    );
    const params = await initPosterior(net, hostKey(7));
    const scales = {
      xMean: Float64Array.of(0),
      xStd: Float64Array.of(1),
      thetaMean: new Float64Array(2),
      thetaStd: Float64Array.of(1, 1),
    };
    const values = Float64Array.from({ length: 16 }, (_, i) =>
      i % 4 === 1 ? Number.NaN : Math.sin(i),
    );
    const { packed } = packObservations("sample", { x: "xObs", err: "xErr" }, values, 0.1, 16);
    const draws = await surrogateSample({ net, params, scales }, hostKey(8), packed, 5);
    expect(draws).toHaveLength(10);
    expect(draws.every(Number.isFinite)).toBe(true);
  });
});

describe("the JSON config", () => {
  const config = (noise: unknown) =>
    resolveConfig(
      {
        simulator: (theta: Float64Array) => Array.from({ length: 4 }, (_, i) => theta[0]! * i),
        priors: { a: { type: "normal", mu: 0, sigma: 1 } },
        featurizer: { type: "mlp", dimIn: 12, dimOut: 8 },
        fit: { nSims: 100, noise },
      },
      join(process.cwd(), "virtual-config.json"),
      {},
    );

  it("expresses the gapped model as ranges, validated with the option named", async () => {
    const run = await config({ missing: [0.1, 0.4], sigma: [0.05, 0.2] });
    expect(String(run.fit.noise)).toBe("gappedLightCurves(missing [0.1, 0.4], sigma [0.05, 0.2])");
    await expect(config({ missing: [0.1, 1.5], sigma: 0.1 })).rejects.toThrow(
      /fit\.noise\.missing expected a range \[lo ≤ hi\] of fractions in \[0, 1\), got \[0\.1, 1\.5\]/,
    );
    await expect(config({ missing: 0.2 })).rejects.toThrow(
      /fit\.noise\.sigma expected the per-point error bars.*got undefined/,
    );
    await expect(config({ sigma: 0.1, holes: 3 })).rejects.toThrow(
      /fit\.noise expected only missing and sigma, got unknown "holes"/,
    );
    await expect(config("loud")).rejects.toThrow(
      /fit\.noise expected a sigma ≥ 0, .*light curves with gaps/,
    );
    // A sequential gapped fit needs the light curve's error bars, which a config cannot give.
    await expect(
      resolveConfig(
        {
          simulator: (theta: Float64Array) => Array.from({ length: 4 }, (_, i) => theta[0]! * i),
          priors: { a: { type: "normal", mu: 0, sigma: 1 } },
          featurizer: { type: "mlp", dimIn: 12, dimOut: 8 },
          fit: { nSims: 100, noise: { sigma: 0.1 } },
          observation: [1, 2, 3, 4],
        },
        join(process.cwd(), "virtual-config.json"),
        {},
      ),
    ).rejects.toThrow(
      /observation: a config with the gapped observation model .* fits amortized, without an observation; weigh a light curve with nbi predict RUN_DIR --obs FILE --xerr-column NAME/,
    );
  });
});

// ---------------------------------------------------------------------------------------------
// The proof: y_t = a·sin(ωt) + b at L times, a, b ~ N(0, 1).

const L = 24;
const OMEGA = 2 * Math.PI * 1.5;
const times = Float64Array.from({ length: L }, (_, i) => i / L);
const design = Array.from(times, (t) => [Math.sin(OMEGA * t), 1] as const);
const lightCurve = (theta: ArrayLike<number>) =>
  Float64Array.from(design, ([s, one]) => theta[0]! * s + theta[1]! * one);
const SIGMA_RANGE: [number, number] = [0.15, 0.5];

/** The analytic posterior of (a, b) given the observed points and their sigmas: mean and sd. */
function analyticPosterior(y: ArrayLike<number>, sigma: ArrayLike<number>) {
  let p00 = 1;
  let p01 = 0;
  let p11 = 1;
  let r0 = 0;
  let r1 = 0;
  for (let i = 0; i < L; i++) {
    if (Number.isNaN(y[i]!)) continue;
    const w = 1 / sigma[i]! ** 2;
    const [s, one] = design[i]!;
    p00 += w * s * s;
    p01 += w * s * one;
    p11 += w * one * one;
    r0 += w * s * y[i]!;
    r1 += w * one * y[i]!;
  }
  const det = p00 * p11 - p01 * p01;
  const [c00, c01, c11] = [p11 / det, -p01 / det, p00 / det];
  return {
    mean: [c00 * r0 + c01 * r1, c01 * r0 + c11 * r1],
    sd: [Math.sqrt(c00), Math.sqrt(c11)],
    cov: [c00, c01, c11] as const,
  };
}

/** A light curve at θ with exactly 30% of its points missing and a sigma of its own per point. */
function gappedObservation(theta: [number, number], seed: number) {
  const k = hostKey(seed);
  const clean = lightCurve(theta);
  const gone = new Set(permutation(keyAt(k, 0), L).subarray(0, Math.round(0.3 * L)));
  const u = uniforms(keyAt(k, 1), L);
  const eps = normals(keyAt(k, 2), L);
  const sigma = Float64Array.from(
    u,
    (v) => SIGMA_RANGE[0] * (SIGMA_RANGE[1] / SIGMA_RANGE[0]) ** v,
  );
  const y = Float64Array.from(clean, (v, i) =>
    gone.has(i) ? Number.NaN : v + sigma[i]! * eps[i]!,
  );
  const xErr = Float64Array.from(sigma, (s, i) => (gone.has(i) ? Number.NaN : s));
  return { y, xErr };
}

describe("the proof: gapped light curves with their own error bars", () => {
  const gaps = gappedLightCurves({ missing: [0, 0.5], sigma: SIGMA_RANGE });
  const make = (path: string, dimIn = 3 * L) =>
    new NBI({
      flow: { nDims: 2, flowHidden: 32, numBlocks: 3 },
      featurizer: { type: "mlp", dimIn, dimOut: 16, hidden: [64] },
      simulator: lightCurve,
      priors: { a: normal(0, 1), b: normal(0, 1) },
      path,
      seed: 11,
    });
  const engine = make(join(runs, "proof"));
  let fitSeconds = 0;

  beforeAll(async () => {
    const t0 = performance.now();
    await engine.fit({
      nSims: 10000,
      nEpochs: 30,
      batchSize: 256,
      lr: 2e-3,
      minLr: 2e-4,
      noise: gaps,
      progress: false,
    });
    fitSeconds = (performance.now() - t0) / 1000;
  }, 120_000);

  it("refuses NaN without the gapped model, and asks the gapped model for xErr", async () => {
    const plain = make(join(runs, "plain"), L);
    await plain.fit({ nSims: 200, nEpochs: 1, noise: 0.3, progress: false });
    const { y, xErr } = gappedObservation([0.5, 0.2], 21);
    await expect(plain.predict(y, { xErr: 0.3 })).rejects.toThrow(
      /predict: xObs expected finite values \(or fit with the gapped observation model, noise: gappedLightCurves\(\{ missing, sigma \}\), to leave missing points NaN\), got NaN at index \d+/,
    );
    await expect(plain.sampleBatch([y, y], 10)).rejects.toThrow(
      /sampleBatch: xObsMany expected finite values \(or fit with the gapped observation model/,
    );
    await expect(engine.predict(y)).rejects.toThrow(
      /predict: xErr expected the observation's error bars .*the gapped observation model feeds them to the network, got undefined/,
    );
    await expect(engine.sampleBatch([y, y], 10, { xErr: [xErr] as never })).resolves.toHaveLength(
      40,
    );
    await expect(engine.sampleBatch([y, y], 10, { xErr: [1, 2, 3] })).rejects.toThrow(
      /sampleBatch: xErr expected one sigma, 24 sigmas \(one per point\) or 2 rows of 24, got 3 sigmas/,
    );
    await expect(plain.fit({ nSims: 200, noise: gaps, progress: false })).rejects.toThrow(
      /fit: noise expected a noise model without gaps .*got gappedLightCurves\(missing \[0, 0\.5\], sigma \[0\.15, 0\.5\]\)/,
    );
    await expect(engine.calibrate({ nTest: 10, nSamples: 20, noise: 0.3 })).rejects.toThrow(
      /calibrate: noise expected the gapped observation model the network was trained with .*got 0\.3/,
    );
  });

  it("the weighted posterior with 30% of points missing matches the analytic one within 0.1 σ", async () => {
    const truth: [number, number] = [0.8, -0.4];
    const { y, xErr } = gappedObservation(truth, 31);
    expect(y.filter(Number.isNaN)).toHaveLength(7);
    const ref = analyticPosterior(y, xErr);
    const t0 = performance.now();
    const post = await engine.predict(y, { xErr, nSamples: 3000 });
    const seconds = (performance.now() - t0) / 1000;
    const mean = [0, 0];
    const sq = [0, 0];
    post.weights.forEach((w, i) => {
      for (let j = 0; j < 2; j++) {
        mean[j]! += w * post.samples[2 * i + j]!;
        sq[j]! += w * post.samples[2 * i + j]! ** 2;
      }
    });
    const sd = [0, 1].map((j) => Math.sqrt(sq[j]! - mean[j]! ** 2));
    const errors = [0, 1].map((j) => Math.abs(mean[j]! - ref.mean[j]!) / ref.sd[j]!);
    // The surrogate alone (unweighted) at the same observation, for the record.
    const draws = await engine.sample(y, 2000, { xErr, key: hostKey(40) });
    const surrogateErrors = [0, 1].map((j) => {
      let m = 0;
      for (let i = 0; i < 2000; i++) m += draws[2 * i + j]! / 2000;
      return Math.abs(m - ref.mean[j]!) / ref.sd[j]!;
    });
    // Ignoring the gaps is wrong: the reference from every point (the missing ones at their
    // noiseless values) differs from the gapped one.
    console.log(
      `gaps: fit ${fitSeconds.toFixed(1)} s, predict ${seconds.toFixed(1)} s; ESS ${post.ess.toFixed(0)} of ${post.samples.length / 2} ` +
        `(efficiency ${post.efficiency.toFixed(2)}, k̂ ${post.paretoK.toFixed(2)}); weighted mean error ` +
        `${errors.map((e) => e.toFixed(3)).join(", ")} σ; sd ratio ${sd.map((s, j) => (s / ref.sd[j]!).toFixed(3)).join(", ")}; ` +
        `surrogate alone ${surrogateErrors.map((e) => e.toFixed(3)).join(", ")} σ; warnings ${JSON.stringify(post.warnings)}`,
    );
    expect(post.surrogateOnly).toBe(false);
    expect(post.ess).toBeGreaterThan(500);
    for (const e of errors) expect(e).toBeLessThan(0.1);
    for (let j = 0; j < 2; j++) expect(Math.abs(sd[j]! / ref.sd[j]! - 1)).toBeLessThan(0.1);
    expect(post.warnings.filter((w) => /outside/.test(w))).toEqual([]);
  });

  it("the posterior predictive check of a gapped light curve: its own sigmas, observed points only", async () => {
    const check = async (y: Float64Array, xErr: Float64Array, seed: number) => {
      const post = await engine.predict(y, { xErr, nSamples: 2000, key: hostKey(seed) });
      return engine.posteriorPredictive(y, post, { xErr, nDraws: 400, key: hostKey(seed + 1) });
    };
    // Seed 60: its noise is typical (Σ ε² = 19.8 over 17 points). Seed 31's (35.3, a χ²₁₇ tail
    // probability of 0.6%) is itself an outlier, and the check rightly calls it marginal.
    const { y, xErr } = gappedObservation([0.8, -0.4], 60);
    const right = await check(y, xErr, 70);
    const ref = analyticPosterior(y, xErr);
    const [c00, c01, c11] = ref.cov;
    const observedSigmas = Array.from(xErr)
      .filter((v) => !Number.isNaN(v))
      .sort((a, b) => a - b);
    const median = observedSigmas[8]!; // the middle one of 17 observed
    // Replicates carry each point's own sigma (a missing point: the observed sigmas' median):
    // the predictive sd is √(σᵢ² + var f(tᵢ)), f's variance from the analytic posterior.
    const sdErrors = design.map(([sn, one], i) => {
      const sigma = Number.isNaN(y[i]!) ? median : xErr[i]!;
      const expected = Math.sqrt(sigma ** 2 + sn * sn * c00 + 2 * sn * one * c01 + one * one * c11);
      return right.sd[i]! / expected - 1;
    });
    // A different function at the same points: a linear trend the sine cannot follow.
    const trend = Float64Array.from(y, (v, i) => (Number.isNaN(v) ? v : 3 * (times[i]! - 0.5)));
    const wrong = await check(trend, xErr, 80);
    console.log(
      `gapped ppc: right model p ${right.pValue.toFixed(3)} (T ${right.statistic.toFixed(1)}), ` +
        `trend p ${wrong.pValue.toFixed(4)} (T ${wrong.statistic.toFixed(1)}); predictive sd / expected − 1 ` +
        `max ${Math.max(...sdErrors.map(Math.abs)).toFixed(3)}`,
    );
    expect(right.nMissing).toBe(7);
    expect(right.fit).toBe("ok");
    expect(right.message).toMatch(/passes \(T = [\d.]+ over 17 observed points \(7 missing\)/);
    for (const e of sdErrors) expect(Math.abs(e)).toBeLessThan(0.2);
    for (let i = 0; i < L; i++) {
      expect(Number.isNaN(right.residuals[i]!)).toBe(Number.isNaN(y[i]!));
      expect(Number.isFinite(right.median[i]!)).toBe(true);
    }
    expect(wrong.fit).toBe("misfit");
    expect(wrong.pValue).toBeLessThan(0.01);
    // The error bars are required, and checked as predict checks them.
    const post = { samples: Float64Array.of(0, 0, 1, 1), weights: Float64Array.of(0.5, 0.5) };
    await expect(engine.posteriorPredictive(y, post)).rejects.toThrow(
      /posteriorPredictive: xErr expected the observation's error bars .*the replicated data get noise with those sigmas, got undefined/,
    );
    const zero = Float64Array.from(xErr, (v, i) => (i === 0 ? 0 : v));
    await expect(engine.posteriorPredictive(y, post, { xErr: zero })).rejects.toThrow(
      /posteriorPredictive: xErr\[0\] expected a finite sigma > 0 \(xObs\[0\] is observed\), got 0/,
    );
  });

  it("sampleBatch serves light curves of different gaps and errors in one call", async () => {
    const truths: [number, number][] = [
      [1.2, 0.5],
      [-0.9, -0.6],
      [0.1, 1.1],
    ];
    const obs = truths.map((t, i) => gappedObservation(t, 50 + i));
    const n = 1500;
    const draws = await engine.sampleBatch(
      obs.map((o) => o.y),
      n,
      { xErr: obs.map((o) => o.xErr), key: hostKey(41) },
    );
    expect(draws).toHaveLength(3 * n * 2);
    const moments = (rows: ArrayLike<number>, k: number, j: number) => {
      let m = 0;
      let q = 0;
      for (let i = 0; i < n; i++) {
        const v = rows[(k * n + i) * 2 + j]!;
        m += v / n;
        q += (v * v) / n;
      }
      return { mean: m, sd: Math.sqrt(q - m * m) };
    };
    // Row k of the table is the surrogate at light curve k with its own gaps and errors: the
    // same distribution as one observation at a time (other keys: equal up to Monte Carlo error).
    const gaps: number[] = [];
    for (let k = 0; k < 3; k++) {
      const one = await engine.sample(obs[k]!.y, n, { xErr: obs[k]!.xErr, key: hostKey(44 + k) });
      for (let j = 0; j < 2; j++) {
        const batch = moments(draws, k, j);
        const single = moments(one, 0, j);
        gaps.push(Math.abs(batch.mean - single.mean) / single.sd);
        expect(Math.abs(batch.mean - single.mean) / single.sd).toBeLessThan(0.15);
        expect(Math.abs(batch.sd / single.sd - 1)).toBeLessThan(0.1);
      }
    }
    // The rows differ as their light curves do: each row's mean of a sits nearest its own truth.
    const meansA = [0, 1, 2].map((k) => moments(draws, k, 0).mean);
    for (let k = 0; k < 3; k++) {
      const nearest = [0, 1, 2].reduce((best, t) =>
        Math.abs(truths[t]![0] - meansA[k]!) < Math.abs(truths[best]![0] - meansA[k]!) ? t : best,
      );
      expect(nearest).toBe(k);
    }
    console.log(
      `sampleBatch: |batch − single| means ${gaps.map((g) => g.toFixed(3)).join(", ")} sd; row means of a ${meansA.map((m) => m.toFixed(2)).join(", ")} (truths ${truths.map((t) => t[0]).join(", ")})`,
    );
  });

  it("the amortized coverage on gapped observations is calibrated", async () => {
    const t0 = performance.now();
    const cal = await engine.calibrate({ nTest: 300, nSamples: 100, key: hostKey(42) });
    const at = (level: number) =>
      cal.coverage.atLevels.find((c) => Math.abs(c.level - level) < 1e-12)!.coverage;
    console.log(
      `gaps calibrate ${((performance.now() - t0) / 1000).toFixed(1)} s: coverage 50% → ${at(0.5).toFixed(3)}, ` +
        `68% → ${at(0.68).toFixed(3)}, 90% → ${at(0.9).toFixed(3)}, 95% → ${at(0.95).toFixed(3)}; area ${cal.coverage.area.toFixed(3)}, ` +
        `KS p ${cal.coverage.pValue.toFixed(3)}; SBC p ${cal.sbc.parameters.map((p) => p.pValue.toFixed(3)).join(", ")}\n  ${cal.verdict.summary}`,
    );
    expect(cal.nTest).toBe(300);
    expect(Math.abs(at(0.5) - 0.5)).toBeLessThan(0.1);
    expect(Math.abs(at(0.9) - 0.9)).toBeLessThan(0.08);
    expect(Math.abs(cal.coverage.area)).toBeLessThan(0.05);
  });

  it("a sequential fit of one gapped light curve: 3 rounds, weighted posterior within 0.1 σ", async () => {
    const truth: [number, number] = [-0.6, 0.9];
    const { y, xErr } = gappedObservation(truth, 33);
    const ref = analyticPosterior(y, xErr);
    const seq = make(join(runs, "sequential"));
    const t0 = performance.now();
    const warnings: string[] = [];
    const fit = await seq.fit({
      xObs: y,
      xErr,
      noise: gaps,
      nRounds: 3,
      nSims: 1500,
      nEpochs: 20,
      batchSize: 128,
      lr: 2e-3,
      minLr: 2e-4,
      progress: false,
      onWarning: (w) => warnings.push(w),
    });
    const seconds = (performance.now() - t0) / 1000;
    const mean = [0, 0];
    const sq = [0, 0];
    fit.weights.forEach((w, i) => {
      for (let j = 0; j < 2; j++) {
        mean[j]! += w * fit.samples[2 * i + j]!;
        sq[j]! += w * fit.samples[2 * i + j]! ** 2;
      }
    });
    const sd = [0, 1].map((j) => Math.sqrt(sq[j]! - mean[j]! ** 2));
    const errors = [0, 1].map((j) => Math.abs(mean[j]! - ref.mean[j]!) / ref.sd[j]!);
    console.log(
      `sequential gaps: ${fit.history.length} rounds in ${seconds.toFixed(1)} s; n_eff ${fit.essHistory.map((e) => e.toFixed(0)).join(", ")}; ` +
        `weighted mean error ${errors.map((e) => e.toFixed(3)).join(", ")} σ; sd ratio ${sd.map((s, j) => (s / ref.sd[j]!).toFixed(3)).join(", ")}; ` +
        `warnings ${JSON.stringify(warnings)}`,
    );
    expect(fit.history).toHaveLength(3);
    // Later rounds draw from the surrogate at the encoded observation: more efficient than the prior.
    expect(fit.essHistory[2]!).toBeGreaterThan(3 * fit.essHistory[0]!);
    for (const e of errors) expect(e).toBeLessThan(0.1);
    for (let j = 0; j < 2; j++) expect(Math.abs(sd[j]! / ref.sd[j]! - 1)).toBeLessThan(0.1);
    // The network stays amortized over gaps: it serves another light curve afterwards.
    const other = gappedObservation([0.4, -0.2], 34);
    const post = await seq.predict(other.y, { xErr: other.xErr, nSamples: 1000 });
    expect(post.ess).toBeGreaterThan(100);
  });

  it("survives save and load; a model given functions must be given again", async () => {
    const dir = join(runs, "saved");
    await engine.save(dir);
    const model = JSON.parse(readFileSync(join(dir, "model.json"), "utf8"));
    expect(model.observation).toEqual({
      type: "gapped-light-curves",
      missing: [0, 0.5],
      sigma: SIGMA_RANGE,
    });
    const loaded = await NBI.load(dir, { simulator: lightCurve });
    const { y, xErr } = gappedObservation([0.3, 0.3], 60);
    const a = await engine.sample(y, 50, { xErr, key: hostKey(43) });
    const b = await loaded.sample(y, 50, { xErr, key: hostKey(43) });
    expect(Array.from(b)).toEqual(Array.from(a));
    await expect(loaded.predict(y)).rejects.toThrow(
      /predict: xErr expected the observation's error bars/,
    );
    // A mask sampler is recorded as "function": load needs the model again.
    model.observation.missing = "function";
    writeFileSync(join(dir, "model.json"), JSON.stringify(model));
    await expect(NBI.load(dir)).rejects.toThrow(
      /NBI\.load: noise expected the gapped observation model again \(.*model\.json observation records a mask sampler, and functions are not saved\).*got none/,
    );
    const withFunction: GappedLightCurves = gappedLightCurves({
      missing: (k, shape) => random.bernoulli(k, 0.8, [...shape]),
      sigma: SIGMA_RANGE,
    });
    const again = await NBI.load(dir, { noise: withFunction });
    expect(Array.from(await again.sample(y, 50, { xErr, key: hostKey(43) }))).toEqual(
      Array.from(a),
    );
    await expect(
      NBI.load(dir, {
        noise: gappedLightCurves({
          missing: (k, s) => random.bernoulli(k, 0.8, [...s]),
          sigma: 0.2,
        }),
      }),
    ).rejects.toThrow(
      /NBI\.load: noise expected the gapped observation model the network was trained with/,
    );
    await expect(NBI.load(dir, { noise: 0.2 })).rejects.toBeInstanceOf(NbiError);
  });
});

// The encoding helper is public: a custom featurizer can call it on its own arrays.
void encodeGapped;
