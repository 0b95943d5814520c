/**
 * vmap against per-item loops over every primitive family, and the compositions of transforms
 * (grad∘vmap, vmap∘grad, grad∘grad, vmap∘vmap, jacfwd∘jacrev, jacrev∘jacfwd, vmap∘jacrev) checked
 * against independent routes: per-item loops, the other order of composition, and finite
 * differences in float64.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  grad,
  hessian,
  jacfwd,
  jacrev,
  jvp,
  makeJaxpr,
  type Array as NbiArray,
  NbiError,
  np,
  random,
  scan,
  tree,
  vjp,
  vmap,
} from "../../src/index.js";
import { testBackends, useTestBackend } from "../helpers/backends.js";
import {
  expectTreeClose,
  fdJacobian,
  fromValues,
  randn,
  sizeOf,
  type Tol,
  uniforms,
} from "../helpers/values.js";

// ---------------------------------------------------------------------------------------------
// Helpers

function randint(shape: readonly number[], seed: number, lo: number, hi: number): NbiArray {
  return fromValues(
    uniforms(sizeOf(shape), seed).map((u) => lo + Math.floor(u * (hi - lo))),
    shape,
    "int32",
  );
}

/** Normalises an axis of an array of rank `rank`. */
const norm = (ax: number, rank: number) => (ax < 0 ? ax + rank : ax);

/** The vmap reference: slices every mapped argument, calls f per item and stacks each leaf. */
function loopVmap(
  f: (...xs: NbiArray[]) => unknown,
  args: NbiArray[],
  inAxes: (number | null)[],
  outAxes: number | number[],
): unknown {
  let n = -1;
  args.forEach((a, j) => {
    const ax = inAxes[j];
    if (ax !== null && ax !== undefined) n = a.shape[norm(ax, a.ndim)]!;
  });
  const outs: unknown[] = [];
  for (let i = 0; i < n; i++) {
    const items = args.map((a, j) => {
      const ax = inAxes[j];
      return ax === null || ax === undefined ? a : np.index(a, i, norm(ax, a.ndim));
    });
    outs.push(f(...items));
  }
  const [first, def] = tree.flatten<NbiArray>(outs[0]);
  const leaves = first.map((_, k) => {
    const ax = typeof outAxes === "number" ? outAxes : outAxes[k]!;
    return np.stack(
      outs.map((o) => tree.leaves<NbiArray>(o)[k]!),
      ax,
    );
  });
  return tree.unflatten(def, leaves);
}

/** Per item: `f(...args)` for items of the leading axis of the mapped args. */
function stackLoop(
  f: (...xs: NbiArray[]) => unknown,
  args: NbiArray[],
  mapped: boolean[],
): unknown {
  return loopVmap(
    f,
    args,
    mapped.map((m) => (m ? 0 : null)),
    0,
  );
}

/** The Hessian of a scalar function by nested central differences of its values (float64). */
function fdHessian(f: (x: NbiArray) => NbiArray, x: NbiArray, h = 1e-4): NbiArray {
  return fdJacobian((y) => fdJacobian(f, y, h), x, h);
}

// ---------------------------------------------------------------------------------------------
// 1. vmap equals stacking per-item results, for random in/out axes

type ArgKind = "float" | "positive" | "bool" | "key" | { int: [number, number] };
interface ArgSpec {
  shape: number[];
  kind?: ArgKind;
}
interface VmapCase {
  name: string;
  args: ArgSpec[];
  f: (...xs: NbiArray[]) => NbiArray | NbiArray[];
  tol?: Tol;
}

const F = (...shape: number[]): ArgSpec => ({ shape });
const P = (...shape: number[]): ArgSpec => ({ shape, kind: "positive" });
const I = (lo: number, hi: number, ...shape: number[]): ArgSpec => ({
  shape,
  kind: { int: [lo, hi] },
});
const B = (...shape: number[]): ArgSpec => ({ shape, kind: "bool" });
const KEY: ArgSpec = { shape: [2], kind: "key" };

const vmapCases: VmapCase[] = [
  {
    name: "unary float functions",
    args: [F(3, 4)],
    f: (x) =>
      np
        .exp(np.sin(x))
        .add(np.tanh(x).mul(np.abs(x)))
        .sub(np.sqrt(np.abs(x).add(1)))
        .add(np.log1p(np.abs(x)))
        .add(np.expm1(np.cos(x)).mul(np.neg(x)))
        .add(np.log(np.abs(x).add(0.5))),
  },
  {
    name: "log, sqrt and pow of positive inputs",
    args: [P(2, 3), F(3)],
    f: (x, y) => [np.log(x), np.sqrt(x), np.pow(x, 1.5), np.pow(x, y)],
  },
  {
    name: "piecewise-constant unary functions",
    args: [F(2, 3)],
    f: (x) => [np.sign(x), np.floor(x.mul(3)), np.neg(np.floor(x.mul(-2)))],
  },
  {
    name: "binary ops, batched operand of lower rank than the other",
    args: [F(3), F(4, 3)],
    f: (x, y) => [
      np.add(x, y),
      np.sub(y, x),
      np.mul(x, y),
      np.div(x, np.square(y).add(1)),
      np.pow(np.abs(x).add(0.5), y),
      np.maximum(x, y),
      np.minimum(y, x),
    ],
  },
  {
    name: "binary ops broadcasting both ways and with a scalar",
    args: [F(4, 1), F(3), F()],
    f: (x, y, z) => [np.add(x, y).mul(z), np.sub(z, x), np.div(y, np.abs(z).add(1))],
  },
  {
    name: "comparisons",
    args: [F(3), F(2, 3)],
    f: (x, y) => [
      np.less(x, y),
      np.lessEqual(y, x),
      np.greater(x, y),
      np.greaterEqual(y, x),
      np.equal(np.floor(x.mul(2)), np.floor(y.mul(2))),
      np.notEqual(np.floor(x.mul(2)), np.floor(y.mul(2))),
    ],
  },
  {
    name: "where with a bool condition and broadcasting branches",
    args: [B(3), F(2, 3), F()],
    f: (c, x, y) => [np.where(c, x, y), np.where(np.greater(x, 0), x.mul(2), y), np.where(c, y, 1)],
  },
  {
    name: "reductions with axes and keepdims",
    args: [F(2, 3, 4)],
    f: (x) => [
      np.sum(x, { axis: 1 }),
      np.sum(x, { axis: [0, 2], keepdims: true }),
      np.max(x, { axis: -1 }),
      np.min(x, { axis: [0, 1] }),
      np.mean(x, { axis: 2, keepdims: true }),
      np.sum(x),
      np.max(x, { keepdims: true }),
      np.logsumexp(x, { axis: 1 }),
      np.softmax(x, 0),
    ],
  },
  {
    name: "argmax and argmin",
    args: [F(3, 4)],
    f: (x) => [
      np.argmax(x, { axis: 1 }),
      np.argmax(x),
      np.argmin(x, { axis: 0, keepdims: true }),
      np.argmax(x, { axis: -1, keepdims: true }),
    ],
  },
  { name: "matmul matrix-matrix", args: [F(2, 3), F(3, 4)], f: (a, b) => np.matmul(a, b) },
  { name: "matmul vector-matrix", args: [F(3), F(3, 4)], f: (a, b) => np.matmul(a, b) },
  { name: "matmul matrix-vector", args: [F(2, 3), F(3)], f: (a, b) => np.matmul(a, b) },
  { name: "matmul vector-vector", args: [F(3), F(3)], f: (a, b) => np.matmul(a, b) },
  { name: "matmul 3-d with 2-d", args: [F(2, 2, 3), F(3, 4)], f: (a, b) => np.matmul(a, b) },
  { name: "matmul 2-d with 3-d", args: [F(2, 3), F(2, 3, 4)], f: (a, b) => np.matmul(a, b) },
  { name: "matmul 3-d with 3-d", args: [F(2, 2, 3), F(2, 3, 4)], f: (a, b) => np.matmul(a, b) },
  {
    name: "reshape, transpose, broadcastTo",
    args: [F(2, 6), F(2, 3, 4), F(3)],
    f: (x, y, z) => [
      np.reshape(x, [3, 4]),
      np.reshape(x, [-1]),
      np.transpose(y, [2, 0, 1]),
      np.transpose(y),
      np.broadcastTo(z, [2, 3]),
      np.moveaxis(y, 0, -1),
      np.expandDims(z, 0),
      np.squeeze(np.reshape(z, [1, 3, 1])),
    ],
  },
  {
    name: "slice, index, split",
    args: [F(4, 5)],
    f: (x) => [
      np.slice(x, [1, 3], [0, -1]),
      np.slice(x, null, [2, 5]),
      np.index(x, 2),
      np.index(x, -1, 1),
      ...np.split(x, [1, 3], 1),
    ],
  },
  {
    name: "concatenate and stack",
    args: [F(2, 3), F(1, 3), F(2, 2)],
    f: (x, y, z) => [
      np.concatenate([x, y], 0),
      np.concatenate([x, z, x], 1),
      np.stack([x, x.mul(2)], 1),
    ],
  },
  {
    name: "pad",
    args: [F(2, 3)],
    f: (x) => [
      np.pad(x, [
        [1, 0],
        [0, 2],
      ]),
      np.pad(x, 1, { value: 0.5 }),
    ],
  },
  {
    name: "take along axis 0",
    args: [F(5, 3), I(0, 5, 4)],
    f: (x, i) => np.take(x, i, 0),
  },
  {
    name: "take along axis 1 with 2-d indices",
    args: [F(2, 3, 2), I(0, 3, 2, 2)],
    f: (x, i) => np.take(x, i, 1),
  },
  {
    name: "take on the flattened array",
    args: [F(3, 4), I(0, 12, 5)],
    f: (x, i) => np.take(x, i),
  },
  {
    // take wraps negative indices once and clamps out-of-range ones, per item.
    name: "take with negative and out-of-range indices",
    args: [F(5, 3), I(-7, 8, 4)],
    f: (x, i) => np.take(x, i, 0),
  },
  {
    name: "take along axis 1 with negative and out-of-range 2-d indices",
    args: [F(2, 3, 2), I(-4, 5, 2, 2)],
    f: (x, i) => np.take(x, i, 1),
  },
  {
    name: "takeAlongAxis along axis 1",
    args: [F(3, 4), I(-4, 4, 3, 2)],
    f: (x, i) => np.takeAlongAxis(x, i, 1),
  },
  {
    name: "takeAlongAxis along axis 0",
    args: [F(3, 4), I(0, 3, 2, 4)],
    f: (x, i) => np.takeAlongAxis(x, i, 0),
  },
  {
    name: "takeAlongAxis with broadcast indices",
    args: [F(3, 4), I(0, 4, 1, 2)],
    f: (x, i) => np.takeAlongAxis(x, i, -1),
  },
  {
    name: "conv1d same padding, stride 2",
    args: [F(2, 3, 8), F(4, 3, 3)],
    f: (x, w) => np.conv1d(x, w, { stride: 2, padding: "same" }),
  },
  {
    name: "conv1d asymmetric padding, dilation 2",
    args: [F(1, 2, 7), F(3, 2, 2)],
    f: (x, w) => np.conv1d(x, w, { padding: [1, 2], dilation: 2 }),
  },
  {
    name: "maxPool1d",
    args: [F(2, 3, 8)],
    f: (x) => [np.maxPool1d(x, 2), np.maxPool1d(x, 3, 2)],
  },
  {
    name: "cast",
    args: [F(2, 3), I(-3, 3, 3)],
    f: (x, i) => [
      np.astype(x.mul(3), "int32"),
      np.astype(i, "float32").add(x),
      np.astype(np.greater(x, 0), "float32"),
      np.astype(i, "bool"),
    ],
  },
  {
    name: "random sampling with a batch of keys",
    args: [KEY, F(3)],
    f: (k, x) => [random.normal(k, [3]).add(x), random.uniform(k, [2, 2]), random.split(k, 3)],
  },
  {
    name: "einsum",
    args: [F(2, 3), F(3, 4), F(3)],
    f: (a, b, v) => [
      np.einsum("ij,jk->ik", a, b),
      np.einsum("ij,kj->ki", a, np.transpose(b)),
      np.einsum("ij->ji", a),
      np.einsum("i,i->", v, v),
      np.einsum("ij,j->i", a, v),
      np.einsum("ij,jk", a, b),
    ],
  },
  {
    name: "scan with a closed-over matrix",
    args: [F(3), F(4, 3), F(3, 3)],
    f: (h0, xs, w) => {
      const [h, ys] = scan(
        (h: NbiArray, x: NbiArray): [NbiArray, NbiArray] => {
          const next = np.tanh(np.matmul(w, h).add(x));
          return [next, np.sum(next)];
        },
        h0,
        xs,
      );
      return [h, ys];
    },
  },
];

/** A random array of the spec's shape with the batch axis of size n inserted at `axis`. */
function makeArg(spec: ArgSpec, n: number, axis: number | null, seed: number): NbiArray {
  const kind = spec.kind ?? "float";
  if (kind === "key") {
    const k = random.key(seed);
    if (axis === null) return k;
    return np.moveaxis(random.split(k, n), 0, axis);
  }
  const shape = [...spec.shape];
  if (axis !== null) shape.splice(axis, 0, n);
  if (kind === "float") return randn(shape, seed);
  if (kind === "positive") return randn(shape, seed).add(1.5);
  if (kind === "bool") return np.greater(randn(shape, seed), 0);
  return randint(shape, seed, kind.int[0], kind.int[1]);
}

/** Maps a raw integer to an axis in [-rank, rank - 1]. */
const wrapAxis = (raw: number, rank: number) => (raw % (2 * rank)) - rank;

describe.each(testBackends())("vmap equals stacking per-item results (%s)", (backend) => {
  useTestBackend(backend);

  it.each(vmapCases.map((c) => [c.name, c] as const))("%s", async (_name, c) => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          n: fc.integer({ min: 1, max: 3 }),
          seed: fc.nat(1_000_000),
          inRaw: fc.array(fc.option(fc.nat(1000), { freq: 3 }), {
            minLength: c.args.length,
            maxLength: c.args.length,
          }),
          outRaw: fc.array(fc.nat(1000), { minLength: 12, maxLength: 12 }),
          outAsNumber: fc.boolean(),
        }),
        async (s) => {
          // At least one argument is mapped.
          const inRaw = s.inRaw.every((r) => r === null) ? [0, ...s.inRaw.slice(1)] : s.inRaw;
          const inAxes = c.args.map((a, j) =>
            inRaw[j] === null ? null : wrapAxis(inRaw[j]!, a.shape.length + 1),
          );
          const args = c.args.map((a, j) =>
            makeArg(
              a,
              s.n,
              inAxes[j] === null ? null : norm(inAxes[j]!, a.shape.length + 1),
              s.seed + 7919 * j,
            ),
          );
          // Output ranks from one unbatched call.
          const itemArgs = args.map((a, j) =>
            inAxes[j] === null ? a : np.index(a, 0, norm(inAxes[j]!, a.ndim)),
          );
          const probeOut = c.f(...itemArgs);
          const probe = tree.leaves<NbiArray>(probeOut);
          let outAxes: number | number[];
          if (!globalThis.Array.isArray(probeOut) || s.outAsNumber) {
            // One axis valid for every output.
            const minRank = Math.min(...probe.map((o) => o.ndim)) + 1;
            outAxes = wrapAxis(s.outRaw[0]!, minRank);
          } else {
            outAxes = probe.map((o, k) => wrapAxis(s.outRaw[k % 12]!, o.ndim + 1));
          }
          const expected = loopVmap(c.f, args, inAxes, outAxes);
          const actual = vmap(c.f, { inAxes, outAxes })(...args);
          await expectTreeClose(
            actual,
            expected,
            c.tol ?? { rtol: 2e-5, atol: 2e-6 },
            `${c.name} n=${s.n} inAxes=${JSON.stringify(inAxes)} outAxes=${JSON.stringify(outAxes)}`,
          );
        },
      ),
      { numRuns: 12 },
    );
  });

  it("outAxes null returns an unbatched output once, and refuses a batched one", async () => {
    const xs = randn([4, 3], 6);
    const c = randn([3], 7);
    const f = (x: NbiArray, k: NbiArray) => [np.mul(x, k), np.exp(k)];
    const [a, b] = vmap(f, { inAxes: [0, null], outAxes: [1, null] })(xs, c) as NbiArray[];
    expect(b!.shape).toEqual([3]);
    await expectTreeClose(b, np.exp(c));
    await expectTreeClose(a, np.transpose(np.mul(xs, c)));
    expect(() => vmap(f, { inAxes: [0, null], outAxes: [null, null] })(xs, c)).toThrow(/unbatched/);
  });

  it("batched operand of lower rank than an unbatched one: x [3] mapped, y [4, 3] not", async () => {
    const xs = randn([5, 3], 1);
    const y = randn([4, 3], 2);
    const f = (x: NbiArray, yy: NbiArray) => np.mul(np.add(x, yy), x);
    const out = vmap(f, { inAxes: [0, null] })(xs, y);
    expect(out.shape).toEqual([5, 4, 3]);
    await expectTreeClose(out, loopVmap(f, [xs, y], [0, null], 0));
    // Same with the mapped axis last and the unbatched operand first.
    const g = (yy: NbiArray, x: NbiArray) => np.sub(yy, x);
    const out2 = vmap(g, { inAxes: [null, 1], outAxes: 2 })(y, np.transpose(xs));
    expect(out2.shape).toEqual([4, 3, 5]);
    await expectTreeClose(out2, loopVmap(g, [y, np.transpose(xs)], [null, 1], 2));
  });

  it("vmap over random.split(key, n) equals per-key calls", async () => {
    const keys = random.split(random.key(42), 5);
    const sample = (k: NbiArray) => random.normal(k, [3]);
    const batched = vmap(sample)(keys);
    expect(batched.shape).toEqual([5, 3]);
    const perKey = np.stack(random.splitList(random.key(42), 5).map(sample));
    await expectTreeClose(batched, perKey, { rtol: 0, atol: 0 });
    // Different keys give different samples.
    const rows = (await batched.data()).slice(0, 6);
    expect(rows.slice(0, 3)).not.toEqual(rows.slice(3, 6));
  });

  it("takes pytree arguments with a tree-prefix inAxes and pytree outputs", async () => {
    const p = { w: randn([3, 2], 3), b: randn([2], 4) };
    const xs = randn([3, 5], 5); // mapped along axis 1
    const f = (params: { w: NbiArray; b: NbiArray }, x: NbiArray) => ({
      y: np.matmul(x, params.w).add(params.b),
      n: np.sum(np.square(x)),
    });
    const out = vmap(f, { inAxes: [null, 1], outAxes: { y: 1, n: 0 } })(p, xs);
    expect(out.y.shape).toEqual([2, 5]);
    expect(out.n.shape).toEqual([5]);
    const items = Array.from({ length: 5 }, (_, i) => f(p, np.index(xs, i, 1)));
    await expectTreeClose(out, {
      y: np.stack(
        items.map((o) => o.y),
        1,
      ),
      n: np.stack(items.map((o) => o.n)),
    });
  });
});

describe.each(testBackends())("shape checks eagerly and under transforms (%s)", (backend) => {
  useTestBackend(backend);

  // A shape error must not depend on whether the operation runs eagerly, batched, differentiated
  // or staged: the staged route (makeJaxpr) checks shapes, so every route must.
  const routes: [string, (f: (x: NbiArray) => NbiArray) => unknown][] = [
    ["eagerly", (f) => f(np.zeros([6]))],
    ["under vmap", (f) => vmap(f)(np.zeros([2, 6]))],
    ["under grad", (f) => grad((x: NbiArray) => np.sum(f(x)))(np.zeros([6]))],
    ["under jvp", (f) => jvp(f, [np.zeros([6])], [np.ones([6])])],
    ["staged by makeJaxpr", (f) => makeJaxpr(f)(np.zeros([6]))],
  ];
  /** The routes on which `f` failed to throw an NbiError. */
  const silentRoutes = (f: (x: NbiArray) => NbiArray) =>
    routes.flatMap(([name, route]) => {
      try {
        route(f);
      } catch (e) {
        return e instanceof NbiError ? [] : [`${name} (threw ${String(e)})`];
      }
      return [name];
    });
  it("reshape to a different number of elements throws on every route", () => {
    expect(silentRoutes((x) => np.reshape(x, [2, 2]))).toEqual([]);
  });
  it("broadcastTo an incompatible shape throws on every route", () => {
    expect(silentRoutes((x) => np.broadcastTo(x, [2, 4]))).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// 2. Compositions (float32, every backend)

/** A small model used throughout: matmul, tanh and a scan over a sequence. */
function rnnLoss(w: NbiArray, x: NbiArray): NbiArray {
  // w [3, 3], x [4, 3]: a tanh RNN over the rows of x, then a squared readout.
  const [h, ys] = scan(
    (h: NbiArray, xt: NbiArray): [NbiArray, NbiArray] => {
      const next = np.tanh(np.matmul(w, h).add(xt));
      return [next, np.sum(np.square(next))];
    },
    np.zeros([3], { dtype: w.dtype }),
    x,
  );
  return np.sum(ys).add(np.sum(np.matmul(w, h)));
}

/** A vector-valued function of a vector using matmul and scan: f(x [3]) → [4]. */
function seqFn(x: NbiArray): NbiArray {
  const m = fromValues([0.5, -0.3, 0.2, 0.1, 0.4, -0.6, -0.2, 0.3, 0.7], [3, 3], x.dtype);
  const [h, ys] = scan(
    (c: NbiArray, k: NbiArray): [NbiArray, NbiArray] => {
      const next = np.sin(np.matmul(m, c).mul(k)).add(c.mul(0.5));
      return [next, np.sum(next.mul(x))];
    },
    x,
    fromValues([1, 0.5, -1], [3], x.dtype),
  );
  return np.concatenate([h, np.reshape(np.sum(ys), [1])]);
}

/** A scalar function of a vector (for Hessians): matmul, scan and elementwise math. */
function scalarFn(x: NbiArray): NbiArray {
  const y = seqFn(x);
  return np.sum(np.tanh(y).mul(y)).add(np.sum(np.exp(x.mul(0.3))));
}

describe.each(testBackends())("transform compositions in float32 (%s)", (backend) => {
  useTestBackend(backend);
  const tol = { rtol: 2e-4, atol: 2e-5 };

  it("grad(vmap(f)): gradient of a sum of vmapped losses is the sum of per-item gradients", async () => {
    const w = randn([3, 3], 10, "float32", 0.7);
    const xs = randn([5, 4, 3], 11);
    const batchLoss = (ww: NbiArray) => np.sum(vmap(rnnLoss, { inAxes: [null, 0] })(ww, xs));
    const g = grad(batchLoss)(w);
    let expected = np.zerosLike(w);
    for (let i = 0; i < 5; i++) expected = expected.add(grad(rnnLoss)(w, np.index(xs, i)));
    await expectTreeClose(g, expected, tol);
    // And w.r.t. the mapped argument: item i's gradient is grad of item i's loss.
    const gx = grad((xx: NbiArray) => np.sum(vmap(rnnLoss, { inAxes: [null, 0] })(w, xx)))(xs);
    await expectTreeClose(
      gx,
      stackLoop((x) => grad(rnnLoss, { argnums: 1 })(w, x), [xs], [true]),
      tol,
    );
  });

  it("vmap(grad(f)): per-example gradients equal a loop of grads", async () => {
    const w = randn([3, 3], 12, "float32", 0.7);
    const xs = randn([4, 4, 3], 13);
    const perExample = vmap(grad(rnnLoss), { inAxes: [null, 0] })(w, xs);
    expect(perExample.shape).toEqual([4, 3, 3]);
    await expectTreeClose(
      perExample,
      stackLoop((x) => grad(rnnLoss)(w, x), [xs], [true]),
      tol,
    );
    // Mapped over the parameters too, with the batch axis elsewhere.
    const ws = randn([3, 4, 3], 14, "float32", 0.7); // batch on axis 1
    const both = vmap(grad(rnnLoss, { argnums: [0, 1] }), { inAxes: [1, 0], outAxes: [2, 0] })(
      ws,
      xs,
    );
    const items = Array.from({ length: 4 }, (_, i) =>
      grad(rnnLoss, { argnums: [0, 1] })(np.index(ws, i, 1), np.index(xs, i)),
    );
    await expectTreeClose(
      both,
      [
        np.stack(
          items.map((t) => t[0]),
          2,
        ),
        np.stack(items.map((t) => t[1])),
      ],
      tol,
    );
  });

  it("grad(grad(f)) of a scalar function with matmul equals the analytic second derivative", async () => {
    // f(t) = sum(tanh(M (t v))) ⇒ f'' = sum(-2 tanh(u) (1 - tanh(u)^2) (M v)^2), u = t M v.
    const m = randn([3, 2], 15);
    const v = randn([2], 16);
    const f = (t: NbiArray) => np.sum(np.tanh(np.matmul(m, v.mul(t))));
    const t = np.array(0.7);
    const d2 = grad(grad(f))(t);
    const mv = np.matmul(m, v);
    const th = np.tanh(mv.mul(t));
    const analytic = np.sum(
      th
        .mul(-2)
        .mul(np.sub(1, np.square(th)))
        .mul(np.square(mv)),
    );
    await expectTreeClose(d2, analytic, tol);
    // grad of the sum of the gradient of a vector function is the Hessian's row sums.
    const x = randn([3], 17);
    const rowSums = grad((y: NbiArray) => np.sum(grad(scalarFn)(y)))(x);
    await expectTreeClose(rowSums, np.sum(hessian(scalarFn)(x), { axis: 1 }), tol);
  });

  it("vmap(vmap(f)) equals a double loop, with mixed axes", async () => {
    const f = (a: NbiArray, b: NbiArray) => np.tanh(np.matmul(a, b)).add(np.sum(a));
    // a: logical [2, 3], mapped on outer axis 0 and inner axis 2; b [3, 4] mapped only outside.
    const a = randn([5, 2, 3, 4], 18); // outer batch 5 at axis 0, inner batch 4 at axis 3
    const b = randn([3, 4, 5], 19); // outer batch at axis 2, unmapped inside
    const inner = vmap(f, { inAxes: [2, null], outAxes: 1 });
    const outer = vmap(inner, { inAxes: [0, 2], outAxes: 0 });
    const out = outer(a, b);
    expect(out.shape).toEqual([5, 2, 4, 4]);
    const expected = np.stack(
      Array.from({ length: 5 }, (_, i) => {
        const ai = np.index(a, i, 0);
        const bi = np.index(b, i, 2);
        return np.stack(
          Array.from({ length: 4 }, (_, j) => f(np.index(ai, j, 2), bi)),
          1,
        );
      }),
    );
    await expectTreeClose(out, expected, tol);
    // Nesting with scan inside.
    const xs = randn([2, 3, 4, 3], 20);
    const w = randn([3, 3], 21, "float32", 0.7);
    const nested = vmap(vmap(rnnLoss, { inAxes: [null, 0] }), { inAxes: [null, 0] })(w, xs);
    const loop = np.stack(
      Array.from({ length: 2 }, (_, i) =>
        np.stack(Array.from({ length: 3 }, (_, j) => rnnLoss(w, np.index(np.index(xs, i), j)))),
      ),
    );
    await expectTreeClose(nested, loop, tol);
  });

  it("jacfwd(jacrev(f)) equals jacrev(jacfwd(f)), hessian and jacfwd(jacfwd(f))", async () => {
    const x = randn([3], 22);
    const h1 = jacfwd(jacrev(scalarFn))(x);
    const h2 = jacrev(jacfwd(scalarFn))(x);
    const h3 = hessian(scalarFn)(x);
    const h4 = jacfwd(jacfwd(scalarFn))(x);
    expect(h1.shape).toEqual([3, 3]);
    await expectTreeClose(h1, h2, tol);
    await expectTreeClose(h3, h2, tol);
    await expectTreeClose(h4, h2, tol);
    // Symmetric.
    await expectTreeClose(h1, np.transpose(h1), tol);
    // Vector output: d²f_i / dx_j dx_k by both routes.
    const t1 = jacfwd(jacrev(seqFn))(x);
    const t2 = jacrev(jacfwd(seqFn))(x);
    expect(t1.shape).toEqual([4, 3, 3]);
    await expectTreeClose(t1, t2, tol);
  });

  it("vmap(jacrev(f)) and vmap(jacfwd(f)) equal loops of Jacobians", async () => {
    const xs = randn([4, 3], 23);
    const byRev = vmap(jacrev(seqFn))(xs);
    const byFwd = vmap(jacfwd(seqFn))(xs);
    const loop = stackLoop((x) => jacrev(seqFn)(x), [xs], [true]);
    expect(byRev.shape).toEqual([4, 4, 3]);
    await expectTreeClose(byRev, loop, tol);
    await expectTreeClose(byFwd, loop, tol);
    // With a matmul and an unmapped parameter, batch axis last.
    const w = randn([3, 3], 24, "float32", 0.7);
    const xT = randn([4, 3, 2], 25);
    const jw = vmap(jacrev(rnnLoss), { inAxes: [null, 2] })(w, xT);
    await expectTreeClose(
      jw,
      stackLoop((x) => jacrev(rnnLoss)(w, x), [np.moveaxis(xT, 2, 0)], [true]),
      tol,
    );
  });

  it("jvp of grad equals the Hessian-vector product, vjp of jvp equals the transposed product", async () => {
    const x = randn([3], 26);
    const v = randn([3], 27);
    const [, hv] = jvp(grad(scalarFn), [x], [v]);
    const h = hessian(scalarFn)(x);
    await expectTreeClose(hv, np.matmul(h, v), tol);
    const [, pull] = vjp((y: NbiArray) => jvp(seqFn, [y], [v])[1], x);
    const [ct] = pull(np.ones([4]));
    // d/dx (1ᵀ J(x) v) = Σ_i Σ_k T[i, k, j] v_k
    const t = jacfwd(jacrev(seqFn))(x);
    await expectTreeClose(ct, np.sum(np.matmul(t, v), { axis: 0 }), tol);
  });
});

// ---------------------------------------------------------------------------------------------
// 2b. Compositions against finite differences (float64 on cpu)

interface MlpParams {
  w1: NbiArray;
  b1: NbiArray;
  w2: NbiArray;
  b2: NbiArray;
}

const mlpShapes: [keyof MlpParams, number[]][] = [
  ["b1", [3]],
  ["b2", [1]],
  ["w1", [2, 3]],
  ["w2", [3, 1]],
];

function mlpLoss(p: MlpParams, x: NbiArray, y: NbiArray): NbiArray {
  const h = np.tanh(np.matmul(x, p.w1).add(p.b1));
  const out = np.reshape(np.matmul(h, p.w2).add(p.b2), [-1]);
  return np.mean(np.square(out.sub(y))).add(np.sum(np.square(p.w1)).mul(0.01));
}

/** θ [13] → {w1, b1, w2, b2}, in the pytree's leaf order (keys sorted). */
function unravel(theta: NbiArray): MlpParams {
  const out: Record<string, NbiArray> = {};
  let offset = 0;
  for (const [name, shape] of mlpShapes) {
    const n = sizeOf(shape);
    out[name] = np.reshape(np.slice(theta, [offset, offset + n]), shape);
    offset += n;
  }
  return out as unknown as MlpParams;
}

describe("transform compositions against finite differences (float64, cpu)", () => {
  useTestBackend("cpu");
  const tol = { rtol: 1e-5, atol: 1e-6 };

  it("Hessian of a small MLP loss over flattened pytree params: fwd∘rev = rev∘fwd = FD", async () => {
    const x = randn([4, 2], 30, "float64");
    const y = randn([4], 31, "float64");
    const theta = randn([13], 32, "float64");
    const loss = (t: NbiArray) => mlpLoss(unravel(t), x, y);
    const fr = jacfwd(jacrev(loss))(theta);
    const rf = jacrev(jacfwd(loss))(theta);
    expect(fr.shape).toEqual([13, 13]);
    expect(fr.dtype).toBe("float64");
    await expectTreeClose(fr, rf, { rtol: 1e-10, atol: 1e-12 });
    await expectTreeClose(fr, fdHessian(loss, theta), tol);
    // The Hessian w.r.t. the params pytree directly: H[a][b] has shape a.shape ++ b.shape and
    // equals the corresponding block of the flat Hessian.
    const params = unravel(theta);
    const ht = hessian((p: MlpParams) => mlpLoss(p, x, y))(params) as Record<
      string,
      Record<string, NbiArray>
    >;
    let oa = 0;
    for (const [a, sa] of mlpShapes) {
      let ob = 0;
      const na = sizeOf(sa);
      for (const [b, sb] of mlpShapes) {
        const nb = sizeOf(sb);
        const block = np.reshape(np.slice(fr, [oa, oa + na], [ob, ob + nb]), [...sa, ...sb]);
        await expectTreeClose(ht[a]![b], block, { rtol: 1e-10, atol: 1e-12 }, `H[${a}][${b}]`);
        ob += nb;
      }
      oa += na;
    }
  });

  it("Hessian of a small MLP loss w.r.t. the input: fwd∘rev = rev∘fwd = FD", async () => {
    const params = unravel(randn([13], 33, "float64"));
    const y = randn([4], 34, "float64");
    const x = randn([4, 2], 35, "float64");
    const loss = (xx: NbiArray) => mlpLoss(params, xx, y);
    const fr = jacfwd(jacrev(loss))(x);
    const rf = jacrev(jacfwd(loss))(x);
    expect(fr.shape).toEqual([4, 2, 4, 2]);
    await expectTreeClose(fr, rf, { rtol: 1e-10, atol: 1e-12 });
    await expectTreeClose(fr, fdHessian(loss, x), tol);
  });

  it("Hessians and Jacobians of functions using matmul and scan equal finite differences", async () => {
    const x = randn([3], 36, "float64");
    await expectTreeClose(jacfwd(jacrev(scalarFn))(x), fdHessian(scalarFn, x), tol);
    await expectTreeClose(jacrev(jacfwd(scalarFn))(x), fdHessian(scalarFn, x), tol);
    await expectTreeClose(jacrev(seqFn)(x), fdJacobian(seqFn, x), tol);
    await expectTreeClose(jacfwd(seqFn)(x), fdJacobian(seqFn, x), tol);
    // Second derivatives of the vector function.
    await expectTreeClose(
      jacfwd(jacrev(seqFn))(x),
      fdJacobian((y) => jacrev(seqFn)(y), x),
      tol,
    );
    const w = randn([3, 3], 37, "float64", 0.7);
    const xs = randn([4, 3], 38, "float64");
    await expectTreeClose(
      jacfwd(jacrev(rnnLoss))(w, xs),
      fdHessian((ww) => rnnLoss(ww, xs), w),
      tol,
    );
  });

  it("grad(grad(f)), grad(vmap(f)) and vmap(grad(f)) equal finite differences", async () => {
    const m = randn([3, 3], 39, "float64");
    const f = (t: NbiArray) =>
      np.sum(np.sin(np.matmul(m, np.full([3], 1, { dtype: "float64" }).mul(t))).mul(t));
    const t = np.array(0.4, { dtype: "float64" });
    const d2 = grad(grad(f))(t);
    const fd = fdHessian(f, t); // shape []
    await expectTreeClose(d2, fd, tol);
    // grad of a batch loss w.r.t. shared weights vs FD.
    const w = randn([3, 3], 40, "float64", 0.7);
    const xs = randn([3, 4, 3], 41, "float64");
    const batch = (ww: NbiArray) => np.sum(vmap(rnnLoss, { inAxes: [null, 0] })(ww, xs));
    await expectTreeClose(grad(batch)(w), fdJacobian(batch, w), tol);
    // Per-example gradients vs per-example FD.
    const per = vmap(grad(rnnLoss), { inAxes: [null, 0] })(w, xs);
    const fdPer = np.stack(
      Array.from({ length: 3 }, (_, i) => fdJacobian((ww) => rnnLoss(ww, np.index(xs, i)), w)),
    );
    await expectTreeClose(per, fdPer, tol);
  });
});

// ---------------------------------------------------------------------------------------------
// 3. jacfwd and jacrev on pytree inputs and outputs

describe.each(testBackends())("Jacobians of pytree functions (%s)", (backend) => {
  useTestBackend(backend);

  type In = { a: NbiArray; b: [NbiArray, NbiArray] };
  const f = (p: In) => [
    np.matmul(p.b[0], p.a), // [3]
    { s: np.sum(np.sin(p.a).mul(p.b[1])), m: np.tanh(np.reshape(p.b[0], [2, 3]).mul(p.b[1])) },
  ];
  const input = (): In => ({ a: randn([2], 50), b: [randn([3, 2], 51), randn([], 52)] });

  it("has the output tree of input trees with shapes out.shape ++ in.shape; fwd equals rev", async () => {
    const p = input();
    const jf = jacfwd(f)(p);
    const jr = jacrev(f)(p);
    const outLeaves = tree.leaves<NbiArray>(f(p));
    const inLeaves = tree.leaves<NbiArray>(p);
    // Structure: output structure with each leaf replaced by the input structure.
    const expectedStructure = tree.unflatten(
      tree.structure(f(p)),
      outLeaves.map(() => p),
    );
    expect(tree.treeDefToString(tree.structure(jf))).toBe(
      tree.treeDefToString(tree.structure(expectedStructure)),
    );
    expect(tree.treeDefToString(tree.structure(jr))).toBe(
      tree.treeDefToString(tree.structure(expectedStructure)),
    );
    const jfLeaves = tree.leaves<NbiArray>(jf);
    let k = 0;
    for (const o of outLeaves) {
      for (const i of inLeaves) {
        expect(jfLeaves[k]!.shape).toEqual([...o.shape, ...i.shape]);
        k++;
      }
    }
    await expectTreeClose(jf, jr, { rtol: 1e-5, atol: 1e-6 });
  });

  it("matches per-element derivatives from jvp (columns) and vjp (rows)", async () => {
    const p = input();
    const jf = jacfwd(f)(p) as [{ a: NbiArray; b: [NbiArray, NbiArray] }, { s: In; m: In }];
    // Column of d out / d a[1]: jvp with tangent e_1 on a, zero elsewhere.
    const tangent: In = {
      a: np.array([0, 1]),
      b: [np.zeros([3, 2]), np.zeros([])],
    };
    const [, tOut] = jvp(f, [p], [tangent]) as unknown as [
      unknown,
      [NbiArray, { s: NbiArray; m: NbiArray }],
    ];
    await expectTreeClose(np.index(jf[0].a, 1, 1), tOut[0]);
    await expectTreeClose(np.index(jf[1].s.a, 1, 0), tOut[1].s);
    await expectTreeClose(np.index(jf[1].m.a, 1, 2), tOut[1].m);
    // Row of d s / d inputs: the vjp with cotangent 1 on s.
    const [, pull] = vjp(f, p);
    const [ct] = pull([np.zeros([3]), { s: np.array(1), m: np.zeros([2, 3]) }] as never) as [In];
    await expectTreeClose(jf[1].s, ct, { rtol: 1e-5, atol: 1e-6 });
  });

  it("uses argnums to pick the differentiated argument", async () => {
    const g = (x: NbiArray, q: { u: NbiArray }) => np.matmul(q.u, np.tanh(x));
    const x = randn([3], 53);
    const q = { u: randn([2, 3], 54) };
    const jq = jacfwd(g, { argnums: 1 })(x, q);
    expect(jq.u.shape).toEqual([2, 2, 3]);
    await expectTreeClose(jq, jacrev(g, { argnums: 1 })(x, q), { rtol: 1e-5, atol: 1e-6 });
    // d (U tanh x)_i / d U_jk = δ_ij tanh(x_k)
    const th = np.tanh(x);
    const expected = np.stack([np.stack([th, np.zeros([3])]), np.stack([np.zeros([3]), th])]);
    await expectTreeClose(jq.u, expected, { rtol: 1e-6, atol: 1e-7 });
  });
});

describe("Jacobians of pytree functions against finite differences (float64, cpu)", () => {
  useTestBackend("cpu");

  it("every block equals a finite-difference Jacobian", async () => {
    const a = randn([2], 60, "float64");
    const b = randn([3, 2], 61, "float64");
    const f = (p: { a: NbiArray; b: NbiArray }) => ({
      u: np.matmul(p.b, np.sin(p.a)),
      v: [np.sum(np.exp(p.b.mul(p.a)))],
    });
    const jf = jacfwd(f)({ a, b });
    const jr = jacrev(f)({ a, b });
    const tol = { rtol: 1e-6, atol: 1e-8 };
    await expectTreeClose(jf, jr, { rtol: 1e-12, atol: 1e-12 });
    await expectTreeClose(
      jf.u.a,
      fdJacobian((x) => f({ a: x, b }).u, a),
      tol,
    );
    await expectTreeClose(
      jf.u.b,
      fdJacobian((x) => f({ a, b: x }).u, b),
      tol,
    );
    await expectTreeClose(
      jf.v[0].a,
      fdJacobian((x) => f({ a: x, b }).v[0]!, a),
      tol,
    );
    await expectTreeClose(
      jf.v[0].b,
      fdJacobian((x) => f({ a, b: x }).v[0]!, b),
      tol,
    );
  });
});
