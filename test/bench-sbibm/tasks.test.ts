import { describe, expect, it } from "vitest";
import { Mt19937 } from "../../bench/sbibm/rng.js";
import {
  getTask,
  glmDesign,
  glmStimulus,
  slcpCov,
  TASK_NAMES,
  type Task,
  twoMoonsShift,
} from "../../bench/sbibm/tasks.js";

/** M simulations at θ (rows of dataSize). */
function simulateMany(task: Task, theta: Float64Array, m: number, seed0 = 1): Float64Array[] {
  return Array.from({ length: m }, (_, i) => task.simulator(theta, { seed: seed0 + i }));
}

/** Mean and standard error of exp(ℓ(x; θ2) − ℓ(x; θ1)) over simulations at θ1. */
function ratioMean(task: Task, theta1: Float64Array, theta2: Float64Array, m: number) {
  const xs = simulateMany(task, theta1, m, 1000);
  const r = xs.map((x) => Math.exp(task.logLike(x, theta2) - task.logLike(x, theta1)));
  const mean = r.reduce((a, b) => a + b, 0) / m;
  const sd = Math.sqrt(r.reduce((a, b) => a + (b - mean) ** 2, 0) / (m - 1));
  return { mean, se: sd / Math.sqrt(m) };
}

// A second θ per task near observation 1's true θ, whose data support is nested in θ1's.
const shifted: Record<string, (t: Float64Array) => Float64Array> = {
  // two_moons: move z1 = (θ1 − θ0)/√2 by 0.004 keeping |z0|, so the half-plane support is the same.
  two_moons: (t) => Float64Array.of(t[0]! - 0.002 * Math.SQRT2, t[1]! + 0.002 * Math.SQRT2),
  slcp: (t) => t.map((v, i) => v + [0.1, 0.02, -0.02, 0.03, -0.1][i]!),
  gaussian_linear_uniform: (t) => t.map((v) => v - 0.1 * Math.sign(v)),
  gaussian_mixture: (t) => t.map((v, i) => v + (i ? 0.05 : -0.05)),
  bernoulli_glm: (t) => t.map((v, i) => v + (i % 2 ? 0.05 : -0.05)),
};

describe("sbibm tasks: the likelihood is the simulator's density", () => {
  for (const name of TASK_NAMES) {
    it(`${name}: E_θ1[p(x|θ2)/p(x|θ1)] = 1 over simulations (the likelihood ratio identity)`, () => {
      const task = getTask(name);
      const theta1 = task.observation(1).theta;
      const theta2 = shifted[name]!(theta1);
      expect(task.prior.logProb(theta2)[0]).toBeGreaterThan(Number.NEGATIVE_INFINITY);
      const { mean, se } = ratioMean(task, theta1, theta2, 20_000);
      expect(Math.abs(mean - 1)).toBeLessThan(Math.max(4.5 * se, 1e-3));
      // The check is sensitive: the ratio is far from constant.
      expect(se).toBeGreaterThan(1e-3);
    });
  }

  it("every task: sizes, observations 1–10 inside the prior, the data's log-likelihood finite", () => {
    for (const name of TASK_NAMES) {
      const task = getTask(name);
      expect(task.prior.dim).toBe(task.dim);
      for (let k = 1; k <= 10; k++) {
        const o = task.observation(k);
        expect(o.theta.length).toBe(task.dim);
        expect(o.x.length).toBe(task.dataSize);
        expect(task.prior.logProb(o.theta)[0]).toBeGreaterThan(Number.NEGATIVE_INFINITY);
        expect(Number.isFinite(task.logLike(o.x, o.theta))).toBe(true);
      }
      const x = task.simulator(task.observation(2).theta, { seed: 5 });
      expect(Array.from(task.simulator(task.observation(2).theta, { seed: 5 }))).toEqual(
        Array.from(x),
      );
    }
  });

  it("two_moons: the density integrates to 1 over x, and the arms are mirror images", () => {
    const task = getTask("two_moons");
    const theta = task.observation(1).theta;
    const [s0, s1] = twoMoonsShift(theta);
    // The moon is centred at (0.25 + s0, s1) with radius 0.1 ± a few 0.01.
    const h = 0.0005;
    let total = 0;
    for (let u = -0.2; u <= 0.2; u += h)
      for (let v = -0.2; v <= 0.2; v += h)
        total += Math.exp(task.logLike([0.25 + s0 + u, s1 + v], theta)) * h * h;
    expect(total).toBeCloseTo(1, 2);
    // z0 → −z0: (θ0, θ1) → (−θ1, −θ0) leaves the likelihood unchanged.
    const mirror = Float64Array.of(-theta[1]!, -theta[0]!);
    const x = task.observation(1).x;
    expect(task.logLike(x, mirror)).toBeCloseTo(task.logLike(x, theta), 12);
    expect(task.modes!.of(mirror)).not.toBe(task.modes!.of(theta));
  });

  it("simulators' moments match the definitions", () => {
    const m = 20_000;
    // Gaussian linear uniform: x ~ N(θ, 0.1 I).
    const glu = getTask("gaussian_linear_uniform");
    const tg = glu.observation(1).theta;
    const xg = simulateMany(glu, tg, m);
    for (const j of [0, 5, 9]) {
      const mean = xg.reduce((a, x) => a + x[j]!, 0) / m;
      const v = xg.reduce((a, x) => a + (x[j]! - tg[j]!) ** 2, 0) / m;
      expect(Math.abs(mean - tg[j]!)).toBeLessThan(4 * Math.sqrt(0.1 / m));
      expect(v).toBeCloseTo(0.1, 2);
    }
    // Gaussian mixture: variance 0.5 · 1 + 0.5 · 0.01 per coordinate.
    const gm = getTask("gaussian_mixture");
    const tm = gm.observation(1).theta;
    const xm = simulateMany(gm, tm, m);
    const vm = xm.reduce((a, x) => a + (x[0]! - tm[0]!) ** 2, 0) / m;
    expect(Math.abs(vm - 0.505)).toBeLessThan(0.03);
    // SLCP: each of the 4 points ~ N((θ0, θ1), S(θ)).
    const slcp = getTask("slcp");
    const ts = slcp.observation(4).theta;
    const [a, b, c] = slcpCov(ts);
    const xs = simulateMany(slcp, ts, m / 4);
    let s00 = 0;
    let s01 = 0;
    let s11 = 0;
    for (const x of xs)
      for (let j = 0; j < 4; j++) {
        const d0 = x[2 * j]! - ts[0]!;
        const d1 = x[2 * j + 1]! - ts[1]!;
        s00 += d0 * d0;
        s01 += d0 * d1;
        s11 += d1 * d1;
      }
    expect(s00 / m / a).toBeCloseTo(1, 1);
    expect(s11 / m / c).toBeCloseTo(1, 1);
    expect(s01 / m / Math.sqrt(a * c)).toBeCloseTo(b / Math.sqrt(a * c), 1);
    // Bernoulli GLM: E[s] = Xᵀ σ(Xθ) (the exponential family's mean, ∇A(θ)).
    const glm = getTask("bernoulli_glm");
    const tb = glm.observation(1).theta;
    const X = glmDesign();
    const want = new Float64Array(10);
    for (let t = 0; t < 100; t++) {
      let psi = 0;
      for (let i = 0; i < 10; i++) psi += X[t * 10 + i]! * tb[i]!;
      const p = 1 / (1 + Math.exp(-psi));
      for (let i = 0; i < 10; i++) want[i]! += X[t * 10 + i]! * p;
    }
    const xb = simulateMany(glm, tb, 5000);
    for (let i = 0; i < 10; i++) {
      const mean = xb.reduce((acc, x) => acc + x[i]!, 0) / xb.length;
      expect(Math.abs(mean - want[i]!)).toBeLessThan(0.15);
    }
  });
});

describe("sbibm tasks: the Bernoulli GLM's stimulus is sbibm's", () => {
  it("MT19937 with NumPy's legacy polar method reproduces RandomState(42).randn()", () => {
    const mt = new Mt19937(42);
    const first = Array.from({ length: 4 }, () => mt.legacyGauss());
    // The values NumPy prints for np.random.RandomState(42).randn(4).
    const numpy = [
      0.4967141530112327, -0.13826430117118466, 0.6476885381006925, 1.5230298564080254,
    ];
    first.forEach((v, i) => {
      expect(v).toBeCloseTo(numpy[i]!, 14);
    });
  });

  it("observation 1's published spike train gives its published sufficient statistics", () => {
    // sbibm/tasks/bernoulli_glm/files/num_observation_1/observation_raw.csv (public data).
    const raw =
      "1101111111100000011111110001110111100000111100001110001111001100011111001110000000111000111110000111";
    const y = Array.from(raw, Number);
    expect(y.length).toBe(100);
    const X = glmDesign();
    const s = new Float64Array(10);
    for (let t = 0; t < 100; t++) for (let i = 0; i < 10; i++) s[i]! += y[t]! * X[t * 10 + i]!;
    const published = getTask("bernoulli_glm").observation(1).x;
    for (let i = 0; i < 10; i++) expect(s[i]).toBeCloseTo(published[i]!, 4);
    expect(glmStimulus()[0]).toBe(Math.fround(0.4967141530112327));
  });

  it("the prior's covariance inverts sbibm's precision diag(0.5, FᵀF)", () => {
    const prior = getTask("bernoulli_glm").prior;
    expect(prior.std()[0]).toBeCloseTo(Math.sqrt(2), 12);
    expect(prior.toJSON().type).toBe("multivariateNormal");
  });
});
