/** Reductions: sum, max, min over a set of axes, and argmax along one axis. */
import { NbiError } from "../../errors.js";
import { bind1 } from "../../transforms/core.js";
import type { Array, ShapedArray } from "../array.js";
import { fromHost } from "../concrete-array.js";
import { argmaxKernel, type ReduceKind, reduceKernel } from "../cpu/reduction.js";
import type { TypedArray } from "../dtype.js";
import type { Primitive } from "../primitive.js";
import { showShape } from "../shape.js";
import { gpuArgmax, gpuReduce } from "../webgpu/compute.js";
import { cast, div, equal, mul } from "./elementwise.js";
import { broadcastTo, moveAxis, reshape, zeroDerivativeRules } from "./rules.js";

export interface ReduceParams {
  /** Sorted, distinct, non-negative axes. */
  axes: number[];
}

function reducedShape(x: ShapedArray, axes: readonly number[], fn: string): number[] {
  for (const a of axes) {
    if (!Number.isInteger(a) || a < 0 || a >= x.shape.length) {
      throw new NbiError(
        `${fn}: axis expected in [0, ${x.shape.length - 1}] for shape ${showShape(x.shape)}, got ${a}`,
      );
    }
  }
  return x.shape.filter((_, i) => !axes.includes(i));
}

/** The reduced value broadcast back to the input shape (kept axes as size 1). */
function expandBack(y: Array, x: ShapedArray, axes: readonly number[]): Array {
  const keep = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  return broadcastTo(reshape(y, keep), x.shape);
}

function reducePrimitive(
  name: "reduce_sum" | "reduce_max" | "reduce_min",
  kind: ReduceKind,
): Primitive<ReduceParams> {
  const self: Primitive<ReduceParams> = {
    name,
    abstractEval([x], { axes }) {
      if (x!.dtype === "bool" && kind === "sum") {
        throw new NbiError(`${name}: x expected a numeric array, got dtype bool (cast it first)`);
      }
      return [{ shape: reducedShape(x!, axes, name), dtype: x!.dtype }];
    },
    impl: {
      cpu: ([x], { axes }) => [
        fromHost(
          reduceKernel(kind, x!.buffer as TypedArray, x!.dtype, x!.shape, axes),
          reducedShape(x!, axes, name),
          x!.dtype,
          x!.backend,
        ),
      ],
      webgpu: gpuReduce(kind),
    },
    jvp([x], [dx], params) {
      const y = bind1(self, [x!], params);
      if (kind === "sum") return [[y], [bind1(self, [dx!], params)]];
      const [weights] = locationWeights(x!, y, params.axes);
      return [[y], [bind1(reduceSumP, [mul(dx!, weights)], params)]];
    },
    vjp([ct], [x], [y], { axes }) {
      const back = expandBack(ct!, x!, axes);
      if (kind === "sum") return [back];
      const [weights] = locationWeights(x!, y!, axes);
      return [mul(back, weights)];
    },
    vmap(_n, [x], [d], { axes }) {
      return [[bind1(self, [moveAxis(x!, d!, 0)], { axes: axes.map((a) => a + 1) })], [0]];
    },
  };
  return self;
}

/** Where the extremum sits, shared evenly between ties (as JAX's max derivative). */
function locationWeights(x: Array, y: Array, axes: readonly number[]): [Array] {
  const mask = cast(equal(x, expandBack(y, x, axes)), x.dtype);
  const counts = bind1(reduceSumP, [mask], { axes: [...axes] });
  return [div(mask, expandBack(counts, x, axes))];
}

export const reduceSumP = reducePrimitive("reduce_sum", "sum");
export const reduceMaxP = reducePrimitive("reduce_max", "max");
export const reduceMinP = reducePrimitive("reduce_min", "min");

export interface ArgmaxParams {
  axis: number;
}

export const argmaxP: Primitive<ArgmaxParams> = {
  name: "argmax",
  nonDifferentiable: true,
  abstractEval([x], { axis }) {
    const shape = reducedShape(x!, [axis], "argmax");
    if (x!.shape[axis] === 0) {
      throw new NbiError(
        `argmax: x expected a non-empty axis ${axis}, got shape ${showShape(x!.shape)}`,
      );
    }
    return [{ shape, dtype: "int32" }];
  },
  impl: {
    cpu: ([x], { axis }) => [
      fromHost(
        argmaxKernel(x!.buffer as TypedArray, x!.dtype, x!.shape, axis),
        reducedShape(x!, [axis], "argmax"),
        "int32",
        x!.backend,
      ),
    ],
    webgpu: gpuArgmax,
  },
  ...zeroDerivativeRules(() => argmaxP),
  vmap(_n, [x], [d], { axis }) {
    return [[bind1(argmaxP, [moveAxis(x!, d!, 0)], { axis: axis + 1 })], [0]];
  },
};
