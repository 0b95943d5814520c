/** The check shared by the fit plots: a fit's round history, as FitResult.history holds it. */

import { fail } from "../errors.js";
import type { RoundRecord } from "../inference/snpe.js";

export function checkHistory(fn: string, history: readonly RoundRecord[]): void {
  if (!Array.isArray(history))
    fail(fn, "history", "an array of round records (FitResult.history)", history);
  if (history.length === 0) fail(fn, "history", "at least one round", history);
  history.forEach((record, k) => {
    if (!(record && typeof record === "object" && Array.isArray(record.epochs))) {
      fail(fn, `history[${k}]`, "a round record with epochs", record);
    }
  });
}

/** A number fit for a plot's data: finite, or null (a gap in a line). */
export function finiteOrNull(v: number | undefined): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}
