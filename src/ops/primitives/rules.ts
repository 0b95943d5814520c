/**
 * Rule factories shared across primitive families, and the few array helpers rules need. Rules
 * are written with traceable operations only, so they compose with every transform.
 */
import { NbiError } from "../../errors.js";
import { bind, bind1 } from "../../transforms/core.js";
import type { Array, ShapedArray } from "../array.js";
import { defaultBackend } from "../backend.js";
import { fromHost } from "../concrete-array.js";
import { allocate, type DType } from "../dtype.js";
import type { BatchDim, Primitive } from "../primitive.js";
import { type Shape, sizeOf } from "../shape.js";
import { reduceSumP } from "./reduction.js";
import { broadcastToP, concatenateP, reshapeP, sliceP, transposeP } from "./structural.js";

/** A rule that cannot exist for this primitive: fails naming the primitive and the transform. */
export function unsupported(name: string, transform: string): never {
  throw new NbiError(`${name}: the ${transform} rule is not available for this primitive`);
}

/** A constant array of zeros (a concrete array; transforms lift it as needed). */
export function zeros(shape: Shape, dtype: DType): Array {
  return fromHost(allocate(dtype, sizeOf(shape)), shape, dtype, defaultBackend());
}

export function full(shape: Shape, dtype: DType, value: number): Array {
  const data = allocate(dtype, sizeOf(shape));
  data.fill(value);
  return fromHost(data, shape, dtype, defaultBackend());
}

export function zerosLike(x: ShapedArray): Array {
  return zeros(x.shape, x.dtype);
}

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

/** Forward and reverse rules of primitives whose outputs carry no derivative. */
export function zeroDerivativeRules<P>(prim: () => Primitive<P>) {
  return {
    jvp(primals: Array[], _tangents: Array[], params: P): [Array[], Array[]] {
      const p = prim();
      const outs = p.abstractEval(primals, params);
      return [bind(p, primals, params), outs.map(zerosLike)];
    },
    vjp(_cts: Array[], primalsIn: Array[]): (Array | null)[] {
      return primalsIn.map(() => null);
    },
  };
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

/** x[i] along the leading axis. */
export function indexLeading(x: Array, i: number): Array {
  const starts = x.shape.map(() => 0);
  const limits = [...x.shape];
  starts[0] = i;
  limits[0] = i + 1;
  return reshape(bind1(sliceP, [x], { starts, limits }), x.shape.slice(1));
}
