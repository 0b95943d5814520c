/**
 * The interpreter stack (the Autodidax model). Each active transform pushes a MainTrace with a
 * level; every primitive application goes through `bind`, which finds the highest-level trace
 * among its arguments, lifts the others into it, and lets that trace interpret the primitive.
 * Transforms compose because a trace's rules call `bind` again on values of lower levels.
 */
import { NbiError } from "../errors.js";
import { Array, type ShapedArray } from "./array.js";
import { getBackend, placement } from "./backend.js";
import type { ConcreteArray } from "./concrete-array.js";
import type { TypedArray } from "./dtype.js";
import type { Primitive } from "./primitive.js";

export abstract class Trace {
  constructor(readonly main: MainTrace) {}
  /** Wraps a value from a lower level (or a concrete array) as a tracer of this trace. */
  abstract pure(value: Array): Tracer;
  lift(value: Array): Tracer {
    return this.pure(value);
  }
  abstract processPrimitive<P>(prim: Primitive<P>, tracers: Array[], params: P): Array[];
}

type TraceConstructor = new (main: MainTrace) => Trace;

export class MainTrace {
  constructor(
    readonly level: number,
    readonly traceType: TraceConstructor,
    readonly globalData: unknown,
  ) {}
  /** Set when the transform that owns it returns; using its tracers afterwards is an error. */
  finished = false;
}

/** Level 0: evaluate primitives on concrete arrays with the backend's kernels. */
export class EvalTrace extends Trace {
  pure(value: Array): Tracer {
    throw new NbiError(`internal: cannot lift ${value} into the evaluation trace`);
  }
  processPrimitive<P>(prim: Primitive<P>, values: Array[], params: P): Array[] {
    const inputs = values as ConcreteArray[];
    // Mixed backends: the operation runs where `placement` says (any WebGPU operand wins, and
    // its kernels upload the CPU operands); no operands: the default backend.
    const backend = placement(inputs) ?? getBackend();
    // Shape and dtype rules run on every route, eager included, so bad input never reaches a
    // kernel (kernels trust their inputs).
    prim.abstractEval(inputs, params);
    const kernel = prim.impl[backend.name];
    if (!kernel) {
      throw new NbiError(`${prim.name}: no kernel for backend "${backend.name}"`);
    }
    return kernel(inputs, params);
  }
}

const traceStack: MainTrace[] = [new MainTrace(0, EvalTrace, null)];
/** The innermost jaxpr-building trace, which stages even operations on constants (omnistaging). */
let dynamicTrace: MainTrace | null = null;

/** Runs `fn` with a new main trace of the given type pushed on the stack. */
export function withMain<T>(
  traceType: TraceConstructor,
  globalData: unknown,
  fn: (main: MainTrace) => T,
  dynamic = false,
): T {
  const main = new MainTrace(traceStack.length, traceType, globalData);
  traceStack.push(main);
  const previousDynamic = dynamicTrace;
  if (dynamic) dynamicTrace = main;
  try {
    return fn(main);
  } finally {
    traceStack.pop();
    dynamicTrace = previousDynamic;
    main.finished = true;
  }
}

/** Runs `fn` with the dynamic (staging) trace switched off: used to compute true constants. */
export function withoutDynamicTrace<T>(fn: () => T): T {
  const previous = dynamicTrace;
  dynamicTrace = null;
  try {
    return fn();
  } finally {
    dynamicTrace = previous;
  }
}

/** A value standing for an array inside a transform. */
export abstract class Tracer extends Array {
  abstract readonly trace: Trace;
  abstract readonly aval: ShapedArray;

  get shape() {
    return this.aval.shape;
  }
  get dtype() {
    return this.aval.dtype;
  }

  /** Unwraps to a lower-level value when this tracer carries nothing of its own trace. */
  fullLower(): Array {
    return this;
  }

  data(): Promise<TypedArray> {
    return Promise.reject(this.concretizationError("data"));
  }
  dataSync(): TypedArray {
    throw this.concretizationError("dataSync");
  }

  private concretizationError(method: string): NbiError {
    return new NbiError(
      `${method}: the values of a traced array are not available inside a transform ` +
        `(${this.trace.constructor.name}); got a tracer of shape [${this.shape.join(", ")}] and ` +
        "dtype " +
        `${this.dtype}. Compute with array operations (np.where instead of if, ...) or read ` +
        "values outside the transformed function.",
    );
  }
}

function levelOf(x: Array): number {
  return x instanceof Tracer ? x.trace.main.level : 0;
}

function findTopTrace(args: readonly Array[]): Trace {
  let top = traceStack[0]!;
  for (const x of args) {
    if (!(x instanceof Tracer)) continue;
    if (x.trace.main.finished) throw escapedTracerError(x);
    if (x.trace.main.level > top.level) top = x.trace.main;
  }
  if (dynamicTrace !== null && dynamicTrace.level > top.level) top = dynamicTrace;
  return new top.traceType(top);
}

function escapedTracerError(value: Tracer): NbiError {
  return new NbiError(
    `a tracer escaped its transform: a value of shape [${value.shape.join(", ")}] from a ` +
      `finished ${value.trace.constructor.name} was used later (did a function store a traced ` +
      "value outside itself?)",
  );
}

export function fullRaise(trace: Trace, value: Array): Array {
  if (!(value instanceof Tracer)) {
    if (trace.main.level === 0) return value;
    return trace.pure(value);
  }
  const main = value.trace.main;
  if (main === trace.main) return value;
  if (main.finished) throw escapedTracerError(value);
  if (main.level < trace.main.level) return trace.lift(value);
  throw new NbiError(
    `internal: cannot lift a tracer of level ${main.level} into a trace of level ${trace.main.level}`,
  );
}

function fullLower(value: Array): Array {
  return value instanceof Tracer ? value.fullLower() : value;
}

/** Applies a primitive: the single entry point every operation goes through. */
export function bind<P>(prim: Primitive<P>, args: readonly Array[], params: P): Array[] {
  const trace = findTopTrace(args);
  const tracers = args.map((a) => fullRaise(trace, a));
  const outs = trace.processPrimitive(prim, tracers, params);
  return outs.map(fullLower);
}

/** `bind` for the common single-output case. */
export function bind1<P>(prim: Primitive<P>, args: readonly Array[], params: P): Array {
  return bind(prim, args, params)[0]!;
}

/** The abstract value (shape and dtype) of any array or tracer. */
export function avalOf(x: Array): ShapedArray {
  return { shape: x.shape, dtype: x.dtype };
}

export function currentLevel(): number {
  return traceStack.length - 1;
}

export { levelOf };
