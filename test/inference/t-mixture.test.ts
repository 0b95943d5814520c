import { describe, expect, it } from "vitest";
import { hostKey, normals } from "../../src/inference/host.js";
import { fitTMixture, sampleTMixture, tMixtureLogDensity } from "../../src/inference/t-mixture.js";

/** Four tight modes at (±2, ±2), sd 0.1: log density up to a constant. */
function fourModes(a: number, b: number): number {
  let s = Number.NEGATIVE_INFINITY;
  for (const ma of [-2, 2])
    for (const mb of [-2, 2]) {
      const v = (-0.5 * ((a - ma) ** 2 + (b - mb) ** 2)) / 0.01;
      s = Math.max(s, v) + Math.log1p(Math.exp(-Math.abs(s - v)));
    }
  return s;
}

function ess(logW: Float64Array): number {
  let max = Number.NEGATIVE_INFINITY;
  for (const v of logW) max = Math.max(max, v);
  let s = 0;
  let q = 0;
  for (const v of logW) {
    const w = Math.exp(v - max);
    s += w;
    q += w * w;
  }
  return (s * s) / q;
}

describe("t mixture (predict's adapted proposal)", () => {
  // Weighted draws from a wide Gaussian (sd 2) towards the four-mode target.
  const n = 20_000;
  const wide = normals(hostKey(1), 2 * n).map((v) => 2 * v);
  const logW0 = Float64Array.from(
    { length: n },
    (_, i) =>
      fourModes(wide[2 * i]!, wide[2 * i + 1]!) + (wide[2 * i]! ** 2 + wide[2 * i + 1]! ** 2) / 8,
  );
  const max0 = Math.max(...logW0);
  const w0 = logW0.map((v) => Math.exp(v - max0));

  it("fitted to weighted draws, it finds every mode and lifts the ESS", () => {
    const mix = fitTMixture(wide, w0, 2, hostKey(2), { components: 8 });
    // Each mode holds about a quarter of the mixture's weight.
    const perMode = new Map<string, number>();
    for (let c = 0; c < mix.weights.length; c++) {
      const k = `${Math.sign(mix.means[2 * c]!)},${Math.sign(mix.means[2 * c + 1]!)}`;
      perMode.set(k, (perMode.get(k) ?? 0) + mix.weights[c]!);
      expect(Math.abs(Math.abs(mix.means[2 * c]!) - 2)).toBeLessThan(0.1);
    }
    expect(perMode.size).toBe(4);
    for (const w of perMode.values()) expect(Math.abs(w - 0.25)).toBeLessThan(0.1);
    const y = sampleTMixture(mix, n, hostKey(3));
    const lq = tMixtureLogDensity(mix, y);
    const logW1 = Float64Array.from(
      { length: n },
      (_, i) => fourModes(y[2 * i]!, y[2 * i + 1]!) - lq[i]!,
    );
    const before = ess(logW0);
    const after = ess(logW1);
    expect(before).toBeLessThan(0.02 * n);
    expect(after).toBeGreaterThan(0.5 * n);
  });

  it("its density integrates to one and its draws follow it", () => {
    const mix = fitTMixture(wide, w0, 2, hostKey(2), { components: 3, nu: 7 });
    // ∫ q by importance sampling from N(0, 3²I).
    const m = 100_000;
    const z = normals(hostKey(9), 2 * m).map((v) => 3 * v);
    const lq = tMixtureLogDensity(mix, z);
    let acc = 0;
    for (let i = 0; i < m; i++)
      acc += Math.exp(
        lq[i]! + Math.log(2 * Math.PI * 9) + (z[2 * i]! ** 2 + z[2 * i + 1]! ** 2) / 18,
      );
    expect(Math.abs(acc / m - 1)).toBeLessThan(0.03);
    // Draws: mean Σ w μ and variance ν/(ν − 2)·S + spread of the means, per coordinate.
    const y = sampleTMixture(mix, 200_000, hostKey(4));
    for (let a = 0; a < 2; a++) {
      let mean = 0;
      let second = 0;
      for (let c = 0; c < mix.weights.length; c++) {
        const mu = mix.means[2 * c + a]!;
        let s = 0;
        for (let b = 0; b <= a; b++) s += mix.chol[4 * c + 2 * a + b]! ** 2;
        mean += mix.weights[c]! * mu;
        second += mix.weights[c]! * (mu * mu + (s * mix.nu) / (mix.nu - 2));
      }
      let sm = 0;
      let ss = 0;
      for (let i = 0; i < 200_000; i++) {
        sm += y[2 * i + a]!;
        ss += y[2 * i + a]! ** 2;
      }
      sm /= 200_000;
      ss /= 200_000;
      expect(Math.abs(sm - mean)).toBeLessThan(0.02);
      expect(Math.abs(ss - sm * sm - (second - mean * mean)) / (second - mean * mean)).toBeLessThan(
        0.03,
      );
    }
  });

  it("a few effective draws give a wide component, not a collapsed one", () => {
    const mix = fitTMixture(
      wide,
      Float64Array.from({ length: n }, (_, i) => (i < 3 ? 1 : 0)),
      2,
      hostKey(5),
    );
    expect(mix.weights.length).toBe(1);
    // Three points cannot fix a 2-D covariance: most of it comes from their pooled spread.
    expect(mix.chol[0]!).toBeGreaterThan(0.1);
  });

  it("names the argument at fault", () => {
    expect(() =>
      fitTMixture(Float64Array.of(1, 2, 3), Float64Array.of(1, 1), 2, hostKey(0)),
    ).toThrow(/points/);
    expect(() => fitTMixture(Float64Array.of(1, 2), Float64Array.of(0), 2, hostKey(0))).toThrow(
      /weights.*positive/,
    );
    expect(() =>
      fitTMixture(Float64Array.of(1, 2), Float64Array.of(1), 2, hostKey(0), { nu: 2 }),
    ).toThrow(/options\.nu/);
    expect(() =>
      sampleTMixture(
        fitTMixture(Float64Array.of(1, 2), Float64Array.of(1), 2, hostKey(0)),
        -1,
        hostKey(0),
      ),
    ).toThrow(/\bn\b/);
  });
});
