/**
 * The backend registry: what a backend is (memory, a way to read it back, operand placement,
 * memory scopes and compilation of fused groups), the arrays stored on one (`ConcreteArray`,
 * declared here because the interface and the arrays refer to each other; concrete-array.ts
 * re-exports them), the built-in CPU backend, and which backend new arrays are created on. It
 * sits in the trace core, below the kernels, because concrete arrays and the eval interpreter
 * need a backend and nothing more; the WebGPU backend registers itself here when
 * `np.useBackend` (ops/backend.ts) initialises it, and the CPU's fused-loop compiler
 * (ops/cpu/fused.ts) is attached to the CPU backend by the ops layer (`setCpuFusion`).
 */
import { NbiError } from "../errors.js";
import { Array } from "./array.js";
import type { DType, TypedArray } from "./dtype.js";
import { type Shape, sizeOf } from "./shape.js";

/** Where arrays live and kernels run: "cpu" (typed arrays, always available) or "webgpu". */
export type BackendName = "cpu" | "webgpu";

/** An operand of a fused step: a program input or an earlier step's result. */
export type FusedOperand = { readonly input: number } | { readonly step: number };

/**
 * One operation of a fused group: the primitive's name (an op of the scalar-op table,
 * ops/scalar-ops.ts, or "reduce_sum"), its operands and its result dtype.
 */
export interface FusedStep {
  readonly op: string;
  readonly args: readonly FusedOperand[];
  readonly dtype: DType;
  /**
   * reduce_sum only: the summed axes of the program's shape (the result has them removed). Sums
   * appear only in programs given to a backend whose fusion takes them (`BackendFusion.sums`);
   * each reads a value of the program's shape and is read by no other step.
   */
  readonly axes?: readonly number[];
}

/**
 * A fused group as a backend compiles it: a chain of elementwise operations over one output
 * shape, with inputs broadcast to `shape` (NumPy rules), steps in order (closed, for a backend
 * that takes them, by float32 sums of values of that shape), and the steps whose values are
 * written out.
 */
export interface FusedProgram {
  readonly shape: Shape;
  readonly inputs: readonly { readonly shape: Shape; readonly dtype: DType }[];
  readonly steps: readonly FusedStep[];
  readonly outputs: readonly number[];
}

/**
 * A compiled fused group: its outputs (one array per program output, in order) from its inputs
 * (operands of other backends included).
 */
export type FusedKernel = ((inputs: readonly ConcreteArray[]) => ConcreteArray[]) & {
  /** Which of the backend's code generators made it, where it has several (CPU: "wasm", "js"). */
  readonly engine?: string;
};

/**
 * A fused group compiled as the epilogue of matmul(a, b): its outputs from the product's operands
 * and the group's inputs (the product's entry ignored); null, launching nothing, where the fused
 * kernel does not apply to these operands (run the equations unfused then).
 */
export type FusedMatmulKernel = (
  a: ConcreteArray,
  b: ConcreteArray,
  params: { readonly transposeA?: boolean; readonly transposeB?: boolean },
  inputs: readonly ConcreteArray[],
) => ConcreteArray[] | null;

/**
 * How a backend compiles jit's fused groups (see `Backend.fusion`). The CPU backend's compiler
 * also decides the groups themselves: transforms/fusion.ts plans every jaxpr's groups by asking
 * it, when the plan is made, what each candidate run compiles to, and other backends compile the
 * same groups when they first run them.
 */
export interface BackendFusion {
  /**
   * Whether `compile` takes programs closed by sums (reduce_sum steps with their `axes`). Where
   * not, a group's sums run after its kernel with the backend's reduce kernel, the kernel
   * writing the values they read.
   */
  readonly sums?: boolean;
  /**
   * The group as one kernel; null where this backend has no form for it, or (the CPU's) where a
   * kernel would not beat running the group's equations one by one.
   */
  compile(program: FusedProgram): FusedKernel | null;
  /**
   * The group as the epilogue of a matrix product whose elements are input `accInput`; null
   * where it cannot be (absent: never).
   */
  compileMatmulEpilogue?(program: FusedProgram, accInput: number): FusedMatmulKernel | null;
}

/**
 * Explicit memory scopes, for a backend whose storage the garbage collector cannot reclaim fast
 * enough on its own (WebGPU's pooled buffers): `np.scope` and `jit` reach them through here.
 */
export interface BackendScopes {
  /**
   * Runs `fn` and releases, when it returns, the storage allocated inside it on this backend
   * that `keep(result)` (buffers of this backend) does not list. `fn` must be synchronous.
   */
  run<T>(fn: () => T, keep: (result: T) => readonly unknown[]): T;
  /** Runs `fn` with no scope active: what it allocates belongs to no enclosing scope. */
  outside<T>(fn: () => T): T;
}

/**
 * A backend owns memory and runs kernels; it knows nothing of transforms. Kernels themselves are
 * declared with their primitives (each primitive record lists its implementation per backend).
 */
export interface Backend {
  readonly name: BackendName;
  /**
   * Operand placement: an operation whose operands live on several backends runs on the one
   * of highest priority (the first such operand's), whose kernels take the other operands as
   * they are (WebGPU uploads CPU data: cheap and synchronous; the reverse needs an async
   * readback, so nothing moves to the CPU implicitly). See `placement`.
   */
  readonly priority: number;
  /** Explicit memory scopes; absent where the garbage collector frees everything (the CPU). */
  readonly scopes?: BackendScopes;
  /**
   * Compilation of jit's fused groups into kernels of this backend (the CPU: WebAssembly SIMD or
   * generated JavaScript loops, ops/cpu/fused.ts; WebGPU: generated WGSL, ops/webgpu/fused.ts);
   * absent where groups run equation by equation.
   */
  readonly fusion?: BackendFusion;
  /** Takes ownership of host data (the caller must not mutate it afterwards). */
  fromHost(data: TypedArray, dtype: DType): unknown;
  /** Copies a buffer back to the host. */
  read(buffer: unknown, dtype: DType, size: number): Promise<TypedArray>;
  /** Synchronous read where the backend can do it; others throw an error naming `await x.data()`. */
  readSync(buffer: unknown, dtype: DType, size: number): TypedArray;
}

/** An array with real data on a backend. Immutable: kernels always write fresh buffers. */
export class ConcreteArray extends Array {
  constructor(
    readonly shape: Shape,
    readonly dtype: DType,
    readonly backend: Backend,
    /** Backend-owned storage: a typed array on the CPU, a GPU buffer on WebGPU. */
    readonly buffer: unknown,
  ) {
    super();
  }

  data(): Promise<TypedArray> {
    return this.backend.read(this.buffer, this.dtype, sizeOf(this.shape));
  }

  dataSync(): TypedArray {
    return this.backend.readSync(this.buffer, this.dtype, sizeOf(this.shape));
  }
}

/** Wraps host data as a concrete array on a backend (taking ownership of `data`). */
export function fromHost(
  data: TypedArray,
  shape: Shape,
  dtype: DType,
  backend: Backend,
): ConcreteArray {
  return new ConcreteArray([...shape], dtype, backend, backend.fromHost(data, dtype));
}

/** The CPU's fused-loop compiler, attached from the ops layer (see `setCpuFusion`). */
let cpuFusion: BackendFusion | undefined;

/**
 * Attaches the CPU backend's fused-loop compiler (ops/cpu/fused.ts, which sits above this file:
 * ops/primitives/elementwise.ts attaches it when the fusible primitives are defined, so any jaxpr
 * with a fusible equation finds it). Until then, jit fuses nothing.
 */
export function setCpuFusion(fusion: BackendFusion): void {
  cpuFusion = fusion;
}

/** The CPU backend: buffers are plain typed arrays that the garbage collector frees. */
export const cpuBackend: Backend = {
  name: "cpu",
  priority: 0,
  get fusion() {
    return cpuFusion;
  },
  fromHost(data: TypedArray, _dtype: DType): unknown {
    return data;
  },
  read(buffer: unknown): Promise<TypedArray> {
    return Promise.resolve((buffer as TypedArray).slice());
  },
  readSync(buffer: unknown): TypedArray {
    return (buffer as TypedArray).slice();
  },
};

const registry = new Map<BackendName, Backend>([["cpu", cpuBackend]]);
let current: BackendName = "cpu";

export function registerBackend(backend: Backend): void {
  registry.set(backend.name, backend);
}

export function getBackend(name: BackendName = current): Backend {
  const backend = registry.get(name);
  if (!backend) {
    throw new NbiError(
      `getBackend: backend expected one of [${[...registry.keys()].join(", ")}], got "${name}" ` +
        "(initialise it first, e.g. `await np.useBackend(name)`)",
    );
  }
  return backend;
}

/** The backend new arrays are created on. */
export function defaultBackend(): Backend {
  return getBackend(current);
}

export function setDefaultBackend(name: BackendName): void {
  getBackend(name);
  current = name;
}

/** The backends registered so far, in registration order ("cpu" first). */
export function registeredBackends(): BackendName[] {
  return [...registry.keys()];
}

/**
 * The backend an operation on these operands runs on: the operands' backend of highest
 * `priority`, the first operand's among equals (so "any WebGPU operand wins"); undefined for no
 * operands. The eval interpreter (core.ts) and jit's interpreter (transforms/interpret.ts) both
 * place equations with it.
 */
export function placement(operands: readonly { readonly backend: Backend }[]): Backend | undefined {
  let chosen: Backend | undefined;
  for (const x of operands) {
    if (chosen === undefined || x.backend.priority > chosen.priority) chosen = x.backend;
  }
  return chosen;
}

/** The scopes of the registered backends that have them. */
function scoped(): { backend: Backend; scopes: BackendScopes }[] {
  return [...registry.values()].flatMap((b) =>
    b.scopes ? [{ backend: b, scopes: b.scopes }] : [],
  );
}

/**
 * Runs `fn` inside a memory scope of every registered backend that has scopes: when it returns,
 * each releases what was allocated inside it on that backend and `keep(result, backend)` does not
 * list. `fn` must be synchronous. (`np.scope` is this with the result's arrays kept.)
 */
export function runScoped<T>(
  fn: () => T,
  keep: (result: T, backend: Backend) => readonly unknown[],
): T {
  let run = fn;
  for (const { backend, scopes } of scoped()) {
    const inner = run;
    run = () => scopes.run(inner, (result) => keep(result, backend));
  }
  return run();
}

/**
 * Runs `fn` outside every backend's memory scopes: what it allocates belongs to no enclosing
 * `np.scope` (jit keeps the constants a trace captures beyond the call that traced them).
 */
export function outsideScopes<T>(fn: () => T): T {
  let run = fn;
  for (const { scopes } of scoped()) {
    const inner = run;
    run = () => scopes.outside(inner);
  }
  return run();
}
