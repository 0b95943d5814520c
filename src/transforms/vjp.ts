/**
 * Reverse-mode differentiation on a tape. Each primitive applied to a tracer of this trace is
 * recorded with its primal inputs and outputs; the backward pass walks the tape in reverse and
 * applies each primitive's vjp rule. The rules are ordinary traceable array code evaluated at the
 * levels below this trace, so the backward pass is itself differentiable (grad of grad), batchable
 * (vmap of grad) and stageable into a jaxpr.
 */
import { NbiError } from "../errors.js";
import { add } from "../ops/primitives/elementwise.js";
import { zerosLike } from "../ops/primitives/rules.js";
import type { Array, ShapedArray } from "../trace/array.js";
import { avalOf, bind, fullRaise, type MainTrace, Trace, Tracer, withMain } from "../trace/core.js";
import { isFloat } from "../trace/dtype.js";
import type { Primitive } from "../trace/primitive.js";

interface TapeNode {
  readonly prim: Primitive<unknown> | null; // null for an input of the differentiated function
  readonly params: unknown;
  readonly inputs: readonly (Ref | null)[];
  readonly primalsIn: readonly Array[];
  readonly primalsOut: readonly Array[];
  /** The primitive's own pullback, when it saved residuals in the forward pass (vjpForward). */
  readonly pullback?: (cts: Array[]) => (Array | null)[];
}

interface Ref {
  readonly node: TapeNode;
  readonly index: number;
}

class VJPTracer extends Tracer {
  readonly aval: ShapedArray;
  constructor(
    readonly trace: VJPTrace,
    readonly primal: Array,
    readonly ref: Ref | null,
  ) {
    super();
    this.aval = avalOf(primal);
  }
  /** Values that do not depend on the inputs need no tracer: unwrap them. */
  override fullLower(): Array {
    return this.ref === null ? this.primal : this;
  }
}

class VJPTrace extends Trace {
  private get tape(): TapeNode[] {
    return this.main.globalData as TapeNode[];
  }
  pure(value: Array): Tracer {
    return new VJPTracer(this, value, null);
  }
  processPrimitive<P>(prim: Primitive<P>, tracers: Array[], params: P): Array[] {
    const ts = tracers as VJPTracer[];
    const primalsIn = ts.map((t) => t.primal);
    if (prim.nonDifferentiable || ts.every((t) => t.ref === null)) {
      return bind(prim, primalsIn, params).map((p) => new VJPTracer(this, p, null));
    }
    let primalsOut: Array[];
    let pullback: TapeNode["pullback"];
    if (prim.vjpForward) {
      const linear = ts.map((t) => t.ref !== null);
      [primalsOut, pullback] = prim.vjpForward(primalsIn, params, linear);
    } else primalsOut = bind(prim, primalsIn, params);
    const node: TapeNode = {
      prim: prim as Primitive<unknown>,
      params,
      inputs: ts.map((t) => t.ref),
      primalsIn,
      primalsOut,
      pullback,
    };
    this.tape.push(node);
    return primalsOut.map(
      (p, index) => new VJPTracer(this, p, isFloat(p.dtype) ? { node, index } : null),
    );
  }
}

function accumulate(store: Map<TapeNode, (Array | null)[]>, ref: Ref, ct: Array): void {
  let slots = store.get(ref.node);
  if (!slots) {
    slots = ref.node.primalsOut.map(() => null);
    store.set(ref.node, slots);
  }
  const expected = ref.node.primalsOut[ref.index]!;
  if (
    ct.shape.length !== expected.shape.length ||
    ct.shape.some((d, i) => d !== expected.shape[i])
  ) {
    throw new NbiError(
      `internal: the vjp rule of ${ref.node.prim?.name ?? "an input"} produced a cotangent of shape ` +
        `[${ct.shape.join(", ")}] for a value of shape [${expected.shape.join(", ")}]`,
    );
  }
  const prev = slots[ref.index];
  slots[ref.index] = prev ? add(prev, ct) : ct;
}

/**
 * Flat vjp: returns the primal outputs and a function from output cotangents to input
 * cotangents (zeros for inputs the outputs do not depend on).
 */
export function vjpFlat(
  f: (...xs: Array[]) => Array[],
  primals: readonly Array[],
): [Array[], (cts: readonly (Array | null)[]) => Array[]] {
  const tape: TapeNode[] = [];
  const inputNodes: TapeNode[] = primals.map((p) => ({
    prim: null,
    params: null,
    inputs: [],
    primalsIn: [],
    primalsOut: [p],
  }));
  const outs = withMain(VJPTrace, tape, (main: MainTrace) => {
    const trace = new VJPTrace(main);
    const inputs = primals.map(
      (p, i) =>
        new VJPTracer(trace, p, isFloat(p.dtype) ? { node: inputNodes[i]!, index: 0 } : null),
    );
    return f(...inputs).map((o) => fullRaise(trace, o) as VJPTracer);
  });
  /** Null cotangents mean "this output is not differentiated" (e.g. auxiliary outputs). */
  const backward = (cts: readonly (Array | null)[]): Array[] => {
    if (cts.length !== outs.length) {
      throw new NbiError(`vjp: cotangents expected ${outs.length} arrays, got ${cts.length}`);
    }
    const store = new Map<TapeNode, (Array | null)[]>();
    outs.forEach((o, i) => {
      const ct = cts[i];
      if (ct === null || ct === undefined) return;
      if (ct.shape.length !== o.shape.length || ct.shape.some((d, k) => d !== o.shape[k])) {
        throw new NbiError(
          `vjp: cotangent ${i} expected shape [${o.shape.join(", ")}], got [${ct.shape.join(", ")}]`,
        );
      }
      if (o.ref !== null) accumulate(store, o.ref, ct);
    });
    for (let k = tape.length - 1; k >= 0; k--) {
      const node = tape[k]!;
      const slots = store.get(node);
      if (!slots) continue;
      store.delete(node);
      const full = slots.map((c, i) => c ?? zerosLike(node.primalsOut[i]!));
      const inCts = node.pullback
        ? node.pullback(full)
        : node.prim!.vjp(full, node.primalsIn as Array[], node.primalsOut as Array[], node.params);
      node.inputs.forEach((ref, j) => {
        const c = inCts[j];
        if (ref !== null && c !== null && c !== undefined) accumulate(store, ref, c);
      });
    }
    return inputNodes.map((node) => store.get(node)?.[0] ?? zerosLike(node.primalsOut[0]!));
  };
  return [outs.map((o) => o.primal), backward];
}
