import { wasm } from "./runtime.js";

/**
 * A small WebAssembly binary encoder: enough to emit numeric kernels (i32/f32/f64 arithmetic,
 * loops, loads and stores, and the 128-bit SIMD subset) generated at run time. Kept tiny and
 * tested on its own (valid modules; each SIMD instruction against JavaScript).
 */

export enum ValType {
  i32 = 0x7f,
  i64 = 0x7e,
  f32 = 0x7d,
  f64 = 0x7c,
  v128 = 0x7b,
}

/** Unsigned LEB128. */
export function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n = Math.floor(n / 128);
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

/** Signed LEB128 (32-bit range). */
export function sleb(n: number): number[] {
  const out: number[] = [];
  let more = true;
  while (more) {
    let byte = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0)) more = false;
    else byte |= 0x80;
    out.push(byte);
  }
  return out;
}

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

function vector(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

function name(s: string): number[] {
  const bytes = [...new TextEncoder().encode(s)];
  return [...uleb(bytes.length), ...bytes];
}

/** Instruction emitter for one function body. Methods return `this` for chaining. */
export class Code {
  readonly bytes: number[] = [];
  private op(...b: number[]): this {
    this.bytes.push(...b);
    return this;
  }
  private simd(opcode: number, ...imm: number[]): this {
    return this.op(0xfd, ...uleb(opcode), ...imm);
  }
  // control
  block(): this {
    return this.op(0x02, 0x40);
  }
  loop(): this {
    return this.op(0x03, 0x40);
  }
  end(): this {
    return this.op(0x0b);
  }
  br(depth: number): this {
    return this.op(0x0c, ...uleb(depth));
  }
  brIf(depth: number): this {
    return this.op(0x0d, ...uleb(depth));
  }
  // variables
  get(i: number): this {
    return this.op(0x20, ...uleb(i));
  }
  set(i: number): this {
    return this.op(0x21, ...uleb(i));
  }
  tee(i: number): this {
    return this.op(0x22, ...uleb(i));
  }
  // i32
  i32(v: number): this {
    return this.op(0x41, ...sleb(v | 0));
  }
  i32Add(): this {
    return this.op(0x6a);
  }
  i32Sub(): this {
    return this.op(0x6b);
  }
  i32Mul(): this {
    return this.op(0x6c);
  }
  i32Shl(): this {
    return this.op(0x74);
  }
  i32LtU(): this {
    return this.op(0x49);
  }
  i32GeU(): this {
    return this.op(0x4f);
  }
  i32Eqz(): this {
    return this.op(0x45);
  }
  // i32 memory
  i32Load(offset = 0): this {
    return this.op(0x28, 0x02, ...uleb(offset));
  }
  // f32 memory
  f32Load(offset = 0): this {
    return this.op(0x2a, 0x02, ...uleb(offset));
  }
  f32Store(offset = 0): this {
    return this.op(0x38, 0x02, ...uleb(offset));
  }
  f32(v: number): this {
    const b = new Uint8Array(new Float32Array([v]).buffer);
    return this.op(0x43, ...b);
  }
  // f64
  f64Load(offset = 0): this {
    return this.op(0x2b, 0x03, ...uleb(offset));
  }
  f64Store(offset = 0): this {
    return this.op(0x39, 0x03, ...uleb(offset));
  }
  f64(v: number): this {
    const b = new Uint8Array(new Float64Array([v]).buffer);
    return this.op(0x44, ...b);
  }
  f64Add(): this {
    return this.op(0xa0);
  }
  f64PromoteF32(): this {
    return this.op(0xbb);
  }
  f32DemoteF64(): this {
    return this.op(0xb6);
  }
  /** Calls function `index` (imported functions come first in the index space). */
  call(index: number): this {
    return this.op(0x10, ...uleb(index));
  }
  f32Add(): this {
    return this.op(0x92);
  }
  f32Mul(): this {
    return this.op(0x94);
  }
  // SIMD (v128)
  v128Load(offset = 0): this {
    return this.simd(0x00, 0x04, ...uleb(offset));
  }
  v128Load32Splat(offset = 0): this {
    return this.simd(0x09, 0x02, ...uleb(offset));
  }
  v128Store(offset = 0): this {
    return this.simd(0x0b, 0x04, ...uleb(offset));
  }
  f32x4Splat(): this {
    return this.simd(0x13);
  }
  f32x4ExtractLane(lane: number): this {
    return this.simd(0x1f, lane);
  }
  /** Replaces lane `lane` of the vector below the f32 on the stack. */
  f32x4ReplaceLane(lane: number): this {
    return this.simd(0x20, lane);
  }
  f32x4Add(): this {
    return this.simd(0xe4);
  }
  f32x4Sub(): this {
    return this.simd(0xe5);
  }
  f32x4Mul(): this {
    return this.simd(0xe6);
  }
  /** a·b + c (relaxed SIMD), one rounding where the hardware has FMA; stack: a, b, c. */
  f32x4RelaxedMadd(): this {
    return this.simd(0x105);
  }
  f32x4Div(): this {
    return this.simd(0xe7);
  }
  f32x4Min(): this {
    return this.simd(0xe8);
  }
  f32x4Max(): this {
    return this.simd(0xe9);
  }
  f32x4Abs(): this {
    return this.simd(0xe0);
  }
  f32x4Neg(): this {
    return this.simd(0xe1);
  }
  f32x4Sqrt(): this {
    return this.simd(0xe3);
  }
  f32x4Ceil(): this {
    return this.simd(0x67);
  }
  f32x4Floor(): this {
    return this.simd(0x68);
  }
  f32x4Trunc(): this {
    return this.simd(0x69);
  }
  // f32x4 comparisons: all-ones lanes where true, zero where false.
  f32x4Eq(): this {
    return this.simd(0x41);
  }
  f32x4Ne(): this {
    return this.simd(0x42);
  }
  f32x4Lt(): this {
    return this.simd(0x43);
  }
  f32x4Gt(): this {
    return this.simd(0x44);
  }
  f32x4Le(): this {
    return this.simd(0x45);
  }
  f32x4Ge(): this {
    return this.simd(0x46);
  }
  // Integer lanes and bitwise operations (boolean masks)
  i32x4Eq(): this {
    return this.simd(0x37);
  }
  i32x4Ne(): this {
    return this.simd(0x38);
  }
  i8x16Splat(): this {
    return this.simd(0x0f);
  }
  i32x4Splat(): this {
    return this.simd(0x11);
  }
  v128Const(bytes: readonly number[]): this {
    if (bytes.length !== 16) throw new Error(`v128.const needs 16 bytes, got ${bytes.length}`);
    return this.simd(0x0c, ...bytes);
  }
  v128Not(): this {
    return this.simd(0x4d);
  }
  v128And(): this {
    return this.simd(0x4e);
  }
  v128AndNot(): this {
    return this.simd(0x4f);
  }
  v128Or(): this {
    return this.simd(0x50);
  }
  v128Xor(): this {
    return this.simd(0x51);
  }
  /** (v1 & mask) | (v2 & ~mask), with v1, v2, mask on the stack in that order. */
  v128Bitselect(): this {
    return this.simd(0x52);
  }
  /** Narrows two i32x4 to one i16x8 with signed saturation (low half from the first). */
  i16x8NarrowI32x4S(): this {
    return this.simd(0x85);
  }
  /** Narrows two i16x8 to one i8x16 with signed saturation (low half from the first). */
  i8x16NarrowI16x8S(): this {
    return this.simd(0x65);
  }
  /** Zero-extends the low 8 bytes to 16-bit lanes. */
  i16x8ExtendLowI8x16U(): this {
    return this.simd(0x89);
  }
  /** Zero-extends the low four 16-bit lanes to 32-bit lanes. */
  i32x4ExtendLowI16x8U(): this {
    return this.simd(0xa9);
  }
  /** Picks 16 bytes from the two vectors on the stack (indices 0–15 first, 16–31 second). */
  i8x16Shuffle(lanes: readonly number[]): this {
    if (lanes.length !== 16) throw new Error(`i8x16.shuffle needs 16 lanes, got ${lanes.length}`);
    return this.simd(0x0d, ...lanes);
  }
  /** Widens lanes 0 and 1 of an f32x4 to an f64x2. */
  f64x2PromoteLowF32x4(): this {
    return this.simd(0x5f);
  }
  f64x2Add(): this {
    return this.simd(0xf0);
  }
  // i32x4 lanes
  /** Converts f32 lanes to i32, truncating; NaN → 0, out of range → saturated. */
  i32x4TruncSatF32x4S(): this {
    return this.simd(0xf8);
  }
  /** Shifts i32 lanes left by the i32 on the stack. */
  i32x4Shl(): this {
    return this.simd(0xab);
  }
  /** Shifts i32 lanes right (arithmetic) by the i32 on the stack. */
  i32x4ShrS(): this {
    return this.simd(0xac);
  }
  i32x4Add(): this {
    return this.simd(0xae);
  }
  /** Converts i32 lanes to f32 (rounding to nearest; exact below 2^24). */
  f32x4ConvertI32x4S(): this {
    return this.simd(0xfa);
  }
  i32x4Sub(): this {
    return this.simd(0xb1);
  }
  // Partial loads and stores
  /** Loads one byte and splats it to all 16 lanes. */
  v128Load8Splat(offset = 0): this {
    return this.simd(0x07, 0x00, ...uleb(offset));
  }
  /** Loads 4 bytes into the low 32 bits, zeroing the rest. */
  v128Load32Zero(offset = 0): this {
    return this.simd(0x5c, 0x02, ...uleb(offset));
  }
  /** Stores byte lane `lane` of the vector. */
  v128Store8Lane(offset: number, lane: number): this {
    return this.simd(0x58, 0x00, ...uleb(offset), lane);
  }
  /** Stores 32-bit lane `lane` of the vector. */
  v128Store32Lane(offset: number, lane: number): this {
    return this.simd(0x5a, 0x02, ...uleb(offset), lane);
  }
}

/** A function the module imports (module.name), with its signature. */
export interface ImportSpec {
  module: string;
  name: string;
  params: ValType[];
  results: ValType[];
}

export interface FunctionSpec {
  name: string;
  params: ValType[];
  results: ValType[];
  /** Extra locals after the parameters, in order. */
  locals: ValType[];
  body: Code;
}

/**
 * A module that imports its memory as `env.memory` (so JS owns it and can grow it) and exports
 * the given functions. With `sharedMaxPages` the import is a shared memory of that maximum (what
 * worker threads need to run the module against one memory); such a module links only to a
 * shared memory. Imported functions (`imports`) take the first function indices, in order;
 * the module's own functions follow them.
 */
export function encodeModule(
  functions: FunctionSpec[],
  memoryPages = 1,
  sharedMaxPages?: number,
  imports: readonly ImportSpec[] = [],
): Uint8Array {
  const signature = (f: { params: ValType[]; results: ValType[] }) => [
    0x60,
    ...vector(f.params.map((p) => [p])),
    ...vector(f.results.map((r) => [r])),
  ];
  const types = [...imports.map(signature), ...functions.map(signature)];
  const nImports = imports.length;
  const limits =
    sharedMaxPages === undefined
      ? [0x00, ...uleb(memoryPages)]
      : [0x03, ...uleb(memoryPages), ...uleb(sharedMaxPages)];
  const importSection = vector([
    [...name("env"), ...name("memory"), 0x02, ...limits],
    ...imports.map((f, i) => [...name(f.module), ...name(f.name), 0x00, ...uleb(i)]),
  ]);
  const funcs = vector(functions.map((_, i) => uleb(nImports + i)));
  const exports = vector(functions.map((f, i) => [...name(f.name), 0x00, ...uleb(nImports + i)]));
  const bodies = vector(
    functions.map((f) => {
      // Run-length encode locals by type.
      const groups: number[][] = [];
      for (const t of f.locals) {
        const last = groups[groups.length - 1];
        if (last && last[1] === t) last[0]!++;
        else groups.push([1, t]);
      }
      const body = [...vector(groups.map(([n, t]) => [...uleb(n!), t!])), ...f.body.bytes, 0x0b];
      return [...uleb(body.length), ...body];
    }),
  );
  return new Uint8Array([
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, vector(types)),
    ...section(2, importSection),
    ...section(3, funcs),
    ...section(7, exports),
    ...section(10, bodies),
  ]);
}

/** Whether this engine runs WebAssembly SIMD (a one-instruction probe module). */
export function simdSupported(): boolean {
  try {
    const body = new Code().i32(0).v128Load().f32x4ExtractLane(0).f32x4Splat().f32x4ExtractLane(1);
    const bytes = encodeModule([
      { name: "f", params: [], results: [ValType.f32], locals: [], body },
    ]);
    return wasm?.validate(bytes) === true;
  } catch {
    return false;
  }
}

/** Whether `bytes` validates here. */
function validates(bytes: Uint8Array): boolean {
  try {
    return wasm?.validate(bytes) === true;
  } catch {
    return false;
  }
}

let fma: boolean | undefined;

/**
 * Whether the matmul and convolution kernels use relaxed SIMD's fused multiply-add
 * (f32x4.relaxed_madd: one instruction where the CPU has FMA, ~20% off a ResNet-GRU training
 * step). Engines that ship relaxed SIMD (Chrome 114+, Node 22+) have it; Node 20's V8 has the
 * finished feature behind --experimental-wasm-relaxed-simd, which is switched on here through
 * `node:v8` when the probe fails (the flag only admits more WebAssembly). NBI_FMA=0 in the
 * environment keeps the separate multiply and add. Whichever is chosen holds for the process, so
 * results stay bitwise identical across thread counts and between eager and jit.
 */
export function fmaSupported(): boolean {
  if (fma !== undefined) return fma;
  const proc = (
    globalThis as {
      process?: {
        env?: Record<string, string | undefined>;
        getBuiltinModule?: (name: string) => unknown;
      };
    }
  ).process;
  if (proc?.env?.NBI_FMA === "0") {
    fma = false;
    return fma;
  }
  const body = new Code().i32(0).v128Load().set(0).get(0).get(0).get(0);
  body.f32x4RelaxedMadd().f32x4ExtractLane(0);
  const probe = encodeModule([
    { name: "f", params: [], results: [ValType.f32], locals: [ValType.v128], body },
  ]);
  fma = validates(probe);
  if (!fma && proc?.getBuiltinModule) {
    try {
      const v8 = proc.getBuiltinModule("node:v8") as { setFlagsFromString(flags: string): void };
      v8.setFlagsFromString("--experimental-wasm-relaxed-simd");
      fma = validates(probe);
    } catch {
      fma = false;
    }
  }
  return fma;
}
