import { describe, expect, it } from "vitest";
import * as bij from "../../src/bijectors/index.js";
import { type Array, jit, np, random, tree, valueAndGrad } from "../../src/index.js";
import * as optim from "../../src/optim/index.js";
import { useTestBackend } from "../helpers/backends.js";

/** Fresh-init MADEs are near the identity (zero biases); perturb every leaf so densities are curved. */
function perturbed(params: bij.FlowParams, seed: number, size = 0.4): bij.FlowParams {
  const leaves = tree.leaves<Array>(params);
  const keys = random.splitList(random.key(seed), leaves.length);
  let i = 0;
  return tree.map(
    (p: Array) => np.add(p, np.mul(random.normal(keys[i++]!, p.shape, { dtype: p.dtype }), size)),
    params,
  ) as bij.FlowParams;
}

/** Trapezoid rule weights on a uniform grid. */
function trapezoid(values: ArrayLike<number>, h: number): number {
  let s = 0;
  for (let i = 0; i < values.length; i++)
    s += values[i]! * (i === 0 || i === values.length - 1 ? 0.5 : 1);
  return s * h;
}

describe("flow densities integrate to 1 (cpu, float64)", () => {
  useTestBackend("cpu");
  const cases1d: [string, bij.Flow][] = [
    ["maf", bij.maf({ nDims: 1, flowHidden: 8, numBlocks: 3 })],
    ["maf, nMog 3", bij.maf({ nDims: 1, flowHidden: 8, numBlocks: 2, nMog: 3 })],
    ["nsf", bij.nsf({ nDims: 1, flowHidden: 8, numBlocks: 2, bins: 5, bound: 3 })],
  ];
  for (const [name, flow] of cases1d) {
    it(`1-D ${name}`, () => {
      const params = perturbed(flow.init(random.key(1), { dtype: "float64" }), 2);
      const n = 6001;
      const [lo, hi] = [-25, 25];
      const grid = np.reshape(np.linspace(lo, hi, n, { dtype: "float64" }), [n, 1]);
      const p = np.exp(flow.logProb(params, grid)).dataSync();
      const mass = trapezoid(p, (hi - lo) / (n - 1));
      expect(mass).toBeGreaterThan(0.999);
      expect(mass).toBeLessThan(1.001);
    });
  }

  // The mixture's log-scales are unclamped network outputs (as nbi's), so large perturbations give
  // heavy tails beyond the grid; its case uses a smaller one.
  const cases2d: [string, bij.Flow, Array | undefined, number][] = [
    ["maf", bij.maf({ nDims: 2, flowHidden: 8, numBlocks: 3 }), undefined, 0.3],
    [
      "maf with context",
      bij.maf({ nDims: 2, flowHidden: 8, numBlocks: 2, contextDim: 2 }),
      np.array([0.7, -1.3], { dtype: "float64" }),
      0.3,
    ],
    ["maf, nMog 3", bij.maf({ nDims: 2, flowHidden: 8, numBlocks: 2, nMog: 3 }), undefined, 0.1],
    ["nsf", bij.nsf({ nDims: 2, flowHidden: 8, numBlocks: 2, bins: 4, bound: 3 }), undefined, 0.3],
  ];
  for (const [name, flow, context, size] of cases2d) {
    it(`2-D ${name}`, () => {
      const params = perturbed(flow.init(random.key(3), { dtype: "float64" }), 4, size);
      const n = 241;
      const [lo, hi] = [-12, 12];
      const axis = np.linspace(lo, hi, n, { dtype: "float64" });
      const gx = np.broadcastTo(np.reshape(axis, [n, 1]), [n, n]);
      const gy = np.broadcastTo(np.reshape(axis, [1, n]), [n, n]);
      const pts = np.reshape(np.stack([gx, gy], -1), [n * n, 2]);
      const ctx = context === undefined ? undefined : np.broadcastTo(context, [n * n, 2]);
      const p = np.exp(flow.logProb(params, pts, ctx)).dataSync();
      const h = (hi - lo) / (n - 1);
      const rowMass = globalThis.Array.from({ length: n }, (_, i) =>
        trapezoid(p.subarray(i * n, (i + 1) * n), h),
      );
      const mass = trapezoid(rowMass, h);
      expect(mass).toBeGreaterThan(0.995);
      expect(mass).toBeLessThan(1.005);
    });
  }
});

describe("flow sampling (cpu)", () => {
  useTestBackend("cpu");
  it("sampleAndLogProb agrees with logProb at the samples, and sample with the same key", () => {
    for (const flow of [
      bij.maf({ nDims: 3, flowHidden: 8, numBlocks: 2, nMog: 2, contextDim: 1, permSeed: 3 }),
      bij.nsf({ nDims: 3, flowHidden: 8, numBlocks: 2, bins: 4 }),
    ]) {
      const params = perturbed(flow.init(random.key(5), { dtype: "float64" }), 6, 0.3);
      const ctx = flow.contextDim > 0 ? np.array([0.4], { dtype: "float64" }) : undefined;
      const [s, lp] = flow.sampleAndLogProb(params, random.key(9), 50, ctx);
      expect(s.shape).toEqual([50, 3]);
      const again = flow.logProb(
        params,
        s,
        ctx === undefined ? undefined : np.broadcastTo(ctx, [50, 1]),
      );
      const a = lp.dataSync();
      const b = again.dataSync();
      for (let i = 0; i < 50; i++)
        expect(Math.abs(a[i]! - b[i]!)).toBeLessThan(1e-8 * (1 + Math.abs(b[i]!)));
      expect(flow.sample(params, random.key(9), 50, ctx).tolist()).toEqual(s.tolist());
    }
  });
  it("the Distribution view has sample shape [...shape, nDims]", () => {
    const flow = bij.maf({ nDims: 2, flowHidden: 4, numBlocks: 1 });
    const d = flow.distribution(flow.init(random.key(0)));
    expect(d.sample(random.key(1), [3, 4]).shape).toEqual([3, 4, 2]);
    expect(d.logProb(d.sample(random.key(1), [3, 4])).shape).toEqual([3, 4]);
  });
  it("validates its options and inputs", () => {
    expect(() => bij.maf({ nDims: 0 })).toThrow(
      /maf: options.nDims expected a positive integer, got 0/,
    );
    const flow = bij.maf({ nDims: 2, contextDim: 3, flowHidden: 4, numBlocks: 1 });
    const p = flow.init(random.key(0));
    expect(() => flow.logProb(p, np.zeros([5, 2]))).toThrow(
      /maf: context expected an array \[\.\.\., 3\]/,
    );
    expect(() => flow.logProb(p, np.zeros([5, 3]), np.zeros([5, 3]))).toThrow(/theta expected/);
  });
});

// Banana: y1 ~ N(0, 1), y2 = x2 + B (y1² − 1) with x2 ~ N(0, S²). The bend is volume-preserving, so
// the entropy is the Gaussian's: log(2πe) + log(S).
const S = 0.5;
const BEND = 0.5;
const ENTROPY = Math.log(2 * Math.PI * Math.E) + Math.log(S);

function banana(key: Array, n: number): Array {
  const z = random.normal(key, [n, 2]);
  const y1 = np.index(z, 0, 1);
  const y2 = np.add(np.mul(np.index(z, 1, 1), S), np.mul(BEND, np.sub(np.square(y1), 1)));
  return np.stack([y1, y2], 1);
}

/** Two-sample Kolmogorov–Smirnov statistic. */
function ks(a: number[], b: number[]): number {
  const x = [...a].sort((p, q) => p - q);
  const y = [...b].sort((p, q) => p - q);
  let i = 0;
  let j = 0;
  let d = 0;
  while (i < x.length && j < y.length) {
    const v = Math.min(x[i]!, y[j]!);
    while (i < x.length && x[i]! <= v) i++;
    while (j < y.length && y[j]! <= v) j++;
    d = Math.max(d, Math.abs(i / x.length - j / y.length));
  }
  return d;
}

/** Trains a flow by Adam on consecutive batches of 256 rows of `data` (one pass, under jit). */
function trainFlow(flow: bij.Flow, key: Array, data: Array, steps: number): bij.FlowParams {
  let params = flow.init(key);
  const opt = optim.adam(optim.cosineWarmRestarts({ init: 1e-2, period: steps, min: 1e-3 }));
  let state = opt.init(params);
  const loss = (p: bij.FlowParams, x: Array) => np.neg(np.mean(flow.logProb(p, x)));
  const step = jit((p: bij.FlowParams, s: typeof state, x: Array) => {
    const [l, g] = valueAndGrad(loss)(p, x);
    const { updates, state: next } = opt.update(g, s, p);
    return { params: optim.applyUpdates(p, updates), state: next, loss: l };
  });
  for (let t = 0; t < steps; t++) {
    const r = step(params, state, np.slice(data, [t * 256, (t + 1) * 256]));
    params = r.params;
    state = r.state;
  }
  return params;
}

describe("training a MAF with grad + Adam (cpu, fixed key)", () => {
  useTestBackend("cpu");
  it("reaches the banana's entropy within 0.05 nats, and its samples pass two-sample KS tests", () => {
    const flow = bij.maf({ nDims: 2, flowHidden: 32, numBlocks: 2 });
    const params = trainFlow(flow, random.key(0), banana(random.key(1), 400 * 256), 400);
    const loss = (p: bij.FlowParams, x: Array) => np.neg(np.mean(flow.logProb(p, x)));
    const test = banana(random.key(2), 20000);
    const nll = loss(params, test).item();
    // Held-out NLL estimates the cross-entropy H(p) + KL(p‖q) ≥ H(p); 20000 draws give a standard
    // error of about 0.01 nats, so the lower bound allows 0.05 of sampling noise.
    expect(nll).toBeGreaterThan(ENTROPY - 0.05);
    expect(nll).toBeLessThan(ENTROPY + 0.05);

    const n = 2000;
    const fromFlow = flow.sample(params, random.key(3), n).tolist() as number[][];
    const fromTarget = banana(random.key(4), n).tolist() as number[][];
    const projections: [string, (v: number[]) => number][] = [
      ["y1", (v) => v[0]!],
      ["y2", (v) => v[1]!],
      ["y1 + y2", (v) => v[0]! + v[1]!],
      ["unbent", (v) => v[1]! - BEND * (v[0]! * v[0]! - 1)],
    ];
    // KS critical value for α = 0.001 per projection, n = m = 2000: 1.95 · sqrt(2 / n).
    const critical = 1.95 * Math.sqrt(2 / n);
    for (const [name, f] of projections) {
      const d = ks(fromFlow.map(f), fromTarget.map(f));
      expect(d, name).toBeLessThan(critical);
    }
  }, 60_000);
});

/** Equal mixture of N((-2, 0), 0.5²I) and N((2, 1), 0.5²I). */
function mixture(key: Array, n: number): Array {
  const [kc, kz] = random.splitList(key);
  const side = np.astype(random.bernoulli(kc!, 0.5, [n, 1]), "float32");
  const centre = np.add(np.mul(side, np.array([[4, 1]])), np.array([[-2, 0]]));
  return np.add(centre, np.mul(random.normal(kz!, [n, 2]), 0.5));
}

describe("a MAF with nbi's mixture-of-Gaussians block on a 2-D mixture (cpu, fixed key)", () => {
  useTestBackend("cpu");
  it("samples from the trained flow pass two-sample KS tests against the mixture", () => {
    const flow = bij.maf({ nDims: 2, flowHidden: 32, numBlocks: 2, nMog: 2 });
    const params = trainFlow(flow, random.key(10), mixture(random.key(11), 500 * 256), 500);
    const n = 2000;
    const fromFlow = flow.sample(params, random.key(12), n).tolist() as number[][];
    const fromTarget = mixture(random.key(13), n).tolist() as number[][];
    const critical = 1.95 * Math.sqrt(2 / n); // α = 0.001 per projection
    const projections: [string, (v: number[]) => number][] = [
      ["x", (v) => v[0]!],
      ["y", (v) => v[1]!],
      ["x + y", (v) => v[0]! + v[1]!],
      ["x - y", (v) => v[0]! - v[1]!],
    ];
    for (const [name, f] of projections) {
      expect(ks(fromFlow.map(f), fromTarget.map(f)), name).toBeLessThan(critical);
    }
  }, 60_000);
});
