import { describe, expect, it } from "vitest";
import * as bij from "../../src/bijectors/index.js";
import { type Array, grad, np, random, tree } from "../../src/index.js";
import { useTestBackend } from "../helpers/backends.js";

const f64 = { dtype: "float64" as const };

describe("combinators, MADE, spline (cpu)", () => {
  useTestBackend("cpu");

  it("chain([b1, b2]) applies b2 first", () => {
    const c = bij.chain([bij.shift(1), bij.scale(2)]);
    expect(c.forward(np.array([[3]], f64)).item()).toBe(7); // 2·3 + 1, not 2·(3 + 1)
    expect(c.inverse(np.array([[7]], f64)).item()).toBe(3);
    expect(c.forwardLogDet(np.array([[3]], f64)).item()).toBeCloseTo(Math.log(2), 12);
  });

  it("blockwise maps consecutive slices; conditional needs a context", () => {
    const b = bij.blockwise([bij.shift(10), bij.scale(3)], [1, 2]);
    expect(b.forward(np.array([[1, 2, 3]], f64)).tolist()).toEqual([[11, 6, 9]]);
    const c = bij.conditional((ctx: Array) => bij.shift(ctx));
    expect(() => c.forward(np.zeros([1, 2]))).toThrow(/conditional: context expected an array/);
    expect(() => bij.chain([])).toThrow(/chain: bijectors expected a non-empty list/);
    expect(() => bij.permute([0, 0, 1])).toThrow(/permute: perm expected a permutation of 0..2/);
  });

  it("MADE masks: output i connects (through every path) only to inputs < i", () => {
    for (const [d, hidden] of [
      [3, [5, 4]],
      [5, [8]],
      [1, [3, 3]],
    ] as const) {
      const masks = bij.madeMasks(d, hidden, 2);
      // Connectivity = product of the masks; entry [input j, output of coordinate i] must be 0 for j ≥ i.
      let conn = masks[0]!;
      for (const m of masks.slice(1)) {
        conn = conn.map((row) =>
          m[0]!.map((_, c) => row.reduce((s, v, k) => s + v * m[k]![c]!, 0)),
        );
      }
      conn.forEach((row, j) => {
        row.forEach((v, o) => {
          if (j >= Math.floor(o / 2)) expect(v).toBe(0);
        });
      });
      // ...and is not trivially zero: coordinate d−1 sees input 0 when d > 1.
      if (d > 1) expect(conn[0]![2 * (d - 1)]).toBeGreaterThan(0);
    }
  });

  it("orthogonal init has orthonormal columns (tall) or rows (wide)", () => {
    for (const [r, c] of [
      [6, 3],
      [3, 6],
      [4, 4],
    ] as const) {
      const w = bij.orthogonal(random.key(r * 10 + c), r, c, f64);
      const g = r >= c ? np.matmul(np.transpose(w), w) : np.matmul(w, np.transpose(w));
      const eye = np.eye(Math.min(r, c), undefined, f64);
      expect(np.max(np.abs(np.sub(g, eye))).item()).toBeLessThan(1e-12);
    }
  });

  it("the spline is the identity outside [−B, B] and continuous at the knots' ends", () => {
    const t = bij.rationalQuadraticSpline({ bins: 4, bound: 2 });
    const raw = random.normal(random.key(1), [1, 3, t.nParams], f64);
    const b = t(raw);
    const x = np.array([[-3, 2.5, 7]], f64);
    expect(b.forward(x).tolist()).toEqual(x.tolist());
    expect(b.forwardLogDet(x).item()).toBe(0);
    const edge = b.forward(np.array([[-2, 2, 1.999999]], f64)).dataSync();
    expect(edge[0]).toBeCloseTo(-2, 12);
    expect(edge[1]).toBeCloseTo(2, 12);
    expect(edge[2]).toBeCloseTo(2, 4);
  });

  it("gradients of a flow's log-prob match central differences (float64)", () => {
    for (const flow of [
      bij.maf({ nDims: 2, flowHidden: 6, numBlocks: 2, nMog: 2, contextDim: 1, clampMode: "soft" }),
      bij.nsf({ nDims: 2, flowHidden: 6, numBlocks: 1, bins: 3, bound: 3 }),
    ]) {
      const params = flow.init(random.key(2), f64);
      const theta = np.array(
        [
          [0.3, -0.8],
          [1.1, 0.4],
        ],
        f64,
      );
      const ctx = flow.contextDim > 0 ? np.array([[0.5], [-1]], f64) : undefined;
      const f = (p: bij.FlowParams) => np.sum(flow.logProb(p, theta, ctx));
      const g = grad(f)(params);
      const leaves = tree.leaves<Array>(params);
      const dirs = leaves.map((l, i) => random.normal(random.key(100 + i), l.shape, f64));
      const def = tree.structure(params);
      const along = (eps: number) =>
        f(
          tree.unflatten(
            def,
            leaves.map((l, i) => np.add(l, np.mul(dirs[i]!, eps))),
          ),
        ).item();
      const h = 1e-6;
      const fd = (along(h) - along(-h)) / (2 * h);
      const an = tree
        .leaves<Array>(g)
        .reduce((s, gi, i) => s + np.sum(np.mul(gi, dirs[i]!)).item(), 0);
      expect(Math.abs(an - fd)).toBeLessThan(1e-5 * (1 + Math.abs(fd)));
    }
  });
});
