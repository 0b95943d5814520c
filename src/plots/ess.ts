/**
 * The ESS-per-round plot of a sequential fit: importance sampling's effective sample size n_eff
 * (1/Σw² − 1, nbi's) and the sampling efficiency n_eff/n of each round, side by side, so one sees
 * the surrogate posterior closing in on the target (efficiency rising) and where it stopped.
 */

import { failText } from "../errors.js";
import type { RoundRecord } from "../inference/snpe.js";
import { checkHistory, finiteOrNull } from "./history.js";
import { type Plot, renderVegaLite, type VegaLiteSpec } from "./render.js";

const COLOR = "#4c78a8";

/**
 * n_eff and efficiency per round of `history` (FitResult.history); rounds without them are skipped.
 *
 * @example
 * ```ts
 * const fit = await engine.fit({ xObs, nSims: 500, nRounds: 4, noise: 0.1 });
 * await plots.writePlot(await plots.essPlot(fit.history), "out/ess");
 * ```
 */
export async function essPlot(history: readonly RoundRecord[]): Promise<Plot> {
  const fn = "essPlot";
  checkHistory(fn, history);
  const rows = history
    .map((r) => ({
      round: r.round,
      nEff: finiteOrNull(r.nEff),
      efficiency: finiteOrNull(r.efficiency),
    }))
    .filter((r) => r.nEff !== null || r.efficiency !== null);
  if (rows.length === 0) {
    failText(
      fn,
      "history",
      "rounds with importance sampling (nEff; a fit given an observation and a likelihood)",
      `${history.length} rounds without nEff`,
    );
  }
  const x = {
    field: "round",
    type: "quantitative",
    title: "round",
    scale: { nice: false, padding: 12 },
    axis: { tickMinStep: 1, format: "d" },
  };
  const panel = (name: string, field: string, title: string, format: string): VegaLiteSpec => ({
    name,
    width: 260,
    height: 180,
    title: { text: title },
    data: { values: rows },
    transform: [{ filter: `isValid(datum.${field})` }],
    mark: {
      type: "line",
      point: { filled: true, size: 40, color: COLOR },
      color: COLOR,
      strokeWidth: 1.5,
    },
    encoding: {
      x,
      y: {
        field,
        type: "quantitative",
        title: null,
        scale: { zero: true },
        axis: { format, grid: true, gridColor: "#e6e6e6" },
      },
    },
  });
  return renderVegaLite({
    hconcat: [
      panel("ess_neff", "nEff", "effective sample size n_eff", "~s"),
      panel("ess_efficiency", "efficiency", "sampling efficiency n_eff / n", ".1~%"),
    ],
    spacing: 40,
  });
}
