/**
 * `scan`: a loop carried over the leading axis of its inputs (JAX's lax.scan), as a primitive
 * over a staged body. Operands are [consts..., carry..., xs...]; the body jaxpr maps
 * [consts, carry, x] to [carry', y]; results are [final carry..., stacked ys...].
 *
 * Its rules transform the body: jvp scans the body's jvp; vmap scans the batched body; the vjp
 * runs a reverse scan whose body is the vjp of the forward body at the saved carries.
 */
import { NbiError } from "../../errors.js";
import { bind } from "../../transforms/core.js";
import { evalJaxpr, type Jaxpr, makeJaxpr } from "../../transforms/jaxpr.js";
import { jvpFlat } from "../../transforms/jvp.js";
import { vjpFlat } from "../../transforms/vjp.js";
import { vmapFlat } from "../../transforms/vmap.js";
import type { Array, ShapedArray } from "../array.js";
import type { ConcreteArray } from "../concrete-array.js";
import { isFloat } from "../dtype.js";
import type { BatchDim, Primitive } from "../primitive.js";
import { showShape } from "../shape.js";
import { add } from "./elementwise.js";
import { concatenate, indexLeading, moveBatchAxis, reshape, zeros, zerosLike } from "./rules.js";

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

function scanImpl(operands: ConcreteArray[], p: ScanParams): ConcreteArray[] {
  const [consts, init, xs] = split<Array>(operands, p.numConsts, p.numCarry) as [
    Array[],
    Array[],
    Array[],
  ];
  let carry = init;
  const ys: Array[][] = [];
  for (let step = 0; step < p.length; step++) {
    const i = p.reverse ? p.length - 1 - step : step;
    const outs = evalJaxpr(p.jaxpr, [...consts, ...carry, ...xs.map((x) => indexLeading(x, i))]);
    carry = outs.slice(0, p.numCarry);
    ys[i] = outs.slice(p.numCarry);
  }
  const yAvals = p.jaxpr.outs.slice(p.numCarry).map((v) => v.aval);
  const stacked = yAvals.map((a, k) =>
    p.length === 0
      ? zeros([0, ...a.shape], a.dtype)
      : concatenate(
          ys.map((y) => reshape(y[k]!, [1, ...a.shape])),
          0,
        ),
  );
  return [...carry, ...stacked] as ConcreteArray[];
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
