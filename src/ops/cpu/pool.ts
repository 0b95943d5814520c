/**
 * 1-D max pooling over the last axis of [N, C, L] (no padding), plus the two linear maps its
 * derivatives need: scattering cotangents back to the argmax positions (VJP) and gathering
 * tangents from them (JVP). Recording argmax once makes both exact and O(output).
 */

import { allocLike, type FloatArray } from "./matmul.js";

export interface MaxPool1dOptions {
  kernel: number;
  stride: number;
}

function checkRank3(name: string, length: number, shape: readonly number[]): void {
  if (shape.length !== 3) throw new Error(`${name}: expected rank 3, got [${shape}]`);
  if (length !== shape[0] * shape[1] * shape[2]) {
    throw new Error(`${name}: data length does not match shape [${shape}]`);
  }
}

/** Output length of a max pool; 0 when the window does not fit. */
export function maxPool1dOutputLength(length: number, opts: MaxPool1dOptions): number {
  return length < opts.kernel ? 0 : Math.floor((length - opts.kernel) / opts.stride) + 1;
}

/**
 * Max over windows x[n, c, t*stride .. t*stride + kernel). `argmax` holds the position in [0, L)
 * of the first maximum; a NaN anywhere in the window wins (first NaN), so NaN propagates and the
 * gradient flows to it.
 */
export function maxPool1d(
  x: FloatArray,
  xShape: readonly number[],
  opts: MaxPool1dOptions,
): { data: FloatArray; shape: number[]; argmax: Int32Array } {
  const { kernel, stride } = opts;
  if (!Number.isInteger(kernel) || kernel < 1 || !Number.isInteger(stride) || stride < 1) {
    throw new Error(`maxPool1d: bad options kernel=${kernel} stride=${stride}`);
  }
  checkRank3("maxPool1d", x.length, xShape);
  const [n, c, l] = xShape;
  const lout = maxPool1dOutputLength(l, opts);
  const rows = n * c;
  const out = allocLike(x, rows * lout);
  const argmax = new Int32Array(rows * lout);
  for (let r = 0; r < rows; r++) {
    const xo = r * l;
    const oo = r * lout;
    for (let t = 0; t < lout; t++) {
      const s = t * stride;
      let bi = s;
      let best = x[xo + s];
      // Once a NaN is found nothing can replace it, so the scan stops there.
      if (!Number.isNaN(best)) {
        for (let j = s + 1; j < s + kernel; j++) {
          const v = x[xo + j];
          if (v > best) {
            best = v;
            bi = j;
          } else if (Number.isNaN(v)) {
            best = v;
            bi = j;
            break;
          }
        }
      }
      out[oo + t] = best;
      argmax[oo + t] = bi;
    }
  }
  return { data: out, shape: [n, c, lout], argmax };
}

/** VJP of maxPool1d: dx [N, C, inputLength] with dx[n, c, argmax[n, c, t]] += g[n, c, t]. */
export function maxPool1dScatter(
  g: FloatArray,
  gShape: readonly number[],
  argmax: Int32Array,
  inputLength: number,
): { data: FloatArray; shape: number[] } {
  checkRank3("maxPool1dScatter", g.length, gShape);
  if (argmax.length !== g.length) throw new Error("maxPool1dScatter: argmax length mismatch");
  const [n, c, lout] = gShape;
  const rows = n * c;
  const out = allocLike(g, rows * inputLength);
  for (let r = 0; r < rows; r++) {
    const go = r * lout;
    const xo = r * inputLength;
    // Overlapping windows (stride < kernel) can pick the same position, hence +=.
    for (let t = 0; t < lout; t++) out[xo + argmax[go + t]] += g[go + t];
  }
  return { data: out, shape: [n, c, inputLength] };
}

/**
 * JVP of maxPool1d: picks dx [N, C, L] at the argmax positions, giving [N, C, Lout]. Lout is
 * inferred from argmax unless given (needed only to shape an empty result when N*C = 0).
 */
export function maxPool1dGather(
  dx: FloatArray,
  dxShape: readonly number[],
  argmax: Int32Array,
  outputLength?: number,
): { data: FloatArray; shape: number[] } {
  checkRank3("maxPool1dGather", dx.length, dxShape);
  const [n, c, l] = dxShape;
  const rows = n * c;
  const lout = outputLength ?? (rows === 0 ? 0 : argmax.length / rows);
  if (!Number.isInteger(lout) || argmax.length !== rows * lout) {
    throw new Error("maxPool1dGather: argmax length does not fit dx shape");
  }
  const out = allocLike(dx, rows * lout);
  for (let r = 0; r < rows; r++) {
    const xo = r * l;
    const oo = r * lout;
    for (let t = 0; t < lout; t++) out[oo + t] = dx[xo + argmax[oo + t]];
  }
  return { data: out, shape: [n, c, lout] };
}
