import { describe, expect, it } from "vitest";
import { weightAdvice } from "../../src/inference/advice.js";

describe("weightAdvice", () => {
  it("says nothing when n_eff meets half the target and the efficiency is fair", () => {
    expect(
      weightAdvice({
        ess: 300,
        efficiency: 0.3,
        paretoK: 0.2,
        draws: 1000,
        redrawn: 10,
        target: 500,
      }),
    ).toBeUndefined();
    expect(
      weightAdvice({ ess: 80, efficiency: 0.08, paretoK: 0.5, draws: 1000, redrawn: 0, target: 0 }),
    ).toBeUndefined();
  });

  it("names heavy tails, leakage out of the prior and what to try, with the draws needed", () => {
    const text = weightAdvice({
      ess: 12,
      efficiency: 0.012,
      paretoK: 0.93,
      draws: 1000,
      redrawn: 1800,
      target: 500,
    });
    expect(text).toMatch(/n_eff 12\.0 of 1000 draws \(1\.2%\), target 500/);
    expect(text).toMatch(/Pareto k̂ 0\.93/);
    expect(text).toMatch(/proposal "mixture"/);
    expect(text).toMatch(/1800 surrogate draws fell outside the prior/);
    expect(text).toMatch(/nSamples ≈ 41667/);
  });

  it("a poor efficiency alone is worth a word even without a target", () => {
    const text = weightAdvice({
      ess: 20,
      efficiency: 0.02,
      paretoK: 0.4,
      draws: 1000,
      redrawn: 0,
      target: 0,
    });
    expect(text).toMatch(/overlaps the posterior only loosely/);
    expect(text).not.toMatch(/nSamples/);
  });

  it("after adapted stages, a poor efficiency without a target suggests a larger planned budget", () => {
    const diag = { ess: 289, efficiency: 0.029, paretoK: 0.5, draws: 10000, redrawn: 0, target: 0 };
    expect(weightAdvice({ ...diag, adapted: true })).toMatch(/a larger nSamples \(say 40000\)/);
    expect(weightAdvice({ ...diag, adapted: false })).not.toMatch(/nSamples/);
  });
});
