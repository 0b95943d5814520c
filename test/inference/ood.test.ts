/**
 * The out-of-distribution alarm. On host arrays: Mahalanobis distances with a shrunk covariance
 * (invariant to the features' scale and offset, stable with a dead feature), cross-fitted
 * reference distances whose tail probabilities are calibrated on fresh draws, the generalized
 * Pareto tail beyond them, the verdict's combination with the importance weights, and the file
 * round trip. Through the engine: an amortized fit of a line raises the alarm for observations
 * far from the prior predictive and not for typical ones, in predict, sampleBatch and
 * outOfDistribution; the statistics survive save/load, and a model saved without them loads with
 * the alarm unavailable.
 */
import { existsSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { NbiError } from "../../src/errors.js";
import { NBI } from "../../src/inference/engine.js";
import { hostKey, keyAt, normals, uniforms } from "../../src/inference/host.js";
import { generalizedParetoFit } from "../../src/inference/importance.js";
import {
  featureStatistics,
  OOD_CAUTION_TAIL,
  oodReport,
  oodUnavailable,
  squaredDistances,
  tailProbability,
} from "../../src/inference/ood.js";
import {
  OOD_FILE,
  readFeatureStatistics,
  writeFeatureStatistics,
} from "../../src/inference/ood-file.js";
import { normal, uniform } from "../../src/inference/priors.js";
import { trustReport, weightLevel } from "../../src/inference/trust.js";
import { readSafetensors } from "../../src/io/safetensors.js";
import { tempDirs } from "../helpers/temp-dirs.js";

const tempDir = tempDirs("nbi-ood-");

/** n rows of F correlated Gaussian features f = A z + b (A lower triangular with unequal scales). */
function gaussianFeatures(n: number, F: number, seed: number, scale = 1, shift = 0): Float64Array {
  const z = normals(hostKey(seed), n * F);
  const out = new Float64Array(n * F);
  for (let i = 0; i < n; i++)
    for (let a = 0; a < F; a++) {
      let v = 0;
      for (let b = 0; b <= a; b++) v += (a === b ? 2 ** (a - 2) : 0.3) * z[i * F + b]!;
      out[i * F + a] = scale * v + shift + a;
    }
  return out;
}

describe("feature statistics on host arrays", () => {
  const F = 6;
  const stats = featureStatistics(gaussianFeatures(3000, F, 1), F);

  it("gives calibrated tail probabilities for fresh draws of the training distribution", () => {
    const fresh = squaredDistances(stats, gaussianFeatures(2000, F, 2));
    const p = Array.from(fresh, (d2) => tailProbability(stats, d2));
    const share = (t: number) => p.filter((v) => v < t).length / p.length;
    // Uniform p for exchangeable draws: within a few binomial standard errors.
    expect(Math.abs(share(0.1) - 0.1)).toBeLessThan(0.025);
    expect(Math.abs(share(0.5) - 0.5)).toBeLessThan(0.04);
    expect(share(OOD_CAUTION_TAIL)).toBeLessThan(0.025);
    const levels = Array.from(fresh, (d2) => oodReport(stats, d2).level);
    expect(levels.filter((l) => l === "do-not-trust").length).toBeLessThanOrEqual(6); // 0.1% of 2000 ≈ 2
    // In 6 Gaussian dimensions d² is χ²₆: its median is 5.35.
    expect(Math.abs(stats.reference[1500]! - 5.35)).toBeLessThan(0.5);
  });

  it("takes the reference from held-out features when there are enough, else cross-fits", () => {
    expect(stats.referenceSource).toBe("cross-fitted");
    expect(stats.reference).toHaveLength(3000);
    const held = featureStatistics(gaussianFeatures(3000, F, 1), F, gaussianFeatures(400, F, 6));
    expect(held.referenceSource).toBe("held-out");
    expect(held.reference).toHaveLength(400);
    // The same mean and whitening: held-out rows only measure, they are not summarised.
    expect(Array.from(held.whitening)).toEqual(Array.from(stats.whitening));
    const fresh = squaredDistances(held, gaussianFeatures(2000, F, 2));
    const p = Array.from(fresh, (d2) => tailProbability(held, d2));
    expect(Math.abs(p.filter((v) => v < 0.1).length / 2000 - 0.1)).toBeLessThan(0.03);
    const few = featureStatistics(gaussianFeatures(3000, F, 1), F, gaussianFeatures(10, F, 6));
    expect(few.referenceSource).toBe("cross-fitted");
    const nan = gaussianFeatures(30, F, 6);
    nan[0] = Number.NaN;
    expect(() => featureStatistics(gaussianFeatures(100, F, 1), F, nan)).toThrow(
      /heldOut expected finite values, got NaN in row 0/,
    );
  });

  it("fires far from the training features, in every direction, and not at the centre", () => {
    const centre = Float64Array.from({ length: F }, (_, a) => a);
    expect(oodReport(stats, squaredDistances(stats, centre)[0]!).level).toBe("ok");
    for (let a = 0; a < F; a++) {
      // 8 standard deviations of feature a alone (its marginal sd includes the 0.3 couplings).
      const sd = Math.sqrt((2 ** (a - 2)) ** 2 + 0.09 * a);
      const far = Float64Array.from(centre);
      far[a] += 8 * sd;
      const report = oodReport(stats, squaredDistances(stats, far)[0]!);
      expect(report.level).toBe("do-not-trust");
      expect(report.tailProbability).toBeLessThan(1e-3);
      expect(report.percentile).toBe(1);
      expect(report.message).toMatch(
        /lies outside the training simulations: distance [\d.]+ .*farther than all 3000 reference simulations/,
      );
    }
    const nan = oodReport(stats, Number.NaN);
    expect(nan.level).toBe("do-not-trust");
    expect(nan.message).toMatch(/not finite/);
  });

  it("measures the same distances whatever the features' scale and offset", () => {
    const scaled = featureStatistics(gaussianFeatures(3000, F, 1, 1000, -50), F);
    const probe = gaussianFeatures(20, F, 3);
    const probeScaled = gaussianFeatures(20, F, 3, 1000, -50);
    const a = squaredDistances(stats, probe);
    const b = squaredDistances(scaled, probeScaled);
    for (let i = 0; i < 20; i++) expect(b[i]! / a[i]!).toBeCloseTo(1, 8);
    expect(scaled.shrinkage).toBeCloseTo(stats.shrinkage, 10);
  });

  it("stays stable with a dead feature and flags a point that moves it", () => {
    const base = gaussianFeatures(500, F, 4);
    const withDead = new Float64Array(500 * (F + 1));
    for (let i = 0; i < 500; i++) {
      withDead.set(base.subarray(i * F, (i + 1) * F), i * (F + 1));
      withDead[i * (F + 1) + F] = 0.5; // a unit that never fires
    }
    const s = featureStatistics(withDead, F + 1);
    expect(s.shrinkage).toBeGreaterThan(0);
    expect(s.shrinkage).toBeLessThan(0.5);
    const typical = Float64Array.from({ length: F + 1 }, (_, a) => (a < F ? a : 0.5));
    expect(oodReport(s, squaredDistances(s, typical)[0]!).level).toBe("ok");
    const moved = Float64Array.from(typical);
    moved[F] = 1.5;
    expect(oodReport(s, squaredDistances(s, moved)[0]!).level).toBe("do-not-trust");
  });

  it("has a tail that decreases, continues the empirical part, and follows an exponential", () => {
    const { threshold, fraction } = stats.tail;
    expect(fraction).toBeCloseTo(Math.ceil(3 * Math.sqrt(3000)) / 3000, 12);
    expect(tailProbability(stats, threshold)).toBeCloseTo(fraction, 12);
    expect(tailProbability(stats, threshold * (1 + 1e-9))).toBeCloseTo(fraction, 6);
    let last = 1;
    for (let d2 = 0; d2 < 80; d2 += 0.5) {
      const p = tailProbability(stats, d2);
      expect(p).toBeLessThanOrEqual(last);
      last = p;
    }
    // χ²₆ has P(D² > 30) = 3.5e-5: the fitted tail is within a factor of a few.
    const p30 = tailProbability(stats, 30);
    expect(p30).toBeGreaterThan(3.5e-6);
    expect(p30).toBeLessThan(3.5e-4);
    const expQuantiles = Float64Array.from(
      { length: 200 },
      (_, i) => -Math.log(1 - (i + 0.5) / 200),
    );
    const fit = generalizedParetoFit(expQuantiles);
    expect(Math.abs(fit.shape)).toBeLessThan(0.1);
    expect(fit.scale).toBeGreaterThan(0.85);
    expect(fit.scale).toBeLessThan(1.15);
  });

  it("refuses features that cannot support the alarm, naming the argument", () => {
    expect(() => featureStatistics(gaussianFeatures(20, F, 5), F)).toThrow(
      /featureStatistics: features expected at least 25 training simulations .*got 20/,
    );
    expect(() => featureStatistics(new Float64Array(7), 3)).toThrow(
      /features expected rows of 3 numbers, got 7 numbers/,
    );
    const nan = gaussianFeatures(100, F, 5);
    nan[13] = Number.NaN;
    expect(() => featureStatistics(nan, F)).toThrow(
      /features expected finite values, got NaN in row 2/,
    );
    expect(() => featureStatistics(new Float64Array(300).fill(1), 3)).toThrow(
      /features expected to vary over the training simulations/,
    );
    expect(() => featureStatistics(new Float64Array(30), 0)).toThrow(NbiError);
    expect(() => squaredDistances(stats, new Float64Array(5))).toThrow(/rows of 6 numbers/);
  });

  it("writes and reads ood.safetensors exactly, and refuses another model's file", async () => {
    const dir = tempDir();
    const path = join(dir, OOD_FILE);
    await writeFeatureStatistics(path, stats, "0.2");
    const back = await readFeatureStatistics(path, F);
    expect(Array.from(back.mean)).toEqual(Array.from(stats.mean));
    expect(Array.from(back.whitening)).toEqual(Array.from(stats.whitening));
    expect(Array.from(back.reference)).toEqual(Array.from(stats.reference));
    expect(back.tail).toEqual(stats.tail);
    expect(back.shrinkage).toBe(stats.shrinkage);
    expect(back.referenceSource).toBe(stats.referenceSource);
    await expect(readFeatureStatistics(path, 8)).rejects.toThrow(
      /expected statistics of 8 features \(the featurizer's dimOut\), got 6; the file belongs to another model/,
    );
    writeFileSync(path, "not safetensors");
    await expect(readFeatureStatistics(path, F)).rejects.toThrow(NbiError);
  });
});

describe("the verdict: distance and importance weights combined", () => {
  const typical = {
    ...oodUnavailable("x"),
    available: true,
    level: "ok" as const,
    message: "typical",
  };
  const far = { ...typical, level: "do-not-trust" as const, message: "far" };
  const healthy = { ess: 800, efficiency: 0.4, paretoK: 0.2, target: 0 };

  it("is the worse of the two, with the reasons in its message", () => {
    expect(trustReport(typical, healthy).verdict).toBe("ok");
    expect(trustReport(far, healthy).verdict).toBe("do-not-trust");
    expect(trustReport(far, healthy).message).toMatch(/^do not trust this posterior: far/);
    const heavy = trustReport(typical, { ...healthy, paretoK: 0.9 });
    expect(heavy.verdict).toBe("do-not-trust");
    expect(heavy.message).toMatch(/Pareto k̂ 0\.90 > 0\.7/);
    expect(trustReport(typical, { ...healthy, paretoK: 0.6 }).verdict).toBe("caution");
    expect(trustReport(typical, { ...healthy, efficiency: 0.01 }).verdict).toBe("caution");
    expect(trustReport(typical, { ...healthy, ess: 30 }).verdict).toBe("caution");
    expect(trustReport(typical, { ...healthy, ess: 4 }).verdict).toBe("do-not-trust");
    expect(trustReport(typical, { ...healthy, target: 1000 }).verdict).toBe("caution");
    expect(weightLevel({ ...healthy, paretoK: Number.NaN, ess: 15 }).level).toBe("caution");
  });

  it("says when a check is unavailable without lowering the verdict", () => {
    const none = trustReport(oodUnavailable("saved before the alarm existed"), healthy);
    expect(none.verdict).toBe("ok");
    expect(none.message).toMatch(/unavailable: saved before the alarm existed/);
    const amortized = trustReport(typical);
    expect(amortized.weights).toBeUndefined();
    expect(amortized.message).toMatch(/no importance weights/);
  });
});

// ---- through the engine --------------------------------------------------------------------

/** A line through 8 points: x_i = a + b·t_i, noise 0.2. */
const T = Array.from({ length: 8 }, (_, i) => i / 7);
const SIGMA = 0.2;
const line = (theta: ArrayLike<number>) => Float64Array.from(T, (t) => theta[0]! + theta[1]! * t);
const priors = { a: normal(0, 1), b: uniform(-2, 2) };
const networks = {
  flow: { nDims: 2, flowHidden: 16, numBlocks: 2 },
  featurizer: { type: "mlp" as const, dimIn: 8, dimOut: 8, hidden: [32] },
};

/** m observations from the prior predictive (θ from the prior, noise added), rows of 8. */
function priorPredictive(m: number, seed: number): Float64Array {
  const a = normals(keyAt(hostKey(seed), 0), m);
  const u = uniforms(keyAt(hostKey(seed), 2), m);
  const z = normals(keyAt(hostKey(seed), 1), 8 * m);
  const out = new Float64Array(8 * m);
  for (let o = 0; o < m; o++) {
    line([a[o]!, -2 + 4 * u[o]!]).forEach((v, i) => {
      out[8 * o + i] = v + SIGMA * z[8 * o + i]!;
    });
  }
  return out;
}

describe("the alarm through the engine (amortized line fit)", () => {
  const path = tempDir();
  let engine: NBI;
  const far = {
    // An intercept 7 prior σ out, a slope 4 times the prior's largest, data on another scale.
    offset: Array.from(line([7, 0.5]), (v) => v + 0.1),
    steep: Array.from(line([0, 8]), (v) => v - 0.1),
    scale: T.map((t) => 40 * t - 20),
  };
  /** A line with a wiggle the model cannot make, of the size of the prior predictive's spread. */
  const wiggle = T.map((t) => 0.3 + 0.5 * t + 1.5 * Math.sin(12 * t));
  beforeAll(async () => {
    engine = new NBI({ ...networks, simulator: line, priors, path, seed: 5 });
    await engine.fit({
      nSims: 800,
      nEpochs: 8,
      batchSize: 32,
      lr: 2e-3,
      noise: SIGMA,
      progress: false,
    });
  }, 60_000);

  it("does not fire on typical observations and fires on far ones", async () => {
    const typical = await engine.outOfDistribution(priorPredictive(60, 7));
    expect(typical).toHaveLength(60);
    expect(typical.every((r) => r.available)).toBe(true);
    expect(typical.filter((r) => r.level === "do-not-trust")).toHaveLength(0);
    expect(typical.filter((r) => r.level === "caution").length).toBeLessThanOrEqual(3);
    for (const [name, x] of Object.entries(far)) {
      const [report] = await engine.outOfDistribution(x);
      expect(report!.level, name).toBe("do-not-trust");
      expect(report!.distance, name).toBeGreaterThan(3 * report!.typicalDistance);
    }
  });

  it("puts one verdict on predict's result, with a warning when it is not ok", async () => {
    const typical = Array.from(priorPredictive(1, 8));
    const ok = await engine.predict(typical, { xErr: SIGMA, nSamples: 400 });
    expect(ok.trust.ood.level).toBe("ok");
    expect(ok.trust.weights).toBeDefined();
    expect(ok.trust.verdict).not.toBe("do-not-trust");
    const bad = await engine.predict(far.offset, { xErr: SIGMA, nSamples: 400 });
    expect(bad.trust.verdict).toBe("do-not-trust");
    expect(bad.warnings.some((w) => w.startsWith("do not trust this posterior:"))).toBe(true);
    const unweighted = await engine.predict(far.steep, { nSamples: 50 });
    expect(unweighted.surrogateOnly).toBe(true);
    expect(unweighted.trust.verdict).toBe("do-not-trust");
    expect(unweighted.trust.message).toMatch(/no importance weights/);
  });

  it("sees what the featurizer sees: the predictive check catches a misfit the distance may miss", async () => {
    // The featurizer reads a line's intercept and slope; a wiggle around a line need not move
    // its features far, which is why predict's verdict is not a goodness-of-fit test.
    const post = await engine.predict(wiggle, { xErr: SIGMA, nSamples: 400 });
    const check = await engine.posteriorPredictive(wiggle, post, { nDraws: 200 });
    expect(check.fit).toBe("misfit");
    expect(check.pValue).toBeLessThan(0.01);
  });

  it("reports the distance per observation in sampleBatch, the draws unchanged", async () => {
    const xs = Float64Array.from([...priorPredictive(3, 9), ...far.scale]);
    const plain = await engine.sampleBatch(xs, 20);
    const { samples, ood } = await engine.sampleBatch(xs, 20, { ood: true });
    expect(Array.from(samples)).toEqual(Array.from(plain));
    expect(ood.map((r) => r.level)).toEqual(
      (await engine.outOfDistribution(xs)).map((r) => r.level),
    );
    expect(ood[3]!.level).toBe("do-not-trust");
    await expect(engine.sampleBatch(xs, 20, { ood: "yes" as unknown as true })).rejects.toThrow(
      /sampleBatch: options\.ood expected true or false, got "yes"/,
    );
  });

  it("saves the statistics with the model; a model saved without them loads, alarm unavailable", async () => {
    const dir = tempDir();
    await engine.save(dir);
    expect(existsSync(join(dir, OOD_FILE))).toBe(true);
    const { metadata } = await readSafetensors(join(dir, OOD_FILE));
    // 80 validation simulations of 800: the reference the alarm measures against.
    expect(metadata).toMatchObject({ format: "nbi-ood", reference: "held-out", noise: "0.2" });
    const xs = Float64Array.from([...priorPredictive(4, 10), ...far.offset]);
    const before = await engine.outOfDistribution(xs);
    const loaded = await NBI.load(dir, { simulator: line });
    const after = await loaded.outOfDistribution(xs);
    after.forEach((r, i) => {
      expect(r.distance).toBeCloseTo(before[i]!.distance, 9);
      expect(r.tailProbability).toBeCloseTo(before[i]!.tailProbability, 12);
      expect(r.level).toBe(before[i]!.level);
    });
    rmSync(join(dir, OOD_FILE));
    const old = await NBI.load(dir, { simulator: line });
    const [none] = await old.outOfDistribution(far.offset);
    expect(none!.available).toBe(false);
    expect(none!.message).toMatch(
      /unavailable: .* was saved without training statistics \(ood\.safetensors/,
    );
    const post = await old.predict(far.offset, { xErr: SIGMA, nSamples: 100 });
    expect(post.trust.ood.available).toBe(false);
    expect(post.trust.message).toMatch(/out-of-distribution check is unavailable/);
    // A loaded engine does not know the fit's noise: the predictive check asks for it.
    await expect(old.posteriorPredictive(far.offset, post)).rejects.toThrow(
      /posteriorPredictive: xErr expected the measurement noise of the replicated data/,
    );
  });

  it("leaves the alarm unavailable, with the reason, after a fit on too few simulations", async () => {
    const tiny = new NBI({ ...networks, simulator: line, priors, path: tempDir(), seed: 1 });
    await tiny.fit({ nSims: 20, nEpochs: 1, batchSize: 8, noise: SIGMA, progress: false });
    const [report] = await tiny.outOfDistribution(far.offset);
    expect(report!.available).toBe(false);
    expect(report!.message).toMatch(/at least 25 training simulations/);
    const dir = tempDir();
    writeFileSync(join(dir, OOD_FILE), "stale"); // from an earlier model in the same folder
    await tiny.save(dir);
    expect(existsSync(join(dir, OOD_FILE))).toBe(false);
  });
});
