/**
 * Derivatives of every differentiable primitive and of the derived functions, checked against
 * independent references:
 *  1. grad of `sum(op(...) * w)` (a fixed random weight, so every output element matters) against
 *     central finite differences in float64, w.r.t. every argument;
 *  2. grad(grad(f)) against finite differences of grad(f);
 *  3. the adjoint identity <vjp(ȳ), ẋ> = <ȳ, jvp(ẋ)> on random shapes and values (fast-check), in
 *     float64 on cpu and in float32 on every test backend;
 *  4. jvp against finite-difference directional derivatives (also of grad, forward-over-reverse).
 * Inputs keep away from kinks: distinct values for max/min/pool/abs, positive values for
 * log/sqrt and pow's base.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { DType, Array as NbiArray } from "../../src/index.js";
import { grad, jvp, np, scan, vjp } from "../../src/index.js";
import { testBackends, useTestBackend } from "../helpers/backends.js";
import {
  assertClose,
  distinct,
  dotWithScale,
  fromValues,
  numericalGrad,
  numericalJvp,
  rand,
  sizeOf,
  uniforms,
  values,
} from "../helpers/finite-diff.js";

type Fn = (...xs: NbiArray[]) => NbiArray;

const F64 = { dtype: "float64" as DType };
const positive = (shape: number[], seed: number) => rand(shape, seed, { lo: 0.5, hi: 2 });
const ints = (v: number[] | number[][]) => np.array(v, { dtype: "int32" });

/** Two arrays whose values, taken together, are pairwise well apart (see `distinct`). */
function distinctPair(a: number[], b: number[], seed: number): [NbiArray, NbiArray] {
  const all = values(distinct([sizeOf(a) + sizeOf(b)], seed));
  return [
    fromValues(all.slice(0, sizeOf(a)), a, "float64"),
    fromValues(all.slice(sizeOf(a)), b, "float64"),
  ];
}

/** Values on the grid k / 4096 in [-1, 1]: exact in float32, and so are ±2^-10 steps. */
function grid(shape: number[], seed: number, dtype: DType): NbiArray {
  return fromValues(
    uniforms(sizeOf(shape), seed).map((u) => Math.round((2 * u - 1) * 4096) / 4096),
    shape,
    dtype,
  );
}

/** A small tanh recurrence over xs with a closed-over weight matrix; hT and ys flattened. */
function rnn(reverse: boolean) {
  return (h0: NbiArray, xs: NbiArray, w: NbiArray): NbiArray => {
    const [hT, ys] = scan(
      (h: NbiArray, x: NbiArray): [NbiArray, NbiArray] => {
        const hn = np.tanh(np.add(np.matmul(w, h), x));
        return [hn, np.mul(hn, np.sin(x))];
      },
      h0,
      xs,
      { reverse },
    );
    return np.concatenate([hT, np.ravel(ys)]);
  };
}

// ---------------------------------------------------------------------------------------------
// 1. First-order gradients against finite differences

interface GradCase {
  name: string;
  args: () => NbiArray[];
  f: Fn;
  /** Finite-difference step (relative, with a floor of 1 on |x|). */
  eps?: number;
}

const unary = (name: string, op: (x: NbiArray) => NbiArray, make: () => NbiArray): GradCase => ({
  name,
  args: () => [make()],
  f: op,
});

const gradCases: GradCase[] = [
  // Unary elementwise
  unary("neg", np.neg, () => rand([2, 3], 1)),
  unary("exp", np.exp, () => rand([2, 3], 2)),
  unary("log (positive inputs)", np.log, () => positive([2, 3], 3)),
  unary("log1p", np.log1p, () => rand([2, 3], 4, { lo: -0.5, hi: 2 })),
  unary("expm1", np.expm1, () => rand([2, 3], 5)),
  unary("sin", np.sin, () => rand([2, 3], 6, { lo: -3, hi: 3 })),
  unary("cos", np.cos, () => rand([2, 3], 7, { lo: -3, hi: 3 })),
  unary("tanh", np.tanh, () => rand([2, 3], 8, { lo: -2, hi: 2 })),
  unary("sqrt (positive inputs)", np.sqrt, () => positive([2, 3], 9)),
  unary("abs (away from 0)", np.abs, () => distinct([2, 3], 10)),
  // Binary, broadcasting [3, 1] with [4] and [2, 1, 3] with [4, 1]
  { name: "add [3,1]+[4]", args: () => [rand([3, 1], 11), rand([4], 12)], f: np.add },
  { name: "sub [3,1]-[4]", args: () => [rand([3, 1], 13), rand([4], 14)], f: np.sub },
  { name: "mul [3,1]*[4]", args: () => [rand([3, 1], 15), rand([4], 16)], f: np.mul },
  { name: "mul [2,1,3]*[4,1]", args: () => [rand([2, 1, 3], 17), rand([4, 1], 18)], f: np.mul },
  { name: "div [3,1]/[4]", args: () => [rand([3, 1], 19), positive([4], 20)], f: np.div },
  {
    name: "div [4]/[3,1] (negative divisors)",
    args: () => [rand([4], 21), rand([3, 1], 22, { lo: -2, hi: -0.5 })],
    f: np.div,
  },
  {
    name: "pow [3,1]**[4] (positive base)",
    args: () => [positive([3, 1], 23), rand([4], 24, { lo: -2, hi: 2 })],
    f: np.pow,
  },
  {
    name: "pow [2,3]**[2,3]",
    args: () => [positive([2, 3], 25), rand([2, 3], 26, { lo: -1.5, hi: 2.5 })],
    f: np.pow,
  },
  {
    name: "maximum [3,1],[4] (distinct)",
    args: () => distinctPair([3, 1], [4], 27),
    f: np.maximum,
  },
  {
    name: "minimum [3,1],[4] (distinct)",
    args: () => distinctPair([3, 1], [4], 28),
    f: np.minimum,
  },
  {
    name: "maximum [2,3],[2,3] (distinct)",
    args: () => distinctPair([2, 3], [2, 3], 29),
    f: np.maximum,
  },
  // where, with broadcasting of the condition and both branches
  {
    name: "where(cond [3,4], x [3,1], y [4])",
    args: () => [rand([3, 1], 30), rand([4], 31)],
    f: (x, y) =>
      np.where(
        np.array([
          [true, false, true, true],
          [false, false, true, false],
          [true, true, false, true],
        ]),
        x,
        y,
      ),
  },
  {
    name: "where(cond [4], x [2,4], y scalar array)",
    args: () => [rand([2, 4], 32), rand([], 33)],
    f: (x, y) => np.where(np.array([false, true, true, false]), x, y),
  },
  // astype: float32 input into a float64 computation, and a float64 → float32 → float64 round
  // trip on values (and ±2^-10 steps) that float32 holds exactly.
  {
    name: "astype float32 → float64",
    args: () => [rand([2, 3], 34, { dtype: "float32" })],
    f: (x) => np.sin(np.astype(x, "float64")),
  },
  {
    name: "astype float64 → float32 → float64",
    args: () => [grid([2, 3], 35, "float64")],
    f: (x) => np.sin(np.astype(np.astype(x, "float32"), "float64")),
    eps: 2 ** -10,
  },
  // Reductions
  {
    name: "sum axis 1 of [2,3,4]",
    args: () => [rand([2, 3, 4], 36)],
    f: (x) => np.sum(x, { axis: 1 }),
  },
  {
    name: "sum axes [0,2] keepdims",
    args: () => [rand([2, 3, 4], 37)],
    f: (x) => np.sum(x, { axis: [0, 2], keepdims: true }),
  },
  { name: "sum all", args: () => [rand([2, 3, 4], 38)], f: (x) => np.sum(np.sin(x)) },
  {
    name: "max axis 1 (distinct)",
    args: () => [distinct([2, 3, 4], 39)],
    f: (x) => np.max(x, { axis: 1 }),
  },
  { name: "max all (distinct)", args: () => [distinct([2, 3, 4], 40)], f: (x) => np.max(x) },
  {
    name: "max axis -1 keepdims (distinct)",
    args: () => [distinct([3, 4], 41)],
    f: (x) => np.max(x, { axis: -1, keepdims: true }),
  },
  {
    name: "min axes [0,2] (distinct)",
    args: () => [distinct([2, 3, 4], 42)],
    f: (x) => np.min(x, { axis: [0, 2] }),
  },
  {
    name: "min all keepdims (distinct)",
    args: () => [distinct([3, 4], 43)],
    f: (x) => np.min(x, { keepdims: true }),
  },
  // matmul
  {
    name: "matmul [2,1,3,4]@[3,4,5] (broadcast batch)",
    args: () => [rand([2, 1, 3, 4], 44), rand([3, 4, 5], 45)],
    f: np.matmul,
  },
  {
    name: "matmul [2,3,4]@[4,5] (folded batch)",
    args: () => [rand([2, 3, 4], 46), rand([4, 5], 47)],
    f: np.matmul,
  },
  {
    name: "matmul [3,4]@[2,4,5]",
    args: () => [rand([3, 4], 48), rand([2, 4, 5], 49)],
    f: np.matmul,
  },
  {
    name: "matmul [4]@[4,5] (vector left)",
    args: () => [rand([4], 50), rand([4, 5], 51)],
    f: np.matmul,
  },
  {
    name: "matmul [3,4]@[4] (vector right)",
    args: () => [rand([3, 4], 52), rand([4], 53)],
    f: np.matmul,
  },
  { name: "matmul [4]@[4] (dot)", args: () => [rand([4], 54), rand([4], 55)], f: np.matmul },
  {
    name: "matmul [5]@[2,5,3] (vector and batch)",
    args: () => [rand([5], 56), rand([2, 5, 3], 57)],
    f: np.matmul,
  },
  // Shape ops
  {
    name: "reshape [2,6] → [3,4]",
    args: () => [rand([2, 6], 58)],
    f: (x) => np.reshape(np.sin(x), [3, 4]),
  },
  {
    name: "reshape [2,3,4] → [4,-1]",
    args: () => [rand([2, 3, 4], 59)],
    f: (x) => np.reshape(x, [4, -1]),
  },
  {
    name: "transpose [2,3,4] perm [2,0,1]",
    args: () => [rand([2, 3, 4], 60)],
    f: (x) => np.transpose(x, [2, 0, 1]),
  },
  {
    name: "transpose default (reversed)",
    args: () => [rand([2, 3, 4], 61)],
    f: (x) => np.transpose(x),
  },
  {
    name: "broadcastTo [3,1] → [2,3,4]",
    args: () => [rand([3, 1], 62)],
    f: (x) => np.broadcastTo(x, [2, 3, 4]),
  },
  {
    name: "slice [1:3, 1:] of [4,5]",
    args: () => [rand([4, 5], 63)],
    f: (x) => np.slice(x, [1, 3], [1]),
  },
  {
    name: "slice negative bounds and null",
    args: () => [rand([3, 4, 5], 64)],
    f: (x) => np.slice(x, null, [-3, -1], [0, 4]),
  },
  {
    name: "concatenate axis 1",
    args: () => [rand([2, 3], 65), rand([2, 2], 66)],
    f: (x, y) => np.concatenate([x, y, x], 1),
  },
  {
    name: "concatenate axis 0",
    args: () => [rand([1, 3], 67), rand([2, 3], 68)],
    f: (x, y) => np.concatenate([y, x], 0),
  },
  {
    name: "stack and split",
    args: () => [rand([2, 3], 69), rand([2, 3], 70)],
    f: (x, y) =>
      np.mul(np.stack([x, y], 1), np.concatenate(np.split(np.stack([y, x], 1), [1], 1), 1)),
  },
  {
    name: "index",
    args: () => [rand([3, 4], 71)],
    f: (x) => np.mul(np.index(x, 1, 1), np.index(x, -1, 1)),
  },
  {
    name: "pad [[1,2],[0,1]]",
    args: () => [rand([2, 3], 72)],
    f: (x) =>
      np.pad(x, [
        [1, 2],
        [0, 1],
      ]),
  },
  {
    name: "pad 1 with value 1.5",
    args: () => [rand([2, 3], 73)],
    f: (x) => np.pad(np.exp(x), 1, { value: 1.5 }),
  },
  // Gathers: repeated indices make the scatter-add of the cotangent matter
  {
    name: "take axis 1, repeated indices",
    args: () => [rand([3, 4], 74)],
    f: (x) => np.take(x, [2, 0, 2, 1, 2], 1),
  },
  {
    name: "take axis 0, 2-D repeated indices",
    args: () => [rand([3, 4], 75)],
    f: (x) =>
      np.take(
        x,
        ints([
          [0, 2],
          [2, 2],
          [1, 0],
        ]),
        0,
      ),
  },
  {
    name: "take flattened, negative indices",
    args: () => [rand([3, 4], 76)],
    f: (x) => np.take(x, [-1, 0, 11, 5, -12, 5]),
  },
  {
    name: "takeAlongAxis axis 1, repeated indices",
    args: () => [rand([3, 4], 77)],
    f: (x) =>
      np.takeAlongAxis(
        x,
        ints([
          [0, 0, 3, 1, 3],
          [2, 2, 2, 0, 1],
          [3, 1, 1, 1, 0],
        ]),
        1,
      ),
  },
  {
    name: "takeAlongAxis axis 0, broadcast indices",
    args: () => [rand([3, 4], 78)],
    f: (x) => np.takeAlongAxis(x, ints([[2], [2], [0]]), 0),
  },
  // Convolution and pooling
  {
    name: "conv1d plain",
    args: () => [rand([2, 3, 9], 79), rand([4, 3, 3], 80)],
    f: (x, w) => np.conv1d(x, w),
  },
  {
    name: "conv1d stride 2, padding 1, dilation 2",
    args: () => [rand([2, 3, 9], 81), rand([4, 3, 3], 82)],
    f: (x, w) => np.conv1d(x, w, { stride: 2, padding: 1, dilation: 2 }),
  },
  {
    name: "conv1d padding same, dilation 3",
    args: () => [rand([1, 2, 8], 83), rand([3, 2, 2], 84)],
    f: (x, w) => np.conv1d(x, w, { padding: "same", dilation: 3 }),
  },
  {
    name: "conv1d stride 3, padding [2, 0]",
    args: () => [rand([2, 2, 10], 85), rand([2, 2, 4], 86)],
    f: (x, w) => np.conv1d(x, w, { stride: 3, padding: [2, 0] }),
  },
  {
    name: "maxPool1d kernel 3 stride 2 (distinct)",
    args: () => [distinct([2, 3, 9], 87)],
    f: (x) => np.maxPool1d(x, 3, 2),
  },
  {
    name: "maxPool1d kernel 3 stride 1, overlapping",
    args: () => [distinct([2, 2, 7], 88)],
    f: (x) => np.maxPool1d(x, 3, 1),
  },
  {
    name: "maxPool1d kernel 2 (default stride)",
    args: () => [distinct([1, 3, 8], 89)],
    f: (x) => np.maxPool1d(x, 2),
  },
  // scan: w.r.t. init, xs and a closed-over weight
  {
    name: "scan tanh recurrence",
    args: () => [rand([3], 90), rand([5, 3], 91), rand([3, 3], 92)],
    f: rnn(false),
  },
  {
    name: "scan tanh recurrence, reverse",
    args: () => [rand([3], 93), rand([4, 3], 94), rand([3, 3], 95)],
    f: rnn(true),
  },
  // einsum
  {
    name: "einsum bij,bjk->bik",
    args: () => [rand([2, 3, 4], 96), rand([2, 4, 5], 97)],
    f: (a, b) => np.einsum("bij,bjk->bik", a, b),
  },
  {
    name: "einsum ij,kj->ik",
    args: () => [rand([3, 4], 98), rand([2, 4], 99)],
    f: (a, b) => np.einsum("ij,kj->ik", a, b),
  },
  {
    name: "einsum i,j->ij",
    args: () => [rand([3], 100), rand([4], 101)],
    f: (a, b) => np.einsum("i,j->ij", a, b),
  },
  {
    name: "einsum ij,ij-> (full contraction)",
    args: () => [rand([3, 4], 102), rand([3, 4], 103)],
    f: (a, b) => np.einsum("ij,ij->", a, b),
  },
  { name: "einsum ijk->ki", args: () => [rand([2, 3, 4], 104)], f: (a) => np.einsum("ijk->ki", a) },
  {
    name: "einsum bij,bjk->bik with a size-1 batch",
    args: () => [rand([1, 3, 4], 105), rand([2, 4, 2], 106)],
    f: (a, b) => np.einsum("bij,bjk->bik", a, b),
  },
  {
    name: "einsum ij,jk (implicit output)",
    args: () => [rand([3, 4], 107), rand([4, 2], 108)],
    f: (a, b) => np.einsum("ij,jk", a, b),
  },
  // Derived functions
  {
    name: "logsumexp axis 1",
    args: () => [rand([3, 4], 109, { lo: -3, hi: 3 })],
    f: (x) => np.logsumexp(x, { axis: 1 }),
  },
  {
    name: "logsumexp all keepdims",
    args: () => [rand([3, 4], 110, { lo: -3, hi: 3 })],
    f: (x) => np.logsumexp(x, { keepdims: true }),
  },
  { name: "softplus", args: () => [rand([2, 4], 111, { lo: -4, hi: 4 })], f: np.softplus },
  { name: "sigmoid", args: () => [rand([2, 4], 112, { lo: -4, hi: 4 })], f: np.sigmoid },
  { name: "logSigmoid", args: () => [rand([2, 4], 113, { lo: -4, hi: 4 })], f: np.logSigmoid },
  {
    name: "softmax last axis",
    args: () => [rand([3, 4], 114, { lo: -2, hi: 2 })],
    f: (x) => np.softmax(x),
  },
  {
    name: "softmax axis 0",
    args: () => [rand([3, 4], 115, { lo: -2, hi: 2 })],
    f: (x) => np.softmax(x, 0),
  },
  {
    name: "logSoftmax",
    args: () => [rand([3, 4], 116, { lo: -2, hi: 2 })],
    f: (x) => np.logSoftmax(x),
  },
  { name: "norm (2, all)", args: () => [rand([3, 4], 117)], f: (x) => np.norm(x) },
  { name: "norm (2, axis 1)", args: () => [rand([3, 4], 118)], f: (x) => np.norm(x, { axis: 1 }) },
  {
    name: "norm ord 1 (distinct)",
    args: () => [distinct([3, 4], 119)],
    f: (x) => np.norm(x, { ord: 1, axis: 0 }),
  },
  {
    name: "norm ord inf (distinct)",
    args: () => [distinct([3, 4], 120)],
    f: (x) => np.norm(x, { ord: Number.POSITIVE_INFINITY, axis: 1 }),
  },
  { name: "norm ord 3", args: () => [distinct([3, 4], 121)], f: (x) => np.norm(x, { ord: 3 }) },
  { name: "var axis 1", args: () => [rand([3, 4], 122)], f: (x) => np.var(x, { axis: 1 }) },
  { name: "var all, ddof 1", args: () => [rand([3, 4], 123)], f: (x) => np.var(x, { ddof: 1 }) },
  {
    name: "std axis 0 keepdims",
    args: () => [rand([3, 4], 124)],
    f: (x) => np.std(x, { axis: 0, keepdims: true }),
  },
  { name: "std all", args: () => [rand([3, 4], 125)], f: (x) => np.std(x) },
  {
    name: "mean axis [0, 1]",
    args: () => [rand([2, 3, 4], 126)],
    f: (x) => np.mean(np.exp(x), { axis: [0, 1] }),
  },
  {
    name: "relu and clip (away from kinks)",
    args: () => [distinct([3, 4], 127)],
    f: (x) => np.add(np.relu(x), np.clip(x, -0.5, 0.55)),
  },
];

describe("first-order gradients equal central finite differences (cpu, float64)", () => {
  useTestBackend("cpu");

  it.each(gradCases.map((c, i) => [c.name, c, i] as const))("%s", (_name, c, i) => {
    const args = c.args();
    const out = c.f(...args);
    expect(out.dtype, "the test builds float64 outputs").toBe("float64");
    const w = rand(out.shape, 1000 + i);
    const loss = (...xs: NbiArray[]) => np.sum(np.mul(c.f(...xs), w));
    const argnums = args.map((_, k) => k);
    const grads = grad(loss, { argnums })(...args) as NbiArray[];
    expect(grads).toHaveLength(args.length);
    args.forEach((a, k) => {
      expect(grads[k]!.shape, `d/darg${k} shape`).toEqual(a.shape);
      expect(grads[k]!.dtype, `d/darg${k} dtype`).toBe(a.dtype);
      const numeric = numericalGrad(loss, args, k, { eps: c.eps });
      assertClose(values(grads[k]!), numeric, { rtol: 1e-6, atol: 1e-6 }, `${c.name}: d/darg${k}`);
    });
  });

  it("grad with a single argnum returns one array, and zeros for unused inputs", () => {
    const x = rand([3], 1);
    const y = rand([3], 2);
    const g = grad((a: NbiArray, _b: NbiArray) => np.sum(np.exp(a)))(x, y) as NbiArray;
    assertClose(values(g), values(np.exp(x)), { rtol: 1e-12, atol: 0 }, "d/dx sum(exp x)");
    const [, gy] = grad((a: NbiArray, _b: NbiArray) => np.sum(np.exp(a)), { argnums: [0, 1] })(
      x,
      y,
    ) as NbiArray[];
    expect(values(gy!)).toEqual([0, 0, 0]);
  });
});

// ---------------------------------------------------------------------------------------------
// 2. Second order: grad(grad(f)) against finite differences of grad(f)

describe("second-order gradients equal finite differences of grad (cpu, float64)", () => {
  useTestBackend("cpu");

  const scalarFns: [string, (x: NbiArray) => NbiArray, number][] = [
    ["tanh", np.tanh, 0.7],
    ["exp(x)·sin(x)", (x) => np.mul(np.exp(x), np.sin(x)), -0.4],
    ["log(x)/x", (x) => np.div(np.log(x), x), 1.7],
    ["sqrt(1 + x²)", (x) => np.sqrt(np.add(1, np.square(x))), 0.3],
    ["x^2.5 (pow)", (x) => np.pow(x, 2.5), 1.3],
    ["softplus", np.softplus, -0.8],
    ["log1p(x²)·expm1(x)", (x) => np.mul(np.log1p(np.square(x)), np.expm1(x)), 0.6],
  ];

  it.each(scalarFns)("scalar %s: grad(grad f) equals d/dx of grad f", (_name, f, x0) => {
    const x = np.array(x0, F64);
    const df = (v: NbiArray) => grad(f)(v) as NbiArray;
    const d2 = grad(df)(x) as NbiArray;
    expect(d2.shape).toEqual([]);
    const numeric = numericalGrad(df, [x], 0);
    assertClose([d2.item()], numeric, { rtol: 1e-6, atol: 1e-6 }, "second derivative");
    // Third order too, against finite differences of the second derivative.
    const d3 = grad((v: NbiArray) => grad(df)(v) as NbiArray)(x) as NbiArray;
    const numeric3 = numericalGrad((v) => grad(df)(v) as NbiArray, [x], 0);
    assertClose([d3.item()], numeric3, { rtol: 1e-6, atol: 1e-6 }, "third derivative");
  });

  interface SecondCase {
    name: string;
    args: () => NbiArray[];
    /** A scalar loss. */
    f: Fn;
  }

  const weighted = (f: Fn, shape: number[], seed: number): Fn => {
    const w = rand(shape, seed);
    return (...xs) => np.sum(np.mul(f(...xs), w));
  };

  const secondCases: SecondCase[] = [
    {
      name: "tanh elementwise",
      args: () => [rand([2, 3], 1, { lo: -2, hi: 2 })],
      f: weighted(np.tanh, [2, 3], 2),
    },
    {
      name: "matmul inside tanh (batched, broadcast batch)",
      args: () => [rand([2, 1, 3, 4], 3), rand([3, 4, 2], 4)],
      f: weighted((a, b) => np.tanh(np.matmul(a, b)), [2, 3, 3, 2], 5),
    },
    {
      name: "matmul bilinear (cross terms only)",
      args: () => [rand([3, 4], 6), rand([4, 2], 7)],
      f: weighted(np.matmul, [3, 2], 8),
    },
    {
      name: "matmul vector-matrix squared",
      args: () => [rand([4], 9), rand([4, 3], 10)],
      f: weighted((a, b) => np.square(np.matmul(a, b)), [3], 11),
    },
    {
      name: "conv1d squared (through conv1d_input_grad and conv1d_weight_grad)",
      args: () => [rand([2, 3, 9], 12), rand([4, 3, 3], 13)],
      f: weighted((x, w) => np.square(np.conv1d(x, w)), [2, 4, 7], 14),
    },
    {
      name: "conv1d stride 2, padding [1, 2], dilation 2, in tanh",
      args: () => [rand([2, 2, 10], 15), rand([3, 2, 3], 16)],
      f: weighted(
        (x, w) => np.tanh(np.conv1d(x, w, { stride: 2, padding: [1, 2], dilation: 2 })),
        [2, 3, 5],
        17,
      ),
    },
    {
      name: "conv1d twice (conv of conv), stride 2",
      args: () => [rand([1, 2, 11], 18), rand([2, 2, 3], 19)],
      f: weighted(
        (x, w) =>
          np.conv1d(np.tanh(np.conv1d(x, w, { stride: 2, padding: 1 })), w, { padding: "same" }),
        [1, 2, 6],
        20,
      ),
    },
    {
      name: "scan tanh recurrence",
      args: () => [rand([3], 21), rand([4, 3], 22), rand([3, 3], 23)],
      f: weighted(rnn(false), [15], 24),
    },
    {
      name: "scan reverse",
      args: () => [rand([2], 25), rand([3, 2], 26), rand([2, 2], 27)],
      f: weighted(rnn(true), [8], 28),
    },
    {
      name: "div, pow, log, exp composite",
      args: () => [positive([3], 29), rand([3], 30)],
      f: weighted((x, y) => np.add(np.div(np.exp(y), x), np.mul(np.pow(x, y), np.log(x))), [3], 31),
    },
    {
      name: "softmax and logsumexp",
      args: () => [rand([2, 4], 32, { lo: -2, hi: 2 })],
      f: weighted(
        (x) => np.add(np.softmax(x), np.logsumexp(x, { axis: 1, keepdims: true })),
        [2, 4],
        33,
      ),
    },
    {
      name: "maxPool1d then square (second derivative through take/scatter_add)",
      args: () => [distinct([1, 2, 7], 34)],
      f: weighted((x) => np.square(np.maxPool1d(x, 3, 1)), [1, 2, 5], 35),
    },
    {
      name: "take with repeats and takeAlongAxis, squared",
      args: () => [rand([3, 4], 36)],
      f: weighted(
        (x) =>
          np.mul(
            np.take(np.square(x), [1, 1, 3], 1),
            np.takeAlongAxis(
              x,
              ints([
                [0, 0, 2],
                [3, 3, 3],
                [1, 2, 1],
              ]),
              1,
            ),
          ),
        [3, 3],
        37,
      ),
    },
    {
      name: "max reduction and maximum (distinct), squared",
      args: () => [distinct([3, 4], 38)],
      f: weighted(
        (x) => np.square(np.maximum(np.max(x, { axis: 0 }), np.sin(np.min(x, { axis: 0 })))),
        [4],
        39,
      ),
    },
    {
      name: "sqrt, norm, std, var",
      args: () => [rand([3, 4], 40)],
      f: weighted(
        (x) =>
          np.add(
            np.add(np.norm(x, { axis: 1 }), np.std(x, { axis: 1 })),
            np.var(np.sqrt(np.add(np.square(x), 1)), { axis: 1 }),
          ),
        [3],
        41,
      ),
    },
    {
      name: "einsum bij,bjk->bik squared",
      args: () => [rand([2, 2, 3], 42), rand([2, 3, 2], 43)],
      f: weighted((a, b) => np.square(np.einsum("bij,bjk->bik", a, b)), [2, 2, 2], 44),
    },
    {
      name: "where, slice, pad, concatenate, broadcast",
      args: () => [rand([3, 1], 45), rand([4], 46)],
      f: weighted(
        (x, y) => {
          const p = np.mul(x, y);
          const s = np.pad(np.slice(np.square(p), [0, 2], [1, 4]), [
            [0, 1],
            [1, 0],
          ]);
          return np.concatenate([np.where(np.greater(p, 0), np.square(p), np.exp(p)), s], 0);
        },
        [6, 4],
        47,
      ),
    },
  ];

  it.each(secondCases.map((c, i) => [c.name, c, i] as const))("%s", (_name, c, i) => {
    const args = c.args();
    const argnums = args.map((_, k) => k);
    const gradF = grad(c.f, { argnums });
    const probes = args.map((a, k) => rand(a.shape, 500 + 10 * i + k));
    // g = Σ_k <grad_k f, v_k>; its gradient is the Hessian applied to v.
    const g = (...xs: NbiArray[]) => {
      const gs = gradF(...xs) as NbiArray[];
      return gs.map((gk, k) => np.sum(np.mul(gk, probes[k]!))).reduce((a, b) => np.add(a, b));
    };
    const hv = grad(g, { argnums })(...args) as NbiArray[];
    args.forEach((a, k) => {
      expect(hv[k]!.shape).toEqual(a.shape);
      const numeric = numericalGrad(g, args, k);
      assertClose(values(hv[k]!), numeric, { rtol: 1e-6, atol: 1e-6 }, `${c.name}: Hv wrt arg${k}`);
    });
  });
});

// ---------------------------------------------------------------------------------------------
// 3. The adjoint identity <vjp(ȳ), ẋ> = <ȳ, jvp(ẋ)> on random shapes and values

interface Setup {
  desc: string;
  shapes: number[][];
  f: Fn;
  /** Value range per argument (default [-1, 1]). */
  ranges?: ([number, number] | undefined)[];
}

interface AdjointCase {
  name: string;
  arb: fc.Arbitrary<Setup>;
  /** Needs float64 (casts through float32): cpu only. */
  f64Only?: boolean;
  /** Relative tolerance in float64 (default 1e-10). */
  rtol64?: number;
}

const dim = (max = 4) => fc.integer({ min: 1, max });
const shapeArb = (minRank: number, maxRank: number, maxDim = 4) =>
  fc.array(dim(maxDim), { minLength: minRank, maxLength: maxRank });
const flags = (n: number) => fc.array(fc.boolean(), { minLength: n, maxLength: n });

/** Two shapes that broadcast against each other: a common shape with dropped or unit axes. */
const broadcastShapes = fc
  .record({
    base: shapeArb(0, 3),
    dropA: fc.nat(3),
    dropB: fc.nat(3),
    onesA: flags(3),
    onesB: flags(3),
  })
  .map(({ base, dropA, dropB, onesA, onesB }) => {
    const mk = (drop: number, ones: boolean[]) =>
      base.slice(Math.min(drop, base.length)).map((d, i) => (ones[i] ? 1 : d));
    return [mk(dropA, onesA), mk(dropB, onesB)];
  });

/** A random permutation of 0..n-1 from raw numbers. */
const permutation = (n: number, raw: number[]) =>
  Array.from({ length: n }, (_, i) => i).sort((a, b) => raw[a]! - raw[b]! || a - b);

const unaryOps: [string, (x: NbiArray) => NbiArray, [number, number]?][] = [
  ["neg", np.neg],
  ["exp", np.exp],
  ["log", np.log, [0.5, 2]],
  ["log1p", np.log1p, [-0.5, 2]],
  ["expm1", np.expm1],
  ["sin", np.sin],
  ["cos", np.cos],
  ["tanh", np.tanh],
  ["sqrt", np.sqrt, [0.5, 2]],
  ["abs", np.abs],
];

const binaryOps: [string, Fn, ([number, number] | undefined)[]?][] = [
  ["add", np.add],
  ["sub", np.sub],
  ["mul", np.mul],
  ["div", np.div, [undefined, [0.5, 2]]],
  ["pow", np.pow, [[0.5, 2], undefined]],
  ["maximum", np.maximum],
  ["minimum", np.minimum],
];

const adjointCases: AdjointCase[] = [
  ...unaryOps.map(
    ([name, op, range]): AdjointCase => ({
      name: `unary ${name}`,
      arb: shapeArb(0, 3).map((s) => ({
        desc: `${name} ${JSON.stringify(s)}`,
        shapes: [s],
        f: op,
        ranges: [range],
      })),
    }),
  ),
  ...binaryOps.map(
    ([name, op, ranges]): AdjointCase => ({
      name: `binary ${name} with broadcasting`,
      arb: broadcastShapes.map((shapes) => ({
        desc: `${name} ${JSON.stringify(shapes)}`,
        shapes,
        f: op,
        ranges,
      })),
    }),
  ),
  {
    name: "where with broadcasting",
    arb: fc
      .tuple(broadcastShapes, fc.nat(3), flags(3), fc.nat())
      .map(([shapes, drop, ones, seed]) => {
        // The condition broadcasts too: a suffix of the output shape with some unit axes.
        const rank = Math.max(shapes[0]!.length, shapes[1]!.length);
        const out = Array.from({ length: rank }, (_, i) => {
          const at = (s: number[]) => s[s.length - rank + i] ?? 1;
          return Math.max(at(shapes[0]!), at(shapes[1]!));
        });
        const condShape = out.slice(Math.min(drop, rank)).map((d, i) => (ones[i] ? 1 : d));
        return {
          desc: `where cond ${JSON.stringify(condShape)} ${JSON.stringify(shapes)}`,
          shapes,
          f: (x: NbiArray, y: NbiArray) =>
            np.where(np.less(rand(condShape, seed, { dtype: "float32" }), 0), x, y),
        };
      }),
  },
  {
    name: "astype float64 → float32 → float64",
    f64Only: true,
    rtol64: 1e-6,
    arb: shapeArb(0, 3).map((s) => ({
      desc: `astype ${JSON.stringify(s)}`,
      shapes: [s],
      f: (x) => np.mul(np.astype(np.astype(x, "float32"), "float64"), np.sin(x)),
    })),
  },
  {
    name: "reductions sum/max/min over random axes",
    arb: fc
      .record({
        shape: shapeArb(1, 3),
        mask: flags(3),
        keepdims: fc.boolean(),
        op: fc.constantFrom("sum", "max", "min"),
      })
      .map(({ shape, mask, keepdims, op }) => {
        const axis = shape.flatMap((_, i) => (mask[i] ? [i] : []));
        const fn = op === "sum" ? np.sum : op === "max" ? np.max : np.min;
        return {
          desc: `${op} ${JSON.stringify(shape)} axis ${JSON.stringify(axis)} keepdims ${keepdims}`,
          shapes: [shape],
          f: (x: NbiArray) => fn(x, { axis, keepdims }),
        };
      }),
  },
  {
    name: "derived reductions: logsumexp, softmax, logSoftmax, var, std, norm, mean",
    arb: fc
      .record({
        shape: shapeArb(1, 3),
        axisRaw: fc.nat(),
        op: fc.constantFrom("logsumexp", "softmax", "logSoftmax", "var", "std", "norm", "mean"),
      })
      .map(({ shape, axisRaw, op }) => {
        const axis = axisRaw % shape.length;
        const fns: Record<string, Fn> = {
          logsumexp: (x) => np.logsumexp(x, { axis }),
          softmax: (x) => np.softmax(x, axis),
          logSoftmax: (x) => np.logSoftmax(x, axis),
          // var is 0 over a size-1 axis, where std's sqrt has no derivative: add a constant.
          var: (x) => np.var(x, { axis, ddof: 0 }),
          std: (x) => np.sqrt(np.add(np.var(x, { axis }), 0.1)),
          norm: (x) => np.norm(x, { axis }),
          mean: (x) => np.mean(x, { axis, keepdims: true }),
        };
        return {
          desc: `${op} ${JSON.stringify(shape)} axis ${axis}`,
          shapes: [shape],
          f: fns[op]!,
        };
      }),
  },
  {
    name: "elementwise compositions: sigmoid, softplus, logSigmoid",
    arb: fc
      .tuple(shapeArb(0, 3), fc.constantFrom("sigmoid", "softplus", "logSigmoid"))
      .map(([s, op]) => ({
        desc: `${op} ${JSON.stringify(s)}`,
        shapes: [s],
        f: op === "sigmoid" ? np.sigmoid : op === "softplus" ? np.softplus : np.logSigmoid,
        ranges: [[-4, 4]],
      })),
  },
  {
    name: "matmul with broadcast batch dims and vectors",
    arb: fc
      .record({
        batch: shapeArb(0, 2, 3),
        dropA: fc.nat(2),
        dropB: fc.nat(2),
        onesA: flags(2),
        onesB: flags(2),
        m: dim(),
        k: dim(),
        n: dim(),
        vecA: fc.boolean(),
        vecB: fc.boolean(),
      })
      .map(({ batch, dropA, dropB, onesA, onesB, m, k, n, vecA, vecB }) => {
        const bat = (drop: number, ones: boolean[]) =>
          batch.slice(Math.min(drop, batch.length)).map((d, i) => (ones[i] ? 1 : d));
        const a = vecA ? [k] : [...bat(dropA, onesA), m, k];
        const b = vecB ? [k] : [...bat(dropB, onesB), k, n];
        return {
          desc: `matmul ${JSON.stringify(a)} @ ${JSON.stringify(b)}`,
          shapes: [a, b],
          f: np.matmul,
        };
      }),
  },
  {
    name: "einsum",
    arb: fc
      .record({
        spec: fc.constantFrom(
          "bij,bjk->bik",
          "ij,kj->ik",
          "i,j->ij",
          "ij,j->i",
          "ij,ij->",
          "bij,jk->bik",
          "ijk->ki",
          "ij,jk",
        ),
        b: dim(3),
        i: dim(),
        j: dim(),
        k: dim(),
      })
      .map(({ spec, ...sizes }) => {
        const lhs = spec.split("->")[0]!.split(",");
        const shapes = lhs.map((s) => [...s].map((c) => sizes[c as "b" | "i" | "j" | "k"]));
        return {
          desc: `einsum ${spec} ${JSON.stringify(shapes)}`,
          shapes,
          f: (...xs: NbiArray[]) => np.einsum(spec, ...xs),
        };
      }),
  },
  {
    name: "reshape to a permuted shape",
    arb: fc
      .tuple(shapeArb(1, 3), fc.array(fc.nat(), { minLength: 3, maxLength: 3 }))
      .map(([s, raw]) => {
        const target = permutation(s.length, raw).map((p) => s[p]!);
        return {
          desc: `reshape ${JSON.stringify(s)} → ${JSON.stringify(target)}`,
          shapes: [s],
          f: (x: NbiArray) => np.reshape(x, [...target, 1]),
        };
      }),
  },
  {
    name: "transpose by a random permutation",
    arb: fc
      .tuple(shapeArb(1, 4), fc.array(fc.nat(), { minLength: 4, maxLength: 4 }))
      .map(([s, raw]) => {
        const perm = permutation(s.length, raw);
        return {
          desc: `transpose ${JSON.stringify(s)} ${JSON.stringify(perm)}`,
          shapes: [s],
          f: (x: NbiArray) => np.transpose(x, perm),
        };
      }),
  },
  {
    name: "broadcastTo",
    arb: fc
      .record({ base: shapeArb(0, 3), drop: fc.nat(3), ones: flags(3) })
      .map(({ base, drop, ones }) => {
        const s = base.slice(Math.min(drop, base.length)).map((d, i) => (ones[i] ? 1 : d));
        return {
          desc: `broadcastTo ${JSON.stringify(s)} → ${JSON.stringify(base)}`,
          shapes: [s],
          f: (x: NbiArray) => np.broadcastTo(x, base),
        };
      }),
  },
  {
    name: "slice with random bounds",
    arb: fc
      .tuple(shapeArb(1, 3, 5), fc.array(fc.nat(), { minLength: 6, maxLength: 6 }))
      .map(([s, raw]) => {
        const ranges = s.map((d, i): [number, number] => {
          const a = raw[2 * i]! % (d + 1);
          const b = raw[2 * i + 1]! % (d + 1);
          return [Math.min(a, b), Math.max(a, b)];
        });
        return {
          desc: `slice ${JSON.stringify(s)} ${JSON.stringify(ranges)}`,
          shapes: [s],
          f: (x: NbiArray) => np.slice(x, ...ranges),
        };
      }),
  },
  {
    name: "concatenate along a random axis",
    arb: fc
      .record({ s: shapeArb(1, 3), axisRaw: fc.nat(), extra: dim(3) })
      .map(({ s, axisRaw, extra }) => {
        const axis = axisRaw % s.length;
        const t = s.map((d, i) => (i === axis ? extra : d));
        return {
          desc: `concatenate ${JSON.stringify([s, t])} axis ${axis}`,
          shapes: [s, t],
          f: (x: NbiArray, y: NbiArray) => np.concatenate([x, y, x], axis),
        };
      }),
  },
  {
    name: "pad with random widths and value",
    arb: fc
      .tuple(
        shapeArb(1, 3),
        fc.array(fc.nat(2), { minLength: 6, maxLength: 6 }),
        fc.double({ min: -2, max: 2, noNaN: true }),
      )
      .map(([s, w, value]) => {
        const widths = s.map((_, i) => [w[2 * i]!, w[2 * i + 1]!] as [number, number]);
        return {
          desc: `pad ${JSON.stringify(s)} ${JSON.stringify(widths)} value ${value}`,
          shapes: [s],
          f: (x: NbiArray) => np.pad(x, widths, { value }),
        };
      }),
  },
  {
    name: "take with random (repeated, negative) indices",
    arb: fc
      .record({
        s: shapeArb(1, 3),
        axisRaw: fc.nat(),
        idxShape: shapeArb(0, 2, 5),
        raw: fc.array(fc.nat(), { minLength: 25, maxLength: 25 }),
        flat: fc.boolean(),
      })
      .map(({ s, axisRaw, idxShape, raw, flat }) => {
        const axis = axisRaw % s.length;
        const n = flat ? sizeOf(s) : s[axis]!;
        const idx = raw.slice(0, sizeOf(idxShape)).map((r) => (r % (2 * n)) - n);
        return {
          desc: `take ${JSON.stringify(s)} idx ${JSON.stringify(idx)} shape ${JSON.stringify(idxShape)} axis ${flat ? "none" : axis}`,
          shapes: [s],
          f: (x: NbiArray) => {
            const indices = np.reshape(ints(idx), idxShape);
            return flat ? np.take(x, indices) : np.take(x, indices, axis);
          },
        };
      }),
  },
  {
    name: "takeAlongAxis with random indices",
    arb: fc
      .record({
        s: shapeArb(1, 3),
        axisRaw: fc.nat(),
        k: dim(5),
        ones: flags(3),
        raw: fc.array(fc.nat(), { minLength: 80, maxLength: 80 }),
      })
      .map(({ s, axisRaw, k, ones, raw }) => {
        const axis = axisRaw % s.length;
        const idxShape = s.map((d, i) => (i === axis ? k : ones[i] ? 1 : d));
        const n = s[axis]!;
        const idx = raw.slice(0, sizeOf(idxShape)).map((r) => (r % (2 * n)) - n);
        return {
          desc: `takeAlongAxis ${JSON.stringify(s)} idx ${JSON.stringify(idxShape)} axis ${axis}`,
          shapes: [s],
          f: (x: NbiArray) => np.takeAlongAxis(x, np.reshape(ints(idx), idxShape), axis),
        };
      }),
  },
  {
    name: "conv1d with random stride, padding and dilation",
    arb: fc
      .record({
        n: dim(2),
        c: dim(3),
        o: dim(3),
        k: dim(3),
        stride: dim(3),
        lo: fc.nat(2),
        hi: fc.nat(2),
        dilation: dim(2),
        extra: fc.nat(5),
      })
      .map(({ n, c, o, k, stride, lo, hi, dilation, extra }) => {
        const span = dilation * (k - 1) + 1;
        const length = Math.max(1, span - lo - hi + extra);
        const opts = { stride, padding: [lo, hi] as [number, number], dilation };
        return {
          desc: `conv1d x ${JSON.stringify([n, c, length])} w ${JSON.stringify([o, c, k])} ${JSON.stringify(opts)}`,
          shapes: [
            [n, c, length],
            [o, c, k],
          ],
          f: (x: NbiArray, w: NbiArray) => np.conv1d(x, w, opts),
        };
      }),
  },
  {
    name: "maxPool1d with random kernel and stride",
    arb: fc
      .record({ n: dim(2), c: dim(3), kernel: dim(3), stride: dim(3), extra: fc.nat(5) })
      .map(({ n, c, kernel, stride, extra }) => ({
        desc: `maxPool1d ${JSON.stringify([n, c, kernel + extra])} kernel ${kernel} stride ${stride}`,
        shapes: [[n, c, kernel + extra]],
        f: (x: NbiArray) => np.maxPool1d(x, kernel, stride),
      })),
  },
  {
    name: "scan recurrence",
    arb: fc.record({ d: dim(3), t: dim(4), reverse: fc.boolean() }).map(({ d, t, reverse }) => ({
      desc: `scan d ${d} length ${t} reverse ${reverse}`,
      shapes: [[d], [t, d], [d, d]],
      f: rnn(reverse),
    })),
  },
];

async function hostValues(x: NbiArray): Promise<number[]> {
  return Array.from((await x.data()) as Float32Array | Float64Array);
}

async function checkAdjoint(setup: Setup, seed: number, dtype: DType, rtol: number) {
  const xs = setup.shapes.map((s, k) => {
    const [lo, hi] = setup.ranges?.[k] ?? [-1, 1];
    return rand(s, seed + 7 * k, { dtype, lo, hi });
  });
  const dxs = setup.shapes.map((s, k) => rand(s, seed + 7 * k + 3, { dtype }));
  const [y, dy] = jvp(setup.f, xs, dxs);
  const [y2, pullback] = vjp(setup.f, ...xs);
  expect(dy.shape, `${setup.desc}: tangent shape`).toEqual(y.shape);
  expect(dy.dtype, `${setup.desc}: tangent dtype`).toBe(dtype);
  expect(y2.shape).toEqual(y.shape);
  const ybar = rand(y.shape, seed + 1001, { dtype });
  const cts = pullback(ybar);
  const [rhs, rhsScale] = dotWithScale(await hostValues(ybar), await hostValues(dy));
  let lhs = 0;
  let lhsScale = 0;
  for (let k = 0; k < xs.length; k++) {
    expect(cts[k]!.shape, `${setup.desc}: cotangent ${k} shape`).toEqual(xs[k]!.shape);
    expect(cts[k]!.dtype, `${setup.desc}: cotangent ${k} dtype`).toBe(dtype);
    const [d, s] = dotWithScale(await hostValues(cts[k]!), await hostValues(dxs[k]!));
    lhs += d;
    lhsScale += s;
  }
  const tol = rtol * (lhsScale + rhsScale) + 1e-30;
  if (!(Math.abs(lhs - rhs) <= tol)) {
    throw new Error(
      `${setup.desc} (${dtype}, seed ${seed}): <vjp(ȳ), ẋ> = ${lhs} but <ȳ, jvp(ẋ)> = ${rhs} (tolerance ${tol})`,
    );
  }
}

const seedArb = fc.integer({ min: 0, max: 1_000_000 });

describe("adjoint identity <vjp(ȳ), ẋ> = <ȳ, jvp(ẋ)> on random shapes (cpu, float64)", () => {
  useTestBackend("cpu");
  it.each(adjointCases.map((c) => [c.name, c] as const))("%s", async (_name, c) => {
    await fc.assert(
      fc.asyncProperty(c.arb, seedArb, (setup, seed) =>
        checkAdjoint(setup, seed, "float64", c.rtol64 ?? 1e-10),
      ),
      { numRuns: 30, seed: 20240601 },
    );
  });
});

describe.each(testBackends())("adjoint identity in float32 (%s)", (backend) => {
  useTestBackend(backend);
  it.each(adjointCases.filter((c) => !c.f64Only).map((c) => [c.name, c] as const))(
    "%s",
    async (_name, c) => {
      await fc.assert(
        fc.asyncProperty(c.arb, seedArb, (setup, seed) =>
          checkAdjoint(setup, seed, "float32", 1e-4),
        ),
        { numRuns: 15, seed: 20240602 },
      );
    },
  );
});

// ---------------------------------------------------------------------------------------------
// 4. jvp against finite-difference directional derivatives

describe("jvp equals finite-difference directional derivatives (cpu, float64)", () => {
  useTestBackend("cpu");

  const jvpCases: {
    name: string;
    shapes: number[][];
    f: Fn;
    make?: (s: number[], seed: number) => NbiArray;
  }[] = [
    {
      name: "tanh(conv1d) with stride 2, padding 1, dilation 2",
      shapes: [
        [2, 3, 9],
        [2, 3, 3],
      ],
      f: (x, w) => np.tanh(np.conv1d(x, w, { stride: 2, padding: 1, dilation: 2 })),
    },
    {
      name: "softmax(a @ b) over a broadcast batch",
      shapes: [
        [2, 1, 3, 4],
        [3, 4, 2],
      ],
      f: (a, b) => np.softmax(np.matmul(a, b)),
    },
    { name: "scan recurrence", shapes: [[3], [4, 3], [3, 3]], f: rnn(false) },
    {
      name: "pow, div, logsumexp, norm",
      shapes: [[3, 4], [4]],
      f: (x, y) => {
        const p = np.pow(np.add(np.square(x), 0.5), y);
        return np.concatenate([
          np.div(np.logsumexp(p, { axis: 1 }), np.norm(x, { axis: 1 })),
          np.ravel(p),
        ]);
      },
    },
    {
      name: "maxPool1d of sin (distinct inputs), then take with repeats",
      shapes: [[2, 2, 8]],
      f: (x) => np.take(np.maxPool1d(np.sin(x), 3, 2), [0, 2, 2, 1], 2),
      make: (s, seed) => distinct(s, seed),
    },
    {
      name: "minimum, maximum and clip (distinct inputs)",
      shapes: [[3, 1], [4]],
      f: (x, y) =>
        np.concatenate([
          np.ravel(np.minimum(x, y)),
          np.ravel(np.maximum(x, y)),
          np.clip(y, -0.5, 0.45),
        ]),
      make: (s, seed) => distinct(s, seed),
    },
    {
      name: "einsum and takeAlongAxis",
      shapes: [
        [3, 4],
        [4, 2],
      ],
      f: (a, b) =>
        np.takeAlongAxis(
          np.einsum("ij,jk->ik", np.exp(a), b),
          ints([
            [1, 1],
            [0, 1],
            [0, 0],
          ]),
          1,
        ),
    },
  ];

  it.each(jvpCases.map((c) => [c.name, c] as const))("%s", async (_name, c) => {
    await fc.assert(
      fc.property(seedArb, (seed) => {
        const xs = c.shapes.map((s, k) =>
          (c.make ?? ((sh: number[], sd: number) => rand(sh, sd)))(s, seed + 11 * k),
        );
        const ts = c.shapes.map((s, k) => rand(s, seed + 11 * k + 5));
        const [, dy] = jvp(c.f, xs, ts);
        const numeric = numericalJvp(c.f, xs, ts);
        assertClose(values(dy), numeric, { rtol: 1e-6, atol: 1e-6 }, `${c.name} (seed ${seed})`);
      }),
      { numRuns: 8, seed: 20240603 },
    );
  });

  it("forward-over-reverse: jvp of grad(conv1d loss) equals FD of grad (adjoint primitives' jvp rules)", () => {
    const c = rand([2, 4, 4], 7);
    const loss = (x: NbiArray, w: NbiArray) =>
      np.sum(np.mul(np.square(np.conv1d(x, w, { stride: 2, padding: [1, 2], dilation: 2 })), c));
    const flatGrad = (x: NbiArray, w: NbiArray) => {
      const [gx, gw] = grad(loss, { argnums: [0, 1] })(x, w) as NbiArray[];
      return np.concatenate([np.ravel(gx!), np.ravel(gw!)]);
    };
    const xs: [NbiArray, NbiArray] = [rand([2, 3, 9], 1), rand([4, 3, 3], 2)];
    const ts: [NbiArray, NbiArray] = [rand([2, 3, 9], 3), rand([4, 3, 3], 4)];
    const [, dy] = jvp(flatGrad, xs, ts);
    assertClose(values(dy), numericalJvp(flatGrad, xs, ts), { rtol: 1e-6, atol: 1e-6 }, "Hv");
  });

  it("forward-over-reverse through scan and matmul equals FD of grad", () => {
    const f = rnn(false);
    const wOut = rand([15], 8);
    const loss = (h0: NbiArray, xs: NbiArray, w: NbiArray) => np.sum(np.mul(f(h0, xs, w), wOut));
    const flatGrad = (h0: NbiArray, xs: NbiArray, w: NbiArray) =>
      np.concatenate(
        (grad(loss, { argnums: [0, 1, 2] })(h0, xs, w) as NbiArray[]).map((g) => np.ravel(g)),
      );
    const args: [NbiArray, NbiArray, NbiArray] = [rand([3], 1), rand([4, 3], 2), rand([3, 3], 3)];
    const ts: [NbiArray, NbiArray, NbiArray] = [rand([3], 4), rand([4, 3], 5), rand([3, 3], 6)];
    const [, dy] = jvp(flatGrad, args, ts);
    assertClose(values(dy), numericalJvp(flatGrad, args, ts), { rtol: 1e-6, atol: 1e-6 }, "Hv");
  });
});
