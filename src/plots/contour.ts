/**
 * Marching squares: the iso-lines of a grid at one level, as polylines in data coordinates.
 *
 * Every segment is oriented with the region {value ≥ level} on its left, so the outer boundary
 * of a region runs counter-clockwise and a hole clockwise. Joined into one path and filled with
 * the nonzero rule (SVG's default), the rings of one level then fill exactly the region, holes
 * left empty. Saddle cells are resolved by the mean of their four corners, as usual.
 */

/** A polyline of [x, y] points; closed (last point = first) when it does not reach the edge. */
export type Ring = [number, number][];

/**
 * The iso-lines of `grid` (nx × ny values at the points xs × ys, x fastest) at `level`. Pad the
 * grid with a border below the level to get only closed rings.
 *
 * @example
 * ```ts
 * const peak = Float64Array.from([0, 0, 0, 0, 1, 0, 0, 0, 0]); // 3 × 3, one high cell in the middle
 * const [ring] = plots.contourRings(peak, [0, 1, 2], [0, 1, 2], 0.5); // a closed diamond around (1, 1)
 * ```
 */
export function contourRings(
  grid: Float64Array,
  xs: ArrayLike<number>,
  ys: ArrayLike<number>,
  level: number,
): Ring[] {
  const nx = xs.length;
  const ny = ys.length;
  const inside = (i: number, j: number): boolean => grid[j * nx + i]! >= level;
  const hCount = (nx - 1) * ny;
  // Edge keys: horizontal edge (i,j)→(i+1,j) is j·(nx−1)+i; vertical (i,j)→(i,j+1) is hCount+j·nx+i.
  const hKey = (i: number, j: number): number => j * (nx - 1) + i;
  const vKey = (i: number, j: number): number => hCount + j * nx + i;
  const next = new Map<number, number>();
  const ends = new Set<number>();

  const crossingsKeys: number[] = [];
  const crossingsExit: boolean[] = [];
  for (let j = 0; j < ny - 1; j++) {
    for (let i = 0; i < nx - 1; i++) {
      // Corners counter-clockwise: a (i,j), b (i+1,j), c (i+1,j+1), d (i,j+1).
      const a = inside(i, j);
      const b = inside(i + 1, j);
      const c = inside(i + 1, j + 1);
      const d = inside(i, j + 1);
      if (a === b && b === c && c === d) continue;
      crossingsKeys.length = 0;
      crossingsExit.length = 0;
      const edge = (from: boolean, to: boolean, key: number): void => {
        if (from === to) return;
        crossingsKeys.push(key);
        crossingsExit.push(from);
      };
      edge(a, b, hKey(i, j));
      edge(b, c, vKey(i + 1, j));
      edge(c, d, hKey(i, j + 1));
      edge(d, a, vKey(i, j));
      const m = crossingsKeys.length;
      const centerInside =
        m === 4 &&
        (grid[j * nx + i]! +
          grid[j * nx + i + 1]! +
          grid[(j + 1) * nx + i + 1]! +
          grid[(j + 1) * nx + i]!) /
          4 >=
          level;
      for (let p = 0; p < m; p++) {
        if (!crossingsExit[p]) continue;
        // Leaving the region at an exit, the line runs to the entry that keeps the region on its
        // left: the next one counter-clockwise, or in a saddle whose centre is outside, the previous.
        const q = m === 2 || centerInside ? (p + 1) % m : (p + m - 1) % m;
        next.set(crossingsKeys[p]!, crossingsKeys[q]!);
        ends.add(crossingsKeys[q]!);
      }
    }
  }

  const point = (key: number): [number, number] => {
    let i0: number;
    let j0: number;
    let i1: number;
    let j1: number;
    if (key < hCount) {
      j0 = Math.floor(key / (nx - 1));
      i0 = key - j0 * (nx - 1);
      i1 = i0 + 1;
      j1 = j0;
    } else {
      j0 = Math.floor((key - hCount) / nx);
      i0 = key - hCount - j0 * nx;
      i1 = i0;
      j1 = j0 + 1;
    }
    const v0 = grid[j0 * nx + i0]!;
    const v1 = grid[j1 * nx + i1]!;
    const t = v1 === v0 ? 0.5 : (level - v0) / (v1 - v0);
    return [xs[i0]! + t * (xs[i1]! - xs[i0]!), ys[j0]! + t * (ys[j1]! - ys[j0]!)];
  };

  const rings: Ring[] = [];
  const visited = new Set<number>();
  const follow = (start: number): void => {
    const ring: Ring = [point(start)];
    visited.add(start);
    let key = next.get(start);
    while (key !== undefined) {
      ring.push(point(key));
      if (key === start || visited.has(key)) break;
      visited.add(key);
      key = next.get(key);
    }
    rings.push(ring);
  };
  // Open lines (reaching the grid's edge) first, from their free ends; then the closed rings.
  for (const start of next.keys()) if (!ends.has(start)) follow(start);
  for (const start of next.keys()) if (!visited.has(start)) follow(start);
  return rings;
}

/**
 * Signed area of a ring by the shoelace formula: positive when counter-clockwise (an outer
 * boundary), negative for a hole.
 *
 * @example
 * ```ts
 * plots.ringArea([[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]); // 1
 * ```
 */
export function ringArea(ring: Ring): number {
  let area = 0;
  for (let k = 0; k + 1 < ring.length; k++) {
    area += ring[k]![0] * ring[k + 1]![1] - ring[k + 1]![0] * ring[k]![1];
  }
  return area / 2;
}
