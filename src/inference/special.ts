/**
 * Special functions for host-side float64 work (priors, likelihoods, importance weights), written
 * from the published mathematics: the Maclaurin series and Laplace continued fraction for erf/erfc
 * (Abramowitz & Stegun 7.1.5, 7.1.14), and Wichura's AS241 (PPND16) for the inverse normal CDF.
 * Tail functions work in log space so that far tails (|x| of 40 or 1000) stay finite and exact.
 */

const SQRT_PI = Math.sqrt(Math.PI);
const LOG_SQRT_2PI = 0.5 * Math.log(2 * Math.PI);

/** erf by its Maclaurin series: alternating but well conditioned for |x| < 1 (terms below 1). */
function erfSeries(x: number): number {
  const x2 = x * x;
  let term = x; // (-1)^n x^(2n+1) / n!
  let sum = x;
  for (let n = 1; n < 60; n++) {
    term *= -x2 / n;
    const add = term / (2 * n + 1);
    sum += add;
    if (Math.abs(add) <= 1e-17 * Math.abs(sum)) break;
  }
  return (2 / SQRT_PI) * sum;
}

/**
 * The scaled complement erfcx(x) = exp(x²) erfc(x) for x ≥ 1, by the even contraction of the
 * Laplace continued fraction (modified Lentz). It converges in ≤ 100 steps for x ≥ 1 and never
 * underflows, which is what makes log Φ exact far into the lower tail.
 */
function erfcxContinuedFraction(x: number): number {
  const tiny = 1e-300;
  const x2 = x * x;
  let f = 2 * x2 + 1;
  let c = f;
  let d = 0;
  for (let k = 1; k < 500; k++) {
    const a = -(2 * k - 1) * (2 * k);
    const b = 2 * x2 + 1 + 4 * k;
    d = b + a * d;
    if (d === 0) d = tiny;
    c = b + a / c;
    if (c === 0) c = tiny;
    d = 1 / d;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return (2 * x) / (f * SQRT_PI);
}

/**
 * exp(−x²) without the relative error of rounding x² (which grows like x²·ε): split x into a
 * short high part whose square is exact plus a small remainder.
 */
function expMinusSquare(x: number): number {
  const hi = Math.round(x * 16) / 16;
  return Math.exp(-hi * hi) * Math.exp(-(x - hi) * (x + hi));
}

/** The error function. */
export function erf(x: number): number {
  if (Number.isNaN(x)) return Number.NaN;
  const ax = Math.abs(x);
  if (ax < 1) return erfSeries(x);
  if (ax > 6) return x < 0 ? -1 : 1; // erfc(6) ≈ 2e-17 is below half an ulp of 1
  const r = 1 - expMinusSquare(ax) * erfcxContinuedFraction(ax);
  return x < 0 ? -r : r;
}

/** The complementary error function 1 − erf(x), accurate in relative terms for large x. */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return Number.NaN;
  if (x < 1) {
    if (x > -1) return 1 - erfSeries(x);
    return 2 - erfc(-x);
  }
  if (x > 27.3) return 0; // below the smallest subnormal
  return expMinusSquare(x) * erfcxContinuedFraction(x);
}

/** The standard normal CDF Φ(x). */
export function ndtr(x: number): number {
  return 0.5 * erfc(-x / Math.SQRT2);
}

/** log Φ(x), accurate in the far lower tail (e.g. x = −40 or −1e4, where Φ underflows). */
export function logNdtr(x: number): number {
  if (Number.isNaN(x)) return Number.NaN;
  if (x === Number.NEGATIVE_INFINITY) return Number.NEGATIVE_INFINITY;
  if (x >= 0) {
    const q = 0.5 * erfc(x / Math.SQRT2);
    return q === 0 ? 0 : Math.log1p(-q);
  }
  const z = -x / Math.SQRT2;
  if (z < 1) return Math.log(0.5 * erfc(z));
  // log(½ erfc z) = log ½ − z² + log erfcx(z), with z² = x²/2.
  return Math.log(0.5) - (x * x) / 2 + Math.log(erfcxContinuedFraction(z));
}

/** log φ(x), the standard normal log density. */
export function logNormalPdf(x: number): number {
  return -0.5 * x * x - LOG_SQRT_2PI;
}

// Wichura (1988), Algorithm AS241 PPND16: rational approximations with relative accuracy ~1e-16.
// The published 20-digit coefficients, written as the doubles they round to.
const A = [
  3.3871328727963665, 133.14166789178438, 1971.5909503065513, 13731.69376550946, 45921.95393154987,
  67265.7709270087, 33430.57558358813, 2509.0809287301227,
];
const B = [
  1, 42.31333070160091, 687.1870074920579, 5394.196021424751, 21213.794301586597, 39307.89580009271,
  28729.085735721943, 5226.495278852546,
];
const C = [
  1.4234371107496835, 4.630337846156546, 5.769497221460691, 3.6478483247632045, 1.2704582524523684,
  0.2417807251774506, 0.022723844989269184, 0.0007745450142783414,
];
const D = [
  1, 2.053191626637759, 1.6763848301838038, 0.6897673349851, 0.14810397642748008,
  0.015198666563616457, 0.0005475938084995345, 1.0507500716444169e-9,
];
const E = [
  6.657904643501103, 5.463784911164114, 1.7848265399172913, 0.29656057182850487,
  0.026532189526576124, 0.0012426609473880784, 0.000027115555687434876, 2.0103343992922881e-7,
];
const F = [
  1, 0.599832206555888, 0.1369298809227358, 0.014875361290850615, 0.0007868691311456133,
  0.000018463183175100548, 1.421511758316446e-7, 2.0442631033899397e-15,
];

function poly(c: readonly number[], x: number): number {
  let s = 0;
  for (let i = c.length - 1; i >= 0; i--) s = s * x + c[i]!;
  return s;
}

/** The inverse standard normal CDF Φ⁻¹(p): −∞ at 0, +∞ at 1, NaN outside [0, 1]. */
export function ndtri(p: number): number {
  if (!(p >= 0 && p <= 1)) return Number.NaN;
  const q = p - 0.5;
  if (Math.abs(q) <= 0.425) {
    const r = 0.180625 - q * q;
    return (q * poly(A, r)) / poly(B, r);
  }
  const tail = q < 0 ? p : 1 - p;
  if (tail === 0) return q < 0 ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
  let r = Math.sqrt(-Math.log(tail));
  let x: number;
  if (r <= 5) {
    r -= 1.6;
    x = poly(C, r) / poly(D, r);
  } else {
    r -= 5;
    x = poly(E, r) / poly(F, r);
  }
  return q < 0 ? -x : x;
}

/**
 * Φ⁻¹(exp(logP)): the inverse of logNdtr. Needed where p itself underflows (truncated normals far
 * in a tail). Near p = 1 it inverts the complement −expm1(logP) so no digits are lost.
 */
export function ndtriExp(logP: number): number {
  if (!(logP <= 0)) return Number.NaN;
  if (logP > -Math.LN2) return -ndtri(-Math.expm1(logP));
  if (logP > -680) return ndtri(Math.exp(logP));
  if (logP === Number.NEGATIVE_INFINITY) return Number.NEGATIVE_INFINITY;
  // Asymptotic start (Φ(x) ≈ φ(x)/|x|), then Newton on log Φ; d/dx log Φ = φ/Φ.
  const t = -2 * logP;
  let x = -Math.sqrt(t - Math.log(t) - Math.log(2 * Math.PI));
  for (let i = 0; i < 50; i++) {
    const l = logNdtr(x);
    const step = (l - logP) / Math.exp(logNormalPdf(x) - l);
    x -= step;
    if (Math.abs(step) <= 1e-16 * Math.abs(x)) break;
  }
  return x;
}

/** log Σ exp(xs), without overflow; −∞ for an empty list. */
export function logSumExp(xs: ArrayLike<number>): number {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < xs.length; i++) {
    const v = xs[i]!;
    if (Number.isNaN(v)) return Number.NaN;
    if (v > max) max = v;
  }
  if (!Number.isFinite(max)) return max;
  let sum = 0;
  for (let i = 0; i < xs.length; i++) sum += Math.exp(xs[i]! - max);
  return max + Math.log(sum);
}

/** log(1 − exp(d)) for d ≤ 0, accurate both near 0 and far below (Mächler's log1mexp). */
export function log1mExp(d: number): number {
  return d > -Math.LN2 ? Math.log(-Math.expm1(d)) : Math.log1p(-Math.exp(d));
}

/** Lanczos' log Γ(x) for x > 0 (g = 7, nine coefficients: ~15 digits). */
export function logGamma(x: number): number {
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
    -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6,
    1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - logGamma(1 - x);
  const z = x - 1;
  let sum = c[0]!;
  for (let i = 1; i < 9; i++) sum += c[i]! / (z + i);
  const t = z + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(sum);
}

/**
 * The regularized upper incomplete gamma function Q(a, x) = Γ(a, x) / Γ(a): the series for P
 * below x < a + 1 (where it converges fast), the continued fraction for Q above it.
 */
export function gammaQ(a: number, x: number): number {
  if (!(a > 0) || !(x >= 0)) return Number.NaN;
  if (x === 0) return 1;
  const logPrefix = a * Math.log(x) - x - logGamma(a);
  if (x < a + 1) {
    let term = 1 / a;
    let sum = term;
    for (let n = 1; n < 1000; n++) {
      term *= x / (a + n);
      sum += term;
      if (Math.abs(term) < Math.abs(sum) * 1e-16) break;
    }
    return Math.max(0, 1 - sum * Math.exp(logPrefix));
  }
  const tiny = 1e-300;
  let b = x + 1 - a;
  let c = 1 / tiny;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 1000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return Math.min(1, Math.exp(logPrefix) * h);
}

/** P(χ²_k ≤ x): the chi-square distribution function with k degrees of freedom. */
export function chiSquareCdf(x: number, k: number): number {
  return 1 - gammaQ(k / 2, x / 2);
}

/** The p-quantile of χ²_k (p in (0, 1)), by bisection on the distribution function. */
export function chiSquareQuantile(p: number, k: number): number {
  let lo = 0;
  let hi = k + 20 * Math.sqrt(2 * k) + 50;
  for (let i = 0; i < 200 && hi - lo > 1e-12 * hi; i++) {
    const mid = 0.5 * (lo + hi);
    if (chiSquareCdf(mid, k) < p) lo = mid;
    else hi = mid;
  }
  return 0.5 * (lo + hi);
}
