/**
 * Calibration statistics (SBC ranks, HPD expected coverage, TARP) and their verdict, on the
 * Gaussian-linear problem x = Mθ + N(0, σ²I), θ ~ N(0, I), whose posterior is known exactly:
 * exact draws must look calibrated, and posteriors made over-confident (sd × 0.5), under-
 * confident (sd × 2) or biased (one mean shifted by one posterior sd) must be caught and named.
 * Then NBI.calibrate end to end on a tiny amortized fit.
 */
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { NbiError } from "../../src/errors.js";
import {
  type CalibrationResult,
  calibrationFromSamples,
  chiSquarePValue,
  formatCalibration,
  gammaQ,
  hpdCoverage,
  ksPValue,
  ksUniform,
  sbc,
  tarp,
} from "../../src/inference/calibration/index.js";
import { NBI } from "../../src/inference/engine.js";
import { hostKey, keyAt, normals } from "../../src/inference/host.js";
import { normal, uniform } from "../../src/inference/priors.js";
import { coveragePlot, rankHistogramPlot } from "../../src/plots/index.js";
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

/** The posterior covariance Σ = (I + MᵀM/σ²)⁻¹ (the same for every x) as [Σ00, Σ01, Σ11]. */
function posteriorCov(): [number, number, number] {
  let a = 1;
  let b = 0;
  let d = 1;
  for (const row of M) {
    a += (row[0]! * row[0]!) / SIGMA ** 2;
    b += (row[0]! * row[1]!) / SIGMA ** 2;
    d += (row[1]! * row[1]!) / SIGMA ** 2;
  }
  const det = a * d - b * b;
  return [d / det, -b / det, a / det];
}

/** A posterior family around the exact one: sd scaled by `scale`, b's mean shifted by `shiftB` sd. */
interface Distortion {
  readonly scale: number;
  readonly shiftB: number;
}

/**
 * nTest test pairs from the prior and simulator, L draws from the (distorted) Gaussian posterior
 * at each, and the log-densities the HPD coverage needs, all on the host with fixed keys.
 */
function gaussianLinearCalibration(
  distortion: Distortion,
  nTest: number,
  L: number,
  seed: number,
): CalibrationResult {
  const [s00, s01, s11] = posteriorCov();
  const k = distortion.scale;
  // Cholesky of k²Σ, its inverse's quadratic form and log-determinant.
  const l00 = k * Math.sqrt(s00);
  const l10 = (k * s01) / Math.sqrt(s00);
  const l11 = k * Math.sqrt(s11 - (s01 * s01) / s00);
  const logNorm = -Math.log(2 * Math.PI) - Math.log(l00 * l11);
  const logq = (t0: number, t1: number, m0: number, m1: number) => {
    const z0 = (t0 - m0) / l00;
    const z1 = (t1 - m1 - l10 * z0) / l11;
    return logNorm - 0.5 * (z0 * z0 + z1 * z1);
  };
  const root = hostKey(seed);
  const theta = normals(keyAt(root, 0), 2 * nTest);
  const eps = normals(keyAt(root, 1), 6 * nTest);
  const z = normals(keyAt(root, 2), 2 * nTest * L);
  const samples = new Float64Array(nTest * L * 2);
  const logProbTrue = new Float64Array(nTest);
  const logProbSamples = new Float64Array(nTest * L);
  for (let i = 0; i < nTest; i++) {
    const x = simulate(theta.subarray(2 * i, 2 * i + 2)).map((v, r) => v + SIGMA * eps[6 * i + r]!);
    let u = 0;
    let v = 0;
    M.forEach((row, r) => {
      u += (row[0]! * x[r]!) / SIGMA ** 2;
      v += (row[1]! * x[r]!) / SIGMA ** 2;
    });
    const m0 = s00 * u + s01 * v;
    const m1 = s01 * u + s11 * v + distortion.shiftB * Math.sqrt(s11);
    logProbTrue[i] = logq(theta[2 * i]!, theta[2 * i + 1]!, m0, m1);
    for (let s = 0; s < L; s++) {
      const a = 2 * (i * L + s);
      const t0 = m0 + l00 * z[a]!;
      const t1 = m1 + l10 * z[a]! + l11 * z[a + 1]!;
      samples[a] = t0;
      samples[a + 1] = t1;
      logProbSamples[i * L + s] = logq(t0, t1, m0, m1);
    }
  }
  return calibrationFromSamples({
    theta,
    samples,
    logProbTrue,
    logProbSamples,
    nDims: 2,
    nSamples: L,
    labels: ["a", "b"],
    key: keyAt(root, 3),
  });
}

const N_TEST = 500;
const N_SAMPLES = 200;
const at = (r: CalibrationResult, level: number) =>
  r.coverage.atLevels.find((c) => Math.abs(c.level - level) < 1e-12)!.coverage;
/** Largest gap between the HPD coverage curve and the diagonal. */
const maxGap = (r: CalibrationResult) =>
  Math.max(...r.coverage.coverage.map((c, k) => Math.abs(c - r.coverage.levels[k]!)));

describe("uniformity tests", () => {
  it("give the textbook p-values", () => {
    expect(chiSquarePValue(3.841458820694124, 1)).toBeCloseTo(0.05, 6);
    expect(chiSquarePValue(18.307038053275146, 10)).toBeCloseTo(0.05, 6);
    expect(chiSquarePValue(30.143527205646155, 19)).toBeCloseTo(0.05, 6);
    expect(gammaQ(1, 2.5)).toBeCloseTo(Math.exp(-2.5), 12);
    expect(gammaQ(3, 40)).toBeCloseTo(Math.exp(-40) * (1 + 40 + 800), 25);
    // Kolmogorov's 5% point: λ = 1.3581.
    expect(ksPValue(1.3581 / (Math.sqrt(1e6) + 0.12 + 0.11 / 1e3), 1e6)).toBeCloseTo(0.05, 3);
    const grid = Float64Array.from({ length: 100 }, (_, i) => (i + 0.5) / 100);
    expect(ksUniform(grid).statistic).toBeCloseTo(0.005, 12);
    expect(ksUniform(grid.map((u) => u * u)).pValue).toBeLessThan(1e-3);
  });

  it("rank the true value among the draws (ties count half) and bin the ranks", () => {
    // 3 test pairs × 4 draws × 1 parameter.
    const s = sbc([0.5, 10, -10], [0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3], {
      nDims: 1,
      nSamples: 4,
      bins: 5,
    });
    expect(Array.from(s.parameters[0]!.ranks)).toEqual([1, 4, 0]);
    expect(Array.from(s.binStarts)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(Array.from(s.parameters[0]!.counts)).toEqual([1, 1, 0, 0, 1]);
    const ties = sbc([1, 1], [1, 1, 0, 2, 1, 1, 1, 1], { nDims: 1, nSamples: 4, bins: 2 });
    expect(Array.from(ties.parameters[0]!.ranks)).toEqual([2, 2]);
    // HPD credibility: the share of draws denser than θ*.
    const hpd = hpdCoverage([-1, -5], [0, -2, -3, -0.5, 0, 0, 0, -5], { nSamples: 4 });
    expect(Array.from(hpd.credibility)).toEqual([0.5, 0.875]);
  });

  it("name the argument, what was expected and what was given", () => {
    expect(() => sbc([0, 1], [0, 1, 2], { nDims: 1, nSamples: 2 })).toThrow(
      /sbc: samples expected 4 numbers .*, got 3 numbers/,
    );
    expect(() => sbc([0, Number.NaN], [0, 1, 2, 3], { nDims: 1, nSamples: 2 })).toThrow(
      /sbc: theta expected finite numbers, got NaN at index 1/,
    );
    expect(() => hpdCoverage([0, Number.NaN], [0, 0], { nSamples: 1 })).toThrow(NbiError);
    expect(() => tarp([0, 1], [0, 1, 2, 3], { nDims: 1, nSamples: 2 })).toThrow(
      /tarp: key expected a PRNG key/,
    );
  });
});

describe("calibration of exact and distorted Gaussian-linear posteriors", () => {
  const exact = gaussianLinearCalibration({ scale: 1, shiftB: 0 }, N_TEST, N_SAMPLES, 11);
  const narrow = gaussianLinearCalibration({ scale: 0.5, shiftB: 0 }, N_TEST, N_SAMPLES, 11);
  const wide = gaussianLinearCalibration({ scale: 2, shiftB: 0 }, N_TEST, N_SAMPLES, 11);
  const biased = gaussianLinearCalibration({ scale: 1, shiftB: 1 }, N_TEST, N_SAMPLES, 11);

  it("the exact posterior: uniform SBC ranks, diagonal coverage, verdict calibrated", () => {
    for (const r of [exact]) {
      const p = r.sbc.parameters;
      console.log(
        `exact: SBC χ² p ${p.map((q) => q.pValue.toFixed(3)).join(", ")}, mean-rank z ${p.map((q) => q.meanZ.toFixed(2)).join(", ")}, ` +
          `variance z ${p.map((q) => q.varianceZ.toFixed(2)).join(", ")}; HPD max gap ${maxGap(r).toFixed(3)} (KS p ${r.coverage.pValue.toFixed(3)}), ` +
          `90% → ${at(r, 0.9).toFixed(3)}; TARP gap ${r.tarp.ksStatistic.toFixed(3)} (p ${r.tarp.pValue.toFixed(3)})\n  ${r.verdict.summary}`,
      );
    }
    for (const q of exact.sbc.parameters) {
      expect(q.pValue).toBeGreaterThan(0.01);
      expect(Math.abs(q.meanZ)).toBeLessThan(3);
      expect(Math.abs(q.varianceZ)).toBeLessThan(3);
      expect(q.counts.reduce((a, b) => a + b, 0)).toBe(N_TEST);
    }
    // KS's 1% critical distance for 500 pairs is 1.63/√500 = 0.073.
    expect(maxGap(exact)).toBeLessThan(0.073);
    for (const c of exact.coverage.atLevels) {
      expect(Math.abs(c.coverage - c.level)).toBeLessThan(3 * c.se);
    }
    expect(Math.abs(exact.coverage.area)).toBeLessThan(0.02);
    expect(exact.tarp.ksStatistic).toBeLessThan(0.073);
    expect(exact.verdict.calibrated).toBe(true);
    expect(exact.verdict.findings).toEqual([]);
    expect(exact.verdict.summary).toMatch(
      /^calibrated: the 90% highest-density region covers \d+\.\d% of true parameters \(expected 90% ± 1\.3%\)/,
    );
    expect(exact.warnings).toEqual([]);
  });

  it("an over-confident posterior (sd × 0.5): coverage far below the diagonal, U-shaped ranks, named", () => {
    const r = narrow;
    console.log(
      `sd × 0.5: 90% region covers ${at(r, 0.9).toFixed(3)} (Gaussian theory 0.438), variance z ` +
        `${r.sbc.parameters.map((q) => q.varianceZ.toFixed(1)).join(", ")}, TARP p ${r.tarp.pValue.toExponential(1)}, ATC ${r.tarp.atc.toFixed(3)}\n  ${r.verdict.summary}`,
    );
    // In 2-D the level-γ region of the halved posterior holds θ* with probability
    // 1 − (1 − γ)^(1/4): 0.438 at 90%.
    expect(Math.abs(at(r, 0.9) - (1 - 0.1 ** 0.25))).toBeLessThan(0.06);
    expect(r.coverage.area).toBeLessThan(-0.2);
    expect(r.verdict.calibrated).toBe(false);
    expect(r.verdict.findings[0]).toMatchObject({ kind: "over-confident", test: "hpd" });
    expect(r.verdict.summary).toMatch(
      /^over-confident: the 90% highest-density region covers 4\d\.\d% of true parameters \(expected 90% ± 1\.3%; KS p = \d/,
    );
    for (const label of ["a", "b"]) {
      expect(r.verdict.findings).toContainEqual(
        expect.objectContaining({ kind: "over-confident", test: "sbc", parameter: label }),
      );
    }
    expect(r.verdict.findings.some((f) => f.kind === "biased")).toBe(false);
  });

  it("an under-confident posterior (sd × 2): coverage above the diagonal, named", () => {
    const r = wide;
    console.log(`sd × 2: 50% region covers ${at(r, 0.5).toFixed(3)}\n  ${r.verdict.summary}`);
    // 1 − (1 − γ)^4 at 50%: 0.9375.
    expect(Math.abs(at(r, 0.5) - 0.9375)).toBeLessThan(0.04);
    expect(r.verdict.findings[0]).toMatchObject({ kind: "under-confident", test: "hpd" });
    expect(r.verdict.summary).toMatch(
      /^under-confident \(conservative\): the \d+% highest-density/,
    );
    expect(r.tarp.atc).toBeGreaterThan(0);
  });

  it("a biased posterior (b's mean + 1 sd): skewed ranks in b, not in a, named with its direction", () => {
    const r = biased;
    const [a, b] = r.sbc.parameters;
    console.log(
      `b + 1 sd: mean rank a ${a!.meanRank.toFixed(3)}, b ${b!.meanRank.toFixed(3)} (theory Φ(−1/√2) = 0.240); ` +
        `90% → ${at(r, 0.9).toFixed(3)}; TARP p ${r.tarp.pValue.toExponential(1)}\n  ${r.verdict.summary}`,
    );
    expect(Math.abs(b!.meanRank - 0.2398)).toBeLessThan(0.03);
    expect(Math.abs(a!.meanZ)).toBeLessThan(3);
    const biasedFindings = r.verdict.findings.filter((f) => f.kind === "biased");
    expect(biasedFindings).toHaveLength(1);
    expect(biasedFindings[0]!.parameter).toBe("b");
    expect(r.verdict.findings.some((f) => f.parameter === "a")).toBe(false);
    expect(r.verdict.summary).toMatch(
      /biased in b: ranks skewed low \(mean normalised rank 0\.2\d, expected 0\.50 ± 0\.01\): the posterior overestimates b/,
    );
    // The HPD shortfall is put down to the bias, not to regions too narrow.
    expect(r.verdict.findings[0]).toMatchObject({ kind: "misplaced", test: "hpd" });
    expect(r.verdict.summary).not.toMatch(/over-confident/);
    expect(r.tarp.pValue).toBeLessThan(r.verdict.threshold);
  });
});

describe("calibration as text and pictures", () => {
  const narrow = gaussianLinearCalibration({ scale: 0.5, shiftB: 0 }, 200, 100, 12);

  it("formats the table and one finding per line", () => {
    const text = formatCalibration(narrow);
    expect(text).toMatch(/^calibration: 200 test pairs × 100 posterior draws\n/);
    expect(text).toMatch(
      /\na {10}[\d.]+\/19 +\S+ +0\.\d{3} ± 0\.\d{3} +0\.1\d{3} \(uniform 0\.0833\)\n/,
    );
    expect(text).toMatch(/\nverdict: not calibrated, \d findings:\n {2}- over-confident: the 90%/);
  });

  it("draws rank histograms with the uniform band and the coverage curves", async () => {
    const ranks = await rankHistogramPlot(narrow.sbc);
    // One panel per parameter, titled with its χ² p-value, and the band's rectangles.
    expect(ranks.svg).toContain("a   (χ² p = ");
    expect(ranks.svg).toContain("b   (χ² p = ");
    expect(ranks.svg).toContain("rank of θ* among 100 draws");
    const coverage = await coveragePlot(narrow.coverage, narrow.tarp);
    expect(coverage.svg).toContain("expected coverage");
    expect(coverage.svg).toMatch(/200 test pairs; HPD p = [\d.e-]+, TARP p = /);
    expect(coverage.svg).toContain(">TARP<");
    const png = await coverage.png(1);
    expect([...png.subarray(1, 4)]).toEqual([80, 78, 71]);
    await expect(coveragePlot({} as never)).rejects.toThrow(
      /coveragePlot: coverage expected a coverage curve/,
    );
  });
});

const runs = tempDirs("nbi-calibrate-")();

describe("NBI.calibrate on a tiny amortized fit", () => {
  // The Gaussian-linear simulator, failing (NaN) for a > 1.6: about 5% of the prior's draws.
  const failing = (theta: ArrayLike<number>) =>
    theta[0]! > 1.6 ? new Float64Array(6).fill(Number.NaN) : simulate(theta);
  const engine = new NBI({
    flow: { nDims: 2, flowHidden: 16, numBlocks: 2 },
    featurizer: { type: "mlp", dimIn: 6, dimOut: 8, hidden: [32] },
    simulator: failing,
    priors: { a: normal(0, 1), b: uniform(-2, 2) },
    path: join(runs, "engine"),
    seed: 3,
  });

  it("validates its options before anything runs", async () => {
    await expect(engine.calibrate()).rejects.toThrow(/calibrate: .*no trained network yet/);
    await expect(engine.calibrate({ nTest: 5 })).rejects.toThrow(
      /calibrate: nTest expected an integer ≥ 10 .*, got 5/,
    );
    await expect(engine.calibrate({ nSamples: 2.5 })).rejects.toThrow(
      /calibrate: nSamples expected an integer ≥ 20 .*, got 2\.5/,
    );
    await expect(
      engine.calibrate({ nTests: 100 } as unknown as Parameters<NBI["calibrate"]>[0]),
    ).rejects.toThrow(/calibrate: options expected only known options, got unknown "nTests"/);
    await expect(
      engine.calibrate({ key: 3 } as unknown as Parameters<NBI["calibrate"]>[0]),
    ).rejects.toThrow(/calibrate: key expected a PRNG key .*, got 3/);
  });

  it("ranks, coverage and TARP from the surrogate; failed test simulations counted", async () => {
    const t0 = performance.now();
    await engine.fit({
      nSims: 1500,
      nEpochs: 12,
      batchSize: 128,
      lr: 3e-3,
      noise: SIGMA,
      progress: false,
    });
    const t1 = performance.now();
    const result = await engine.calibrate({ nTest: 120, nSamples: 100, key: hostKey(8) });
    const t2 = performance.now();
    const again = await engine.calibrate({ nTest: 120, nSamples: 100, key: hostKey(8) });
    console.log(
      `fit ${((t1 - t0) / 1000).toFixed(1)} s, calibrate ${((t2 - t1) / 1000).toFixed(1)} s; ` +
        `${result.failed.total} failed; 90% → ${at(result, 0.9).toFixed(3)}, SBC p ` +
        `${result.sbc.parameters.map((q) => q.pValue.toFixed(3)).join(", ")}\n  ${result.verdict.summary}`,
    );
    expect(result.labels).toEqual(["a", "b"]);
    expect(result.nRequested).toBe(120);
    expect(result.failed.total).toBeGreaterThan(0);
    expect(result.failed.nonFinite).toBe(result.failed.total);
    expect(result.nTest).toBe(120 - result.failed.total);
    expect(result.warnings[0]).toMatch(
      new RegExp(
        `^${result.failed.total} of 120 test simulations failed \\(${result.failed.total} non-finite output\\)`,
      ),
    );
    expect(result.verdict.summary).toContain(
      `(${result.failed.total} of 120 test simulations failed`,
    );
    // The pairs kept are the ones whose simulation succeeded.
    for (let i = 0; i < result.nTest; i++) expect(result.theta[2 * i]!).toBeLessThanOrEqual(1.6);
    for (const p of result.sbc.parameters) {
      expect(p.ranks).toHaveLength(result.nTest);
      expect(Math.min(...p.ranks)).toBeGreaterThanOrEqual(0);
      expect(Math.max(...p.ranks)).toBeLessThanOrEqual(100);
      expect(p.counts.reduce((a, b) => a + b, 0)).toBe(result.nTest);
    }
    expect(result.coverage.credibility).toHaveLength(result.nTest);
    expect(result.tarp.fractions).toHaveLength(result.nTest);
    // A surrogate trained on this problem is close to calibrated; one fed the wrong data or
    // densities would be far off.
    expect(Math.abs(at(result, 0.9) - 0.9)).toBeLessThan(0.15);
    expect(Math.abs(result.coverage.area)).toBeLessThan(0.1);
    // Fixed key, same numbers.
    expect(Array.from(again.sbc.parameters[1]!.ranks)).toEqual(
      Array.from(result.sbc.parameters[1]!.ranks),
    );
    expect(Array.from(again.coverage.credibility)).toEqual(Array.from(result.coverage.credibility));
  }, 120_000);
});
