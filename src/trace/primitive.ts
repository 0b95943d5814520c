/**
 * The primitive record: what one primitive operation declares (shape rule, kernels per backend,
 * jvp, vjp, vmap), the contract between `bind` (trace/core.ts), the primitive families
 * (ops/primitives/) and the transforms that interpret them.
 */
import type { Array, ShapedArray } from "./array.js";
import type { BackendName } from "./backend.js";
import type { ConcreteArray } from "./concrete-array.js";

/** Where a batched value carries its batch axis under vmap; null when it is not batched. */
export type BatchDim = number | null;

/** A kernel runs a primitive on concrete arrays of one backend. */
export type Kernel<P> = (inputs: ConcreteArray[], params: P) => ConcreteArray[];

/**
 * One primitive, declared once with every rule it needs. The record type makes each rule
 * required, so adding a primitive without (say) its vmap rule does not compile; families share
 * rule factories (see ops/primitives/rules.ts and structural.ts), and a rule that genuinely
 * cannot exist is the factory `unsupported(name, transform)`, which throws an error naming both.
 *
 * Rules are written with the public array API, so they are themselves traceable: the backward
 * pass of grad can be differentiated again, batched or staged into a jaxpr.
 */
export interface Primitive<P = unknown> {
  readonly name: string;
  /** Output shapes and dtypes from input shapes and dtypes; validates and throws NbiError. */
  abstractEval(avals: readonly ShapedArray[], params: P): ShapedArray[];
  /** Kernels per backend. The CPU kernel is required; others arrive with their backends. */
  readonly impl: { readonly cpu: Kernel<P> } & { readonly [B in BackendName]?: Kernel<P> };
  /** Forward mode: primal and tangent outputs from primal and tangent inputs. */
  jvp(primals: Array[], tangents: Array[], params: P): [Array[], Array[]];
  /**
   * Reverse mode: cotangents of the inputs from cotangents of the outputs (zeros where an output
   * was unused), the primal inputs and the primal outputs. Null means "no gradient flows here"
   * (integer inputs, indices).
   */
  vjp(cts: Array[], primalsIn: Array[], primalsOut: Array[], params: P): (Array | null)[];
  /**
   * Optional reverse mode that keeps what the backward pass needs from the forward pass: the
   * primal outputs and a pullback from output cotangents (zeros where unused) to input
   * cotangents. `linear[i]` says whether input i carries a derivative (the pullback may return
   * null for the others). The tape (vjp/grad) prefers it to applying the primitive and calling
   * `vjp` later; `scan` uses it to stack each step's residuals instead of recomputing the loop.
   */
  vjpForward?(
    primalsIn: Array[],
    params: P,
    linear: readonly boolean[],
  ): [Array[], (cts: Array[]) => (Array | null)[]];
  /** Batching: outputs and their batch axes from inputs and their batch axes. */
  vmap(axisSize: number, vals: Array[], dims: BatchDim[], params: P): [Array[], BatchDim[]];
  /** Primitives with only integer/boolean outputs never carry gradients (comparisons, argmax). */
  readonly nonDifferentiable?: boolean;
  /**
   * True for elementwise primitives, which `jit` may fuse (transforms/fusion.ts). Their JS, WGSL
   * and WASM SIMD forms live in one place, the op's entry in the scalar-op table
   * (ops/scalar-ops.ts, keyed by the primitive's name), which the backends' fused kernels read.
   */
  readonly fusible?: true;
}
