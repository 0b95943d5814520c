import { describe, expect, it } from "vitest";
import { c2st } from "../../bench/sbibm/c2st.js";
import { computeReference } from "../../bench/sbibm/reference.js";
import { Rng } from "../../bench/sbibm/rng.js";
import { getTask } from "../../bench/sbibm/tasks.js";
import { hostKey } from "../../src/inference/host.js";

function gaussian(n: number, d: number, seed: number, shift = 0, scale = 1): Float64Array {
  const rng = new Rng(seed);
  return Float64Array.from({ length: n * d }, (_, i) => scale * rng.normal() + (i % d ? 0 : shift));
}

describe("C2ST", () => {
  it("two samples of one distribution: accuracy ≈ 0.5", async () => {
    const r = await c2st(gaussian(600, 2, 1), gaussian(600, 2, 2), 2, { maxEpochs: 60 });
    console.log("C2ST identical:", r.accuracy.toFixed(3), "folds", r.foldAccuracy.join(" "));
    expect(r.foldAccuracy.length).toBe(5);
    expect(r.accuracy).toBeGreaterThan(0.42);
    expect(r.accuracy).toBeLessThan(0.58);
  });

  it("clearly separated distributions: accuracy ≈ 1", async () => {
    const r = await c2st(gaussian(600, 2, 1), gaussian(600, 2, 2, 6), 2, { maxEpochs: 60 });
    console.log("C2ST separated:", r.accuracy.toFixed(3));
    expect(r.accuracy).toBeGreaterThan(0.98);
  });

  it("a narrower distribution inside the reference is detected (the z-scored MLP is nonlinear)", async () => {
    const r = await c2st(gaussian(600, 3, 1), gaussian(600, 3, 2, 0, 0.3), 3, { maxEpochs: 60 });
    console.log("C2ST narrower:", r.accuracy.toFixed(3));
    expect(r.accuracy).toBeGreaterThan(0.75);
  });

  it("two_moons: two independent exact reference samplers ≈ 0.5; the prior against the posterior ≈ 1", async () => {
    const a = computeReference("two_moons", 1, { n: 800, effort: 0.02, seed: 0 }).samples;
    const b = computeReference("two_moons", 1, { n: 800, effort: 0.02, seed: 1 }).samples;
    const same = await c2st(a, b, 2, { maxEpochs: 60 });
    const prior = getTask("two_moons").prior.sample(hostKey(0), 800);
    const apart = await c2st(a, prior, 2, { maxEpochs: 60 });
    console.log(
      "C2ST two_moons reference vs reference:",
      same.accuracy.toFixed(3),
      "vs prior:",
      apart.accuracy.toFixed(3),
    );
    expect(same.accuracy).toBeLessThan(0.58);
    expect(apart.accuracy).toBeGreaterThan(0.85);
  });
});
