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

/**
 * The part of @resvg/resvg-js this module uses, written out here: resvg's own declarations need
 * @types/node, which a consumer's type check must not be made to install.
 */
export interface ResvgModule {
  Resvg: new (
    svg: string,
    options?: {
      font?: { loadSystemFonts?: boolean; defaultFontFamily?: string; sansSerifFamily?: string };
      fitTo?: { mode: "zoom"; value: number };
      background?: string;
    },
  ) => { render(): { asPng(): Uint8Array } };
}

/**
 * The PNG renderer is unavailable: resvg, or its prebuilt native binary for this platform, did
 * not load. Module-private so that writePlot can tell it from a failure to render or to write.
 */
class PngUnavailableError extends NbiError {}

const importResvg = async (): Promise<ResvgModule> =>
  (await import("@resvg/resvg-js")) as unknown as ResvgModule;
let resvgLoader: () => Promise<ResvgModule> = importResvg;

/**
 * Replaces how resvg is loaded, or restores the real import when called with no argument. For
 * tests: they simulate an install without resvg's native binary (`npm install --omit=optional`)
 * without uninstalling anything. Not part of the public `plots` API.
 *
 * @internal
 */
export function setResvgLoader(loader?: () => Promise<ResvgModule>): void {
  resvgLoader = loader ?? importResvg;
}

/**
 * Loads resvg on first use (not at import, so the plots module loads without it). resvg's
 * index requires a per-platform package (`@resvg/resvg-js-linux-x64-gnu`, ...) that npm installs
 * as an optional dependency; `--omit=optional` leaves it out and the import throws "Cannot find
 * module". That becomes an error that says what is missing and what to do.
 */
async function loadResvg(): Promise<ResvgModule> {
  try {
    return await resvgLoader();
  } catch (error) {
    // The first line only: Node appends the require stack on the following lines.
    const reason = String((error as Error)?.message ?? error).split("\n")[0];
    throw new PngUnavailableError(
      `png: PNG output needs @resvg/resvg-js and its prebuilt native binary for ` +
        `${process.platform}-${process.arch} (an optional dependency, left out by ` +
        `npm install --omit=optional), which did not load: ${reason}. Reinstall without ` +
        `--omit=optional (or run npm install @resvg/resvg-js), or use the SVG (plot.svg)`,
    );
  }
}

/** A rendered plot: its SVG text, and a PNG rendering at `scale` pixels per SVG unit (default 2). */
export interface Plot {
  /** The SVG document, ready to write to a file or show in a notebook. */
  readonly svg: string;
  /**
   * The PNG bytes (resvg), rendered on each call. Rejects with an NbiError naming what to
   * install when resvg or its native binary is missing (e.g. after `npm install --omit=optional`).
   */
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
      const { Resvg } = await loadResvg();
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

/** Options of writePlot. */
export interface WritePlotOptions {
  /**
   * Called with a one-line warning when the PNG renderer (resvg) is unavailable: the SVG is then
   * written, the PNG skipped, and the result has no `png`. Without it that case is an NbiError
   * (after the SVG is written).
   */
  readonly onWarning?: (message: string) => void;
}

/**
 * Writes a plot as `<path>.svg` and `<path>.png` (PNG at its default scale), creating the folder
 * if needed. Returns the two paths.
 *
 * The SVG is written first, so it is there even when the PNG cannot be made. When resvg's
 * native binary is missing (`npm install --omit=optional` leaves it out), writePlot throws an
 * NbiError saying so; given `onWarning`, it reports that in one line instead and returns only
 * the SVG's path.
 *
 * @example
 * ```ts
 * const plot = await plots.cornerPlot(fit.samples, fit.weights, fit.labels);
 * await plots.writePlot(plot, "out/corner"); // { svg: "out/corner.svg", png: "out/corner.png" }
 * await plots.writePlot(plot, "out/corner", { onWarning: console.warn }); // png absent without resvg
 * ```
 */
export function writePlot(
  plot: Plot,
  pathWithoutExtension: string,
): Promise<{
  /** Path of the SVG file. */
  svg: string;
  /** Path of the PNG file. */
  png: string;
}>;
export function writePlot(
  plot: Plot,
  pathWithoutExtension: string,
  options: WritePlotOptions,
): Promise<{
  /** Path of the SVG file. */
  svg: string;
  /** Path of the PNG file; absent when the PNG was skipped (resvg unavailable, see onWarning). */
  png?: string;
}>;
export async function writePlot(
  plot: Plot,
  pathWithoutExtension: string,
  options: WritePlotOptions = {},
): Promise<{ svg: string; png?: string }> {
  if (!(plot && typeof plot.svg === "string" && typeof plot.png === "function")) {
    fail("writePlot", "plot", "a plot from cornerPlot, essPlot or lossPlot", plot);
  }
  if (!(typeof pathWithoutExtension === "string" && pathWithoutExtension.length > 0)) {
    fail("writePlot", "pathWithoutExtension", "a non-empty path", pathWithoutExtension);
  }
  const onWarning = options?.onWarning;
  if (onWarning !== undefined && typeof onWarning !== "function") {
    fail("writePlot", "options.onWarning", "a function", onWarning);
  }
  const paths = { svg: `${pathWithoutExtension}.svg`, png: `${pathWithoutExtension}.png` };
  await mkdir(dirname(paths.svg), { recursive: true });
  // The SVG first: it needs nothing optional, and is worth having when the PNG cannot be made.
  await writeFile(paths.svg, plot.svg);
  let png: Uint8Array;
  try {
    png = await plot.png();
  } catch (error) {
    if (!(error instanceof PngUnavailableError)) throw error;
    const message = `${paths.png} skipped (${paths.svg} written): ${error.message}`;
    if (onWarning === undefined) throw new NbiError(`writePlot: ${message}`);
    onWarning(message);
    return { svg: paths.svg };
  }
  await writeFile(paths.png, png);
  return paths;
}
