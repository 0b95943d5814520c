/**
 * `jit`: trace a function once per input signature (tree structure, shapes, dtypes and static
 * arguments) into a jaxpr, cache it, and run the cached program on later calls. The program runs
 * as one `jit_call` primitive: on concrete inputs a compact interpreter (interpret.ts, shared
 * with `scan` bodies) executes the kernels directly, after peephole rewrites, with elementwise
 * runs fused and intermediate storage recycled (no tracing, pytree or dtype-promotion work per
 * op); under other transforms its rules stage the transformed program (jvp, vjp, vmap), also
 * cached, so `grad(jit(f))`, `vmap(jit(f))`, `jit(grad(f))` and `jit` inside `scan` all compose.
 *
 * On the CPU the fused loops are generated WebAssembly SIMD (fusion.ts); on WebGPU, generated WGSL
 * kernels (ops/webgpu/fused.ts), with matmul + bias + activation as one kernel.
 */
import { NbiError } from "../errors.js";
import * as np from "../ops/numpy.js";
import type { Array, ShapedArray } from "../trace/array.js";
import { outsideScopes } from "../trace/backend.js";
import { ConcreteArray } from "../trace/concrete-array.js";
import { bind, Tracer } from "../trace/core.js";
import type { BatchDim, Primitive } from "../trace/primitive.js";
import * as tree from "../trace/tree.js";
import { runPlan } from "./interpret.js";
import { evalJaxpr, type Jaxpr, jaxprToString, makeJaxpr } from "./jaxpr.js";
import { jvpFlat } from "./jvp.js";
import { vjpFlat } from "./vjp.js";
import { vmapFlat } from "./vmap.js";

export interface JitCallParams {
  jaxpr: Jaxpr;
  name: string;
  /** Operands the caller donates (top-level calls on concrete arrays only; see JitOptions). */
  donated?: readonly boolean[];
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
  const closed = outsideScopes(() => makeJaxpr(f, avals));
  return [closed.jaxpr, [...closed.consts]];
}

/** Constants (including values of enclosing transforms) are explicit leading operands. */
function callJaxpr(
  jaxpr: Jaxpr,
  consts: Array[],
  args: Array[],
  name: string,
  donated?: readonly boolean[],
): Array[] {
  const params: JitCallParams = donated
    ? { jaxpr, name, donated: [...consts.map(() => false), ...donated] }
    : { jaxpr, name };
  return bind(jitCallP, [...consts, ...args], params);
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
    cpu: (args, { jaxpr, donated }) => runPlan(jaxpr, args, donated),
    webgpu: (args, { jaxpr, donated }) => runPlan(jaxpr, args, donated),
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

/** Options of `jit`. */
export interface JitOptions {
  /** Positional arguments that are not arrays (configuration): part of the cache key. */
  staticArgnums?: readonly number[];
  /**
   * Positional arguments the caller gives up (as JAX's `donate_argnums`): their arrays' storage
   * may be reused for intermediates and results once the program has read them, sparing fresh
   * allocations in loops such as `state = step(state, batch)`. The donated arrays, and arrays
   * sharing their storage (reshapes of them), must not be used after the call. Honoured on the
   * CPU for calls on concrete arrays; ignored under other transforms and when staged into an
   * outer jit (there the inputs may be values the program still needs).
   */
  donateArgnums?: readonly number[];
}

/** The cache statistics of a jitted function (see `Jitted.cacheInfo`). */
export interface CacheInfo {
  /** Calls that reused a staged program. */
  hits: number;
  /** Calls that traced f (the first call with each new signature). */
  misses: number;
  /** Staged programs in the cache. */
  size: number;
}

/** A function compiled by `jit`: called like f, plus cache statistics and its staged program. */
export interface Jitted<A extends unknown[], R> {
  /** Runs f's staged program for these arguments (tracing it first for a new signature). */
  (...args: A): R;
  /** Cache statistics: a miss traces f; a hit reuses the staged program. */
  cacheInfo(): CacheInfo;
  /** The staged program for these arguments, printable with `toString()`. */
  lower(...args: A): {
    /** The staged program. */
    jaxpr: Jaxpr;
    /** The program as text, one equation per line. */
    toString(): string;
  };
}

interface Entry {
  jaxpr: Jaxpr;
  consts: Array[];
  outDef: tree.TreeDef;
}

/**
 * Compiles f: traced once per signature, then replayed from the cache.
 * The signature is the pytree structure, shapes and dtypes of the arguments (and the values of
 * `staticArgnums`); f should be pure, since side effects run only while tracing.
 *
 * @example
 * ```ts
 * const step = jit((w: Array, x: Array) => np.tanh(x.matmul(w)));
 * step(np.ones([3, 2]), np.ones([5, 3])); // traces f and caches the program
 * step(np.ones([3, 2]), np.ones([5, 3])); // runs the cached program
 * step.cacheInfo(); // { hits: 1, misses: 1, size: 1 }
 * ```
 */
export function jit<A extends unknown[], R>(
  f: (...args: A) => R,
  options?: JitOptions,
): Jitted<A, R> {
  const staticArgnums = new Set(options?.staticArgnums ?? []);
  const donateArgnums = new Set(options?.donateArgnums ?? []);
  for (const i of donateArgnums) {
    if (staticArgnums.has(i)) {
      throw new NbiError(`jit: donateArgnums expected array arguments, got static argument ${i}`);
    }
  }
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
    // Constants the trace makes are cached with the program: no np.scope may release them.
    const closed = outsideScopes(() =>
      makeJaxpr(
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
      ),
    );
    entry = { jaxpr: closed.jaxpr, consts: [...closed.consts], outDef: outDef! };
    // A program that captured values of an enclosing transform is valid for this call only.
    if (entry.consts.every((c) => c instanceof ConcreteArray)) cache.set(key, entry);
    return { entry, leaves };
  };

  /** Per leaf of the dynamic arguments, whether its argument is donated. */
  const donatedLeaves = (args: A): boolean[] =>
    args.flatMap((a, i) =>
      staticArgnums.has(i) ? [] : tree.flatten(a)[0].map(() => donateArgnums.has(i)),
    );

  const jitted = ((...args: A): R => {
    const { entry, leaves } = prepare(args);
    const donate = donateArgnums.size > 0 && leaves.every((l) => l instanceof ConcreteArray);
    const outs = callJaxpr(
      entry.jaxpr,
      entry.consts,
      leaves,
      name,
      donate ? donatedLeaves(args) : undefined,
    );
    return tree.unflatten(entry.outDef, outs) as R;
  }) as Jitted<A, R>;
  jitted.cacheInfo = () => ({ ...info, size: cache.size });
  jitted.lower = (...args: A) => {
    const { entry } = prepare(args);
    return { jaxpr: entry.jaxpr, toString: () => jaxprToString(entry.jaxpr) };
  };
  return jitted;
}
