/**
 * Shapes: sizes, validation, NumPy broadcasting, axis normalisation and printing. Pure functions
 * on number arrays, shared by shape rules, kernels and the numpy layer.
 */
import { fail, NbiError } from "../errors.js";

export type Shape = readonly number[];

export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function shapesEqual(a: Shape, b: Shape): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function stridesOf(shape: Shape): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i]!;
  }
  return strides;
}

export function showShape(shape: Shape): string {
  return `[${shape.join(", ")}]`;
}

/** NumPy broadcasting of any number of shapes; names the function on failure. */
export function broadcastShapes(fn: string, ...shapes: Shape[]): number[] {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const s of shapes) {
    const offset = rank - s.length;
    for (let i = 0; i < s.length; i++) {
      const d = s[i]!;
      const o = out[offset + i]!;
      if (d === o || d === 1) continue;
      if (o === 1) out[offset + i] = d;
      else {
        throw new NbiError(
          `${fn}: operands could not be broadcast together: expected compatible shapes, got ${shapes
            .map(showShape)
            .join(" and ")}`,
        );
      }
    }
  }
  return out;
}

/** Normalizes a possibly negative axis against a rank, with a clear error when out of range. */
export function normalizeAxis(fn: string, axis: number, rank: number, argument = "axis"): number {
  if (!Number.isInteger(axis) || axis < -rank || axis >= rank) {
    fail(fn, argument, `an integer in [${-rank}, ${rank - 1}] for an array of rank ${rank}`, axis);
  }
  return axis < 0 ? axis + rank : axis;
}

/** Normalizes an axis list (or null for all axes) to sorted unique non-negative axes. */
export function normalizeAxes(
  fn: string,
  axes: number | readonly number[] | null | undefined,
  rank: number,
): number[] {
  if (axes === null || axes === undefined) return Array.from({ length: rank }, (_, i) => i);
  const list = typeof axes === "number" ? [axes] : [...axes];
  const out = list.map((a) => normalizeAxis(fn, a, rank, "axis"));
  const sorted = [...new Set(out)].sort((x, y) => x - y);
  if (sorted.length !== out.length) fail(fn, "axis", "distinct axes", list);
  return sorted;
}

export function checkShape(fn: string, argument: string, shape: unknown): number[] {
  if (
    !globalThis.Array.isArray(shape) ||
    !shape.every((d) => typeof d === "number" && Number.isInteger(d) && d >= 0)
  ) {
    fail(fn, argument, "a list of non-negative integers", shape);
  }
  return [...(shape as number[])];
}

/** Index of each broadcast-output element in an input of shape `inShape` (trailing-aligned). */
export function broadcastIndexMap(inShape: Shape, outShape: Shape): Int32Array | null {
  if (shapesEqual(inShape, outShape)) return null;
  const size = sizeOf(outShape);
  const map = new Int32Array(size);
  const rank = outShape.length;
  const offset = rank - inShape.length;
  const inStrides = stridesOf(inShape);
  // Effective stride of each output axis into the input (0 where broadcast).
  const eff = new Array<number>(rank).fill(0);
  for (let i = 0; i < inShape.length; i++) eff[offset + i] = inShape[i] === 1 ? 0 : inStrides[i]!;
  const idx = new Array<number>(rank).fill(0);
  let src = 0;
  for (let k = 0; k < size; k++) {
    map[k] = src;
    for (let ax = rank - 1; ax >= 0; ax--) {
      idx[ax]!++;
      src += eff[ax]!;
      if (idx[ax]! < outShape[ax]!) break;
      src -= eff[ax]! * idx[ax]!;
      idx[ax] = 0;
    }
  }
  return map;
}
