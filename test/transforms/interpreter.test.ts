/**
 * The jit interpreter's own work changes no value: peephole rewrites (transposes folded into
 * matrix products, dead code dropped), loop-invariant equations hoisted out of scan bodies with
 * transposed operands pre-transposed, and intermediate storage recycled.
 */
import { describe, expect, it } from "vitest";
import { jit, type Array as NbiArray, np, scan } from "../../src/index.js";
import { matmul as matmulPrim } from "../../src/ops/primitives/matmul.js";
import { hoistInvariants } from "../../src/transforms/interpret.js";
import type { Jaxpr } from "../../src/transforms/jaxpr.js";
import { optimizeJaxpr } from "../../src/transforms/rewrite.js";
import { scanP } from "../../src/transforms/scan.js";
import { useTestBackend } from "../helpers/backends.js";
import { expectTreeClose, randn } from "../helpers/values.js";

describe("peephole rewrites (cpu)", () => {
  useTestBackend("cpu");

  it("fold transposes into products: jit equals eager bit for bit and runs no transpose", async () => {
    const a = randn([2, 5, 3], 1);
    const a3 = randn([2, 5, 4], 2);
    const b = randn([5, 4], 3);
    const c = randn([3, 4], 4);
    const d = randn([3, 5], 5);
    const f = (x: NbiArray, x3: NbiArray, y: NbiArray, z: NbiArray, w: NbiArray) => [
      np.matmul(np.swapaxes(x, -1, -2), x3), // batched aᵀ·a3
      np.matmul(z, np.transpose(y)), // c·bᵀ
      np.swapaxes(np.matmul(np.swapaxes(x3, -1, -2), x), -1, -2), // (a3ᵀ·a)ᵀ = aᵀ·a3
      np.transpose(np.matmul(np.transpose(y), np.transpose(w))), // (bᵀ·dᵀ)ᵀ = d·b
    ];
    const eager = f(a, a3, b, c, d);
    const jitted = jit(f)(a, a3, b, c, d);
    await expectTreeClose(jitted, eager, { rtol: 0, atol: 0 });
    const optimized = optimizeJaxpr(jit(f).lower(a, a3, b, c, d).jaxpr);
    expect(optimized.eqns.map((e) => e.prim.name)).not.toContain("transpose");
  });

  it("keeps a transposed product that something else also reads", async () => {
    const a = randn([3, 4], 4);
    const b = randn([4, 2], 5);
    const f = (x: NbiArray, y: NbiArray) => {
      const p = np.matmul(x, y);
      return [np.transpose(p), np.mul(p, 2)];
    };
    await expectTreeClose(jit(f)(a, b), f(a, b), { rtol: 0, atol: 0 });
    const optimized = optimizeJaxpr(jit(f).lower(a, b).jaxpr);
    expect(optimized.eqns.filter((e) => e.prim.name === "matmul")).toHaveLength(1);
  });

  it("drops dead equations", () => {
    const f = (x: NbiArray) => {
      np.exp(x); // unused
      return np.mul(x, 2);
    };
    const x = randn([3], 6);
    const staged = jit(f).lower(x).jaxpr;
    expect(staged.eqns.map((e) => e.prim.name)).toContain("exp");
    expect(optimizeJaxpr(staged).eqns.map((e) => e.prim.name)).not.toContain("exp");
  });
});

describe("the interpreter's loop work changes no value (cpu)", () => {
  useTestBackend("cpu");

  it("hoists loop-invariant equations and pre-transposes invariant operands read transposed", async () => {
    const wt = randn([4, 4], 50);
    const q = randn([3, 3], 51);
    const u = randn([3, 4], 54);
    const body = (h: NbiArray, x: NbiArray): [NbiArray, NbiArray] => {
      // wt read transposed by the product (a flagged matmul); q·u is loop-invariant.
      const next = np.tanh(
        np.add(matmulPrim(h, wt, { transposeB: true }), np.matmul(x, np.matmul(q, u))),
      );
      return [next, np.sum(next, { axis: -1 })];
    };
    const h0 = randn([2, 4], 52);
    const xs = randn([5, 2, 3], 53);
    const loop = () => {
      let h = h0;
      const ys: NbiArray[] = [];
      for (let i = 0; i < 5; i++) {
        const [n, y] = body(h, np.index(xs, i));
        h = n;
        ys.push(y);
      }
      return [h, np.stack(ys)];
    };
    const run = (hh: NbiArray, x: NbiArray) => scan(body, hh, x);
    await expectTreeClose(run(h0, xs), loop(), { rtol: 1e-6, atol: 1e-6 });
    await expectTreeClose(jit(run)(h0, xs), loop(), { rtol: 1e-6, atol: 1e-6 });
    const staged = jit(run).lower(h0, xs).jaxpr;
    const s = staged.eqns.find((e) => e.prim === scanP)!.params as {
      jaxpr: Jaxpr;
      numConsts: number;
    };
    const split = hoistInvariants(s.jaxpr, s.numConsts);
    const preNames = split.pre!.eqns.map((e) => e.prim.name);
    expect(preNames).toContain("transpose");
    expect(preNames.filter((n) => n === "matmul")).toHaveLength(1);
    for (const e of split.body.eqns) {
      if (e.prim.name === "matmul") expect(e.params).toEqual({});
    }
  });

  it("results of a jitted program survive later calls (recycled storage is never shared)", async () => {
    const f = jit((x: NbiArray, y: NbiArray) => {
      const a = np.exp(np.mul(x, 2));
      const b = np.reshape(np.add(a, y), [-1]);
      const c = np.matmul(np.reshape(a, [16, 16]), np.reshape(y, [16, 16]));
      // An output that aliases an intermediate's storage (a reshape), and one that is an input.
      return [b, np.sum(c), np.reshape(a, [256]), x];
    });
    const x1 = randn([256], 60);
    const y1 = randn([256], 61);
    const first = f(x1, y1);
    const firstValues = first.map((v) => Array.from(v.dataSync()));
    for (let i = 0; i < 5; i++) f(randn([256], 70 + i), randn([256], 80 + i));
    first.forEach((v, i) => {
      expect(Array.from(v.dataSync())).toEqual(firstValues[i]);
    });
    expect(Array.from(x1.dataSync())).toEqual(Array.from(randn([256], 60).dataSync()));
  });

  it("a scan whose carry is a slice of xs (a view) keeps its values under jit", async () => {
    const run = jit((xs: NbiArray) =>
      scan(
        (_c: NbiArray, x: NbiArray): [NbiArray, NbiArray] => [x, np.mul(x, 2)],
        np.zeros([300]),
        xs,
      ),
    );
    const xs = randn([4, 300], 90);
    const [c, ys] = run(xs);
    const want = Array.from(np.index(xs, 3).dataSync());
    for (let i = 0; i < 3; i++) run(randn([4, 300], 91 + i));
    expect(Array.from(c.dataSync())).toEqual(want);
    await expectTreeClose(ys, np.mul(xs, 2), { rtol: 0, atol: 0 });
  });
});
