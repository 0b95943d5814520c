/**
 * Weighted histograms and density levels for corner plots, computed on the host so a plot's spec
 * carries a grid of a few hundred numbers rather than every draw.
 *
 * Grids are row-major with x fastest: `grid[iy * nx + ix]`.
 */

/** A closed interval [lo, hi] cut into `bins` equal bins. */
export interface Range {
  /** Lower end. */
  readonly lo: number;
  /** Upper end (included in the last bin). */
  readonly hi: number;
}

/** Bin edges of a range cut into `bins` equal bins (bins + 1 numbers). */
export function binEdges(range: Range, bins: number): Float64Array {
  const edges = new Float64Array(bins + 1);
  const width = (range.hi - range.lo) / bins;
  for (let k = 0; k <= bins; k++) edges[k] = range.lo + k * width;
  edges[bins] = range.hi;
  return edges;
}

/** Index of the bin holding v, or -1 outside [lo, hi] (hi itself falls in the last bin, as numpy's). */
function binOf(v: number, range: Range, bins: number): number {
  if (!(v >= range.lo && v <= range.hi)) return -1;
  const k = Math.floor(((v - range.lo) / (range.hi - range.lo)) * bins);
  return k >= bins ? bins - 1 : k;
}

/**
 * Weighted histogram of column `dim` of the draws (rows of `nDims`), as a probability density:
 * Σ w over the bin / (Σ w over all draws · bin width). Draws outside the range count in the total
 * but in no bin, as numpy's `histogram(..., density=False)` scaled by the full weight.
 *
 * @example
 * ```ts
 * const draws = Float64Array.from([0.1, 5, 0.4, 6, 0.6, 7]); // 3 draws × 2 dims
 * plots.weightedHistogram(draws, Float64Array.from([1, 2, 1]), 2, 0, { lo: 0, hi: 1 }, 2); // [1.5, 0.5]
 * ```
 */
export function weightedHistogram(
  samples: Float64Array,
  weights: Float64Array,
  nDims: number,
  dim: number,
  range: Range,
  bins: number,
): Float64Array {
  const counts = new Float64Array(bins);
  const n = weights.length;
  let total = 0;
  for (let i = 0; i < n; i++) {
    const w = weights[i]!;
    total += w;
    const k = binOf(samples[i * nDims + dim]!, range, bins);
    if (k >= 0) counts[k] += w;
  }
  const width = (range.hi - range.lo) / bins;
  const scale = total > 0 ? 1 / (total * width) : 0;
  for (let k = 0; k < bins; k++) counts[k]! *= scale;
  return counts;
}

/**
 * Weighted 2-D histogram of columns (dimX, dimY): bins × bins cells holding the fraction of the
 * total weight that falls in each (so the grid sums to the mass inside the ranges).
 *
 * @example
 * ```ts
 * const draws = Float64Array.from([0.1, 5, 0.4, 6, 0.6, 7]); // 3 draws × 2 dims
 * const w = Float64Array.from([1, 2, 1]);
 * plots.weightedHistogram2d(draws, w, 2, 0, 1, { lo: 0, hi: 1 }, { lo: 5, hi: 7 }, 2); // [0.25, 0, 0.5, 0.25]
 * ```
 */
export function weightedHistogram2d(
  samples: Float64Array,
  weights: Float64Array,
  nDims: number,
  dimX: number,
  dimY: number,
  rangeX: Range,
  rangeY: Range,
  bins: number,
): Float64Array {
  const grid = new Float64Array(bins * bins);
  const n = weights.length;
  let total = 0;
  for (let i = 0; i < n; i++) {
    const w = weights[i]!;
    total += w;
    const kx = binOf(samples[i * nDims + dimX]!, rangeX, bins);
    const ky = binOf(samples[i * nDims + dimY]!, rangeY, bins);
    if (kx >= 0 && ky >= 0) grid[ky * bins + kx] += w;
  }
  if (total > 0) for (let k = 0; k < grid.length; k++) grid[k]! /= total;
  return grid;
}

/**
 * Gaussian smoothing of an nx × ny grid with standard deviation `sigma` in bins (0: a copy).
 * The kernel is cut at 3σ and renormalised where it leaves the grid, so edge cells are not
 * darkened by the missing outside; total mass is then rescaled to the input's.
 *
 * @example
 * ```ts
 * const peak = Float64Array.from([0, 0, 0, 0, 1, 0, 0, 0, 0]);
 * plots.gaussianSmooth(peak, 3, 3, 1); // spread to the neighbours, still summing to 1
 * ```
 */
export function gaussianSmooth(
  grid: Float64Array,
  nx: number,
  ny: number,
  sigma: number,
): Float64Array {
  if (!(sigma > 0)) return Float64Array.from(grid);
  const radius = Math.max(1, Math.ceil(3 * sigma));
  const kernel = new Float64Array(2 * radius + 1);
  for (let k = -radius; k <= radius; k++) kernel[k + radius] = Math.exp(-0.5 * (k / sigma) ** 2);
  const pass = (src: Float64Array, alongX: boolean): Float64Array => {
    const out = new Float64Array(src.length);
    const len = alongX ? nx : ny;
    for (let iy = 0; iy < ny; iy++) {
      for (let ix = 0; ix < nx; ix++) {
        const at = alongX ? ix : iy;
        let sum = 0;
        let norm = 0;
        for (let k = -radius; k <= radius; k++) {
          const j = at + k;
          if (j < 0 || j >= len) continue;
          const w = kernel[k + radius]!;
          sum += w * src[alongX ? iy * nx + j : j * nx + ix]!;
          norm += w;
        }
        out[iy * nx + ix] = sum / norm;
      }
    }
    return out;
  };
  const out = pass(pass(grid, true), false);
  let before = 0;
  let after = 0;
  for (let k = 0; k < grid.length; k++) {
    before += grid[k]!;
    after += out[k]!;
  }
  if (after > 0) for (let k = 0; k < out.length; k++) out[k]! *= before / after;
  return out;
}

/**
 * Density levels enclosing the given fractions of a grid's mass, as corner.py computes them: sort
 * the cells from densest down, accumulate, and take the value of the cell where the running sum
 * first reaches the fraction. The region {grid ≥ level} then holds at least that fraction.
 * Levels are made strictly decreasing for increasing fractions (nudged down where two coincide)
 * so contours never collapse onto each other.
 *
 * @example
 * ```ts
 * const grid = plots.gaussianSmooth(Float64Array.from([0, 0, 0, 0, 1, 0, 0, 0, 0]), 3, 3, 1);
 * const [oneSigma, twoSigma] = plots.massLevels(grid, plots.SIGMA_MASSES_2D);
 * ```
 */
export function massLevels(grid: Float64Array, fractions: readonly number[]): number[] {
  const sorted = Float64Array.from(grid).sort().reverse();
  let total = 0;
  for (const v of sorted) total += v;
  const cumulative = new Float64Array(sorted.length);
  let running = 0;
  sorted.forEach((v, k) => {
    running += v;
    cumulative[k] = running / total;
  });
  const levels = fractions.map((f) => {
    let k = 0;
    while (k < sorted.length - 1 && cumulative[k]! < f) k++;
    return sorted[k]!;
  });
  for (let k = 1; k < levels.length; k++) {
    if (fractions[k]! > fractions[k - 1]! && levels[k]! >= levels[k - 1]!) {
      levels[k] = levels[k - 1]! * (1 - 1e-6);
    }
  }
  return levels;
}

/** The 1σ and 2σ mass fractions of a 2-D Gaussian, 1 − exp(−k²/2): 39.3% and 86.5%. */
export const SIGMA_MASSES_2D: readonly number[] = [1 - Math.exp(-0.5), 1 - Math.exp(-2)];
