/**
 * Loop fusion for jit on the CPU: a run of consecutive elementwise equations over one shape
 * becomes one loop, and float32 sums of values of that shape close it as extra outputs.
 * Intermediates live in registers or locals instead of arrays (no allocation, one pass over
 * memory); only values used after the run are written out.
 *
 * Two code generators: WebAssembly SIMD (ops/cpu/wasm/elementwise-simd.ts) when every value is
 * float32 or bool and every operation has an exact SIMD form, else a generated JavaScript loop
 * (float64, transcendental functions other than float32 exp and tanh, engines without SIMD; runs
 * with sums stop before them). float32 exp and tanh are the polynomial programs of
 * ops/cpu/math-f32.ts in both generators and in the eager kernels.
 * Both round float32 at every step and sums accumulate in float64 in the eager kernels' order,
 * so fused results are bit-identical to eager evaluation.
 */

import { withMathHelpers } from "../ops/cpu/elementwise.js";
import {
  broadcastLoop,
  compileElementwiseSimd,
  type Operand,
  type SimdDType,
} from "../ops/cpu/wasm/elementwise-simd.js";
import type { ConcreteArray } from "../trace/concrete-array.js";
import { fromHost } from "../trace/concrete-array.js";
import { allocateUnfilled, type DType, type TypedArray } from "../trace/dtype.js";
import { broadcastIndexMap, type Shape, shapesEqual, sizeOf } from "../trace/shape.js";
import { type Eqn, type Jaxpr, readersOf, type Var } from "./jaxpr.js";

export interface FusedGroup {
  /** Equations [start, end) of the jaxpr. */
  start: number;
  end: number;
  inputs: Var[];
  outputs: Var[];
  /** The loop's shape: every elementwise output's, and every fused sum's input's. */
  shape: Shape;
  /** Which generator made the loop. */
  engine: "wasm" | "js";
  /** Runs the loop over the inputs' storage, returning new storage for each output. */
  run: (inputs: readonly TypedArray[]) => TypedArray[];
}

/** NumPy broadcasting of `from` to exactly `to` (trailing-aligned, size-1 axes expand). */
function broadcastsTo(from: Shape, to: Shape): boolean {
  if (from.length > to.length) return false;
  const offset = to.length - from.length;
  return from.every((d, i) => d === 1 || d === to[offset + i]);
}

const FUSIBLE_DTYPES: ReadonlySet<DType> = new Set(["float32", "float64", "bool"]);

/**
 * A single equation is worth a generated loop only through WebAssembly SIMD, and only when it
 * is large enough for the vector loop to beat the eager kernel's setup.
 */
const SINGLE_EQUATION_MIN_SIZE = 1024;

function fusible(jaxpr: Jaxpr, k: number): boolean {
  const e = jaxpr.eqns[k]!;
  if (!e.prim.fusion || e.outBinders.length !== 1) return false;
  const out = e.outBinders[0]!.aval;
  if (!FUSIBLE_DTYPES.has(out.dtype)) return false;
  const n = sizeOf(out.shape);
  return (
    n > 0 &&
    e.inputs.every((v) => FUSIBLE_DTYPES.has(v.aval.dtype) && broadcastsTo(v.aval.shape, out.shape))
  );
}

/** A float32 sum: it can close a SIMD loop over its input's shape (see elementwise-simd.ts). */
function fusibleSum(jaxpr: Jaxpr, k: number): boolean {
  const e = jaxpr.eqns[k]!;
  const x = e.inputs[0]?.aval;
  return e.prim.name === "reduce_sum" && x?.dtype === "float32" && sizeOf(x.shape) > 0;
}

/** The shape of the loop equation k can join: an elementwise output, or a sum's input. */
function loopShape(jaxpr: Jaxpr, k: number): Shape | null {
  if (fusible(jaxpr, k)) return jaxpr.eqns[k]!.outBinders[0]!.aval.shape;
  if (fusibleSum(jaxpr, k)) return jaxpr.eqns[k]!.inputs[0]!.aval.shape;
  return null;
}

/**
 * Finds the fusible runs of a jaxpr and generates their loops: consecutive equations over one
 * loop shape, where float32 sums of values of that shape join as extra outputs (their results
 * are not read inside the run). Sums need the SIMD generator; where it cannot take the run, the
 * run stops before its first sum.
 */
export function fuseElementwise(jaxpr: Jaxpr): FusedGroup[] {
  const usedAt = readersOf(jaxpr);
  const jaxprOuts = new Set(jaxpr.outs);
  const groups: FusedGroup[] = [];
  let k = 0;
  while (k < jaxpr.eqns.length) {
    const shape = loopShape(jaxpr, k);
    if (!shape) {
      k++;
      continue;
    }
    const sums = new Set<Var>();
    const sumAt: number[] = [];
    let end = k;
    for (; end < jaxpr.eqns.length; end++) {
      const next = loopShape(jaxpr, end);
      const e = jaxpr.eqns[end]!;
      if (!next || !shapesEqual(next, shape) || e.inputs.some((v) => sums.has(v))) break;
      if (fusibleSum(jaxpr, end)) {
        sums.add(e.outBinders[0]!);
        sumAt.push(end);
      }
    }
    let group = compile(jaxpr, k, end, shape, usedAt, jaxprOuts, sumAt.length > 0);
    if (!group && sumAt[0]! > k) {
      end = sumAt[0]!;
      group = compile(jaxpr, k, end, shape, usedAt, jaxprOuts, false);
    }
    if (!group) {
      k++;
      continue;
    }
    if (end - k >= 2 || (group.engine === "wasm" && sizeOf(shape) >= SINGLE_EQUATION_MIN_SIZE)) {
      groups.push(group);
    }
    k = end;
  }
  return groups;
}

/** The values a run writes out: those read after it, or returned by the jaxpr. */
function runOutputs(
  jaxpr: Jaxpr,
  start: number,
  end: number,
  usedAt: Map<Var, number[]>,
  jaxprOuts: Set<Var>,
): Var[] {
  return jaxpr.eqns
    .slice(start, end)
    .map((e) => e.outBinders[0]!)
    .filter((v) => (usedAt.get(v) ?? []).some((u) => u >= end) || jaxprOuts.has(v));
}

/** The loop for equations [start, end); with sums, only the SIMD generator (else null). */
function compile(
  jaxpr: Jaxpr,
  start: number,
  end: number,
  shape: Shape,
  usedAt: Map<Var, number[]>,
  jaxprOuts: Set<Var>,
  withSums: boolean,
): FusedGroup | null {
  const outputs = runOutputs(jaxpr, start, end, usedAt, jaxprOuts);
  const program = stepProgram(jaxpr.eqns.slice(start, end), outputs);
  const inputs = program.inputs;
  const spec: RunSpec = { shape, program };
  const simd = compileSimd(spec);
  if (simd) return { start, end, inputs, outputs, shape, engine: "wasm", run: simd };
  if (withSums) return null;
  return { start, end, inputs, outputs, shape, engine: "js", run: compileJs(spec) };
}

/** Equations [start, end) of a jaxpr as one loop over `shape`, with its inputs and outputs. */
interface RunSpec {
  shape: Shape;
  program: StepProgram;
}

const isSimdDType = (d: DType): d is SimdDType => d === "float32" || d === "bool";

/** A straight-line program of equations (see `stepProgram`). */
export interface StepProgram {
  /** Values read from outside, in order of first use. */
  inputs: Var[];
  /** The equations, each operand an input or an earlier step. */
  steps: { eqn: Eqn; args: Operand[] }[];
  /** The steps whose values are written out (those of `written` the equations make). */
  outputs: number[];
}

/**
 * Equations as a program over steps for a loop generator (SIMD here, WGSL in interpret.ts):
 * operands resolved to inputs or earlier steps.
 */
export function stepProgram(eqns: readonly Eqn[], written: readonly Var[]): StepProgram {
  const stepOf = new Map<Var, number>();
  const inputs: Var[] = [];
  const steps = eqns.map((eqn, j) => {
    const args = eqn.inputs.map((v): Operand => {
      const s = stepOf.get(v);
      if (s !== undefined) return { step: s };
      if (!inputs.includes(v)) inputs.push(v);
      return { input: inputs.indexOf(v) };
    });
    stepOf.set(eqn.outBinders[0]!, j);
    return { eqn, args };
  });
  const outputs = [...new Set(written.filter((v) => stepOf.has(v)))].map((v) => stepOf.get(v)!);
  return { inputs, steps, outputs };
}

function compileSimd({ shape, program: p }: RunSpec): FusedGroup["run"] | null {
  const vars = [...p.inputs, ...p.steps.map((s) => s.eqn.outBinders[0]!)];
  if (!vars.every((v) => isSimdDType(v.aval.dtype))) return null;
  return compileElementwiseSimd({
    shape,
    inputs: p.inputs.map((v) => ({ shape: v.aval.shape, dtype: v.aval.dtype as SimdDType })),
    steps: p.steps.map(({ eqn, args }) => ({
      op: eqn.prim.name,
      args,
      dtype: eqn.outBinders[0]!.aval.dtype as SimdDType,
      ...(eqn.prim.name === "reduce_sum" ? { axes: (eqn.params as { axes: number[] }).axes } : {}),
    })),
    outputs: p.outputs,
  });
}

/**
 * The JavaScript loop, each value in a local: nested loops over the broadcast's loop axes with
 * each input read at its row's offset plus the column (or once per row, or once), as the SIMD
 * loops do; beyond three loop axes, one flat loop reading broadcast inputs through index maps.
 */
function compileJs({ shape, program }: RunSpec): FusedGroup["run"] {
  const { inputs, steps } = program;
  const loop = broadcastLoop(
    shape,
    inputs.map((v) => v.aval.shape),
  );
  const maps: Int32Array[] = [];
  const hoisted: string[] = [];
  const perRow: string[] = [];
  // How each input is read inside the innermost loop.
  const reads = inputs.map((v, i) => {
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
    if (shapesEqual(v.aval.shape, shape)) return `I${i}[o]`;
    // A broadcast operand reads through an index map computed once, when the jaxpr is planned.
    maps[i] = broadcastIndexMap(v.aval.shape, shape)!;
    hoisted.push(`const M${i} = maps[${i}];`);
    return `I${i}[M${i}[o]]`;
  });
  const body: string[] = [];
  for (const [k, { eqn, args }] of steps.entries()) {
    const operands = args.map((a) => ("step" in a ? `v${a.step}` : reads[a.input]!));
    const names = ["a", "b", "c"].slice(0, operands.length);
    const f32 = eqn.outBinders[0]!.aval.dtype === "float32";
    const { expr, f32Expr } = eqn.prim.fusion!;
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
    // (a, b, c name the operands of the primitives' expressions)
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
    const outs = program.outputs.map((k) =>
      allocateUnfilled(steps[k]!.eqn.outBinders[0]!.aval.dtype, n),
    );
    run(ins, outs, maps);
    return outs;
  };
}

/** Runs a fused group on CPU arrays, returning its materialised outputs. */
export function runFused(group: FusedGroup, inputs: ConcreteArray[]): ConcreteArray[] {
  const backend = inputs[0]!.backend;
  const outData = group.run(inputs.map((x) => x.buffer as TypedArray));
  return outData.map((d, j) => {
    const { shape, dtype } = group.outputs[j]!.aval;
    return fromHost(d, shape, dtype, backend);
  });
}
