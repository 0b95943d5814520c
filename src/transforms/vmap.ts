/** Vectorising map: each tracer carries a batched value and where its batch axis is. */
import { NbiError } from "../errors.js";
import { moveBatchAxis } from "../ops/primitives/structural.js";
import type { Array, ShapedArray } from "../trace/array.js";
import { bind, fullRaise, type MainTrace, Trace, Tracer, withMain } from "../trace/core.js";
import type { BatchDim, Primitive } from "../trace/primitive.js";

class BatchTracer extends Tracer {
  readonly aval: ShapedArray;
  constructor(
    readonly trace: BatchTrace,
    readonly value: Array,
    readonly batchDim: BatchDim,
  ) {
    super();
    this.aval =
      batchDim === null
        ? { shape: value.shape, dtype: value.dtype }
        : { shape: value.shape.filter((_, i) => i !== batchDim), dtype: value.dtype };
  }
  override fullLower(): Array {
    return this.batchDim === null ? this.value : this;
  }
}

class BatchTrace extends Trace {
  get axisSize(): number {
    return this.main.globalData as number;
  }
  pure(value: Array): Tracer {
    return new BatchTracer(this, value, null);
  }
  processPrimitive<P>(prim: Primitive<P>, tracers: Array[], params: P): Array[] {
    const ts = tracers as BatchTracer[];
    const vals = ts.map((t) => t.value);
    const dims = ts.map((t) => t.batchDim);
    if (dims.every((d) => d === null)) {
      return bind(prim, vals, params).map((v) => new BatchTracer(this, v, null));
    }
    const [outs, outDims] = prim.vmap(this.axisSize, vals, dims, params);
    return outs.map((v, i) => new BatchTracer(this, v, outDims[i]!));
  }
}

/**
 * Flat vmap: inputs with their batch axes (null = not batched), outputs with the axes to put the
 * batch at (null = the output must not depend on the batch).
 */
export function vmapFlat(
  f: (...xs: Array[]) => Array[],
  args: readonly Array[],
  inAxes: readonly BatchDim[],
  outAxes: (nOut: number) => BatchDim[],
): Array[] {
  let axisSize: number | null = null;
  args.forEach((a, i) => {
    const ax = inAxes[i]!;
    if (ax === null) return;
    const size = a.shape[ax];
    if (size === undefined) {
      throw new NbiError(
        `vmap: inAxes for argument ${i} expected an axis of its shape [${a.shape.join(", ")}], got ${ax}`,
      );
    }
    if (axisSize !== null && axisSize !== size) {
      throw new NbiError(
        `vmap: mapped axes expected one common size, got ${axisSize} and ${size} (argument ${i})`,
      );
    }
    axisSize = size;
  });
  if (axisSize === null) {
    throw new NbiError("vmap: inAxes expected at least one mapped argument, got all null");
  }
  const n: number = axisSize;
  return withMain(BatchTrace, n, (main: MainTrace) => {
    const trace = new BatchTrace(main);
    const inputs = args.map((a, i) => new BatchTracer(trace, a, inAxes[i]!));
    const raw = f(...inputs).map((o) => fullRaise(trace, o) as BatchTracer);
    const axes = outAxes(raw.length);
    return raw.map((o, i) => {
      const target = axes[i]!;
      if (target === null) {
        if (o.batchDim !== null) {
          throw new NbiError(
            `vmap: output ${i} expected to be unbatched (outAxes null), but it depends on the mapped axis`,
          );
        }
        return o.value;
      }
      const rank = o.value.ndim + (o.batchDim === null ? 1 : 0);
      const to = target < 0 ? target + rank : target;
      if (to < 0 || to >= rank) {
        throw new NbiError(
          `vmap: outAxes[${i}] expected in [${-rank}, ${rank - 1}], got ${target}`,
        );
      }
      return moveBatchAxis(n, o.value, o.batchDim, to);
    });
  });
}
