/**
 * Elementwise fusion for jit on the CPU: a run of consecutive elementwise equations with one
 * output shape becomes one generated loop. Intermediates live in locals instead of arrays (no
 * allocation, one pass over memory); only values used after the run are written out. float32
 * results are rounded at every step (Math.fround), so fused results are bit-identical to eager.
 */
import type { ConcreteArray } from "../ops/concrete-array.js";
import { fromHost } from "../ops/concrete-array.js";
import { allocate, type DType, type TypedArray } from "../ops/dtype.js";
import { broadcastIndexMap, type Shape, shapesEqual, sizeOf } from "../ops/shape.js";
import type { Jaxpr, Var } from "./jaxpr.js";

export interface FusedGroup {
  /** Equations [start, end) of the jaxpr. */
  start: number;
  end: number;
  inputs: Var[];
  outputs: Var[];
  shape: Shape;
  run: (inputs: TypedArray[], outputs: TypedArray[], n: number) => void;
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
  if (!e.prim.fusion || e.outBinders.length !== 1) return false;
  const out = e.outBinders[0]!.aval;
  if (!FUSIBLE_DTYPES.has(out.dtype)) return false;
  const n = sizeOf(out.shape);
  return (
    n > 0 &&
    e.inputs.every((v) => FUSIBLE_DTYPES.has(v.aval.dtype) && broadcastsTo(v.aval.shape, out.shape))
  );
}

/** Finds the fusible runs of a jaxpr and generates their loops. */
export function fuseElementwise(jaxpr: Jaxpr): FusedGroup[] {
  const usedAt = new Map<Var, number[]>();
  jaxpr.eqns.forEach((e, k) => {
    for (const v of e.inputs) {
      const list = usedAt.get(v) ?? [];
      list.push(k);
      usedAt.set(v, list);
    }
  });
  const jaxprOuts = new Set(jaxpr.outs);
  const groups: FusedGroup[] = [];
  let k = 0;
  while (k < jaxpr.eqns.length) {
    if (!fusible(jaxpr, k)) {
      k++;
      continue;
    }
    const shape = jaxpr.eqns[k]!.outBinders[0]!.aval.shape;
    let end = k + 1;
    while (
      end < jaxpr.eqns.length &&
      fusible(jaxpr, end) &&
      shapesEqual(jaxpr.eqns[end]!.outBinders[0]!.aval.shape, shape)
    ) {
      end++;
    }
    if (end - k >= 2) groups.push(compile(jaxpr, k, end, shape, usedAt, jaxprOuts));
    k = end;
  }
  return groups;
}

function compile(
  jaxpr: Jaxpr,
  start: number,
  end: number,
  shape: Shape,
  usedAt: Map<Var, number[]>,
  jaxprOuts: Set<Var>,
): FusedGroup {
  const produced = new Map<Var, string>();
  const inputs: Var[] = [];
  const inputName = new Map<Var, string>();
  const hoisted: string[] = [];
  const body: string[] = [];
  const maps: Int32Array[] = [];
  const operand = (v: Var): string => {
    const local = produced.get(v);
    if (local) return local;
    let name = inputName.get(v);
    if (!name) {
      const i = inputs.length;
      inputs.push(v);
      if (sizeOf(v.aval.shape) === 1 && !shapesEqual(v.aval.shape, shape)) {
        name = `s${i}`;
        hoisted.push(`const s${i} = I[${i}][0];`);
      } else if (!shapesEqual(v.aval.shape, shape)) {
        // A broadcast operand reads through an index map computed once, when the jaxpr is planned.
        name = `I${i}[M${i}[i]]`;
        hoisted.push(`const I${i} = I[${i}]; const M${i} = maps[${i}];`);
        maps[i] = broadcastIndexMap(v.aval.shape, shape)!;
      } else {
        name = `I${i}[i]`;
        hoisted.push(`const I${i} = I[${i}];`);
      }
      inputName.set(v, name);
    }
    return name;
  };
  const outputs: Var[] = [];
  for (let k = start; k < end; k++) {
    const e = jaxpr.eqns[k]!;
    const out = e.outBinders[0]!;
    const local = `v${k - start}`;
    const args = e.inputs.map(operand);
    const names = ["a", "b", "c"].slice(0, args.length);
    const value = `(${names.map((n, i) => `${n} = ${args[i]}`).join(", ")}, ${e.prim.fusion!.expr})`;
    const rounded = out.aval.dtype === "float32" ? `Math.fround(${value})` : value;
    body.push(`const ${local} = ${rounded};`);
    produced.set(out, local);
    const laterUse = (usedAt.get(out) ?? []).some((u) => u >= end);
    if (laterUse || jaxprOuts.has(out)) {
      body.push(`O${outputs.length}[i] = ${local};`);
      outputs.push(out);
    }
  }
  const source = [
    "let a, b, c;",
    ...hoisted,
    ...outputs.map((_, j) => `const O${j} = O[${j}];`),
    "for (let i = 0; i < n; i++) {",
    ...body,
    "}",
  ].join("\n");
  const loop = new Function("I", "O", "n", "maps", source);
  const run: FusedGroup["run"] = (ins, outs, n) => loop(ins, outs, n, maps);
  return { start, end, inputs, outputs, shape, run };
}

/** Runs a fused group on CPU arrays, returning its materialised outputs. */
export function runFused(group: FusedGroup, inputs: ConcreteArray[]): ConcreteArray[] {
  const n = sizeOf(group.shape);
  const backend = inputs[0]!.backend;
  const outData = group.outputs.map((v) => allocate(v.aval.dtype, n));
  group.run(
    inputs.map((x) => x.buffer as TypedArray),
    outData,
    n,
  );
  return outData.map((d, j) => fromHost(d, group.shape, group.outputs[j]!.aval.dtype, backend));
}
