/** Counter-based random bits (Threefry-2x32) and a stable argsort, both without derivatives. */
import { NbiError } from "../../errors.js";
import { fromHost } from "../../trace/concrete-array.js";
import { bind1 } from "../../trace/core.js";
import type { TypedArray } from "../../trace/dtype.js";
import type { Primitive } from "../../trace/primitive.js";
import { showShape, sizeOf } from "../../trace/shape.js";
import { transposeKernel } from "../cpu/structural.js";
import { randomBits } from "../cpu/threefry.js";
import { gpuArgsort, gpuRandomBits } from "../webgpu/compute.js";
import { zeroDerivativeRules } from "./rules.js";
import { moveAxis } from "./structural.js";

export interface RandomBitsParams {
  shape: number[];
}

/**
 * random_bits(keys [..., 2] uint32) → uint32 [..., ...shape]: each key's words depend on that key
 * only, so a batch of keys (vmap over keys) needs no special rule beyond moving the batch axis.
 */
export const randomBitsP: Primitive<RandomBitsParams> = {
  name: "random_bits",
  nonDifferentiable: true,
  abstractEval([k], { shape }) {
    if (k!.dtype !== "uint32" || k!.shape[k!.shape.length - 1] !== 2) {
      throw new NbiError(
        `random: key expected a uint32 array of shape [..., 2] (from random.key), got dtype ${k!.dtype} and shape ${showShape(k!.shape)}`,
      );
    }
    return [{ shape: [...k!.shape.slice(0, -1), ...shape], dtype: "uint32" }];
  },
  impl: {
    cpu: ([k], { shape }) => {
      const outShape = [...k!.shape.slice(0, -1), ...shape];
      const bits = randomBits(k!.buffer as Uint32Array, sizeOf(shape));
      return [fromHost(bits, outShape, "uint32", k!.backend)];
    },
    webgpu: gpuRandomBits,
  },
  ...zeroDerivativeRules(() => randomBitsP),
  vmap(_n, [k], [d], params) {
    return [[bind1(randomBitsP, [moveAxis(k!, d!, 0)], params)], [0]];
  },
};

export interface ArgsortParams {
  axis: number;
}

/** Indices that sort along an axis: stable, NaN last (as NumPy). */
export const argsortP: Primitive<ArgsortParams> = {
  name: "argsort",
  nonDifferentiable: true,
  abstractEval([x], { axis }) {
    if (axis < 0 || axis >= x!.shape.length) {
      throw new NbiError(`argsort: axis expected in [0, ${x!.shape.length - 1}], got ${axis}`);
    }
    return [{ shape: x!.shape, dtype: "int32" }];
  },
  impl: {
    cpu: ([x], { axis }) => {
      const shape = x!.shape;
      const rank = shape.length;
      const perm = shape.map((_, i) => i).filter((i) => i !== axis);
      perm.push(axis);
      const src = x!.buffer as TypedArray;
      const data = axis === rank - 1 ? src : transposeKernel(src, x!.dtype, shape, perm);
      const n = shape[axis]!;
      const rows = n === 0 ? 0 : data.length / n;
      const out = new Int32Array(data.length);
      const order = new globalThis.Array<number>(n);
      for (let r = 0; r < rows; r++) {
        const base = r * n;
        for (let i = 0; i < n; i++) order[i] = i;
        order.sort((i, j) => {
          const a = data[base + i]!;
          const b = data[base + j]!;
          if (a !== a) return b !== b ? i - j : 1;
          if (b !== b) return -1;
          return a < b ? -1 : a > b ? 1 : i - j;
        });
        for (let i = 0; i < n; i++) out[base + i] = order[i]!;
      }
      if (axis === rank - 1) return [fromHost(out, shape, "int32", x!.backend)];
      // Undo the transpose: the sorted axis is last in `out`.
      const movedShape = perm.map((p) => shape[p]!);
      const back = perm.map((_, i) => i);
      back.splice(axis, 0, rank - 1);
      back.pop();
      const inv = transposeKernel(out, "int32", movedShape, back) as Int32Array;
      return [fromHost(inv, shape, "int32", x!.backend)];
    },
    // On the GPU itself, by ranking (no readback): see gpuArgsort.
    webgpu: gpuArgsort,
  },
  ...zeroDerivativeRules(() => argsortP),
  vmap(_n, [x], [d], { axis }) {
    return [[bind1(argsortP, [moveAxis(x!, d!, 0)], { axis: axis + 1 })], [0]];
  },
};
