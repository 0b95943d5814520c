/**
 * The compact interpreter behind `jit` and `scan`: runs a jaxpr on concrete arrays by calling the
 * kernels directly (no tracing, no shape rules per equation: shapes were checked when the jaxpr
 * was staged), with values in numbered slots released after their last use and runs of
 * elementwise equations fused into generated loops on the CPU. Plans are cached per jaxpr.
 *
 * Off the CPU, a group runs where its operands place it (`placement`, the rule an unfused
 * equation follows: any WebGPU input puts it on WebGPU), compiled by that backend's
 * `Backend.fusion` (WebGPU: one generated WGSL kernel, its CPU inputs uploaded as the unfused
 * kernels upload them); a float32 `matmul` directly before a group that alone reads its product
 * (matmul + bias + activation) runs as one kernel with the group as the product's epilogue.
 * Groups the backend cannot compile run equation by equation. NBI_GPU_FUSION=0 turns backend
 * fusion off (to compare against the unfused kernels); the CPU path is the same either way.
 */

import { type MatmulParams, matmulP } from "../ops/primitives/matmul.js";
import { reshapeP } from "../ops/primitives/structural.js";
import {
  type Backend,
  cpuBackend,
  type FusedKernel,
  type FusedMatmulKernel,
  type FusedProgram,
  placement,
} from "../trace/backend.js";
import { ConcreteArray } from "../trace/concrete-array.js";
import { bind } from "../trace/core.js";
import { recycle, type TypedArray } from "../trace/dtype.js";
import { sizeOf } from "../trace/shape.js";
import { type FusedGroup, fuseElementwise, runFused, stepProgram } from "./fusion.js";
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

interface FusedRun {
  group: FusedGroup;
  inputs: number[];
  outputs: number[];
  /** The run off the CPU. */
  gpu: GpuRun;
}

/**
 * A fusion group on a backend with `fusion` (WebGPU): its elementwise equations as one kernel,
 * then its sums (fusion.ts lets float32 sums close a run) with their kernels, reading the
 * kernel's outputs.
 */
interface GpuRun {
  program: FusedProgram;
  /** Slots of the program's inputs and of the values the kernel writes. */
  inSlots: number[];
  outSlots: number[];
  sums: { eqn: Eqn; input: number; output: number }[];
  /** No elementwise equations (sums only): no kernel to make; the run goes equation by equation. */
  empty: boolean;
  /** The kernel per backend, made on first use (null: none; the run goes equation by equation). */
  kernels: Map<Backend, FusedKernel | null>;
  /** Where the run can be a matmul's epilogue: the program input the product is. */
  acc?: number;
  /** The matmul kernel with this run as its epilogue per backend, made on first use (null: none). */
  matmulKernels: Map<Backend, FusedMatmulKernel | null>;
}

const gpuFusion = globalThis.process?.env?.NBI_GPU_FUSION !== "0";

function gpuRunOf(jaxpr: Jaxpr, group: FusedGroup, slotOf: (v: Var) => number): GpuRun {
  const eqns = jaxpr.eqns.slice(group.start, group.end);
  const sums = eqns.filter((e) => !e.prim.fusion);
  // The kernel writes the group's outputs and the values its sums read.
  const p = stepProgram(
    eqns.filter((e) => e.prim.fusion),
    [...group.outputs, ...sums.map((e) => e.inputs[0]!)],
  );
  return {
    program: {
      shape: group.shape,
      inputs: p.inputs.map((v) => ({ shape: v.aval.shape, dtype: v.aval.dtype })),
      steps: p.steps.map(({ eqn, args }) => ({
        op: eqn.prim.name,
        args,
        dtype: eqn.outBinders[0]!.aval.dtype,
      })),
      outputs: p.outputs,
    },
    inSlots: p.inputs.map(slotOf),
    outSlots: p.outputs.map((j) => slotOf(p.steps[j]!.eqn.outBinders[0]!)),
    sums: sums.map((e) => ({
      eqn: e,
      input: slotOf(e.inputs[0]!),
      output: slotOf(e.outBinders[0]!),
    })),
    empty: p.steps.length === 0,
    kernels: new Map(),
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
    fuseElementwise(jaxpr).map((group) => [
      group.start,
      {
        group,
        inputs: group.inputs.map(slotOf),
        outputs: group.outputs.map(slotOf),
        gpu: gpuRunOf(jaxpr, group, slotOf),
      },
    ]),
  );
  // A matmul directly before a run whose elementwise equations alone read its product (through
  // reshapes, which are views: the numpy layer folds batch axes into rows) can have the run as
  // its epilogue on WebGPU.
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
    const acc = run.gpu.inSlots.indexOf(slotOf(product));
    const inRun = (k: number) => k >= start && k < end && jaxpr.eqns[k]!.prim.fusion !== undefined;
    if (ok && acc >= 0 && !keep.has(slotOf(product)) && readers.get(product)!.every(inRun)) {
      run.gpu.acc = acc;
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
  /** Stores a run's fused kernel outputs, then runs its sums. */
  const finishGpuRun = (gpu: GpuRun, outs: ConcreteArray[]) => {
    gpu.outSlots.forEach((s, i) => {
      slots[s] = outs[i];
    });
    for (const sum of gpu.sums) {
      const x = slots[sum.input]!;
      const kernel = sum.eqn.prim.impl[x.backend.name];
      slots[sum.output] = kernel
        ? kernel([x], sum.eqn.params)[0]
        : (bind(sum.eqn.prim, [x], sum.eqn.params)[0] as ConcreteArray);
    }
  };
  for (let k = 0; k < steps.length; k++) {
    const epilogue = gpuFusion ? plan.epilogues.get(k) : undefined;
    if (epilogue) {
      const [a, b] = steps[k]!.inputs.map((s) => slots[s]!) as [ConcreteArray, ConcreteArray];
      const where = placement([a, b])!;
      const gpu = epilogue.gpu;
      if (where.fusion?.compileMatmulEpilogue && !gpu.empty) {
        let kernel = gpu.matmulKernels.get(where);
        if (kernel === undefined) {
          kernel = where.fusion.compileMatmulEpilogue(gpu.program, gpu.acc!);
          gpu.matmulKernels.set(where, kernel);
        }
        const inputs = gpu.inSlots.map((s, i) => (i === gpu.acc ? a : slots[s]!));
        const params = jaxpr.eqns[steps[k]!.eqnIndex]!.params as MatmulParams;
        const outs = kernel ? kernel(a, b, params, inputs) : null;
        if (outs) {
          finishGpuRun(gpu, outs);
          releaseRun(k, epilogue.group.end);
          k = epilogue.group.end - 1;
          continue;
        }
      }
    }
    const fused = plan.fused.get(k);
    if (fused) {
      const inputs = fused.inputs.map((s) => slots[s]!);
      const where = placement(inputs);
      // On the CPU: the loop fusion.ts compiled when the plan was made.
      if (where === undefined || where === cpuBackend) {
        const outs = runFused(fused.group, inputs);
        fused.outputs.forEach((s, i) => {
          slots[s] = outs[i];
          storage.hold(outs[i]!);
        });
        releaseRun(k, fused.group.end);
        k = fused.group.end - 1;
        continue;
      }
      const gpu = fused.gpu;
      if (gpuFusion && where.fusion && !gpu.empty) {
        let kernel = gpu.kernels.get(where);
        if (kernel === undefined) {
          kernel = where.fusion.compile(gpu.program);
          gpu.kernels.set(where, kernel);
        }
        if (kernel) {
          finishGpuRun(gpu, kernel(gpu.inSlots.map((s) => slots[s]!)));
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
