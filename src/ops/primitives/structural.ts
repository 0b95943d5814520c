/**
 * The structural core of the primitives: reshape, transpose, broadcast_to, slice, pad,
 * concatenate, and reduce_sum (the transpose of broadcast_to: each one's derivative is the other,
 * so they live together), with the layout helpers built on them that every family's rules use
 * (reshape, moveAxis, unbroadcast, vmapByLoop, ...). Nothing here imports another family; the
 * max and min reductions, take and scatter_add, and the elementwise family sit above this file.
 */
import { NbiError } from "../../errors.js";
import type { Array, ShapedArray } from "../../trace/array.js";
import { type ConcreteArray, fromHost } from "../../trace/concrete-array.js";
import { bind, bind1 } from "../../trace/core.js";
import type { TypedArray } from "../../trace/dtype.js";
import type { BatchDim, Primitive } from "../../trace/primitive.js";
import { broadcastShapes, type Shape, showShape, sizeOf } from "../../trace/shape.js";
import { type ReduceKind, reduceKernel } from "../cpu/reduction.js";
import {
  broadcastKernel,
  concatenateKernel,
  padKernel,
  sliceKernel,
  transposeKernel,
} from "../cpu/structural.js";
import { gpuReduce } from "../webgpu/compute.js";
import {
  gpuBroadcastTo,
  gpuConcatenate,
  gpuPad,
  gpuReshape,
  gpuSlice,
  gpuSplit,
  gpuTranspose,
  gpuUnstack,
} from "../webgpu/structural.js";

const buf = (x: { buffer: unknown }) => x.buffer as TypedArray;

// ---------------------------------------------------------------------------------------------

export interface ReshapeParams {
  shape: number[];
}

export const reshapeP: Primitive<ReshapeParams> = {
  name: "reshape",
  abstractEval([x], { shape }) {
    if (sizeOf(shape) !== sizeOf(x!.shape)) {
      throw new NbiError(
        `reshape: shape expected ${sizeOf(x!.shape)} elements to match the input of shape ` +
          `${showShape(x!.shape)}, got ${showShape(shape)}`,
      );
    }
    return [{ shape, dtype: x!.dtype }];
  },
  // Arrays are immutable, so a reshape shares the buffer.
  impl: {
    cpu: ([x], { shape }) => [fromHost(buf(x!), shape, x!.dtype, x!.backend)],
    webgpu: gpuReshape,
  },
  jvp([x], [dx], { shape }) {
    return [[reshape(x!, shape)], [reshape(dx!, shape)]];
  },
  vjp([ct], [x]) {
    return [reshape(ct!, x!.shape)];
  },
  vmap(_n, [x], [d], { shape }) {
    const moved = moveAxis(x!, d!, 0);
    return [[reshape(moved, [moved.shape[0]!, ...shape])], [0]];
  },
};

// ---------------------------------------------------------------------------------------------

export interface TransposeParams {
  perm: number[];
}

function inversePerm(perm: readonly number[]): number[] {
  const inv = new globalThis.Array<number>(perm.length);
  perm.forEach((p, i) => {
    inv[p] = i;
  });
  return inv;
}

export const transposeP: Primitive<TransposeParams> = {
  name: "transpose",
  abstractEval([x], { perm }) {
    const sorted = [...perm].sort((a, b) => a - b);
    if (perm.length !== x!.shape.length || sorted.some((p, i) => p !== i)) {
      throw new NbiError(
        `transpose: axes expected a permutation of [0..${x!.shape.length - 1}], got [${perm.join(", ")}]`,
      );
    }
    return [{ shape: perm.map((p) => x!.shape[p]!), dtype: x!.dtype }];
  },
  impl: {
    cpu: ([x], { perm }) => [
      fromHost(
        transposeKernel(buf(x!), x!.dtype, x!.shape, perm),
        perm.map((p) => x!.shape[p]!),
        x!.dtype,
        x!.backend,
      ),
    ],
    webgpu: gpuTranspose,
  },
  jvp([x], [dx], { perm }) {
    return [[transpose(x!, perm)], [transpose(dx!, perm)]];
  },
  vjp([ct], _x, _y, { perm }) {
    return [transpose(ct!, inversePerm(perm))];
  },
  vmap(_n, [x], [d], { perm }) {
    return [[transpose(moveAxis(x!, d!, 0), [0, ...perm.map((p) => p + 1)])], [0]];
  },
};

// ---------------------------------------------------------------------------------------------

export interface BroadcastParams {
  shape: number[];
}

export const broadcastToP: Primitive<BroadcastParams> = {
  name: "broadcast_to",
  abstractEval([x], { shape }) {
    const out = broadcastShapes("broadcastTo", x!.shape, shape);
    if (out.length !== shape.length || out.some((d, i) => d !== shape[i])) {
      throw new NbiError(
        `broadcastTo: shape expected a shape that ${showShape(x!.shape)} broadcasts to, got ${showShape(shape)}`,
      );
    }
    return [{ shape, dtype: x!.dtype }];
  },
  impl: {
    cpu: ([x], { shape }) => [
      fromHost(broadcastKernel(buf(x!), x!.dtype, x!.shape, shape), shape, x!.dtype, x!.backend),
    ],
    webgpu: gpuBroadcastTo,
  },
  jvp([x], [dx], { shape }) {
    return [[broadcastTo(x!, shape)], [broadcastTo(dx!, shape)]];
  },
  vjp([ct], [x]) {
    return [unbroadcast(ct!, x!.shape)];
  },
  vmap(_n, [x], [d], { shape }) {
    const moved = moveAxis(x!, d!, 0);
    const logical = moved.shape.slice(1);
    const padded = [
      moved.shape[0]!,
      ...new globalThis.Array<number>(shape.length - logical.length).fill(1),
    ];
    return [
      [broadcastTo(reshape(moved, [...padded, ...logical]), [moved.shape[0]!, ...shape])],
      [0],
    ];
  },
};

// ---------------------------------------------------------------------------------------------

export interface SliceParams {
  starts: number[];
  limits: number[];
}

export const sliceP: Primitive<SliceParams> = {
  name: "slice",
  abstractEval([x], { starts, limits }) {
    const shape = x!.shape;
    const ok =
      starts.length === shape.length &&
      limits.length === shape.length &&
      starts.every(
        (s, i) => Number.isInteger(s) && s >= 0 && s <= limits[i]! && limits[i]! <= shape[i]!,
      );
    if (!ok) {
      throw new NbiError(
        `slice: bounds expected 0 <= start <= limit <= size on each axis of ${showShape(shape)}, ` +
          `got starts [${starts.join(", ")}] and limits [${limits.join(", ")}]`,
      );
    }
    return [{ shape: limits.map((l, i) => l - starts[i]!), dtype: x!.dtype }];
  },
  impl: {
    cpu: ([x], { starts, limits }) => [
      fromHost(
        sliceKernel(buf(x!), x!.dtype, x!.shape, starts, limits),
        limits.map((l, i) => l - starts[i]!),
        x!.dtype,
        x!.backend,
      ),
    ],
    webgpu: gpuSlice,
  },
  jvp([x], [dx], params) {
    return [[bind1(sliceP, [x!], params)], [bind1(sliceP, [dx!], params)]];
  },
  vjp([ct], [x], _y, { starts, limits }) {
    return [
      bind1(padP, [ct!], {
        lo: starts,
        hi: limits.map((l, i) => x!.shape[i]! - l),
        value: 0,
      }),
    ];
  },
  vmap(_n, [x], [d], { starts, limits }) {
    const moved = moveAxis(x!, d!, 0);
    return [
      [bind1(sliceP, [moved], { starts: [0, ...starts], limits: [moved.shape[0]!, ...limits] })],
      [0],
    ];
  },
};

// ---------------------------------------------------------------------------------------------

export interface SplitParams {
  axis: number;
  /** Each piece's length along `axis` (they sum to its size). */
  sizes: number[];
}

/**
 * x cut along one axis into consecutive pieces, one output each. As one primitive its transpose
 * is one concatenation (slices would transpose to a zero pad each, summed), and WebGPU writes
 * the pieces in one kernel.
 */
export const splitP: Primitive<SplitParams> = {
  name: "split",
  abstractEval([x], { axis, sizes }) {
    const shape = x!.shape;
    const ok =
      Number.isInteger(axis) &&
      axis >= 0 &&
      axis < shape.length &&
      sizes.length > 0 &&
      sizes.every((n) => Number.isInteger(n) && n >= 0) &&
      sizes.reduce((a, b) => a + b, 0) === shape[axis];
    if (!ok) {
      throw new NbiError(
        `split: sizes expected non-negative integers summing to axis ${axis}'s size of ` +
          `${showShape(shape)}, got [${sizes.join(", ")}]`,
      );
    }
    return sizes.map((n) => ({
      shape: shape.map((d, i) => (i === axis ? n : d)),
      dtype: x!.dtype,
    }));
  },
  impl: {
    cpu: ([x], { axis, sizes }) => {
      let at = 0;
      return sizes.map((n) => {
        const starts = x!.shape.map(() => 0);
        const limits = [...x!.shape];
        starts[axis] = at;
        limits[axis] = at + n;
        at += n;
        const shape = limits.map((l, i) => l - starts[i]!);
        return fromHost(
          sliceKernel(buf(x!), x!.dtype, x!.shape, starts, limits),
          shape,
          x!.dtype,
          x!.backend,
        );
      });
    },
    webgpu: gpuSplit,
  },
  jvp([x], [dx], params) {
    return [bind(splitP, [x!], params), bind(splitP, [dx!], params)];
  },
  vjp(cts, _x, _y, { axis }) {
    return [concatenate(cts, axis)];
  },
  vmap(_n, [x], [d], { axis, sizes }) {
    const moved = moveAxis(x!, d!, 0);
    return [bind(splitP, [moved], { axis: axis + 1, sizes }), sizes.map(() => 0)];
  },
};

// ---------------------------------------------------------------------------------------------

export interface PadParams {
  lo: number[];
  hi: number[];
  value: number;
}

export const padP: Primitive<PadParams> = {
  name: "pad",
  abstractEval([x], { lo, hi }) {
    const shape = x!.shape;
    const ok =
      lo.length === shape.length &&
      hi.length === shape.length &&
      lo.every((l, i) => Number.isInteger(l) && l >= 0 && Number.isInteger(hi[i]) && hi[i]! >= 0);
    if (!ok) {
      throw new NbiError(
        `pad: widths expected one non-negative [before, after] pair per axis of ${showShape(shape)}, ` +
          `got before [${lo.join(", ")}] and after [${hi.join(", ")}]`,
      );
    }
    return [{ shape: shape.map((s, i) => s + lo[i]! + hi[i]!), dtype: x!.dtype }];
  },
  impl: {
    cpu: ([x], { lo, hi, value }) => {
      const shape = x!.shape.map((s, i) => s + lo[i]! + hi[i]!);
      return [
        fromHost(
          padKernel(buf(x!), x!.dtype, x!.shape, lo, shape, value),
          shape,
          x!.dtype,
          x!.backend,
        ),
      ];
    },
    webgpu: gpuPad,
  },
  jvp([x], [dx], params) {
    return [[bind1(padP, [x!], params)], [bind1(padP, [dx!], { ...params, value: 0 })]];
  },
  vjp([ct], [x], _y, { lo }) {
    return [bind1(sliceP, [ct!], { starts: lo, limits: x!.shape.map((s, i) => s + lo[i]!) })];
  },
  vmap(_n, [x], [d], { lo, hi, value }) {
    return [[bind1(padP, [moveAxis(x!, d!, 0)], { lo: [0, ...lo], hi: [0, ...hi], value })], [0]];
  },
};

// ---------------------------------------------------------------------------------------------

export interface ConcatenateParams {
  axis: number;
}

export const concatenateP: Primitive<ConcatenateParams> = {
  name: "concatenate",
  abstractEval(xs, { axis }) {
    const first = xs[0];
    if (!first) throw new NbiError("concatenate: arrays expected at least one array, got none");
    const shape = [...first.shape];
    if (axis < 0 || axis >= shape.length) {
      throw new NbiError(`concatenate: axis expected in [0, ${shape.length - 1}], got ${axis}`);
    }
    for (let k = 1; k < xs.length; k++) {
      const s = xs[k]!.shape;
      if (
        xs[k]!.dtype !== first.dtype ||
        s.length !== shape.length ||
        s.some((d, i) => i !== axis && d !== shape[i])
      ) {
        throw new NbiError(
          `concatenate: array ${k} expected shape ${showShape(first.shape)} (except axis ${axis}) ` +
            `and dtype ${first.dtype}, got ${showShape(s)} and ${xs[k]!.dtype}`,
        );
      }
      shape[axis]! += s[axis]!;
    }
    return [{ shape, dtype: first.dtype }];
  },
  impl: {
    cpu: (xs, params) => {
      const [{ shape, dtype }] = concatenateP.abstractEval(xs, params);
      return [
        fromHost(
          concatenateKernel(
            xs.map(buf),
            xs.map((x) => x.shape),
            dtype!,
            params.axis,
            shape!,
          ),
          shape!,
          dtype!,
          xs[0]!.backend,
        ),
      ];
    },
    webgpu: gpuConcatenate,
  },
  jvp(xs, dxs, { axis }) {
    return [[concatenate(xs, axis)], [concatenate(dxs, axis)]];
  },
  vjp([ct], xs, _y, { axis }) {
    let offset = 0;
    return xs.map((x) => {
      const starts = ct!.shape.map(() => 0);
      const limits = [...ct!.shape];
      starts[axis] = offset;
      offset += x.shape[axis]!;
      limits[axis] = offset;
      return bind1(sliceP, [ct!], { starts, limits });
    });
  },
  vmap(n, xs, dims, { axis }) {
    return [
      [
        concatenate(
          xs.map((x, i) => moveBatchAxis(n, x, dims[i]!, 0)),
          axis + 1,
        ),
      ],
      [0],
    ];
  },
};

// ---------------------------------------------------------------------------------------------
// reduce_sum (the reductions share one factory; max and min add their derivative in reduction.ts)

export interface ReduceParams {
  /** Sorted, distinct, non-negative axes. */
  axes: number[];
}

export function reducedShape(x: ShapedArray, axes: readonly number[], fn: string): number[] {
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
export function expandBack(y: Array, x: ShapedArray, axes: readonly number[]): Array {
  const keep = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  return broadcastTo(reshape(y, keep), x.shape);
}

/**
 * The derivative of an extremum reduction (max, min), passed in by reduction.ts: the weights that
 * say where the extremum sits, and the product that applies them. Both need elementwise
 * primitives, which sit above this file.
 */
export interface ExtremumDerivative {
  weights(x: Array, y: Array, axes: readonly number[]): Array;
  mul(a: Array, b: Array): Array;
}

/** One reduction primitive; `extremum` is null for the sum, whose derivative is linear. */
export function reducePrimitive(
  name: "reduce_sum" | "reduce_max" | "reduce_min",
  kind: ReduceKind,
  extremum: ExtremumDerivative | null,
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
      if (extremum === null) return [[y], [bind1(self, [dx!], params)]];
      const weights = extremum.weights(x!, y, params.axes);
      return [[y], [bind1(reduceSumP, [extremum.mul(dx!, weights)], params)]];
    },
    vjp([ct], [x], [y], { axes }) {
      const back = expandBack(ct!, x!, axes);
      if (extremum === null) return [back];
      const weights = extremum.weights(x!, y!, axes);
      return [extremum.mul(back, weights)];
    },
    vmap(_n, [x], [d], { axes }) {
      return [[bind1(self, [moveAxis(x!, d!, 0)], { axes: axes.map((a) => a + 1) })], [0]];
    },
  };
  return self;
}

export const reduceSumP = reducePrimitive("reduce_sum", "sum", null);

// ---------------------------------------------------------------------------------------------
// Layout helpers: traceable operations rules are written with

export function reshape(x: Array, shape: Shape): Array {
  if (x.shape.length === shape.length && x.shape.every((d, i) => d === shape[i])) return x;
  return bind1(reshapeP, [x], { shape: [...shape] });
}

export function transpose(x: Array, perm: readonly number[]): Array {
  if (perm.every((p, i) => p === i)) return x;
  return bind1(transposeP, [x], { perm: [...perm] });
}

export function broadcastTo(x: Array, shape: Shape): Array {
  if (x.shape.length === shape.length && x.shape.every((d, i) => d === shape[i])) return x;
  return bind1(broadcastToP, [x], { shape: [...shape] });
}

export function reduceSum(x: Array, axes: readonly number[]): Array {
  if (axes.length === 0) return x;
  return bind1(reduceSumP, [x], { axes: [...axes] });
}

export function concatenate(xs: Array[], axis: number): Array {
  if (xs.length === 1) return xs[0]!;
  return bind1(concatenateP, xs, { axis });
}

/** Sums a broadcast cotangent back to the operand's shape (the transpose of broadcasting). */
export function unbroadcast(ct: Array, shape: Shape): Array {
  const lead = ct.shape.length - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < ct.shape.length; i++) {
    if (i < lead || (shape[i - lead] === 1 && ct.shape[i] !== 1)) axes.push(i);
  }
  return reshape(reduceSum(ct, axes), shape);
}

/** Moves axis `from` of x to position `to`. */
export function moveAxis(x: Array, from: number, to: number): Array {
  if (from === to) return x;
  const perm = x.shape.map((_, i) => i).filter((i) => i !== from);
  perm.splice(to, 0, from);
  return transpose(x, perm);
}

/** Gives x a batch axis at `dim` (broadcasting an unbatched value to the batch size). */
export function moveBatchAxis(axisSize: number, x: Array, from: BatchDim, to: number): Array {
  if (from === null) {
    const shape = [...x.shape];
    shape.splice(to, 0, axisSize);
    const expanded = [...x.shape];
    expanded.splice(to, 0, 1);
    return broadcastTo(reshape(x, expanded), shape);
  }
  return moveAxis(x, from, to);
}

/**
 * Batching by a loop: slice every batched operand, apply the primitive per item and stack.
 * Correct for any primitive; used where a vectorised rule would be complex and the case rare.
 */
export function vmapByLoop<P>(prim: () => Primitive<P>) {
  return (axisSize: number, vals: Array[], dims: BatchDim[], params: P): [Array[], BatchDim[]] => {
    const p = prim();
    const moved = vals.map((v, i) => (dims[i] === null ? v : moveAxis(v, dims[i]!, 0)));
    const perItem: Array[][] = [];
    for (let b = 0; b < axisSize; b++) {
      const args = moved.map((v, i) => (dims[i] === null ? v : indexLeading(v, b)));
      perItem.push(bind(p, args, params));
    }
    const nOut = p.abstractEval(
      moved.map((v, i) => (dims[i] === null ? v : { shape: v.shape.slice(1), dtype: v.dtype })),
      params,
    ).length;
    const outs: Array[] = [];
    for (let k = 0; k < nOut; k++) {
      outs.push(
        concatenate(
          perItem.map((items) => reshape(items[k]!, [1, ...items[k]!.shape])),
          0,
        ),
      );
    }
    return [outs, outs.map(() => 0)];
  };
}

/**
 * x[0], …, x[L − 1] along the leading axis of a concrete array: views on the CPU, a few kernels
 * for all of them on WebGPU (instead of one slice kernel each).
 */
export function unstackLeading(x: ConcreteArray): ConcreteArray[] {
  if (x.backend.name === "webgpu") return gpuUnstack(x);
  return globalThis.Array.from(
    { length: x.shape[0]! },
    (_, i) => indexLeading(x, i) as ConcreteArray,
  );
}

/** x[i] along the leading axis. */
export function indexLeading(x: Array, i: number): Array {
  const starts = x.shape.map(() => 0);
  const limits = [...x.shape];
  starts[0] = i;
  limits[0] = i + 1;
  return reshape(bind1(sliceP, [x], { starts, limits }), x.shape.slice(1));
}
