/**
 * Elementwise primitives: unary math, broadcasting binary arithmetic, comparisons, select, cast.
 * Binary primitives broadcast natively (NumPy rules) and require equal dtypes; the numpy layer
 * promotes dtypes and converts JS numbers before binding.
 */
import { NbiError } from "../../errors.js";
import type { Array, ShapedArray } from "../../trace/array.js";
import { setCpuFusion } from "../../trace/backend.js";
import { type ConcreteArray, fromHost } from "../../trace/concrete-array.js";
import { bind1 } from "../../trace/core.js";
import { allocate, type DType, isFloat } from "../../trace/dtype.js";
import type { BatchDim, Kernel, Primitive } from "../../trace/primitive.js";
import { broadcastShapes, sizeOf } from "../../trace/shape.js";
import { runBinary, runSelect, runUnary } from "../cpu/elementwise.js";
import { cpuFusion } from "../cpu/fused.js";
import { unaryF32 } from "../cpu/wasm/elementwise-simd.js";
import {
  type BinaryOp,
  type CompareOp,
  isF32Program,
  scalarOp,
  type UnaryOp,
} from "../scalar-ops.js";
import { gpuBinary, gpuCast, gpuSelect, gpuUnary } from "../webgpu/elementwise.js";
import { full, zeroDerivativeRules, zerosLike } from "./rules.js";
import { moveAxis, reshape, unbroadcast } from "./structural.js";

// The CPU's fused loops (cpu/fused.ts) compile runs of these primitives from their scalar-op
// table entries; attached to the CPU backend here, where the fusible primitives are defined, so
// any jaxpr with a fusible equation (one marked `fusible`) has loaded them.
setCpuFusion(cpuFusion);

// ---------------------------------------------------------------------------------------------
// Batching shared by every elementwise primitive: batch axes to the front, and batched operands
// padded with size-1 axes so NumPy's trailing alignment still lines up the logical axes.

function vmapElementwise<P>(prim: () => Primitive<P>) {
  return (_axisSize: number, vals: Array[], dims: BatchDim[], params: P): [Array[], BatchDim[]] => {
    const logicalRank = Math.max(...vals.map((v, i) => (dims[i] === null ? v.ndim : v.ndim - 1)));
    const args = vals.map((v, i) => {
      const d = dims[i]!;
      if (dims[i] === null) return v;
      const moved = moveAxis(v, d, 0);
      const pad = logicalRank - (v.ndim - 1);
      if (pad === 0) return moved;
      return reshape(moved, [
        moved.shape[0]!,
        ...new globalThis.Array<number>(pad).fill(1),
        ...moved.shape.slice(1),
      ]);
    });
    return [[bind1(prim(), args, params)], [0]];
  };
}

// ---------------------------------------------------------------------------------------------
// Unary

/** A unary primitive's rules; its scalar forms (JS, WGSL, SIMD) are its scalar-ops.ts entry. */
interface UnarySpec {
  name: UnaryOp;
  /** dy/dx from x and y, as traceable array code; null for piecewise-constant functions. */
  derivative: ((x: Array, y: Array) => Array) | null;
  /** A linear, self-adjoint map (neg): its jvp and vjp apply the map itself. */
  linear?: boolean;
}

function unaryPrimitive(spec: UnarySpec): Primitive<Record<string, never>> {
  const { js } = scalarOp(spec.name);
  // float32 polynomial programs (exp, tanh, log, log1p) have an eager SIMD form (the same bits).
  const program = isF32Program(spec.name) ? spec.name : null;
  const self: Primitive<Record<string, never>> = {
    name: spec.name,
    fusible: true,
    abstractEval([x]) {
      if (!isFloat(x!.dtype) && js.intExpr === undefined) {
        throw new NbiError(
          `${spec.name}: x expected a float32 or float64 array, got dtype ${x!.dtype}`,
        );
      }
      if (x!.dtype === "bool") {
        throw new NbiError(`${spec.name}: x expected a numeric array, got dtype bool`);
      }
      return [{ shape: x!.shape, dtype: x!.dtype }];
    },
    impl: {
      cpu: ([x]) => {
        const src = x!.buffer as Float64Array;
        const out = allocate(x!.dtype, src.length);
        const expr =
          x!.dtype === "float32" && js.f32Expr
            ? js.f32Expr
            : isFloat(x!.dtype)
              ? js.expr
              : js.intExpr!;
        // A float32 polynomial program: the SIMD form where the engine has it.
        const simdDone =
          x!.dtype === "float32" &&
          program !== null &&
          src.length >= 4 &&
          unaryF32(program, src as unknown as Float32Array, out as Float32Array);
        if (!simdDone) runUnary(expr, src, out);
        return [fromHost(out, x!.shape, x!.dtype, x!.backend)];
      },
      webgpu: gpuUnary(spec.name),
    },
    jvp([x], [dx]) {
      const y = bind1(self, [x!], {});
      if (spec.linear) return [[y], [bind1(self, [dx!], {})]];
      if (spec.derivative === null) return [[y], [zerosLike(y)]];
      return [[y], [mul(dx!, spec.derivative(x!, y))]];
    },
    vjp([ct], [x], [y]) {
      if (spec.linear && isFloat(x!.dtype)) return [bind1(self, [ct!], {})];
      if (spec.derivative === null || !isFloat(x!.dtype)) return [null];
      return [mul(ct!, spec.derivative(x!, y!))];
    },
    vmap(_n, [x], [d]) {
      return [[bind1(self, [x!], {})], [d!]];
    },
  };
  return self;
}

const one = (x: Array) => full([], x.dtype, 1);

export const negP = unaryPrimitive({ name: "neg", derivative: null, linear: true });
export const expP = unaryPrimitive({ name: "exp", derivative: (_x, y) => y });
export const logP = unaryPrimitive({ name: "log", derivative: (x) => div(one(x), x) });
export const log1pP = unaryPrimitive({
  name: "log1p",
  derivative: (x) => div(one(x), add(x, one(x))),
});
export const expm1P = unaryPrimitive({ name: "expm1", derivative: (x, y) => add(y, one(x)) });
export const sinP = unaryPrimitive({ name: "sin", derivative: (x) => cos(x) });
export const cosP = unaryPrimitive({ name: "cos", derivative: (x) => neg(sin(x)) });
export const tanhP = unaryPrimitive({ name: "tanh", derivative: (x, y) => sub(one(x), mul(y, y)) });
export const sqrtP = unaryPrimitive({
  name: "sqrt",
  derivative: (x, y) => div(full([], x.dtype, 0.5), y),
});
export const absP = unaryPrimitive({ name: "abs", derivative: (x) => sign(x) });
export const signP = unaryPrimitive({ name: "sign", derivative: null });
export const floorP = unaryPrimitive({ name: "floor", derivative: null });

export const neg = (x: Array) => bind1(negP, [x], {});
export const exp = (x: Array) => bind1(expP, [x], {});
export const log = (x: Array) => bind1(logP, [x], {});
export const log1p = (x: Array) => bind1(log1pP, [x], {});
export const expm1 = (x: Array) => bind1(expm1P, [x], {});
export const sin = (x: Array) => bind1(sinP, [x], {});
export const cos = (x: Array) => bind1(cosP, [x], {});
export const tanh = (x: Array) => bind1(tanhP, [x], {});
export const sqrt = (x: Array) => bind1(sqrtP, [x], {});
export const abs = (x: Array) => bind1(absP, [x], {});
export const sign = (x: Array) => bind1(signP, [x], {});
export const floor = (x: Array) => bind1(floorP, [x], {});

// ---------------------------------------------------------------------------------------------
// Binary arithmetic (broadcasting)

/** A binary primitive's rules; its scalar forms are its scalar-ops.ts entry. */
interface BinarySpec {
  name: BinaryOp;
  jvp(a: Array, b: Array, y: Array, da: Array, db: Array): Array;
  /** Cotangents of a and b before unbroadcasting. */
  vjp(a: Array, b: Array, y: Array, ct: Array): [Array, Array];
}

function binaryAbstractEval(name: string, outDtype?: DType) {
  return ([a, b]: readonly ShapedArray[]): ShapedArray[] => {
    if (a!.dtype !== b!.dtype) {
      throw new NbiError(
        `${name}: operands expected the same dtype, got ${a!.dtype} and ${b!.dtype} ` +
          "(np.* functions promote automatically; cast with x.astype(dtype))",
      );
    }
    return [{ shape: broadcastShapes(name, a!.shape, b!.shape), dtype: outDtype ?? a!.dtype }];
  };
}

function binaryKernel<P>(name: string, expr: string, intExpr: string, outDtype?: DType): Kernel<P> {
  return ([a, b]) => {
    const shape = broadcastShapes(name, a!.shape, b!.shape);
    const dtype = outDtype ?? a!.dtype;
    const out = allocate(dtype, sizeOf(shape));
    const e = isFloat(a!.dtype) ? expr : intExpr;
    runBinary(
      e,
      a!.buffer as Float64Array,
      a!.shape,
      b!.buffer as Float64Array,
      b!.shape,
      out,
      shape,
    );
    return [fromHost(out, shape, dtype, a!.backend)];
  };
}

function binaryPrimitive(spec: BinarySpec): Primitive<Record<string, never>> {
  const { js } = scalarOp(spec.name);
  const self: Primitive<Record<string, never>> = {
    name: spec.name,
    fusible: true,
    abstractEval: binaryAbstractEval(spec.name),
    impl: { cpu: binaryKernel(spec.name, js.expr, js.intExpr), webgpu: gpuBinary(spec.name) },
    jvp([a, b], [da, db]) {
      const y = bind1(self, [a!, b!], {});
      return [[y], [spec.jvp(a!, b!, y, da!, db!)]];
    },
    vjp([ct], [a, b], [y]) {
      if (!isFloat(a!.dtype)) return [null, null];
      const [ca, cb] = spec.vjp(a!, b!, y!, ct!);
      return [unbroadcast(ca, a!.shape), unbroadcast(cb, b!.shape)];
    },
    vmap: vmapElementwise(() => self),
  };
  return self;
}

const half = (x: Array) => full([], x.dtype, 0.5);

export const addP = binaryPrimitive({
  name: "add",
  jvp: (_a, _b, _y, da, db) => add(da, db),
  vjp: (_a, _b, _y, ct) => [ct, ct],
});
export const subP = binaryPrimitive({
  name: "sub",
  jvp: (_a, _b, _y, da, db) => sub(da, db),
  vjp: (_a, _b, _y, ct) => [ct, neg(ct)],
});
export const mulP = binaryPrimitive({
  name: "mul",
  jvp: (a, b, _y, da, db) => add(mul(da, b), mul(a, db)),
  vjp: (a, b, _y, ct) => [mul(ct, b), mul(ct, a)],
});
export const divP = binaryPrimitive({
  name: "div",
  jvp: (_a, b, y, da, db) => div(sub(da, mul(y, db)), b),
  vjp: (_a, b, y, ct) => {
    const cb = div(ct, b);
    return [cb, neg(mul(cb, y))];
  },
});
/** log(a) for the pow derivative w.r.t. the exponent, defined as 0 where a = 0 (as JAX does). */
function safeLog(a: Array): Array {
  const zero = full([], a.dtype, 0);
  const isZero = equal(a, zero);
  return select(isZero, zero, log(select(isZero, full([], a.dtype, 1), a)));
}
function powPartialA(a: Array, b: Array): Array {
  // b * a^(b-1), written so a = 0 with b = 1 gives 1 rather than 0 * inf.
  return mul(b, pow(a, sub(b, full([], b.dtype, 1))));
}
export const powP = binaryPrimitive({
  name: "pow",
  jvp: (a, b, y, da, db) => add(mul(da, powPartialA(a, b)), mul(db, mul(y, safeLog(a)))),
  vjp: (a, b, y, ct) => [mul(ct, powPartialA(a, b)), mul(ct, mul(y, safeLog(a)))],
});
/** Ties split the derivative evenly between the operands (as JAX does). */
function maxWeights(a: Array, b: Array): [Array, Array] {
  const wa = add(cast(greater(a, b), a.dtype), mul(cast(equal(a, b), a.dtype), half(a)));
  return [wa, sub(full([], a.dtype, 1), wa)];
}
export const maxP = binaryPrimitive({
  name: "max",
  jvp: (a, b, _y, da, db) => {
    const [wa, wb] = maxWeights(a, b);
    return add(mul(da, wa), mul(db, wb));
  },
  vjp: (a, b, _y, ct) => {
    const [wa, wb] = maxWeights(a, b);
    return [mul(ct, wa), mul(ct, wb)];
  },
});
export const minP = binaryPrimitive({
  name: "min",
  jvp: (a, b, _y, da, db) => {
    const [wa, wb] = maxWeights(b, a);
    return add(mul(da, wa), mul(db, wb));
  },
  vjp: (a, b, _y, ct) => {
    const [wa, wb] = maxWeights(b, a);
    return [mul(ct, wa), mul(ct, wb)];
  },
});

export const add = (a: Array, b: Array) => bind1(addP, [a, b], {});
export const sub = (a: Array, b: Array) => bind1(subP, [a, b], {});
export const mul = (a: Array, b: Array) => bind1(mulP, [a, b], {});
export const div = (a: Array, b: Array) => bind1(divP, [a, b], {});
export const pow = (a: Array, b: Array) => bind1(powP, [a, b], {});
export const max = (a: Array, b: Array) => bind1(maxP, [a, b], {});
export const min = (a: Array, b: Array) => bind1(minP, [a, b], {});

// ---------------------------------------------------------------------------------------------
// Comparisons (boolean results, no derivative)

function comparePrimitive(name: CompareOp): Primitive<Record<string, never>> {
  const { expr } = scalarOp(name).js;
  const self: Primitive<Record<string, never>> = {
    name,
    nonDifferentiable: true,
    fusible: true,
    abstractEval: binaryAbstractEval(name, "bool"),
    impl: { cpu: binaryKernel(name, expr, expr, "bool"), webgpu: gpuBinary(name, "bool") },
    ...zeroDerivativeRules(() => self),
    vmap: vmapElementwise(() => self),
  };
  return self;
}

export const eqP = comparePrimitive("eq");
export const neP = comparePrimitive("ne");
export const ltP = comparePrimitive("lt");
export const leP = comparePrimitive("le");
export const gtP = comparePrimitive("gt");
export const geP = comparePrimitive("ge");

export const equal = (a: Array, b: Array) => bind1(eqP, [a, b], {});
export const notEqual = (a: Array, b: Array) => bind1(neP, [a, b], {});
export const less = (a: Array, b: Array) => bind1(ltP, [a, b], {});
export const lessEqual = (a: Array, b: Array) => bind1(leP, [a, b], {});
export const greater = (a: Array, b: Array) => bind1(gtP, [a, b], {});
export const greaterEqual = (a: Array, b: Array) => bind1(geP, [a, b], {});

const shiftJs = scalarOp("shift_right_logical").js;
/** Logical shift right of uint32 words (the PRNG turns bits into floats with it). */
export const shiftRightLogicalP: Primitive<Record<string, never>> = {
  name: "shift_right_logical",
  nonDifferentiable: true,
  abstractEval([a, b]) {
    if (a!.dtype !== "uint32" || b!.dtype !== "uint32") {
      throw new NbiError(
        `shift_right_logical: operands expected uint32, got ${a!.dtype} and ${b!.dtype}`,
      );
    }
    return binaryAbstractEval("shift_right_logical")([a!, b!]);
  },
  impl: {
    cpu: binaryKernel("shift_right_logical", shiftJs.expr, shiftJs.intExpr),
    webgpu: gpuBinary("shift_right_logical"),
  },
  ...zeroDerivativeRules(() => shiftRightLogicalP),
  vmap: vmapElementwise(() => shiftRightLogicalP),
};
export const shiftRightLogical = (a: Array, b: Array) => bind1(shiftRightLogicalP, [a, b], {});

// ---------------------------------------------------------------------------------------------
// select(cond, x, y): where cond, x, else y

export const selectP: Primitive<Record<string, never>> = {
  name: "select",
  fusible: true,
  abstractEval([c, x, y]) {
    if (c!.dtype !== "bool") {
      throw new NbiError(`where: condition expected a bool array, got dtype ${c!.dtype}`);
    }
    if (x!.dtype !== y!.dtype) {
      throw new NbiError(`where: x and y expected the same dtype, got ${x!.dtype} and ${y!.dtype}`);
    }
    return [{ shape: broadcastShapes("where", c!.shape, x!.shape, y!.shape), dtype: x!.dtype }];
  },
  impl: {
    cpu: ([c, x, y]) => {
      const shape = broadcastShapes("where", c!.shape, x!.shape, y!.shape);
      const out = allocate(x!.dtype, sizeOf(shape));
      runSelect(
        c!.buffer as Uint8Array,
        c!.shape,
        x!.buffer as Float64Array,
        x!.shape,
        y!.buffer as Float64Array,
        y!.shape,
        out,
        shape,
      );
      return [fromHost(out, shape, x!.dtype, x!.backend)];
    },
    webgpu: gpuSelect,
  },
  jvp([c, x, y], [, dx, dy]) {
    return [[select(c!, x!, y!)], [select(c!, dx!, dy!)]];
  },
  vjp([ct], [c, x, y]) {
    if (!isFloat(x!.dtype)) return [null, null, null];
    const z = full([], ct!.dtype, 0);
    return [
      null,
      unbroadcast(select(c!, ct!, z), x!.shape),
      unbroadcast(select(c!, z, ct!), y!.shape),
    ];
  },
  vmap: vmapElementwise(() => selectP),
};
export const select = (c: Array, x: Array, y: Array) => bind1(selectP, [c, x, y], {});

// ---------------------------------------------------------------------------------------------
// cast (convert element type) and stop_gradient

export interface CastParams {
  dtype: DType;
}

export const castP: Primitive<CastParams> = {
  name: "cast",
  abstractEval([x], { dtype }) {
    return [{ shape: x!.shape, dtype }];
  },
  impl: {
    cpu: ([x], { dtype }) => {
      const src = x!.buffer as Float64Array;
      const out = allocate(dtype, src.length);
      if (dtype === "bool") for (let i = 0; i < src.length; i++) out[i] = src[i] !== 0 ? 1 : 0;
      else if (isFloat(x!.dtype) && (dtype === "int32" || dtype === "uint32")) {
        // Truncation toward zero, like C casts and NumPy; NaN becomes 0.
        for (let i = 0; i < src.length; i++) out[i] = Math.trunc(src[i]!) || 0;
      } else out.set(src);
      return [fromHost(out, x!.shape, dtype, x!.backend)];
    },
    webgpu: gpuCast,
  },
  jvp([x], [dx], params) {
    const y = cast(x!, params.dtype);
    if (isFloat(x!.dtype) && isFloat(params.dtype)) return [[y], [cast(dx!, params.dtype)]];
    return [[y], [zerosLike(y)]];
  },
  vjp([ct], [x], _outs, params) {
    if (isFloat(x!.dtype) && isFloat(params.dtype)) return [cast(ct!, x!.dtype)];
    return [null];
  },
  vmap(_n, [x], [d], params) {
    return [[cast(x!, params.dtype)], [d!]];
  },
};
export function cast(x: Array, dtype: DType): Array {
  if (x.dtype === dtype) return x;
  return bind1(castP, [x], { dtype });
}

/** Identity in value; blocks derivatives (jvp tangent zero, no cotangent). */
export const stopGradientP: Primitive<Record<string, never>> = {
  name: "stop_gradient",
  abstractEval([x]) {
    return [{ shape: x!.shape, dtype: x!.dtype }];
  },
  impl: { cpu: ([x]) => [x as ConcreteArray], webgpu: ([x]) => [x as ConcreteArray] },
  jvp([x]) {
    const y = bind1(stopGradientP, [x!], {});
    return [[y], [zerosLike(y)]];
  },
  vjp() {
    return [null];
  },
  vmap(_n, [x], [d]) {
    return [[bind1(stopGradientP, [x!], {})], [d!]];
  },
};
