/**
 * PNG output without resvg's native binary (`npm install --omit=optional` leaves it out). The
 * missing binary is simulated through the render module's loader hook (or a module mock), so
 * nothing is uninstalled: PNG requests fail with an error that names the package and the fix,
 * SVG + PNG writers keep the SVG and warn, and with resvg present PNGs come out as before.
 */
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { writeRunPlots } from "../../src/cli/plots.js";
import { Reporter } from "../../src/cli/report.js";
import { NbiError } from "../../src/errors.js";
import type { RoundRecord } from "../../src/inference/snpe.js";
import { lossPlot } from "../../src/plots/index.js";
import { type ResvgModule, setResvgLoader, svgPlot, writePlot } from "../../src/plots/render.js";

const PNG_SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];

/** What Node throws from resvg's index when the per-platform package is absent. */
function missingBinary(): Promise<ResvgModule> {
  const error = new Error(
    "Cannot find module '@resvg/resvg-js-linux-x64-gnu'\nRequire stack:\n- /x/node_modules/@resvg/resvg-js/js-binding.js",
  );
  (error as Error & { code: string }).code = "MODULE_NOT_FOUND";
  return Promise.reject(error);
}

const SVG =
  '<svg xmlns="http://www.w3.org/2000/svg" width="20" height="10"><rect width="20" height="10" fill="red"/></svg>';

function round(r: number): RoundRecord {
  return {
    round: r,
    nDrawn: 100,
    nSimulated: 100,
    dropped: { nonFinite: 0, threw: 0, crashed: 0 },
    redrawn: 0,
    nEff: 40 + r,
    efficiency: (40 + r) / 100,
    epochs: Array.from({ length: 3 }, (_, e) => ({
      epoch: e,
      trainLoss: 2 - 0.1 * e,
      valLoss: 2.1 - 0.1 * e,
      lr: 1e-3,
      seconds: 0.01,
    })),
    bestEpoch: 2,
    bestValLoss: 1.9,
    stoppedEarly: false,
    trained: true,
    seconds: { simulate: 0.1, train: 0.2 },
    warnings: [],
  };
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "nbi-png-fallback-"));
});
afterEach(async () => {
  setResvgLoader();
  await rm(dir, { recursive: true, force: true });
});

describe("PNG without resvg's native binary", () => {
  it("plot.png() rejects with an NbiError naming the package, the cause and the fix", async () => {
    setResvgLoader(missingBinary);
    const error = await svgPlot(SVG)
      .png()
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).toBeInstanceOf(NbiError);
    const message = (error as Error).message;
    expect(message).toContain("@resvg/resvg-js");
    expect(message).toContain("Cannot find module '@resvg/resvg-js-linux-x64-gnu'");
    expect(message).toContain("without --omit=optional");
    expect(message).toContain("SVG");
    // One line: Node's require stack is dropped.
    expect(message).not.toContain("\n");
    expect(message).not.toContain("Require stack");
  });

  it("writePlot without onWarning writes the SVG, then throws the clear error", async () => {
    setResvgLoader(missingBinary);
    const plot = svgPlot(SVG);
    const base = join(dir, "sub", "p");
    await expect(writePlot(plot, base)).rejects.toThrow(
      /writePlot: .*p\.png skipped .*p\.svg written.*@resvg\/resvg-js.*--omit=optional/,
    );
    expect(await readFile(`${base}.svg`, "utf8")).toBe(SVG);
    expect(existsSync(`${base}.png`)).toBe(false);
  });

  it("writePlot with onWarning writes the SVG, skips the PNG and warns once, in one line", async () => {
    setResvgLoader(missingBinary);
    const plot = svgPlot(SVG);
    const base = join(dir, "p");
    const warnings: string[] = [];
    const paths = await writePlot(plot, base, { onWarning: (m) => warnings.push(m) });
    expect(paths).toEqual({ svg: `${base}.svg` });
    expect(paths.png).toBeUndefined();
    expect(await readFile(`${base}.svg`, "utf8")).toBe(SVG);
    expect(existsSync(`${base}.png`)).toBe(false);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(`${base}.png skipped`);
    expect(warnings[0]).toContain("@resvg/resvg-js");
    expect(warnings[0]).toContain("--omit=optional");
    expect(warnings[0]).not.toContain("\n");
  });

  it("other PNG failures still throw, onWarning or not", async () => {
    // resvg loads but rendering fails: not a missing package, so not a warning.
    setResvgLoader(async () => ({
      Resvg: class {
        constructor() {
          throw new Error("SVG data parsing failed");
        }
      } as unknown as ResvgModule["Resvg"],
    }));
    const warnings: string[] = [];
    await expect(
      writePlot(svgPlot(SVG), join(dir, "p"), { onWarning: (m) => warnings.push(m) }),
    ).rejects.toThrow("SVG data parsing failed");
    expect(warnings).toEqual([]);
  });

  it("the run's plot writer (fit/demo --plots) keeps the SVGs, returns them and warns once", async () => {
    setResvgLoader(missingBinary);
    const lines: string[] = [];
    const reporter = new Reporter(
      { quiet: false, json: true, verbose: false },
      { write: (t) => lines.push(t) },
    );
    const samples = Float64Array.from({ length: 400 }, (_, i) => Math.sin(i) + (i % 2));
    const written = await writeRunPlots(
      dir,
      {
        samples,
        weights: new Float64Array(200).fill(1),
        labels: ["a", "b"],
        history: [round(0), round(1)],
      },
      reporter,
    );
    expect(written).toEqual({
      corner: join(dir, "corner.svg"),
      ess: join(dir, "ess.svg"),
      loss: join(dir, "loss.svg"),
    });
    for (const name of ["corner", "ess", "loss"]) {
      expect(await readFile(join(dir, `${name}.svg`), "utf8")).toMatch(/^<svg/);
      expect(existsSync(join(dir, `${name}.png`))).toBe(false);
    }
    const events = lines.map((l) => JSON.parse(l) as { event: string; message?: string });
    const warnings = events.filter((e) => e.event === "warning");
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.message).toContain("corner.png skipped");
    expect(warnings[0]!.message).toContain("@resvg/resvg-js");
  });
});

describe("PNG with resvg present", () => {
  it("goes through the loader hook and renders a PNG as before", async () => {
    let calls = 0;
    setResvgLoader(() => {
      calls++;
      return import("@resvg/resvg-js");
    });
    const png = await svgPlot(SVG).png(1);
    expect(calls).toBe(1);
    expect([...png.subarray(0, 8)]).toEqual(PNG_SIGNATURE);
    const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
    expect([view.getUint32(16), view.getUint32(20)]).toEqual([20, 10]);
  });

  it("writePlot writes both files, with or without onWarning, and warns nothing", async () => {
    const plot = await lossPlot([round(0)]);
    const warnings: string[] = [];
    const paths = await writePlot(plot, join(dir, "loss"), { onWarning: (m) => warnings.push(m) });
    expect(paths).toEqual({ svg: join(dir, "loss.svg"), png: join(dir, "loss.png") });
    expect([...(await readFile(join(dir, "loss.png"))).subarray(0, 8)]).toEqual(PNG_SIGNATURE);
    expect(await readFile(join(dir, "loss.svg"), "utf8")).toBe(plot.svg);
    expect(warnings).toEqual([]);
  });
});

describe("the default loader", () => {
  afterEach(() => {
    vi.doUnmock("@resvg/resvg-js");
    vi.resetModules();
  });

  it("imports resvg lazily: the plots module loads without it, PNG then fails clearly", async () => {
    vi.resetModules();
    // Importing @resvg/resvg-js itself throws, as resvg's index does without its binary.
    vi.doMock("@resvg/resvg-js", () => {
      throw new Error("Cannot find module '@resvg/resvg-js-linux-x64-gnu'");
    });
    const fresh = await import("../../src/plots/index.js");
    const plot = await fresh.lossPlot([round(0)]);
    expect(plot.svg).toMatch(/^<svg/);
    // (vitest rewords the factory's error, so the cause's text is not asserted here.)
    const error = await plot.png().then(
      () => undefined,
      (e: unknown) => e,
    );
    // A fresh module graph has its own NbiError class, so compare by name.
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).name).toBe("NbiError");
    expect((error as Error).message).toMatch(
      /^png: PNG output needs @resvg\/resvg-js.*--omit=optional/,
    );
  });
});
