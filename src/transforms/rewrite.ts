/**
 * Rewrites of a jaxpr that keep its values (bit for bit) and only remove work: dead-code
 * elimination, and the peephole rewrites the interpreter applies before planning (see
 * interpret.ts).
 */

import { type MatmulParams, matmulP } from "../ops/primitives/matmul.js";
import { type TransposeParams, transposeP } from "../ops/primitives/structural.js";
import type { ShapedArray } from "../trace/array.js";
import { type Eqn, type Jaxpr, Var } from "./jaxpr.js";

/** Drops equations whose outputs nothing reads (primitives are pure). */
export function dce(jaxpr: Jaxpr): Jaxpr {
  const live = new Set<Var>(jaxpr.outs);
  const kept: Eqn[] = [];
  for (let k = jaxpr.eqns.length - 1; k >= 0; k--) {
    const e = jaxpr.eqns[k]!;
    if (!e.outBinders.some((v) => live.has(v))) continue;
    kept.push(e);
    for (const v of e.inputs) live.add(v);
  }
  if (kept.length === jaxpr.eqns.length) return jaxpr;
  return { inBinders: jaxpr.inBinders, eqns: kept.reverse(), outs: jaxpr.outs };
}

/** Whether a permutation swaps the last two axes and keeps the others. */
export function swapsLastTwo(perm: readonly number[]): boolean {
  const r = perm.length;
  if (r < 2 || perm[r - 1] !== r - 2 || perm[r - 2] !== r - 1) return false;
  for (let i = 0; i < r - 2; i++) if (perm[i] !== i) return false;
  return true;
}

function matmulParams(transposeA: boolean, transposeB: boolean): MatmulParams {
  return transposeA || transposeB ? { transposeA, transposeB } : {};
}

const flagA = (e: Eqn) => (e.params as MatmulParams).transposeA === true;
const flagB = (e: Eqn) => (e.params as MatmulParams).transposeB === true;
const isSwap = (e: Eqn | undefined) =>
  e !== undefined && e.prim === transposeP && swapsLastTwo((e.params as TransposeParams).perm);

/**
 * Transposes folded into matrix products, which read transposed operands through strides:
 * matmul(transpose(a), b) → matmul(a, b, transposeA) (likewise for b), and
 * transpose(matmul(a, b)) → matmul(b, a) with swapped flags ((AB)ᵀ = BᵀAᵀ; every element is the
 * same dot product in the same order) when nothing else reads the product.
 */
export function foldTransposes(jaxpr: Jaxpr): Jaxpr {
  const uses = new Map<Var, number>();
  for (const e of jaxpr.eqns) for (const v of e.inputs) uses.set(v, (uses.get(v) ?? 0) + 1);
  for (const v of jaxpr.outs) uses.set(v, (uses.get(v) ?? 0) + 1);
  const producer = new Map<Var, Eqn>();
  let changed = false;
  const eqns = jaxpr.eqns.map((e) => {
    let out = e;
    if (e.prim === matmulP) {
      const [a, b] = e.inputs as [Var, Var];
      const pa = producer.get(a);
      const pb = producer.get(b);
      if (isSwap(pa) || isSwap(pb)) {
        out = {
          prim: e.prim,
          inputs: [isSwap(pa) ? pa!.inputs[0]! : a, isSwap(pb) ? pb!.inputs[0]! : b],
          params: matmulParams(flagA(e) !== isSwap(pa), flagB(e) !== isSwap(pb)),
          outBinders: e.outBinders,
        };
      }
    } else if (isSwap(e)) {
      const src = producer.get(e.inputs[0]!);
      if (src !== undefined && src.prim === matmulP && uses.get(e.inputs[0]!) === 1) {
        out = {
          prim: matmulP as Eqn["prim"],
          inputs: [src.inputs[1]!, src.inputs[0]!],
          params: matmulParams(!flagB(src), !flagA(src)),
          outBinders: e.outBinders,
        };
      }
    }
    if (out !== e) changed = true;
    for (const v of out.outBinders) producer.set(v, out);
    return out;
  });
  return changed ? { inBinders: jaxpr.inBinders, eqns, outs: jaxpr.outs } : jaxpr;
}

/**
 * Loop bodies: a product that reads a loop-invariant operand transposed (through strides, every
 * iteration) reads instead a transposed copy made once before the loop. Returns the equations
 * to run before the loop and the rewritten loop equations.
 */
export function pretransposeInvariants(
  loopEqns: readonly Eqn[],
  invariant: ReadonlySet<Var>,
): { pre: Eqn[]; loop: Eqn[] } {
  const pre: Eqn[] = [];
  const copies = new Map<Var, Var>();
  const transposed = (v: Var): Var => {
    let t = copies.get(v);
    if (!t) {
      const r = v.aval.shape.length;
      const perm = v.aval.shape.map((_, i) => (i < r - 2 ? i : i === r - 2 ? r - 1 : r - 2));
      const aval: ShapedArray = { shape: perm.map((p) => v.aval.shape[p]!), dtype: v.aval.dtype };
      t = new Var(aval);
      pre.push({
        prim: transposeP as Eqn["prim"],
        inputs: [v],
        params: { perm } satisfies TransposeParams,
        outBinders: [t],
      });
      copies.set(v, t);
    }
    return t;
  };
  const loop = loopEqns.map((e) => {
    if (e.prim !== matmulP) return e;
    const [a, b] = e.inputs as [Var, Var];
    const moveA = flagA(e) && invariant.has(a);
    const moveB = flagB(e) && invariant.has(b);
    if (!moveA && !moveB) return e;
    return {
      prim: e.prim,
      inputs: [moveA ? transposed(a) : a, moveB ? transposed(b) : b],
      params: matmulParams(flagA(e) && !moveA, flagB(e) && !moveB),
      outBinders: e.outBinders,
    };
  });
  return { pre, loop };
}

/**
 * Sums moved up to just after the elementwise equation that makes their input (a sum reads one
 * value, so this keeps every dependency), where they can join that equation's fused loop
 * (fusion.ts): backward passes compute a cotangent, then the products that read it, then its
 * bias-gradient sum.
 */
export function sumsBesideProducers(jaxpr: Jaxpr): Jaxpr {
  const producer = new Map<Var, Eqn>();
  for (const e of jaxpr.eqns) for (const v of e.outBinders) producer.set(v, e);
  const moved = new Map<Eqn, Eqn[]>();
  const movable = (e: Eqn) => {
    if (e.prim.name !== "reduce_sum") return null;
    const p = producer.get(e.inputs[0]!);
    return p?.prim.fusible ? p : null;
  };
  for (const e of jaxpr.eqns) {
    const p = movable(e);
    if (p) moved.set(p, [...(moved.get(p) ?? []), e]);
  }
  if (moved.size === 0) return jaxpr;
  const eqns: Eqn[] = [];
  for (const e of jaxpr.eqns) {
    if (movable(e)) continue;
    eqns.push(e, ...(moved.get(e) ?? []));
  }
  return { inBinders: jaxpr.inBinders, eqns, outs: jaxpr.outs };
}

/**
 * What the interpreter runs: transposes folded into products, then without dead code (staging
 * keeps every equation a function applied, e.g. the input cotangent of a convolution whose
 * input is data), with sums beside the equations that make their inputs.
 */
export function optimizeJaxpr(jaxpr: Jaxpr): Jaxpr {
  return sumsBesideProducers(dce(foldTransposes(jaxpr)));
}
