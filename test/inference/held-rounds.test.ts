/**
 * Which importance samples of one posterior hold (held-rounds.ts): on a two-mode target, a
 * proposal that covers one mode gives light-tailed weights and a fair ESS, and only its evidence,
 * short by the missed mode's mass, gives it away.
 */
import { describe, expect, it } from "vitest";
import { EVIDENCE_Z, evidenceShort, lightTailed } from "../../src/inference/held-rounds.js";
import { hostKey, normals } from "../../src/inference/host.js";
import { importanceWeights, PARETO_K_UNRELIABLE } from "../../src/inference/importance.js";

const logNormal = (x: number, mu: number, sd: number) =>
  -0.5 * ((x - mu) / sd) ** 2 - Math.log(sd) - 0.5 * Math.log(2 * Math.PI);
/** The target: equal modes at ±6 (unit sds), total mass 1, so log Z = 0. */
const logTarget = (x: number) =>
  Math.log(0.5 * Math.exp(logNormal(x, -6, 1)) + 0.5 * Math.exp(logNormal(x, 6, 1)));

/** n draws from N(mu, sd²) weighed against the target. */
function sample(seed: number, n: number, mu: number, sd: number) {
  const z = normals(hostKey(seed), n);
  return importanceWeights(
    Float64Array.from(z, (e) => {
      const x = mu + sd * e;
      return logTarget(x) - logNormal(x, mu, sd);
    }),
  );
}

describe("evidenceShort and lightTailed", () => {
  const both = sample(1, 2000, 0, 4); // covers both modes
  const one = sample(2, 2000, 6, 1.3); // covers the mode at +6 only
  const narrow = sample(3, 2000, 0, 1.5); // between the modes: heavy-tailed weights

  it("a one-mode proposal looks fine by its tails and ESS, but its evidence is short", () => {
    expect(one.paretoK).toBeLessThanOrEqual(PARETO_K_UNRELIABLE);
    expect(one.nEff).toBeGreaterThan(1000);
    expect(Math.abs(both.logEvidence)).toBeLessThan(EVIDENCE_Z * both.logEvidenceSe + 0.02);
    expect(one.logEvidence).toBeCloseTo(Math.log(0.5), 1);
    expect(evidenceShort(one, both)).toBe(true);
    expect(evidenceShort(both, one)).toBe(false);
  });

  it("a proposal between the modes has heavy tails", () => {
    expect(narrow.paretoK).toBeGreaterThan(PARETO_K_UNRELIABLE);
    expect(lightTailed(narrow)).toBe(false);
    expect(lightTailed(both) && lightTailed(one)).toBe(true);
  });

  it("two samples of the same posterior differ by noise only", () => {
    const again = sample(4, 2000, 0, 4);
    expect(evidenceShort(again, both) || evidenceShort(both, again)).toBe(false);
  });

  it("cannot compare a single draw, which counts as short", () => {
    const single = importanceWeights(Float64Array.of(0));
    expect(evidenceShort(single, both)).toBe(true);
  });
});
