/**
 * Fused elementwise programs compiled to WebAssembly SIMD at run time: the loop behind a jit
 * fusion group (transforms/fusion.ts) when every value is float32 or bool and every operation
 * has an exact SIMD form. Intermediates live in v128 locals; inputs are copied into the
 * module's memory and the stored values copied out (the copies are one pass each, against one
 * pass per operation and a fresh array per intermediate for unfused kernels).
 *
 * Results are bit-identical to the eager kernels: IEEE add, sub, mul, div and sqrt of float32
 * operands round the same in f32x4 as `Math.fround` of the double operation does; max, min and
 * sign are built from comparisons and bit selects to reproduce the eager expressions exactly
 * (NaN propagation and signed zeros included). Operations without an exact SIMD form (exp,
 * log, pow, ...) leave the group to the JavaScript loop.
 *
 * Layout: the output shape is collapsed to [rows, cols] such that every input is either full,
 * broadcast along rows (a bias row), broadcast along columns (one value per row) or a scalar.
 * Rows are walked in 4-lane vectors with a one-lane tail (lanes loaded with load-splat and stored
 * with store-lane, so the same operation code serves both).
 */
import { allocateUnfilled, type TypedArray } from "../../dtype.js";
import { type Shape, sizeOf } from "../../shape.js";
import { Code, encodeModule, simdSupported, ValType } from "./encoder.js";
import { type WasmMemory, wasm } from "./runtime.js";

/** Element types the SIMD loops handle: float32 lanes and bool (one byte stored, a mask held). */
export type SimdDType = "float32" | "bool";

/** A value a step reads: an input of the program or the result of an earlier step. */
export type Operand = { input: number } | { step: number };

export interface ElementwiseStep {
  /**
   * Primitive name: add, sub, mul, div, max, min, neg, abs, sqrt, floor, sign, eq, ne, lt, le,
   * gt, ge, select, or reduce_sum (a float32 sum over `axes` of the program shape, written out
   * and read by no other step).
   */
  op: string;
  args: Operand[];
  dtype: SimdDType;
  /** reduce_sum only: the summed axes of the program shape. */
  axes?: readonly number[];
}

/** A straight-line elementwise program over one output shape. */
export interface ElementwiseProgram {
  shape: Shape;
  /** Input shapes broadcast (NumPy rules) to `shape`. */
  inputs: { shape: Shape; dtype: SimdDType }[];
  steps: ElementwiseStep[];
  /** Steps whose values are written out, in order. */
  outputs: number[];
}

/** Runs a compiled program: one typed array per input, new arrays per output. */
export type ElementwiseRunner = (inputs: readonly TypedArray[]) => TypedArray[];

type Kind = "full" | "row" | "col" | "scalar";

/**
 * Collapses the output to [rows, cols] and classifies each input (by its broadcast axes) and
 * each reduction (by its summed axes: "row" sums over rows, "col" over columns, "scalar" over
 * everything); null beyond two axes.
 */
function collapse(
  program: ElementwiseProgram,
): { rows: number; cols: number; kinds: Kind[] } | null {
  const out = program.shape;
  const rank = out.length;
  const flags = program.inputs.map(({ shape }) => {
    const padded = [...new globalThis.Array<number>(rank - shape.length).fill(1), ...shape];
    return padded.map((d, i) => d === 1 && out[i] !== 1);
  });
  for (const step of program.steps) {
    if (step.axes) flags.push(out.map((_, i) => step.axes!.includes(i)));
  }
  const groups: { size: number; flags: boolean[] }[] = [];
  for (let d = 0; d < rank; d++) {
    if (out[d] === 1) continue;
    const f = flags.map((fl) => fl[d]!);
    const last = groups[groups.length - 1];
    if (last?.flags.every((x, i) => x === f[i])) last.size *= out[d]!;
    else groups.push({ size: out[d]!, flags: f });
  }
  if (groups.length > 2) return null;
  if (groups.length === 0) return { rows: 1, cols: 1, kinds: flags.map(() => "full") };
  if (groups.length === 1) {
    const g = groups[0]!;
    return { rows: 1, cols: g.size, kinds: g.flags.map((b) => (b ? "scalar" : "full")) };
  }
  const [g0, g1] = groups as [(typeof groups)[0], (typeof groups)[0]];
  const kinds = flags.map((_, i): Kind => {
    const [b0, b1] = [g0.flags[i]!, g1.flags[i]!];
    if (b0 && b1) return "scalar";
    if (b0) return "row";
    if (b1) return "col";
    return "full";
  });
  return { rows: g0.size, cols: g1.size, kinds };
}

const F32_OPS: Record<string, number> = {
  add: 2,
  sub: 2,
  mul: 2,
  div: 2,
  max: 2,
  min: 2,
  neg: 1,
  abs: 1,
  sqrt: 1,
  floor: 1,
  sign: 1,
};
const COMPARISONS = new Set(["eq", "ne", "lt", "le", "gt", "ge"]);

const dtypeOf = (program: ElementwiseProgram, a: Operand): SimdDType =>
  "input" in a ? program.inputs[a.input]!.dtype : program.steps[a.step]!.dtype;

/** Whether a step has an exact SIMD form for its operand dtypes. */
function supported(program: ElementwiseProgram, step: ElementwiseStep): boolean {
  const ins = step.args.map((a) => dtypeOf(program, a));
  if (step.op in F32_OPS) {
    return (
      step.dtype === "float32" &&
      ins.length === F32_OPS[step.op] &&
      ins.every((d) => d === "float32")
    );
  }
  if (COMPARISONS.has(step.op)) {
    if (step.dtype !== "bool" || ins.length !== 2 || ins[0] !== ins[1]) return false;
    return ins[0] === "float32" || step.op === "eq" || step.op === "ne";
  }
  if (step.op === "select") {
    return ins.length === 3 && ins[0] === "bool" && ins[1] === step.dtype && ins[2] === step.dtype;
  }
  if (step.op === "reduce_sum") {
    const k = program.steps.indexOf(step);
    return (
      step.axes !== undefined &&
      step.dtype === "float32" &&
      ins.length === 1 &&
      ins[0] === "float32" &&
      program.outputs.includes(k) &&
      !program.steps.some((s) => s.args.some((a) => "step" in a && a.step === k))
    );
  }
  return false;
}

const bytesOf = (d: SimdDType) => (d === "float32" ? 4 : 1);
const align16 = (n: number) => Math.ceil(n / 16) * 16;

// One memory for every generated elementwise kernel: programs run one at a time (synchronously),
// and each copies its inputs in and its outputs out around the call.
let memory: WasmMemory | undefined;
let memoryBytes = 0;
const PAGE = 65536;

function ensureMemory(bytes: number): WasmMemory {
  if (!memory) {
    memory = new wasm!.Memory({ initial: Math.max(1, Math.ceil(bytes / PAGE)) });
    memoryBytes = memory.buffer.byteLength;
  }
  if (memoryBytes < bytes) {
    memory.grow(Math.ceil((bytes - memoryBytes) / PAGE));
    memoryBytes = memory.buffer.byteLength;
  }
  return memory;
}

const simd = simdSupported();

/**
 * Compiles a program to a WebAssembly SIMD loop; null when the engine lacks SIMD or the program
 * has a step without an exact SIMD form or a broadcast pattern beyond [rows, cols].
 */
export function compileElementwiseSimd(program: ElementwiseProgram): ElementwiseRunner | null {
  if (!simd || !wasm || sizeOf(program.shape) === 0) return null;
  if (!program.steps.every((s) => supported(program, s))) return null;
  const layout = collapse(program);
  if (!layout) return null;
  const { rows, cols } = layout;
  const kinds = layout.kinds.slice(0, program.inputs.length);
  // Reductions by step index: their pattern and the number of sums they produce.
  const reductions = new Map<number, { kind: Kind; count: number }>();
  let r = program.inputs.length;
  for (const [k, step] of program.steps.entries()) {
    if (!step.axes) continue;
    const kind = layout.kinds[r++]!;
    if (kind === "full") return null; // sums over size-1 axes only: nothing to fuse
    reductions.set(k, { kind, count: { row: cols, col: rows, scalar: 1, full: 0 }[kind] });
  }
  const n = rows * cols;

  // Memory layout: each input at its own 16-byte-aligned offset, then the outputs.
  let top = 0;
  const inputOffsets = program.inputs.map((input, i) => {
    const count = { full: n, row: cols, col: rows, scalar: 1 }[kinds[i]!];
    const at = top;
    top += align16(count * bytesOf(input.dtype));
    return at;
  });
  // Reductions accumulate in float64 (as the eager kernels do), rounded when copied out.
  const outputOffsets = program.outputs.map((s) => {
    const at = top;
    const sums = reductions.get(s);
    top += align16(sums ? sums.count * 8 : n * bytesOf(program.steps[s]!.dtype));
    return at;
  });
  const totalBytes = Math.max(top, 16);

  const code = emitProgram(program, kinds, reductions, rows, cols, inputOffsets, outputOffsets);
  const bytes = encodeModule([
    { name: "run", params: [], results: [], locals: code.locals, body: code.body },
  ]);
  const mem = ensureMemory(totalBytes);
  const instance = new wasm.Instance(new wasm.Module(bytes), { env: { memory: mem } });
  const run = instance.exports.run as () => void;
  const inputCounts = program.inputs.map(
    (_, i) => ({ full: n, row: cols, col: rows, scalar: 1 })[kinds[i]!],
  );
  const outDtypes = program.outputs.map((s) => program.steps[s]!.dtype);
  const outSums = program.outputs.map((s) => reductions.get(s));

  return (inputs) => {
    const buffer = ensureMemory(totalBytes).buffer;
    const f32 = new Float32Array(buffer);
    const u8 = new Uint8Array(buffer);
    for (let j = 0; j < outSums.length; j++) {
      const sums = outSums[j];
      if (sums?.kind === "row") new Float64Array(buffer, outputOffsets[j]!, sums.count).fill(0);
    }
    for (let i = 0; i < inputs.length; i++) {
      const src = inputs[i]!;
      if (src.length !== inputCounts[i]) {
        throw new Error(
          `fused kernel input ${i}: expected ${inputCounts[i]} elements, got ${src.length}`,
        );
      }
      if (program.inputs[i]!.dtype === "float32") f32.set(src, inputOffsets[i]! / 4);
      else u8.set(src, inputOffsets[i]!);
    }
    run();
    return outDtypes.map((dtype, j) => {
      const at = outputOffsets[j]!;
      const sums = outSums[j];
      if (sums) {
        const out = allocateUnfilled("float32", sums.count);
        out.set(new Float64Array(buffer, at, sums.count));
        return out;
      }
      const out = allocateUnfilled(dtype, n);
      out.set(dtype === "float32" ? f32.subarray(at / 4, at / 4 + n) : u8.subarray(at, at + n));
      return out;
    });
  };
}

/** Emits the kernel body: the row loop, a 4-lane column loop and a one-lane tail. */
function emitProgram(
  program: ElementwiseProgram,
  kinds: Kind[],
  reductions: ReadonlyMap<number, { kind: Kind }>,
  rows: number,
  cols: number,
  inputOffsets: number[],
  outputOffsets: number[],
): { body: Code; locals: ValType[] } {
  const locals: ValType[] = [];
  const local = (t: ValType) => locals.push(t) - 1;
  const r = local(ValType.i32);
  const c = local(ValType.i32);
  const rowBase = local(ValType.i32); // r * cols
  const idx = local(ValType.i32); // rowBase + c
  const idx4 = local(ValType.i32);
  const c4 = local(ValType.i32);
  const c8 = local(ValType.i32);
  const tmp = local(ValType.v128);
  // Running sums of row and whole-array reductions (sums over rows live in memory).
  const sum = new Map<number, number>();
  for (const [k, { kind }] of reductions) if (kind !== "row") sum.set(k, local(ValType.f64));
  const stepValue = program.steps.map(() => local(ValType.v128));
  // Scalars are loaded once; per-row values once per row.
  const hoisted = program.inputs.map((_, i) =>
    kinds[i] === "scalar" || kinds[i] === "col" ? local(ValType.v128) : -1,
  );
  const operandLocal = program.steps.map((s) => s.args.map(() => local(ValType.v128)));

  const body = new Code();
  // A bool lane held as a mask: 0 → all zeros, anything else → all ones.
  const boolToMask = () =>
    body.i16x8ExtendLowI8x16U().i32x4ExtendLowI16x8U().i32(0).i32x4Splat().i32x4Ne();
  const loadSplat = (i: number) => {
    if (program.inputs[i]!.dtype === "float32") body.v128Load32Splat(inputOffsets[i]!);
    else {
      body.v128Load8Splat(inputOffsets[i]!);
      boolToMask();
    }
  };
  for (let i = 0; i < program.inputs.length; i++) {
    if (kinds[i] === "scalar") {
      body.i32(0);
      loadSplat(i);
      body.set(hoisted[i]!);
    }
  }

  /** Pushes input i for the current column (vector or single lane). */
  const loadInput = (i: number, lanes: 1 | 4) => {
    const kind = kinds[i]!;
    if (kind === "scalar" || kind === "col") {
      body.get(hoisted[i]!);
      return;
    }
    const f32 = program.inputs[i]!.dtype === "float32";
    const at = kind === "full" ? (f32 ? idx4 : idx) : f32 ? c4 : c;
    body.get(at);
    if (lanes === 1) loadSplat(i);
    else if (f32) body.v128Load(inputOffsets[i]!);
    else {
      body.v128Load32Zero(inputOffsets[i]!);
      boolToMask();
    }
  };

  const outputOffset = (k: number) => outputOffsets[program.outputs.indexOf(k)]!;
  /** Adds the lanes of `value` to reduction k's float64 sums, in row-major order. */
  const emitAccumulate = (k: number, kind: Kind, value: number, lanes: 1 | 4) => {
    const at = outputOffset(k);
    if (kind === "row") {
      // One sum per column, in memory: sums[c..c+lanes) += value.
      if (lanes === 1) {
        body.get(c8).get(c8).f64Load(at).get(value).f32x4ExtractLane(0).f64PromoteF32();
        body.f64Add().f64Store(at);
        return;
      }
      body.get(c8).get(c8).v128Load(at).get(value).f64x2PromoteLowF32x4().f64x2Add();
      body.v128Store(at);
      const high = [8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15];
      body
        .get(c8)
        .get(c8)
        .v128Load(at + 16)
        .get(value)
        .get(value)
        .i8x16Shuffle(high);
      body
        .f64x2PromoteLowF32x4()
        .f64x2Add()
        .v128Store(at + 16);
      return;
    }
    const acc = sum.get(k)!;
    for (let l = 0; l < lanes; l++) {
      body.get(acc).get(value).f32x4ExtractLane(l).f64PromoteF32().f64Add().set(acc);
    }
  };

  const emitSteps = (lanes: 1 | 4) => {
    program.steps.forEach((step, k) => {
      const args = step.args.map((a, j) => {
        if ("step" in a) return stepValue[a.step]!;
        loadInput(a.input, lanes);
        body.set(operandLocal[k]![j]!);
        return operandLocal[k]![j]!;
      });
      const reduction = reductions.get(k);
      if (reduction) {
        emitAccumulate(k, reduction.kind, args[0]!, lanes);
        return;
      }
      const masks = step.args[0] !== undefined && dtypeOf(program, step.args[0]) === "bool";
      emitOp(body, step.op, args, tmp, masks);
      body.set(stepValue[k]!);
    });
    program.outputs.forEach((s, j) => {
      const at = outputOffsets[j]!;
      if (reductions.has(s)) return;
      if (program.steps[s]!.dtype === "float32") {
        body.get(idx4).get(stepValue[s]!);
        if (lanes === 4) body.v128Store(at);
        else body.v128Store32Lane(at, 0);
      } else {
        // mask → 0/1 bytes in the low lanes
        body.get(idx).get(stepValue[s]!).get(stepValue[s]!).i16x8NarrowI32x4S().set(tmp);
        body.get(tmp).get(tmp).i8x16NarrowI16x8S().i32(1).i8x16Splat().v128And();
        if (lanes === 4) body.v128Store32Lane(at, 0);
        else body.v128Store8Lane(at, 0);
      }
    });
  };

  const vectorCols = cols - (cols % 4);
  const setIndex = () => {
    body.get(rowBase).get(c).i32Add().set(idx);
    body.get(idx).i32(2).i32Shl().set(idx4);
    body.get(c).i32(2).i32Shl().set(c4);
    body.get(c).i32(3).i32Shl().set(c8);
  };
  const sumsOf = (kind: Kind) => [...reductions].filter(([, x]) => x.kind === kind);
  for (const [k] of sumsOf("scalar")) body.f64(0).set(sum.get(k)!);
  body.i32(0).set(r).i32(0).set(rowBase);
  body.block().loop(); // rows
  body.get(r).i32(rows).i32GeU().brIf(1);
  for (const [k] of sumsOf("col")) body.f64(0).set(sum.get(k)!);
  for (let i = 0; i < program.inputs.length; i++) {
    if (kinds[i] === "col") {
      body.get(r);
      if (program.inputs[i]!.dtype === "float32") body.i32(2).i32Shl();
      loadSplat(i);
      body.set(hoisted[i]!);
    }
  }
  body.i32(0).set(c);
  if (vectorCols > 0) {
    body.block().loop();
    body.get(c).i32(vectorCols).i32GeU().brIf(1);
    setIndex();
    emitSteps(4);
    body.get(c).i32(4).i32Add().set(c);
    body.br(0);
    body.end().end();
  }
  if (vectorCols < cols) {
    body.block().loop();
    body.get(c).i32(cols).i32GeU().brIf(1);
    setIndex();
    emitSteps(1);
    body.get(c).i32(1).i32Add().set(c);
    body.br(0);
    body.end().end();
  }
  for (const [k] of sumsOf("col")) {
    body.get(r).i32(3).i32Shl().get(sum.get(k)!).f64Store(outputOffset(k));
  }
  body.get(r).i32(1).i32Add().set(r);
  body.get(rowBase).i32(cols).i32Add().set(rowBase);
  body.br(0);
  body.end().end();
  for (const [k] of sumsOf("scalar")) body.i32(0).get(sum.get(k)!).f64Store(outputOffset(k));
  return { body, locals };
}

const F32_ONE = [0x00, 0x00, 0x80, 0x3f];
const F32_MINUS_ONE = [0x00, 0x00, 0x80, 0xbf];
const splat4 = (b: number[]) => [...b, ...b, ...b, ...b];

/** Emits one operation on operand locals, leaving the result on the stack. */
function emitOp(body: Code, op: string, args: number[], tmp: number, masks: boolean): void {
  const [a, b, c] = args as [number, number, number];
  switch (op) {
    case "add":
      body.get(a).get(b).f32x4Add();
      return;
    case "sub":
      body.get(a).get(b).f32x4Sub();
      return;
    case "mul":
      body.get(a).get(b).f32x4Mul();
      return;
    case "div":
      body.get(a).get(b).f32x4Div();
      return;
    case "neg":
      body.get(a).f32x4Neg();
      return;
    case "abs":
      body.get(a).f32x4Abs();
      return;
    case "sqrt":
      body.get(a).f32x4Sqrt();
      return;
    case "floor":
      body.get(a).f32x4Floor();
      return;
    case "max": // a > b || a !== a ? a : b
    case "min": // a < b || a !== a ? a : b
      body.get(a).get(b);
      body.get(a).get(b);
      if (op === "max") body.f32x4Gt();
      else body.f32x4Lt();
      body.get(a).get(a).f32x4Ne().v128Or().v128Bitselect();
      return;
    case "sign": // a > 0 ? 1 : a < 0 ? -1 : a
      body.v128Const(splat4(F32_ONE));
      body.v128Const(splat4(F32_MINUS_ONE)).get(a);
      body.get(a).f32(0).f32x4Splat().set(tmp).get(tmp).f32x4Lt().v128Bitselect();
      body.get(a).get(tmp).f32x4Gt().v128Bitselect();
      return;
    case "select": // a ? b : c
      body.get(b).get(c).get(a).v128Bitselect();
      return;
    case "eq":
    case "ne":
    case "lt":
    case "le":
    case "gt":
    case "ge":
      body.get(a).get(b);
      emitComparison(body, op, masks);
      return;
    default:
      throw new Error(`no SIMD form for ${op}`);
  }
}

function emitComparison(body: Code, op: string, masks: boolean): void {
  // Operand dtypes were checked by `supported`: float32, or masks for eq / ne (bitwise equal
  // masks are equal booleans; as floats, all-ones lanes would be NaNs).
  if (masks) {
    if (op === "eq") body.i32x4Eq();
    else body.i32x4Ne();
    return;
  }
  switch (op) {
    case "eq":
      body.f32x4Eq();
      return;
    case "ne":
      body.f32x4Ne();
      return;
    case "lt":
      body.f32x4Lt();
      return;
    case "le":
      body.f32x4Le();
      return;
    case "gt":
      body.f32x4Gt();
      return;
    default:
      body.f32x4Ge();
  }
}
