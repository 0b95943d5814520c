/**
 * `jit`: trace a function once per input signature (tree structure, shapes, dtypes and static
 * arguments) into a jaxpr, cache it, and run the cached program on later calls. The program runs
 * as one `jit_call` primitive: on concrete inputs a compact interpreter executes the kernels
 * directly (no tracing, pytree or dtype-promotion work per op); under other transforms its rules
 * stage the transformed program (jvp, vjp, vmap), also cached, so `grad(jit(f))`,
 * `vmap(jit(f))`, `jit(grad(f))` and `jit` inside `scan` all compose.
 *
 * Fusion into generated kernels (WebAssembly / WGSL) is the next step behind this interface.
 */
import { NbiError } from "../errors.js";
import type { Array, ShapedArray } from "../ops/array.js";
import { ConcreteArray } from "../ops/concrete-array.js";
import * as np from "../ops/numpy.js";
import type { BatchDim, Primitive } from "../ops/primitive.js";
import { bind, Tracer } from "./core.js";
import { type FusedGroup, fuseElementwise, runFused } from "./fusion.js";
import { evalJaxpr, type Jaxpr, jaxprToString, makeJaxpr, type Var } from "./jaxpr.js";
import { jvpFlat } from "./jvp.js";
import * as tree from "./tree.js";
import { vjpFlat } from "./vjp.js";
import { vmapFlat } from "./vmap.js";

export interface JitCallParams {
  jaxpr: Jaxpr;
  name: string;
}

/** A jaxpr compiled to slot indices, with each slot released after its last use. */
interface Plan {
  nSlots: number;
  inSlots: number[];
  steps: { eqnIndex: number; inputs: number[]; outputs: number[]; release: number[] }[];
  outSlots: number[];
  /** Fused elementwise runs by their first equation (CPU only; others run equation by equation). */
  fused: Map<number, { group: FusedGroup; inputs: number[]; outputs: number[] }>;
}

const plans = new WeakMap<Jaxpr, Plan>();

function planOf(jaxpr: Jaxpr): Plan {
  let plan = plans.get(jaxpr);
  if (plan) return plan;
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
  const fused = new Map(
    fuseElementwise(jaxpr).map((group) => [
      group.start,
      { group, inputs: group.inputs.map(slotOf), outputs: group.outputs.map(slotOf) },
    ]),
  );
  plan = {
    nSlots: slot.size,
    inSlots,
    outSlots,
    fused,
    steps: jaxpr.eqns.map((e, k) => ({
      eqnIndex: k,
      inputs: e.inputs.map(slotOf),
      outputs: e.outBinders.map(slotOf),
      release: [...new Set(e.inputs.map(slotOf))].filter(
        (s) => lastUse.get(s) === k && !keep.has(s),
      ),
    })),
  };
  plans.set(jaxpr, plan);
  return plan;
}

/** Runs a jaxpr on concrete arrays with the kernels directly (shapes were checked when staged). */
function runPlan(jaxpr: Jaxpr, args: readonly ConcreteArray[]): ConcreteArray[] {
  const plan = planOf(jaxpr);
  const slots = new globalThis.Array<ConcreteArray | undefined>(plan.nSlots);
  plan.inSlots.forEach((s, i) => {
    slots[s] = args[i];
  });
  const backend = args[0]?.backend;
  for (let k = 0; k < plan.steps.length; k++) {
    const fused = plan.fused.get(k);
    if (fused) {
      const inputs = fused.inputs.map((s) => slots[s]!);
      if (inputs.every((x) => x.backend.name === "cpu")) {
        const outs = runFused(fused.group, inputs);
        fused.outputs.forEach((s, i) => {
          slots[s] = outs[i];
        });
        for (let j = k; j < fused.group.end; j++) {
          for (const s of plan.steps[j]!.release) slots[s] = undefined;
        }
        k = fused.group.end - 1;
        continue;
      }
    }
    const step = plan.steps[k]!;
    const eqn = jaxpr.eqns[step.eqnIndex]!;
    const inputs = step.inputs.map((s) => slots[s]!);
    // Same rule as eager evaluation: any WebGPU operand puts the equation on WebGPU.
    let b = inputs[0]?.backend ?? backend;
    for (const x of inputs) if (x.backend.name === "webgpu") b = x.backend;
    const kernel = b ? eqn.prim.impl[b.name] : undefined;
    // Zero-input equations, or a backend without this kernel: go through bind.
    const outs = kernel
      ? kernel(inputs, eqn.params)
      : (bind(eqn.prim, inputs, eqn.params) as ConcreteArray[]);
    step.outputs.forEach((s, i) => {
      slots[s] = outs[i];
    });
    for (const s of step.release) slots[s] = undefined;
  }
  return plan.outSlots.map((s) => slots[s]!);
}

const avalKey = (a: ShapedArray) => `${a.dtype}[${a.shape.join(",")}]`;
const derived = new WeakMap<Jaxpr, Map<string, Jaxpr>>();

/** Caches programs derived from a jaxpr (its jvp, vjp or batched forms) by a key. */
function derive(jaxpr: Jaxpr, key: string, make: () => Jaxpr): Jaxpr {
  let table = derived.get(jaxpr);
  if (!table) {
    table = new Map();
    derived.set(jaxpr, table);
  }
  let out = table.get(key);
  if (!out) {
    out = make();
    table.set(key, out);
  }
  return out;
}

/** Stages `f` and folds its captured constants in as leading inputs (returns an open jaxpr). */
function stageOpen(f: (...xs: Array[]) => Array[], avals: ShapedArray[]): [Jaxpr, Array[]] {
  const closed = makeJaxpr(f, avals);
  return [closed.jaxpr, [...closed.consts]];
}

/** Constants (including values of enclosing transforms) are explicit leading operands. */
function callJaxpr(jaxpr: Jaxpr, consts: Array[], args: Array[], name: string): Array[] {
  return bind(jitCallP, [...consts, ...args], { jaxpr, name });
}

export const jitCallP: Primitive<JitCallParams> = {
  name: "jit_call",
  abstractEval(avals, { jaxpr, name }) {
    const ins = jaxpr.inBinders.map((v) => v.aval);
    if (avals.length !== ins.length || avals.some((a, i) => avalKey(a) !== avalKey(ins[i]!))) {
      throw new NbiError(
        `jit(${name}): inputs expected ${ins.map(avalKey).join(", ")}, got ${avals.map(avalKey).join(", ")}`,
      );
    }
    return jaxpr.outs.map((v) => v.aval);
  },
  impl: {
    cpu: (args, { jaxpr }) => runPlan(jaxpr, args),
    webgpu: (args, { jaxpr }) => runPlan(jaxpr, args),
  },
  jvp(primals, tangents, { jaxpr, name }) {
    const n = primals.length;
    const jvpJaxpr = derive(jaxpr, "jvp", () => {
      const [j, consts] = stageOpen(
        (...xs) => {
          const [po, to] = jvpFlat((...a) => evalJaxpr(jaxpr, a), xs.slice(0, n), xs.slice(n));
          return [...po, ...to];
        },
        [...primals, ...tangents].map((x) => ({ shape: x.shape, dtype: x.dtype })),
      );
      return withConstsAsInputs(j, consts);
    });
    const outs = callDerived(jvpJaxpr, [...primals, ...tangents], `jvp(${name})`);
    const m = outs.length / 2;
    return [outs.slice(0, m), outs.slice(m)];
  },
  vjp(cts, primalsIn, _primalsOut, { jaxpr, name }) {
    const n = primalsIn.length;
    const backJaxpr = derive(jaxpr, "vjp", () => {
      const [j, consts] = stageOpen(
        (...xs) => {
          const [, pull] = vjpFlat((...a) => evalJaxpr(jaxpr, a), xs.slice(0, n));
          return pull(xs.slice(n));
        },
        [...primalsIn, ...cts].map((x) => ({ shape: x.shape, dtype: x.dtype })),
      );
      return withConstsAsInputs(j, consts);
    });
    return callDerived(backJaxpr, [...primalsIn, ...cts], `vjp(${name})`);
  },
  vmap(axisSize, vals, dims, { jaxpr, name }) {
    const moved = vals.map((v, i) => (dims[i] === null ? v : np.moveaxis(v, dims[i]!, 0)));
    const inDims: BatchDim[] = dims.map((d) => (d === null ? null : 0));
    const key = `vmap:${axisSize}:${inDims.join(",")}`;
    const batched = derive(jaxpr, key, () => {
      const [j, consts] = stageOpen(
        (...xs) =>
          vmapFlat(
            (...a) => evalJaxpr(jaxpr, a),
            xs,
            inDims,
            (m) => new globalThis.Array<BatchDim>(m).fill(0),
          ),
        moved.map((x) => ({ shape: x.shape, dtype: x.dtype })),
      );
      return withConstsAsInputs(j, consts);
    });
    const outs = callDerived(batched, moved, `vmap(${name})`);
    return [outs, outs.map(() => 0)];
  },
};

/**
 * Derived programs are cached per jaxpr, so any constants they capture must be concrete (they
 * are: derived programs are staged from a jaxpr, not from user closures). They are kept as a
 * closed prefix of inputs bound at call time.
 */
const derivedConsts = new WeakMap<Jaxpr, Array[]>();
function withConstsAsInputs(jaxpr: Jaxpr, consts: Array[]): Jaxpr {
  for (const c of consts) {
    if (c instanceof Tracer) {
      throw new NbiError("internal: a derived jit program captured a traced value");
    }
  }
  derivedConsts.set(jaxpr, consts);
  return jaxpr;
}
function callDerived(jaxpr: Jaxpr, args: Array[], name: string): Array[] {
  const consts = derivedConsts.get(jaxpr) ?? [];
  return bind(jitCallP, [...consts, ...args], { jaxpr, name });
}

// ---------------------------------------------------------------------------------------------

export interface JitOptions {
  /** Positional arguments that are not arrays (configuration): part of the cache key. */
  staticArgnums?: readonly number[];
}

export interface CacheInfo {
  hits: number;
  misses: number;
  size: number;
}

export interface Jitted<A extends unknown[], R> {
  (...args: A): R;
  /** Cache statistics: a miss traces f; a hit reuses the staged program. */
  cacheInfo(): CacheInfo;
  /** The staged program for these arguments, printable with `toString()`. */
  lower(...args: A): { jaxpr: Jaxpr; toString(): string };
}

interface Entry {
  jaxpr: Jaxpr;
  consts: Array[];
  outDef: tree.TreeDef;
}

/** Compiles f: traced once per signature, then replayed from the cache. */
export function jit<A extends unknown[], R>(
  f: (...args: A) => R,
  options?: JitOptions,
): Jitted<A, R> {
  const staticArgnums = new Set(options?.staticArgnums ?? []);
  const cache = new Map<string, Entry>();
  const info = { hits: 0, misses: 0 };
  const name = f.name || "anonymous";

  const prepare = (args: A): { entry: Entry; leaves: Array[] } => {
    const dynamic: unknown[] = [];
    const statics: unknown[] = [];
    args.forEach((a, i) => {
      if (staticArgnums.has(i)) statics.push(a);
      else dynamic.push(a);
    });
    const [rawLeaves, def] = tree.flatten(dynamic);
    const leaves = rawLeaves.map((l) => (typeof l === "number" ? np.asArray(l) : (l as Array)));
    let staticKey: string;
    try {
      staticKey = JSON.stringify(statics);
    } catch {
      throw new NbiError(`jit(${name}): static arguments expected JSON-serialisable values`);
    }
    const key = `${staticKey}|${tree.treeDefToString(def)}|${leaves.map(avalKey).join(";")}`;
    let entry = cache.get(key);
    if (entry) {
      info.hits++;
      return { entry, leaves };
    }
    info.misses++;
    let outDef: tree.TreeDef | null = null;
    const closed = makeJaxpr(
      (...xs) => {
        const rebuilt = tree.unflatten(def, xs) as unknown[];
        const call: unknown[] = [];
        let d = 0;
        let s = 0;
        for (let i = 0; i < args.length; i++)
          call.push(staticArgnums.has(i) ? statics[s++] : rebuilt[d++]);
        const out = f(...(call as A));
        const [outLeaves, od] = tree.flatten(out);
        outDef = od;
        return outLeaves.map((l) => (typeof l === "number" ? np.asArray(l) : (l as Array)));
      },
      leaves.map((l) => ({ shape: l.shape, dtype: l.dtype })),
    );
    entry = { jaxpr: closed.jaxpr, consts: [...closed.consts], outDef: outDef! };
    // A program that captured values of an enclosing transform is valid for this call only.
    if (entry.consts.every((c) => c instanceof ConcreteArray)) cache.set(key, entry);
    return { entry, leaves };
  };

  const jitted = ((...args: A): R => {
    const { entry, leaves } = prepare(args);
    const outs = callJaxpr(entry.jaxpr, entry.consts, leaves, name);
    return tree.unflatten(entry.outDef, outs) as R;
  }) as Jitted<A, R>;
  jitted.cacheInfo = () => ({ ...info, size: cache.size });
  jitted.lower = (...args: A) => {
    const { entry } = prepare(args);
    return { jaxpr: entry.jaxpr, toString: () => jaxprToString(entry.jaxpr) };
  };
  return jitted;
}
