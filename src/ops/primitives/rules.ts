/**
 * Rule factories shared across primitive families that need no particular primitive: zeros and
 * constants, rules for primitives without derivatives, and the refusal for a rule that cannot
 * exist. The layout helpers rules also use (reshape, moveAxis, unbroadcast, ...) are built from
 * the structural primitives and live with them (structural.ts), so this file imports no family.
 */
import { NbiError } from "../../errors.js";
import type { Array, ShapedArray } from "../../trace/array.js";
import { defaultBackend } from "../../trace/backend.js";
import { fromHost } from "../../trace/concrete-array.js";
import { bind } from "../../trace/core.js";
import { allocate, type DType } from "../../trace/dtype.js";
import type { Primitive } from "../../trace/primitive.js";
import { type Shape, sizeOf } from "../../trace/shape.js";

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
