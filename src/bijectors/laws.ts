/**
 * The laws every bijector satisfies, as plain checks that throw an NbiError naming the law, the
 * bijector and the worst deviation. They carry no test-framework dependency, so a property test of
 * your own bijector is a few lines with fast-check (or anything else):
 *
 * ```ts
 * fc.assert(fc.property(fc.array(fc.double({ min: -3, max: 3, noNaN: true }), { minLength: 6, maxLength: 6 }), (v) => {
 *   const x = np.reshape(np.array(v, { dtype: "float64" }), [3, 2]);
 *   bijectorLaws.all(myBijector, x);
 * }), { numRuns: 50 });
 * ```
 *
 * Inputs are batches `[n, d]` in the forward map's domain (float64 for the Jacobian law). The checks
 * read values synchronously, so they run on the CPU backend.
 */
import { NbiError } from "../errors.js";
import * as np from "../ops/np.js";
import type { Array } from "../trace/array.js";
import { jacfwd, vmap } from "../transforms/api.js";
import { jit } from "../transforms/jit.js";
import { chain } from "./combinators.js";
import { identity } from "./elementary.js";
import { bijectorMonoid } from "./monoid.js";
import type { Bijector } from "./types.js";

/** The context and tolerances of a `bijectorLaws` check. */
export interface LawOptions {
  /** Conditioning context [n, contextDim] (one row per row of x), for conditional bijectors. */
  context?: Array;
  /** Relative tolerance (default 1e-6 for float64 inputs, 2e-3 for float32). */
  rtol?: number;
  /** Absolute tolerance (default 1e-8 for float64 inputs, 2e-4 for float32). */
  atol?: number;
}

function tolerances(x: Array, o?: LawOptions): [number, number] {
  const f64 = x.dtype === "float64";
  return [o?.rtol ?? (f64 ? 1e-6 : 2e-3), o?.atol ?? (f64 ? 1e-8 : 2e-4)];
}

const values = (a: Array): number[] => globalThis.Array.from(a.dataSync() as ArrayLike<number>);

/** Throws unless a ≈ b elementwise (|a − b| ≤ atol + rtol·|b|; NaN never passes). */
function expectClose(
  law: string,
  b: Bijector,
  what: string,
  actual: Array | number[],
  expected: Array | number[],
  rtol: number,
  atol: number,
): void {
  const av = globalThis.Array.isArray(actual) ? actual : values(actual);
  const ev = globalThis.Array.isArray(expected) ? expected : values(expected);
  if (av.length !== ev.length) {
    throw new NbiError(
      `bijectorLaws.${law}: ${b.name}: ${what} has ${av.length} values, expected ${ev.length}`,
    );
  }
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < av.length; i++) {
    const a = av[i]!;
    const e = ev[i]!;
    const excess = Math.abs(a - e) - (atol + rtol * Math.abs(e));
    const bad = Number.isNaN(a) || Number.isNaN(e) || (a !== e && !(excess <= 0));
    if (bad && (worst < 0 || !(excess <= worstExcess))) {
      worst = i;
      worstExcess = excess;
    }
  }
  if (worst >= 0) {
    throw new NbiError(
      `bijectorLaws.${law}: ${b.name}: ${what} differs at element ${worst}: got ${av[worst]}, expected ${ev[worst]} (rtol ${rtol}, atol ${atol})`,
    );
  }
}

function rows(x: Array): number {
  if (x.ndim !== 2)
    throw new NbiError(
      `bijectorLaws: x expected a batch [n, d], got shape [${x.shape.join(", ")}]`,
    );
  return x.shape[0]!;
}

/** log |det M| of a row-major d×d matrix, by LU with partial pivoting in float64. */
export function logAbsDet(m: readonly number[], d: number): number {
  const a = Float64Array.from(m);
  let logDet = 0;
  for (let k = 0; k < d; k++) {
    let p = k;
    for (let i = k + 1; i < d; i++) if (Math.abs(a[i * d + k]!) > Math.abs(a[p * d + k]!)) p = i;
    const pivot = a[p * d + k]!;
    if (pivot === 0) return -Infinity;
    if (p !== k) {
      for (let j = 0; j < d; j++) {
        const t = a[k * d + j]!;
        a[k * d + j] = a[p * d + j]!;
        a[p * d + j] = t;
      }
    }
    logDet += Math.log(Math.abs(pivot));
    for (let i = k + 1; i < d; i++) {
      const f = a[i * d + k]! / pivot;
      for (let j = k + 1; j < d; j++) a[i * d + j]! -= f * a[k * d + j]!;
    }
  }
  return logDet;
}

const row = (a: Array | undefined, i: number) => (a === undefined ? undefined : np.index(a, i, 0));

/** The per-row Jacobians ∂y/∂x [d, d] of the forward map (jacfwd). */
function jacobians(b: Bijector, x: Array, context?: Array): number[][] {
  const n = rows(x);
  return globalThis.Array.from({ length: n }, (_, i) => {
    const c = row(context, i);
    return values(jacfwd((v: Array) => b.forward(v, c))(np.index(x, i, 0)) as Array);
  });
}

/** Both directions of `b`, run through a function transform (vmap, jit), equal the plain calls. */
function agreesUnder(
  law: string,
  label: string,
  transform: <A extends unknown[], R>(f: (...args: A) => R) => (...args: A) => R,
  b: Bijector,
  x: Array,
  options?: LawOptions,
): void {
  const [rtol, atol] = tolerances(x, options);
  const c = options?.context;
  const y = b.forward(x, c);
  for (const dir of ["forwardAndLogDet", "inverseAndLogDet"] as const) {
    const input = dir === "forwardAndLogDet" ? x : y;
    const [v, ld] = b[dir](input, c);
    const [tv, tld] =
      c === undefined
        ? transform((xi: Array) => b[dir](xi))(input)
        : transform((xi: Array, ci: Array) => b[dir](xi, ci))(input, c);
    expectClose(law, b, `${label}(${dir}) value`, tv, v, rtol, atol);
    expectClose(law, b, `${label}(${dir}) log-det`, tld, ld, rtol, atol);
  }
}

/**
 * The bijector laws as checks that throw an NbiError naming the law, the bijector and the worst
 * deviation; `all` runs every single-bijector law. Inputs are batches `[n, d]` (float64 for the
 * Jacobian law).
 *
 * @example
 * ```ts
 * const x = np.array([[0.1, -0.3], [1.2, 0.5]], { dtype: "float64" });
 * bijectorLaws.all(bijectors.chain([bijectors.shift(1), bijectors.tanh()]), x);
 * bijectorLaws.chainAddsLogDets(bijectors.exp(), bijectors.scale(2), x);
 * bijectorLaws.monoid(bijectors.exp(), bijectors.scale(2), bijectors.shift(1), x);
 * ```
 */
export const bijectorLaws = {
  /** inverse(forward(x)) ≈ x, and the derived methods agree with forwardAndLogDet/inverseAndLogDet. */
  roundTrip(b: Bijector, x: Array, options?: LawOptions): void {
    const [rtol, atol] = tolerances(x, options);
    const c = options?.context;
    const [y, ld] = b.forwardAndLogDet(x, c);
    const [x2, ild] = b.inverseAndLogDet(y, c);
    expectClose("roundTrip", b, "inverse(forward(x))", x2, x, rtol * 10, atol * 10);
    expectClose("roundTrip", b, "forward(x)", b.forward(x, c), y, 0, 0);
    expectClose("roundTrip", b, "forwardLogDet(x)", b.forwardLogDet(x, c), ld, 0, 0);
    expectClose("roundTrip", b, "inverse(y)", b.inverse(y, c), x2, 0, 0);
    expectClose("roundTrip", b, "inverseLogDet(y)", b.inverseLogDet(y, c), ild, 0, 0);
  },

  /** forwardLogDet(x) = −inverseLogDet(forward(x)). */
  logDetAntisymmetry(b: Bijector, x: Array, options?: LawOptions): void {
    const [rtol, atol] = tolerances(x, options);
    const c = options?.context;
    const [y, ld] = b.forwardAndLogDet(x, c);
    expectClose(
      "logDetAntisymmetry",
      b,
      "−inverseLogDet(forward(x))",
      np.neg(b.inverseLogDet(y, c)),
      ld,
      rtol * 10,
      atol * 10,
    );
  },

  /** forwardLogDet(x) = log |det jacfwd(forward)(x)| per row (use float64 inputs). */
  logDetMatchesJacobian(b: Bijector, x: Array, options?: LawOptions): void {
    const [rtol, atol] = tolerances(x, options);
    const d = x.shape[1]!;
    const jac = jacobians(b, x, options?.context);
    const expected = jac.map((j) => logAbsDet(j, d));
    expectClose(
      "logDetMatchesJacobian",
      b,
      "forwardLogDet(x)",
      b.forwardLogDet(x, options?.context),
      expected,
      rtol * 100,
      atol * 100,
    );
  },

  /** For autoregressive bijectors, ∂y_i/∂x_j = 0 for j > i (lower-triangular Jacobian). */
  triangularJacobian(b: Bijector, x: Array, options?: LawOptions): void {
    const d = x.shape[1]!;
    jacobians(b, x, options?.context).forEach((j, r) => {
      for (let i = 0; i < d; i++) {
        for (let k = i + 1; k < d; k++) {
          const v = j[i * d + k]!;
          if (!(Math.abs(v) <= 1e-12)) {
            throw new NbiError(
              `bijectorLaws.triangularJacobian: ${b.name}: ∂y${i}/∂x${k} = ${v} at row ${r}, expected 0 (autoregressive)`,
            );
          }
        }
      }
    });
  },

  /** chain([outer, inner]) = outer ∘ inner, with log-dets adding. */
  chainAddsLogDets(outer: Bijector, inner: Bijector, x: Array, options?: LawOptions): void {
    const [rtol, atol] = tolerances(x, options);
    const c = options?.context;
    const composed = chain([outer, inner]);
    const [y1, l1] = inner.forwardAndLogDet(x, c);
    const [y2, l2] = outer.forwardAndLogDet(y1, c);
    const [y, ld] = composed.forwardAndLogDet(x, c);
    expectClose("chainAddsLogDets", composed, "forward", y, y2, rtol, atol);
    expectClose("chainAddsLogDets", composed, "forwardLogDet", ld, np.add(l1, l2), rtol, atol);
    const [x2, ild] = composed.inverseAndLogDet(y, c);
    expectClose("chainAddsLogDets", composed, "inverse", x2, x, rtol * 10, atol * 10);
    expectClose(
      "chainAddsLogDets",
      composed,
      "inverseLogDet",
      ild,
      np.neg(ld),
      rtol * 10,
      atol * 10,
    );
  },

  /** vmap over rows of forwardAndLogDet and inverseAndLogDet equals the batched call. */
  vmapAgrees(b: Bijector, x: Array, options?: LawOptions): void {
    agreesUnder("vmapAgrees", "vmap", vmap, b, x, options);
  },

  /** jit(forwardAndLogDet) and jit(inverseAndLogDet) equal the eager calls. */
  jitAgrees(b: Bijector, x: Array, options?: LawOptions): void {
    agreesUnder("jitAgrees", "jit", jit, b, x, options);
  },

  /**
   * The monoid laws of composition (`bijectorMonoid`): (a·b)·c = a·(b·c), and e·a = a = a·e with
   * e the identity, each compared by forward values, forward log-dets and inverse values at x.
   */
  monoid(a: Bijector, b: Bijector, c: Bijector, x: Array, options?: LawOptions): void {
    const [rtol, atol] = tolerances(x, options);
    const ctx = options?.context;
    const { concat, empty } = bijectorMonoid;
    const same = (law: string, p: Bijector, q: Bijector) => {
      const [yp, lp] = p.forwardAndLogDet(x, ctx);
      const [yq, lq] = q.forwardAndLogDet(x, ctx);
      expectClose(law, p, `forward, against ${q.name}`, yp, yq, rtol, atol);
      expectClose(law, p, `forwardLogDet, against ${q.name}`, lp, lq, rtol, atol);
      expectClose(
        law,
        p,
        `inverse, against ${q.name}`,
        p.inverse(yp, ctx),
        q.inverse(yq, ctx),
        rtol * 10,
        atol * 10,
      );
    };
    same("monoid (associativity)", concat(concat(a, b), c), concat(a, concat(b, c)));
    same("monoid (left identity)", concat(empty, a), a);
    same("monoid (right identity)", concat(a, empty), a);
    same("monoid (identity in a chain)", chain([a, identity(), b]), concat(a, b));
  },

  /**
   * Every single-bijector law: roundTrip, logDetAntisymmetry, logDetMatchesJacobian (float64
   * inputs only), triangularJacobian (when `b.autoregressive`), vmapAgrees, jitAgrees.
   */
  all(b: Bijector, x: Array, options?: LawOptions): void {
    bijectorLaws.roundTrip(b, x, options);
    bijectorLaws.logDetAntisymmetry(b, x, options);
    if (x.dtype === "float64") bijectorLaws.logDetMatchesJacobian(b, x, options);
    if (b.autoregressive) bijectorLaws.triangularJacobian(b, x, options);
    bijectorLaws.vmapAgrees(b, x, options);
    bijectorLaws.jitAgrees(b, x, options);
  },
};
