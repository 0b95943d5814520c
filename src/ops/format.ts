/** NumPy-style printing of arrays: values, shape and dtype, with `...` elision when large. */
import type { Array } from "../trace/array.js";
import { isFloat, type TypedArray } from "../trace/dtype.js";
import { sizeOf } from "../trace/shape.js";

const THRESHOLD = 1000; // elide above this many elements, as NumPy does
const EDGE = 3;

function formatNumber(v: number, float: boolean): string {
  if (!float) return String(v);
  if (Number.isNaN(v)) return "nan";
  if (!Number.isFinite(v)) return v > 0 ? "inf" : "-inf";
  if (Number.isInteger(v) && Math.abs(v) < 1e16) return `${v}.`;
  const abs = Math.abs(v);
  if (abs !== 0 && (abs < 1e-4 || abs >= 1e8)) return v.toExponential(4);
  return String(Number(v.toPrecision(6)));
}

export function formatArray(x: Array, data: TypedArray | null): string {
  const header = `shape=[${x.shape.join(", ")}], dtype=${x.dtype}`;
  if (data === null) return `array(<not on the host: use await x.data()>, ${header})`;
  const float = isFloat(x.dtype);
  const summarise = sizeOf(x.shape) > THRESHOLD;
  const fmt = (v: number) => (x.dtype === "bool" ? (v ? "true" : "false") : formatNumber(v, float));
  const shape = x.shape;
  const strides: number[] = [];
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i]!;
  }
  const render = (axis: number, offset: number, indent: string): string => {
    if (axis === shape.length) return fmt(data[offset]!);
    const n = shape[axis]!;
    const indices =
      summarise && n > 2 * EDGE
        ? [
            ...globalThis.Array.from({ length: EDGE }, (_, i) => i),
            -1,
            ...globalThis.Array.from({ length: EDGE }, (_, i) => n - EDGE + i),
          ]
        : globalThis.Array.from({ length: n }, (_, i) => i);
    const parts = indices.map((i) =>
      i === -1 ? "..." : render(axis + 1, offset + i * strides[axis]!, `${indent} `),
    );
    const last = axis === shape.length - 1;
    const sep = last ? ", " : `,${"\n".repeat(shape.length - axis - 1)}${indent} `;
    return `[${parts.join(sep)}]`;
  };
  return `array(${render(0, 0, "      ")}, ${header})`;
}
