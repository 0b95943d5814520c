/**
 * What to tell a user whose importance weights came out poor: why the effective sample size is
 * short and what to try, from the numbers the weights already give (efficiency, Pareto k̂, the
 * share of surrogate draws outside the prior). Plain words, returned as data and printed by the
 * CLI beside the result.
 */
import { PARETO_K_UNRELIABLE } from "./importance.js";

/** The weights' diagnostics that the advice reads. */
export interface WeightDiagnostics {
  /** nbi's n_eff. */
  readonly ess: number;
  /** n_eff over the draws. */
  readonly efficiency: number;
  /** PSIS k̂ of the weights. */
  readonly paretoK: number;
  /** Draws weighed. */
  readonly draws: number;
  /** Surrogate draws outside the prior's support, drawn again. */
  readonly redrawn: number;
  /** The n_eff the user asked for (0: none). */
  readonly target: number;
  /** Whether predict's adaptive stages drew part of the draws (predict's `adapt`). */
  readonly adapted?: boolean;
}

/** Below this efficiency the proposal is far from the posterior whatever the target. */
const POOR_EFFICIENCY = 0.05;

/**
 * Why the effective sample size is short and what to try, or undefined when it is not short
 * (n_eff at least half the target, and the efficiency at least 5%).
 *
 * @example
 * ```ts
 * inference.weightAdvice({ ess: 12, efficiency: 0.012, paretoK: 0.9, draws: 1000, redrawn: 800, target: 500 });
 * // "n_eff 12.0 of 1000 draws (1.2%), target 500: ..."
 * ```
 */
export function weightAdvice(w: WeightDiagnostics): string | undefined {
  const short = w.target > 0 && w.ess < 0.5 * w.target;
  if (!short && w.efficiency >= POOR_EFFICIENCY) return undefined;
  const why: string[] = [];
  const tryThis: string[] = [];
  if (w.paretoK > PARETO_K_UNRELIABLE) {
    why.push(
      `a few draws carry most of the weight (Pareto k̂ ${w.paretoK.toFixed(2)}): the surrogate is ` +
        "narrower than the posterior or misses part of it",
    );
    tryThis.push(
      'fit with proposal "mixture" (keeps the prior and earlier rounds in every proposal)',
      'fit with loss "apt" or "weighted-nll" if it was "nll" (NLL on proposal draws learns an over-confident surrogate)',
    );
  } else {
    why.push("the surrogate overlaps the posterior only loosely");
  }
  if (w.redrawn > w.draws) {
    why.push(
      `${w.redrawn} surrogate draws fell outside the prior (more than were kept): it leaks mass out of the support`,
    );
  }
  tryThis.push(
    "more simulations per round or more rounds",
    "more training epochs (a larger earlyStopPatience)",
  );
  if (short)
    tryThis.push(`more draws: nSamples ≈ ${Math.ceil(w.target / Math.max(w.efficiency, 1e-3))}`);
  else if (w.adapted) {
    // The adapted stages fit better to more draws: on SLCP at 10³ simulations four times the
    // planned draws gave ~10× the n_eff and found the modes (bench/RESULTS.md, 2026-12-06 day);
    // planned draws adapt better than a top-up to neffMin.
    tryThis.push(
      `a larger nSamples (say ${4 * w.draws}): the adapted stages fit the posterior better from more draws`,
    );
  }
  return (
    `n_eff ${w.ess.toFixed(1)} of ${w.draws} draws (${(100 * w.efficiency).toFixed(1)}%)` +
    (w.target > 0 ? `, target ${w.target}` : "") +
    `: ${why.join("; ")}. Try: ${tryThis.join("; ")}.`
  );
}
