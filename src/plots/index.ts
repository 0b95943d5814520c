/**
 * Plots of a fit and its posterior, rendered headlessly to SVG and PNG with Vega-Lite and resvg:
 * the corner plot of weighted draws, n_eff and efficiency per round, loss per epoch, and the
 * posterior predictive check (observation, predictive bands and residuals).
 *
 * ```ts
 * const fit = await engine.fit({ xObs, nRounds: 4 });
 * await plots.writePlot(await plots.cornerPlot(fit.samples, fit.weights, fit.labels, { truths }), "out/corner");
 * await plots.writePlot(await plots.lossPlot(fit.history), "out/loss");
 * ```
 */
export { coveragePlot, rankHistogramPlot } from "./calibration.js";
export type { Ring } from "./contour.js";
export { contourRings, ringArea } from "./contour.js";
export type { CornerOptions } from "./corner.js";
export { cornerPlot } from "./corner.js";
export { essPlot } from "./ess.js";
export { formatEstimate } from "./format.js";
export type { Range } from "./histogram.js";
export {
  gaussianSmooth,
  massLevels,
  SIGMA_MASSES_2D,
  weightedHistogram,
  weightedHistogram2d,
} from "./histogram.js";
export { lossPlot } from "./loss.js";
export { type PpcPlotOptions, ppcPlot } from "./ppc.js";
export type { Plot, WritePlotOptions } from "./render.js";
export { writePlot } from "./render.js";
