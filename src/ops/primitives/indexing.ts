/**
 * Indexing primitives: take (a gather along one axis) and its transpose scatter_add. They sit
 * above the elementwise family because batching a take with batched indices offsets the indices
 * with integer arithmetic (add, select, max, min).
 */
import { NbiError } from "../../errors.js";
import type { Array } from "../../trace/array.js";
import { defaultBackend } from "../../trace/backend.js";
import { fromHost } from "../../trace/concrete-array.js";
import { bind1 } from "../../trace/core.js";
import type { TypedArray } from "../../trace/dtype.js";
import type { Primitive } from "../../trace/primitive.js";
import { scatterAddKernel, takeKernel } from "../cpu/structural.js";
import { gpuScatterAdd, gpuTake } from "../webgpu/structural.js";
import { add, less, max, min, select } from "./elementwise.js";
import { moveAxis, reshape, transpose, vmapByLoop } from "./structural.js";

const buf = (x: { buffer: unknown }) => x.buffer as TypedArray;

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
