/**
 * `scan` against an unrolled JS loop of the same body: values, jvp, vjp/grad (w.r.t. init, xs and
 * closed-over parameters), vmap (batched init, xs and closed-over weights), reverse, pytree
 * carries and ys, xs null with `length`, length 0, higher-order derivatives, nesting, and errors.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { DType } from "../../src/index.js";
import {
  grad,
  jvp,
  type Array as NbiArray,
  NbiError,
  np,
  scan,
  tree,
  valueAndGrad,
  vjp,
  vmap,
} from "../../src/index.js";
import { testBackends, useTestBackend } from "../helpers/backends.js";
import { expectTreeClose, fdJacobian, item, randn } from "../helpers/values.js";

// ---------------------------------------------------------------------------------------------
// Helpers

/**
 * The reference: the same body run as an unrolled JS loop over the leading axis of every xs leaf
 * (or `length` steps with x = null), ys stacked in step order.
 */
function loopScan<C, X, Y>(
  f: (carry: C, x: X) => [C, Y],
  init: C,
  xs: X | null,
  options?: { length?: number; reverse?: boolean },
): [C, Y] {
  const xLeaves = xs === null ? [] : tree.leaves<NbiArray>(xs);
  const length = options?.length ?? xLeaves[0]!.shape[0]!;
  const def = xs === null ? null : tree.structure(xs);
  let carry = init;
  const ys: Y[] = new globalThis.Array(length);
  for (let step = 0; step < length; step++) {
    const i = options?.reverse ? length - 1 - step : step;
    const x = (
      def === null
        ? null
        : tree.unflatten(
            def,
            xLeaves.map((l) => np.index(l, i)),
          )
    ) as X;
    const [c, y] = f(carry, x);
    carry = c;
    ys[i] = y;
  }
  const [first, yDef] = tree.flatten<NbiArray>(ys[0]);
  const stacked = first.map((_, k) => np.stack(ys.map((y) => tree.leaves<NbiArray>(y)[k]!)));
  return [carry, tree.unflatten(yDef, stacked) as Y];
}

// ---------------------------------------------------------------------------------------------
// The model: an RNN cell whose weights are captured from the enclosing scope.

interface Params {
  w: NbiArray; // [3, 3]
  u: NbiArray; // [3, 2]
  b: NbiArray; // [3]
}
type Ys = { h: NbiArray; s: NbiArray };
type Scanner = <C, X, Y>(
  f: (carry: C, x: X) => [C, Y],
  init: C,
  xs: X | null,
  options?: { length?: number; reverse?: boolean },
) => [C, Y];

function params(seed: number, dtype: DType = "float32"): Params {
  return {
    w: randn([3, 3], seed, dtype, 0.6),
    u: randn([3, 2], seed + 1, dtype, 0.8),
    b: randn([3], seed + 2, dtype, 0.3),
  };
}

/** Runs the RNN with `run` (scan or the loop); the cell closes over p's arrays. */
function rnn(run: Scanner, p: Params, h0: NbiArray, xs: NbiArray, reverse = false): [NbiArray, Ys] {
  const cell = (h: NbiArray, x: NbiArray): [NbiArray, Ys] => {
    const next = np.tanh(np.matmul(p.w, h).add(np.matmul(p.u, x)).add(p.b));
    return [next, { h: next, s: np.sum(next.mul(h)) }];
  };
  return run(cell, h0, xs, { reverse });
}

/** A scalar loss of everything the RNN produces. */
function rnnLoss(run: Scanner, p: Params, h0: NbiArray, xs: NbiArray, reverse = false) {
  const [h, ys] = rnn(run, p, h0, xs, reverse);
  const weights = np.arange(ys.s.shape[0]!).astype(h.dtype).add(1);
  return np
    .sum(np.square(h))
    .add(np.sum(ys.s.mul(weights)))
    .add(np.sum(np.sin(ys.h)));
}

const SCAN = scan as Scanner;
const LOOP = loopScan as Scanner;

// ---------------------------------------------------------------------------------------------

describe.each(testBackends())("scan equals an unrolled loop (%s)", (backend) => {
  useTestBackend(backend);
  const tol = { rtol: 1e-5, atol: 1e-6 };
  const dtol = { rtol: 1e-4, atol: 1e-5 };

  const caseArb = fc.record({
    seed: fc.nat(100_000),
    length: fc.integer({ min: 1, max: 5 }),
    reverse: fc.boolean(),
  });
  const setup = (s: { seed: number; length: number }) => ({
    p: params(s.seed),
    h0: randn([3], s.seed + 10),
    xs: randn([s.length, 2], s.seed + 11),
  });

  it("in value, forward and reverse", async () => {
    await fc.assert(
      fc.asyncProperty(caseArb, async (s) => {
        const { p, h0, xs } = setup(s);
        await expectTreeClose(
          rnn(SCAN, p, h0, xs, s.reverse),
          rnn(LOOP, p, h0, xs, s.reverse),
          tol,
        );
      }),
      { numRuns: 15 },
    );
  });

  it("reverse: true runs from the last step with ys kept in step order", async () => {
    const p = params(1);
    const h0 = randn([3], 2);
    const xs = randn([4, 2], 3);
    const [hr, ysr] = rnn(SCAN, p, h0, xs, true);
    // Scanning xs reversed forwards gives the same carry and the ys reversed.
    const flipped = np.take(xs, [3, 2, 1, 0], 0);
    const [hf, ysf] = rnn(SCAN, p, h0, flipped, false);
    await expectTreeClose(hr, hf, tol);
    await expectTreeClose(ysr.h, np.take(ysf.h, [3, 2, 1, 0], 0), tol);
    // And it differs from the forward scan (the test could fail).
    const [hForward] = rnn(SCAN, p, h0, xs, false);
    const diff = np.max(np.abs(hForward.sub(hr)));
    expect((await diff.data())[0]).toBeGreaterThan(1e-3);
  });

  it("in jvp w.r.t. closed-over params, init and xs", async () => {
    await fc.assert(
      fc.asyncProperty(caseArb, async (s) => {
        const { p, h0, xs } = setup(s);
        const tp = params(s.seed + 100);
        const th = randn([3], s.seed + 101);
        const tx = randn([s.length, 2], s.seed + 102);
        const viaScan = jvp(
          (pp: Params, h: NbiArray, x: NbiArray) => rnn(SCAN, pp, h, x, s.reverse),
          [p, h0, xs],
          [tp, th, tx],
        );
        const viaLoop = jvp(
          (pp: Params, h: NbiArray, x: NbiArray) => rnn(LOOP, pp, h, x, s.reverse),
          [p, h0, xs],
          [tp, th, tx],
        );
        await expectTreeClose(viaScan, viaLoop, dtol);
      }),
      { numRuns: 10 },
    );
  });

  it("in vjp w.r.t. closed-over params, init and xs", async () => {
    await fc.assert(
      fc.asyncProperty(caseArb, async (s) => {
        const { p, h0, xs } = setup(s);
        const ct: [NbiArray, Ys] = [
          randn([3], s.seed + 200),
          { h: randn([s.length, 3], s.seed + 201), s: randn([s.length], s.seed + 202) },
        ];
        const [outS, pullS] = vjp(
          (pp: Params, h: NbiArray, x: NbiArray) => rnn(SCAN, pp, h, x, s.reverse),
          p,
          h0,
          xs,
        );
        const [outL, pullL] = vjp(
          (pp: Params, h: NbiArray, x: NbiArray) => rnn(LOOP, pp, h, x, s.reverse),
          p,
          h0,
          xs,
        );
        await expectTreeClose(outS, outL, tol);
        await expectTreeClose(pullS(ct), pullL(ct), dtol);
      }),
      { numRuns: 10 },
    );
  });

  it("in grad w.r.t. closed-over params, init and xs", async () => {
    const p = params(5);
    const h0 = randn([3], 6);
    const xs = randn([5, 2], 7);
    for (const reverse of [false, true]) {
      const g = (run: Scanner) =>
        valueAndGrad((pp: Params, h: NbiArray, x: NbiArray) => rnnLoss(run, pp, h, x, reverse), {
          argnums: [0, 1, 2],
        })(p, h0, xs);
      const [vs, gs] = g(SCAN);
      const [vl, gl] = g(LOOP);
      await expectTreeClose(vs, vl, tol);
      await expectTreeClose(gs, gl, dtol, `reverse=${reverse}`);
      // Every closed-over weight receives a nonzero gradient.
      for (const leaf of tree.leaves<NbiArray>(gs[0])) {
        expect(Math.max(...Array.from(await leaf.data(), Math.abs))).toBeGreaterThan(1e-4);
      }
    }
  });

  it("in vmap over batched init, xs and closed-over weights, with random axes", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          seed: fc.nat(100_000),
          n: fc.integer({ min: 1, max: 3 }),
          length: fc.integer({ min: 1, max: 4 }),
          // Per argument (w, h0, xs): null (unbatched) or the batch axis.
          wAxis: fc.option(fc.integer({ min: 0, max: 2 })),
          hAxis: fc.option(fc.integer({ min: 0, max: 1 })),
          xAxis: fc.option(fc.integer({ min: 0, max: 2 })),
          outAxis: fc.integer({ min: 0, max: 1 }),
          reverse: fc.boolean(),
        }),
        async (s) => {
          const inAxes: (number | null)[] = [s.wAxis, s.hAxis, s.xAxis];
          if (!inAxes.some((a) => a !== null)) inAxes[2] = 0;
          const shapes = [[3, 3], [3], [s.length, 2]];
          const args = shapes.map((shape, j) => {
            const ax = inAxes[j];
            const full = [...shape];
            if (ax !== null && ax !== undefined) full.splice(ax, 0, s.n);
            return randn(full, s.seed + 31 * j, "float32", 0.8);
          });
          const base = params(s.seed + 7);
          const f = (w: NbiArray, h0: NbiArray, xs: NbiArray) =>
            rnn(SCAN, { ...base, w }, h0, xs, s.reverse);
          const out = vmap(f, { inAxes, outAxes: s.outAxis })(
            ...(args as [NbiArray, NbiArray, NbiArray]),
          );
          const items = Array.from({ length: s.n }, (_, i) => {
            const [w, h0, xs] = args.map((a, j) =>
              inAxes[j] === null ? a : np.index(a, i, inAxes[j]!),
            ) as [NbiArray, NbiArray, NbiArray];
            return rnn(LOOP, { ...base, w }, h0, xs, s.reverse);
          });
          const [first, def] = tree.flatten<NbiArray>(items[0]);
          const expected = tree.unflatten(
            def,
            first.map((_, k) =>
              np.stack(
                items.map((it) => tree.leaves<NbiArray>(it)[k]!),
                s.outAxis,
              ),
            ),
          );
          await expectTreeClose(out, expected, tol, JSON.stringify(inAxes));
        },
      ),
      { numRuns: 20 },
    );
  });

  it("with pytree carries and ys, including an integer counter in the carry", async () => {
    type Carry = { h: NbiArray; acc: [NbiArray, NbiArray] };
    type X = { a: NbiArray; b: [NbiArray] };
    const m = randn([3, 3], 40, "float32", 0.5);
    const body = (c: Carry, x: X): [Carry, [NbiArray, { z: NbiArray }]] => {
      const h = np.tanh(np.matmul(m, c.h).add(x.a).mul(x.b[0]));
      const total = c.acc[0].add(np.sum(h));
      return [{ h, acc: [total, c.acc[1].add(1)] }, [h.mul(total), { z: np.maximum(h, 0) }]];
    };
    const init: Carry = {
      h: randn([3], 41),
      acc: [np.zeros([]), np.zeros([], { dtype: "int32" })],
    };
    const xs: X = { a: randn([4, 3], 42), b: [randn([4, 1], 43)] };
    const out = scan(body, init, xs);
    expect(out[0].acc[1].dtype).toBe("int32");
    expect(await item(out[0].acc[1])).toBe(4);
    expect(out[1][1].z.shape).toEqual([4, 3]);
    await expectTreeClose(out, loopScan(body, init, xs), tol);
    // Gradients flow to float leaves of the carry and xs.
    const loss = (run: Scanner) => (i: Carry, x: X) => {
      const [c, ys] = run(body, i, x);
      return np.sum(c.h).add(c.acc[0]).add(np.sum(ys[0])).add(np.sum(ys[1].z));
    };
    const gs = grad(loss(SCAN), { argnums: [0, 1] })(init, xs);
    const gl = grad(loss(LOOP), { argnums: [0, 1] })(init, xs);
    await expectTreeClose(gs, gl, dtol);
  });

  it("with xs null and a length", async () => {
    const a = np.array([0.9, -0.5]);
    const body = (c: NbiArray, x: null): [NbiArray, NbiArray] => {
      expect(x).toBeNull();
      return [c.mul(a).add(1), np.sum(np.square(c))];
    };
    const init = np.array([1, 2]);
    const out = scan(body, init, null, { length: 5 });
    expect(out[1].shape).toEqual([5]);
    await expectTreeClose(out, loopScan(body, init, null, { length: 5 }), tol);
    // Closed form: c_k = a^k c_0 + (1 - a^k) / (1 - a).
    const ak = np.pow(a, 5);
    const closed = ak.mul(init).add(np.sub(1, ak).div(np.sub(1, a)));
    await expectTreeClose(out[0], closed, tol);
    // Derivatives through an xs-less scan.
    const lossS = (i: NbiArray) => np.sum(scan(body, i, null, { length: 5 })[1]);
    const lossL = (i: NbiArray) => np.sum(loopScan(body, i, null, { length: 5 })[1]);
    await expectTreeClose(grad(lossS)(init), grad(lossL)(init), dtol);
    // Reverse with xs null gives the same carry, ys in step order.
    const rev = scan(body, init, null, { length: 5, reverse: true });
    await expectTreeClose(rev, loopScan(body, init, null, { length: 5, reverse: true }), tol);
  });

  it("with edge-case bodies: integer xs, identity or constant carry, constant ys", async () => {
    const table = randn([3, 2], 45);
    const idx = np.array([2, 0, 1, 1], { dtype: "int32" });
    const bodies: [string, (tb: NbiArray) => (c: NbiArray, x: NbiArray) => [NbiArray, NbiArray]][] =
      [
        // Integer xs select rows of a closed-over table.
        [
          "integer xs",
          (tb) => (c, i) => [c.add(np.reshape(np.take(tb, np.reshape(i, [1]), 0), [2])), c],
        ],
        [
          "identity carry",
          (tb) => (c, i) => [c, c.mul(np.index(tb, 0)).add(np.astype(i, "float32"))],
        ],
        [
          "constant carry",
          (tb) => (c, i) => [
            np.array([5, -5]),
            c.mul(np.index(tb, 1)).add(np.astype(i, "float32")),
          ],
        ],
        ["constant ys", (tb) => (c, _i) => [np.sin(c).mul(np.index(tb, 2)), np.array(7)]],
      ];
    const c0 = randn([2], 46);
    for (const [name, body] of bodies) {
      const run = (r: Scanner) => (tb: NbiArray, c: NbiArray) => r(body(tb), c, idx);
      await expectTreeClose(run(SCAN)(table, c0), run(LOOP)(table, c0), tol, name);
      const loss = (r: Scanner) => (tb: NbiArray, c: NbiArray) => {
        const [cT, ys] = run(r)(tb, c);
        return np.sum(np.square(cT)).add(np.sum(np.sin(ys)));
      };
      await expectTreeClose(
        grad(loss(SCAN), { argnums: [0, 1] })(table, c0),
        grad(loss(LOOP), { argnums: [0, 1] })(table, c0),
        dtol,
        `${name} grad`,
      );
      const cb = randn([3, 2], 47);
      const items = [0, 1, 2].map((i) => run(LOOP)(table, np.index(cb, i)));
      await expectTreeClose(
        vmap(run(SCAN), { inAxes: [null, 0] })(table, cb),
        [np.stack(items.map((o) => o[0])), np.stack(items.map((o) => o[1]))],
        tol,
        `${name} vmap`,
      );
    }
  });

  it("with length 0: the carry is init and ys are empty", async () => {
    const p = params(50);
    const h0 = randn([3], 51);
    const xs = np.zeros([0, 2]);
    const [h, ys] = rnn(SCAN, p, h0, xs);
    await expectTreeClose(h, h0, { rtol: 0, atol: 0 });
    expect(ys.h.shape).toEqual([0, 3]);
    expect(ys.s.shape).toEqual([0]);
    // With xs null.
    const [c, y] = scan(
      (cc: NbiArray, _x: null): [NbiArray, NbiArray] => [cc.mul(2), np.sum(cc)],
      h0,
      null,
      { length: 0 },
    );
    await expectTreeClose(c, h0, { rtol: 0, atol: 0 });
    expect(y.shape).toEqual([0]);
    // Derivatives: identity to init, zero to params and xs.
    const loss = (pp: Params, hh: NbiArray, x: NbiArray) => {
      const [hT, ysT] = rnn(SCAN, pp, hh, x);
      return np.sum(hT.mul(np.array([1, 2, 3]))).add(np.sum(ysT.s));
    };
    const [gp, gh, gx] = grad(loss, { argnums: [0, 1, 2] })(p, h0, xs);
    await expectTreeClose(gh, np.array([1, 2, 3]), tol);
    await expectTreeClose(gp, { w: np.zeros([3, 3]), u: np.zeros([3, 2]), b: np.zeros([3]) }, tol);
    expect(gx.shape).toEqual([0, 2]);
    const [, th] = jvp((hh: NbiArray) => rnn(SCAN, p, hh, xs)[0], [h0], [np.ones([3])]);
    await expectTreeClose(th, np.ones([3]), tol);
    // vmap of an empty scan.
    const hb = randn([2, 3], 52);
    const [hv, ysv] = vmap((hh: NbiArray) => rnn(SCAN, p, hh, xs))(hb);
    await expectTreeClose(hv, hb, tol);
    expect(ysv.h.shape).toEqual([2, 0, 3]);
  });

  it("grad(grad) through scan equals the loop's", async () => {
    const xs = randn([4, 2], 60);
    const v = randn([2], 61);
    // A scalar parameter a captured by the body.
    const f = (run: Scanner) => (a: NbiArray) => {
      const [c, ys] = run(
        (cc: NbiArray, x: NbiArray): [NbiArray, NbiArray] => {
          const next = np.sin(cc.mul(a).add(x)).add(cc.mul(0.5));
          return [next, np.sum(next.mul(v))];
        },
        np.array([0.3, -0.2]),
        xs,
      );
      return np.sum(c).add(np.sum(np.square(ys)));
    };
    const a = np.array(0.8);
    const viaScan = grad(grad(f(SCAN)))(a);
    const viaLoop = grad(grad(f(LOOP)))(a);
    await expectTreeClose(viaScan, viaLoop, dtol);
    // Third order too.
    await expectTreeClose(grad(grad(grad(f(SCAN))))(a), grad(grad(grad(f(LOOP))))(a), {
      rtol: 1e-3,
      atol: 1e-4,
    });
  });

  it("vmap(grad) through scan: per-example gradients equal a loop", async () => {
    const p = params(70);
    const h0s = randn([4, 3], 71);
    const xss = randn([4, 3, 2], 72);
    const perExample = vmap(
      grad((pp: Params, h: NbiArray, x: NbiArray) => rnnLoss(SCAN, pp, h, x)),
      { inAxes: [null, 0, 0] },
    )(p, h0s, xss);
    const items = Array.from({ length: 4 }, (_, i) =>
      grad((pp: Params, h: NbiArray, x: NbiArray) => rnnLoss(LOOP, pp, h, x))(
        p,
        np.index(h0s, i),
        np.index(xss, i),
      ),
    );
    await expectTreeClose(
      perExample,
      {
        b: np.stack(items.map((g) => g.b)),
        u: np.stack(items.map((g) => g.u)),
        w: np.stack(items.map((g) => g.w)),
      },
      dtol,
    );
  });

  it("jvp of grad through scan equals the loop's (Hessian-vector products)", async () => {
    const p = params(80);
    const h0 = randn([3], 81);
    const xs = randn([3, 2], 82);
    const tangent = params(83);
    const gradOf = (run: Scanner) => (pp: Params) =>
      grad((q: Params) => rnnLoss(run, q, h0, xs))(pp);
    const [gS, hvS] = jvp(gradOf(SCAN), [p], [tangent]);
    const [gL, hvL] = jvp(gradOf(LOOP), [p], [tangent]);
    await expectTreeClose(gS, gL, dtol);
    await expectTreeClose(hvS, hvL, { rtol: 1e-3, atol: 1e-4 });
  });

  it("nested in scan: equals nested loops in value, grad and vmap", async () => {
    const m = randn([2, 2], 90, "float32", 0.7);
    // Outer scan over rows of a [3, 4, 2] tensor; inner scan over the 4 columns of each row.
    const model = (run: Scanner) => (w: NbiArray, xs: NbiArray) =>
      run(
        (outer: NbiArray, row: NbiArray): [NbiArray, NbiArray] => {
          const [inner, ys] = run(
            (c: NbiArray, x: NbiArray): [NbiArray, NbiArray] => {
              const next = np.tanh(np.matmul(w, c).add(x).add(outer));
              return [next, np.sum(next)];
            },
            outer.mul(0.5),
            row,
          );
          return [inner, ys];
        },
        np.array([0.1, -0.1]),
        xs,
      );
    const xs = randn([3, 4, 2], 91);
    const out = model(SCAN)(m, xs);
    expect(out[1].shape).toEqual([3, 4]);
    await expectTreeClose(out, model(LOOP)(m, xs), tol);
    const loss = (run: Scanner) => (w: NbiArray, x: NbiArray) => {
      const [c, ys] = model(run)(w, x);
      return np.sum(c).add(np.sum(np.square(ys)));
    };
    await expectTreeClose(
      grad(loss(SCAN), { argnums: [0, 1] })(m, xs),
      grad(loss(LOOP), { argnums: [0, 1] })(m, xs),
      dtol,
    );
    const xb = randn([2, 3, 4, 2], 92);
    const batched = vmap(model(SCAN), { inAxes: [null, 0] })(m, xb);
    const items = [0, 1].map((i) => model(LOOP)(m, np.index(xb, i)));
    await expectTreeClose(
      batched,
      [np.stack(items.map((o) => o[0])), np.stack(items.map((o) => o[1]))],
      tol,
    );
  });
});

// Trace-time checks of the body's carry and of the lengths: they fail before any kernel runs, so
// running them on WebGPU as well would test nothing the CPU run does not.
describe("scan errors (cpu)", () => {
  useTestBackend("cpu");
  const xs = np.zeros([3, 2]);
  const init = np.zeros([2]);

  it("refuses a carry whose shape changes in the body", () => {
    expect(() => scan((c: NbiArray, x: NbiArray) => [np.concatenate([c, x]), x], init, xs)).toThrow(
      NbiError,
    );
    expect(() => scan((c: NbiArray, x: NbiArray) => [np.reshape(c, [1, 2]), x], init, xs)).toThrow(
      /carry leaf 0 expected shape \[2\]/,
    );
  });

  it("refuses a carry whose dtype changes in the body", () => {
    expect(() => scan((c: NbiArray, x: NbiArray) => [np.astype(c, "int32"), x], init, xs)).toThrow(
      /dtype float32/,
    );
    expect(() => scan((c: NbiArray, x: NbiArray) => [np.greater(c, x), x], init, xs)).toThrow(
      NbiError,
    );
  });

  it("refuses a carry whose structure changes in the body", () => {
    const pair = (c: NbiArray, x: NbiArray) => [[c, c], x];
    expect(() => scan(pair as never, init, xs)).toThrow(NbiError);
    const renamed = (c: { a: NbiArray }, x: NbiArray) => [{ b: c.a }, x];
    expect(() => scan(renamed as never, { a: init }, xs)).toThrow(NbiError);
  });

  it("refuses inconsistent lengths", () => {
    const body = (c: NbiArray, _x: unknown): [NbiArray, NbiArray] => [c, c];
    expect(() => scan(body, init, [np.zeros([3, 2]), np.zeros([4, 2])])).toThrow(NbiError);
    expect(() => scan(body, init, xs, { length: 5 })).toThrow(NbiError);
    expect(() => scan(body, init, null)).toThrow(NbiError);
    expect(() => scan(body, init, np.zeros([]))).toThrow(NbiError);
  });

  it("refuses a body that does not return [carry, y]", () => {
    expect(() => scan((c: NbiArray) => c as never, init, xs)).toThrow(NbiError);
  });
});

// ---------------------------------------------------------------------------------------------

describe("scan derivatives against finite differences (float64, cpu)", () => {
  useTestBackend("cpu");
  const tol = { rtol: 1e-6, atol: 1e-8 };

  it("grad w.r.t. closed-over weights, init and xs", async () => {
    const p = params(100, "float64");
    const h0 = randn([3], 101, "float64");
    const xs = randn([4, 2], 102, "float64");
    for (const reverse of [false, true]) {
      const [gp, gh, gx] = grad(
        (pp: Params, h: NbiArray, x: NbiArray) => rnnLoss(SCAN, pp, h, x, reverse),
        { argnums: [0, 1, 2] },
      )(p, h0, xs);
      await expectTreeClose(
        gp.w,
        fdJacobian((w) => rnnLoss(SCAN, { ...p, w }, h0, xs, reverse), p.w),
        tol,
      );
      await expectTreeClose(
        gp.u,
        fdJacobian((u) => rnnLoss(SCAN, { ...p, u }, h0, xs, reverse), p.u),
        tol,
      );
      await expectTreeClose(
        gp.b,
        fdJacobian((b) => rnnLoss(SCAN, { ...p, b }, h0, xs, reverse), p.b),
        tol,
      );
      await expectTreeClose(
        gh,
        fdJacobian((h) => rnnLoss(SCAN, p, h, xs, reverse), h0),
        tol,
      );
      await expectTreeClose(
        gx,
        fdJacobian((x) => rnnLoss(SCAN, p, h0, x, reverse), xs),
        tol,
      );
    }
  });

  it("grad(grad) and jvp(grad) through scan", async () => {
    const xs = randn([4, 2], 110, "float64");
    const f = (a: NbiArray) => {
      const [c, ys] = scan(
        (cc: NbiArray, x: NbiArray): [NbiArray, NbiArray] => {
          const next = np.sin(cc.mul(a).add(x)).add(cc.mul(0.5));
          return [next, np.sum(np.square(next))];
        },
        np.array([0.3, -0.2], { dtype: "float64" }),
        xs,
      );
      return np.sum(c).add(np.sum(ys));
    };
    const a = np.array(0.8, { dtype: "float64" });
    const fd2 = fdJacobian((y) => fdJacobian(f, y, 1e-4), a, 1e-4);
    await expectTreeClose(grad(grad(f))(a), fd2, { rtol: 1e-5, atol: 1e-7 });
    const [, hv] = jvp(grad(f), [a], [np.array(2, { dtype: "float64" })]);
    await expectTreeClose(hv, fd2.mul(2), { rtol: 1e-5, atol: 1e-7 });
  });
});
