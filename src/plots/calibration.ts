/**
 * The pictures of a calibration (NBI.calibrate): SBC rank histograms, one panel per parameter,
 * with the band a uniform histogram stays inside 99% of the time per bin; and the expected
 * coverage curve (HPD, and TARP's) against the diagonal with its 95% binomial band. A slope in
 * a histogram is a bias, a U over-confidence, a hump under-confidence; a coverage curve below the
 * diagonal is over-confident, above it under-confident.
 */
import { fail, failText } from "../errors.js";
import type { CoverageCurve } from "../inference/calibration/coverage.js";
import type { SbcResult } from "../inference/calibration/sbc.js";
import { type Plot, renderVegaLite, type VegaLiteSpec } from "./render.js";

const BAR = "#4c78a8";
const BAND = "#bbbbbb";
const CURVES = ["HPD", "TARP"];
const CURVE_COLORS = ["#4c78a8", "#f58518"];
/** z of the two-sided 99% normal interval: the per-bin band of the rank histograms. */
const Z99 = 2.5758293035489;
/** z of the two-sided 95% interval: the band around the coverage diagonal. */
const Z95 = 1.959963984540054;

const pText = (p: number) => (p < 1e-3 ? p.toExponential(1) : p.toPrecision(2));

/**
 * Rank histograms of an SBC result (`CalibrationResult.sbc`): per parameter, test pairs per rank
 * bin, the expected count under uniform ranks and its 99% band (binomial, per bin).
 *
 * @example
 * ```ts
 * const cal = await engine.calibrate({ nTest: 300 });
 * await plots.writePlot(await plots.rankHistogramPlot(cal.sbc), "out/ranks");
 * ```
 */
export async function rankHistogramPlot(sbc: SbcResult): Promise<Plot> {
  const fn = "rankHistogramPlot";
  if (
    !sbc ||
    typeof sbc !== "object" ||
    !Array.isArray(sbc.parameters) ||
    !(sbc.binStarts instanceof Int32Array)
  ) {
    fail(fn, "sbc", "an SBC result (CalibrationResult.sbc)", sbc);
  }
  if (sbc.parameters.length === 0) failText(fn, "sbc", "at least one parameter", "none");
  const n = sbc.nTest;
  const bins = sbc.binStarts.length - 1;
  const panels: VegaLiteSpec[] = sbc.parameters.map((p, j) => {
    const rows = globalThis.Array.from({ length: bins }, (_, k) => {
      const share = (sbc.binStarts[k + 1]! - sbc.binStarts[k]!) / (sbc.nSamples + 1);
      const expected = n * share;
      const halfWidth = Z99 * Math.sqrt(n * share * (1 - share));
      return {
        from: sbc.binStarts[k]!,
        to: sbc.binStarts[k + 1]!,
        count: p.counts[k]!,
        zero: 0,
        expected,
        bandLo: Math.max(0, expected - halfWidth),
        bandHi: expected + halfWidth,
      };
    });
    const x = {
      field: "from",
      type: "quantitative",
      title: `rank of θ* among ${sbc.nSamples} draws`,
      scale: { domain: [0, sbc.nSamples + 1], nice: false },
    };
    return {
      name: `ranks_${j}`,
      width: 220,
      height: 160,
      title: { text: `${p.label}   (χ² p = ${pText(p.pValue)})` },
      data: { values: rows },
      layer: [
        {
          mark: { type: "rect", color: BAND, opacity: 0.6 },
          encoding: {
            x,
            x2: { field: "to" },
            y: {
              field: "bandLo",
              type: "quantitative",
              title: j === 0 ? "test pairs" : null,
              scale: { zero: true },
            },
            y2: { field: "bandHi" },
          },
        },
        {
          mark: { type: "rect", color: BAR, opacity: 0.7, stroke: "white", strokeWidth: 0.5 },
          encoding: {
            x,
            x2: { field: "to" },
            y: { field: "count", type: "quantitative" },
            y2: { field: "zero" },
          },
        },
        {
          mark: { type: "rule", color: "#333", strokeDash: [4, 3] },
          encoding: { x, x2: { field: "to" }, y: { field: "expected", type: "quantitative" } },
        },
      ],
    };
  });
  return renderVegaLite({ concat: panels, columns: Math.min(4, panels.length), spacing: 24 });
}

/**
 * The expected-coverage plot: coverage against credibility level for the HPD regions
 * (`CalibrationResult.coverage`) and, if given, TARP's (`CalibrationResult.tarp`), with the
 * diagonal of a calibrated posterior and its 95% binomial band for this many test pairs.
 *
 * @example
 * ```ts
 * const cal = await engine.calibrate({ nTest: 300 });
 * await plots.writePlot(await plots.coveragePlot(cal.coverage, cal.tarp), "out/coverage");
 * ```
 */
export async function coveragePlot(coverage: CoverageCurve, tarp?: CoverageCurve): Promise<Plot> {
  const fn = "coveragePlot";
  const check = (curve: CoverageCurve, name: string) => {
    if (
      !curve ||
      typeof curve !== "object" ||
      !(curve.levels instanceof Float64Array) ||
      !(curve.coverage instanceof Float64Array) ||
      curve.levels.length !== curve.coverage.length ||
      curve.levels.length < 2
    ) {
      fail(fn, name, "a coverage curve (CalibrationResult.coverage or .tarp)", curve);
    }
  };
  check(coverage, "coverage");
  if (tarp !== undefined) check(tarp, "tarp");
  const n = coverage.nTest;
  const band = globalThis.Array.from(coverage.levels, (level) => {
    const halfWidth = Z95 * Math.sqrt((level * (1 - level)) / n);
    return { level, lo: Math.max(0, level - halfWidth), hi: Math.min(1, level + halfWidth) };
  });
  const curves: { level: number; coverage: number; curve: string }[] = [];
  const add = (c: CoverageCurve, name: string) =>
    c.levels.forEach((level, k) => {
      curves.push({ level, coverage: c.coverage[k]!, curve: name });
    });
  add(coverage, "HPD");
  if (tarp) add(tarp, "TARP");
  const used = tarp ? CURVES : CURVES.slice(0, 1);
  const axis = { grid: true, gridColor: "#eeeeee", values: [0, 0.2, 0.4, 0.6, 0.8, 1] };
  const x = {
    field: "level",
    type: "quantitative",
    title: "credibility level",
    scale: { domain: [0, 1], nice: false },
    axis,
  };
  const subtitle =
    `${n} test pairs; HPD p = ${pText(coverage.pValue)}` +
    (tarp ? `, TARP p = ${pText(tarp.pValue)}` : "");
  return renderVegaLite({
    width: 320,
    height: 320,
    title: { text: "expected coverage", subtitle, subtitleFontSize: 10, subtitleColor: "#555" },
    layer: [
      {
        name: "coverage_band",
        data: { values: band },
        mark: { type: "area", color: BAND, opacity: 0.45 },
        encoding: {
          x,
          y: {
            field: "lo",
            type: "quantitative",
            title: "expected coverage",
            scale: { domain: [0, 1], nice: false },
            axis,
          },
          y2: { field: "hi" },
        },
      },
      {
        name: "coverage_diagonal",
        data: {
          values: [
            { level: 0, coverage: 0 },
            { level: 1, coverage: 1 },
          ],
        },
        mark: { type: "line", color: "#333", strokeDash: [4, 3], strokeWidth: 1 },
        encoding: { x, y: { field: "coverage", type: "quantitative" } },
      },
      {
        name: "coverage_curves",
        data: { values: curves },
        mark: { type: "line", strokeWidth: 2, interpolate: "step-after" },
        encoding: {
          x,
          y: { field: "coverage", type: "quantitative" },
          color: {
            field: "curve",
            type: "nominal",
            title: null,
            scale: { domain: used, range: CURVE_COLORS.slice(0, used.length) },
            legend: { orient: "top-left", direction: "vertical", fillColor: "white" },
          },
        },
      },
    ],
  });
}
