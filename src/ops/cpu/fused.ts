/**
 * The CPU backend's fused-group compilation (`Backend.fusion`, attached to the CPU backend by
 * ops/primitives/elementwise.ts): a run of elementwise operations over one shape, closed by
 * float32 sums of values of that shape, as one loop. Intermediates live in registers or locals
 * instead of arrays (no allocation, one pass over memory); only the program's outputs are
 * written out. jit plans its groups with this compiler (transforms/fusion.ts asks it what each
 * candidate run compiles to), so what it accepts decides the groups every backend runs.
 *
 * Two code generators: WebAssembly SIMD (wasm/elementwise-simd.ts) when every value is float32
 * or bool and every operation has an exact SIMD form, else a generated JavaScript loop (float64,
 * transcendental functions other than float32 exp, tanh, log and log1p, engines without SIMD).
 * Sums need the SIMD generator: a program with sums that it cannot take compiles to nothing (the
 * planner then ends the run before its first sum). A single operation is worth a loop only through SIMD
 * and only over at least `SINGLE_STEP_MIN_SIZE` elements; otherwise the eager kernel runs it.
 *
 * Both generators take each operation's scalar forms from the scalar-op table
 * (ops/scalar-ops.ts: the JavaScript expression, and whether and how SIMD does it); float32 exp
 * and tanh are the polynomial programs of math-f32.ts in both and in the eager kernels. Both
 * round float32 at every step and sums accumulate in float64 in the eager kernels' order, so
 * fused results are bit-identical to eager evaluation.
 */
import {
  type BackendFusion,
  type ConcreteArray,
  cpuBackend,
  type FusedKernel,
  type FusedProgram,
  fromHost,
} from "../../trace/backend.js";
import { allocateUnfilled, type DType, type TypedArray } from "../../trace/dtype.js";
import { broadcastIndexMap, shapesEqual, sizeOf } from "../../trace/shape.js";
import { isElementwiseOp, SCALAR_OPS } from "../scalar-ops.js";
import { withMathHelpers } from "./elementwise.js";
import {
  broadcastLoop,
  compileElementwiseSimd,
  type ElementwiseRunner,
  type SimdDType,
} from "./wasm/elementwise-simd.js";

/**
 * A single operation is worth a generated loop only through WebAssembly SIMD, and only when it
 * is large enough for the vector loop to beat the eager kernel's setup.
 */
const SINGLE_STEP_MIN_SIZE = 1024;

const isSimdDType = (d: DType): d is SimdDType => d === "float32" || d === "bool";

/** The program as a WebAssembly SIMD loop; null where the SIMD generator cannot take it. */
function compileSimd(p: FusedProgram): ElementwiseRunner | null {
  if (!p.inputs.every((x) => isSimdDType(x.dtype)) || !p.steps.every((s) => isSimdDType(s.dtype)))
    return null;
  return compileElementwiseSimd({
    shape: p.shape,
    inputs: p.inputs.map((x) => ({ shape: x.shape, dtype: x.dtype as SimdDType })),
    steps: p.steps.map((s) => ({
      op: s.op,
      args: [...s.args],
      dtype: s.dtype as SimdDType,
      ...(s.op === "reduce_sum" ? { axes: s.axes! } : {}),
    })),
    outputs: [...p.outputs],
  });
}

/**
 * The JavaScript loop, each value in a local: nested loops over the broadcast's loop axes with
 * each input read at its row's offset plus the column (or once per row, or once), as the SIMD
 * loops do; beyond three loop axes, one flat loop reading broadcast inputs through index maps.
 * Elementwise steps only (the caller checked).
 */
function compileJs(program: FusedProgram): ElementwiseRunner {
  const { shape, inputs, steps } = program;
  const loop = broadcastLoop(
    shape,
    inputs.map((x) => x.shape),
  );
  const maps: Int32Array[] = [];
  const hoisted: string[] = [];
  const perRow: string[] = [];
  // How each input is read inside the innermost loop.
  const reads = inputs.map((x, i) => {
    if (loop) {
      const [s0, s1, s2] = loop.strides[i]!;
      const row = `i0 * ${s0} + i1 * ${s1}`;
      hoisted.push(`const I${i} = I[${i}];`);
      if (s0 === 0 && s1 === 0 && s2 === 0) {
        hoisted.push(`const s${i} = I${i}[0];`);
        return `s${i}`;
      }
      if (s2 === 0) {
        perRow.push(`const h${i} = I${i}[${row}];`);
        return `h${i}`;
      }
      perRow.push(`const r${i} = ${row};`);
      return `I${i}[r${i} + col]`;
    }
    hoisted.push(`const I${i} = I[${i}];`);
    if (shapesEqual(x.shape, shape)) return `I${i}[o]`;
    // A broadcast operand reads through an index map computed once, when the group is compiled.
    maps[i] = broadcastIndexMap(x.shape, shape)!;
    hoisted.push(`const M${i} = maps[${i}];`);
    return `I${i}[M${i}[o]]`;
  });
  const body: string[] = [];
  for (const [k, { op, args, dtype }] of steps.entries()) {
    const operands = args.map((a) => ("step" in a ? `v${a.step}` : reads[a.input]!));
    const names = ["a", "b", "c"].slice(0, operands.length);
    const f32 = dtype === "float32";
    // The op's JavaScript form from the scalar-op table; float32 where it differs (the programs).
    const { expr, f32Expr } = SCALAR_OPS[op as keyof typeof SCALAR_OPS].js as {
      expr: string;
      f32Expr?: string;
    };
    const value = `(${names.map((n, i) => `${n} = ${operands[i]}`).join(", ")}, ${f32 && f32Expr ? f32Expr : expr})`;
    const rounded = f32 ? `Math.fround(${value})` : value;
    body.push(`const v${k} = ${rounded};`);
    const j = program.outputs.indexOf(k);
    if (j >= 0) body.push(`O${j}[o] = v${k};`);
  }
  const [d0, d1, d2] = loop?.dims ?? [1, 1, sizeOf(shape)];
  const source = [
    "let a, b, c;",
    ...hoisted,
    ...program.outputs.map((_, j) => `const O${j} = O[${j}];`),
    "let o = 0;",
    `for (let i0 = 0; i0 < ${d0}; i0++) for (let i1 = 0; i1 < ${d1}; i1++) {`,
    ...perRow,
    // (a, b, c name the operands of the table's expressions)
    `for (let col = 0; col < ${d2}; col++, o++) {`,
    ...body,
    "}",
    "}",
  ].join("\n");
  const run = withMathHelpers<(i: readonly TypedArray[], o: TypedArray[], m: Int32Array[]) => void>(
    ["I", "O", "maps"],
    source,
  );
  const n = sizeOf(shape);
  return (ins) => {
    const outs = program.outputs.map((k) => allocateUnfilled(steps[k]!.dtype, n));
    run(ins, outs, maps);
    return outs;
  };
}

/**
 * A loop over typed arrays as a kernel over CPU arrays: each output of the program's shape, or
 * of a sum's (the program's shape without the summed axes).
 */
function kernelOf(p: FusedProgram, run: ElementwiseRunner, engine: string): FusedKernel {
  const outs = p.outputs.map((k) => {
    const { dtype, axes } = p.steps[k]!;
    return { dtype, shape: axes ? p.shape.filter((_, i) => !axes.includes(i)) : p.shape };
  });
  const kernel = (inputs: readonly ConcreteArray[]) =>
    run(inputs.map((x) => x.buffer as TypedArray)).map((d, j) =>
      fromHost(d, outs[j]!.shape, outs[j]!.dtype, cpuBackend),
    );
  return Object.assign(kernel, { engine });
}

/**
 * The CPU backend's fused-group compiler: SIMD where it takes the program, else (no sums) the
 * JavaScript loop; null for a program with sums that SIMD cannot take, for a single operation
 * that only the JavaScript loop takes or that covers fewer than `SINGLE_STEP_MIN_SIZE` elements,
 * and for an operation outside the scalar-op table.
 */
export const cpuFusion: BackendFusion = {
  sums: true,
  compile(p) {
    if (!p.steps.every((s) => s.op === "reduce_sum" || isElementwiseOp(s.op))) return null;
    const simd = compileSimd(p);
    const single = p.steps.length === 1;
    if (simd) {
      return single && sizeOf(p.shape) < SINGLE_STEP_MIN_SIZE ? null : kernelOf(p, simd, "wasm");
    }
    if (single || p.steps.some((s) => s.op === "reduce_sum")) return null;
    return kernelOf(p, compileJs(p), "js");
  },
};
