/**
 * Bijectors on the host in float64, over n × d row-major `Float64Array` rows: the maps between a
 * user's parameters θ and the coordinates a posterior flow is trained in (the prior's support map,
 * then the standardisation). A surrogate's density is q(θ | x) = q_s(s | x) · |det ∂s/∂θ| with
 * s = T(θ): the device flow gives q_s, a `HostBijector` chain gives T and its log-det, so the
 * Jacobian of the scales is summed by construction instead of being corrected for by hand.
 *
 * Why these are not device `Bijector`s: importance weights p(θ)L(x|θ)/q(θ|x) are computed on the
 * host in float64 (a log-weight's error is the error of log q), the probit support map needs
 * Φ⁻¹ and Φ next to a bound, where θ − lo is 1e-12 of the interval (float32 cannot hold that
 * offset beside lo, and there are no device primitives for Φ), and the map runs once per draw,
 * outside the traced training step (the training data are mapped once per round).
 */
import { fail } from "../errors.js";

/** A host bijector's output: the value (n × d) and log |det J| per row (n). */
export interface HostValueAndLogDet {
  /** y = f(x), n × d row-major. */
  readonly value: Float64Array;
  /** log |det ∂y/∂x| per row. */
  readonly logDet: Float64Array;
}

/** An invertible map of n × d float64 rows with its log |det J| per row. */
export interface HostBijector {
  /** A short description, for error messages. */
  readonly name: string;
  /** y = f(x) for n × d rows and log |det ∂y/∂x| per row. */
  forwardAndLogDet(x: Float64Array, d: number): HostValueAndLogDet;
  /** x = f⁻¹(y) for n × d rows. */
  inverse(y: Float64Array, d: number): Float64Array;
}

/**
 * Composition in `chain`'s order (that of function composition): `hostChain([b1, b2])` is b1 ∘ b2,
 * its forward applies b2 first; log-dets add.
 *
 * @example
 * ```ts
 * const t = bijectors.hostChain([bijectors.hostStandardise(Float64Array.of(1), Float64Array.of(2)), support]);
 * const { value, logDet } = t.forwardAndLogDet(theta, 1); // support map first, then (u − 1) / 2
 * ```
 */
export function hostChain(bs: readonly HostBijector[]): HostBijector {
  if (!Array.isArray(bs) || bs.length === 0) {
    fail("hostChain", "bs", "a non-empty list of host bijectors", bs);
  }
  const members = [...bs];
  return {
    name: `hostChain([${members.map((b) => b.name).join(", ")}])`,
    forwardAndLogDet(x, d) {
      let value = x;
      let logDet: Float64Array | null = null;
      for (let k = members.length - 1; k >= 0; k--) {
        const r = members[k]!.forwardAndLogDet(value, d);
        value = r.value;
        if (logDet === null) logDet = Float64Array.from(r.logDet);
        else for (let i = 0; i < logDet.length; i++) logDet[i]! += r.logDet[i]!;
      }
      return { value, logDet: logDet! };
    },
    inverse(y, d) {
      let value = y;
      for (const b of members) value = b.inverse(value, d);
      return value;
    },
  };
}

/**
 * Per-column standardisation s = (u − mean) / std (std > 0); log |det| = −Σ log std for every row.
 *
 * @example
 * ```ts
 * const z = bijectors.hostStandardise(Float64Array.of(1, 0), Float64Array.of(2, 1));
 * z.forwardAndLogDet(Float64Array.of(3, 5), 2); // value [1, 5], logDet [−log 2]
 * ```
 */
export function hostStandardise(mean: Float64Array, std: Float64Array): HostBijector {
  if (mean.length !== std.length) {
    fail("hostStandardise", "std", `${mean.length} scales (one per mean)`, std.length);
  }
  const bad = std.findIndex((s) => !(s > 0 && Number.isFinite(s)));
  if (bad >= 0) fail("hostStandardise", `std[${bad}]`, "a positive finite number", std[bad]);
  let logScale = 0;
  for (const s of std) logScale += Math.log(s);
  const check = (where: string, v: Float64Array, d: number) => {
    if (d !== mean.length || v.length % d !== 0) {
      fail(`hostStandardise.${where}`, "d", `${mean.length} columns dividing ${v.length}`, d);
    }
  };
  return {
    name: "hostStandardise",
    forwardAndLogDet(u, d) {
      check("forwardAndLogDet", u, d);
      const value = new Float64Array(u.length);
      for (let i = 0; i < u.length; i++) value[i] = (u[i]! - mean[i % d]!) / std[i % d]!;
      return { value, logDet: new Float64Array(u.length / d).fill(-logScale) };
    },
    inverse(s, d) {
      check("inverse", s, d);
      const value = new Float64Array(s.length);
      for (let i = 0; i < s.length; i++) value[i] = s[i]! * std[i % d]! + mean[i % d]!;
      return value;
    },
  };
}
