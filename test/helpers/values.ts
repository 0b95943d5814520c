/** Deterministic test values and pytree comparison shared by the transform suites. */
import { expect } from "vitest";
import { type DType, Array as NbiArray, np, tree } from "../../src/index.js";
import { sizeOf, uniforms } from "./finite-diff.js";

export { sizeOf, uniforms };

/**
 * float32 values every elementwise check should meet: NaN, signed zeros and infinities, small
 * integers and halves (rounding ties), values near exp's overflow and underflow, the subnormal
 * and normal extremes, and the largest finite magnitudes.
 */
export const FLOAT32_SPECIALS: readonly number[] = [
  Number.NaN,
  0,
  -0,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  1,
  -1,
  0.5,
  -0.5,
  -2.5,
  3,
  1e-3,
  -7.25,
  0.625,
  88.5,
  -104.5,
  1.401298464324817e-45, // smallest subnormal
  -1.401298464324817e-45,
  1.1754942106924411e-38, // largest subnormal
  1.1754943508222875e-38, // smallest normal
  3.4028234663852886e38, // largest finite
  -3.4028234663852886e38,
];

export function fromValues(values: number[], shape: readonly number[], dtype: DType): NbiArray {
  const data =
    dtype === "float64"
      ? Float64Array.from(values)
      : dtype === "int32"
        ? Int32Array.from(values)
        : dtype === "bool"
          ? Uint8Array.from(values)
          : Float32Array.from(values);
  return np.fromTypedArray(data, [...shape], { dtype });
}

/** Uniform values in [-scale, scale). */
export function randn(shape: readonly number[], seed: number, dtype: DType = "float32", scale = 1) {
  return fromValues(
    uniforms(sizeOf(shape), seed).map((u) => (2 * u - 1) * scale),
    shape,
    dtype,
  );
}

export interface Tol {
  rtol?: number;
  atol?: number;
}

/**
 * Asserts two pytrees of arrays have one structure, equal shapes and dtypes, and close values
 * (exactly equal for integer and bool leaves).
 */
export async function expectTreeClose(
  actual: unknown,
  expected: unknown,
  tol: Tol = {},
  label = "",
) {
  const rtol = tol.rtol ?? 1e-5;
  const atol = tol.atol ?? 1e-6;
  const [la, da] = tree.flatten<NbiArray>(actual);
  const [le, de] = tree.flatten<NbiArray>(expected);
  expect(tree.treeDefToString(da), `${label} structure`).toBe(tree.treeDefToString(de));
  for (let i = 0; i < le.length; i++) {
    const a = la[i]!;
    const e = le[i]!;
    const where = `${label} leaf ${i}`;
    expect(a).toBeInstanceOf(NbiArray);
    expect(a.shape, `${where} shape`).toEqual(e.shape);
    expect(a.dtype, `${where} dtype`).toBe(e.dtype);
    const av = await a.data();
    const ev = await e.data();
    const exact = a.dtype !== "float32" && a.dtype !== "float64";
    const bad: string[] = [];
    for (let k = 0; k < ev.length; k++) {
      const x = Number(av[k]);
      const y = Number(ev[k]);
      const ok = exact
        ? x === y
        : (Number.isNaN(x) && Number.isNaN(y)) || Math.abs(x - y) <= atol + rtol * Math.abs(y);
      if (!ok && bad.length < 5) bad.push(`[${k}] got ${x}, expected ${y}`);
    }
    expect(bad, where).toEqual([]);
  }
}

/** Central finite differences (float64): d f(x) / d x with shape out.shape ++ x.shape. */
export function fdJacobian(f: (x: NbiArray) => NbiArray, x: NbiArray, h = 1e-6): NbiArray {
  const base = globalThis.Array.from(x.dataSync());
  const cols: number[][] = [];
  let outShape: readonly number[] = [];
  for (let i = 0; i < base.length; i++) {
    const plus = [...base];
    const minus = [...base];
    plus[i]! += h;
    minus[i]! -= h;
    const fp = f(fromValues(plus, x.shape, "float64"));
    const fm = f(fromValues(minus, x.shape, "float64"));
    outShape = fp.shape;
    const vm = fm.dataSync();
    cols.push(globalThis.Array.from(fp.dataSync(), (v, k) => (v - vm[k]!) / (2 * h)));
  }
  const data: number[] = [];
  for (let o = 0; o < sizeOf(outShape); o++) {
    for (let i = 0; i < base.length; i++) data.push(cols[i]![o]!);
  }
  return fromValues(data, [...outShape, ...x.shape], "float64");
}

/** `x.item()` read back asynchronously, so it works on every backend. */
export async function item(x: NbiArray): Promise<number> {
  if (x.size !== 1) throw new Error(`item: expected one element, got shape [${x.shape}]`);
  return Number((await x.data())[0]);
}

/** `x.tolist()` read back asynchronously: the same nested arrays of numbers on every backend. */
export async function tolist(x: NbiArray): Promise<unknown> {
  const flat = Array.from(await x.data(), Number);
  const build = (offset: number, dim: number): unknown => {
    if (dim === x.shape.length) return flat[offset];
    const stride = x.shape.slice(dim + 1).reduce((p, d) => p * d, 1);
    return Array.from({ length: x.shape[dim]! }, (_, i) => build(offset + i * stride, dim + 1));
  };
  return build(0, 0);
}
