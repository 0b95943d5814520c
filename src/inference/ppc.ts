/**
 * Posterior predictive checks on host arrays (Gelman, Meng & Stern 1996): does data simulated
 * from the posterior look like the observation? Given replicated datasets y⁽ᵏ⁾ (the simulator
 * run at K posterior draws, with the measurement noise added), per data point the predictive
 * median and its 68% and 95% central bands, and one goodness-of-fit statistic with its posterior
 * predictive p-value.
 *
 * The discrepancy is the sum of squared standardised residuals against the predictive mean and
 * spread, T(y) = Σᵢ ((yᵢ − ȳᵢ) / sᵢ)². It needs no likelihood and no noise model beyond the
 * replicates themselves, so it works for a noise function or a stochastic simulator as well as
 * for Gaussian errors. Each replicate is scored against the predictive of the other K − 1
 * (leave-one-out mean and spread, exact in closed form), so it is treated as the observation is,
 * and p = #{k : T(y⁽ᵏ⁾) ≥ T(y_obs)} / K. A small p means the observation misses the predictive
 * in a way replicated data rarely do: the model does not describe it. Because the posterior was
 * fitted to the observation itself, p tends to be above 0.5 for a well-specified model (the
 * check is conservative); it flags misfits, it is not a calibrated test of fit.
 *
 * Light curves with gaps (`{ missing: true }`): a NaN in the observation is a missing point. The
 * bands are drawn at every point (what a measurement there would look like), while the
 * residuals, the statistic (of the observation and of every replicate alike) and the band
 * coverage run over the observed points only.
 */
import { fail, failText } from "../errors.js";

/** p below this: the model does not reproduce the observation. */
export const PPC_MISFIT_P = 0.01;
/** p below this: a marginal fit worth a look. */
export const PPC_CAUTION_P = 0.05;

/** A posterior predictive check of one observation: bands per data point and the fit statistic. */
export interface PredictiveCheck {
  /** [channels, length] of one observation (the bands and residuals are flattened the same way). */
  readonly dataShape: readonly [number, number];
  /** Replicated datasets the check is made of (simulations that failed are left out). */
  readonly nDraws: number;
  /** The observation (NaN at a missing point). */
  readonly observed: Float64Array;
  /** Points missing from the observation (NaN in `observed`); 0 without gaps. */
  readonly nMissing: number;
  /** Predictive median per data point. */
  readonly median: Float64Array;
  /** Predictive 16% quantile per data point (the 68% band's lower edge). */
  readonly lower68: Float64Array;
  /** Predictive 84% quantile per data point. */
  readonly upper68: Float64Array;
  /** Predictive 2.5% quantile per data point (the 95% band's lower edge). */
  readonly lower95: Float64Array;
  /** Predictive 97.5% quantile per data point. */
  readonly upper95: Float64Array;
  /** Predictive mean per data point. */
  readonly mean: Float64Array;
  /** Predictive standard deviation per data point. */
  readonly sd: Float64Array;
  /** observed − median per data point (what the residual plot shows; NaN where missing). */
  readonly residuals: Float64Array;
  /** (observed − mean) / sd per data point (what the statistic sums the squares of; NaN where missing). */
  readonly standardized: Float64Array;
  /** T(y_obs) = Σ standardized² over the observed points. */
  readonly statistic: number;
  /** T of each replicate against the predictive of the others. */
  readonly replicated: Float64Array;
  /** Posterior predictive p-value: the share of replicates with T ≥ T(y_obs). */
  readonly pValue: number;
  /** Share of observed points inside their 68% band (about 0.68 for a model that fits). */
  readonly coverage68: number;
  /** Share of observed points inside their 95% band. */
  readonly coverage95: number;
  /** ok (p ≥ 5%), caution (1–5%) or misfit (< 1%). */
  readonly fit: "ok" | "caution" | "misfit";
  /** One sentence for a person. */
  readonly message: string;
}

/** Options of `predictiveCheck`. */
export interface PredictiveCheckOptions {
  /**
   * NaN in the observation marks a missing point (a light curve with gaps): the statistic, the
   * residuals and the coverage leave it out, the bands are still drawn there. Default false: a
   * NaN is an error.
   */
  readonly missing?: boolean;
}

/**
 * The check from an observation and K replicated datasets (K × size, row-major; rows with a
 * non-finite value are dropped). `dataShape` is [channels, length] (default [1, size]). With
 * `{ missing: true }`, NaN in the observation marks a missing point.
 *
 * @example
 * ```ts
 * const check = predictiveCheck(xObs, replicas); // replicas: K × xObs.length
 * check.pValue;  // small when the model does not describe xObs
 * check.median;  // per data point; lower68/upper68, lower95/upper95 the bands
 * const gapped = predictiveCheck([1.2, Number.NaN, 0.7], reps3, undefined, { missing: true });
 * ```
 */
export function predictiveCheck(
  observed: ArrayLike<number>,
  replicas: Float64Array | Float32Array,
  dataShape?: readonly [number, number],
  options: PredictiveCheckOptions = {},
): PredictiveCheck {
  const fn = "predictiveCheck";
  if (typeof observed?.length !== "number" || observed.length === 0) {
    fail(fn, "observed", "a non-empty array of numbers", observed);
  }
  const y = Float64Array.from(observed);
  const size = y.length;
  if (typeof options !== "object" || options === null) fail(fn, "options", "an object", options);
  const gaps = options.missing === true;
  const badObs = y.findIndex((v) => !Number.isFinite(v) && !(gaps && Number.isNaN(v)));
  if (badObs >= 0) {
    fail(
      fn,
      `observed[${badObs}]`,
      gaps ? "a finite number or NaN (a missing point)" : "a finite number",
      y[badObs],
    );
  }
  // The points the statistic runs over: all of them, or the observed ones.
  const seen: number[] = [];
  for (let i = 0; i < size; i++) if (!Number.isNaN(y[i]!)) seen.push(i);
  if (seen.length === 0) {
    failText(fn, "observed", "at least one observed (non-NaN) point", "every point NaN");
  }
  const nMissing = size - seen.length;
  const shape = dataShape ?? ([1, size] as const);
  if (shape.length !== 2 || shape[0] * shape[1] !== size) {
    failText(
      fn,
      "dataShape",
      `[channels, length] with channels × length = ${size}`,
      `[${shape.join(", ")}]`,
    );
  }
  if (!(replicas instanceof Float64Array || replicas instanceof Float32Array)) {
    fail(fn, "replicas", "a Float64Array of K × observed.length values", replicas);
  }
  if (replicas.length % size !== 0) {
    failText(
      fn,
      "replicas",
      `K rows of ${size} values (one per replicated dataset)`,
      `${replicas.length} values`,
    );
  }
  const rows: number[] = [];
  for (let k = 0; k < replicas.length / size; k++) {
    let finite = true;
    for (let i = 0; i < size && finite; i++) finite = Number.isFinite(replicas[k * size + i]!);
    if (finite) rows.push(k);
  }
  const K = rows.length;
  if (K < 20) {
    failText(
      fn,
      "replicas",
      "at least 20 finite replicated datasets (the p-value needs them)",
      `${K}`,
    );
  }
  const rep = (k: number, i: number) => replicas[rows[k]! * size + i]!;

  const mean = new Float64Array(size);
  const sd = new Float64Array(size);
  const sum = new Float64Array(size);
  const sumSq = new Float64Array(size);
  const median = new Float64Array(size);
  const lower68 = new Float64Array(size);
  const upper68 = new Float64Array(size);
  const lower95 = new Float64Array(size);
  const upper95 = new Float64Array(size);
  const column = new Float64Array(K);
  for (let i = 0; i < size; i++) {
    let s = 0;
    for (let k = 0; k < K; k++) {
      const v = rep(k, i);
      column[k] = v;
      s += v;
    }
    const m = s / K;
    let ss = 0;
    for (let k = 0; k < K; k++) ss += (column[k]! - m) ** 2;
    sum[i] = s;
    sumSq[i] = ss;
    mean[i] = m;
    sd[i] = Math.sqrt(ss / (K - 1));
    column.sort();
    median[i] = quantile(column, 0.5);
    lower68[i] = quantile(column, 0.16);
    upper68[i] = quantile(column, 0.84);
    lower95[i] = quantile(column, 0.025);
    upper95[i] = quantile(column, 0.975);
  }
  const standardized = new Float64Array(size).fill(Number.NaN);
  const residuals = new Float64Array(size).fill(Number.NaN);
  let statistic = 0;
  let in68 = 0;
  let in95 = 0;
  for (const i of seen) {
    standardized[i] = term(y[i]! - mean[i]!, sd[i]!);
    statistic += standardized[i]! ** 2;
    residuals[i] = y[i]! - median[i]!;
    if (y[i]! >= lower68[i]! && y[i]! <= upper68[i]!) in68++;
    if (y[i]! >= lower95[i]! && y[i]! <= upper95[i]!) in95++;
  }
  // Leave-one-out moments: removing v from n values of mean m and squared deviations S gives
  // mean m' = (n·m − v)/(n − 1) and S' = S − (v − m)(v − m').
  const replicated = new Float64Array(K);
  let exceed = 0;
  for (let k = 0; k < K; k++) {
    let t = 0;
    for (const i of seen) {
      const v = rep(k, i);
      const m2 = (sum[i]! - v) / (K - 1);
      const s2 = Math.max(sumSq[i]! - (v - mean[i]!) * (v - m2), 0);
      t += term(v - m2, Math.sqrt(s2 / (K - 2))) ** 2;
    }
    replicated[k] = t;
    if (t >= statistic) exceed++;
  }
  const pValue = exceed / K;
  const fit = pValue < PPC_MISFIT_P ? "misfit" : pValue < PPC_CAUTION_P ? "caution" : "ok";
  const pText = exceed === 0 ? `p < ${(1 / K).toPrecision(2)}` : `p = ${pValue.toPrecision(2)}`;
  const points =
    nMissing === 0 ? `${size} points` : `${seen.length} observed points (${nMissing} missing)`;
  const stat = `T = ${statistic.toPrecision(3)} over ${points}, ${pText} from ${K} replicated datasets`;
  const message =
    fit === "misfit"
      ? `posterior predictive check fails (${stat}): data simulated from the posterior do not look like the observation; the model does not describe it`
      : fit === "caution"
        ? `posterior predictive check is marginal (${stat}): look at the residuals`
        : `posterior predictive check passes (${stat})`;
  return {
    dataShape: [shape[0], shape[1]],
    nDraws: K,
    observed: y,
    nMissing,
    median,
    lower68,
    upper68,
    lower95,
    upper95,
    mean,
    sd,
    residuals,
    standardized,
    statistic,
    replicated,
    pValue,
    coverage68: in68 / seen.length,
    coverage95: in95 / seen.length,
    fit,
    message,
  };
}

/** A residual over a spread; a point the predictive never varies at counts only if it misses. */
function term(residual: number, spread: number): number {
  if (spread > 0) return residual / spread;
  return residual === 0 ? 0 : residual > 0 ? Number.POSITIVE_INFINITY : Number.NEGATIVE_INFINITY;
}

/** Linear interpolation between order statistics (type 7, numpy's default). */
function quantile(sorted: Float64Array, p: number): number {
  const h = (sorted.length - 1) * p;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo]! + (h - lo) * (sorted[hi]! - sorted[lo]!);
}
