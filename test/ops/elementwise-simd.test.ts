/**
 * The SIMD instructions the fused elementwise loops use, each against a JavaScript model, and the
 * generated loops themselves (`compileElementwiseSimd`) against eager evaluation with the
 * library's own kernels: bit-identical float32 lanes (any NaN equal to any NaN) and equal bool
 * bytes, on random programs, shapes, broadcast patterns and values with NaN, ±0, ±Infinity and
 * subnormals.
 */
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { type Array as NbiArray, np } from "../../src/index.js";
import {
  compileElementwiseSimd,
  type ElementwiseProgram,
  type ElementwiseStep,
  type Operand,
  type SimdDType,
} from "../../src/ops/cpu/wasm/elementwise-simd.js";
import { Code, encodeModule, simdSupported } from "../../src/ops/cpu/wasm/encoder.js";
import { wasm } from "../../src/ops/cpu/wasm/runtime.js";
import * as prim from "../../src/ops/primitives/elementwise.js";
import { FLOAT32_SPECIALS } from "../helpers/values.js";

// ---------------------------------------------------------------------------------------------
// Values

const SPECIALS = FLOAT32_SPECIALS;

/** float32 values with the special cases well represented (fast-check's float includes them too). */
const f32Arb = fc.oneof(fc.constantFrom(...SPECIALS), fc.float());
const lanes4 = fc.array(f32Arb, { minLength: 4, maxLength: 4 });
const u32Arb = fc.oneof(
  fc.constantFrom(0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 0x7fff, 0x8000, 0xff, 0x80),
  fc.nat({ max: 0xffffffff }),
);
const bytes16 = fc.uint8Array({ minLength: 16, maxLength: 16 });

const bitsOf = (x: number) => new Uint32Array(new Float32Array([x]).buffer)[0]!;
const isNaN32 = (bits: number) => (bits & 0x7f800000) === 0x7f800000 && (bits & 0x7fffff) !== 0;
/** Equal float32 bit patterns, treating every NaN as equal to every other. */
const sameF32 = (a: number, b: number) => a === b || (isNaN32(a) && isNaN32(b));

// ---------------------------------------------------------------------------------------------
// A one-function module over one page of memory: operands at bytes 0, 16 and 32, result at 48.

interface Harness {
  run: () => void;
  bytes: Uint8Array;
  u32: Uint32Array;
  f32: Float32Array;
}

function harness(body: Code): Harness {
  const module = encodeModule([{ name: "f", params: [], results: [], locals: [], body }]);
  expect(wasm!.validate(module)).toBe(true);
  const memory = new wasm!.Memory({ initial: 1 });
  const run = new wasm!.Instance(new wasm!.Module(module), { env: { memory } }).exports
    .f as () => void;
  return {
    run,
    bytes: new Uint8Array(memory.buffer),
    u32: new Uint32Array(memory.buffer),
    f32: new Float32Array(memory.buffer),
  };
}

/** out(48) = op(load(0), ...) over `arity` operand vectors. */
function vectorOp(arity: 1 | 2 | 3, emit: (c: Code) => Code): Harness {
  const body = new Code().i32(48);
  for (let i = 0; i < arity; i++) body.i32(0).v128Load(16 * i);
  emit(body).v128Store(0);
  return harness(body);
}

const sat = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));

describe("SIMD instructions of the fused elementwise loops", () => {
  it("this engine runs WebAssembly SIMD", () => {
    expect(simdSupported()).toBe(true);
  });

  const floatUnary: [string, (c: Code) => Code, (x: number) => number][] = [
    ["f32x4.sqrt", (c) => c.f32x4Sqrt(), Math.sqrt],
    ["f32x4.ceil", (c) => c.f32x4Ceil(), Math.ceil],
    ["f32x4.floor", (c) => c.f32x4Floor(), Math.floor],
    ["f32x4.trunc", (c) => c.f32x4Trunc(), Math.trunc],
  ];

  it.each(floatUnary)("%s matches JavaScript bit for bit (NaN as any NaN)", (_n, emit, js) => {
    const h = vectorOp(1, emit);
    fc.assert(
      fc.property(lanes4, (xs) => {
        h.f32.set(xs, 0);
        h.run();
        for (let l = 0; l < 4; l++) {
          const want = bitsOf(Math.fround(js(h.f32[l]!)));
          const got = h.u32[12 + l]!;
          if (!sameF32(got, want)) {
            throw new Error(
              `lane ${l} of ${xs}: got 0x${got.toString(16)}, want 0x${want.toString(16)}`,
            );
          }
        }
      }),
      { numRuns: 200 },
    );
  });

  it.each([
    ["f32x4.abs", (c: Code) => c.f32x4Abs(), (b: number) => (b & 0x7fffffff) >>> 0],
    ["f32x4.neg", (c: Code) => c.f32x4Neg(), (b: number) => (b ^ 0x80000000) >>> 0],
  ] as const)("%s changes only the sign bit (NaN payloads kept)", (_n, emit, model) => {
    const h = vectorOp(1, emit);
    fc.assert(
      fc.property(fc.array(u32Arb, { minLength: 4, maxLength: 4 }), lanes4, (raw, xs) => {
        // Two lanes of raw bit patterns (arbitrary NaNs), two of float values.
        h.u32.set([raw[0]!, raw[1]!], 0);
        h.f32.set([xs[2]!, xs[3]!], 2);
        const input = [...h.u32.subarray(0, 4)];
        h.run();
        for (let l = 0; l < 4; l++) expect(h.u32[12 + l]).toBe(model(input[l]!));
      }),
      { numRuns: 200 },
    );
  });

  const floatCompare: [string, (c: Code) => Code, (x: number, y: number) => boolean][] = [
    ["f32x4.eq", (c) => c.f32x4Eq(), (x, y) => x === y],
    ["f32x4.ne", (c) => c.f32x4Ne(), (x, y) => x !== y],
    ["f32x4.lt", (c) => c.f32x4Lt(), (x, y) => x < y],
    ["f32x4.gt", (c) => c.f32x4Gt(), (x, y) => x > y],
    ["f32x4.le", (c) => c.f32x4Le(), (x, y) => x <= y],
    ["f32x4.ge", (c) => c.f32x4Ge(), (x, y) => x >= y],
  ];

  it.each(floatCompare)(
    "%s gives all-ones lanes where JavaScript's comparison holds",
    (_n, emit, js) => {
      const h = vectorOp(2, emit);
      fc.assert(
        fc.property(lanes4, lanes4, fc.boolean(), (xs, ys, same) => {
          h.f32.set(xs, 0);
          h.f32.set(same ? xs : ys, 4); // equal operands are rare otherwise
          h.run();
          for (let l = 0; l < 4; l++) {
            expect(h.u32[12 + l]).toBe(js(h.f32[l]!, h.f32[4 + l]!) ? 0xffffffff : 0);
          }
        }),
        { numRuns: 200 },
      );
    },
  );

  it.each([
    ["i32x4.eq", (c: Code) => c.i32x4Eq(), (x: number, y: number) => x === y],
    ["i32x4.ne", (c: Code) => c.i32x4Ne(), (x: number, y: number) => x !== y],
  ] as const)("%s compares 32-bit lanes bitwise", (_n, emit, js) => {
    const h = vectorOp(2, emit);
    const words = fc.array(u32Arb, { minLength: 4, maxLength: 4 });
    fc.assert(
      fc.property(
        words,
        words,
        fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
        (a, b, s) => {
          h.u32.set(a, 0);
          h.u32.set(
            b.map((y, l) => (s[l] ? a[l]! : y)),
            4,
          );
          h.run();
          for (let l = 0; l < 4; l++) {
            expect(h.u32[12 + l]).toBe(js(h.u32[l]!, h.u32[4 + l]!) ? 0xffffffff : 0);
          }
        },
      ),
      { numRuns: 100 },
    );
  });

  const bitwise: [
    string,
    1 | 2 | 3,
    (c: Code) => Code,
    (a: number, b: number, c: number) => number,
  ][] = [
    ["v128.not", 1, (c) => c.v128Not(), (a) => ~a & 0xff],
    ["v128.and", 2, (c) => c.v128And(), (a, b) => a & b],
    ["v128.andnot", 2, (c) => c.v128AndNot(), (a, b) => a & ~b & 0xff],
    ["v128.or", 2, (c) => c.v128Or(), (a, b) => a | b],
    ["v128.xor", 2, (c) => c.v128Xor(), (a, b) => a ^ b],
    ["v128.bitselect", 3, (c) => c.v128Bitselect(), (a, b, m) => ((a & m) | (b & ~m)) & 0xff],
  ];

  it.each(bitwise)("%s matches the bytewise JavaScript operation", (_n, arity, emit, js) => {
    const h = vectorOp(arity, emit);
    fc.assert(
      fc.property(bytes16, bytes16, bytes16, (a, b, m) => {
        h.bytes.set(a, 0);
        h.bytes.set(b, 16);
        h.bytes.set(m, 32);
        h.run();
        for (let i = 0; i < 16; i++) expect(h.bytes[48 + i]).toBe(js(a[i]!, b[i]!, m[i]!));
      }),
      { numRuns: 100 },
    );
  });

  it("i8x16.splat and i32x4.splat repeat the (wrapped) i32 operand", () => {
    fc.assert(
      fc.property(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), (v) => {
        const h8 = harness(new Code().i32(48).i32(v).i8x16Splat().v128Store(0));
        h8.run();
        for (let i = 0; i < 16; i++) expect(h8.bytes[48 + i]).toBe(v & 0xff);
        const h32 = harness(new Code().i32(48).i32(v).i32x4Splat().v128Store(0));
        h32.run();
        for (let l = 0; l < 4; l++) expect(h32.u32[12 + l]).toBe(v >>> 0);
      }),
      { numRuns: 30 },
    );
  });

  it("v128.const stores its 16 immediate bytes in order, and refuses other lengths", () => {
    fc.assert(
      fc.property(bytes16, (imm) => {
        const h = harness(
          new Code()
            .i32(48)
            .v128Const([...imm])
            .v128Store(0),
        );
        h.run();
        expect([...h.bytes.subarray(48, 64)]).toEqual([...imm]);
      }),
      { numRuns: 30 },
    );
    expect(() => new Code().v128Const([1, 2, 3])).toThrow(/16 bytes/);
  });

  it("i16x8.narrow_i32x4_s saturates two i32x4 into one i16x8 (first operand low)", () => {
    const h = vectorOp(2, (c) => c.i16x8NarrowI32x4S());
    const i32Arb = fc.oneof(
      fc.constantFrom(0, -1, 1, 32767, 32768, -32768, -32769, 2 ** 31 - 1, -(2 ** 31)),
      fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
    );
    const words = fc.array(i32Arb, { minLength: 4, maxLength: 4 });
    fc.assert(
      fc.property(words, words, (a, b) => {
        const i32 = new Int32Array(h.u32.buffer);
        i32.set(a, 0);
        i32.set(b, 4);
        h.run();
        const out = new Int16Array(h.u32.buffer, 48, 8);
        expect([...out]).toEqual([...a, ...b].map((x) => sat(x, -32768, 32767)));
      }),
      { numRuns: 100 },
    );
  });

  it("i8x16.narrow_i16x8_s saturates two i16x8 into one i8x16 (first operand low)", () => {
    const h = vectorOp(2, (c) => c.i8x16NarrowI16x8S());
    const i16Arb = fc.oneof(
      fc.constantFrom(0, -1, 1, 127, 128, -128, -129, 32767, -32768),
      fc.integer({ min: -32768, max: 32767 }),
    );
    const halves = fc.array(i16Arb, { minLength: 8, maxLength: 8 });
    fc.assert(
      fc.property(halves, halves, (a, b) => {
        const i16 = new Int16Array(h.u32.buffer);
        i16.set(a, 0);
        i16.set(b, 8);
        h.run();
        const out = new Int8Array(h.u32.buffer, 48, 16);
        expect([...out]).toEqual([...a, ...b].map((x) => sat(x, -128, 127)));
      }),
      { numRuns: 100 },
    );
  });

  it("i16x8.extend_low_i8x16_u and i32x4.extend_low_i16x8_u zero-extend the low half", () => {
    const h16 = vectorOp(1, (c) => c.i16x8ExtendLowI8x16U());
    const h32 = vectorOp(1, (c) => c.i32x4ExtendLowI16x8U());
    fc.assert(
      fc.property(bytes16, (a) => {
        h16.bytes.set(a, 0);
        h16.run();
        expect([...new Uint16Array(h16.u32.buffer, 48, 8)]).toEqual([...a.subarray(0, 8)]);
        h32.bytes.set(a, 0);
        h32.run();
        const halves = new Uint16Array(a.buffer, a.byteOffset, 8);
        expect([...h32.u32.subarray(12, 16)]).toEqual([...halves.subarray(0, 4)]);
      }),
      { numRuns: 100 },
    );
  });

  it("v128.load8_splat splats one byte; v128.load32_zero loads 4 bytes and zeroes the rest", () => {
    fc.assert(
      fc.property(bytes16, fc.nat({ max: 12 }), fc.nat({ max: 3 }), (a, at, offset) => {
        const splat = harness(new Code().i32(48).i32(at).v128Load8Splat(offset).v128Store(0));
        splat.bytes.set(a, 0);
        splat.run();
        expect([...splat.bytes.subarray(48, 64)]).toEqual(new Array(16).fill(a[at + offset]));
        const zero = harness(new Code().i32(48).i32(at).v128Load32Zero(offset).v128Store(0));
        zero.bytes.set(a, 0);
        zero.bytes.fill(0xee, 48, 64);
        zero.run();
        const want = [...a.subarray(at + offset, at + offset + 4)];
        while (want.length < 16) want.push(0);
        // at + offset may reach 15; bytes past 15 are the (zero) memory after the operand.
        expect([...zero.bytes.subarray(48, 64)]).toEqual(want);
      }),
      { numRuns: 60 },
    );
  });

  it("v128.store8_lane and v128.store32_lane store exactly the chosen lane", () => {
    fc.assert(
      fc.property(
        bytes16,
        fc.nat({ max: 15 }),
        fc.nat({ max: 3 }),
        fc.nat({ max: 8 }),
        (a, lane8, lane32, offset) => {
          const s8 = harness(new Code().i32(48).i32(0).v128Load(0).v128Store8Lane(offset, lane8));
          s8.bytes.set(a, 0);
          s8.run();
          const want8 = new Array(16).fill(0);
          want8[offset] = a[lane8];
          expect([...s8.bytes.subarray(48, 64)]).toEqual(want8);
          const s32 = harness(
            new Code().i32(48).i32(0).v128Load(0).v128Store32Lane(offset, lane32),
          );
          s32.bytes.set(a, 0);
          s32.run();
          const want32 = new Array(16).fill(0);
          for (let i = 0; i < 4; i++) want32[offset + i] = a[4 * lane32 + i];
          expect([...s32.bytes.subarray(48, 64)]).toEqual(want32);
        },
      ),
      { numRuns: 60 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Generated loops against eager evaluation

/** A small deterministic generator (mulberry32), so large inputs come from one fast-check seed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function values(dtype: SimdDType, n: number, seed: number): Float32Array | Uint8Array {
  const next = rng(seed);
  if (dtype === "bool") return Uint8Array.from({ length: n }, () => (next() < 0.5 ? 1 : 0));
  return Float32Array.from({ length: n }, () => {
    const u = next();
    if (u < 0.25) return SPECIALS[Math.floor(next() * SPECIALS.length)]!;
    // Small integers and halves make ties for max/min/comparisons and exact floor values.
    if (u < 0.5) return Math.round((next() - 0.5) * 8) / 2;
    return (next() - 0.5) * 2 ** Math.round((next() - 0.5) * 40);
  });
}

/**
 * float32 values for sums: specials at `specialRate` (NaN and ±Infinity would otherwise swamp
 * every sum), and magnitudes from 2^-40 to 2^40 mixed with ±2^24-sized values, so that summing
 * in float32 instead of float64, or in another order, changes the rounded result.
 */
function sumValues(dtype: SimdDType, n: number, seed: number, specialRate: number) {
  const next = rng(seed);
  if (dtype === "bool") return Uint8Array.from({ length: n }, () => (next() < 0.5 ? 1 : 0));
  return Float32Array.from({ length: n }, () => {
    const u = next();
    if (u < specialRate) return SPECIALS[Math.floor(next() * SPECIALS.length)]!;
    if (u < 0.35) return (next() < 0.5 ? -1 : 1) * (2 ** 24 + Math.floor(next() * 8));
    if (u < 0.55) return Math.round((next() - 0.5) * 8) / 2;
    return (next() - 0.5) * 2 ** Math.round((next() - 0.5) * 80);
  });
}

type Pattern = "full" | "row" | "col" | "scalar";

/**
 * An input shape of each pattern for an output split at axis `split` (rows: axes before it,
 * columns: axes from it), with leading size-1 axes added (row, scalar) or dropped (full).
 */
function inputShape(out: number[], split: number, pattern: Pattern, pad: boolean): number[] {
  const rank = out.length;
  switch (pattern) {
    case "full":
      // pad: the output's leading size-1 axes left out
      return pad
        ? out.slice(
            Math.max(
              0,
              out.findIndex((d) => d !== 1),
            ),
          )
        : [...out];
    case "row": {
      const cols = out.slice(split);
      return pad ? [...new Array<number>(split).fill(1), ...cols] : cols;
    }
    case "col":
      return [...out.slice(0, split), ...new Array<number>(rank - split).fill(1)];
    case "scalar":
      return pad ? [1] : [];
  }
}

const F32_BINARY = ["add", "sub", "mul", "div", "max", "min"];
const F32_UNARY = ["neg", "abs", "sqrt", "floor", "sign", "exp", "tanh"];
const COMPARISONS = ["eq", "ne", "lt", "gt", "le", "ge"];
const OPS = [...F32_BINARY, ...F32_UNARY, ...COMPARISONS, "select"];

interface StepRecipe {
  op: string;
  picks: [number, number, number];
  /** eq/ne on bools, or select between bools, where bool operands exist. */
  boolish: boolean;
}

/** Resolves recipes to dtype-correct steps, reading inputs or earlier steps. */
function buildSteps(inputs: SimdDType[], recipes: StepRecipe[]): ElementwiseStep[] {
  const steps: ElementwiseStep[] = [];
  const candidates = (dtype: SimdDType): Operand[] => [
    ...inputs.flatMap((d, i): Operand[] => (d === dtype ? [{ input: i }] : [])),
    ...steps.flatMap((s, k): Operand[] => (s.dtype === dtype ? [{ step: k }] : [])),
  ];
  const pick = (dtype: SimdDType, p: number) => {
    const c = candidates(dtype);
    return c[p % c.length]!;
  };
  for (const { op: wanted, picks, boolish } of recipes) {
    const bools = candidates("bool").length > 0;
    // select needs a condition; without a bool value around it becomes a comparison.
    const op = wanted === "select" && !bools ? "gt" : wanted;
    if (F32_BINARY.includes(op)) {
      steps.push({
        op,
        args: [pick("float32", picks[0]), pick("float32", picks[1])],
        dtype: "float32",
      });
    } else if (F32_UNARY.includes(op)) {
      steps.push({ op, args: [pick("float32", picks[0])], dtype: "float32" });
    } else if (COMPARISONS.includes(op)) {
      const d: SimdDType = boolish && bools && (op === "eq" || op === "ne") ? "bool" : "float32";
      steps.push({ op, args: [pick(d, picks[0]), pick(d, picks[1])], dtype: "bool" });
    } else {
      const d: SimdDType = boolish ? "bool" : "float32";
      steps.push({
        op,
        args: [pick("bool", picks[0]), pick(d, picks[1]), pick(d, picks[2])],
        dtype: d,
      });
    }
  }
  return steps;
}

/** Eager evaluation with the primitives' own CPU kernels, outputs broadcast to the full shape. */
function evalEager(
  program: ElementwiseProgram,
  data: (Float32Array | Uint8Array)[],
): (Float32Array | Uint8Array)[] {
  const ins = program.inputs.map((x, i) =>
    np.fromTypedArray(data[i]!, x.shape, { dtype: x.dtype }),
  );
  const vals: NbiArray[] = [];
  const get = (a: Operand) => ("input" in a ? ins[a.input]! : vals[a.step]!);
  const binary: Record<string, (a: NbiArray, b: NbiArray) => NbiArray> = {
    add: prim.add,
    sub: prim.sub,
    mul: prim.mul,
    div: prim.div,
    max: prim.max,
    min: prim.min,
    eq: prim.equal,
    ne: prim.notEqual,
    lt: prim.less,
    gt: prim.greater,
    le: prim.lessEqual,
    ge: prim.greaterEqual,
  };
  const unary: Record<string, (a: NbiArray) => NbiArray> = {
    neg: prim.neg,
    abs: prim.abs,
    sqrt: prim.sqrt,
    floor: prim.floor,
    sign: prim.sign,
    exp: prim.exp,
    tanh: prim.tanh,
  };
  for (const s of program.steps) {
    const args = s.args.map(get);
    if (s.op === "select") vals.push(prim.select(args[0]!, args[1]!, args[2]!));
    else if (s.op === "reduce_sum") {
      // The reduce primitive's CPU kernel on the value broadcast to the program shape.
      vals.push(np.sum(np.broadcastTo(args[0]!, program.shape), { axis: [...s.axes!] }));
    } else if (s.op in unary) vals.push(unary[s.op]!(args[0]!));
    else vals.push(binary[s.op]!(args[0]!, args[1]!));
  }
  return program.outputs.map((k) =>
    program.steps[k]!.op === "reduce_sum"
      ? (vals[k]!.dataSync() as Float32Array)
      : (np.broadcastTo(vals[k]!, program.shape).dataSync() as Float32Array | Uint8Array),
  );
}

/** The first differing element, or null (float32 by bit pattern with NaN ≡ NaN). */
function firstMismatch(
  got: Float32Array | Uint8Array,
  want: Float32Array | Uint8Array,
): string | null {
  if (got.length !== want.length) return `length ${got.length} vs ${want.length}`;
  if (want instanceof Float32Array) {
    if (!(got instanceof Float32Array)) return "got a non-float32 array";
    const g = new Uint32Array(got.buffer, got.byteOffset, got.length);
    const w = new Uint32Array(want.buffer, want.byteOffset, want.length);
    for (let i = 0; i < w.length; i++) {
      if (!sameF32(g[i]!, w[i]!))
        return `element ${i}: got ${got[i]} (0x${g[i]!.toString(16)}), want ${want[i]} (0x${w[i]!.toString(16)})`;
    }
    return null;
  }
  for (let i = 0; i < want.length; i++) {
    if (got[i] !== want[i]) return `element ${i}: got ${got[i]}, want ${want[i]}`;
  }
  return null;
}

describe("compileElementwiseSimd (cpu)", () => {
  beforeAll(async () => {
    await np.useBackend("cpu");
  });

  const shapeArb = fc
    .array(fc.oneof(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 40 })), {
      minLength: 1,
      maxLength: 3,
    })
    .filter((s) => s.reduce((a, b) => a * b, 1) <= 20000);
  const inputArb = fc.record({
    dtype: fc.constantFrom<SimdDType>("float32", "float32", "bool"),
    pattern: fc.constantFrom<Pattern>("full", "row", "col", "scalar"),
    pad: fc.boolean(),
    seed: fc.nat(),
  });
  const recipeArb = fc.record({
    op: fc.constantFrom(...OPS),
    picks: fc.tuple(fc.nat(), fc.nat(), fc.nat()),
    boolish: fc.boolean(),
  });

  it("random programs over broadcast inputs equal eager evaluation bit for bit", () => {
    fc.assert(
      fc.property(
        shapeArb,
        fc.nat(),
        fc.array(inputArb, { minLength: 1, maxLength: 4 }),
        fc.array(recipeArb, { minLength: 1, maxLength: 8 }),
        fc.array(fc.boolean(), { minLength: 8, maxLength: 8 }),
        (shape, splitSeed, inputSpecs, recipes, keep) => {
          // Input 0 is float32 so every float operation has an operand.
          inputSpecs[0] = { ...inputSpecs[0]!, dtype: "float32" };
          const split = shape.length === 1 ? 1 : 1 + (splitSeed % (shape.length - 1));
          const inputs = inputSpecs.map((s) => ({
            shape: inputShape(shape, split, s.pattern, s.pad),
            dtype: s.dtype,
          }));
          const steps = buildSteps(
            inputs.map((x) => x.dtype),
            recipes,
          );
          const outputs = steps.flatMap((_, k) => (keep[k] || k === steps.length - 1 ? [k] : []));
          const program: ElementwiseProgram = { shape, inputs, steps, outputs };
          const data = inputs.map((x, i) =>
            values(
              x.dtype,
              x.shape.reduce((a, b) => a * b, 1),
              inputSpecs[i]!.seed,
            ),
          );
          const runner = compileElementwiseSimd(program);
          const where = JSON.stringify({ shape, inputs, steps, outputs });
          expect(runner, `compiled: ${where}`).not.toBeNull();
          const got = runner!(data);
          const want = evalEager(program, data);
          expect(got.length).toBe(want.length);
          want.forEach((w, j) => {
            const bad = firstMismatch(got[j] as Float32Array | Uint8Array, w);
            if (bad) {
              const inputText = data.map((d) => `[${[...d.subarray(0, 16)].join(", ")}]`);
              throw new Error(`output ${j} ${bad}\nprogram ${where}\ninputs ${inputText}`);
            }
          });
        },
      ),
      { numRuns: 300 },
    );
  });

  it("handles every special value in every lane position, vector body and tail", () => {
    // Output [3, 7]: full x, row y (a bias), col s, scalar t; 7 columns = one vector + 3-lane tail.
    const shape = [3, 7];
    const x = Float32Array.from({ length: 21 }, (_, i) => SPECIALS[i % SPECIALS.length]!);
    const y = Float32Array.from({ length: 7 }, (_, i) => SPECIALS[(i * 5 + 3) % SPECIALS.length]!);
    const s = Float32Array.from([0, -0, Number.NaN]);
    const t = Float32Array.from([-0]);
    const steps: ElementwiseStep[] = [
      { op: "max", args: [{ input: 0 }, { input: 1 }], dtype: "float32" }, // 0
      { op: "min", args: [{ input: 1 }, { input: 0 }], dtype: "float32" }, // 1
      { op: "sign", args: [{ input: 0 }], dtype: "float32" }, // 2
      { op: "le", args: [{ input: 0 }, { input: 2 }], dtype: "bool" }, // 3
      { op: "select", args: [{ step: 3 }, { input: 3 }, { step: 0 }], dtype: "float32" }, // 4
      { op: "ne", args: [{ step: 0 }, { step: 1 }], dtype: "bool" }, // 5
      { op: "eq", args: [{ step: 3 }, { step: 5 }], dtype: "bool" }, // 6
      { op: "max", args: [{ input: 3 }, { input: 2 }], dtype: "float32" }, // 7
      { op: "min", args: [{ input: 2 }, { input: 3 }], dtype: "float32" }, // 8
      { op: "exp", args: [{ input: 0 }], dtype: "float32" }, // 9
      { op: "tanh", args: [{ input: 0 }], dtype: "float32" }, // 10
      { op: "tanh", args: [{ input: 1 }], dtype: "float32" }, // 11
    ];
    const program: ElementwiseProgram = {
      shape,
      inputs: [
        { shape: [3, 7], dtype: "float32" },
        { shape: [7], dtype: "float32" },
        { shape: [3, 1], dtype: "float32" },
        { shape: [], dtype: "float32" },
      ],
      steps,
      outputs: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
    };
    const runner = compileElementwiseSimd(program);
    expect(runner).not.toBeNull();
    const got = runner!([x, y, s, t]);
    const want = evalEager(program, [x, y, s, t]);
    want.forEach((w, j) => {
      expect(firstMismatch(got[j] as Float32Array | Uint8Array, w), `output ${j}`).toBeNull();
    });
  });

  const base = (
    steps: ElementwiseStep[],
    shapes: number[][],
    shape = [5, 6],
  ): ElementwiseProgram => ({
    shape,
    inputs: shapes.map((s) => ({ shape: s, dtype: "float32" })),
    steps,
    outputs: [steps.length - 1],
  });

  it("returns null for steps without an exact SIMD form (sin, pow)", () => {
    const ok = base(
      [{ op: "add", args: [{ input: 0 }, { input: 1 }], dtype: "float32" }],
      [[5, 6], [6]],
    );
    expect(compileElementwiseSimd(ok)).not.toBeNull();
    const sin = base(
      [
        { op: "add", args: [{ input: 0 }, { input: 1 }], dtype: "float32" },
        { op: "sin", args: [{ step: 0 }], dtype: "float32" },
      ],
      [[5, 6], [6]],
    );
    expect(compileElementwiseSimd(sin)).toBeNull();
    const pow = base(
      [{ op: "pow", args: [{ input: 0 }, { input: 1 }], dtype: "float32" }],
      [[5, 6], [6]],
    );
    expect(compileElementwiseSimd(pow)).toBeNull();
  });

  it("returns null for order comparisons of bools and mistyped operands", () => {
    const lt: ElementwiseProgram = {
      shape: [8],
      inputs: [
        { shape: [8], dtype: "bool" },
        { shape: [8], dtype: "bool" },
      ],
      steps: [{ op: "lt", args: [{ input: 0 }, { input: 1 }], dtype: "bool" }],
      outputs: [0],
    };
    expect(compileElementwiseSimd(lt)).toBeNull();
    expect(
      compileElementwiseSimd({ ...lt, steps: [{ ...lt.steps[0]!, op: "eq" }] }),
    ).not.toBeNull();
    const addBools = { ...lt, steps: [{ ...lt.steps[0]!, op: "add", dtype: "float32" as const }] };
    expect(compileElementwiseSimd(addBools)).toBeNull();
  });

  it("returns null for a broadcast pattern that needs four loop axes; three compile", () => {
    const steps: ElementwiseStep[] = [
      { op: "add", args: [{ input: 0 }, { input: 1 }], dtype: "float32" },
    ];
    expect(
      compileElementwiseSimd(
        base(
          steps,
          [
            [2, 1, 4, 1],
            [1, 3, 1, 5],
          ],
          [2, 3, 4, 5],
        ),
      ),
    ).toBeNull();
    // A per-channel bias on [batch, channels, length] needs three axes and compiles.
    const biasProgram = base(
      steps,
      [
        [2, 3, 4],
        [3, 1],
      ],
      [2, 3, 4],
    );
    const runner = compileElementwiseSimd(biasProgram);
    expect(runner).not.toBeNull();
    const x = Float32Array.from({ length: 24 }, (_, i) => Math.fround(Math.sin(i) * 3));
    const bias = Float32Array.from([0.5, -1.25, Number.NaN]);
    const got = runner!([x, bias]);
    evalEager(biasProgram, [x, bias]).forEach((w, j) => {
      expect(firstMismatch(got[j] as Float32Array | Uint8Array, w), `output ${j}`).toBeNull();
    });
    // Two patterns collapse to [rows, cols] and compile.
    expect(
      compileElementwiseSimd(
        base(
          steps,
          [
            [2, 3, 4],
            [3, 4],
          ],
          [2, 3, 4],
        ),
      ),
    ).not.toBeNull();
    expect(
      compileElementwiseSimd(
        base(
          steps,
          [
            [2, 3, 4],
            [2, 3, 1],
          ],
          [2, 3, 4],
        ),
      ),
    ).not.toBeNull();
  });

  // Sums closing the loop: over the rows (leading axes), the columns (trailing axes) or all.
  type SumWhere = "leading" | "trailing" | "all";
  const sumAxes = (rank: number, split: number, where: SumWhere): number[] => {
    const all = Array.from({ length: rank }, (_, i) => i);
    if (rank === 1 || where === "all") return all;
    return where === "leading" ? all.slice(0, split) : all.slice(split);
  };
  /**
   * Whether the program should compile: the shape collapses to at most three loop axes (size-1
   * axes dropped, neighbouring axes with the same broadcast and summed flags merged).
   */
  const collapsible = (shape: number[], inputs: number[][], sums: number[][]): boolean => {
    const rank = shape.length;
    const padded = inputs.map((x) => [...new Array<number>(rank - x.length).fill(1), ...x]);
    let groups = 0;
    let last = "";
    for (let d = 0; d < rank; d++) {
      if (shape[d] === 1) continue;
      const sig = [...padded.map((x) => x[d] === 1), ...sums.map((a) => a.includes(d))].join();
      if (groups === 0 || sig !== last) groups++;
      last = sig;
    }
    return groups <= 3;
  };

  const sumInputArb = fc.record({
    dtype: fc.constantFrom<SimdDType>("float32", "float32", "float32", "bool"),
    pattern: fc.constantFrom<Pattern>("full", "full", "row", "col", "scalar"),
    pad: fc.boolean(),
    seed: fc.nat(),
    specialRate: fc.constantFrom(0, 0, 0.02, 0.2),
  });
  const sumArb = fc.record({
    where: fc.constantFrom<SumWhere>("leading", "trailing", "all"),
    // Mostly the inputs' split; sometimes another one (which may not collapse to two axes).
    ownSplit: fc.oneof(fc.constant(null), fc.nat()),
    pick: fc.nat(),
  });

  it("programs ending in 1-2 float32 sums equal the eager reduce_sum bit for bit", () => {
    let compiled = 0;
    let runs = 0;
    fc.assert(
      fc.property(
        shapeArb,
        fc.nat(),
        fc.array(sumInputArb, { minLength: 1, maxLength: 4 }),
        fc.array(recipeArb, { minLength: 0, maxLength: 6 }),
        fc.array(sumArb, { minLength: 1, maxLength: 2 }),
        fc.array(fc.boolean(), { minLength: 6, maxLength: 6 }),
        (shape, splitSeed, inputSpecs, recipes, sumSpecs, keep) => {
          runs++;
          inputSpecs[0] = { ...inputSpecs[0]!, dtype: "float32" };
          const rank = shape.length;
          const splitOf = (seed: number) => (rank === 1 ? 1 : 1 + (seed % (rank - 1)));
          const split = splitOf(splitSeed);
          const inputs = inputSpecs.map((s) => ({
            shape: inputShape(shape, split, s.pattern, s.pad),
            dtype: s.dtype,
          }));
          const steps = buildSteps(
            inputs.map((x) => x.dtype),
            recipes,
          );
          const outputs = steps.flatMap((_, k) => (keep[k] ? [k] : []));
          const floats: Operand[] = [
            ...steps.flatMap((s, k): Operand[] => (s.dtype === "float32" ? [{ step: k }] : [])),
            ...inputs.flatMap((x, i): Operand[] => (x.dtype === "float32" ? [{ input: i }] : [])),
          ];
          const axesList = sumSpecs.map((t) =>
            sumAxes(rank, t.ownSplit === null ? split : splitOf(t.ownSplit), t.where),
          );
          sumSpecs.forEach((t, j) => {
            outputs.push(steps.length);
            steps.push({
              op: "reduce_sum",
              args: [floats[t.pick % floats.length]!],
              dtype: "float32",
              axes: axesList[j]!,
            });
          });
          const program: ElementwiseProgram = { shape, inputs, steps, outputs };
          const where = JSON.stringify({ shape, inputs, steps, outputs });
          const runner = compileElementwiseSimd(program);
          const expected = collapsible(
            shape,
            inputs.map((x) => x.shape),
            axesList,
          );
          expect(runner !== null, `compiles: ${where}`).toBe(expected);
          if (!runner) return;
          compiled++;
          const data = inputs.map((x, i) =>
            sumValues(
              x.dtype,
              x.shape.reduce((a, b) => a * b, 1),
              inputSpecs[i]!.seed,
              inputSpecs[i]!.specialRate,
            ),
          );
          const got = runner(data);
          const want = evalEager(program, data);
          expect(got.length).toBe(want.length);
          want.forEach((w, j) => {
            const bad = firstMismatch(got[j] as Float32Array | Uint8Array, w);
            if (bad) {
              const inputText = data.map((d) => `[${[...d.subarray(0, 16)].join(", ")}]`);
              throw new Error(`output ${j} ${bad}\nprogram ${where}\ninputs ${inputText}`);
            }
          });
        },
      ),
      { numRuns: 400 },
    );
    // Most generated programs take the SIMD path (the rest test only the null).
    expect(compiled).toBeGreaterThan(runs / 2);
  });

  it("sums accumulate in float64 in the eager order, not in float32", () => {
    // 2^24 + 1 + 1 + ...: float32 accumulation would stay at 2^24.
    const cols = 7;
    const x = Float32Array.from({ length: 3 * cols }, (_, i) => (i % cols === 0 ? 2 ** 24 : 1));
    const program: ElementwiseProgram = {
      shape: [3, cols],
      inputs: [{ shape: [3, cols], dtype: "float32" }],
      steps: [
        { op: "add", args: [{ input: 0 }, { input: 0 }], dtype: "float32" },
        { op: "reduce_sum", args: [{ step: 0 }], dtype: "float32", axes: [1] },
        { op: "reduce_sum", args: [{ input: 0 }], dtype: "float32", axes: [0, 1] },
        { op: "reduce_sum", args: [{ input: 0 }], dtype: "float32", axes: [0] },
      ],
      outputs: [1, 2, 3],
    };
    const runner = compileElementwiseSimd(program);
    expect(runner).not.toBeNull();
    const [rowSums, total, colSums] = runner!([x]) as Float32Array[];
    expect([...rowSums!]).toEqual([2 ** 25 + 12, 2 ** 25 + 12, 2 ** 25 + 12]);
    // 3·2^24 + 18 rounds (a tie, to even) to 3·2^24 + 16; summed in float32 it would be 3·2^24.
    expect([...total!]).toEqual([3 * 2 ** 24 + 16]);
    expect([...colSums!]).toEqual([3 * 2 ** 24, 3, 3, 3, 3, 3, 3]);
    const got = runner!([x]);
    evalEager(program, [x]).forEach((w, j) => {
      expect(firstMismatch(got[j] as Float32Array, w), `output ${j}`).toBeNull();
    });
  });

  it("sums over any axes of three loop axes match eager; four loop axes return null", () => {
    const sum = (axes: number[]): ElementwiseProgram => ({
      shape: [2, 3, 4],
      inputs: [{ shape: [2, 3, 4], dtype: "float32" }],
      steps: [
        { op: "abs", args: [{ input: 0 }], dtype: "float32" },
        { op: "reduce_sum", args: [{ step: 0 }], dtype: "float32", axes },
      ],
      outputs: [0, 1],
    });
    const x24 = Float32Array.from({ length: 24 }, (_, i) => Math.fround((i % 7) * 2 ** 20 - 0.3));
    for (const axes of [[1], [0, 2], [0], [0, 1], [1, 2], [2], [0, 1, 2]]) {
      const runner24 = compileElementwiseSimd(sum(axes));
      expect(runner24, `axes ${axes}`).not.toBeNull();
      const got24 = runner24!([x24]);
      evalEager(sum(axes), [x24]).forEach((w, j) => {
        expect(firstMismatch(got24[j] as Float32Array | Uint8Array, w), `axes ${axes}`).toBeNull();
      });
    }
    const alternating: ElementwiseProgram = {
      shape: [2, 3, 4, 5],
      inputs: [{ shape: [2, 3, 4, 5], dtype: "float32" }],
      steps: [
        { op: "abs", args: [{ input: 0 }], dtype: "float32" },
        { op: "reduce_sum", args: [{ step: 0 }], dtype: "float32", axes: [0, 2] },
      ],
      outputs: [0, 1],
    };
    expect(compileElementwiseSimd(alternating)).toBeNull();
    // A middle axis between size-1 axes is a sum over rows (or columns) and compiles.
    const x = Float32Array.from({ length: 12 }, (_, i) => (i % 5) - 1.5);
    const middle: ElementwiseProgram = {
      ...sum([1]),
      shape: [1, 3, 4],
      inputs: [{ shape: [1, 3, 4], dtype: "float32" }],
    };
    const runner = compileElementwiseSimd(middle);
    expect(runner).not.toBeNull();
    const got = runner!([x]);
    evalEager(middle, [x]).forEach((w, j) => {
      expect(firstMismatch(got[j] as Float32Array | Uint8Array, w), `output ${j}`).toBeNull();
    });
  });

  it("returns null for a sum that another step reads or that is not written out", () => {
    const readBack: ElementwiseProgram = {
      shape: [4, 8],
      inputs: [
        { shape: [4, 8], dtype: "float32" },
        { shape: [8], dtype: "float32" },
      ],
      steps: [
        { op: "add", args: [{ input: 0 }, { input: 1 }], dtype: "float32" },
        { op: "reduce_sum", args: [{ step: 0 }], dtype: "float32", axes: [0] },
        { op: "mul", args: [{ step: 1 }, { input: 1 }], dtype: "float32" },
      ],
      outputs: [1, 2],
    };
    expect(compileElementwiseSimd(readBack)).toBeNull();
    const closing = { ...readBack, steps: readBack.steps.slice(0, 2), outputs: [0, 1] };
    expect(compileElementwiseSimd(closing)).not.toBeNull();
    expect(compileElementwiseSimd({ ...closing, outputs: [0] })).toBeNull();
    // A sum of a bool, or without axes, has no SIMD form either.
    const boolSum: ElementwiseProgram = {
      ...closing,
      steps: [
        { op: "gt", args: [{ input: 0 }, { input: 1 }], dtype: "bool" },
        { op: "reduce_sum", args: [{ step: 0 }], dtype: "float32", axes: [0] },
      ],
    };
    expect(compileElementwiseSimd(boolSum)).toBeNull();
    const { axes: _, ...noAxes } = closing.steps[1]!;
    expect(compileElementwiseSimd({ ...closing, steps: [closing.steps[0]!, noAxes] })).toBeNull();
  });

  it("rejects inputs of the wrong length instead of reading past them", () => {
    const runner = compileElementwiseSimd(
      base([{ op: "add", args: [{ input: 0 }, { input: 1 }], dtype: "float32" }], [[5, 6], [6]]),
    );
    expect(() => runner!([new Float32Array(30), new Float32Array(5)])).toThrow(/input 1/);
  });
});
