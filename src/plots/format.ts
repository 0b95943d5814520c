/**
 * Text for plot titles: an estimate with asymmetric errors, "A = 3.05 +0.20 −0.19", rounded to
 * two significant digits of the smaller error (the usual convention; "T = 10800 +1600 −1300"),
 * with a common power of ten pulled out for very large or very small numbers:
 * "L = (3.05 +0.20 −0.19)e+8". `lo` and `hi` are the lower and upper quantiles (e.g. 16% and
 * 84%), not the errors.
 *
 * @example
 * ```ts
 * plots.formatEstimate("A", 3.05, 2.86, 3.25); // "A = 3.05 +0.20 −0.19"
 * ```
 */
export function formatEstimate(label: string, median: number, lo: number, hi: number): string {
  const plus = Math.max(0, hi - median);
  const minus = Math.max(0, median - lo);
  const positive = [plus, minus].filter((e) => e > 0);
  const scaleOf = positive.length > 0 ? Math.min(...positive) : Math.abs(median);
  const magnitude = Math.max(Math.abs(median), plus, minus);
  const exponent =
    magnitude > 0 && (magnitude >= 1e5 || (scaleOf > 0 && scaleOf < 1e-4))
      ? Math.floor(Math.log10(magnitude))
      : 0;
  const unit = 10 ** exponent;
  const [m, p, n, s] = [median / unit, plus / unit, minus / unit, scaleOf / unit];
  // Digits after the point for two significant digits of s; negative: round to tens, hundreds.
  const digits = s > 0 ? Math.min(8, 1 - Math.floor(Math.log10(s))) : 2;
  const decimals = Math.max(0, digits);
  const round = (v: number): number =>
    digits < 0 ? Math.round(v / 10 ** -digits) * 10 ** -digits : v;
  const fixed = (v: number): string => {
    const text = round(v).toFixed(decimals);
    return /^-0(\.0*)?$/.test(text) ? text.slice(1) : text.replace("-", "\u2212");
  };
  const body = `${fixed(m)} +${fixed(p)} \u2212${fixed(n)}`;
  const exp = exponent >= 0 ? `e+${exponent}` : `e\u2212${-exponent}`;
  return `${label} = ${exponent === 0 ? body : `(${body})${exp}`}`;
}

/**
 * A d3-format specifier for axis labels over [lo, hi]: Vega's default (plain, with thousands
 * separators) for ordinary magnitudes, SI prefixes from 10⁴ ("12k"), and exponents beyond 10¹⁵
 * or below 10⁻³, where plain labels grow long or round to zero.
 */
export function axisFormat(lo: number, hi: number): string | undefined {
  const magnitude = Math.max(Math.abs(lo), Math.abs(hi));
  if (magnitude >= 1e15 || (magnitude > 0 && magnitude < 1e-3)) return "~e";
  if (magnitude >= 1e4) return "~s";
  return undefined;
}
