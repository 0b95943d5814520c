/**
 * The loss-per-epoch plot of a fit: training and validation loss (the flow's mean negative
 * log-likelihood) for every epoch of every round, the rounds laid end to end on one epoch axis with
 * dashed lines at their boundaries, and each round's best validation epoch (the weights kept)
 * marked with a dot.
 */

import { failText } from "../errors.js";
import type { RoundRecord } from "../inference/snpe.js";
import { checkHistory, finiteOrNull } from "./history.js";
import { type Plot, renderVegaLite, type VegaLiteSpec } from "./render.js";

const SERIES = ["train", "validation"];
const COLORS = ["#4c78a8", "#f58518"];

/**
 * Train and validation loss per epoch of `history` (FitResult.history), rounds concatenated.
 *
 * @example
 * ```ts
 * const fit = await engine.fit({ xObs, nSims: 500, nRounds: 4, noise: 0.1 });
 * await plots.writePlot(await plots.lossPlot(fit.history), "out/loss");
 * ```
 */
export async function lossPlot(history: readonly RoundRecord[]): Promise<Plot> {
  const fn = "lossPlot";
  checkHistory(fn, history);
  const losses: { epoch: number; loss: number | null; series: string; round: number }[] = [];
  const best: { epoch: number; loss: number }[] = [];
  const boundaries: { epoch: number; label: string }[] = [];
  let offset = 0;
  for (const record of history) {
    if (record.epochs.length === 0) continue;
    boundaries.push({ epoch: offset + 0.5, label: `round ${record.round}` });
    record.epochs.forEach((e, k) => {
      const epoch = offset + k + 1;
      losses.push({ epoch, loss: finiteOrNull(e.trainLoss), series: "train", round: record.round });
      losses.push({
        epoch,
        loss: finiteOrNull(e.valLoss),
        series: "validation",
        round: record.round,
      });
    });
    const bestIndex = record.epochs.findIndex((e) => e.epoch === record.bestEpoch);
    const bestLoss = bestIndex >= 0 ? record.epochs[bestIndex]!.valLoss : Number.NaN;
    if (Number.isFinite(bestLoss)) best.push({ epoch: offset + bestIndex + 1, loss: bestLoss });
    offset += record.epochs.length;
  }
  if (losses.every((row) => row.loss === null)) {
    failText(
      fn,
      "history",
      "rounds with trained epochs (finite losses)",
      `${offset} epochs with none`,
    );
  }
  const x = {
    field: "epoch",
    type: "quantitative",
    title: "epoch (rounds concatenated)",
    scale: { domain: [0.5, offset + 0.5], nice: false },
    axis: { tickMinStep: 1, format: "d" },
  };
  const y = {
    field: "loss",
    type: "quantitative",
    title: "loss (negative log-likelihood)",
    scale: { zero: false },
    axis: { grid: true, gridColor: "#e6e6e6" },
  };
  const layers: VegaLiteSpec[] = [
    {
      name: "round_boundaries",
      data: { values: boundaries },
      layer: [
        {
          mark: { type: "rule", stroke: "#999", strokeDash: [4, 3] },
          encoding: { x: { field: "epoch", type: "quantitative" } },
        },
        {
          mark: {
            type: "text",
            align: "left",
            baseline: "top",
            dx: 3,
            dy: 3,
            fontSize: 10,
            color: "#666",
          },
          encoding: {
            x: { field: "epoch", type: "quantitative" },
            y: { value: 0 },
            text: { field: "label", type: "nominal" },
          },
        },
      ],
    },
    {
      name: "loss_lines",
      data: { values: losses },
      mark: { type: "line", strokeWidth: 1.5, invalid: "break-paths-show-domains" },
      encoding: {
        x,
        y,
        color: {
          field: "series",
          type: "nominal",
          title: null,
          scale: { domain: SERIES, range: COLORS },
          legend: { orient: "top", direction: "horizontal" },
        },
        detail: { field: "round", type: "nominal" },
      },
    },
  ];
  if (best.length > 0) {
    layers.push({
      name: "best_epochs",
      data: { values: best },
      mark: { type: "point", filled: true, size: 45, color: COLORS[1] },
      encoding: {
        x: { field: "epoch", type: "quantitative" },
        y: { field: "loss", type: "quantitative" },
      },
    });
  }
  return renderVegaLite({ width: 520, height: 260, layer: layers });
}
