/**
 * Rendering: a Vega-Lite spec in, SVG text and PNG bytes out, headlessly in Node.
 *
 * Why Vega-Lite: a plot is a declarative value (data + marks + encodings), so each plot here is a
 * function from results to a spec, easy to read and to test; the library is maintained, compiles
 * to Vega, and Vega renders SVG in Node with no DOM, canvas or browser
 * (`new View(parse(spec), { renderer: "none" }).toSVG()`). The same spec also displays in a
 * notebook or a browser unchanged. PNG comes from resvg (a Rust SVG renderer with prebuilt
 * binaries), which draws text with the system's fonts (DejaVu Sans when present).
 *
 * The three libraries are imported on first use, so `import "nbi"` does not load them (nor
 * resvg's native binding) for programs that draw nothing.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import type { TopLevelSpec } from "vega-lite";
import { fail, NbiError } from "../errors.js";

/** A rendered plot: its SVG text, and a PNG rendering at `scale` pixels per SVG unit (default 2). */
export interface Plot {
  /** The SVG document, ready to write to a file or show in a notebook. */
  readonly svg: string;
  /** The PNG bytes (resvg), rendered on each call. */
  png(scale?: number): Promise<Uint8Array>;
}

/** A Vega-Lite spec as the plot builders assemble it (checked by Vega-Lite when compiled). */
export type VegaLiteSpec = Record<string, unknown>;

/** Shared look: framed panels, no grid, DejaVu Sans (what resvg finds for the PNG). */
export const BASE_CONFIG = {
  font: "DejaVu Sans, sans-serif",
  view: { stroke: "#333" },
  axis: {
    grid: false,
    labelFontSize: 10,
    titleFontSize: 13,
    titleFontWeight: "normal",
    tickColor: "#333",
    domainColor: "#333",
    labelColor: "#222",
    titleColor: "#111",
  },
  title: { fontSize: 12, fontWeight: "normal", anchor: "middle" },
  legend: { labelFontSize: 11, titleFontSize: 11 },
} as const;

/**
 * Compiles a Vega-Lite spec and renders it to SVG. Vega-Lite's warnings (an unknown channel, a
 * dropped encoding) are errors here, so a mistake in a plot's spec fails loudly in the tests.
 */
export async function renderVegaLite(spec: VegaLiteSpec): Promise<Plot> {
  const warnings: string[] = [];
  const logger = {
    level: () => logger,
    error: (...args: readonly unknown[]) => {
      warnings.push(args.join(" "));
      return logger;
    },
    warn: (...args: readonly unknown[]) => {
      warnings.push(args.join(" "));
      return logger;
    },
    info: () => logger,
    debug: () => logger,
  };
  const [vega, { compile }] = await Promise.all([import("vega"), import("vega-lite")]);
  const { spec: vgSpec } = compile(
    { config: BASE_CONFIG, ...spec } as unknown as TopLevelSpec,
    // Vega-Lite's own logger type is not exported; this object has its methods.
    { logger: logger as never },
  );
  if (warnings.length > 0) {
    throw new NbiError(`plots: Vega-Lite rejected the plot's spec: ${warnings.join("; ")}`);
  }
  const view = new vega.View(vega.parse(vgSpec), { renderer: "none" });
  try {
    const svg = await view.toSVG();
    return svgPlot(svg);
  } finally {
    view.finalize();
  }
}

/** A Plot around finished SVG text; the PNG is rendered on demand. */
export function svgPlot(svg: string): Plot {
  return {
    svg,
    png: async (scale = 2) => {
      if (!(typeof scale === "number" && Number.isFinite(scale) && scale > 0 && scale <= 16)) {
        fail("png", "scale", "a number in (0, 16]", scale);
      }
      const { Resvg } = await import("@resvg/resvg-js");
      const resvg = new Resvg(svg, {
        fitTo: { mode: "zoom", value: scale },
        background: "white",
        font: {
          loadSystemFonts: true,
          defaultFontFamily: "DejaVu Sans",
          sansSerifFamily: "DejaVu Sans",
        },
      });
      return new Uint8Array(resvg.render().asPng());
    },
  };
}

/**
 * Writes a plot as `<path>.svg` and `<path>.png` (PNG at its default scale), creating the folder
 * if needed. Returns the two paths.
 *
 * @example
 * ```ts
 * const plot = await plots.cornerPlot(fit.samples, fit.weights, fit.labels);
 * await plots.writePlot(plot, "out/corner"); // { svg: "out/corner.svg", png: "out/corner.png" }
 * ```
 */
export async function writePlot(
  plot: Plot,
  pathWithoutExtension: string,
): Promise<{
  /** Path of the SVG file. */
  svg: string;
  /** Path of the PNG file. */
  png: string;
}> {
  if (!(plot && typeof plot.svg === "string" && typeof plot.png === "function")) {
    fail("writePlot", "plot", "a plot from cornerPlot, essPlot or lossPlot", plot);
  }
  if (!(typeof pathWithoutExtension === "string" && pathWithoutExtension.length > 0)) {
    fail("writePlot", "pathWithoutExtension", "a non-empty path", pathWithoutExtension);
  }
  const paths = { svg: `${pathWithoutExtension}.svg`, png: `${pathWithoutExtension}.png` };
  await mkdir(dirname(paths.svg), { recursive: true });
  const png = await plot.png();
  await Promise.all([writeFile(paths.svg, plot.svg), writeFile(paths.png, png)]);
  return paths;
}
