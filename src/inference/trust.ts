/**
 * One verdict per observation from the two kinds of evidence `predict` has: how far the
 * observation lies from the training simulations (the out-of-distribution alarm, ood.ts) and how
 * healthy its importance weights are (n_eff, efficiency, Pareto k̂). The verdict is the worse of
 * the two, because they fail independently: good weights cannot vouch for a model that never
 * produced data like this observation (a misspecified simulator or a too-narrow prior still gives
 * an exact posterior of the wrong model), and a typical observation does not make heavy-tailed
 * weights reliable.
 *
 * Weight rules (Vehtari et al. 2024 for k̂; the rest are the smallest samples whose quantiles are
 * worth quoting):
 *
 * | | caution | do not trust |
 * |---|---|---|
 * | Pareto k̂ | 0.5 – 0.7 | > 0.7 |
 * | n_eff | < 50, or below the requested neffMin | < 10 |
 * | efficiency n_eff / draws | < 5% | |
 */
import { PARETO_K_UNRELIABLE } from "./importance.js";
import type { OodReport, TrustLevel } from "./ood.js";

/** The importance weights' diagnostics the verdict reads (PredictResult's). */
export interface WeightHealth {
  /** nbi's n_eff. */
  readonly ess: number;
  /** n_eff over the draws. */
  readonly efficiency: number;
  /** PSIS k̂ (NaN with 20 or fewer valid draws). */
  readonly paretoK: number;
  /** The n_eff the user asked for (0: none). */
  readonly target: number;
}

/** The verdict on one observation's posterior, with the evidence behind it. */
export interface TrustReport {
  /** The worse of the distance's level and the weights' level. */
  readonly verdict: TrustLevel;
  /** The out-of-distribution alarm's report. */
  readonly ood: OodReport;
  /** The importance weights' level and why (absent for unweighted, amortized draws). */
  readonly weights?: WeightVerdict;
  /** One paragraph for a person: the verdict and its reasons. */
  readonly message: string;
}

const RANK: Record<TrustLevel, number> = { ok: 0, caution: 1, "do-not-trust": 2 };
const worse = (a: TrustLevel, b: TrustLevel): TrustLevel => (RANK[a] >= RANK[b] ? a : b);

/** The importance weights' verdict. */
export interface WeightVerdict {
  /** How far the weights can be trusted. */
  readonly level: TrustLevel;
  /** Why, one sentence per finding (empty when ok). */
  readonly reasons: readonly string[];
}

/** The weights' level and reasons by the table in the module comment. */
export function weightLevel(w: WeightHealth): WeightVerdict {
  let level: TrustLevel = "ok";
  const reasons: string[] = [];
  const flag = (l: TrustLevel, why: string) => {
    level = worse(level, l);
    reasons.push(why);
  };
  const k = w.paretoK;
  if (k > PARETO_K_UNRELIABLE) {
    flag(
      "do-not-trust",
      `Pareto k̂ ${k.toFixed(2)} > ${PARETO_K_UNRELIABLE}: a few draws carry the weighted posterior`,
    );
  } else if (k > 0.5) {
    flag(
      "caution",
      `Pareto k̂ ${k.toFixed(2)} in (0.5, ${PARETO_K_UNRELIABLE}]: the weighted estimates converge slowly`,
    );
  }
  if (!(w.ess >= 10)) {
    flag("do-not-trust", `n_eff ${w.ess.toFixed(1)} < 10: too few effective draws for any summary`);
  } else if (w.ess < 50) {
    flag("caution", `n_eff ${w.ess.toFixed(1)} < 50: quantiles are rough`);
  } else if (w.target > 0 && w.ess < w.target) {
    flag("caution", `n_eff ${w.ess.toFixed(1)} is below the requested ${w.target}`);
  }
  if (w.efficiency < 0.05) {
    flag(
      "caution",
      `efficiency ${(100 * w.efficiency).toFixed(1)}% < 5%: the amortized surrogate is far from this posterior`,
    );
  }
  return { level, reasons };
}

/**
 * The verdict from the distance report and, for importance-weighted results, the weights'
 * diagnostics.
 *
 * @example
 * ```ts
 * const trust = trustReport(ood, { ess: 812, efficiency: 0.4, paretoK: 0.21, target: 0 });
 * trust.verdict; // "ok" when the observation is typical and the weights healthy
 * ```
 */
export function trustReport(ood: OodReport, weights?: WeightHealth): TrustReport {
  const w = weights ? weightLevel(weights) : undefined;
  const verdict = worse(ood.level, w?.level ?? "ok");
  const parts: string[] = [];
  if (ood.level !== "ok" || verdict === "ok" || !ood.available) parts.push(ood.message);
  if (w && w.reasons.length > 0) parts.push(...w.reasons);
  else if (w && verdict === "ok") parts.push("the importance weights are healthy");
  if (!weights) parts.push("no importance weights: the amortized surrogate's draws are unchecked");
  const head =
    verdict === "ok" ? "ok" : verdict === "caution" ? "caution" : "do not trust this posterior";
  return {
    verdict,
    ood,
    ...(w ? { weights: w } : {}),
    message: `${head}: ${parts.join("; ")}`,
  };
}
