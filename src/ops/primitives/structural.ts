/** Primitives that rearrange data: reshape, transpose, broadcast_to, slice, pad, concatenate, take. */
import { NbiError } from "../../errors.js";
import { bind1 } from "../../transforms/core.js";
import type { Array } from "../array.js";
import { defaultBackend } from "../backend.js";
import { fromHost } from "../concrete-array.js";
import {
  broadcastKernel,
  concatenateKernel,
  padKernel,
  scatterAddKernel,
  sliceKernel,
  takeKernel,
  transposeKernel,
} from "../cpu/structural.js";
import type { TypedArray } from "../dtype.js";
import type { Primitive } from "../primitive.js";
import { broadcastShapes, showShape, sizeOf } from "../shape.js";
import {
  gpuBroadcastTo,
  gpuConcatenate,
  gpuPad,
  gpuReshape,
  gpuScatterAdd,
  gpuSlice,
  gpuTake,
  gpuTranspose,
} from "../webgpu/structural.js";
import { add, less, max, min, select } from "./elementwise.js";
import {
  broadcastTo,
  concatenate,
  moveAxis,
  moveBatchAxis,
  reshape,
  transpose,
  unbroadcast,
  vmapByLoop,
} from "./rules.js";

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
// take (gather along an axis) and its transpose scatter_add

export interface TakeParams {
  axis: number;
}

function takeShape(xShape: readonly number[], idxShape: readonly number[], axis: number): number[] {
  return [...xShape.slice(0, axis), ...idxShape, ...xShape.slice(axis + 1)];
}

function checkIndices(fn: string, dtype: string): void {
  if (dtype !== "int32") {
    throw new NbiError(`${fn}: indices expected an int32 array, got dtype ${dtype}`);
  }
}

export const takeP: Primitive<TakeParams> = {
  name: "take",
  abstractEval([x, idx], { axis }) {
    checkIndices("take", idx!.dtype);
    if (axis < 0 || axis >= x!.shape.length) {
      throw new NbiError(`take: axis expected in [0, ${x!.shape.length - 1}], got ${axis}`);
    }
    return [{ shape: takeShape(x!.shape, idx!.shape, axis), dtype: x!.dtype }];
  },
  impl: {
    cpu: ([x, idx], { axis }) => [
      fromHost(
        takeKernel(buf(x!), x!.dtype, x!.shape, buf(idx!) as Int32Array, axis),
        takeShape(x!.shape, idx!.shape, axis),
        x!.dtype,
        x!.backend,
      ),
    ],
    webgpu: gpuTake,
  },
  jvp([x, idx], [dx], params) {
    return [[bind1(takeP, [x!, idx!], params)], [bind1(takeP, [dx!, idx!], params)]];
  },
  vjp([ct], [x, idx], _y, { axis }) {
    return [bind1(scatterAddP, [ct!, idx!], { axis, size: x!.shape[axis]! }), null];
  },
  vmap(n, [x, idx], [dx, di], { axis }) {
    if (di === null) {
      return [[bind1(takeP, [moveAxis(x!, dx!, 0), idx!], { axis: axis + 1 })], [0]];
    }
    const idxB = moveAxis(idx!, di!, 0);
    if (dx === null) {
      // Unbatched data: the batch axis of the indices lands where the indices go.
      return [[bind1(takeP, [x!, idxB], { axis })], [axis]];
    }
    // Both batched: fold the batch into the taken axis and offset each item's indices.
    const xb = moveAxis(moveAxis(x!, dx!, 0), axis + 1, 1); // [B, A, ...pre, ...post]
    const a = xb.shape[1]!;
    const rest = xb.shape.slice(2);
    const flat = reshape(xb, [n * a, ...rest]);
    const offsets = offsetIndices(n, a, idxB);
    const out = bind1(takeP, [flat, offsets], { axis: 0 }); // [B, ...idx, ...pre, ...post]
    const k = idx!.ndim - 1;
    const pre = axis;
    const perm = [
      0,
      ...globalThis.Array.from({ length: pre }, (_, i) => 1 + k + i),
      ...globalThis.Array.from({ length: k }, (_, i) => 1 + i),
      ...globalThis.Array.from({ length: out.ndim - 1 - k - pre }, (_, i) => 1 + k + pre + i),
    ];
    return [[transpose(out, perm)], [0]];
  },
};

/** Indices of item b shifted by b * a, so one take over a folded [B * A] axis serves all items. */
function offsetIndices(n: number, a: number, idx: Array): Array {
  // Wrap and clamp per item first: after folding, an out-of-range index would reach a neighbour.
  const zero = fromHost(new Int32Array([0]), [], "int32", defaultBackend());
  const size = fromHost(new Int32Array([a]), [], "int32", defaultBackend());
  const last = fromHost(new Int32Array([Math.max(a - 1, 0)]), [], "int32", defaultBackend());
  const wrapped = select(less(idx, zero), add(idx, size), idx);
  idx = min(max(wrapped, zero), last);
  const base = Int32Array.from({ length: n }, (_, b) => b * a);
  const shape = [n, ...new globalThis.Array<number>(idx.ndim - 1).fill(1)];
  return add(idx, fromHost(base, shape, "int32", defaultBackend()));
}

export interface ScatterAddParams {
  axis: number;
  size: number;
}

export const scatterAddP: Primitive<ScatterAddParams> = {
  name: "scatter_add",
  abstractEval([u, idx], { axis, size }) {
    checkIndices("scatterAdd", idx!.dtype);
    const k = idx!.shape.length;
    const shape = [...u!.shape.slice(0, axis), size, ...u!.shape.slice(axis + k)];
    return [{ shape, dtype: u!.dtype }];
  },
  impl: {
    cpu: ([u, idx], { axis, size }) => {
      const k = idx!.shape.length;
      const shape = [...u!.shape.slice(0, axis), size, ...u!.shape.slice(axis + k)];
      return [
        fromHost(
          scatterAddKernel(buf(u!), u!.dtype, shape, buf(idx!) as Int32Array, axis),
          shape,
          u!.dtype,
          u!.backend,
        ),
      ];
    },
    webgpu: gpuScatterAdd,
  },
  jvp([u, idx], [du], params) {
    return [[bind1(scatterAddP, [u!, idx!], params)], [bind1(scatterAddP, [du!, idx!], params)]];
  },
  vjp([ct], [_u, idx], _y, { axis }) {
    return [bind1(takeP, [ct!, idx!], { axis }), null];
  },
  vmap(n, [u, idx], [du, di], params) {
    if (di === null) {
      return [
        [bind1(scatterAddP, [moveAxis(u!, du!, 0), idx!], { ...params, axis: params.axis + 1 })],
        [0],
      ];
    }
    return vmapByLoop(() => scatterAddP)(n, [u!, idx!], [du!, di], params);
  },
};
