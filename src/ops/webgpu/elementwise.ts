/**
 * Elementwise WGSL kernels: unary math, broadcasting binary arithmetic and comparisons, select
 * and cast. Broadcasting reads operands through strides (0 on broadcast axes), never through
 * materialised copies. NaN tests use bit patterns, since WGSL lets compilers assume `x != x` is
 * false.
 */
import type { ConcreteArray } from "../../trace/concrete-array.js";
import type { DType } from "../../trace/dtype.js";
import type { Kernel } from "../../trace/primitive.js";
import { broadcastShapes, type Shape, sizeOf } from "../../trace/shape.js";
import {
  type BinaryOp,
  type CompareOp,
  type ElementwiseOp,
  isElementwiseOp,
  type UintOp,
  type UnaryOp,
  type WgslClass,
  wgslOf,
} from "../scalar-ops.js";
import {
  bindings,
  dispatch,
  FLAT_MAIN,
  flatGrid,
  gpuBuf,
  memoSource,
  newArray,
  strides,
  wgslType,
} from "./dispatch.js";

/** WGSL helpers the elementwise expressions call (NaN-correct max/min, log1p, pow, ...). */
export const PRELUDE = `
fn isnan_f(a: f32) -> bool { return (bitcast<u32>(a) & 0x7fffffffu) > 0x7f800000u; }
fn f32_bits(u: u32) -> f32 { return bitcast<f32>(u); }
fn nan_f() -> f32 { return f32_bits(0x7fc00000u); }
fn inf_f() -> f32 { return f32_bits(0x7f800000u); }
// log1p = 2 atanh(a / (2 + a)) by its series near 0: WGSL's log has an absolute (not relative)
// error bound near 1, so log(1 + a) alone loses every digit for tiny a.
fn log1p_f(a: f32) -> f32 {
  if (isnan_f(a) || a == inf_f()) { return a; }
  if (abs(a) < 0.4) {
    let z = a / (2.0 + a);
    let z2 = z * z;
    let s = 1.0 + z2 * (1.0 / 3.0 + z2 * (1.0 / 5.0 + z2 * (1.0 / 7.0 + z2 * (1.0 / 9.0 +
      z2 * (1.0 / 11.0 + z2 * (1.0 / 13.0 + z2 * (1.0 / 15.0 + z2 / 17.0)))))));
    return 2.0 * z * s;
  }
  return log(1.0 + a);
}
// expm1 by its Taylor series near 0 (same reason), exp(a) - 1 elsewhere.
fn expm1_f(a: f32) -> f32 {
  if (isnan_f(a)) { return a; }
  if (abs(a) < 0.5) {
    return a * (1.0 + a * (1.0 / 2.0 + a * (1.0 / 6.0 + a * (1.0 / 24.0 + a * (1.0 / 120.0 +
      a * (1.0 / 720.0 + a * (1.0 / 5040.0 + a * (1.0 / 40320.0 + a / 362880.0))))))));
  }
  if (a > 88.8) { return inf_f(); }
  return exp(a) - 1.0;
}
fn tanh_f(a: f32) -> f32 {
  if (isnan_f(a)) { return a; }
  if (abs(a) > 15.0) { return sign(a); }
  if (abs(a) < 0.0005) { return a; }
  return tanh(a);
}
fn nan2(a: f32, b: f32) -> bool { return isnan_f(a) || isnan_f(b); }
fn max_f(a: f32, b: f32) -> f32 { if (isnan_f(a)) { return a; } if (isnan_f(b)) { return b; } return max(a, b); }
fn min_f(a: f32, b: f32) -> f32 { if (isnan_f(a)) { return a; } if (isnan_f(b)) { return b; } return min(a, b); }
fn sign_f(a: f32) -> f32 { if (a > 0.0) { return 1.0; } if (a < 0.0) { return -1.0; } return a; }
fn pow_f(a: f32, b: f32) -> f32 {
  if (b == 0.0) { return 1.0; }
  if (isnan_f(a) || isnan_f(b)) { return nan_f(); }
  if (b == 1.0) { return a; }
  if (b == 2.0) { return a * a; }
  if (b == 0.5 && a >= 0.0) { return sqrt(a); }
  if (b == -1.0) { return 1.0 / a; }
  let odd = floor(b) == b && abs(b) < 16777216.0 && (i32(abs(b)) & 1) == 1;
  if (a == 0.0) {
    // ±0: +inf or 0 by the exponent's sign; -0 keeps its sign for odd integer exponents.
    let r = select(0.0, inf_f(), b < 0.0);
    return select(r, -r, odd && (bitcast<u32>(a) & 0x80000000u) != 0u);
  }
  if (a >= 0.0) { return exp2(b * log2(a)); }
  if (floor(b) != b) { return nan_f(); }
  let r = exp2(b * log2(-a));
  return select(r, -r, odd);
}
fn pow_i(a: i32, b: i32) -> i32 {
  if (b < 0) { if (a == 1) { return 1; } if (a == -1) { return select(1, -1, (b & 1) == 1); } return 0; }
  var r = 1; var base = a; var e = b;
  loop { if (e == 0) { break; } if ((e & 1) == 1) { r = r * base; } base = base * base; e = e >> 1u; }
  return r;
}
fn pow_u(a: u32, b: u32) -> u32 {
  var r = 1u; var base = a; var e = b;
  loop { if (e == 0u) { break; } if ((e & 1u) == 1u) { r = r * base; } base = base * base; e = e >> 1u; }
  return r;
}
fn f32_to_i32(a: f32) -> i32 { if (isnan_f(a)) { return 0; } return i32(trunc(a)); }
fn f32_to_u32(a: f32) -> u32 {
  if (isnan_f(a)) { return 0u; }
  if (a < 0.0) { return bitcast<u32>(i32(trunc(a))); }
  return u32(trunc(a));
}
`;

const cls = (d: DType): WgslClass => (d === "float32" ? "f" : d === "int32" ? "i" : "u");

/**
 * The WGSL expression (of `a`, `b`, `c`) the unfused kernel evaluates for elementwise primitive
 * `op` with operands of `dtype` (the condition's dtype aside, for select), or undefined when
 * WebGPU has none. The expressions are the scalar-op table's (ops/scalar-ops.ts); fused kernels
 * (fused.ts) call these same expressions, so they keep the unfused semantics.
 */
export function elementwiseWgsl(op: string, dtype: DType): string | undefined {
  return isElementwiseOp(op) ? wgslOf(op, cls(dtype)) : undefined;
}

/**
 * out[i] = expr(operands at i) with NumPy broadcasting. meta: [n, rank, shape(rank),
 * strides of each operand(rank each)].
 */
const elementwiseSource = memoSource(function elementwiseSource(
  types: string[],
  outType: string,
  expr: string,
  rank: number,
): string {
  const names = types.map((_, k) => String.fromCharCode(97 + k)); // a, b, c
  const decls = types.map((t, k) => `in_${names[k]}: array<${t}>`);
  const contiguous = rank < 0;
  const lines: string[] = [];
  if (contiguous) {
    for (const nm of names) lines.push(`  let ${nm} = in_${nm}[i];`);
  } else {
    lines.push(`  var rem = i;`);
    for (const nm of names) lines.push(`  var o_${nm} = 0u;`);
    lines.push(`  for (var d = ${rank - 1}; d >= 0; d--) {`);
    lines.push(`    let s = prm[2u + u32(d)];`);
    lines.push(`    let c = rem % s; rem = rem / s;`);
    names.forEach((nm, k) => {
      lines.push(`    o_${nm} += c * prm[2u + ${(k + 1) * rank}u + u32(d)];`);
    });
    lines.push(`  }`);
    for (const nm of names) lines.push(`  let ${nm} = in_${nm}[o_${nm}];`);
  }
  return `${PRELUDE}
${bindings(decls, [`out: array<${outType}>`])}
${FLAT_MAIN}
  if (i >= prm[0]) { return; }
${lines.join("\n")}
  out[i] = ${expr};
}`;
});

function runElementwise(
  inputs: ConcreteArray[],
  outDtype: DType,
  expr: string,
  outShape: Shape,
): ConcreteArray {
  const out = newArray(outShape, outDtype);
  const n = sizeOf(outShape);
  if (n === 0) return out;
  const types = inputs.map((x) => wgslType(x.dtype));
  const same = inputs.every(
    (x) => x.shape.length === outShape.length && x.shape.every((d, i) => d === outShape[i]),
  );
  const rank = outShape.length;
  const meta = [n, rank, ...outShape];
  if (!same) {
    for (const x of inputs) {
      // Strides of x aligned to the output's trailing axes, 0 where x broadcasts.
      const xs = strides(x.shape);
      const off = rank - x.shape.length;
      for (let d = 0; d < rank; d++) {
        const xd = d - off;
        meta.push(xd < 0 || x.shape[xd] === 1 ? 0 : xs[xd]!);
      }
    }
  }
  const source = elementwiseSource(types, wgslType(outDtype), expr, same ? -1 : rank);
  dispatch(source, [...inputs.map(gpuBuf), out.buffer as never], meta, flatGrid(n));
  return out;
}

/** The table's WGSL for `op` on operands of `d`; absent classes are refused by abstractEval. */
function exprFor(op: ElementwiseOp, d: DType): string {
  const e = wgslOf(op, cls(d));
  if (e === undefined) throw new Error(`internal: no WGSL for ${op} on ${d}`);
  return e;
}

export function gpuUnary<P>(name: UnaryOp): Kernel<P> {
  return ([x]) => [runElementwise([x!], x!.dtype, exprFor(name, x!.dtype), x!.shape)];
}

/** Broadcasting binary kernel; comparisons pass outDtype "bool". */
export function gpuBinary<P>(name: BinaryOp | CompareOp | UintOp, outDtype?: DType): Kernel<P> {
  return ([a, b]) => {
    const shape = broadcastShapes(name, a!.shape, b!.shape);
    return [runElementwise([a!, b!], outDtype ?? a!.dtype, exprFor(name, a!.dtype), shape)];
  };
}

export const gpuSelect: Kernel<Record<string, never>> = ([c, x, y]) => {
  const shape = broadcastShapes("where", c!.shape, x!.shape, y!.shape);
  return [runElementwise([c!, x!, y!], x!.dtype, exprFor("select", x!.dtype), shape)];
};

function castExpr(from: DType, to: DType): string {
  const f = cls(from);
  if (to === "bool") {
    return from === "float32" ? "select(0u, 1u, a != 0.0 || isnan_f(a))" : "select(0u, 1u, a != 0)";
  }
  if (to === "float32") return f === "f" ? "a" : "f32(a)";
  if (to === "int32") return f === "f" ? "f32_to_i32(a)" : f === "i" ? "a" : "bitcast<i32>(a)";
  // uint32 (bool is already u32)
  return f === "f" ? "f32_to_u32(a)" : f === "i" ? "bitcast<u32>(a)" : "a";
}

export const gpuCast: Kernel<{ dtype: DType }> = ([x], { dtype }) => [
  runElementwise([x!], dtype, castExpr(x!.dtype, dtype), x!.shape),
];
