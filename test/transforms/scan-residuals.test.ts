/**
 * Reverse mode of `scan` with saved residuals (the tape uses `scanP.vjpForward`: one forward
 * loop that stacks each step's residuals, one backward loop) against the recomputing rule
 * `scanP.vjp` and against finite differences in float64; the staged program runs each loop once.
 */
import { describe, expect, it } from "vitest";
import {
  grad,
  jit,
  type Array as NbiArray,
  np,
  scan,
  valueAndGrad,
  vjp,
  vmap,
} from "../../src/index.js";
import type { Jaxpr } from "../../src/transforms/jaxpr.js";
import { scanP } from "../../src/transforms/scan.js";
import { useTestBackend } from "../helpers/backends.js";
import { expectTreeClose, fdJacobian, randn } from "../helpers/values.js";

/** Runs f with the tape's residual-saving rule switched off, so scan uses its recomputing vjp. */
function withRecomputingVjp<T>(f: () => T): T {
  const saved = scanP.vjpForward;
  (scanP as { vjpForward?: unknown }).vjpForward = undefined;
  try {
    return f();
  } finally {
    (scanP as { vjpForward?: unknown }).vjpForward = saved;
  }
}

interface Weights {
  wh: NbiArray; // [3h, h]
  wi: NbiArray; // [3h, d]
  b: NbiArray; // [3h]
}

/**
 * A GRU-like body (gates from split products, sigmoid's constants, an integer step counter in
 * the carry, two ys) over xs [T, B, d]; a scalar loss of everything it returns.
 */
function gruLoss(w: Weights, h0: NbiArray, xs: NbiArray, reverse = false): NbiArray {
  const [[h, count], ys] = scan(
    ([hp, n]: [NbiArray, NbiArray], x: NbiArray): [[NbiArray, NbiArray], [NbiArray, NbiArray]] => {
      const gh = np.matmul(hp, np.transpose(w.wh));
      const gi = np.add(np.matmul(x, np.transpose(w.wi)), w.b);
      const [hr, hz, hn] = np.split(gh, 3, -1) as [NbiArray, NbiArray, NbiArray];
      const [ir, iz, inn] = np.split(gi, 3, -1) as [NbiArray, NbiArray, NbiArray];
      const r = np.sigmoid(np.add(ir, hr));
      const z = np.sigmoid(np.add(iz, hz));
      const c = np.tanh(np.add(inn, np.mul(r, hn)));
      const next = np.add(c, np.mul(z, np.sub(hp, c)));
      return [
        [next, np.add(n, 1)],
        [next, np.sum(np.square(r), { axis: -1 })],
      ];
    },
    [h0, np.array(0, { dtype: "int32" })],
    xs,
    { reverse },
  );
  const steps = np.arange(ys[1].shape[0]!).astype(h.dtype).add(1);
  return np
    .sum(np.square(h))
    .add(np.sum(np.sin(ys[0])))
    .add(np.sum(np.mul(np.sum(ys[1], { axis: -1 }), steps)))
    .add(np.mul(count.astype(h.dtype), 0.01));
}

function weights(seed: number, dtype: "float32" | "float64", h = 4, d = 2): Weights {
  return {
    wh: randn([3 * h, h], seed, dtype, 0.5),
    wi: randn([3 * h, d], seed + 1, dtype, 0.5),
    b: randn([3 * h], seed + 2, dtype, 0.3),
  };
}

describe("scan reverse mode with saved residuals (cpu)", () => {
  useTestBackend("cpu");

  it("equals the recomputing rule, forward and reverse, eagerly and under jit", async () => {
    const w = weights(1, "float32");
    const h0 = randn([3, 4], 2);
    const xs = randn([5, 3, 2], 3);
    for (const reverse of [false, true]) {
      const f = (ww: Weights, h: NbiArray, x: NbiArray) => gruLoss(ww, h, x, reverse);
      const g = valueAndGrad(f, { argnums: [0, 1, 2] });
      const saved = g(w, h0, xs);
      const recomputed = withRecomputingVjp(() => g(w, h0, xs));
      await expectTreeClose(saved, recomputed, { rtol: 2e-5, atol: 1e-6 });
      await expectTreeClose(jit(g)(w, h0, xs), recomputed, { rtol: 2e-5, atol: 1e-6 });
    }
  });

  it("matches finite differences in float64 (weights, init, xs)", async () => {
    const w = weights(10, "float64");
    const h0 = randn([2, 4], 11, "float64");
    const xs = randn([4, 2, 2], 12, "float64");
    const tol = { rtol: 1e-6, atol: 1e-8 };
    const [gw, gh, gx] = grad(gruLoss, { argnums: [0, 1, 2] })(w, h0, xs);
    await expectTreeClose(
      gw.wh,
      fdJacobian((wh) => gruLoss({ ...w, wh }, h0, xs), w.wh),
      tol,
    );
    await expectTreeClose(
      gw.wi,
      fdJacobian((wi) => gruLoss({ ...w, wi }, h0, xs), w.wi),
      tol,
    );
    await expectTreeClose(
      gw.b,
      fdJacobian((b) => gruLoss({ ...w, b }, h0, xs), w.b),
      tol,
    );
    await expectTreeClose(
      gh,
      fdJacobian((h) => gruLoss(w, h, xs), h0),
      tol,
    );
    await expectTreeClose(
      gx,
      fdJacobian((x) => gruLoss(w, h0, x), xs),
      tol,
    );
  });

  it("differentiates only the operands that carry a derivative", async () => {
    // Only xs differentiated: the weights and init are constants of the backward loop.
    const w = weights(20, "float64");
    const h0 = randn([2, 4], 21, "float64");
    const xs = randn([3, 2, 2], 22, "float64");
    const gx = grad((x: NbiArray) => gruLoss(w, h0, x))(xs);
    await expectTreeClose(
      gx,
      fdJacobian((x) => gruLoss(w, h0, x), xs),
      {
        rtol: 1e-6,
        atol: 1e-8,
      },
    );
    // Only the init: the pullback gives null-free results for what was asked.
    const [, pull] = vjp((h: NbiArray) => gruLoss(w, h, xs), h0);
    await expectTreeClose(
      pull(np.array(1, { dtype: "float64" }))[0],
      fdJacobian((h) => gruLoss(w, h, xs), h0),
      { rtol: 1e-6, atol: 1e-8 },
    );
  });

  it("grad(grad), and vmap of grad, through the residual-saving rule", async () => {
    const w = weights(30, "float64", 2, 1);
    const xs = randn([3, 1, 1], 31, "float64");
    const f = (h: NbiArray) => gruLoss(w, h, xs);
    const h0 = randn([1, 2], 32, "float64");
    const hess = grad((h: NbiArray) => np.sum(np.mul(grad(f)(h), np.array([[1, -2]]))))(h0);
    const fd = fdJacobian((h) => np.sum(np.mul(grad(f)(h), np.array([[1, -2]]))), h0, 1e-5);
    await expectTreeClose(hess, fd, { rtol: 1e-5, atol: 1e-7 });
    const many = randn([4, 1, 2], 33, "float64");
    const batched = vmap(grad(f))(many);
    const looped = np.stack([0, 1, 2, 3].map((i) => grad(f)(np.index(many, i))));
    await expectTreeClose(batched, looped, { rtol: 1e-12, atol: 1e-12 });
  });

  it("stages one forward and one backward loop (the forward body is not recomputed)", () => {
    const w = weights(40, "float32");
    const h0 = randn([3, 4], 41);
    const xs = randn([6, 3, 2], 42);
    const lowered = jit(grad(gruLoss, { argnums: [0, 1, 2] })).lower(w, h0, xs).jaxpr;
    const scans = lowered.eqns.filter((e) => e.prim === scanP);
    expect(scans).toHaveLength(2);
    const [fwd, back] = scans.map((e) => e.params as { jaxpr: Jaxpr; reverse: boolean });
    expect(fwd!.reverse).toBe(false);
    expect(back!.reverse).toBe(true);
    // The backward body does backward work only: no exp or tanh of the forward pass.
    const names = back!.jaxpr.eqns.map((e) => e.prim.name);
    expect(names).not.toContain("exp");
    expect(names).not.toContain("tanh");
  });
});
