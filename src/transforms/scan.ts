/**
 * `scan`: a loop carried over the leading axis of its inputs (JAX's lax.scan), as a primitive
 * over a staged body. Operands are [consts..., carry..., xs...]; the body jaxpr maps
 * [consts, carry, x] to [carry', y]; results are [final carry..., stacked ys...].
 *
 * Its rules transform the body: jvp scans the body's jvp; vmap scans the batched body; reverse
 * mode runs a forward scan that stacks each step's residuals and a reverse scan over them whose
 * body is the backward half of the body's vjp.
 */
import { NbiError } from "../errors.js";
import { add } from "../ops/primitives/elementwise.js";
import { zeros, zerosLike } from "../ops/primitives/rules.js";
import {
  concatenate,
  moveBatchAxis,
  reshape,
  unstackLeading,
} from "../ops/primitives/structural.js";
import type { Array, ShapedArray } from "../trace/array.js";
import { defaultBackend } from "../trace/backend.js";
import { type ConcreteArray, fromHost } from "../trace/concrete-array.js";
import { bind, Tracer } from "../trace/core.js";
import { allocate, isFloat, type TypedArray } from "../trace/dtype.js";
import type { BatchDim, Primitive } from "../trace/primitive.js";
import { showShape, sizeOf } from "../trace/shape.js";
import { hoistInvariants, leadingView, runPlan } from "./interpret.js";
import { type Eqn, evalJaxpr, type Jaxpr, makeJaxpr, type Var } from "./jaxpr.js";
import { jvpFlat } from "./jvp.js";
import { dce } from "./rewrite.js";
import { vjpFlat } from "./vjp.js";
import { vmapFlat } from "./vmap.js";

export interface ScanParams {
  jaxpr: Jaxpr;
  numConsts: number;
  numCarry: number;
  length: number;
  reverse: boolean;
}

function split<T>(xs: readonly T[], ...sizes: number[]): T[][] {
  const out: T[][] = [];
  let i = 0;
  for (const s of sizes) {
    out.push(xs.slice(i, i + s));
    i += s;
  }
  out.push(xs.slice(i));
  return out;
}

const sliceAval = (a: ShapedArray): ShapedArray => ({ shape: a.shape.slice(1), dtype: a.dtype });
const sameAval = (a: ShapedArray, b: ShapedArray) =>
  a.dtype === b.dtype &&
  a.shape.length === b.shape.length &&
  a.shape.every((d, i) => d === b.shape[i]);

/**
 * The loop itself, on concrete arrays: the body runs on the jit interpreter (kernels called
 * directly, elementwise runs fused), its loop-invariant equations once before the loop. On the
 * CPU each step reads its slice of xs as a view and writes its ys straight into the stacked
 * outputs.
 */
function scanImpl(operands: ConcreteArray[], p: ScanParams): ConcreteArray[] {
  const [consts, init, xs] = split(operands, p.numConsts, p.numCarry) as [
    ConcreteArray[],
    ConcreteArray[],
    ConcreteArray[],
  ];
  const loop = hoistInvariants(p.jaxpr, p.numConsts);
  const fixed = loop.pre === null ? consts : [...runPlan(loop.pre, consts), ...consts];
  const onCpu = operands.every((x) => x.backend.name === "cpu");
  const backend = operands[0]?.backend ?? defaultBackend();
  const yAvals = p.jaxpr.outs.slice(p.numCarry).map((v) => v.aval);
  const ySizes = yAvals.map((a) => sizeOf(a.shape));
  // CPU: stacked outputs filled in place. Elsewhere: per-step results, concatenated at the end.
  const yData = onCpu ? yAvals.map((a, k) => allocate(a.dtype, p.length * ySizes[k]!)) : null;
  const ys: ConcreteArray[][] = [];
  // Elsewhere than the CPU (no views) each xs is cut into its steps' slices before the loop, a
  // few kernels for all of them.
  const pieces = xs.map((x) => (x.backend.name === "cpu" ? null : unstackLeading(x)));
  let carry = init;
  for (let step = 0; step < p.length; step++) {
    const i = p.reverse ? p.length - 1 - step : step;
    // On the CPU a step's slice is a view (leadingView is null only elsewhere).
    const xi = xs.map((x, k) => pieces[k]?.[i] ?? (leadingView(x, i) as ConcreteArray));
    const outs = runPlan(loop.body, [...fixed, ...carry, ...xi]);
    carry = outs.slice(0, p.numCarry);
    if (yData) {
      for (let k = 0; k < yData.length; k++) {
        yData[k]!.set(outs[p.numCarry + k]!.buffer as TypedArray, i * ySizes[k]!);
      }
    } else ys[i] = outs.slice(p.numCarry);
  }
  const stacked = yAvals.map((a, k) => {
    const shape = [p.length, ...a.shape];
    if (yData) return fromHost(yData[k]!, shape, a.dtype, backend);
    if (p.length === 0) return zeros(shape, a.dtype) as ConcreteArray;
    return concatenate(
      ys.map((y) => reshape(y[k]!, [1, ...a.shape])),
      0,
    ) as ConcreteArray;
  });
  return [...carry, ...stacked];
}

// ---------------------------------------------------------------------------------------------
// Reverse mode with saved residuals

/**
 * The body's forward and backward passes, split for a reverse mode that saves residuals: the
 * body's vjp is staged once as one joint program [consts, carry, x, cotangents] → [outputs,
 * input cotangents] and its equations are sorted by what they read. Those that read only
 * constants run once, outside both loops (`pre`); those that read the carry or x but no
 * cotangent form the forward loop, which also outputs, stacked per step, every such value the
 * backward equations read (the residuals); the rest form the backward loop. The forward body is
 * evaluated once per step and the backward loop only does the backward work (the recomputing
 * rule `vjp` below runs the forward body twice more per step: once to save the carries, once
 * inside the backward body).
 */
interface ResidualSplit {
  /** Constants the joint program captured (concrete arrays). */
  readonly jointConsts: readonly Array[];
  /** [jointConsts, consts] → the loop-invariant values the loops read. */
  readonly pre: Jaxpr;
  /** [pre outputs at fwdInv, carry, x] → [carry', y, stacked residuals]. */
  readonly fwd: Jaxpr;
  readonly fwdInv: readonly number[];
  /**
   * [pre outputs at backInv, ct carry, const-cotangent accumulators, residuals, ct y] →
   * [ct carry, accumulators, ct x].
   */
  readonly back: Jaxpr;
  readonly backConsts: readonly Array[];
  readonly backInv: readonly number[];
  /** Where each residual of the backward body comes from: an xs operand or an output of fwd. */
  readonly residuals: readonly ({ x: number } | { stacked: number })[];
  /** The operands differentiated: those carrying a derivative, and every carry. */
  readonly wrt: readonly boolean[];
}

const residualSplits = new WeakMap<Jaxpr, Map<string, ResidualSplit>>();

/**
 * The split for the operands that carry a derivative (`linear`): the body is differentiated
 * with respect to those consts and xs and every carry (the carry's cotangent runs through the
 * loop whatever init needs), so constants such as the 1 of a sigmoid cost no backward work.
 */
function residualSplit(p: ScanParams, linear: readonly boolean[]): ResidualSplit {
  const nc = p.numConsts;
  const nk = p.numCarry;
  const nIn = p.jaxpr.inBinders.length;
  const nx = nIn - nc - nk;
  const nOut = p.jaxpr.outs.length;
  const wrt = linear.map((l, i) => l || (i >= nc && i < nc + nk));
  const key = wrt.map((w) => (w ? 1 : 0)).join("");
  let table = residualSplits.get(p.jaxpr);
  if (!table) {
    table = new Map();
    residualSplits.set(p.jaxpr, table);
  }
  const cached = table.get(key);
  if (cached) return cached;
  const outAvals = p.jaxpr.outs.map((v) => v.aval);
  const wrtIndex = wrt.flatMap((w, i) => (w ? [i] : []));
  const joint = makeJaxpr(
    (...args: Array[]) => {
      const [primals, cts] = split(args, nIn) as [Array[], Array[]];
      const [outs, pull] = vjpFlat(
        (...d) => {
          const full = [...primals];
          wrtIndex.forEach((i, j) => {
            full[i] = d[j]!;
          });
          return evalJaxpr(p.jaxpr, full);
        },
        wrtIndex.map((i) => primals[i]!),
      );
      return [...outs, ...pull(cts)];
    },
    [...p.jaxpr.inBinders.map((v) => v.aval), ...outAvals],
  );
  const j = joint.jaxpr;
  const nj = joint.consts.length;
  // 0: loop-invariant; 1: reads the carry or x; 2: reads a cotangent.
  const stage = new Map<Var, number>();
  j.inBinders.forEach((v, i) => {
    stage.set(v, i < nj + nc ? 0 : i < nj + nc + nk + nx ? 1 : 2);
  });
  const eqnsOf: Eqn[][] = [[], [], []];
  for (const e of j.eqns) {
    let st = 0;
    for (const v of e.inputs) st = Math.max(st, stage.get(v)!);
    eqnsOf[st]!.push(e);
    for (const v of e.outBinders) stage.set(v, st);
  }
  const primalOuts = j.outs.slice(0, nOut);
  const gradOuts = j.outs.slice(nOut);
  /** Values of stage `st` read by the equations of `readers` or listed in `outs`, in order. */
  const read = (st: number, readers: Eqn[], outs: readonly Var[]): Var[] => {
    const found = new Set<Var>();
    for (const e of readers) for (const v of e.inputs) if (stage.get(v) === st) found.add(v);
    for (const v of outs) if (stage.get(v) === st) found.add(v);
    return [...found];
  };
  const fwdInvVars = read(0, eqnsOf[1]!, primalOuts);
  const backInvVars = read(0, eqnsOf[2]!, gradOuts);
  const invVars = [...new Set([...fwdInvVars, ...backInvVars])];
  const resVars = read(1, eqnsOf[2]!, gradOuts);
  const xVars = j.inBinders.slice(nj + nc + nk, nj + nc + nk + nx);
  const stackedVars = resVars.filter((v) => !xVars.includes(v));
  const pre = dce({ inBinders: j.inBinders.slice(0, nj + nc), eqns: eqnsOf[0]!, outs: invVars });
  const fwd = dce({
    inBinders: [...fwdInvVars, ...j.inBinders.slice(nj + nc, nj + nc + nk + nx)],
    eqns: eqnsOf[1]!,
    outs: [...primalOuts, ...stackedVars],
  });
  const backRaw = dce({
    inBinders: [...backInvVars, ...resVars, ...j.inBinders.slice(nj + nIn)],
    eqns: eqnsOf[2]!,
    outs: gradOuts,
  });
  const nb = backInvVars.length;
  const nr = resVars.length;
  const ncw = wrtIndex.filter((i) => i < nc).length;
  const carryAvals = outAvals.slice(0, nk);
  const back = makeJaxpr(
    (...args: Array[]) => {
      const [inv, ctk, acc, res, cty] = split(args, nb, nk, ncw, nr) as Array[][];
      const g = evalJaxpr(backRaw, [...inv!, ...res!, ...ctk!, ...cty!]);
      const [gc, gk, gx] = split(g, ncw, nk) as Array[][];
      return [...gk!, ...acc!.map((a, i) => add(a, gc![i]!)), ...gx!];
    },
    [
      ...backInvVars.map((v) => v.aval),
      ...carryAvals,
      ...wrtIndex.filter((i) => i < nc).map((i) => p.jaxpr.inBinders[i]!.aval),
      ...resVars.map((v) => v.aval),
      ...outAvals.slice(nk),
    ],
  );
  const result: ResidualSplit = {
    jointConsts: joint.consts,
    pre,
    fwd,
    fwdInv: fwdInvVars.map((v) => invVars.indexOf(v)),
    back: back.jaxpr,
    backConsts: back.consts,
    backInv: backInvVars.map((v) => invVars.indexOf(v)),
    residuals: resVars.map((v) =>
      xVars.includes(v) ? { x: xVars.indexOf(v) } : { stacked: stackedVars.indexOf(v) },
    ),
    wrt,
  };
  // Rules stage from the jaxpr alone, so the captured constants are concrete; cache only then.
  if ([...joint.consts, ...back.consts].every((c) => !(c instanceof Tracer))) {
    table.set(key, result);
  }
  return result;
}

function scanVjpForward(
  primalsIn: Array[],
  p: ScanParams,
  linear: readonly boolean[],
): [Array[], (cts: Array[]) => (Array | null)[]] {
  const r = residualSplit(p, linear);
  const nc = p.numConsts;
  const nk = p.numCarry;
  const [c, k, x] = split(primalsIn, nc, nk) as [Array[], Array[], Array[]];
  const nOut = p.jaxpr.outs.length;
  const inv = evalJaxpr(r.pre, [...r.jointConsts, ...c]);
  const fwdOuts = bind(scanP, [...r.fwdInv.map((i) => inv[i]!), ...k, ...x], {
    jaxpr: r.fwd,
    numConsts: r.fwdInv.length,
    numCarry: nk,
    length: p.length,
    reverse: p.reverse,
  });
  const stacked = fwdOuts.slice(nOut);
  const residuals = r.residuals.map((s) => ("x" in s ? x[s.x]! : stacked[s.stacked]!));
  const cw = c.filter((_, i) => r.wrt[i]);
  const pullback = (cts: Array[]): (Array | null)[] => {
    const [ctCarry, ctYs] = split(cts, nk) as [Array[], Array[]];
    const backConsts = [...r.backConsts, ...r.backInv.map((i) => inv[i]!)];
    const results = bind(
      scanP,
      [...backConsts, ...ctCarry, ...cw.map(zerosLike), ...residuals, ...ctYs],
      {
        jaxpr: r.back,
        numConsts: backConsts.length,
        numCarry: nk + cw.length,
        length: p.length,
        reverse: !p.reverse,
      },
    );
    const [gk, gc, gx] = split(results, nk, cw.length) as [Array[], Array[], Array[]];
    // Cotangents in operand order: null where no derivative is carried or the operand is
    // not a float array.
    const grads: (Array | null)[] = [...gc, ...gk, ...gx];
    let next = 0;
    return primalsIn.map((primal, i) => {
      if (!r.wrt[i]) return null;
      const g = grads[next++]!;
      return isFloat(primal.dtype) ? g : null;
    });
  };
  return [fwdOuts.slice(0, nOut), pullback];
}

export const scanP: Primitive<ScanParams> = {
  name: "scan",
  abstractEval(avals, p) {
    const [consts, carry, xs] = split(avals, p.numConsts, p.numCarry);
    const ins = p.jaxpr.inBinders.map((v) => v.aval);
    const expected = [...consts!, ...carry!, ...xs!.map(sliceAval)];
    for (const [k, x] of xs!.entries()) {
      if (x.shape[0] !== p.length) {
        throw new NbiError(
          `scan: xs[${k}] expected a leading axis of length ${p.length}, got shape ${showShape(x.shape)}`,
        );
      }
    }
    if (expected.length !== ins.length || expected.some((a, i) => !sameAval(a, ins[i]!))) {
      throw new NbiError("scan: operands do not match the staged body's inputs");
    }
    const outs = p.jaxpr.outs.map((v) => v.aval);
    return [
      ...outs.slice(0, p.numCarry),
      ...outs.slice(p.numCarry).map((a) => ({ shape: [p.length, ...a.shape], dtype: a.dtype })),
    ];
  },
  impl: { cpu: scanImpl, webgpu: scanImpl },
  jvp(primals, tangents, p) {
    const [c, k, x] = split(primals, p.numConsts, p.numCarry) as [Array[], Array[], Array[]];
    const [dc, dk, dx] = split(tangents, p.numConsts, p.numCarry) as [Array[], Array[], Array[]];
    const nc = c.length;
    const nk = k.length;
    const nx = x.length;
    const body = (...args: Array[]) => {
      const [bc, bdc, bk, bdk, bx, bdx] = split(args, nc, nc, nk, nk, nx);
      const [po, to] = jvpFlat(
        (...a) => evalJaxpr(p.jaxpr, a),
        [...bc!, ...bk!, ...bx!],
        [...bdc!, ...bdk!, ...bdx!],
      );
      return [...po.slice(0, nk), ...to.slice(0, nk), ...po.slice(nk), ...to.slice(nk)];
    };
    const avals = [...c, ...dc, ...k, ...dk, ...x.map(sliceAval), ...dx.map(sliceAval)];
    const staged = makeJaxpr(body, avals);
    const outs = bind(scanP, [...staged.consts, ...c, ...dc, ...k, ...dk, ...x, ...dx], {
      jaxpr: staged.jaxpr,
      numConsts: staged.consts.length + 2 * nc,
      numCarry: 2 * nk,
      length: p.length,
      reverse: p.reverse,
    });
    const ny = outs.length / 2 - nk;
    const [carry, dcarry, ys, dys] = split(outs, nk, nk, ny);
    return [
      [...carry!, ...ys!],
      [...dcarry!, ...dys!],
    ];
  },
  vjpForward: scanVjpForward,
  /**
   * The recomputing reverse rule, for callers that hold only primal inputs and outputs: a
   * forward scan again to save the carries, then a reverse scan whose body is the vjp of the
   * forward body. The tape uses `vjpForward` instead.
   */
  vjp(cts, primalsIn, _primalsOut, p) {
    const [c, k, x] = split(primalsIn, p.numConsts, p.numCarry) as [Array[], Array[], Array[]];
    const [ctCarry, ctYs] = split(cts, p.numCarry) as [Array[], Array[]];
    const nc = c.length;
    const nk = k.length;
    const nx = x.length;
    // 1. Forward again, saving the carry that enters each step.
    const save = makeJaxpr(
      (...args: Array[]) => {
        const outs = evalJaxpr(p.jaxpr, args);
        return [...outs.slice(0, nk), ...args.slice(nc, nc + nk)];
      },
      [...c, ...k, ...x.map(sliceAval)],
    );
    const saved = bind(scanP, [...save.consts, ...c, ...k, ...x], {
      jaxpr: save.jaxpr,
      numConsts: save.consts.length + nc,
      numCarry: nk,
      length: p.length,
      reverse: p.reverse,
    }).slice(nk);
    // 2. Backward: a reverse scan carrying carry cotangents and accumulated const cotangents.
    const back = makeJaxpr(
      (...args: Array[]) => {
        const [bc, ctk, ctc, ki, xi, cty] = split(args, nc, nk, nc, nk, nx);
        const [, pull] = vjpFlat((...a) => evalJaxpr(p.jaxpr, a), [...bc!, ...ki!, ...xi!]);
        const grads = pull([...ctk!, ...cty!]);
        const [gc, gk, gx] = split(grads, nc, nk);
        return [...gk!, ...ctc!.map((acc, i) => add(acc, gc![i]!)), ...gx!];
      },
      [...c, ...k, ...c, ...k.map((a) => a), ...x.map(sliceAval), ...ctYs.map(sliceAval)],
    );
    const results = bind(
      scanP,
      [...back.consts, ...c, ...ctCarry, ...c.map(zerosLike), ...saved, ...x, ...ctYs],
      {
        jaxpr: back.jaxpr,
        numConsts: back.consts.length + nc,
        numCarry: nk + nc,
        length: p.length,
        reverse: !p.reverse,
      },
    );
    const [gk, gc, gx] = split(results, nk, nc);
    const keep = (g: Array, primal: Array) => (isFloat(primal.dtype) ? g : null);
    return [
      ...gc!.map((g, i) => keep(g, c[i]!)),
      ...gk!.map((g, i) => keep(g, k[i]!)),
      ...gx!.map((g, i) => keep(g, x[i]!)),
    ];
  },
  vmap(n, vals, dims, p) {
    const [c, k, x] = split(vals, p.numConsts, p.numCarry) as [Array[], Array[], Array[]];
    const [dc, dk, dx] = split(dims, p.numConsts, p.numCarry) as [
      BatchDim[],
      BatchDim[],
      BatchDim[],
    ];
    const consts = c.map((v, i) => (dc[i] === null ? v : moveBatchAxis(n, v, dc[i]!, 0)));
    const constDims = dc.map((d) => (d === null ? null : 0));
    const carry = k.map((v, i) => moveBatchAxis(n, v, dk[i]!, 0));
    // xs keep time on axis 0 and carry the batch on axis 1.
    const xs = x.map((v, i) => (dx[i] === null ? v : moveBatchAxis(n, v, dx[i]!, 1)));
    const xDims = dx.map((d) => (d === null ? null : 0));
    const xSliceAvals = xs.map(sliceAval);
    const staged = makeJaxpr(
      (...args: Array[]) =>
        vmapFlat(
          (...a) => evalJaxpr(p.jaxpr, a),
          args,
          [...constDims, ...carry.map(() => 0), ...xDims],
          (nOut) => new globalThis.Array<BatchDim>(nOut).fill(0),
        ),
      [...consts, ...carry, ...xSliceAvals],
    );
    const outs = bind(scanP, [...staged.consts, ...consts, ...carry, ...xs], {
      jaxpr: staged.jaxpr,
      numConsts: staged.consts.length + consts.length,
      numCarry: p.numCarry,
      length: p.length,
      reverse: p.reverse,
    });
    return [outs, outs.map((_, i) => (i < p.numCarry ? 0 : 1))];
  },
};
