/**
 * The scalar-op table: every elementwise operation's scalar forms, written once. Each entry gives
 * the JavaScript expression the CPU kernels and the fused JS loops evaluate (primitives/
 * elementwise.ts, cpu/fused.ts), the WGSL expression of the WebGPU kernels, unfused and
 * fused (webgpu/elementwise.ts, webgpu/fused.ts), and how the fused WebAssembly SIMD loops
 * handle it (cpu/wasm/elementwise-simd.ts, whose instruction emitter is a `switch` over the ops
 * this table marks as having a SIMD form, checked exhaustive by the compiler).
 *
 * The table is typed as `ScalarOpTable`, a record over `ElementwiseOp` whose entry type depends
 * on the op's kind, so adding an op name without every form it needs, or a SIMD marker without
 * its emitter case, does not compile. Expressions name their operands `a`, `b`, `c` in order.
 */

/** Unary math (float; some on integers too). */
export type UnaryOp =
  | "neg"
  | "exp"
  | "log"
  | "log1p"
  | "expm1"
  | "sin"
  | "cos"
  | "tanh"
  | "sqrt"
  | "abs"
  | "sign"
  | "floor";
/** Broadcasting binary arithmetic (float and integer). */
export type BinaryOp = "add" | "sub" | "mul" | "div" | "pow" | "max" | "min";
/** Comparisons (bool results). */
export type CompareOp = "eq" | "ne" | "lt" | "le" | "gt" | "ge";
/** Operations on uint32 words only. */
export type UintOp = "shift_right_logical";
/** Every elementwise operation with a scalar form. */
export type ElementwiseOp = UnaryOp | BinaryOp | CompareOp | UintOp | "select";

/** The kind of an op, which decides which forms its entry must give. */
export type OpKind<K extends ElementwiseOp> = K extends UnaryOp
  ? "unary"
  : K extends BinaryOp
    ? "binary"
    : K extends CompareOp
      ? "compare"
      : K extends UintOp
        ? "uint"
        : "select";

/** WGSL element classes: float32 (f), int32 (i), uint32 and bool (u: bool is a u32 0/1). */
export type WgslClass = "f" | "i" | "u";

/**
 * How the fused WebAssembly SIMD loops handle an op:
 * - "f32": float32 operands and result, a short f32x4 instruction sequence;
 * - "f32-program": float32, one of math-f32.ts's programs (exp, tanh, log, log1p), which the
 *   eager float32 kernels run in SIMD too (`unaryF32`);
 * - "compare": float32 operands (eq and ne on bool masks too), a bool mask result;
 * - "select": a bool mask condition and two operands of the result's dtype;
 * - null: no bit-identical SIMD form; a fused group holding the op runs as the JavaScript loop.
 */
export type SimdForm = "f32" | "f32-program" | "compare" | "select" | null;

/** JavaScript forms per kind. */
interface JsForms {
  unary: {
    /** Float operands (float64, and float32 unless `f32Expr`). */
    readonly expr: string;
    /** float32 where it differs: a helper of cpu/math-f32.ts (the same bits as the SIMD form). */
    readonly f32Expr?: string;
    /** Integer operands; absent: integer dtypes are refused. */
    readonly intExpr?: string;
  };
  binary: { readonly expr: string; readonly intExpr: string };
  /** One expression for every dtype (a 1/0 result). */
  compare: { readonly expr: string };
  uint: { readonly expr: string; readonly intExpr: string };
  select: { readonly expr: string };
}

/** WGSL forms per kind (a class absent is refused by the primitive's abstractEval first). */
interface WgslForms {
  unary: { readonly f: string; readonly i?: string; readonly u?: string };
  binary: Readonly<Record<WgslClass, string>>;
  compare: Readonly<Record<WgslClass, string>>;
  uint: { readonly u: string };
  select: Readonly<Record<WgslClass, string>>;
}

/** One op's forms. */
export interface ScalarOp<Kind extends keyof JsForms = keyof JsForms> {
  readonly kind: Kind;
  /** Operand count. */
  readonly arity: Kind extends "unary" ? 1 : Kind extends "select" ? 3 : 2;
  readonly js: JsForms[Kind];
  readonly wgsl: WgslForms[Kind];
  readonly simd: SimdForm;
}

/** The table's type: one entry per op, its forms decided by the op's kind. */
export type ScalarOpTable = { readonly [K in ElementwiseOp]: ScalarOp<OpKind<K>> };

// Comparisons on WGSL: NaN handled explicitly (WGSL lets compilers assume comparisons never see
// NaN); integer comparisons are the same text for int32 and uint32 (and bool, stored as u32).
const compareWgsl = (op: string) => {
  const int = `select(0u, 1u, a ${op} b)`;
  const f =
    op === "!="
      ? "select(0u, 1u, nan2(a, b) || a != b)"
      : `select(0u, 1u, !nan2(a, b) && a ${op} b)`;
  return { f, i: int, u: int };
};

/** WGSL of select(a, b, c) (a ? b : c, with `a` a bool stored as u32), for every class. */
const SELECT_WGSL = "select(c, b, a != 0u)";

export const SCALAR_OPS = {
  // Unary
  neg: {
    kind: "unary",
    arity: 1,
    js: { expr: "-a", intExpr: "-a" },
    wgsl: { f: "-a", i: "-a", u: "0u - a" },
    simd: "f32",
  },
  exp: {
    kind: "unary",
    arity: 1,
    js: { expr: "Math.exp(a)", f32Expr: "expf32(a)" },
    wgsl: { f: "exp(a)" },
    simd: "f32-program",
  },
  log: {
    kind: "unary",
    arity: 1,
    js: { expr: "Math.log(a)", f32Expr: "logf32(a)" },
    wgsl: { f: "log(a)" },
    simd: "f32-program",
  },
  log1p: {
    kind: "unary",
    arity: 1,
    js: { expr: "Math.log1p(a)", f32Expr: "log1pf32(a)" },
    wgsl: { f: "log1p_f(a)" },
    simd: "f32-program",
  },
  expm1: {
    kind: "unary",
    arity: 1,
    js: { expr: "Math.expm1(a)" },
    wgsl: { f: "expm1_f(a)" },
    simd: null,
  },
  sin: { kind: "unary", arity: 1, js: { expr: "Math.sin(a)" }, wgsl: { f: "sin(a)" }, simd: null },
  cos: { kind: "unary", arity: 1, js: { expr: "Math.cos(a)" }, wgsl: { f: "cos(a)" }, simd: null },
  tanh: {
    kind: "unary",
    arity: 1,
    js: { expr: "Math.tanh(a)", f32Expr: "tanhf32(a)" },
    wgsl: { f: "tanh_f(a)" },
    simd: "f32-program",
  },
  sqrt: {
    kind: "unary",
    arity: 1,
    js: { expr: "Math.sqrt(a)" },
    wgsl: { f: "sqrt(a)" },
    simd: "f32",
  },
  abs: {
    kind: "unary",
    arity: 1,
    js: { expr: "Math.abs(a)", intExpr: "Math.abs(a)" },
    wgsl: { f: "abs(a)", i: "abs(a)", u: "a" },
    simd: "f32",
  },
  sign: {
    kind: "unary",
    arity: 1,
    js: { expr: "a > 0 ? 1 : a < 0 ? -1 : a", intExpr: "a > 0 ? 1 : a < 0 ? -1 : 0" },
    wgsl: { f: "sign_f(a)", i: "sign(a)", u: "select(0u, 1u, a > 0u)" },
    simd: "f32",
  },
  floor: {
    kind: "unary",
    arity: 1,
    js: { expr: "Math.floor(a)", intExpr: "a" },
    wgsl: { f: "floor(a)", i: "a", u: "a" },
    simd: "f32",
  },

  // Binary arithmetic
  add: {
    kind: "binary",
    arity: 2,
    js: { expr: "a + b", intExpr: "a + b" },
    wgsl: { f: "a + b", i: "a + b", u: "a + b" },
    simd: "f32",
  },
  sub: {
    kind: "binary",
    arity: 2,
    js: { expr: "a - b", intExpr: "a - b" },
    wgsl: { f: "a - b", i: "a - b", u: "a - b" },
    simd: "f32",
  },
  mul: {
    kind: "binary",
    arity: 2,
    js: { expr: "a * b", intExpr: "Math.imul(a, b)" },
    wgsl: { f: "a * b", i: "a * b", u: "a * b" },
    simd: "f32",
  },
  div: {
    kind: "binary",
    arity: 2,
    js: { expr: "a / b", intExpr: "b === 0 ? 0 : Math.trunc(a / b)" },
    wgsl: { f: "a / b", i: "select(a / b, 0, b == 0)", u: "select(a / b, 0u, b == 0u)" },
    simd: "f32",
  },
  pow: {
    kind: "binary",
    arity: 2,
    js: { expr: "Math.pow(a, b)", intExpr: "Math.pow(a, b)" },
    wgsl: { f: "pow_f(a, b)", i: "pow_i(a, b)", u: "pow_u(a, b)" },
    simd: null,
  },
  max: {
    kind: "binary",
    arity: 2,
    js: { expr: "a > b || a !== a ? a : b", intExpr: "a > b ? a : b" },
    wgsl: { f: "max_f(a, b)", i: "max(a, b)", u: "max(a, b)" },
    simd: "f32",
  },
  min: {
    kind: "binary",
    arity: 2,
    js: { expr: "a < b || a !== a ? a : b", intExpr: "a < b ? a : b" },
    wgsl: { f: "min_f(a, b)", i: "min(a, b)", u: "min(a, b)" },
    simd: "f32",
  },

  // Comparisons
  eq: {
    kind: "compare",
    arity: 2,
    js: { expr: "a === b ? 1 : 0" },
    wgsl: compareWgsl("=="),
    simd: "compare",
  },
  ne: {
    kind: "compare",
    arity: 2,
    js: { expr: "a !== b ? 1 : 0" },
    wgsl: compareWgsl("!="),
    simd: "compare",
  },
  lt: {
    kind: "compare",
    arity: 2,
    js: { expr: "a < b ? 1 : 0" },
    wgsl: compareWgsl("<"),
    simd: "compare",
  },
  le: {
    kind: "compare",
    arity: 2,
    js: { expr: "a <= b ? 1 : 0" },
    wgsl: compareWgsl("<="),
    simd: "compare",
  },
  gt: {
    kind: "compare",
    arity: 2,
    js: { expr: "a > b ? 1 : 0" },
    wgsl: compareWgsl(">"),
    simd: "compare",
  },
  ge: {
    kind: "compare",
    arity: 2,
    js: { expr: "a >= b ? 1 : 0" },
    wgsl: compareWgsl(">="),
    simd: "compare",
  },

  // uint32 words
  shift_right_logical: {
    kind: "uint",
    arity: 2,
    js: { expr: "a >>> b", intExpr: "b >= 32 ? 0 : a >>> b" },
    wgsl: { u: "select(a >> b, 0u, b >= 32u)" },
    simd: null,
  },

  // select(cond, x, y)
  select: {
    kind: "select",
    arity: 3,
    js: { expr: "a ? b : c" },
    wgsl: { f: SELECT_WGSL, i: SELECT_WGSL, u: SELECT_WGSL },
    simd: "select",
  },
} as const satisfies ScalarOpTable;

/** The ops the WebAssembly SIMD loops emit code for (those whose `simd` is not null). */
export type SimdOp = {
  [K in ElementwiseOp]: (typeof SCALAR_OPS)[K]["simd"] extends null ? never : K;
}[ElementwiseOp];

/** Every elementwise op, in table order. */
export const ELEMENTWISE_OPS = Object.keys(SCALAR_OPS) as ElementwiseOp[];

/** Whether `name` is an op of the table (a primitive's name, say). */
export function isElementwiseOp(name: string): name is ElementwiseOp {
  return Object.hasOwn(SCALAR_OPS, name);
}

/** The op's entry, typed by its kind. */
export function scalarOp<K extends ElementwiseOp>(op: K): ScalarOp<OpKind<K>> {
  return SCALAR_OPS[op] as ScalarOp<OpKind<K>>;
}

/** The WGSL expression of `op` for operands of class `c`; undefined where WebGPU has none. */
export function wgslOf(op: ElementwiseOp, c: WgslClass): string | undefined {
  return (SCALAR_OPS[op].wgsl as Partial<Record<WgslClass, string>>)[c];
}

/** The unary ops whose SIMD form is a math-f32.ts program (exp, tanh, log, log1p). */
export type F32ProgramOp = {
  [K in ElementwiseOp]: (typeof SCALAR_OPS)[K]["simd"] extends "f32-program" ? K : never;
}[ElementwiseOp];

/** Whether `op`'s SIMD form is a polynomial program, which the eager float32 kernels run too. */
export function isF32Program(op: ElementwiseOp): op is F32ProgramOp {
  return SCALAR_OPS[op].simd === "f32-program";
}
