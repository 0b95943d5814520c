/**
 * The plots a run writes into its folder: the corner plot of the weighted posterior, n_eff and
 * efficiency per round, and the loss per epoch (src/plots). The plotting libraries load only when
 * a plot is asked for, so the other commands start without them.
 */
import { join } from "node:path";
import type { RoundRecord } from "../inference/snpe.js";
import type { Reporter } from "./report.js";

export interface PlotInput {
  readonly samples: Float64Array;
  readonly weights: Float64Array;
  readonly labels: readonly string[];
  readonly truths?: readonly number[];
  readonly history: readonly RoundRecord[];
  readonly title?: string;
}

/**
 * Writes corner.{svg,png}, ess.{svg,png} (rounds with n_eff) and loss.{svg,png} into `dir`;
 * returns the PNG paths by name (the SVG's when the PNG was skipped because resvg's native
 * binary is missing, which is one warning for the run). A plot that fails is a warning, never a
 * failed run.
 */
export async function writeRunPlots(
  dir: string,
  input: PlotInput,
  reporter: Reporter,
): Promise<Record<string, string>> {
  const written: Record<string, string> = {};
  let plots: typeof import("../plots/index.js");
  try {
    plots = await import("../plots/index.js");
  } catch (error) {
    reporter.warn(`plots skipped: the plotting module did not load (${(error as Error).message})`);
    return written;
  }
  const jobs: [string, () => Promise<import("../plots/index.js").Plot>][] = [];
  if (input.weights.length > 0) {
    jobs.push([
      "corner",
      () =>
        plots.cornerPlot(input.samples, input.weights, input.labels, {
          ...(input.truths ? { truths: input.truths } : {}),
          ...(input.title ? { title: input.title } : {}),
        }),
    ]);
  }
  if (input.history.some((r) => r.nEff !== undefined))
    jobs.push(["ess", () => plots.essPlot(input.history)]);
  if (input.history.some((r) => r.epochs.length > 0))
    jobs.push(["loss", () => plots.lossPlot(input.history)]);
  // Without resvg every PNG is skipped for the same reason: say it once, not once per plot.
  let pngWarned = false;
  const onWarning = (message: string): void => {
    if (!pngWarned) reporter.warn(message);
    pngWarned = true;
  };
  for (const [name, make] of jobs) {
    try {
      const paths = await plots.writePlot(await make(), join(dir, name), { onWarning });
      written[name] = paths.png ?? paths.svg;
    } catch (error) {
      reporter.warn(`the ${name} plot was not written: ${(error as Error).message}`);
    }
  }
  return written;
}
