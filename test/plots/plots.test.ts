import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { NbiError } from "../../src/errors.js";
import { weightedQuantiles } from "../../src/inference/importance.js";
import type { RoundRecord } from "../../src/inference/snpe.js";
import {
  contourRings,
  cornerPlot,
  essPlot,
  formatEstimate,
  gaussianSmooth,
  lossPlot,
  massLevels,
  ringArea,
  SIGMA_MASSES_2D,
  weightedHistogram,
  weightedHistogram2d,
  writePlot,
} from "../../src/plots/index.js";

/** A seeded uniform generator (mulberry32) and standard normals from it (Box–Muller). */
function normals(seed: number): () => number {
  let s = seed | 0;
  const uniform = (): number => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
}

/** n draws of a correlated 3-D Gaussian, rows of 3. */
function correlated3d(n: number, seed = 1): Float64Array {
  const z = normals(seed);
  const out = new Float64Array(n * 3);
  for (let i = 0; i < n; i++) {
    const [a, b, c] = [z(), z(), z()];
    out[3 * i] = 3.05 + 0.2 * a;
    out[3 * i + 1] = -1.2 + 1.5 * (0.6 * a + 0.8 * b);
    out[3 * i + 2] = 0.5 + 0.05 * (-0.3 * a + 0.2 * b + 0.93 * c);
  }
  return out;
}

/** Width and height from a PNG's IHDR chunk, after checking the signature. */
function pngSize(png: Uint8Array): { width: number; height: number } {
  expect([...png.subarray(0, 8)]).toEqual([137, 80, 78, 71, 13, 10, 26, 10]);
  expect(new TextDecoder().decode(png.subarray(12, 16))).toBe("IHDR");
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

function svgSize(svg: string): { width: number; height: number } {
  const match = /<svg[^>]* width="(\d+(?:\.\d+)?)" height="(\d+(?:\.\d+)?)"/.exec(svg);
  expect(match).not.toBeNull();
  return { width: Number(match![1]), height: Number(match![2]) };
}

function count(svg: string, pattern: RegExp): number {
  return [...svg.matchAll(pattern)].length;
}

function round(r: number, nEff: number | undefined, nEpochs: number): RoundRecord {
  return {
    round: r,
    nDrawn: 200,
    nSimulated: 200,
    dropped: { nonFinite: 0, threw: 0, crashed: 0 },
    redrawn: 0,
    nEff,
    efficiency: nEff === undefined ? undefined : nEff / 200,
    epochs: Array.from({ length: nEpochs }, (_, e) => ({
      epoch: e,
      trainLoss: 2 * Math.exp(-e / 4) + 1 / (r + 1),
      valLoss: e === 1 ? Number.NaN : 2 * Math.exp(-e / 4) + 1.1 / (r + 1),
      lr: 1e-3,
      seconds: 0.01,
    })),
    bestEpoch: nEpochs - 1,
    bestValLoss: 1,
    stoppedEarly: false,
    trained: true,
    seconds: { simulate: 0.1, train: 0.2 },
    warnings: [],
  };
}

describe("weighted histograms and density levels", () => {
  it("a weighted 1-D histogram is a density that follows the weights", () => {
    const samples = Float64Array.from([0.1, 0.2, 0.6, 0.9, 5]);
    const weights = Float64Array.from([1, 1, 2, 0, 4]);
    const h = weightedHistogram(samples, weights, 1, 0, { lo: 0, hi: 1 }, 2);
    // Total weight 8 (the draw at 5 counts in the total, in no bin); bin width 0.5.
    expect([...h]).toEqual([2 / (8 * 0.5), 2 / (8 * 0.5)]);
  });

  it("a weighted 2-D histogram holds the fraction of weight per cell", () => {
    const samples = Float64Array.from([0.1, 0.1, 0.9, 0.1, 0.9, 0.9, 0.9, 0.95]);
    const weights = Float64Array.from([1, 1, 1, 1]);
    const g = weightedHistogram2d(samples, weights, 2, 0, 1, { lo: 0, hi: 1 }, { lo: 0, hi: 1 }, 2);
    expect([...g]).toEqual([0.25, 0.25, 0, 0.5]);
  });

  it("smoothing keeps the mass and spreads a spike symmetrically", () => {
    const grid = new Float64Array(49);
    grid[24] = 1;
    const s = gaussianSmooth(grid, 7, 7, 1);
    expect(s.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    expect(s[23]).toBeCloseTo(s[25]!, 15);
    expect(s[17]).toBeCloseTo(s[31]!, 15);
    expect(s[24]).toBeGreaterThan(s[23]!);
  });

  it("the 1σ and 2σ levels of a weighted 2-D Gaussian enclose 39.3% and 86.5% of its weight", () => {
    // Draws from N(0, 2²I), weighted to the target N(0, I): the levels must follow the weights.
    const z = normals(7);
    const n = 40000;
    const samples = new Float64Array(2 * n);
    const weights = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const [x, y] = [2 * z(), 2 * z()];
      samples[2 * i] = x;
      samples[2 * i + 1] = y;
      weights[i] = Math.exp(-0.5 * (x * x + y * y) * (1 - 1 / 4));
    }
    const bins = 40;
    const range = { lo: -4, hi: 4 };
    const grid = gaussianSmooth(
      weightedHistogram2d(samples, weights, 2, 0, 1, range, range, bins),
      bins,
      bins,
      1,
    );
    const levels = massLevels(grid, SIGMA_MASSES_2D);
    expect(SIGMA_MASSES_2D[0]).toBeCloseTo(0.3935, 4);
    expect(SIGMA_MASSES_2D[1]).toBeCloseTo(0.8647, 4);
    expect(levels[0]).toBeGreaterThan(levels[1]!);
    // The weight of the draws whose (smoothed) cell is at or above each level.
    let total = 0;
    const inside = [0, 0];
    for (let i = 0; i < n; i++) {
      total += weights[i]!;
      const kx = Math.floor(((samples[2 * i]! - range.lo) / 8) * bins);
      const ky = Math.floor(((samples[2 * i + 1]! - range.lo) / 8) * bins);
      if (kx < 0 || ky < 0 || kx >= bins || ky >= bins) continue;
      levels.forEach((level, l) => {
        if (grid[ky * bins + kx]! >= level) inside[l]! += weights[i]!;
      });
    }
    // Smoothing by one bin (0.2σ) widens the regions slightly: expected 40.5% and 87.5%.
    expect(inside[0]! / total).toBeGreaterThan(SIGMA_MASSES_2D[0]! - 0.02);
    expect(inside[0]! / total).toBeLessThan(SIGMA_MASSES_2D[0]! + 0.035);
    expect(inside[1]! / total).toBeGreaterThan(SIGMA_MASSES_2D[1]! - 0.02);
    expect(inside[1]! / total).toBeLessThan(SIGMA_MASSES_2D[1]! + 0.03);

    // The 1σ contour is a circle of radius ≈ 1 (area ≈ π), counter-clockwise.
    const centres = Float64Array.from({ length: bins }, (_, k) => -4 + (k + 0.5) * 0.2);
    const rings = contourRings(grid, centres, centres, levels[0]!);
    expect(rings.length).toBe(1);
    const ring = rings[0]!;
    expect(ring[0]).toEqual(ring[ring.length - 1]);
    expect(ringArea(ring)).toBeGreaterThan(Math.PI * 0.9);
    expect(ringArea(ring)).toBeLessThan(Math.PI * 1.2);
  });

  it("marching squares traces circles, outer boundaries counter-clockwise and holes clockwise", () => {
    const n = 81;
    const xs = Float64Array.from({ length: n }, (_, k) => -2 + (4 * k) / (n - 1));
    const cone = new Float64Array(n * n);
    const annulus = new Float64Array(n * n);
    for (let j = 0; j < n; j++) {
      for (let i = 0; i < n; i++) {
        const r = Math.hypot(xs[i]!, xs[j]!);
        cone[j * n + i] = 1 - r;
        annulus[j * n + i] = 1 - Math.abs(r - 1);
      }
    }
    const [disc] = contourRings(cone, xs, xs, 0.5);
    for (const [x, y] of disc!) expect(Math.hypot(x, y)).toBeCloseTo(0.5, 2);
    expect(ringArea(disc!)).toBeCloseTo(Math.PI * 0.25, 2);

    const rings = contourRings(annulus, xs, xs, 0.8);
    expect(rings.length).toBe(2);
    const areas = rings.map(ringArea).sort((a, b) => a - b);
    expect(areas[0]).toBeCloseTo(-Math.PI * 0.8 ** 2, 1); // the hole
    expect(areas[1]).toBeCloseTo(Math.PI * 1.2 ** 2, 1);
  });

  it("formats estimates to two significant digits of the smaller error", () => {
    expect(formatEstimate("A", 3.0512, 2.8612, 3.2534)).toBe("A = 3.05 +0.20 \u22120.19");
    expect(formatEstimate("B", -12.3, -14.6, -9.1)).toBe("B = \u221212.3 +3.2 \u22122.3");
    expect(formatEstimate("C", 420, 400, 445)).toBe("C = 420 +25 \u221220");
    expect(formatEstimate("T", 10846, 9502, 12466)).toBe("T = 10800 +1600 \u22121300");
    expect(formatEstimate("L", 3.05e8, 2.85e8, 3.25e8)).toBe("L = (3.05 +0.20 \u22120.20)e+8");
    expect(formatEstimate("k", 3.05e-7, 2.85e-7, 3.25e-7)).toBe(
      "k = (3.05 +0.20 \u22120.20)e\u22127",
    );
  });
});

describe("cornerPlot", () => {
  const labels = ["A", "log τ", "ω"];
  const truths = [3.1, -1.0, 0.52];
  const samples = correlated3d(4000);

  it("draws d(d+1)/2 panels with quantile titles, axis labels and truths, as SVG and PNG", async () => {
    const plot = await cornerPlot(samples, undefined, labels, { truths, title: "demo" });
    const { svg } = plot;
    expect(count(svg, /role-scope (?:diag|pair)_\d+(?:_\d+)?_group/g)).toBe(6);
    expect(count(svg, /role-scope diag_\d+_group/g)).toBe(3);
    expect(count(svg, /role-scope blank_\d+_\d+_group/g)).toBe(3);
    // 1σ and 2σ contours in each of the three pair panels.
    expect(count(svg, /contour_1sigma_\d_\d_marks/g)).toBe(3);
    expect(count(svg, /contour_2sigma_\d_\d_marks/g)).toBe(3);
    // Titles: the median and the 16/84% quantiles, as weightedQuantiles gives them.
    const [q16, q50, q84] = weightedQuantiles(
      samples,
      new Float64Array(4000).fill(1),
      3,
      [0.16, 0.5, 0.84],
    );
    labels.forEach((label, k) => {
      const title = formatEstimate(label, q50![k]!, q16![k]!, q84![k]!);
      expect(svg).toContain(`Title text '${title}'`);
    });
    expect(svg).toMatch(/Title text 'A = 3\.0\d \+0\.\d\d \u22120\.\d\d'/);
    expect(svg).toContain("Title text 'demo'");
    // Axis titles: the bottom row's x axes and the first column's y axes.
    for (const label of labels) expect(svg).toContain(`X-axis titled '${label}'`);
    for (const label of labels.slice(1)) expect(svg).toContain(`Y-axis titled '${label}'`);
    // Truths: a line on each diagonal panel, two lines and a point on each pair panel.
    expect(count(svg, /mark-rule role-mark truth_\d_marks/g)).toBe(3);
    expect(count(svg, /mark-rule role-mark truth_\d_\d_[xy]_marks/g)).toBe(6);
    expect(count(svg, /mark-symbol role-mark truth_\d_\d_point_marks/g)).toBe(3);
    expect(svg).toContain('stroke="#4682b4"');

    const size = svgSize(svg);
    const png = await plot.png();
    expect(png.length).toBeGreaterThan(10000);
    expect(pngSize(png)).toEqual({
      width: Math.round(size.width * 2),
      height: Math.round(size.height * 2),
    });
    expect(pngSize(await plot.png(1))).toEqual({
      width: Math.round(size.width),
      height: Math.round(size.height),
    });
  });

  it("follows the weights, and draws one panel for one parameter", async () => {
    // Down-weighting the draws with A above 3.05 moves A's median down.
    const weights = Float64Array.from({ length: 4000 }, (_, i) =>
      samples[3 * i]! > 3.05 ? 0.2 : 1,
    );
    const plot = await cornerPlot(samples, weights, labels, { bins: 15 });
    const [q50] = weightedQuantiles(samples, weights, 3, [0.5]);
    expect(q50![0]).toBeLessThan(3.0);
    expect(plot.svg).toContain(`Title text 'A = ${q50![0]!.toFixed(2)}`);
    expect(plot.svg).not.toContain("truth_");

    // One parameter: one panel; a title too wide for it breaks after the "="; SI tick labels.
    const one = await cornerPlot(Float64Array.from([10000, 11000, 12000, 13000]), undefined, [
      "T_eff [K] long",
    ]);
    expect(count(one.svg, /role-scope diag_0_group/g)).toBe(1);
    expect(count(one.svg, /role-scope pair_/g)).toBe(0);
    expect(one.svg).toContain("<tspan>T_eff [K] long =</tspan>");
    expect(one.svg).toMatch(/<tspan[^>]*>11500 \+1400 \u22121400<\/tspan>/);
    expect(one.svg).toMatch(/>1[0-3]k<\/text>/);
  });

  it("rejects malformed input with NbiErrors naming the argument", async () => {
    const bad = async (fn: () => Promise<unknown>, message: RegExp): Promise<void> => {
      await expect(fn()).rejects.toThrow(NbiError);
      await expect(fn()).rejects.toThrow(message);
    };
    await bad(
      () => cornerPlot(samples.subarray(0, 301), undefined, labels),
      /samples expected a length .* multiple of labels.length \(3\), got length 301/,
    );
    await bad(() => cornerPlot(samples, undefined, []), /labels expected a non-empty array/);
    await bad(
      () => cornerPlot(samples, new Float64Array(10), labels),
      /weights expected one per sample row \(4000\), got length 10/,
    );
    const withNaN = Float64Array.from(samples);
    withNaN[7] = Number.NaN;
    await bad(
      () => cornerPlot(withNaN, undefined, labels),
      /samples expected finite numbers, got NaN at row 2, column 1/,
    );
    const negative = new Float64Array(4000).fill(1);
    negative[5] = -1;
    await bad(
      () => cornerPlot(samples, negative, labels),
      /weights expected finite numbers ≥ 0, got -1 at row 5/,
    );
    await bad(
      () => cornerPlot(samples, new Float64Array(4000), labels),
      /at least one positive weight/,
    );
    await bad(
      () => cornerPlot(samples, undefined, labels, { truths: [1, 2] }),
      /options.truths expected one number per label \(3\)/,
    );
    await bad(
      () => cornerPlot(samples, undefined, labels, { truths: [1, Number.NaN, 2] }),
      /options.truths\[1\] expected a finite number/,
    );
    await bad(
      () => cornerPlot(samples, undefined, labels, { bins: 1 }),
      /options.bins expected an integer/,
    );
  });
});

describe("essPlot and lossPlot", () => {
  const history = [round(0, 12, 8), round(1, 90, 5), round(2, 150, 6)];

  it("essPlot draws n_eff and efficiency per round", async () => {
    const plot = await essPlot(history);
    expect(count(plot.svg, /mark-line role-mark ess_(?:neff|efficiency)_marks/g)).toBe(2);
    expect(plot.svg).toContain("effective sample size n_eff");
    expect(plot.svg).toContain("sampling efficiency");
    const size = svgSize(plot.svg);
    expect(pngSize(await plot.png(1.5))).toEqual({
      width: Math.round(size.width * 1.5),
      height: Math.round(size.height * 1.5),
    });
    await expect(essPlot([round(0, undefined, 3)])).rejects.toThrow(
      /essPlot: history expected rounds with importance sampling/,
    );
    await expect(essPlot([])).rejects.toThrow(NbiError);
  });

  it("lossPlot draws train and validation loss with round boundaries", async () => {
    const plot = await lossPlot(history);
    expect(plot.svg).toContain("loss_lines");
    expect(count(plot.svg, /aria-label="[^"]*round [0-2]/g)).toBeGreaterThanOrEqual(3);
    // One boundary rule per round (a rule mark item per datum), and the best epochs marked.
    const rules =
      /<g class="mark-rule role-mark round_boundaries_layer_0_marks"[^>]*>(.*?)<\/g>/.exec(
        plot.svg,
      );
    expect(count(rules![1]!, /<line/g)).toBe(3);
    expect(plot.svg).toContain("best_epochs_marks");
    expect(plot.svg).toContain("validation");
    expect(pngSize(await plot.png()).width).toBe(Math.round(svgSize(plot.svg).width * 2));
    await expect(lossPlot([round(0, 1, 0)])).rejects.toThrow(
      /lossPlot: history expected rounds with trained epochs/,
    );
  });
});

describe("writePlot", () => {
  it("writes <path>.svg and <path>.png and returns their paths", async () => {
    const dir = await mkdtemp(join(tmpdir(), "nbi-plots-"));
    try {
      const plot = await lossPlot([round(0, 10, 4)]);
      const paths = await writePlot(plot, join(dir, "sub", "loss"));
      expect(paths).toEqual({
        svg: join(dir, "sub", "loss.svg"),
        png: join(dir, "sub", "loss.png"),
      });
      expect(await readFile(paths.svg, "utf8")).toBe(plot.svg);
      pngSize(new Uint8Array(await readFile(paths.png)));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
