/**
 * 1-D convolution (NCL layout, weights O×C×K) as a closed family of three bilinear primitives:
 * conv1d and its two adjoints. Each one's derivatives are expressed with the other two, so
 * gradients of any order stay inside the family. Max-pooling differentiates through `take`.
 */
import { NbiError } from "../../errors.js";
import type { Array, ShapedArray } from "../../trace/array.js";
import { defaultBackend } from "../../trace/backend.js";
import { fromHost } from "../../trace/concrete-array.js";
import { bind1 } from "../../trace/core.js";
import { isFloat } from "../../trace/dtype.js";
import type { Primitive } from "../../trace/primitive.js";
import { showShape } from "../../trace/shape.js";
import { conv1dGradInput, conv1dGradWeight, conv1d as conv1dKernel } from "../cpu/conv1d.js";
import { maxPool1d as maxPool1dKernel } from "../cpu/pool.js";
import {
  gpuConv1d,
  gpuConv1dInputGrad,
  gpuConv1dWeightGrad,
  gpuMaxPool1d,
  gpuMaxPool1dArgmax,
} from "../webgpu/compute.js";
import { add } from "./elementwise.js";
import { scatterAddP, takeP } from "./indexing.js";
import { zeroDerivativeRules } from "./rules.js";
import { moveAxis, reshape, vmapByLoop } from "./structural.js";

export interface ConvParams {
  stride: number;
  padding: [number, number];
  dilation: number;
}

type Float = Float32Array | Float64Array;
const buf = (x: { buffer: unknown }) => x.buffer as Float;

export function convOutputLength(length: number, kernel: number, p: ConvParams): number {
  const span = p.dilation * (kernel - 1) + 1;
  return Math.max(0, Math.floor((length + p.padding[0] + p.padding[1] - span) / p.stride) + 1);
}

function checkConvOperands(
  fn: string,
  x: ShapedArray,
  xName: string,
  w: ShapedArray,
  wName: string,
) {
  if (x.shape.length !== 3 || w.shape.length !== 3) {
    throw new NbiError(
      `${fn}: ${xName} and ${wName} expected rank 3, got ${showShape(x.shape)} and ${showShape(w.shape)}`,
    );
  }
  if (x.dtype !== w.dtype || !isFloat(x.dtype)) {
    throw new NbiError(
      `${fn}: operands expected the same float dtype, got ${x.dtype} and ${w.dtype}`,
    );
  }
}

/** Folds a batch axis into the leading (N) axis of a batched NCL operand. */
function foldBatch(x: Array, d: number): Array {
  const moved = moveAxis(x, d, 0);
  return reshape(moved, [moved.shape[0]! * moved.shape[1]!, ...moved.shape.slice(2)]);
}
function unfoldBatch(y: Array, n: number): Array {
  return reshape(y, [n, y.shape[0]! / n, ...y.shape.slice(1)]);
}

export const conv1dP: Primitive<ConvParams> = {
  name: "conv1d",
  abstractEval([x, w], p) {
    checkConvOperands("conv1d", x!, "x", w!, "w");
    if (x!.shape[1] !== w!.shape[1]) {
      throw new NbiError(
        `conv1d: w expected ${x!.shape[1]} input channels to match x ${showShape(x!.shape)}, got ${showShape(w!.shape)}`,
      );
    }
    const lout = convOutputLength(x!.shape[2]!, w!.shape[2]!, p);
    return [{ shape: [x!.shape[0]!, w!.shape[0]!, lout], dtype: x!.dtype }];
  },
  impl: {
    cpu: ([x, w], p) => {
      const { data, shape } = conv1dKernel(buf(x!), x!.shape, buf(w!), w!.shape, p);
      return [fromHost(data, shape, x!.dtype, x!.backend)];
    },
    webgpu: gpuConv1d,
  },
  jvp([x, w], [dx, dw], p) {
    return [[conv1d(x!, w!, p)], [add(conv1d(dx!, w!, p), conv1d(x!, dw!, p))]];
  },
  vjp([ct], [x, w], _y, p) {
    return [
      conv1dInputGrad(ct!, w!, { ...p, inputLength: x!.shape[2]! }),
      conv1dWeightGrad(x!, ct!, { ...p, kernelSize: w!.shape[2]! }),
    ];
  },
  vmap(n, [x, w], [dx, dw], p) {
    if (dw === null) return [[unfoldBatch(conv1d(foldBatch(x!, dx!), w!, p), n)], [0]];
    return vmapByLoop(() => conv1dP)(n, [x!, w!], [dx!, dw], p);
  },
};

export interface ConvInputGradParams extends ConvParams {
  inputLength: number;
}

export const conv1dInputGradP: Primitive<ConvInputGradParams> = {
  name: "conv1d_input_grad",
  abstractEval([g, w], p) {
    checkConvOperands("conv1dInputGrad", g!, "g", w!, "w");
    return [{ shape: [g!.shape[0]!, w!.shape[1]!, p.inputLength], dtype: g!.dtype }];
  },
  impl: {
    cpu: ([g, w], p) => {
      const { data, shape } = conv1dGradInput(buf(g!), g!.shape, buf(w!), w!.shape, p);
      return [fromHost(data, shape, g!.dtype, g!.backend)];
    },
    webgpu: gpuConv1dInputGrad,
  },
  jvp([g, w], [dg, dw], p) {
    return [
      [conv1dInputGrad(g!, w!, p)],
      [add(conv1dInputGrad(dg!, w!, p), conv1dInputGrad(g!, dw!, p))],
    ];
  },
  vjp([ct], [g, w], _y, p) {
    const conv: ConvParams = { stride: p.stride, padding: p.padding, dilation: p.dilation };
    return [
      conv1d(ct!, w!, conv),
      conv1dWeightGrad(ct!, g!, { ...conv, kernelSize: w!.shape[2]! }),
    ];
  },
  vmap(n, [g, w], [dg, dw], p) {
    if (dw === null) return [[unfoldBatch(conv1dInputGrad(foldBatch(g!, dg!), w!, p), n)], [0]];
    return vmapByLoop(() => conv1dInputGradP)(n, [g!, w!], [dg!, dw], p);
  },
};

export interface ConvWeightGradParams extends ConvParams {
  kernelSize: number;
}

export const conv1dWeightGradP: Primitive<ConvWeightGradParams> = {
  name: "conv1d_weight_grad",
  abstractEval([x, g], p) {
    checkConvOperands("conv1dWeightGrad", x!, "x", g!, "g");
    return [{ shape: [g!.shape[1]!, x!.shape[1]!, p.kernelSize], dtype: x!.dtype }];
  },
  impl: {
    cpu: ([x, g], p) => {
      const { data, shape } = conv1dGradWeight(buf(x!), x!.shape, buf(g!), g!.shape, p);
      return [fromHost(data, shape, x!.dtype, x!.backend)];
    },
    webgpu: gpuConv1dWeightGrad,
  },
  jvp([x, g], [dx, dg], p) {
    return [
      [conv1dWeightGrad(x!, g!, p)],
      [add(conv1dWeightGrad(dx!, g!, p), conv1dWeightGrad(x!, dg!, p))],
    ];
  },
  vjp([ct], [x, g], _y, p) {
    const conv: ConvParams = { stride: p.stride, padding: p.padding, dilation: p.dilation };
    return [
      conv1dInputGrad(g!, ct!, { ...conv, inputLength: x!.shape[2]! }),
      conv1d(x!, ct!, conv),
    ];
  },
  vmap: vmapByLoop(() => conv1dWeightGradP),
};

export function conv1d(x: Array, w: Array, p: ConvParams): Array {
  return bind1(conv1dP, [x, w], p);
}
export function conv1dInputGrad(g: Array, w: Array, p: ConvInputGradParams): Array {
  return bind1(conv1dInputGradP, [g, w], p);
}
export function conv1dWeightGrad(x: Array, g: Array, p: ConvWeightGradParams): Array {
  return bind1(conv1dWeightGradP, [x, g], p);
}

// ---------------------------------------------------------------------------------------------
// Max pooling

export interface PoolParams {
  kernel: number;
  stride: number;
}

function poolShape(fn: string, x: ShapedArray, p: PoolParams): number[] {
  if (x.shape.length !== 3) {
    throw new NbiError(
      `${fn}: x expected rank 3 (batch × channels × length), got ${showShape(x.shape)}`,
    );
  }
  if (
    !(Number.isInteger(p.kernel) && p.kernel >= 1 && Number.isInteger(p.stride) && p.stride >= 1)
  ) {
    throw new NbiError(
      `${fn}: kernel and stride expected positive integers, got ${p.kernel} and ${p.stride}`,
    );
  }
  const lout = Math.max(0, Math.floor((x.shape[2]! - p.kernel) / p.stride) + 1);
  return [x.shape[0]!, x.shape[1]!, lout];
}

/** Positions (within the length axis) of each window's maximum. */
export const maxPool1dArgmaxP: Primitive<PoolParams> = {
  name: "max_pool1d_argmax",
  nonDifferentiable: true,
  abstractEval([x], p) {
    return [{ shape: poolShape("maxPool1d", x!, p), dtype: "int32" }];
  },
  impl: {
    cpu: ([x], p) => {
      const { argmax, shape } = maxPool1dKernel(buf(x!), x!.shape, p);
      return [fromHost(argmax, shape, "int32", x!.backend)];
    },
    webgpu: gpuMaxPool1dArgmax,
  },
  ...zeroDerivativeRules(() => maxPool1dArgmaxP),
  vmap(n, [x], [d], p) {
    return [[unfoldBatch(bind1(maxPool1dArgmaxP, [foldBatch(x!, d!)], p), n)], [0]];
  },
};

/** Flat indices into x (as [N·C·L]) of each window's maximum. */
function flatArgmax(x: Array, p: PoolParams): Array {
  const arg = bind1(maxPool1dArgmaxP, [x], p);
  const [n, c, l] = x.shape as [number, number, number];
  const rows = Int32Array.from({ length: n * c }, (_, i) => i * l);
  return add(arg, fromHost(rows, [n, c, 1], "int32", defaultBackend()));
}

export const maxPool1dP: Primitive<PoolParams> = {
  name: "max_pool1d",
  abstractEval([x], p) {
    if (!isFloat(x!.dtype))
      throw new NbiError(`maxPool1d: x expected a float array, got ${x!.dtype}`);
    return [{ shape: poolShape("maxPool1d", x!, p), dtype: x!.dtype }];
  },
  impl: {
    cpu: ([x], p) => {
      const { data, shape } = maxPool1dKernel(buf(x!), x!.shape, p);
      return [fromHost(data, shape, x!.dtype, x!.backend)];
    },
    webgpu: gpuMaxPool1d,
  },
  jvp([x], [dx], p) {
    const y = bind1(maxPool1dP, [x!], p);
    const idx = flatArgmax(x!, p);
    return [[y], [bind1(takeP, [reshape(dx!, [dx!.size]), idx], { axis: 0 })]];
  },
  vjp([ct], [x], _y, p) {
    const idx = flatArgmax(x!, p);
    const flat = bind1(scatterAddP, [ct!, idx], { axis: 0, size: x!.size });
    return [reshape(flat, x!.shape)];
  },
  vmap(n, [x], [d], p) {
    return [[unfoldBatch(bind1(maxPool1dP, [foldBatch(x!, d!)], p), n)], [0]];
  },
};
