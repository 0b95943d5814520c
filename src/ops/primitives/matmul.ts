/**
 * Batched matrix product, a primitive of its own: its reverse rule is two matrix products, so
 * eager `grad` of `x @ w` never materialises an M×K×N intermediate.
 */
import { NbiError } from "../../errors.js";
import { bind1 } from "../../transforms/core.js";
import type { Array, ShapedArray } from "../array.js";
import { fromHost } from "../concrete-array.js";
import { matmul as matmulKernel } from "../cpu/matmul.js";
import { matmulSimd, wasmMatmulAvailable } from "../cpu/wasm/matmul-simd.js";
import { isFloat } from "../dtype.js";
import type { Primitive } from "../primitive.js";
import { broadcastShapes, showShape } from "../shape.js";
import { gpuMatmul } from "../webgpu/compute.js";
import { add } from "./elementwise.js";
import { moveAxis, reshape, unbroadcast } from "./rules.js";

function matmulShape(a: ShapedArray, b: ShapedArray): number[] {
  if (a.shape.length < 2 || b.shape.length < 2) {
    throw new NbiError(
      `matmul: operands expected rank >= 2 (the numpy layer handles vectors), got ${showShape(a.shape)} and ${showShape(b.shape)}`,
    );
  }
  const [m, k] = a.shape.slice(-2) as [number, number];
  const [k2, n] = b.shape.slice(-2) as [number, number];
  if (k !== k2) {
    throw new NbiError(
      `matmul: inner dimensions expected equal, got ${showShape(a.shape)} @ ${showShape(b.shape)} (${k} vs ${k2})`,
    );
  }
  if (a.dtype !== b.dtype || !isFloat(a.dtype)) {
    throw new NbiError(
      `matmul: operands expected the same float dtype, got ${a.dtype} and ${b.dtype}`,
    );
  }
  const batch = broadcastShapes("matmul", a.shape.slice(0, -2), b.shape.slice(0, -2));
  return [...batch, m, n];
}

/** Swaps the last two axes. */
export function swapLast(x: Array): Array {
  return moveAxis(x, x.ndim - 1, x.ndim - 2);
}

export const matmulP: Primitive<Record<string, never>> = {
  name: "matmul",
  abstractEval([a, b]) {
    return [{ shape: matmulShape(a!, b!), dtype: a!.dtype }];
  },
  impl: {
    cpu: ([a, b]) => {
      // float32 runs on the WebAssembly SIMD kernel where the engine has SIMD; float64 (and
      // engines without SIMD) on the packed JS kernel.
      const kernel = a!.dtype === "float32" && wasmMatmulAvailable() ? matmulSimd : matmulKernel;
      const { data, shape } = kernel(
        a!.buffer as Float32Array,
        a!.shape,
        b!.buffer as Float32Array,
        b!.shape,
      );
      return [fromHost(data, shape, a!.dtype, a!.backend)];
    },
    webgpu: gpuMatmul,
  },
  jvp([a, b], [da, db]) {
    return [[matmul(a!, b!)], [add(matmul(da!, b!), matmul(a!, db!))]];
  },
  vjp([ct], [a, b]) {
    return [
      unbroadcast(matmul(ct!, swapLast(b!)), a!.shape),
      unbroadcast(matmul(swapLast(a!), ct!), b!.shape),
    ];
  },
  vmap(_n, [a, b], [da, db]) {
    // Batch axes to the front; pad the batched operands' logical rank so batch axes line up.
    const rank = Math.max(a!.ndim - (da === null ? 0 : 1), b!.ndim - (db === null ? 0 : 1));
    const prep = (x: Array, d: number | null) => {
      if (d === null) return x;
      const moved = moveAxis(x, d, 0);
      const pad = rank - (x.ndim - 1);
      return pad === 0
        ? moved
        : reshape(moved, [
            moved.shape[0]!,
            ...new globalThis.Array<number>(pad).fill(1),
            ...moved.shape.slice(1),
          ]);
    };
    // An unbatched operand broadcasts against the batch axis (it has fewer leading axes).
    return [[matmul(prep(a!, da!), prep(b!, db!))], [0]];
  },
};

export function matmul(a: Array, b: Array): Array {
  return bind1(matmulP, [a, b], {});
}
