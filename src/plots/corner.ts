/**
 * The corner plot of weighted posterior draws, after corner.py: a d × d grid whose diagonal holds
 * each parameter's weighted histogram (titled with its median and 16/84% quantiles, those three
 * marked by dashed lines) and whose lower triangle holds each pair's 1σ and 2σ regions, the
 * density levels enclosing 39.3% and 86.5% of the weighted mass (as corner.py's 2-D levels).
 *
 * The 2-D densities are computed here, not by Vega: Vega's density/contour transforms estimate a
 * KDE from the raw draws (all of them into the spec) and Vega-Lite exposes no weighted contour.
 * Instead a weighted 2-D histogram, smoothed by a Gaussian of one bin, gives the levels by mass
 * and marching squares the rings, which the spec draws as filled lines in data coordinates, so
 * they share the panels' scales and axes. The spec stays small whatever the number of draws.
 */
import { fail, failText } from "../errors.js";
import { weightedQuantiles } from "../inference/importance.js";
import { contourRings } from "./contour.js";
import { axisFormat, formatEstimate } from "./format.js";
import {
  binEdges,
  gaussianSmooth,
  massLevels,
  type Range,
  SIGMA_MASSES_2D,
  weightedHistogram,
  weightedHistogram2d,
} from "./histogram.js";
import { type Plot, renderVegaLite, type VegaLiteSpec } from "./render.js";

/** Options of `cornerPlot`. */
export interface CornerOptions {
  /** True parameter values, marked in every panel (one per parameter). */
  readonly truths?: readonly number[];
  /** Histogram bins per axis (default 20, as corner.py). */
  readonly bins?: number;
  /** A title above the whole plot. */
  readonly title?: string;
  /** Gaussian smoothing of the 2-D histograms, in bins (default 1; 0 for none). */
  readonly smooth?: number;
  /** Width and height of each panel in SVG pixels (default 150). */
  readonly panelSize?: number;
}

const INK = "#222222";
const TRUTH = "#4682b4"; // corner.py's truth colour
const TITLE_FONT_SIZE = 11;
const QUANTILES = [0.16, 0.5, 0.84] as const;
// The axis range covers the central 99.5% of the weight, widened by 10% on each side: far
// outliers with tiny importance weights would otherwise squeeze the posterior into a corner.
const RANGE_QUANTILES = [0.0025, 0.9975] as const;
const RANGE_MARGIN = 0.1;

/**
 * The corner plot of `samples` (n rows of d = labels.length), optionally weighted: weighted
 * histograms on the diagonal with the median and 16/84% quantiles in the titles, and 1σ/2σ
 * contours of the pairs below it, as corner.py draws them.
 *
 * @example
 * ```ts
 * const samples = Float64Array.from({ length: 2000 }, () => Math.random()); // 1000 draws × 2
 * const plot = await plots.cornerPlot(samples, undefined, ["a", "b"], { truths: [0.5, 0.5] });
 * await plots.writePlot(plot, "out/corner"); // out/corner.svg and out/corner.png
 * ```
 */
export async function cornerPlot(
  samples: Float64Array,
  weights: Float64Array | undefined,
  labels: readonly string[],
  options: CornerOptions = {},
): Promise<Plot> {
  const fn = "cornerPlot";
  const input = checkInput(fn, samples, weights, labels, options);
  const { d, w, bins, truths } = input;
  const smooth = options.smooth ?? 1;
  const size = options.panelSize ?? 150;

  const [q16, q50, q84, qLo, qHi] = weightedQuantiles(samples, w, d, [
    ...QUANTILES,
    ...RANGE_QUANTILES,
  ]);
  const ranges: Range[] = labels.map((_, k) =>
    axisRange(qLo![k]!, qHi![k]!, truths?.[k], samples, w, d, k),
  );

  const panels: VegaLiteSpec[] = [];
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < d; j++) {
      const xFormat = axisFormat(ranges[j]!.lo, ranges[j]!.hi);
      const xAxis = {
        tickCount: 4,
        ...(xFormat ? { format: xFormat } : {}),
        labelAngle: -45,
        labelAlign: "right",
        ...(i === d - 1 ? { title: labels[j] } : { labels: false, title: null }),
      };
      if (j > i) {
        panels.push({
          name: `blank_${i}_${j}`,
          width: size,
          height: size,
          data: { values: [] },
          mark: "point",
        });
      } else if (j === i) {
        const estimate = { lo: q16![i]!, median: q50![i]!, hi: q84![i]! };
        panels.push(
          diagonalPanel(
            i,
            samples,
            w,
            d,
            ranges[i]!,
            bins,
            estimate,
            labels[i]!,
            truths?.[i],
            xAxis,
            size,
          ),
        );
      } else {
        const yFormat = axisFormat(ranges[i]!.lo, ranges[i]!.hi);
        const yAxis = {
          tickCount: 4,
          ...(yFormat ? { format: yFormat } : {}),
          ...(j === 0 ? { title: labels[i] } : { labels: false, title: null }),
        };
        panels.push(
          pairPanel(i, j, samples, w, d, ranges, bins, smooth, truths, xAxis, yAxis, size),
        );
      }
    }
  }
  return renderVegaLite({
    ...(options.title ? { title: { text: options.title, fontSize: 14 } } : {}),
    concat: panels,
    columns: d,
    spacing: 8,
    bounds: "flush",
  });
}

interface CheckedInput {
  d: number;
  w: Float64Array;
  bins: number;
  truths: readonly number[] | undefined;
}

function checkInput(
  fn: string,
  samples: Float64Array,
  weights: Float64Array | undefined,
  labels: readonly string[],
  options: CornerOptions,
): CheckedInput {
  if (!(samples instanceof Float64Array))
    fail(fn, "samples", "a Float64Array (n rows of d)", samples);
  if (!(Array.isArray(labels) && labels.length > 0 && labels.every((l) => typeof l === "string"))) {
    fail(fn, "labels", "a non-empty array of strings (one per parameter)", labels);
  }
  const d = labels.length;
  if (samples.length === 0 || samples.length % d !== 0) {
    failText(
      fn,
      "samples",
      `a length that is a positive multiple of labels.length (${d})`,
      `length ${samples.length}`,
    );
  }
  const n = samples.length / d;
  const bad = samples.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) {
    failText(
      fn,
      "samples",
      "finite numbers",
      `${samples[bad]} at row ${Math.floor(bad / d)}, column ${bad % d}`,
    );
  }
  let w: Float64Array;
  if (weights === undefined) {
    w = new Float64Array(n).fill(1);
  } else {
    if (!(weights instanceof Float64Array))
      fail(fn, "weights", "a Float64Array or undefined", weights);
    if (weights.length !== n) {
      failText(fn, "weights", `one per sample row (${n})`, `length ${weights.length}`);
    }
    const badW = weights.findIndex((v) => !(Number.isFinite(v) && v >= 0));
    if (badW >= 0) failText(fn, "weights", "finite numbers ≥ 0", `${weights[badW]} at row ${badW}`);
    if (!weights.some((v) => v > 0))
      failText(fn, "weights", "at least one positive weight", "all zero");
    w = weights;
  }
  const bins = options.bins ?? 20;
  if (!(Number.isInteger(bins) && bins >= 2 && bins <= 500)) {
    fail(fn, "options.bins", "an integer in [2, 500]", bins);
  }
  const smooth = options.smooth ?? 1;
  if (!(typeof smooth === "number" && smooth >= 0 && smooth <= bins)) {
    fail(fn, "options.smooth", `a number of bins in [0, ${bins}]`, smooth);
  }
  const size = options.panelSize ?? 150;
  if (!(typeof size === "number" && size >= 40 && size <= 2000)) {
    fail(fn, "options.panelSize", "a number of pixels in [40, 2000]", size);
  }
  const truths = options.truths;
  if (truths !== undefined) {
    if (!(Array.isArray(truths) && truths.length === d)) {
      failText(fn, "options.truths", `one number per label (${d})`, describeLength(truths));
    }
    const badT = truths.findIndex((v) => !(typeof v === "number" && Number.isFinite(v)));
    if (badT >= 0) fail(fn, `options.truths[${badT}]`, "a finite number", truths[badT]);
  }
  if (options.title !== undefined && typeof options.title !== "string") {
    fail(fn, "options.title", "a string", options.title);
  }
  return { d, w, bins, truths };
}

function describeLength(value: unknown): string {
  return Array.isArray(value) ? `${value.length} numbers` : typeof value;
}

/** The axis range of one parameter: central weighted quantiles, widened, holding the truth. */
function axisRange(
  lo: number,
  hi: number,
  truth: number | undefined,
  samples: Float64Array,
  w: Float64Array,
  d: number,
  k: number,
): Range {
  if (!(hi > lo)) {
    // Nearly all weight on one value: fall back to the weighted draws' full extent.
    lo = Number.POSITIVE_INFINITY;
    hi = Number.NEGATIVE_INFINITY;
    for (let r = 0; r < w.length; r++) {
      if (w[r]! > 0) {
        lo = Math.min(lo, samples[r * d + k]!);
        hi = Math.max(hi, samples[r * d + k]!);
      }
    }
  }
  if (truth !== undefined) {
    lo = Math.min(lo, truth);
    hi = Math.max(hi, truth);
  }
  if (!(hi > lo)) {
    const half = Math.abs(lo) > 0 ? Math.abs(lo) * 0.1 : 0.5;
    return { lo: lo - half, hi: hi + half };
  }
  const margin = (hi - lo) * RANGE_MARGIN;
  return { lo: lo - margin, hi: hi + margin };
}

function scaleOf(range: Range): VegaLiteSpec {
  return { domain: [range.lo, range.hi], nice: false, zero: false };
}

function diagonalPanel(
  i: number,
  samples: Float64Array,
  w: Float64Array,
  d: number,
  range: Range,
  bins: number,
  estimate: { lo: number; median: number; hi: number },
  label: string,
  truth: number | undefined,
  xAxis: VegaLiteSpec,
  size: number,
): VegaLiteSpec {
  const density = weightedHistogram(samples, w, d, i, range, bins);
  const edges = binEdges(range, bins);
  // A closed step outline: up from the axis at the first edge, across every bin, down at the last.
  const outline: { k: number; x: number; y: number }[] = [{ k: 0, x: range.lo, y: 0 }];
  for (let b = 0; b < bins; b++) {
    outline.push({ k: 2 * b + 1, x: edges[b]!, y: density[b]! });
    outline.push({ k: 2 * b + 2, x: edges[b + 1]!, y: density[b]! });
  }
  outline.push({ k: 2 * bins + 1, x: range.hi, y: 0 });
  let top = 0;
  for (const v of density) top = Math.max(top, v);
  const x = { field: "x", type: "quantitative", scale: scaleOf(range), axis: xAxis };
  const y = {
    field: "y",
    type: "quantitative",
    scale: { domain: [0, top > 0 ? top * 1.1 : 1], nice: false },
    axis: null,
  };
  const layers: VegaLiteSpec[] = [
    {
      name: `hist_${i}`,
      data: { values: outline },
      mark: {
        type: "line",
        stroke: INK,
        strokeWidth: 1.2,
        fill: INK,
        fillOpacity: 0.08,
        clip: true,
      },
      encoding: { x, y, order: { field: "k", type: "quantitative" } },
    },
    {
      name: `quantiles_${i}`,
      data: { values: [estimate.lo, estimate.median, estimate.hi].map((q) => ({ x: q })) },
      mark: { type: "rule", stroke: INK, strokeDash: [4, 3], strokeWidth: 1, clip: true },
      encoding: { x: { field: "x", type: "quantitative" } },
    },
  ];
  if (truth !== undefined) {
    layers.push({
      name: `truth_${i}`,
      data: { values: [{ x: truth }] },
      mark: { type: "rule", stroke: TRUTH, strokeWidth: 1.5, clip: true },
      encoding: { x: { field: "x", type: "quantitative" } },
    });
  }
  // A title wider than its panel (about 0.6 em a character) breaks after the "=".
  const title = formatEstimate(label, estimate.median, estimate.lo, estimate.hi);
  const split = title.length * 0.6 * TITLE_FONT_SIZE > size ? title.indexOf(" = ") : -1;
  return {
    name: `diag_${i}`,
    title: {
      text: split > 0 ? [title.slice(0, split + 2), title.slice(split + 3)] : title,
      fontSize: TITLE_FONT_SIZE,
    },
    width: size,
    height: size,
    layer: layers,
  };
}

/** The 1σ and 2σ rings of one pair as line rows, rings of one level split by null points. */
export function pairContours(
  samples: Float64Array,
  w: Float64Array,
  d: number,
  dimX: number,
  dimY: number,
  rangeX: Range,
  rangeY: Range,
  bins: number,
  smooth: number,
): { level: string; rows: { k: number; x: number | null; y: number | null }[] }[] {
  const hist = gaussianSmooth(
    weightedHistogram2d(samples, w, d, dimX, dimY, rangeX, rangeY, bins),
    bins,
    bins,
    smooth,
  );
  const levels = massLevels(hist, SIGMA_MASSES_2D);
  // Pad with a ring of zero cells so every contour closes; grid points are the cell centres.
  const n = bins + 2;
  const padded = new Float64Array(n * n);
  for (let r = 0; r < bins; r++)
    padded.set(hist.subarray(r * bins, (r + 1) * bins), (r + 1) * n + 1);
  const centres = (range: Range): Float64Array => {
    const width = (range.hi - range.lo) / bins;
    return Float64Array.from({ length: n }, (_, k) => range.lo + (k - 0.5) * width);
  };
  const xs = centres(rangeX);
  const ys = centres(rangeY);
  return levels.map((level, l) => {
    const rows: { k: number; x: number | null; y: number | null }[] = [];
    if (level > 0) {
      for (const ring of contourRings(padded, xs, ys, level)) {
        if (rows.length > 0) rows.push({ k: rows.length, x: null, y: null });
        for (const [x, y] of ring) rows.push({ k: rows.length, x, y });
      }
    }
    return { level: `${l + 1}sigma`, rows };
  });
}

function pairPanel(
  i: number,
  j: number,
  samples: Float64Array,
  w: Float64Array,
  d: number,
  ranges: readonly Range[],
  bins: number,
  smooth: number,
  truths: readonly number[] | undefined,
  xAxis: VegaLiteSpec,
  yAxis: VegaLiteSpec,
  size: number,
): VegaLiteSpec {
  const contours = pairContours(samples, w, d, j, i, ranges[j]!, ranges[i]!, bins, smooth);
  const x = { field: "x", type: "quantitative", scale: scaleOf(ranges[j]!), axis: xAxis };
  const y = { field: "y", type: "quantitative", scale: scaleOf(ranges[i]!), axis: yAxis };
  // 2σ first, then 1σ over it: the fills add up, so the 1σ region is the darker.
  const layers: VegaLiteSpec[] = [...contours]
    .reverse()
    .filter((c) => c.rows.length > 0)
    .map((c) => ({
      name: `contour_${c.level}_${i}_${j}`,
      data: { values: c.rows },
      mark: {
        type: "line",
        stroke: INK,
        strokeWidth: 1,
        fill: INK,
        fillOpacity: 0.22,
        clip: true,
        // Null points break the path between rings (one path per level, so holes stay empty).
        invalid: "break-paths-show-domains",
      },
      encoding: { x, y, order: { field: "k", type: "quantitative" } },
    }));
  if (layers.length === 0) {
    // No mass inside the ranges: keep the panel's scales and axes all the same.
    layers.push({ data: { values: [] }, mark: "point", encoding: { x, y } });
  }
  if (truths !== undefined) {
    const tx = truths[j]!;
    const ty = truths[i]!;
    const rule = { type: "rule", stroke: TRUTH, strokeWidth: 1.5, clip: true };
    layers.push(
      {
        name: `truth_${i}_${j}_x`,
        data: { values: [{ x: tx }] },
        mark: rule,
        encoding: { x: { field: "x", type: "quantitative" } },
      },
      {
        name: `truth_${i}_${j}_y`,
        data: { values: [{ y: ty }] },
        mark: rule,
        encoding: { y: { field: "y", type: "quantitative" } },
      },
      {
        name: `truth_${i}_${j}_point`,
        data: { values: [{ x: tx, y: ty }] },
        mark: { type: "square", color: TRUTH, size: 30, opacity: 1, clip: true },
        encoding: {
          x: { field: "x", type: "quantitative" },
          y: { field: "y", type: "quantitative" },
        },
      },
    );
  }
  return { name: `pair_${i}_${j}`, width: size, height: size, layer: layers };
}
