/**
 * The bijector interface (the distrax/TFP model). A bijector maps x ↦ y with a tractable
 * log |det ∂y/∂x|. Events are vectors: x and y are `[..., d]` (any leading batch axes) and log-dets
 * are `[...]`, summed over the last axis. Every method takes an optional conditioning context.
 *
 * A new bijector writes only `forwardAndLogDet` (and `inverseAndLogDet` where a closed-form inverse
 * exists); `bijector(spec)` derives `forward`, `inverse`, `forwardLogDet` and `inverseLogDet`.
 */
import { describe, NbiError } from "../errors.js";
import type { Array } from "../trace/array.js";

/** A (log-det, value) pair: the output and log |det J| of the map, summed over the event axis. */
export type ValueAndLogDet = [value: Array, logDet: Array];

/**
 * An invertible map x ↦ y with a tractable log |det ∂y/∂x|, optionally conditioned on a context.
 * Build one with `bijector(spec)`, which derives everything but `forwardAndLogDet` and
 * `inverseAndLogDet`.
 */
export interface Bijector {
  /** A short description, for error messages and law failures. */
  readonly name: string;
  /**
   * True when y_i depends only on x_1..x_i (lower-triangular Jacobian in the natural order).
   * Elementwise bijectors are autoregressive too (diagonal Jacobian).
   */
  readonly autoregressive?: boolean;
  /** y from x `[..., d]` (sampling direction in a flow). */
  forward(x: Array, context?: Array): Array;
  /** x from y `[..., d]` (density direction in a flow); throws an NbiError without an inverse. */
  inverse(y: Array, context?: Array): Array;
  /** y and log |det ∂y/∂x| `[...]` in one pass. */
  forwardAndLogDet(x: Array, context?: Array): ValueAndLogDet;
  /** x and log |det ∂x/∂y| `[...]` in one pass. */
  inverseAndLogDet(y: Array, context?: Array): ValueAndLogDet;
  /** log |det ∂y/∂x| at x, summed over the event axis: `[...]`. */
  forwardLogDet(x: Array, context?: Array): Array;
  /** log |det ∂x/∂y| at y, summed over the event axis: `[...]`. */
  inverseLogDet(y: Array, context?: Array): Array;
}

/** What a new bijector writes; the rest of the interface is derived by `bijector`. */
export interface BijectorSpec {
  /** A short description, for error messages and law failures. */
  name: string;
  /** True when the Jacobian is lower-triangular (see `Bijector.autoregressive`; default false). */
  autoregressive?: boolean;
  /** The map and its log-det, summed over the event axis: the one method every bijector writes. */
  forwardAndLogDet(x: Array, context?: Array): ValueAndLogDet;
  /** Omit when there is no closed-form inverse: `inverse*` then throw an NbiError. */
  inverseAndLogDet?(y: Array, context?: Array): ValueAndLogDet;
}

/**
 * Completes a spec into a Bijector: `forward`, `inverse` and both log-dets are derived from
 * `forwardAndLogDet` and `inverseAndLogDet`.
 *
 * @example
 * ```ts
 * const double = bijectors.bijector({
 *   name: "double",
 *   forwardAndLogDet: (x) => [np.mul(x, 2), np.sum(np.full(x.shape, Math.log(2)), { axis: -1 })],
 * });
 * double.forward(np.array([[1, 2]])); // [[2, 4]]; double.inverse throws (no inverse given)
 * ```
 */
export function bijector(spec: BijectorSpec): Bijector {
  const inv =
    spec.inverseAndLogDet?.bind(spec) ??
    (() => {
      throw new NbiError(`${spec.name}: has no closed-form inverse`);
    });
  const fwd = spec.forwardAndLogDet.bind(spec);
  const b: Bijector = {
    name: spec.name,
    autoregressive: spec.autoregressive ?? false,
    forwardAndLogDet: fwd,
    inverseAndLogDet: inv,
    forward: (x, c) => fwd(x, c)[0],
    inverse: (y, c) => inv(y, c)[0],
    forwardLogDet: (x, c) => fwd(x, c)[1],
    inverseLogDet: (y, c) => inv(y, c)[1],
  };
  // Readable in a REPL and a notebook: the name, not a dump of methods (non-enumerable, so
  // spreading and equality checks see only the interface).
  const text = () => `Bijector ${spec.name}${b.autoregressive ? " (autoregressive)" : ""}`;
  Object.defineProperty(b, Symbol.for("nodejs.util.inspect.custom"), { value: text });
  Object.defineProperty(b, Symbol.for("Jupyter.display"), {
    value: () => ({ "text/plain": text() }),
  });
  return b;
}

/** Checks that an argument is a Bijector-like object (for public combinators). */
export function checkBijector(fn: string, argument: string, b: unknown): Bijector {
  const o = b as Partial<Bijector> | null;
  if (
    o === null ||
    typeof o !== "object" ||
    typeof o.forwardAndLogDet !== "function" ||
    typeof o.inverseAndLogDet !== "function"
  ) {
    throw new NbiError(
      `${fn}: ${argument} expected a bijector (an object with forwardAndLogDet and inverseAndLogDet), got ${describe(b)}`,
    );
  }
  return b as Bijector;
}
