/**
 * float32 exp, tanh, log and log1p as short programs of float32 operations (Cephes' expf and
 * tanhf: range reduction, a degree-5/4 polynomial, a power-of-two scale; Cephes' logf: the
 * exponent split off the bits, a degree-8 polynomial in the mantissa; log1p from logf by
 * Goldberg's correction x·log(1 + x)/((1 + x) − 1)), written once here as
 * scalar JavaScript and once as WebAssembly SIMD (cpu/wasm/elementwise-simd.ts) from the same
 * constants and the same sequence of IEEE operations. Every step is one float32 operation
 * (`Math.fround` of the double result, which rounds as f32x4 does for +, −, ×, ÷; min, max,
 * floor and the power-of-two scales are exact), with no fused multiply-add on either side, so
 * the eager float32 kernels, the JavaScript fused loops and the SIMD fused loops give the same
 * bits. Accuracy: within 2 ulp of the correctly rounded result over the whole float32 range
 * (test/ops/math-f32.test.ts checks this and the edge values: ±0, ±inf, NaN, overflow, the
 * subnormal range). float64 keeps Math.exp and Math.tanh.
 */

const f = Math.fround;

/** Inputs are clamped to [EXP_LO, EXP_HI]: exp of either end already under- / overflows. */
export const EXP_LO = -104;
export const EXP_HI = 89;
export const LOG2E = f(Math.LOG2E);
/** ln 2 split: C1 has 9 significant bits, so k·C1 is exact for every k used. */
export const EXP_C1 = 0.693359375;
export const EXP_C2 = f(-2.1219444e-4);
/** exp(r) ≈ 1 + r + r²·P(r) on |r| ≤ ln2/2; P's coefficients from the highest power down. */
export const EXP_P: readonly number[] = [
  f(1.98756915e-4),
  f(1.3981999507e-3),
  f(8.3334519073e-3),
  f(4.1665795894e-2),
  f(1.6666665459e-1),
  f(5.0000001201e-1),
];
/** Below this |x|, tanh is the odd polynomial; above, 1 − 2 / (exp(2|x|) + 1). */
export const TANH_SMALL = 0.625;
/** tanh(a) ≈ a + a·z·Q(z) with z = a² on |a| < 0.625; Q's coefficients from the highest down. */
export const TANH_Q: readonly number[] = [
  f(-5.70498872745e-3),
  f(2.06390887954e-2),
  f(-5.37397155531e-2),
  f(1.33314422036e-1),
  f(-3.33332819422e-1),
];

const [P0, P1, P2, P3, P4, P5] = EXP_P as [number, number, number, number, number, number];
const [Q0, Q1, Q2, Q3, Q4] = TANH_Q as [number, number, number, number, number];
/** 2^j for j in [−75, 65] at POW2[j + 75]: the two factors of the final scale. */
const POW2 = Float64Array.from({ length: 141 }, (_, i) => 2 ** (i - 75));

/** exp of a float32 value, as a float32 value (see the module comment). */
export function expf32(x: number): number {
  const xc = Math.min(Math.max(x, EXP_LO), EXP_HI);
  const k = Math.floor(f(f(xc * LOG2E) + 0.5));
  const r = f(f(xc - f(k * EXP_C1)) - f(k * EXP_C2));
  const z = f(r * r);
  let p = f(f(P0 * r) + P1);
  p = f(f(p * r) + P2);
  p = f(f(p * r) + P3);
  p = f(f(p * r) + P4);
  p = f(f(p * r) + P5);
  const y = f(f(f(p * z) + r) + 1);
  // 2^k in two exact factors, so that subnormal results round once, as the SIMD form does.
  // (NaN: k is NaN and ki 0; y is NaN already.)
  const ki = k | 0;
  const k1 = ki >> 1;
  return f(f(y * POW2[k1 + 75]!) * POW2[ki - k1 + 75]!);
}

/** tanh of a float32 value, as a float32 value (see the module comment). */
export function tanhf32(x: number): number {
  const a = Math.abs(x);
  let t: number;
  if (a < TANH_SMALL) {
    const z = f(a * a);
    let q = f(f(Q0 * z) + Q1);
    q = f(f(q * z) + Q2);
    q = f(f(q * z) + Q3);
    q = f(f(q * z) + Q4);
    t = f(f(f(q * z) * a) + a);
  } else {
    t = f(1 - f(2 / f(expf32(f(a + a)) + 1)));
  }
  // The sign of x (t ≥ 0 or NaN): −0 stays −0.
  return x < 0 || (x === 0 && 1 / x < 0) ? -t : t;
}

/** √½: mantissas below it are doubled (and the exponent lowered) so that m − 1 is small. */
export const LOG_SQRTHF = f(Math.SQRT1_2);
/** log(1 + t) ≈ t − t²/2 + t³·R(t) on −0.29 ≤ t < 0.41; R's coefficients from the highest down. */
export const LOG_R: readonly number[] = [
  f(7.0376836292e-2),
  f(-1.151461031e-1),
  f(1.167699874e-1),
  f(-1.2420140846e-1),
  f(1.4249322787e-1),
  f(-1.6668057665e-1),
  f(2.0000714765e-1),
  f(-2.4999993993e-1),
  f(3.3333331174e-1),
];
/** The smallest normal float32; subnormal inputs are scaled by 2^23 first (exactly). */
export const F32_MIN_NORMAL = 2 ** -126;
export const TWO_POW_23 = 2 ** 23;

const scratchF = new Float32Array(1);
const scratchI = new Int32Array(scratchF.buffer);

/** log of a float32 value, as a float32 value (see the module comment). */
export function logf32(x: number): number {
  if (!(x >= 0)) return Number.NaN; // negative or NaN
  if (x === 0) return Number.NEGATIVE_INFINITY;
  if (x === Number.POSITIVE_INFINITY) return x;
  const sub = x < F32_MIN_NORMAL;
  scratchF[0] = sub ? x * TWO_POW_23 : x;
  const b = scratchI[0]!;
  let e = ((b >> 23) & 0xff) - 126 - (sub ? 23 : 0);
  scratchI[0] = (b & 0x007fffff) | 0x3f000000; // the mantissa in [0.5, 1)
  const m = scratchF[0]!;
  let t: number;
  if (m < LOG_SQRTHF) {
    e -= 1;
    t = f(f(m + m) - 1);
  } else {
    t = f(m - 1);
  }
  const z = f(t * t);
  let p = LOG_R[0]!;
  for (let i = 1; i < LOG_R.length; i++) p = f(f(p * t) + LOG_R[i]!);
  let y = f(f(p * t) * z);
  y = f(y + f(e * EXP_C2));
  y = f(y + f(-0.5 * z));
  return f(f(t + y) + f(e * EXP_C1));
}

/** log(1 + x) of a float32 value, as a float32 value (see the module comment). */
export function log1pf32(x: number): number {
  const u = f(1 + x);
  if (u === 1) return x; // |x| below half an ulp of 1 (and ±0): log1p(x) rounds to x
  if (u === Number.POSITIVE_INFINITY) return u;
  return f(logf32(u) * f(x / f(u - 1)));
}

/** The helpers generated JavaScript loops may call, by name (expressions such as "expf32(a)"). */
export const F32_MATH: Readonly<Record<string, (x: number) => number>> = {
  expf32,
  tanhf32,
  logf32,
  log1pf32,
};
