/**
 * The scalar-op table (src/ops/scalar-ops.ts) against the code that reads it. The compiler
 * already refuses an op without its forms, or a SIMD marker without its emitter case; these
 * tests check what it cannot: every elementwise primitive has an entry and fuses with the
 * entry's JavaScript, the WebGPU kernels take their WGSL from it, each form names only the
 * operands its arity gives, and every op the table marks as having a SIMD form compiles to a
 * one-step WebAssembly SIMD loop that equals the eager kernel bit for bit (and every op marked
 * without one does not compile), on special float32 values.
 */
import { describe, expect, it } from "vitest";
import { np } from "../../src/index.js";
import { compileElementwiseSimd, type SimdDType } from "../../src/ops/cpu/wasm/elementwise-simd.js";
import { simdSupported } from "../../src/ops/cpu/wasm/encoder.js";
import * as conv from "../../src/ops/primitives/conv.js";
import * as elementwise from "../../src/ops/primitives/elementwise.js";
import * as indexing from "../../src/ops/primitives/indexing.js";
import * as matmul from "../../src/ops/primitives/matmul.js";
import * as random from "../../src/ops/primitives/random.js";
import * as reduction from "../../src/ops/primitives/reduction.js";
import * as structural from "../../src/ops/primitives/structural.js";
import {
  ELEMENTWISE_OPS,
  type ElementwiseOp,
  isElementwiseOp,
  SCALAR_OPS,
  type WgslClass,
} from "../../src/ops/scalar-ops.js";
import { elementwiseWgsl } from "../../src/ops/webgpu/elementwise.js";
import type { Array as NbiArray } from "../../src/trace/array.js";
import { bind1 } from "../../src/trace/core.js";
import type { DType } from "../../src/trace/dtype.js";
import type { Primitive } from "../../src/trace/primitive.js";
import { FLOAT32_SPECIALS } from "../helpers/values.js";

/** Every primitive record the primitive families export, by name. */
function primitives(): Map<string, Primitive<unknown>> {
  const out = new Map<string, Primitive<unknown>>();
  for (const family of [conv, elementwise, indexing, matmul, random, reduction, structural]) {
    for (const value of Object.values(family)) {
      if (value !== null && typeof value === "object" && "impl" in value && "name" in value) {
        const p = value as Primitive<unknown>;
        out.set(p.name, p);
      }
    }
  }
  return out;
}

const OPERANDS = ["a", "b", "c"];
/** The operand names an expression mentions. */
const operandsOf = (expr: string) => OPERANDS.filter((n) => new RegExp(`\\b${n}\\b`).test(expr));

describe("the scalar-op table", () => {
  const prims = primitives();

  it("has an entry for every fusible primitive, and a primitive for every entry", () => {
    for (const p of prims.values()) {
      if (p.fusible) expect(isElementwiseOp(p.name), p.name).toBe(true);
    }
    for (const op of ELEMENTWISE_OPS) expect(prims.has(op), op).toBe(true);
  });

  it("is where the primitives' fused JavaScript comes from", () => {
    for (const op of ELEMENTWISE_OPS) {
      const fusible = prims.get(op)!.fusible;
      // shift_right_logical (uint32 only) never fuses: fusion.ts takes float and bool runs.
      if (op === "shift_right_logical") {
        expect(fusible).toBeUndefined();
        continue;
      }
      // Fusible, and the name that keys its forms in the table.
      expect(fusible, op).toBe(true);
      expect(SCALAR_OPS[op].js.expr, op).toEqual(expect.any(String));
    }
  });

  it("is where the WebGPU kernels' WGSL comes from", () => {
    const classes: [WgslClass, DType][] = [
      ["f", "float32"],
      ["i", "int32"],
      ["u", "uint32"],
      ["u", "bool"],
    ];
    for (const op of ELEMENTWISE_OPS) {
      const wgsl = SCALAR_OPS[op].wgsl as Partial<Record<WgslClass, string>>;
      for (const [c, dtype] of classes)
        expect(elementwiseWgsl(op, dtype), `${op} ${dtype}`).toBe(wgsl[c]);
    }
    expect(elementwiseWgsl("cast", "float32")).toBeUndefined();
    expect(elementwiseWgsl("toString", "float32")).toBeUndefined();
  });

  it("names in each form only the operands its arity gives", () => {
    for (const op of ELEMENTWISE_OPS) {
      const { arity, js, wgsl } = SCALAR_OPS[op];
      const allowed = OPERANDS.slice(0, arity);
      const forms = [...Object.values(js), ...Object.values(wgsl)] as string[];
      for (const form of forms) {
        for (const name of operandsOf(form)) expect(allowed, `${op}: ${form}`).toContain(name);
      }
      // The float form uses every operand.
      expect(operandsOf(js.expr), op).toEqual(allowed);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// The SIMD markers against the WebAssembly loops

const SPECIALS = FLOAT32_SPECIALS;

/** Every pair of SPECIALS (a over the first operand, b over the second), as float32. */
function pairs(): [Float32Array, Float32Array] {
  const a: number[] = [];
  const b: number[] = [];
  for (const x of SPECIALS) {
    for (const y of SPECIALS) {
      a.push(x);
      b.push(y);
    }
  }
  return [Float32Array.from(a), Float32Array.from(b)];
}

const sameBits = (x: Float32Array | Uint8Array, y: Float32Array | Uint8Array) => {
  if (x instanceof Uint8Array) return [...x].every((v, i) => v === y[i]);
  const xb = new Uint32Array(x.buffer, x.byteOffset, x.length);
  const yb = new Uint32Array(y.buffer, y.byteOffset, y.length);
  return [...xb].every((v, i) => v === yb[i] || (Number.isNaN(x[i]!) && Number.isNaN(y[i]!)));
};

/** Operand dtypes and data for a one-step program of `op` with its SIMD form's operand types. */
function operandsFor(
  op: ElementwiseOp,
): { dtypes: SimdDType[]; data: (Float32Array | Uint8Array)[]; out: SimdDType }[] {
  const [a, b] = pairs();
  const n = a.length;
  const mask = Uint8Array.from({ length: n }, (_, i) => ((i * 7) % 3 === 0 ? 1 : 0));
  const mask2 = Uint8Array.from({ length: n }, (_, i) => ((i * 5) % 4 === 0 ? 1 : 0));
  const { arity, simd } = SCALAR_OPS[op];
  if (simd === "select") {
    return [
      { dtypes: ["bool", "float32", "float32"], data: [mask, a, b], out: "float32" },
      {
        dtypes: ["bool", "bool", "bool"],
        data: [mask, mask2, mask.map((v) => 1 - v)],
        out: "bool",
      },
    ];
  }
  const f32 = {
    dtypes: new Array<SimdDType>(arity).fill("float32"),
    data: [a, b].slice(0, arity),
    out: (simd === "compare" ? "bool" : "float32") as SimdDType,
  };
  if (op === "eq" || op === "ne")
    return [f32, { dtypes: ["bool", "bool"], data: [mask, mask2], out: "bool" }];
  return [f32];
}

describe.skipIf(!simdSupported())("the table's SIMD markers", () => {
  it("every op marked with a SIMD form compiles to a loop equal to the eager kernel", async () => {
    await np.useBackend("cpu");
    const prims = primitives();
    for (const op of ELEMENTWISE_OPS) {
      if (SCALAR_OPS[op].simd === null) continue;
      for (const { dtypes, data, out } of operandsFor(op)) {
        const n = data[0]!.length;
        const runner = compileElementwiseSimd({
          shape: [n],
          inputs: dtypes.map((dtype) => ({ shape: [n], dtype })),
          steps: [{ op, args: dtypes.map((_, i) => ({ input: i })), dtype: out }],
          outputs: [0],
        });
        expect(runner, `${op}(${dtypes.join(", ")})`).not.toBeNull();
        const [simdOut] = runner!(data);
        const arrays = data.map((d, i) => np.fromTypedArray(d.slice(), [n], { dtype: dtypes[i]! }));
        const eager = bind1(prims.get(op)!, arrays as NbiArray[], {}).dataSync();
        expect(
          sameBits(simdOut as Float32Array | Uint8Array, eager as Float32Array | Uint8Array),
          `${op}(${dtypes.join(", ")})`,
        ).toBe(true);
      }
    }
  });

  it("every op marked without one leaves the group to the JavaScript loop", () => {
    for (const op of ELEMENTWISE_OPS) {
      const { simd, arity, kind } = SCALAR_OPS[op];
      if (simd !== null || kind === "uint") continue;
      const runner = compileElementwiseSimd({
        shape: [8],
        inputs: new Array(arity).fill({ shape: [8], dtype: "float32" }),
        steps: [
          { op, args: Array.from({ length: arity }, (_, i) => ({ input: i })), dtype: "float32" },
        ],
        outputs: [0],
      });
      expect(runner, op).toBeNull();
    }
  });
});
