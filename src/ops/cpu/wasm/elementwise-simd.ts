/**
 * Fused elementwise programs compiled to WebAssembly SIMD at run time: the loop behind a jit
 * fusion group on the CPU (cpu/fused.ts) when every value is float32 or bool and every operation
 * has an exact SIMD form. Intermediates live in v128 locals; inputs are copied into the
 * module's memory and the stored values copied out (the copies are one pass each, against one
 * pass per operation and a fresh array per intermediate for unfused kernels).
 *
 * Results are bit-identical to the eager kernels: IEEE add, sub, mul, div and sqrt of float32
 * operands round the same in f32x4 as `Math.fround` of the double operation does; max, min and
 * sign are built from comparisons and bit selects to reproduce the eager expressions exactly
 * (NaN propagation and signed zeros included); exp, tanh, log and log1p are the float32 programs
 * of cpu/math-f32.ts, which the eager float32 kernels run too. Operations without an exact SIMD
 * form (pow, sin, expm1, ...) leave the group to the JavaScript loop.
 *
 * Layout: the output shape is collapsed to at most three loop axes, each input read through
 * its strides over them (0 where broadcast: a bias row, a per-channel bias of a convolution, a
 * scalar). The innermost axis is walked in 4-lane vectors with a one-lane tail (lanes loaded
 * with load-splat and stored with store-lane, so the same operation code serves both); an input
 * constant along it is loaded once per row and splat. Sums over any axes accumulate per output
 * in row-major order, which is the eager kernels' order.
 */
import { allocateUnfilled, type TypedArray } from "../../../trace/dtype.js";
import { type Shape, sizeOf } from "../../../trace/shape.js";
import {
  type CompareOp,
  type F32ProgramOp,
  isElementwiseOp,
  isF32Program,
  SCALAR_OPS,
  type SimdOp,
} from "../../scalar-ops.js";
import {
  EXP_C1,
  EXP_C2,
  EXP_HI,
  EXP_LO,
  EXP_P,
  expf32,
  F32_MIN_NORMAL,
  LOG_R,
  LOG_SQRTHF,
  LOG2E,
  log1pf32,
  logf32,
  TANH_Q,
  TANH_SMALL,
  TWO_POW_23,
  tanhf32,
} from "../math-f32.js";
import { Code, encodeModule, simdSupported, ValType } from "./encoder.js";
import { type WasmMemory, wasm } from "./runtime.js";

/** Element types the SIMD loops handle: float32 lanes and bool (one byte stored, a mask held). */
export type SimdDType = "float32" | "bool";

/** A value a step reads: an input of the program or the result of an earlier step. */
export type Operand = { input: number } | { step: number };

export interface ElementwiseStep {
  /**
   * Primitive name: an op of the scalar-op table with a SIMD form (ops/scalar-ops.ts `SimdOp`),
   * or reduce_sum (a float32 sum over `axes` of the program shape, written out and read by no
   * other step).
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

/** A value's strides (in elements) over the collapsed loop [d0, d1, d2]; the last is 0 or 1. */
export type Strides = [number, number, number];

/**
 * The output shape collapsed to at most three loop axes [d0, d1, d2] (padded in front with 1s),
 * merging neighbouring axes where every input is broadcast alike and every sum reduces alike;
 * each input's strides over them (0 where broadcast) and each sum's strides into its result (0
 * where reduced), with their element counts. Null beyond three axes.
 */
interface Layout {
  dims: Strides;
  inputs: { strides: Strides; count: number }[];
  sums: { strides: Strides; count: number }[];
}

function collapse(program: ElementwiseProgram): Layout | null {
  const out = program.shape;
  const rank = out.length;
  // Per value (inputs, then sums): whether each output axis is broadcast / reduced for it.
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
  if (groups.length > 3) return null;
  while (groups.length < 3) groups.unshift({ size: 1, flags: flags.map(() => true) });
  const values = flags.map((_, v) => {
    const strides: Strides = [0, 0, 0];
    let count = 1;
    for (let g = 2; g >= 0; g--) {
      if (groups[g]!.flags[v]) continue;
      strides[g] = count;
      count *= groups[g]!.size;
    }
    return { strides, count };
  });
  return {
    dims: groups.map((g) => g.size) as Strides,
    inputs: values.slice(0, program.inputs.length),
    sums: values.slice(program.inputs.length),
  };
}

/**
 * The loop axes [d0, d1, d2] of a broadcast of `inputShapes` to `shape` and each input's strides
 * over them (as the SIMD loops use them; the JS loops of cpu/fused.ts too); null when
 * the broadcast needs more than three loop axes.
 */
export function broadcastLoop(
  shape: Shape,
  inputShapes: readonly Shape[],
): { dims: Strides; strides: Strides[] } | null {
  const layout = collapse({
    shape,
    inputs: inputShapes.map((s) => ({ shape: s, dtype: "float32" })),
    steps: [],
    outputs: [],
  });
  return layout && { dims: layout.dims, strides: layout.inputs.map((x) => x.strides) };
}

const dtypeOf = (program: ElementwiseProgram, a: Operand): SimdDType =>
  "input" in a ? program.inputs[a.input]!.dtype : program.steps[a.step]!.dtype;

/**
 * Whether a step has an exact SIMD form for its operand dtypes: its scalar-op table entry says
 * how the loops handle it (ops/scalar-ops.ts `SimdForm`); reduce_sum is the one non-elementwise
 * step.
 */
function supported(program: ElementwiseProgram, step: ElementwiseStep): boolean {
  const ins = step.args.map((a) => dtypeOf(program, a));
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
  if (!isElementwiseOp(step.op)) return false;
  const { simd, arity } = SCALAR_OPS[step.op];
  switch (simd) {
    case "f32":
    case "f32-program":
      return step.dtype === "float32" && ins.length === arity && ins.every((d) => d === "float32");
    case "compare":
      if (step.dtype !== "bool" || ins.length !== 2 || ins[0] !== ins[1]) return false;
      return ins[0] === "float32" || step.op === "eq" || step.op === "ne";
    case "select":
      return (
        ins.length === 3 && ins[0] === "bool" && ins[1] === step.dtype && ins[2] === step.dtype
      );
    case null:
      return false;
  }
}

const bytesOf = (d: SimdDType) => (d === "float32" ? 4 : 1);
const align16 = (n: number) => Math.ceil(n / 16) * 16;

// One memory for every generated elementwise kernel: programs run one at a time (synchronously),
// and each copies its inputs in and its outputs out around the call.
let memory: WasmMemory | undefined;
let memoryBytes = 0;
const PAGE = 65536;
/** Views of the memory, remade when it grows (growing detaches the old buffer). */
let views: { f32: Float32Array; u8: Uint8Array; f64: Float64Array } | undefined;

function ensureMemory(bytes: number): WasmMemory {
  if (!memory) {
    memory = new wasm!.Memory({ initial: Math.max(1, Math.ceil(bytes / PAGE)) });
    memoryBytes = memory.buffer.byteLength;
    views = undefined;
  }
  if (memoryBytes < bytes) {
    memory.grow(Math.ceil((bytes - memoryBytes) / PAGE));
    memoryBytes = memory.buffer.byteLength;
    views = undefined;
  }
  return memory;
}

function viewsOf(bytes: number): NonNullable<typeof views> {
  const buffer = ensureMemory(bytes).buffer;
  if (!views) {
    views = {
      f32: new Float32Array(buffer),
      u8: new Uint8Array(buffer),
      f64: new Float64Array(buffer),
    };
  }
  return views;
}

const simd = simdSupported();

/** The most memory one fused SIMD loop may need (inputs and outputs copied in and out). */
const MAX_MEMORY_BYTES = 512 * 1024 * 1024;

/**
 * Compiles a program to a WebAssembly SIMD loop; null when the engine lacks SIMD or the program
 * has a step without an exact SIMD form, a broadcast pattern beyond three loop axes, or operands
 * too large to copy into the module's memory (over 512 MiB together).
 */
export function compileElementwiseSimd(program: ElementwiseProgram): ElementwiseRunner | null {
  // Programs recur: every trace of the same step (a new jit per training round, a validation
  // pass, the forward body inside a vjp) stages the same loops again. A runner depends on the
  // program alone, so compiled ones are kept by the program's text.
  const key = JSON.stringify(program);
  const hit = compiled.get(key);
  if (hit !== undefined) {
    compiled.delete(key);
    compiled.set(key, hit); // most recently used last
    return hit;
  }
  const runner = compileUncached(program);
  compiled.set(key, runner);
  if (compiled.size > MAX_COMPILED) compiled.delete(compiled.keys().next().value!);
  return runner;
}

/** Scratch v128 locals the programs use (tanh 5, log1p 6: log's five and 1 + x). */
const PROGRAM_TEMPS = 6;

/** Elements per call of the eager unary kernels (their memory: two such blocks). */
const UNARY_BLOCK = 1 << 18;
const unaryKernels = new Map<string, ((n4: number) => void) | null>();

/**
 * The eager float32 exp, tanh, log or log1p over a whole array: the SIMD form (math-f32.ts's
 * programs, the fused loops' code) in 4-lane vectors, blocks of the input copied through the module memory;
 * the last 0–3 elements by the scalar form, which gives the same bits. False when this engine
 * has no WebAssembly SIMD (the caller runs the scalar form).
 */
export function unaryF32(op: F32ProgramOp, src: Float32Array, out: Float32Array): boolean {
  let run = unaryKernels.get(op);
  if (run === undefined) {
    run = simd && wasm ? compileUnary(op) : null;
    unaryKernels.set(op, run);
  }
  if (run === null) return false;
  const n = src.length;
  const vec = n - (n % 4);
  const { f32 } = viewsOf(2 * UNARY_BLOCK * 4);
  for (let i0 = 0; i0 < vec; i0 += UNARY_BLOCK) {
    const m = Math.min(UNARY_BLOCK, vec - i0);
    f32.set(src.subarray(i0, i0 + m), 0);
    run(m / 4);
    out.set(f32.subarray(UNARY_BLOCK, UNARY_BLOCK + m), i0);
  }
  const scalar = F32_PROGRAMS[op].scalar;
  for (let i = vec; i < n; i++) out[i] = scalar(src[i]!);
  return true;
}

/** `run(n4)`: n4 vectors from byte 0 of the memory, results from UNARY_BLOCK floats on. */
function compileUnary(op: F32ProgramOp): (n4: number) => void {
  const locals: ValType[] = [];
  const local = (t: ValType) => locals.push(t) - 1 + 1; // after the parameter
  const i = local(ValType.i32);
  const x = local(ValType.v128);
  const temps = Array.from({ length: PROGRAM_TEMPS }, () => local(ValType.v128));
  const body = new Code();
  body.i32(0).set(i);
  body.block().loop();
  body.get(i).get(0).i32GeU().brIf(1);
  body.get(i).i32(4).i32Shl().v128Load(0).set(x);
  body.get(i).i32(4).i32Shl();
  F32_PROGRAMS[op].emit(body, x, temps);
  body.v128Store(UNARY_BLOCK * 4);
  body.get(i).i32(1).i32Add().set(i);
  body.br(0);
  body.end().end();
  const bytes = encodeModule([{ name: "run", params: [ValType.i32], results: [], locals, body }]);
  const mem = ensureMemory(2 * UNARY_BLOCK * 4);
  const instance = new wasm!.Instance(new wasm!.Module(bytes), { env: { memory: mem } });
  return instance.exports.run as (n4: number) => void;
}

/** Compiled runners by program text (null: no SIMD form), least recently used first. */
const compiled = new Map<string, ElementwiseRunner | null>();
const MAX_COMPILED = 4096;

function compileUncached(program: ElementwiseProgram): ElementwiseRunner | null {
  if (!simd || !wasm || sizeOf(program.shape) === 0) return null;
  if (!program.steps.every((s) => supported(program, s))) return null;
  const layout = collapse(program);
  if (!layout) return null;
  const n = sizeOf(program.shape);
  // Sums by step index, in program order.
  const sumSteps = program.steps.flatMap((s, k) => (s.axes ? [k] : []));
  const sumOf = new Map(sumSteps.map((k, i) => [k, layout.sums[i]!]));

  // Memory layout: each input at its own 16-byte-aligned offset, then the outputs. Sums
  // accumulate in float64 (as the eager kernels do), rounded when copied out.
  let top = 0;
  const inputOffsets = program.inputs.map((input, i) => {
    const at = top;
    top += align16(layout.inputs[i]!.count * bytesOf(input.dtype));
    return at;
  });
  const outputOffsets = program.outputs.map((s) => {
    const at = top;
    const sums = sumOf.get(s);
    top += align16(sums ? sums.count * 8 : n * bytesOf(program.steps[s]!.dtype));
    return at;
  });
  const totalBytes = Math.max(top, 16);
  // The module's memory holds every operand at once and never shrinks: beyond this, the JS loop.
  if (totalBytes > MAX_MEMORY_BYTES) return null;

  const code = emitProgram(program, layout, sumOf, inputOffsets, outputOffsets);
  const bytes = encodeModule([
    { name: "run", params: [], results: [], locals: code.locals, body: code.body },
  ]);
  const mem = ensureMemory(totalBytes);
  const instance = new wasm.Instance(new wasm.Module(bytes), { env: { memory: mem } });
  const run = instance.exports.run as () => void;
  const inputCounts = layout.inputs.map((x) => x.count);
  const outDtypes = program.outputs.map((s) => program.steps[s]!.dtype);
  const outSums = program.outputs.map((s) => sumOf.get(s));

  return (inputs) => {
    const { f32, u8, f64 } = viewsOf(totalBytes);
    for (let j = 0; j < outSums.length; j++) {
      const sums = outSums[j];
      if (sums) f64.fill(0, outputOffsets[j]! / 8, outputOffsets[j]! / 8 + sums.count);
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
        out.set(f64.subarray(at / 8, at / 8 + sums.count));
        return out;
      }
      const out = allocateUnfilled(dtype, n);
      out.set(dtype === "float32" ? f32.subarray(at / 4, at / 4 + n) : u8.subarray(at, at + n));
      return out;
    });
  };
}

/**
 * Emits the kernel body: loops over d0 and d1 (a row each), then over d2 in 4-lane vectors and a
 * one-lane tail. Per row, each input's row start is computed (or, when it is constant along d2,
 * its value loaded and splat), and each sum's accumulators located: in memory, one per output
 * along d2 when d2 is kept, else one running local loaded at the row's start and stored at its
 * end. Every output's sum thus takes its terms in row-major order, as the eager kernels do.
 */
function emitProgram(
  program: ElementwiseProgram,
  layout: Layout,
  sumOf: ReadonlyMap<number, { strides: Strides }>,
  inputOffsets: number[],
  outputOffsets: number[],
): { body: Code; locals: ValType[] } {
  const [d0, d1, d2] = layout.dims;
  const locals: ValType[] = [];
  const local = (t: ValType) => locals.push(t) - 1;
  const i0 = local(ValType.i32);
  const i1 = local(ValType.i32);
  const c = local(ValType.i32);
  const rowFull = local(ValType.i32); // (i0·d1 + i1)·d2: the row's start in full-size values
  const idx = local(ValType.i32); // rowFull + c
  const idx4 = local(ValType.i32);
  const c4 = local(ValType.i32);
  const c8 = local(ValType.i32);
  const tmp = local(ValType.v128);
  const temps = Array.from({ length: PROGRAM_TEMPS }, () => local(ValType.v128));
  const stepValue = program.steps.map(() => local(ValType.v128));
  const inputs = program.inputs.map((input, i) => {
    const [s0, s1, s2] = layout.inputs[i]!.strides;
    const constant = s0 === 0 && s1 === 0 && s2 === 0;
    return {
      ...input,
      strides: [s0, s1, s2] as Strides,
      constant,
      // along d2: a vector at the row's start (base) + c, or one value per row (held)
      base: s2 === 1 ? local(ValType.i32) : -1,
      held: s2 === 0 ? local(ValType.v128) : -1,
    };
  });
  const sums = new Map(
    [...sumOf].map(([k, { strides }]) => [
      k,
      {
        strides,
        base: local(ValType.i32),
        running: strides[2] === 0 ? local(ValType.f64) : -1,
      },
    ]),
  );
  const operandLocal = program.steps.map((s) => s.args.map(() => local(ValType.v128)));

  const body = new Code();
  // A bool lane held as a mask: 0 → all zeros, anything else → all ones.
  const boolToMask = () =>
    body.i16x8ExtendLowI8x16U().i32x4ExtendLowI16x8U().i32(0).i32x4Splat().i32x4Ne();
  /** Loads input i's element at the address on the stack into every lane. */
  const loadSplat = (i: number, offset: number) => {
    if (program.inputs[i]!.dtype === "float32") body.v128Load32Splat(offset);
    else {
      body.v128Load8Splat(offset);
      boolToMask();
    }
  };
  /** Pushes the element offset i0·s0 + i1·s1 of a row. */
  const rowElement = (s0: number, s1: number) => {
    body.get(i0).i32(s0).i32Mul().get(i1).i32(s1).i32Mul().i32Add();
  };

  for (const [i, input] of inputs.entries()) {
    if (!input.constant) continue;
    body.i32(0);
    loadSplat(i, inputOffsets[i]!);
    body.set(input.held);
  }

  /** Pushes input i for the current column (vector or single lane). */
  const loadInput = (i: number, lanes: 1 | 4) => {
    const input = inputs[i]!;
    if (input.held >= 0) {
      body.get(input.held);
      return;
    }
    const f32 = input.dtype === "float32";
    body
      .get(input.base)
      .get(f32 ? c4 : c)
      .i32Add();
    if (lanes === 1) loadSplat(i, 0);
    else if (f32) body.v128Load(0);
    else {
      body.v128Load32Zero(0);
      boolToMask();
    }
  };

  const sumAddress = local(ValType.i32);
  /** Adds the lanes of `value` to sum k's float64 accumulators, in order. */
  const emitAccumulate = (k: number, value: number, lanes: 1 | 4) => {
    const sum = sums.get(k)!;
    if (sum.running >= 0) {
      for (let l = 0; l < lanes; l++) {
        body.get(sum.running).get(value).f32x4ExtractLane(l).f64PromoteF32().f64Add();
        body.set(sum.running);
      }
      return;
    }
    // One sum per column: sums[c..c+lanes) += value.
    body.get(sum.base).get(c8).i32Add().set(sumAddress);
    if (lanes === 1) {
      body.get(sumAddress).get(sumAddress).f64Load(0).get(value).f32x4ExtractLane(0);
      body.f64PromoteF32().f64Add().f64Store(0);
      return;
    }
    body.get(sumAddress).get(sumAddress).v128Load(0).get(value).f64x2PromoteLowF32x4();
    body.f64x2Add().v128Store(0);
    const high = [8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15];
    body.get(sumAddress).get(sumAddress).v128Load(16).get(value).get(value).i8x16Shuffle(high);
    body.f64x2PromoteLowF32x4().f64x2Add().v128Store(16);
  };

  const emitSteps = (lanes: 1 | 4) => {
    program.steps.forEach((step, k) => {
      const args = step.args.map((a, j) => {
        if ("step" in a) return stepValue[a.step]!;
        loadInput(a.input, lanes);
        body.set(operandLocal[k]![j]!);
        return operandLocal[k]![j]!;
      });
      if (sums.has(k)) {
        emitAccumulate(k, args[0]!, lanes);
        return;
      }
      const masks = step.args[0] !== undefined && dtypeOf(program, step.args[0]) === "bool";
      emitOp(body, step.op as SimdOp, args, tmp, masks, temps);
      body.set(stepValue[k]!);
    });
    program.outputs.forEach((s, j) => {
      const at = outputOffsets[j]!;
      if (sums.has(s)) return;
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

  const vectorCols = d2 - (d2 % 4);
  const setIndex = () => {
    body.get(rowFull).get(c).i32Add().set(idx);
    body.get(idx).i32(2).i32Shl().set(idx4);
    body.get(c).i32(2).i32Shl().set(c4);
    body.get(c).i32(3).i32Shl().set(c8);
  };
  const loop = (counter: number, limit: number, emitBody: () => void) => {
    body.i32(0).set(counter);
    body.block().loop();
    body.get(counter).i32(limit).i32GeU().brIf(1);
    emitBody();
    body.get(counter).i32(1).i32Add().set(counter);
    body.br(0);
    body.end().end();
  };
  body.i32(0).set(rowFull);
  loop(i0, d0, () =>
    loop(i1, d1, () => {
      // The row's inputs and sums.
      for (const [i, input] of inputs.entries()) {
        if (input.constant) continue;
        const [s0, s1] = input.strides;
        rowElement(s0, s1);
        if (input.dtype === "float32") body.i32(2).i32Shl();
        body.i32(inputOffsets[i]!).i32Add();
        if (input.base >= 0) body.set(input.base);
        else {
          loadSplat(i, 0);
          body.set(input.held);
        }
      }
      for (const [k, sum] of sums) {
        const [t0, t1] = sum.strides;
        rowElement(t0, t1);
        body.i32(3).i32Shl().i32(outputOffsets[program.outputs.indexOf(k)]!).i32Add();
        body.set(sum.base);
        if (sum.running >= 0) body.get(sum.base).f64Load(0).set(sum.running);
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
      if (vectorCols < d2) {
        body.block().loop();
        body.get(c).i32(d2).i32GeU().brIf(1);
        setIndex();
        emitSteps(1);
        body.get(c).i32(1).i32Add().set(c);
        body.br(0);
        body.end().end();
      }
      for (const sum of sums.values()) {
        if (sum.running >= 0) body.get(sum.base).get(sum.running).f64Store(0);
      }
      body.get(rowFull).i32(d2).i32Add().set(rowFull);
    }),
  );
  return { body, locals };
}

const F32_ONE = [0x00, 0x00, 0x80, 0x3f];
const F32_MINUS_ONE = [0x00, 0x00, 0x80, 0xbf];
const splat4 = (b: number[]) => [...b, ...b, ...b, ...b];

const f32Bytes = (v: number) => [...new Uint8Array(Float32Array.of(v).buffer)];
const i32Bytes = (v: number) => [...new Uint8Array(Int32Array.of(v).buffer)];
/** Pushes v (a float32 value) in every lane. */
const constF32 = (body: Code, v: number) => body.v128Const(splat4(f32Bytes(v)));

/**
 * exp of the lanes of local x (math-f32.ts's expf32, operation for operation), leaving the
 * result on the stack; t0..t2 are scratch (x may be t0).
 */
function emitExp(body: Code, x: number, [t0, t1, t2]: readonly number[]): void {
  body.get(x);
  constF32(body, EXP_LO).f32x4Max();
  constF32(body, EXP_HI).f32x4Min().set(t0!); // xc
  body.get(t0!);
  constF32(body, LOG2E).f32x4Mul();
  constF32(body, 0.5).f32x4Add().f32x4Floor().set(t1!); // k
  body.get(t0!).get(t1!);
  constF32(body, EXP_C1).f32x4Mul().f32x4Sub().get(t1!);
  constF32(body, EXP_C2).f32x4Mul().f32x4Sub().set(t0!); // r
  body.get(t0!).get(t0!).f32x4Mul().set(t2!); // z
  constF32(body, EXP_P[0]!);
  for (let i = 1; i < EXP_P.length; i++) {
    body.get(t0!).f32x4Mul();
    constF32(body, EXP_P[i]!).f32x4Add();
  }
  body.get(t2!).f32x4Mul().get(t0!).f32x4Add();
  constF32(body, 1).f32x4Add().set(t2!); // y
  body.get(t1!).i32x4TruncSatF32x4S().set(t1!); // k as integers
  body.get(t1!).i32(1).i32x4ShrS().set(t0!); // k1 = k >> 1
  const pow2 = () =>
    body
      .v128Const(splat4(i32Bytes(127)))
      .i32x4Add()
      .i32(23)
      .i32x4Shl();
  body.get(t2!).get(t0!);
  pow2();
  body.f32x4Mul().get(t1!).get(t0!).i32x4Sub();
  pow2();
  body.f32x4Mul();
}

/** tanh of the lanes of local x (math-f32.ts's tanhf32), leaving the result on the stack. */
function emitTanh(body: Code, x: number, temps: readonly number[]): void {
  const [t0, , , a, small] = temps as [number, number, number, number, number];
  body.get(x).f32x4Abs().set(a);
  body.get(a).get(a).f32x4Mul().set(t0); // z
  constF32(body, TANH_Q[0]!);
  for (let i = 1; i < TANH_Q.length; i++) {
    body.get(t0).f32x4Mul();
    constF32(body, TANH_Q[i]!).f32x4Add();
  }
  body.get(t0).f32x4Mul().get(a).f32x4Mul().get(a).f32x4Add().set(small);
  constF32(body, 1);
  constF32(body, 2);
  body.get(a).get(a).f32x4Add().set(t0);
  emitExp(body, t0, temps);
  constF32(body, 1).f32x4Add().f32x4Div().f32x4Sub().set(t0); // large
  body.get(small).get(t0).get(a);
  constF32(body, TANH_SMALL).f32x4Lt().v128Bitselect().set(t0);
  // x's sign bit on the (non-negative) result
  body
    .get(x)
    .get(t0)
    .v128Const(splat4(i32Bytes(-0x80000000)))
    .v128Bitselect();
}

/**
 * log of the lanes of local x (math-f32.ts's logf32), leaving the result on the stack; t0..t4
 * are scratch and must not include x (read again for the special values).
 */
function emitLog(body: Code, x: number, temps: readonly number[]): void {
  const [t0, t1, t2, t3, t4] = temps as [number, number, number, number, number];
  const constI32 = (v: number) => body.v128Const(splat4(i32Bytes(v)));
  body.get(x);
  constF32(body, F32_MIN_NORMAL).f32x4Lt().set(t1); // subnormal lanes
  body.get(x);
  constF32(body, TWO_POW_23).f32x4Mul().get(x).get(t1).v128Bitselect().set(t0); // normalised
  body.get(t0).i32(23).i32x4ShrS();
  constI32(0xff).v128And();
  constI32(-126).i32x4Add().get(t1);
  constI32(-23).v128And().i32x4Add().set(t1); // e
  body.get(t0);
  constI32(0x007fffff).v128And();
  constI32(0x3f000000).v128Or().set(t2); // mantissa m in [0.5, 1)
  body.get(t2);
  constF32(body, LOG_SQRTHF).f32x4Lt().set(t3);
  body.get(t1).get(t3).i32x4Add().set(t1); // e − 1 where m < √½ (mask lanes are −1)
  body.get(t2).get(t2).f32x4Add().get(t2).get(t3).v128Bitselect();
  constF32(body, 1).f32x4Sub().set(t2); // t
  body.get(t2).get(t2).f32x4Mul().set(t3); // z
  constF32(body, LOG_R[0]!);
  for (let i = 1; i < LOG_R.length; i++) {
    body.get(t2).f32x4Mul();
    constF32(body, LOG_R[i]!).f32x4Add();
  }
  body.get(t2).f32x4Mul().get(t3).f32x4Mul(); // y
  body.get(t1).f32x4ConvertI32x4S().set(t1); // e as a float (exact)
  body.get(t1);
  constF32(body, EXP_C2).f32x4Mul().f32x4Add().get(t3);
  constF32(body, -0.5).f32x4Mul().f32x4Add().get(t2).f32x4Add().get(t1);
  constF32(body, EXP_C1).f32x4Mul().f32x4Add().set(t4);
  // Negative and NaN lanes → NaN, ±0 → −inf, +inf → +inf.
  body.get(t4);
  constF32(body, Number.NaN).get(x);
  constF32(body, 0).f32x4Ge().v128Bitselect().set(t4);
  constF32(body, Number.NEGATIVE_INFINITY).get(t4).get(x);
  constF32(body, 0).f32x4Eq().v128Bitselect().set(t4);
  constF32(body, Number.POSITIVE_INFINITY).get(t4).get(x);
  constF32(body, Number.POSITIVE_INFINITY).f32x4Eq().v128Bitselect();
}

/** log1p of the lanes of local x (math-f32.ts's log1pf32), leaving the result on the stack. */
function emitLog1p(body: Code, x: number, temps: readonly number[]): void {
  const u = temps[5]!;
  const t0 = temps[0]!;
  constF32(body, 1).get(x).f32x4Add().set(u);
  emitLog(body, u, temps);
  body.get(x).get(u);
  constF32(body, 1).f32x4Sub().f32x4Div().f32x4Mul().set(t0);
  body.get(x).get(t0).get(u);
  constF32(body, 1).f32x4Eq().v128Bitselect().set(t0); // u = 1: x itself
  constF32(body, Number.POSITIVE_INFINITY).get(t0).get(u);
  constF32(body, Number.POSITIVE_INFINITY).f32x4Eq().v128Bitselect();
}

/**
 * The polynomial programs (scalar-op table `simd: "f32-program"`): math-f32.ts's scalar form and
 * its SIMD emitter, which give the same bits.
 */
const F32_PROGRAMS: Record<
  F32ProgramOp,
  { scalar: (x: number) => number; emit: (body: Code, x: number, temps: readonly number[]) => void }
> = {
  exp: { scalar: expf32, emit: emitExp },
  tanh: { scalar: tanhf32, emit: emitTanh },
  log: { scalar: logf32, emit: emitLog },
  log1p: { scalar: log1pf32, emit: emitLog1p },
};

/**
 * Emits one operation on operand locals, leaving the result on the stack: a case per op the
 * scalar-op table gives a SIMD form (`SimdOp`), which the compiler checks is every one.
 */
function emitOp(
  body: Code,
  op: SimdOp,
  args: number[],
  tmp: number,
  masks: boolean,
  temps: readonly number[],
): void {
  const [a, b, c] = args as [number, number, number];
  if (isF32Program(op)) {
    F32_PROGRAMS[op].emit(body, a, temps);
    return;
  }
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
    default: {
      const missing: never = op;
      throw new Error(`no SIMD form for ${missing}`);
    }
  }
}

function emitComparison(body: Code, op: CompareOp, masks: boolean): void {
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
