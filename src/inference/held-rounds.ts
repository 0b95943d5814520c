/**
 * Which importance samples of one posterior hold: light-tailed weights, and an evidence estimate
 * not significantly below another's. Every sample of the same posterior estimates the same
 * evidence Z; a proposal that missed part of the posterior (one of SLCP's four modes) gives
 * light-tailed weights and a fair-looking ESS, yet its estimates are off and its Ẑ is short by
 * the mass it missed — Ẑ is unbiased only where the proposal covers the posterior, and a missed
 * region can only lower it. So a sample whose Ẑ falls more than EVIDENCE_Z standard errors below
 * another's has missed something, and the ESS would weigh it in as if it had not.
 *
 * predict pools the fit's rounds only where they agree with its own draws (fit-draws.ts,
 * `consistentGroups`). The same rule inside the fit — a staged round adapting only from earlier
 * rounds that hold — was measured and not kept (bench/RESULTS.md, 2026-12-06 day).
 */
import { type ImportanceResult, PARETO_K_UNRELIABLE } from "./importance.js";

/** How many standard errors one sample's log evidence may fall below another's. */
export const EVIDENCE_Z = 2;

/** Whether the weights' tail is light enough for their ESS and Ẑ to be read (Pareto k̂ ≤ 0.7). */
export function lightTailed(imp: ImportanceResult): boolean {
  return imp.paretoK <= PARETO_K_UNRELIABLE; // NaN (too few draws to tell) is not
}

/**
 * Whether `imp`'s log evidence falls more than EVIDENCE_Z combined standard errors below
 * `reference`'s (a reference without a standard error counts as exact; a sample without one, a
 * single draw, cannot be compared and counts as short).
 *
 * @example
 * ```ts
 * evidenceShort(roundImp, predictImp); // true when the round missed mass predict found
 * ```
 */
export function evidenceShort(imp: ImportanceResult, reference: ImportanceResult): boolean {
  if (!Number.isFinite(imp.logEvidenceSe)) return true;
  const se = Math.hypot(
    imp.logEvidenceSe,
    Number.isFinite(reference.logEvidenceSe) ? reference.logEvidenceSe : 0,
  );
  return !(imp.logEvidence >= reference.logEvidence - EVIDENCE_Z * se);
}
