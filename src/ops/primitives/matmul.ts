/**
 * Batched matrix product, a primitive of its own: its reverse rule is two matrix products, so
 * eager `grad` of `x @ w` never materialises an M×K×N intermediate.
 */
import { NbiError } from "../../errors.js";
import type { Array, ShapedArray } from "../../trace/array.js";
import { fromHost } from "../../trace/concrete-array.js";
import { bind1 } from "../../trace/core.js";
import { isFloat } from "../../trace/dtype.js";
import type { Primitive } from "../../trace/primitive.js";
import { broadcastShapes, showShape } from "../../trace/shape.js";
import { matmul as matmulKernel } from "../cpu/matmul.js";
import { matmulSimd, wasmMatmulAvailable } from "../cpu/wasm/matmul-simd.js";
import { gpuMatmul } from "../webgpu/compute.js";
import { add } from "./elementwise.js";
import { moveAxis, reshape, unbroadcast } from "./structural.js";

/**
 * Transposed operands as parameters: with `transposeA`, a is stored [..., K, M] and the product
 * uses its transpose (likewise `transposeB`: b stored [..., N, K]). The kernels read transposed
 * operands through strides, so reverse mode (ct·bᵀ, aᵀ·ct) and jit's peephole rewrites never
 * materialise a transpose. The numpy layer binds neither.
 */
export interface MatmulParams {
  transposeA?: boolean;
  transposeB?: boolean;
}

/** [rows, cols] of an operand as used, after its optional transpose. */
function used(x: ShapedArray, transposed: boolean | undefined): [number, number] {
  const [r, c] = x.shape.slice(-2) as [number, number];
  return transposed ? [c, r] : [r, c];
}

function matmulShape(a: ShapedArray, b: ShapedArray, p: MatmulParams): number[] {
  if (a.shape.length < 2 || b.shape.length < 2) {
    throw new NbiError(
      `matmul: operands expected rank >= 2 (the numpy layer handles vectors), got ${showShape(a.shape)} and ${showShape(b.shape)}`,
    );
  }
  const [m, k] = used(a, p.transposeA);
  const [k2, n] = used(b, p.transposeB);
  if (k !== k2) {
    const t = (x: boolean | undefined) => (x ? "ᵀ" : "");
    throw new NbiError(
      `matmul: inner dimensions expected equal, got ${showShape(a.shape)}${t(p.transposeA)} @ ${showShape(b.shape)}${t(p.transposeB)} (${k} vs ${k2})`,
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

export const matmulP: Primitive<MatmulParams> = {
  name: "matmul",
  abstractEval([a, b], p) {
    return [{ shape: matmulShape(a!, b!, p), dtype: a!.dtype }];
  },
  impl: {
    cpu: ([a, b], p) => {
      // float32 runs on the WebAssembly SIMD kernel where the engine has SIMD; float64 (and
      // engines without SIMD) on the packed JS kernel.
      const kernel = a!.dtype === "float32" && wasmMatmulAvailable() ? matmulSimd : matmulKernel;
      const { data, shape } = kernel(
        a!.buffer as Float32Array,
        a!.shape,
        b!.buffer as Float32Array,
        b!.shape,
        p.transposeA === true,
        p.transposeB === true,
      );
      return [fromHost(data, shape, a!.dtype, a!.backend)];
    },
    webgpu: gpuMatmul,
  },
  jvp([a, b], [da, db], p) {
    return [[matmul(a!, b!, p)], [add(matmul(da!, b!, p), matmul(a!, db!, p))]];
  },
  vjp([ct], [a, b], _out, p) {
    const tA = p.transposeA === true;
    const tB = p.transposeB === true;
    return [gradA(ct!, a!, b!, tA, tB), gradB(ct!, a!, b!, tA, tB)];
  },
  vmap(_n, [a, b], [da, db], p) {
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
    return [[matmul(prep(a!, da!), prep(b!, db!), p)], [0]];
  },
};

const flags = (transposeA: boolean, transposeB: boolean): MatmulParams =>
  transposeA || transposeB ? { transposeA, transposeB } : {};

/** The cotangent of a in C = op(a)·op(b), as one product with flags (no transpose made). */
function gradA(ct: Array, a: Array, b: Array, tA: boolean, tB: boolean): Array {
  // op(a)̄ = ct · op(b)ᵀ; if a is stored transposed, ā = (ct · op(b)ᵀ)ᵀ = op(b) · ctᵀ.
  const g = tA ? matmul(b, ct, flags(tB, true)) : matmul(ct, b, flags(false, !tB));
  return unbroadcast(g, a.shape);
}

/** The cotangent of b in C = op(a)·op(b). */
function gradB(ct: Array, a: Array, b: Array, tA: boolean, tB: boolean): Array {
  const aBatch = a.shape.slice(0, -2);
  const bBatched = b.shape.slice(0, -2).some((d) => d !== 1);
  if (!bBatched && aBatch.length > 0 && !tA) {
    // b is shared by every batch of a (a dense layer over leading axes): fold the batches into
    // the reduction, b̄ = a₂ᵀ · ct₂ with a₂ = a [batch·M, K], ct₂ = ct [batch·M, N].
    const k = a.shape[a.ndim - 1]!;
    const n = ct.shape[ct.ndim - 1]!;
    const rows = ct.shape.slice(0, -1).reduce((p, d) => p * d, 1);
    const a2 = reshape(a, [rows, k]);
    const ct2 = reshape(ct, [rows, n]);
    const g = tB ? matmul(ct2, a2, flags(true, false)) : matmul(a2, ct2, flags(true, false));
    return reshape(g, b.shape);
  }
  // op(b)̄ = op(a)ᵀ · ct; if b is stored transposed, b̄ = ctᵀ · op(a).
  const g = tB ? matmul(ct, a, flags(true, tA)) : matmul(a, ct, flags(!tA, false));
  return unbroadcast(g, b.shape);
}

export function matmul(a: Array, b: Array, params: MatmulParams = {}): Array {
  return bind1(matmulP, [a, b], params);
}
