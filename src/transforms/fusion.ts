/**
 * Fusion planning for jit: which runs of equations become fused groups. A candidate run is a
 * sequence of consecutive elementwise equations over one shape, where float32 sums of values of
 * that shape join as extra outputs; only values used after the run are written out.
 *
 * The groups are those the CPU backend's compiler takes (`cpuBackend.fusion`, ops/cpu/fused.ts:
 * WebAssembly SIMD or generated JavaScript loops), asked here, when the plan is made, what each
 * candidate compiles to: null for a run with sums means the run stops before its first sum, and
 * null otherwise means no group starts at that equation (a single equation is worth a loop only
 * where the CPU's compiler says so). Every backend runs the same groups (interpret.ts); the
 * CPU's kernels are the ones made here, other backends compile the groups on first use. No code
 * is generated in this file.
 */

import {
  type Backend,
  type BackendFusion,
  cpuBackend,
  type FusedKernel,
  type FusedOperand,
  type FusedProgram,
} from "../trace/backend.js";
import type { DType } from "../trace/dtype.js";
import { type Shape, shapesEqual, sizeOf } from "../trace/shape.js";
import { type Eqn, type Jaxpr, readersOf, type Var } from "./jaxpr.js";

export interface FusedGroup {
  /** Equations [start, end) of the jaxpr. */
  start: number;
  end: number;
  /** The program's inputs, in order of first use. */
  inputs: Var[];
  /** The values the group writes out (those read after it or returned), in equation order. */
  outputs: Var[];
  /** The loop's shape: every elementwise output's, and every fused sum's input's. */
  shape: Shape;
  /** The backend whose compiler took the group (the CPU). */
  backend: Backend;
  /** The group as that compiler took it: every equation, sums included with their axes. */
  program: FusedProgram;
  /** Its kernel for `program` (outputs in the order of `outputs`). */
  kernel: FusedKernel;
  /** Which of the CPU's generators made the kernel ("wasm" or "js"). */
  engine: string | undefined;
}

/** NumPy broadcasting of `from` to exactly `to` (trailing-aligned, size-1 axes expand). */
function broadcastsTo(from: Shape, to: Shape): boolean {
  if (from.length > to.length) return false;
  const offset = to.length - from.length;
  return from.every((d, i) => d === 1 || d === to[offset + i]);
}

const FUSIBLE_DTYPES: ReadonlySet<DType> = new Set(["float32", "float64", "bool"]);

function fusible(jaxpr: Jaxpr, k: number): boolean {
  const e = jaxpr.eqns[k]!;
  if (!e.prim.fusible || e.outBinders.length !== 1) return false;
  const out = e.outBinders[0]!.aval;
  if (!FUSIBLE_DTYPES.has(out.dtype)) return false;
  const n = sizeOf(out.shape);
  return (
    n > 0 &&
    e.inputs.every((v) => FUSIBLE_DTYPES.has(v.aval.dtype) && broadcastsTo(v.aval.shape, out.shape))
  );
}

/** A float32 sum: it can close a loop over its input's shape (where the CPU's SIMD loops take it). */
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
 * Finds the fusible runs of a jaxpr and compiles them with the CPU's fused-loop compiler:
 * consecutive equations over one loop shape, where float32 sums of values of that shape join as
 * extra outputs (their results are not read inside the run). Where the compiler takes no run
 * with the sums, the run stops before its first sum; where it takes no run at all, none starts
 * at that equation. No groups where the CPU has no compiler attached.
 */
export function fuseElementwise(jaxpr: Jaxpr): FusedGroup[] {
  const planner = cpuBackend;
  const compiler = planner.fusion;
  if (!compiler) return [];
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
    let group = compile(planner, compiler, jaxpr, k, end, shape, usedAt, jaxprOuts);
    if (!group && sumAt[0]! > k) {
      end = sumAt[0]!;
      group = compile(planner, compiler, jaxpr, k, end, shape, usedAt, jaxprOuts);
    }
    if (!group) {
      k++;
      continue;
    }
    groups.push(group);
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

/** Equations [start, end) as the compiler takes them: a group, or null where it takes none. */
function compile(
  backend: Backend,
  compiler: BackendFusion,
  jaxpr: Jaxpr,
  start: number,
  end: number,
  shape: Shape,
  usedAt: Map<Var, number[]>,
  jaxprOuts: Set<Var>,
): FusedGroup | null {
  const outputs = runOutputs(jaxpr, start, end, usedAt, jaxprOuts);
  const steps = stepProgram(jaxpr.eqns.slice(start, end), outputs);
  const program = fusedProgram(shape, steps);
  const kernel = compiler.compile(program);
  if (!kernel) return null;
  const { engine } = kernel;
  return { start, end, inputs: steps.inputs, outputs, shape, backend, program, kernel, engine };
}

/** A straight-line program of equations (see `stepProgram`). */
export interface StepProgram {
  /** Values read from outside, in order of first use. */
  inputs: Var[];
  /** The equations, each operand an input or an earlier step. */
  steps: { eqn: Eqn; args: FusedOperand[] }[];
  /** The steps whose values are written out (those of `written` the equations make). */
  outputs: number[];
}

/**
 * Equations as a program over steps (see `fusedProgram`): operands resolved to inputs or earlier
 * steps.
 */
export function stepProgram(eqns: readonly Eqn[], written: readonly Var[]): StepProgram {
  const stepOf = new Map<Var, number>();
  const inputs: Var[] = [];
  const steps = eqns.map((eqn, j) => {
    const args = eqn.inputs.map((v): FusedOperand => {
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

/**
 * A step program as a backend compiles it (`FusedProgram`): each step's primitive name, operands
 * and result dtype, and a sum's axes.
 */
export function fusedProgram(shape: Shape, p: StepProgram): FusedProgram {
  return {
    shape,
    inputs: p.inputs.map((v) => ({ shape: v.aval.shape, dtype: v.aval.dtype })),
    steps: p.steps.map(({ eqn, args }) => ({
      op: eqn.prim.name,
      args,
      dtype: eqn.outBinders[0]!.aval.dtype,
      ...(eqn.prim.name === "reduce_sum" ? { axes: (eqn.params as { axes: number[] }).axes } : {}),
    })),
    outputs: p.outputs,
  };
}
