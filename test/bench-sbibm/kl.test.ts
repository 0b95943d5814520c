import { describe, expect, it } from "vitest";
import { closedFormLogEvidence, klToReference } from "../../bench/sbibm/kl.js";
import { loadReference } from "../../bench/sbibm/reference.js";
import { Rng } from "../../bench/sbibm/rng.js";
import { GLU_VAR, getTask } from "../../bench/sbibm/tasks.js";

const task = getTask("gaussian_linear_uniform");
const gluLogZ = (x: ArrayLike<number>) => closedFormLogEvidence(task, x)!;
const sd = Math.sqrt(GLU_VAR);
const LOG_2PI = Math.log(2 * Math.PI);
const logNormal = (v: number, mu: number, s: number) =>
  -0.5 * ((v - mu) / s) ** 2 - Math.log(s) - 0.5 * LOG_2PI;

describe("KL to the reference (bench/sbibm/kl.ts)", () => {
  it("gaussian_linear_uniform's closed-form evidence matches Monte Carlo", () => {
    // Z = 2^-d P(N(x, σ² I) ∈ [−1, 1]^d): the Gaussian likelihood integrates to one over θ.
    const x = task.observation(1).x;
    const rng = new Rng(5);
    const n = 200_000;
    let inside = 0;
    for (let i = 0; i < n; i++) {
      let ok = true;
      for (let j = 0; j < x.length && ok; j++) ok = Math.abs(x[j]! + sd * rng.normal()) <= 1;
      if (ok) inside++;
    }
    const p = inside / n;
    const mc = Math.log(p) - x.length * Math.log(2);
    const se = Math.sqrt((1 - p) / (n * p)); // of log p
    expect(Math.abs(gluLogZ(x) - mc)).toBeLessThan(4 * se);
  });

  it("gaussian_mixture's closed-form evidence matches Monte Carlo; other tasks have none", () => {
    const gm = getTask("gaussian_mixture");
    const x = gm.observation(1).x;
    // Z = E_θ~prior[L]: the box is 20 wide and the likelihood's mass sits near x, so draw θ from
    // the likelihood's own mixture instead and count the box: Z = 20^-2 P(θ ∈ box).
    const rng = new Rng(9);
    const n = 200_000;
    let inside = 0;
    for (let i = 0; i < n; i++) {
      const s = rng.uniform() < 0.5 ? 1 : 0.1;
      const a = x[0]! + s * rng.normal();
      const b = x[1]! + s * rng.normal();
      if (Math.abs(a) <= 10 && Math.abs(b) <= 10) inside++;
    }
    const p = inside / n;
    const se = Math.sqrt((1 - p) / (n * p));
    expect(p).toBeLessThan(0.99); // obs 1 sits near the box's edge: the truncation matters
    expect(Math.abs(closedFormLogEvidence(gm, x)! - (Math.log(p) - 2 * Math.log(20)))).toBeLessThan(
      4 * se,
    );
    expect(closedFormLogEvidence(getTask("slcp"), getTask("slcp").observation(1).x)).toBeNull();
  });

  it("matches per-dimension quadrature for a too-wide Gaussian surrogate, and is 0 for the posterior", () => {
    const x = task.observation(1).x;
    const ref = loadReference("gaussian_linear_uniform", 1);
    const d = task.dim;
    const n = ref.samples.length / d;
    const logZ = gluLogZ(x);
    const wide = 1.3 * sd;
    const logQ = new Float64Array(n);
    const logPost = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const th = ref.samples.subarray(i * d, (i + 1) * d);
      for (let j = 0; j < d; j++) logQ[i]! += logNormal(th[j]!, x[j]!, wide);
      logPost[i] = task.logLike(x, th) - d * Math.log(2) - logZ;
    }
    // The posterior factorises into truncated normals: KL is a sum of 1-D integrals.
    let exact = 0;
    const m = 20_000;
    for (let j = 0; j < d; j++) {
      const zj = Math.exp(gluLogZ([x[j]!]) + Math.log(2));
      let acc = 0;
      for (let k = 0; k <= m; k++) {
        const v = -1 + (2 * k) / m;
        const lp = logNormal(v, x[j]!, sd) - Math.log(zj);
        const w = k === 0 || k === m ? 0.5 : 1;
        acc += w * Math.exp(lp) * (lp - logNormal(v, x[j]!, wide));
      }
      exact += (acc * 2) / m;
    }
    const est = klToReference(task, ref, x, logQ, logZ);
    expect(exact).toBeGreaterThan(0.2);
    expect(Math.abs(est.kl - exact)).toBeLessThan(4 * est.se);
    const self = klToReference(task, ref, x, logPost, logZ);
    expect(Math.abs(self.kl)).toBeLessThan(1e-9);
    expect(() => klToReference(task, ref, x, logQ.subarray(1), logZ)).toThrow(/logQ expected/);
  });
});
