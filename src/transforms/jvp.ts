/** Forward-mode differentiation: each tracer carries a primal and a tangent. */
import { NbiError } from "../errors.js";
import { zerosLike } from "../ops/primitives/rules.js";
import type { Array, ShapedArray } from "../trace/array.js";
import { avalOf, fullRaise, type MainTrace, Trace, Tracer, withMain } from "../trace/core.js";
import type { Primitive } from "../trace/primitive.js";

class JVPTracer extends Tracer {
  readonly aval: ShapedArray;
  constructor(
    readonly trace: JVPTrace,
    readonly primal: Array,
    readonly tangent: Array,
  ) {
    super();
    this.aval = avalOf(primal);
  }
}

class JVPTrace extends Trace {
  pure(value: Array): Tracer {
    return new JVPTracer(this, value, zerosLike(value));
  }
  processPrimitive<P>(prim: Primitive<P>, tracers: Array[], params: P): Array[] {
    const ts = tracers as JVPTracer[];
    const [primalsOut, tangentsOut] = prim.jvp(
      ts.map((t) => t.primal),
      ts.map((t) => t.tangent),
      params,
    );
    return primalsOut.map((p, i) => new JVPTracer(this, p, tangentsOut[i]!));
  }
}

/** Flat jvp: arrays in, [primal outputs, tangent outputs] out. */
export function jvpFlat(
  f: (...xs: Array[]) => Array[],
  primals: readonly Array[],
  tangents: readonly Array[],
): [Array[], Array[]] {
  primals.forEach((p, i) => {
    const t = tangents[i]!;
    if (p.shape.length !== t.shape.length || p.shape.some((d, k) => d !== t.shape[k])) {
      throw new NbiError(
        `jvp: tangent ${i} expected shape [${p.shape.join(", ")}] to match its primal, got [${t.shape.join(", ")}]`,
      );
    }
    if (p.dtype !== t.dtype) {
      throw new NbiError(
        `jvp: tangent ${i} expected dtype ${p.dtype} to match its primal, got ${t.dtype}`,
      );
    }
  });
  return withMain(JVPTrace, null, (main: MainTrace) => {
    const trace = new JVPTrace(main);
    const inputs = primals.map((p, i) => new JVPTracer(trace, p, tangents[i]!));
    const outs = f(...inputs).map((o) => fullRaise(trace, o) as JVPTracer);
    return [outs.map((o) => o.primal), outs.map((o) => o.tangent)];
  });
}
