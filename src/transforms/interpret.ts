/**
 * The compact interpreter behind `jit` and `scan`: runs a jaxpr on concrete arrays by calling the
 * kernels directly (no tracing, no shape rules per equation: shapes were checked when the jaxpr
 * was staged), with values in numbered slots released after their last use and runs of
 * elementwise equations fused into generated kernels. Plans are cached per jaxpr.
 *
 * The fused groups are planned once per jaxpr with the CPU backend's compiler (fusion.ts). A
 * group runs where its operands place it (`placement`, the rule an unfused equation follows: any
 * WebGPU input puts it on WebGPU), compiled by that backend's `Backend.fusion` (the CPU: the
 * kernel made when the plan was; WebGPU: one generated WGSL kernel, made on first use, its CPU
 * inputs uploaded as the unfused kernels upload them). A backend whose fusion does not take sums
 * gets the group's elementwise part and runs its sums after the kernel; a float32 `matmul`
 * directly before a group that alone reads its product (matmul + bias + activation) runs as one
 * kernel with that part as the product's epilogue, where the backend compiles epilogues. Groups
 * a backend cannot compile run equation by equation. (NBI_GPU_FUSION=0 leaves WebGPU without
 * fusion, ops/backend.ts, to compare against the unfused kernels.)
 */

import { type MatmulParams, matmulP } from "../ops/primitives/matmul.js";
import { reshapeP } from "../ops/primitives/structural.js";
import {
  type Backend,
  type FusedKernel,
  type FusedMatmulKernel,
  type FusedProgram,
  placement,
} from "../trace/backend.js";
import { ConcreteArray } from "../trace/concrete-array.js";
import { bind } from "../trace/core.js";
import { recycle, type TypedArray } from "../trace/dtype.js";
import { sizeOf } from "../trace/shape.js";
import { type FusedGroup, fusedProgram, fuseElementwise, stepProgram } from "./fusion.js";
import { type Eqn, type Jaxpr, readersOf, type Var } from "./jaxpr.js";
import { dce, optimizeJaxpr, pretransposeInvariants } from "./rewrite.js";

/** A jaxpr compiled to slot indices, with each slot released after its last use. */
interface Plan {
  /** The jaxpr the plan runs: the given one after the peephole rewrites of rewrite.ts. */
  jaxpr: Jaxpr;
  nSlots: number;
  inSlots: number[];
  steps: { eqnIndex: number; inputs: number[]; outputs: number[]; release: number[] }[];
  outSlots: number[];
  /** Fused elementwise runs by their first equation. */
  fused: Map<number, FusedRun>;
  /** Fused runs that can be the epilogue of the matmul before them, by the matmul's index. */
  epilogues: Map<number, FusedRun>;
}

/**
 * A fused group in the two forms a backend may compile: whole (sums inside the kernel, for a
 * backend whose fusion takes sums) or split (the elementwise part as the kernel, its sums after).
 */
interface FusedRun {
  group: FusedGroup;
  /** Slots of the group's inputs (placement looks at them). */
  inputs: number[];
  whole: RunForm;
  split: RunForm;
  /** The kernel per backend (the CPU's from planning, others' made on first use; null: none). */
  kernels: Map<Backend, FusedKernel | null>;
  /** Where the run can be a matmul's epilogue: the split program's input the product is. */
  acc?: number;
  /** The matmul kernel with this run as its epilogue per backend, made on first use (null: none). */
  matmulKernels: Map<Backend, FusedMatmulKernel | null>;
}

/** A program of a fused run, with the slots of its inputs and outputs and the sums after it. */
interface RunForm {
  program: FusedProgram;
  /** Slots of the program's inputs and of the values the kernel writes. */
  inSlots: number[];
  outSlots: number[];
  /** Sums run after the kernel with the unfused kernels, reading its outputs (split form). */
  sums: { eqn: Eqn; input: number; output: number }[];
  /** No steps (a split form of sums only): no kernel to make; the run goes equation by equation. */
  empty: boolean;
}

function fusedRunOf(jaxpr: Jaxpr, group: FusedGroup, slotOf: (v: Var) => number): FusedRun {
  const eqns = jaxpr.eqns.slice(group.start, group.end);
  const sums = eqns.filter((e) => !e.prim.fusible);
  // The split kernel writes the group's outputs and the values its sums read.
  const p = stepProgram(
    eqns.filter((e) => e.prim.fusible),
    [...group.outputs, ...sums.map((e) => e.inputs[0]!)],
  );
  return {
    group,
    inputs: group.inputs.map(slotOf),
    whole: {
      program: group.program,
      inSlots: group.inputs.map(slotOf),
      outSlots: group.outputs.map(slotOf),
      sums: [],
      empty: false,
    },
    split: {
      program: fusedProgram(group.shape, p),
      inSlots: p.inputs.map(slotOf),
      outSlots: p.outputs.map((j) => slotOf(p.steps[j]!.eqn.outBinders[0]!)),
      sums: sums.map((e) => ({
        eqn: e,
        input: slotOf(e.inputs[0]!),
        output: slotOf(e.outBinders[0]!),
      })),
      empty: p.steps.length === 0,
    },
    // The planning backend's kernel, made with the plan.
    kernels: new Map([[group.backend, group.kernel]]),
    matmulKernels: new Map(),
  };
}

const plans = new WeakMap<Jaxpr, Plan>();

function planOf(original: Jaxpr): Plan {
  let plan = plans.get(original);
  if (plan) return plan;
  const jaxpr = optimizeJaxpr(original);
  const slot = new Map<Var, number>();
  const slotOf = (v: Var) => {
    let s = slot.get(v);
    if (s === undefined) {
      s = slot.size;
      slot.set(v, s);
    }
    return s;
  };
  const inSlots = jaxpr.inBinders.map(slotOf);
  const lastUse = new Map<number, number>();
  jaxpr.eqns.forEach((e, k) => {
    for (const v of e.inputs) lastUse.set(slotOf(v), k);
    for (const v of e.outBinders) slotOf(v);
  });
  const outSlots = jaxpr.outs.map(slotOf);
  const keep = new Set(outSlots);
  const fused = new Map<number, FusedRun>(
    fuseElementwise(jaxpr).map((group) => [group.start, fusedRunOf(jaxpr, group, slotOf)]),
  );
  // A matmul directly before a run whose elementwise equations alone read its product (through
  // reshapes, which are views: the numpy layer folds batch axes into rows) can have the run as
  // its epilogue (on a backend that compiles epilogues: WebGPU).
  const readers = readersOf(jaxpr);
  const epilogues = new Map<number, FusedRun>();
  for (const run of fused.values()) {
    const { start, end } = run.group;
    let m = start - 1;
    while (jaxpr.eqns[m]?.prim === reshapeP) m--;
    if (jaxpr.eqns[m]?.prim !== matmulP) continue;
    let product = jaxpr.eqns[m]!.outBinders[0]!;
    let ok = true;
    for (let j = m + 1; j < start && ok; j++) {
      ok = jaxpr.eqns[j]!.inputs[0] === product && readers.get(product)?.length === 1;
      ok &&= !keep.has(slotOf(product));
      product = jaxpr.eqns[j]!.outBinders[0]!;
    }
    const acc = run.split.inSlots.indexOf(slotOf(product));
    const inRun = (k: number) => k >= start && k < end && jaxpr.eqns[k]!.prim.fusible === true;
    if (ok && acc >= 0 && !keep.has(slotOf(product)) && readers.get(product)!.every(inRun)) {
      run.acc = acc;
      epilogues.set(m, run);
    }
  }
  plan = {
    jaxpr,
    nSlots: slot.size,
    inSlots,
    outSlots,
    fused,
    epilogues,
    steps: jaxpr.eqns.map((e, k) => ({
      eqnIndex: k,
      inputs: e.inputs.map(slotOf),
      outputs: e.outBinders.map(slotOf),
      release: [...new Set(e.inputs.map(slotOf))].filter(
        (s) => lastUse.get(s) === k && !keep.has(s),
      ),
    })),
  };
  plans.set(original, plan);
  return plan;
}

/**
 * Reference counts of the storage of a plan's live CPU values, so storage can be recycled
 * (dtype.ts `recycle`) when its last reader is done: only storage the plan itself allocated
 * (never its inputs, which the caller holds) and that no live value shares (reshapes and views
 * share storage).
 */
class Storage {
  private readonly live = new Map<ArrayBufferLike, number>();
  private readonly foreign = new Set<ArrayBufferLike>();
  /** `donated[i]`: the caller gives up input i (and its storage), so it can be recycled too. */
  constructor(inputs: readonly ConcreteArray[], donated?: readonly boolean[]) {
    inputs.forEach((x, i) => {
      if (x.backend.name === "cpu" && !donated?.[i]) this.foreign.add(storageOf(x));
    });
    inputs.forEach((x, i) => {
      if (donated?.[i]) this.hold(x);
    });
  }
  hold(x: ConcreteArray): void {
    if (x.backend.name !== "cpu") return;
    const b = storageOf(x);
    this.live.set(b, (this.live.get(b) ?? 0) + 1);
  }
  drop(x: ConcreteArray | undefined): void {
    if (x === undefined || x.backend.name !== "cpu") return;
    const b = storageOf(x);
    const n = (this.live.get(b) ?? 0) - 1;
    if (n > 0) {
      this.live.set(b, n);
      return;
    }
    this.live.delete(b);
    if (n === 0 && !this.foreign.has(b)) recycle(x.buffer as TypedArray);
  }
}

const storageOf = (x: ConcreteArray) => (x.buffer as TypedArray).buffer;

/** Runs a jaxpr on concrete arrays with the kernels directly (shapes were checked when staged). */
export function runPlan(
  original: Jaxpr,
  args: readonly ConcreteArray[],
  /** Inputs the caller gives up: their storage is recycled after its last use (jit donation). */
  donated?: readonly boolean[],
): ConcreteArray[] {
  const plan = planOf(original);
  const jaxpr = plan.jaxpr;
  const slots = new globalThis.Array<ConcreteArray | undefined>(plan.nSlots);
  const inSlots = plan.inSlots;
  for (let i = 0; i < inSlots.length; i++) slots[inSlots[i]!] = args[i];
  const storage = new Storage(args, donated);
  const backend = args[0]?.backend;
  const steps = plan.steps;
  /** Releases what equations [from, end) release. */
  const releaseRun = (from: number, end: number) => {
    for (let j = from; j < end; j++) {
      for (const s of steps[j]!.release) {
        storage.drop(slots[s]);
        slots[s] = undefined;
      }
    }
  };
  /** Stores a run's kernel outputs, then runs its sums (a split form's). */
  const finishRun = (form: RunForm, outs: ConcreteArray[]) => {
    form.outSlots.forEach((s, i) => {
      slots[s] = outs[i];
      storage.hold(outs[i]!);
    });
    for (const sum of form.sums) {
      const x = slots[sum.input]!;
      const kernel = sum.eqn.prim.impl[x.backend.name];
      slots[sum.output] = kernel
        ? kernel([x], sum.eqn.params)[0]
        : (bind(sum.eqn.prim, [x], sum.eqn.params)[0] as ConcreteArray);
      storage.hold(slots[sum.output]!);
    }
  };
  for (let k = 0; k < steps.length; k++) {
    const epilogue = plan.epilogues.get(k);
    if (epilogue) {
      const [a, b] = steps[k]!.inputs.map((s) => slots[s]!) as [ConcreteArray, ConcreteArray];
      const where = placement([a, b])!;
      const form = epilogue.split;
      if (where.fusion?.compileMatmulEpilogue && !form.empty) {
        let kernel = epilogue.matmulKernels.get(where);
        if (kernel === undefined) {
          kernel = where.fusion.compileMatmulEpilogue(form.program, epilogue.acc!);
          epilogue.matmulKernels.set(where, kernel);
        }
        const inputs = form.inSlots.map((s, i) => (i === epilogue.acc ? a : slots[s]!));
        const params = jaxpr.eqns[steps[k]!.eqnIndex]!.params as MatmulParams;
        const outs = kernel ? kernel(a, b, params, inputs) : null;
        if (outs) {
          finishRun(form, outs);
          releaseRun(k, epilogue.group.end);
          k = epilogue.group.end - 1;
          continue;
        }
      }
    }
    const fused = plan.fused.get(k);
    if (fused) {
      const where = placement(fused.inputs.map((s) => slots[s]!));
      const form = where?.fusion?.sums ? fused.whole : fused.split;
      if (where?.fusion && !form.empty) {
        let kernel = fused.kernels.get(where);
        if (kernel === undefined) {
          kernel = where.fusion.compile(form.program);
          fused.kernels.set(where, kernel);
        }
        if (kernel) {
          finishRun(form, kernel(form.inSlots.map((s) => slots[s]!)));
          releaseRun(k, fused.group.end);
          k = fused.group.end - 1;
          continue;
        }
      }
    }
    const step = steps[k]!;
    const eqn = jaxpr.eqns[step.eqnIndex]!;
    const inputs = step.inputs.map((s) => slots[s]!);
    // Same rule as eager evaluation (`placement`: any WebGPU operand wins).
    const b = placement(inputs) ?? backend;
    const kernel = b ? eqn.prim.impl[b.name] : undefined;
    // Zero-input equations, or a backend without this kernel: go through bind.
    const outs = kernel
      ? kernel(inputs, eqn.params)
      : (bind(eqn.prim, inputs, eqn.params) as ConcreteArray[]);
    const outSlots = step.outputs;
    for (let i = 0; i < outSlots.length; i++) {
      slots[outSlots[i]!] = outs[i];
      storage.hold(outs[i]!);
    }
    for (const s of step.release) {
      storage.drop(slots[s]);
      slots[s] = undefined;
    }
  }
  return plan.outSlots.map((s) => slots[s]!);
}

// ---------------------------------------------------------------------------------------------
// Loops

/**
 * A loop body split into the part that depends only on its leading (loop-invariant) inputs,
 * evaluated once before the loop, and the rest, evaluated per iteration.
 */
export interface HoistedLoop {
  /** [invariant inputs] → [hoisted values]; null when nothing is loop-invariant. */
  readonly pre: Jaxpr | null;
  /** [hoisted values, every original input] → the original outputs. */
  readonly body: Jaxpr;
}

const hoisted = new WeakMap<Jaxpr, Map<number, HoistedLoop>>();

/** Splits the equations of `jaxpr` that read only its first `nInvariant` inputs off the loop. */
export function hoistInvariants(jaxpr: Jaxpr, nInvariant: number): HoistedLoop {
  let table = hoisted.get(jaxpr);
  if (!table) {
    table = new Map();
    hoisted.set(jaxpr, table);
  }
  const cached = table.get(nInvariant);
  if (cached) return cached;
  const invariant = new Set<Var>(jaxpr.inBinders.slice(0, nInvariant));
  const preEqns: Eqn[] = [];
  const loopEqns: Eqn[] = [];
  for (const e of jaxpr.eqns) {
    if (e.inputs.length > 0 && e.inputs.every((v) => invariant.has(v))) {
      preEqns.push(e);
      for (const v of e.outBinders) invariant.add(v);
    } else loopEqns.push(e);
  }
  const moved = pretransposeInvariants(loopEqns, invariant);
  preEqns.push(...moved.pre);
  const bodyEqns = moved.loop;
  let result: HoistedLoop;
  if (preEqns.length === 0) result = { pre: null, body: jaxpr };
  else {
    const produced = new Set<Var>(preEqns.flatMap((e) => e.outBinders));
    const needed = new Set<Var>();
    for (const e of bodyEqns) for (const v of e.inputs) if (produced.has(v)) needed.add(v);
    for (const v of jaxpr.outs) if (produced.has(v)) needed.add(v);
    const values = [...needed];
    result = {
      pre: dce({ inBinders: jaxpr.inBinders.slice(0, nInvariant), eqns: preEqns, outs: values }),
      body: { inBinders: [...values, ...jaxpr.inBinders], eqns: bodyEqns, outs: jaxpr.outs },
    };
  }
  table.set(nInvariant, result);
  return result;
}

/**
 * A CPU view of x[i] along the leading axis without a copy (arrays are immutable, so sharing
 * the storage is safe); null off the CPU.
 */
export function leadingView(x: ConcreteArray, i: number): ConcreteArray | null {
  if (x.backend.name !== "cpu") return null;
  const inner = x.shape.slice(1);
  const n = sizeOf(inner);
  const data = x.buffer as TypedArray;
  return new ConcreteArray(inner, x.dtype, x.backend, data.subarray(i * n, (i + 1) * n));
}
