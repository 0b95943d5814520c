/**
 * The posterior predictive check plot: the observation over the predictive median and its 68% and
 * 95% bands (a light curve or a spectrum: index or a user's grid on the x axis), and beside it the
 * residuals (observed − median) over the same bands shifted to zero, so a misfit shows as points
 * marching out of the bands in a pattern rather than scattering inside them. One row per data
 * channel. The title carries the statistic and its p-value. A light curve's missing points (NaN in
 * the observation) are marked with a grey cross on the median and on the zero line: the bands
 * are drawn there, but there is nothing observed to compare.
 */

import { fail, failText } from "../errors.js";
import type { PredictiveCheck } from "../inference/ppc.js";
import { finiteOrNull } from "./history.js";
import { type Plot, renderVegaLite, type VegaLiteSpec } from "./render.js";

/** Options of `ppcPlot`. */
export interface PpcPlotOptions {
  /** x values of the data points (time, wavelength), one per point of a channel (default: the index). */
  readonly grid?: ArrayLike<number>;
  /** Title of the x axis (default "index", or "x" with a grid). */
  readonly xLabel?: string;
  /** Title of the data axis (default "data"). */
  readonly yLabel?: string;
  /** Names of the channels (default "channel 0", ...), shown when there are several. */
  readonly channels?: readonly string[];
  /** A title above the statistic (e.g. the observation's name). */
  readonly title?: string;
}

const KEYS = ["95% band", "68% band", "median", "observed", "missing"];
const COLORS = ["#c6dbef", "#6baed6", "#08519c", "#111111", "#8c8c8c"];
/** The legend's colour scale; "missing" only when the observation has gaps. */
const colorOf = (gaps: boolean) => (key: string) => ({
  datum: key,
  type: "nominal",
  title: null,
  scale: { domain: gaps ? KEYS : KEYS.slice(0, 4), range: gaps ? COLORS : COLORS.slice(0, 4) },
  legend: { orient: "top", direction: "horizontal", symbolType: "square" },
});

const FIELDS = [
  "observed",
  "median",
  "lower68",
  "upper68",
  "lower95",
  "upper95",
  "residuals",
] as const;

/**
 * The check (`engine.posteriorPredictive`'s result) as a plot: data with bands, and residuals.
 *
 * @example
 * ```ts
 * const check = await engine.posteriorPredictive(xObs, post, { xErr: 0.1 });
 * await plots.writePlot(await plots.ppcPlot(check, { grid: times, xLabel: "time [d]" }), "out/ppc");
 * ```
 */
export async function ppcPlot(check: PredictiveCheck, options: PpcPlotOptions = {}): Promise<Plot> {
  const fn = "ppcPlot";
  if (typeof check !== "object" || check === null || !globalThis.Array.isArray(check.dataShape)) {
    fail(fn, "check", "a posterior predictive check (engine.posteriorPredictive's result)", check);
  }
  const [C, L] = check.dataShape;
  for (const k of FIELDS) {
    const v = check[k] as ArrayLike<number> | undefined;
    if (!v || v.length !== C * L) {
      failText(
        fn,
        `check.${k}`,
        `${C * L} values (dataShape [${C}, ${L}])`,
        v ? `${v.length} values` : "none",
      );
    }
  }
  if (typeof options !== "object" || options === null) fail(fn, "options", "an object", options);
  const grid = options.grid;
  if (grid !== undefined) {
    if (typeof grid.length !== "number" || grid.length !== L) {
      failText(
        fn,
        "options.grid",
        `${L} x values (one per data point of a channel)`,
        typeof grid.length === "number" ? `${grid.length} values` : String(grid),
      );
    }
    for (let i = 0; i < L; i++) {
      if (!Number.isFinite(grid[i])) fail(fn, `options.grid[${i}]`, "a finite number", grid[i]);
    }
  }
  if (options.channels !== undefined && options.channels.length !== C) {
    failText(fn, "options.channels", `${C} names`, `${options.channels.length}`);
  }
  const nMissing = check.observed.reduce((n, v) => n + (Number.isNaN(v) ? 1 : 0), 0);
  const color = colorOf(nMissing > 0);
  const xTitle = options.xLabel ?? (grid ? "x" : "index");
  const yTitle = options.yLabel ?? "data";
  const pointSize = L <= 100 ? 22 : L <= 500 ? 10 : 4;
  const rowsOf = (c: number) =>
    globalThis.Array.from({ length: L }, (_, i) => {
      const j = c * L + i;
      const m = check.median[j]!;
      const missing = Number.isNaN(check.observed[j]!);
      return {
        x: grid ? grid[i]! : i,
        observed: finiteOrNull(check.observed[j]),
        median: finiteOrNull(m),
        lower68: finiteOrNull(check.lower68[j]),
        upper68: finiteOrNull(check.upper68[j]),
        lower95: finiteOrNull(check.lower95[j]),
        upper95: finiteOrNull(check.upper95[j]),
        residual: finiteOrNull(check.residuals[j]),
        rLower68: finiteOrNull(check.lower68[j]! - m),
        rUpper68: finiteOrNull(check.upper68[j]! - m),
        rLower95: finiteOrNull(check.lower95[j]! - m),
        rUpper95: finiteOrNull(check.upper95[j]! - m),
        missingAt: missing ? finiteOrNull(m) : null,
        missingZero: missing ? 0 : null,
      };
    });
  const x = {
    field: "x",
    type: "quantitative",
    title: xTitle,
    scale: { nice: false, zero: false },
    ...(grid ? {} : { axis: { format: "d", tickMinStep: 1 } }),
  };
  const quantity = (field: string, title: string | null) => ({
    field,
    type: "quantitative",
    title,
    scale: { zero: false },
    axis: { grid: true, gridColor: "#eeeeee" },
  });
  const band = (lo: string, hi: string, key: string, title: string | null): VegaLiteSpec => ({
    mark: { type: "area", opacity: key === "95% band" ? 0.9 : 0.8 },
    encoding: { x, y: quantity(lo, title), y2: { field: hi }, color: color(key) },
  });
  const missingMark = (field: string, title: string): VegaLiteSpec[] =>
    nMissing > 0
      ? [
          {
            mark: { type: "point", shape: "cross", filled: true, size: pointSize * 2, opacity: 1 },
            encoding: { x, y: quantity(field, title), color: color("missing") },
          },
        ]
      : [];
  const panel = (c: number): VegaLiteSpec[] => {
    const channel = C > 1 ? ` (${options.channels?.[c] ?? `channel ${c}`})` : "";
    const values = rowsOf(c);
    return [
      {
        name: `ppc_data_${c}`,
        width: 380,
        height: 220,
        title: { text: `observation and posterior predictive${channel}` },
        data: { values },
        layer: [
          band("lower95", "upper95", "95% band", yTitle),
          band("lower68", "upper68", "68% band", yTitle),
          {
            mark: { type: "line", strokeWidth: 1.5 },
            encoding: { x, y: quantity("median", yTitle), color: color("median") },
          },
          {
            mark: { type: "point", filled: true, size: pointSize, opacity: 1 },
            encoding: { x, y: quantity("observed", yTitle), color: color("observed") },
          },
          ...missingMark("missingAt", yTitle),
        ],
      },
      {
        name: `ppc_residuals_${c}`,
        width: 380,
        height: 220,
        title: { text: `residuals: observed − median${channel}` },
        data: { values },
        layer: [
          band("rLower95", "rUpper95", "95% band", "observed − median"),
          band("rLower68", "rUpper68", "68% band", "observed − median"),
          {
            mark: { type: "rule", color: COLORS[2], strokeWidth: 1 },
            encoding: { y: { datum: 0, type: "quantitative" } },
          },
          {
            mark: { type: "point", filled: true, size: pointSize, opacity: 1 },
            encoding: {
              x,
              y: quantity("residual", "observed − median"),
              color: color("observed"),
            },
          },
          ...missingMark("missingZero", "observed − median"),
        ],
      },
    ];
  };
  const p =
    check.pValue === 0
      ? `p < ${(1 / check.nDraws).toPrecision(2)}`
      : `p = ${check.pValue.toPrecision(2)}`;
  const stat =
    `T = ${check.statistic.toPrecision(3)} over ${nMissing > 0 ? `${C * L - nMissing} observed points (${nMissing} missing)` : `${C * L} points`}, ` +
    `${p} (${check.nDraws} replicated datasets); ` +
    `${Math.round(100 * check.coverage68)}% of ${nMissing > 0 ? "observed " : ""}points in the 68% band, ${Math.round(100 * check.coverage95)}% in the 95%`;
  return renderVegaLite({
    title: {
      text: options.title
        ? `${options.title}: posterior predictive check`
        : "posterior predictive check",
      subtitle: stat,
      fontSize: 13,
    },
    vconcat: globalThis.Array.from({ length: C }, (_, c) => ({ hconcat: panel(c), spacing: 30 })),
    spacing: 24,
    resolve: { scale: { color: "shared" } },
  });
}
