/**
 * A small IR (after JAX's jaxpr): typed variables and a list of primitive equations. `makeJaxpr`
 * stages a function by tracing it with abstract inputs; values it closes over from outer traces
 * become explicit constant inputs (closure conversion), which is what lets `scan` bodies and `jit`
 * programs be differentiated and batched with respect to everything they touch.
 */
import { NbiError } from "../errors.js";
import type { Array, ShapedArray } from "../trace/array.js";
import { bind, fullRaise, type MainTrace, Trace, Tracer, withMain } from "../trace/core.js";
import type { Primitive } from "../trace/primitive.js";
import { showShape } from "../trace/shape.js";

let varCounter = 0;

export class Var {
  readonly id = varCounter++;
  constructor(readonly aval: ShapedArray) {}
}

export interface Eqn {
  readonly prim: Primitive<unknown>;
  readonly inputs: readonly Var[];
  readonly params: unknown;
  readonly outBinders: readonly Var[];
}

export interface Jaxpr {
  readonly inBinders: readonly Var[];
  readonly eqns: readonly Eqn[];
  readonly outs: readonly Var[];
}

/** A jaxpr with the values of its leading `consts.length` inputs bound. */
export interface ClosedJaxpr {
  readonly jaxpr: Jaxpr;
  readonly consts: readonly Array[];
}

class JaxprTracer extends Tracer {
  constructor(
    readonly trace: JaxprTrace,
    readonly aval: ShapedArray,
  ) {
    super();
  }
}

class Builder {
  readonly eqns: Eqn[] = [];
  readonly tracerToVar = new Map<JaxprTracer, Var>();
  readonly constTracers = new Map<Array, JaxprTracer>();
  readonly constVals: Array[] = [];
  readonly constVars: Var[] = [];

  newVar(t: JaxprTracer): Var {
    const v = new Var({ shape: t.aval.shape, dtype: t.aval.dtype });
    this.tracerToVar.set(t, v);
    return v;
  }
  getVar(t: JaxprTracer): Var {
    const v = this.tracerToVar.get(t);
    if (!v) throw new NbiError("internal: tracer from another jaxpr used while staging");
    return v;
  }
}

class JaxprTrace extends Trace {
  private get builder(): Builder {
    return this.main.globalData as Builder;
  }
  newArg(aval: ShapedArray): JaxprTracer {
    const t = new JaxprTracer(this, aval);
    this.builder.newVar(t);
    return t;
  }
  pure(value: Array): Tracer {
    const b = this.builder;
    let t = b.constTracers.get(value);
    if (!t) {
      t = new JaxprTracer(this, { shape: value.shape, dtype: value.dtype });
      b.constVars.push(b.newVar(t));
      b.constVals.push(value);
      b.constTracers.set(value, t);
    }
    return t;
  }
  processPrimitive<P>(prim: Primitive<P>, tracers: Array[], params: P): Array[] {
    const ts = tracers as JaxprTracer[];
    const avalsOut = prim.abstractEval(
      ts.map((t) => t.aval),
      params,
    );
    const outs = avalsOut.map((a) => new JaxprTracer(this, a));
    this.builder.eqns.push({
      prim: prim as Primitive<unknown>,
      inputs: ts.map((t) => this.builder.getVar(t)),
      params,
      outBinders: outs.map((t) => this.builder.newVar(t)),
    });
    return outs;
  }
}

/**
 * Stages `f` (flat arrays in, flat arrays out) at the given abstract inputs. The returned jaxpr's
 * inputs are [consts..., args...].
 */
export function makeJaxpr(
  f: (...args: Array[]) => Array[],
  avalsIn: readonly ShapedArray[],
): ClosedJaxpr {
  const builder = new Builder();
  return withMain(
    JaxprTrace,
    builder,
    (main: MainTrace) => {
      const trace = new JaxprTrace(main);
      const argTracers = avalsIn.map((a) => trace.newArg(a));
      const outs = f(...argTracers).map((o) => fullRaise(trace, o) as JaxprTracer);
      const jaxpr: Jaxpr = {
        inBinders: [...builder.constVars, ...argTracers.map((t) => builder.getVar(t))],
        eqns: builder.eqns,
        outs: outs.map((t) => builder.getVar(t)),
      };
      return { jaxpr, consts: builder.constVals };
    },
    true,
  );
}

/** Interprets a jaxpr with `bind`, so evaluating it under a transform applies the transform. */
export function evalJaxpr(jaxpr: Jaxpr, args: readonly Array[]): Array[] {
  if (args.length !== jaxpr.inBinders.length) {
    throw new NbiError(`evalJaxpr: expected ${jaxpr.inBinders.length} inputs, got ${args.length}`);
  }
  const env = new Map<Var, Array>();
  for (const [i, v] of jaxpr.inBinders.entries()) env.set(v, args[i]!);
  for (const eqn of jaxpr.eqns) {
    const outs = bind(
      eqn.prim,
      eqn.inputs.map((v) => env.get(v)!),
      eqn.params,
    );
    for (const [i, v] of eqn.outBinders.entries()) env.set(v, outs[i]!);
  }
  return jaxpr.outs.map((v) => env.get(v)!);
}

export function evalClosedJaxpr(closed: ClosedJaxpr, args: readonly Array[]): Array[] {
  return evalJaxpr(closed.jaxpr, [...closed.consts, ...args]);
}

/** A readable listing, for debugging and for `makeJaxpr(f)(...).toString()`. */
export function jaxprToString(jaxpr: Jaxpr): string {
  const names = new Map<Var, string>();
  const name = (v: Var) => {
    let n = names.get(v);
    if (!n) {
      n = varName(names.size);
      names.set(v, n);
    }
    return n;
  };
  const typed = (v: Var) => `${name(v)}:${v.aval.dtype}${showShape(v.aval.shape)}`;
  const lines = [`{ lambda ${jaxpr.inBinders.map(typed).join(", ")} .`];
  for (const e of jaxpr.eqns) {
    const params = formatParams(e.params);
    lines.push(
      `    ${e.outBinders.map(typed).join(", ")} = ${e.prim.name}${params} ${e.inputs.map(name).join(" ")}`,
    );
  }
  lines.push(`  in ( ${jaxpr.outs.map(name).join(", ")} ) }`);
  return lines.join("\n");
}

function varName(i: number): string {
  let s = "";
  do {
    s = String.fromCharCode(97 + (i % 26)) + s;
    i = Math.floor(i / 26) - 1;
  } while (i >= 0);
  return s;
}

function formatParams(params: unknown): string {
  if (params === null || typeof params !== "object") return "";
  const entries = Object.entries(params as Record<string, unknown>).filter(
    ([, v]) => typeof v !== "object" || v === null || globalThis.Array.isArray(v),
  );
  if (entries.length === 0) return "";
  return `[${entries.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(" ")}]`;
}

/** For each variable, the indices of the equations that read it (in order). */
export function readersOf(jaxpr: Jaxpr): Map<Var, number[]> {
  const readers = new Map<Var, number[]>();
  jaxpr.eqns.forEach((e, k) => {
    for (const v of e.inputs) {
      const list = readers.get(v) ?? [];
      list.push(k);
      readers.set(v, list);
    }
  });
  return readers;
}
