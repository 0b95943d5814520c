import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type Array, grad, jit, jvp, np, random, scan, vmap } from "../../src/index.js";
import type { ConcreteArray } from "../../src/trace/concrete-array.js";
import { testBackends, useTestBackend } from "../helpers/backends.js";

const close = async (a: Array, b: Array, tol = 1e-5) => {
  expect(a.shape).toEqual(b.shape);
  expect(a.dtype).toBe(b.dtype);
  const [x, y] = [await a.data(), await b.data()];
  for (let i = 0; i < x.length; i++) {
    expect(Math.abs(x[i]! - y[i]!)).toBeLessThanOrEqual(tol * (1 + Math.abs(y[i]!)));
  }
};

/** One function per primitive family, each of a [2..5, 3] input. */
const families: [string, (x: Array) => Array][] = [
  ["unary chain", (x) => np.tanh(np.exp(np.sin(x)).mul(0.5)).add(np.log1p(np.abs(x)))],
  ["broadcast binary", (x) => np.maximum(x, np.array([0.1, -0.2, 0.3])).div(np.add(2, x.square()))],
  ["where/compare", (x) => np.where(np.greater(x, 0), x, np.expm1(x))],
  [
    "reductions",
    (x) => np.stack([np.sum(x, { axis: 0 }), np.max(x, { axis: 0 }), np.min(x, { axis: 0 })]),
  ],
  ["argmax", (x) => np.astype(np.argmax(x, { axis: 1 }), "float32")],
  ["matmul", (x) => x.matmul(np.ones([3, 4])).matmul(np.eye(4, 2))],
  [
    "shape ops",
    (x) =>
      np.concatenate(
        [
          np.transpose(x),
          np.pad(np.slice(x.T, null, [0, 1]), [
            [0, 0],
            [0, x.shape[0]! - 1],
          ]),
        ],
        0,
      ),
  ],
  ["take", (x) => np.take(x, [0, 2, -1, 1], 1)],
  [
    "conv1d+pool",
    (x) =>
      np.maxPool1d(
        np.conv1d(x.reshape([1, ...x.shape]), np.ones([2, x.shape[0]!, 2]), { padding: "same" }),
        2,
      ),
  ],
  ["logsumexp/softmax", (x) => np.softmax(x, 0).add(np.logsumexp(x, { axis: 1, keepdims: true }))],
  ["scan", (x) => scan((c: Array, r: Array) => [np.tanh(c.add(r)), c.mul(r)], np.zeros([3]), x)[1]],
];

describe.each(testBackends())("jit (%s)", (backend) => {
  useTestBackend(backend);

  it.each(families)("jit(f) equals f: %s", async (_name, f) => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 2, max: 5 }),
        fc.integer({ min: 0, max: 1000 }),
        async (n, seed) => {
          const x = random.normal(random.key(seed), [n, 3]);
          await close(jit(f)(x), f(x));
        },
      ),
      { numRuns: 10 },
    );
  });

  it("traces once per signature: same shapes hit the cache, new shapes or statics miss", async () => {
    let traces = 0;
    const f = jit(
      (x: Array, scale: number) => {
        traces++;
        return x.mul(scale);
      },
      { staticArgnums: [1] },
    );
    f(np.ones([3]), 2);
    f(np.zeros([3]), 2);
    expect(traces).toBe(1);
    expect(f.cacheInfo()).toEqual({ hits: 1, misses: 1, size: 1 });
    f(np.ones([4]), 2);
    f(np.ones([3]), 3);
    f(np.ones([3], { dtype: "int32" }), 2);
    expect(traces).toBe(4);
    expect(f.cacheInfo()).toMatchObject({ misses: 4, size: 4 });
    expect([...(await f(np.ones([3]), 3).data())]).toEqual([3, 3, 3]);
  });

  it("accepts and returns pytrees", async () => {
    const f = jit((p: { w: Array; b: Array }, x: Array) => ({
      y: x.matmul(p.w).add(p.b),
      n: np.sum(p.b),
    }));
    const p = { w: np.ones([3, 2]), b: np.array([1, 2]) };
    const out = f(p, np.ones([4, 3]));
    expect(out.y.shape).toEqual([4, 2]);
    expect([...(await out.n.data())]).toEqual([3]);
  });

  it("composes: grad(jit(f)) = jit(grad(f)) = grad(f), vmap(jit(f)) = vmap(f), jvp through jit", async () => {
    const f = (w: Array, x: Array) => np.sum(np.tanh(x.matmul(w)).square());
    const w = random.normal(random.key(3), [3, 2]);
    const x = random.normal(random.key(4), [5, 3]);
    const g = grad(f)(w, x);
    await close(grad(jit(f))(w, x), g);
    await close(jit(grad(f))(w, x), g);
    await close(
      grad(grad(jit((a: Array) => np.sum(np.sin(a).mul(a)))))(np.array(0.7)),
      grad(grad((a: Array) => np.sum(np.sin(a).mul(a))))(np.array(0.7)),
    );
    const xs = random.normal(random.key(5), [4, 5, 3]);
    await close(vmap(jit(f), { inAxes: [null, 0] })(w, xs), vmap(f, { inAxes: [null, 0] })(w, xs));
    await close(jit(vmap(f, { inAxes: [null, 0] }))(w, xs), vmap(f, { inAxes: [null, 0] })(w, xs));
    const [, t1] = jvp(jit(f), [w, x], [np.onesLike(w), np.zerosLike(x)]);
    const [, t2] = jvp(f, [w, x], [np.onesLike(w), np.zerosLike(x)]);
    await close(t1 as Array, t2 as Array);
  });

  it("works inside scan and with closures over values of enclosing transforms", async () => {
    const w = np.array([0.5, -1, 2]);
    const inner = jit((x: Array, v: Array) => np.tanh(x.mul(v)));
    const loss = (v: Array) =>
      np.sum(
        scan((c: Array, x: Array) => [inner(c.add(x), v), c], np.zeros([3]), np.ones([4, 3]))[0],
      );
    const direct = (v: Array) =>
      np.sum(
        scan(
          (c: Array, x: Array) => [np.tanh(c.add(x).mul(v)), c],
          np.zeros([3]),
          np.ones([4, 3]),
        )[0],
      );
    await close(jit(loss)(w), direct(w));
    await close(grad(loss)(w), grad(direct)(w));
    // The jitted function captures the differentiated value itself.
    const captured = (v: Array) => np.sum(jit((x: Array) => np.sin(x.mul(v)))(np.ones([3])));
    await close(grad(captured)(w), np.cos(w));
  });

  it("fused elementwise chains give bit-identical results to eager evaluation", async () => {
    const f = (x: Array, y: Array) =>
      np
        .where(np.greater(x, 0), np.tanh(x.mul(y).add(0.25)), np.exp(x).sub(1))
        .mul(np.sqrt(y.abs()))
        // a row [5] and a column [7, 1] broadcast against [7, 5]
        .add(np.sin(np.arange(5).astype(x.dtype)))
        .mul(np.cos(np.arange(7).astype(x.dtype)).reshape([7, 1]));
    for (const dtype of ["float32", "float64"] as const) {
      if (backend !== "cpu" && dtype === "float64") continue;
      const x = random.normal(random.key(11), [7, 5], { dtype });
      const y = random.normal(random.key(12), [7, 5], { dtype });
      const eager = await f(x, y).data();
      const fused = await jit(f)(x, y).data();
      expect(globalThis.Array.from(fused)).toEqual(globalThis.Array.from(eager));
    }
  });

  it("prints its staged program", () => {
    const f = jit((x: Array) => np.exp(x).sum());
    const text = f.lower(np.ones([2])).toString();
    expect(text).toContain("exp");
    expect(text).toContain("reduce_sum");
  });
});

describe("jit donateArgnums (cpu)", () => {
  const storage = (x: Array) => ((x as ConcreteArray).buffer as Float32Array).buffer;
  const step = (s: { m: Array; v: Array }, g: Array) => ({
    m: s.m.mul(0.9).add(g.mul(0.1)),
    v: s.v.mul(0.99).add(g.square().mul(0.01)),
  });

  it("gives the same results, and reuses the donated state's storage for new values", async () => {
    await np.useBackend("cpu");
    const plain = jit(step);
    const donating = jit(step, { donateArgnums: [0] });
    const g = random.normal(random.key(1), [64, 32]);
    const init = () => ({ m: np.zeros([64, 32]), v: np.ones([64, 32]) });
    const want: number[][] = [];
    let a = init();
    for (let i = 0; i < 5; i++) {
      a = plain(a, g);
      want.push(globalThis.Array.from(await a.m.data()), globalThis.Array.from(await a.v.data()));
    }
    let b = init();
    const seen = new Set<ArrayBufferLike>([storage(b.m), storage(b.v)]);
    let reused = 0;
    for (let i = 0; i < 5; i++) {
      b = donating(b, g);
      // Storage of earlier (donated) states comes back for new results.
      if (seen.has(storage(b.m)) || seen.has(storage(b.v))) reused++;
      seen.add(storage(b.m));
      seen.add(storage(b.v));
      expect(globalThis.Array.from(await b.m.data())).toEqual(want[2 * i]);
      expect(globalThis.Array.from(await b.v.data())).toEqual(want[2 * i + 1]);
    }
    expect(reused).toBeGreaterThanOrEqual(3);
  });

  it("never reuses arguments that are not donated, nor a donated array also passed undonated", async () => {
    await np.useBackend("cpu");
    const f = jit((s: Array, keep: Array) => s.mul(2).add(keep).mul(3).sub(1), {
      donateArgnums: [0],
    });
    const keep = random.normal(random.key(2), [64, 32]);
    const copy = globalThis.Array.from(await keep.data());
    for (let i = 0; i < 4; i++) f(random.normal(random.key(3 + i), [64, 32]), keep);
    expect(globalThis.Array.from(await keep.data())).toEqual(copy);
    // The same array donated and not: it is kept.
    const both = random.normal(random.key(9), [64, 32]);
    const bothCopy = globalThis.Array.from(await both.data());
    f(both, both);
    f(random.normal(random.key(10), [64, 32]), keep);
    expect(globalThis.Array.from(await both.data())).toEqual(bothCopy);
  });

  it("is ignored under grad and refuses a static argument", async () => {
    await np.useBackend("cpu");
    const f = jit((x: Array) => np.sum(np.sin(x).mul(x)), { donateArgnums: [0] });
    const x = np.array([0.5, 1.5, -2]);
    const before = globalThis.Array.from(await x.data());
    const g = grad((y: Array) => f(y))(x);
    expect(globalThis.Array.from(await x.data())).toEqual(before);
    expect((await g.data())[0]).toBeCloseTo(Math.cos(0.5) * 0.5 + Math.sin(0.5), 5);
    expect(() =>
      jit((a: number, y: Array) => y.mul(a), { staticArgnums: [0], donateArgnums: [0] }),
    ).toThrow(/donateArgnums expected array arguments/);
  });
});
