/**
 * Reductions with derivatives of their own: max and min over a set of axes (their derivative
 * picks where the extremum sits, with elementwise primitives), and argmax along one axis. The sum,
 * linear and the transpose of broadcasting, is in structural.ts with the factory they share.
 */
import { NbiError } from "../../errors.js";
import type { Array } from "../../trace/array.js";
import { fromHost } from "../../trace/concrete-array.js";
import { bind1 } from "../../trace/core.js";
import type { TypedArray } from "../../trace/dtype.js";
import type { Primitive } from "../../trace/primitive.js";
import { showShape } from "../../trace/shape.js";
import { argmaxKernel } from "../cpu/reduction.js";
import { gpuArgmax } from "../webgpu/compute.js";
import { cast, div, equal, mul } from "./elementwise.js";
import { zeroDerivativeRules } from "./rules.js";
import {
  type ExtremumDerivative,
  expandBack,
  moveAxis,
  reducedShape,
  reducePrimitive,
  reduceSumP,
} from "./structural.js";

/** Where the extremum sits, shared evenly between ties (as JAX's max derivative). */
function locationWeights(x: Array, y: Array, axes: readonly number[]): Array {
  const mask = cast(equal(x, expandBack(y, x, axes)), x.dtype);
  const counts = bind1(reduceSumP, [mask], { axes: [...axes] });
  return div(mask, expandBack(counts, x, axes));
}

const extremum: ExtremumDerivative = { weights: locationWeights, mul };

export const reduceMaxP = reducePrimitive("reduce_max", "max", extremum);
export const reduceMinP = reducePrimitive("reduce_min", "min", extremum);

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
