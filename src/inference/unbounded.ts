/**
 * The surrogate's flow lives on an unbounded space: each parameter with a bounded prior support is
 * mapped there first, so q(θ | x) = q_u(u | x) · |du/dθ| has no mass outside the prior. A flow on
 * θ itself leaks: APT's atomic loss never sees draws outside the support, and on sbibm's 10-D box
 * the surrogate put 98% of its draws outside it.
 *
 * Both ends finite: the probit map u = Φ⁻¹((θ − lo) / (hi − lo)) (the default of new fits), or
 * the scaled logit u = log(θ − lo) − log(hi − θ) (fits saved before it, and `flowSpace: "logit"`).
 * The probit suits a flow with a normal base: a posterior whose density stays above zero at a
 * bound (a parameter the data leave unconstrained, a likelihood flat towards an edge) maps to a
 * Gaussian tail, which the base has, where the logit gives an exponential tail that no affine
 * Gaussian flow reaches, so importance weights p/q blow up at the edges (sbibm's SLCP:
 * bench/RESULTS.md). The uniform prior itself maps to N(0, 1). One end finite: u = ±log of the
 * distance to it.
 */
import type { HostBijector } from "../bijectors/host.js";
import { logNormalPdf, ndtr, ndtri } from "./special.js";

/** Bounds per parameter (±Infinity where open); both unset: the identity. */
export interface SupportBounds {
  /** Lower bound per parameter. */
  readonly thetaLower?: Float64Array;
  /** Upper bound per parameter. */
  readonly thetaUpper?: Float64Array;
  /** The map of parameters bounded at both ends (absent: "logit", as fits saved before it). */
  readonly boundedMap?: BoundedMap;
}

/** How a parameter bounded at both ends is mapped to the real line (see the file's comment). */
export type BoundedMap = "logit" | "probit";

/** θ's image and the map's log-Jacobian (see `toUnbounded`). */
export interface UnboundedImage {
  /** φ(θ), n × d row-major. */
  readonly u: Float64Array;
  /** log |det ∂u/∂θ| per row. */
  readonly logJac: Float64Array;
}

/** How far inside the bounds θ is clamped (a draw exactly on a bound has no finite image). */
const EDGE = 1e-12;

/** The clamping band next to a parameter's finite bounds (`toUnbounded` clamps, `mapsExactly` flags). */
const bandOf = (a: number, b: number): number =>
  Number.isFinite(a) && Number.isFinite(b) ? EDGE * (b - a) : EDGE;

/**
 * u = φ(θ) for n × d rows, and log |det ∂u/∂θ| per row.
 *
 * @example
 * ```ts
 * const { u, logJac } = inference.toUnbounded({ thetaLower: Float64Array.of(0), thetaUpper: Float64Array.of(1) }, Float64Array.of(0.5), 1);
 * // u[0] = 0, logJac[0] = log 4
 * ```
 */
export function toUnbounded(bounds: SupportBounds, theta: Float64Array, d: number): UnboundedImage {
  const n = theta.length / d;
  const lo = bounds.thetaLower;
  const hi = bounds.thetaUpper;
  const logJac = new Float64Array(n);
  if (!lo || !hi) return { u: theta, logJac };
  const probit = bounds.boundedMap === "probit";
  const u = new Float64Array(theta.length);
  for (let j = 0; j < d; j++) {
    const a = lo[j]!;
    const b = hi[j]!;
    const lower = Number.isFinite(a);
    const upper = Number.isFinite(b);
    const band = bandOf(a, b);
    for (let i = 0; i < n; i++) {
      const t = theta[i * d + j]!;
      if (lower && upper && probit) {
        const w = b - a;
        // Φ⁻¹ of the nearer end's distance, so no digits are lost next to the upper bound.
        const below = Math.max(t - a, band) / w;
        const above = Math.max(b - t, band) / w;
        const v = below <= above ? ndtri(below) : -ndtri(above);
        u[i * d + j] = v;
        logJac[i] -= Math.log(w) + logNormalPdf(v);
      } else if (lower && upper) {
        const w = b - a;
        const below = Math.max(t - a, band);
        const above = Math.max(b - t, band);
        u[i * d + j] = Math.log(below) - Math.log(above);
        logJac[i] += Math.log(w) - Math.log(below) - Math.log(above);
      } else if (lower) {
        const below = Math.max(t - a, band);
        u[i * d + j] = Math.log(below);
        logJac[i] -= Math.log(below);
      } else if (upper) {
        const above = Math.max(b - t, band);
        u[i * d + j] = -Math.log(above);
        logJac[i] -= Math.log(above);
      } else u[i * d + j] = t;
    }
  }
  return { u, logJac };
}

/**
 * θ = φ⁻¹(u) for n × d rows (in place on a copy).
 *
 * @example
 * ```ts
 * inference.fromUnbounded({ thetaLower: Float64Array.of(0), thetaUpper: Float64Array.of(1) }, Float64Array.of(0), 1); // [0.5]
 * ```
 */
export function fromUnbounded(bounds: SupportBounds, u: Float64Array, d: number): Float64Array {
  const lo = bounds.thetaLower;
  const hi = bounds.thetaUpper;
  if (!lo || !hi) return u;
  const probit = bounds.boundedMap === "probit";
  const n = u.length / d;
  const theta = new Float64Array(u.length);
  for (let j = 0; j < d; j++) {
    const a = lo[j]!;
    const b = hi[j]!;
    const lower = Number.isFinite(a);
    const upper = Number.isFinite(b);
    for (let i = 0; i < n; i++) {
      const v = u[i * d + j]!;
      theta[i * d + j] =
        lower && upper && probit
          ? v < 0
            ? a + (b - a) * ndtr(v)
            : b - (b - a) * ndtr(-v)
          : lower && upper
            ? a + (b - a) / (1 + Math.exp(-v))
            : lower
              ? a + Math.exp(v)
              : upper
                ? b - Math.exp(-v)
                : v;
    }
  }
  return theta;
}

/**
 * The support map φ as a host bijector (θ ↦ u with log |det ∂u/∂θ|), the first link of the chain
 * from a user's parameters to a flow's coordinates (see bijectors/host.ts).
 *
 * @example
 * ```ts
 * const phi = inference.supportMap({ thetaLower: Float64Array.of(0), thetaUpper: Float64Array.of(1), boundedMap: "probit" });
 * phi.forwardAndLogDet(Float64Array.of(0.5), 1); // value [0], logDet [log √(2π)]
 * ```
 */
export function supportMap(bounds: SupportBounds): HostBijector {
  return {
    name: `supportMap(${isBounded(bounds) ? (bounds.boundedMap ?? "logit") : "identity"})`,
    forwardAndLogDet(theta, d) {
      const { u, logJac } = toUnbounded(bounds, theta, d);
      return { value: u, logDet: logJac };
    },
    inverse: (u, d) => fromUnbounded(bounds, u, d),
  };
}

/**
 * 1 for rows the map takes to the real line exactly, 0 for rows within the clamping band next to
 * a finite bound (closer than 1e-12 of the interval's width, or 1e-12 of a one-sided bound, where
 * `toUnbounded` clamps). A flow's draw far out in its tail rounds onto the bound itself; its image
 * there is the clamp, not the point drawn, so a density evaluated at it is not the density that
 * drew it, and one such draw took a whole importance-weight set (bench/RESULTS.md). Proposals on
 * the unbounded image are therefore restricted to these rows: their draws outside are redrawn
 * (the mass left out is estimated with the rest of the support's) and their density is zero there.
 */
export function mapsExactly(bounds: SupportBounds, theta: Float64Array, d: number): Uint8Array {
  const n = theta.length / d;
  const out = new Uint8Array(n).fill(1);
  const lo = bounds.thetaLower;
  const hi = bounds.thetaUpper;
  if (!lo || !hi) return out;
  for (let j = 0; j < d; j++) {
    const a = lo[j]!;
    const b = hi[j]!;
    const lower = Number.isFinite(a);
    const upper = Number.isFinite(b);
    if (!lower && !upper) continue;
    const band = bandOf(a, b);
    for (let i = 0; i < n; i++) {
      const t = theta[i * d + j]!;
      if ((lower && !(t - a >= band)) || (upper && !(b - t >= band))) out[i] = 0;
    }
  }
  return out;
}

/** True when some parameter has a finite bound (the map is not the identity). */
export function isBounded(bounds: SupportBounds): boolean {
  const lo = bounds.thetaLower;
  const hi = bounds.thetaUpper;
  if (!lo || !hi) return false;
  return lo.some(Number.isFinite) || hi.some(Number.isFinite);
}
