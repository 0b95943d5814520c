/**
 * Fused elementwise kernels on WebGPU, for `jit` (transforms/interpret.ts): a run of elementwise
 * operations with one output shape (a fusion group of transforms/fusion.ts) becomes one WGSL
 * kernel. Each invocation computes one output index: it reads each input once (directly when
 * the input has the output's shape, element 0 of a single-element input, else through
 * broadcast strides), evaluates the chain in registers and writes only the group's outputs.
 *
 * Each operation calls the same WGSL expression as its unfused kernel (elementwise.ts, wrapped
 * in a function per operation and operand type), so bools (u32 0/1), NaN tests on bit patterns
 * and the NaN-propagating max/min behave exactly as unfused. Values can differ from the unfused
 * kernels only where the shader compiler contracts a product and a sum into a fused
 * multiply-add, which it may do within one kernel but not across two.
 *
 * A group whose first input is a float32 matrix product read nowhere else also fuses into the
 * product: `matmulWithEpilogue` (compute.ts) computes the tiled product and runs the chain on
 * each element before storing (matmul + bias + activation in one pass).
 *
 * Shapes are baked into the source as constants (the divisions become constant), so the source
 * text is the cache key: it is a function of the shapes, dtypes and operations, and equal
 * programs share one compiled pipeline (dispatch.ts) whichever jaxpr they came from.
 */
import type { BackendFusion, FusedOperand, FusedProgram } from "../../trace/backend.js";
import type { ConcreteArray } from "../../trace/concrete-array.js";
import type { DType } from "../../trace/dtype.js";
import { shapesEqual, sizeOf } from "../../trace/shape.js";
import { gpuDevice } from "./backend.js";
import { type MatmulEpilogue, matmulEpilogueSource, matmulWithEpilogue } from "./compute.js";
import {
  bindings,
  dispatch,
  FLAT_MAIN,
  flatGrid,
  gpuBuf,
  newArray,
  strides,
  wgslType,
} from "./dispatch.js";
import { elementwiseWgsl, PRELUDE } from "./elementwise.js";
import { type FusedChunk, fusedChunks } from "./fused-chunks.js";

export type { FusedOperand, FusedProgram, FusedStep } from "../../trace/backend.js";

/** A program compiled to WGSL: a standalone kernel, or the epilogue of a matrix product. */
export interface WgslKernel {
  readonly program: FusedProgram;
  /** The WGSL source (also the pipeline cache key). */
  readonly source: string;
  /** The input read from the product's accumulator (matmul kernels); -1 otherwise. */
  readonly accInput: number;
}

const stats = {
  /** Fused elementwise kernels launched. */
  elementwise: 0,
  /** Matrix products launched with a fused epilogue. */
  matmul: 0,
  /** Fused kernels generated (programs seen for the first time). */
  generated: 0,
  /** Programs too wide for one kernel's bindings, compiled as several (fused-chunks.ts). */
  chunked: 0,
};

/**
 * Counters of the fused WebGPU kernels (a snapshot): fused elementwise kernels and matmul
 * epilogue kernels launched, and kernels generated, since the process started.
 */
export function fusedStats(): Readonly<typeof stats> {
  return { ...stats };
}

const operandDType = (p: FusedProgram, o: FusedOperand): DType =>
  "input" in o ? p.inputs[o.input]!.dtype : p.steps[o.step]!.dtype;

const ARG_NAMES = ["a", "b", "c"];

/**
 * The WGSL of a program's per-element work for flat output index `i`: helper functions and the
 * statements (reads, chain, stores), with input `accInput` taken from `acc`. Null when some dtype
 * or operation has no WGSL form.
 */
function generate(
  p: FusedProgram,
  accInput: number,
): { functions: string; inputs: string[]; outputs: string[]; statements: string } | null {
  const all = [...p.inputs.map((x) => x.dtype), ...p.steps.map((s) => s.dtype)];
  if (all.some((d) => d === "float64")) return null;
  const functions: string[] = [];
  const fnOf = new Map<string, string>();
  const lines: string[] = [];
  const rank = p.shape.length;
  const outStrides = strides(p.shape);
  const coords = new Set<number>();
  const reads: string[] = [];
  const inputs: string[] = [];
  p.inputs.forEach((x, k) => {
    if (k === accInput) {
      reads.push(`  let x${k} = acc;`);
      return;
    }
    inputs.push(`in${k}: array<${wgslType(x.dtype)}>`);
    let index: string;
    if (shapesEqual(x.shape, p.shape)) index = "i";
    else if (sizeOf(x.shape) === 1) index = "0u";
    else {
      const xs = strides(x.shape);
      const off = rank - x.shape.length;
      const terms: string[] = [];
      for (let d = off; d < rank; d++) {
        if (x.shape[d - off] === 1) continue;
        coords.add(d);
        terms.push(xs[d - off] === 1 ? `c${d}` : `c${d} * ${xs[d - off]}u`);
      }
      index = terms.join(" + ");
    }
    reads.push(`  let x${k} = in${k}[${index}];`);
  });
  for (const d of [...coords].sort((a, b) => a - b)) {
    const q = outStrides[d] === 1 ? "i" : `(i / ${outStrides[d]}u)`;
    lines.push(d === 0 ? `  let c${d} = ${q};` : `  let c${d} = ${q} % ${p.shape[d]}u;`);
  }
  lines.push(...reads);
  for (let j = 0; j < p.steps.length; j++) {
    const s = p.steps[j]!;
    // select's expression does not depend on the dtype; the others take their first operand's.
    const types = s.args.map((o) => wgslType(operandDType(p, o)));
    const exprDType = operandDType(p, s.args[s.op === "select" ? 1 : 0]!);
    const expr = elementwiseWgsl(s.op, exprDType);
    if (expr === undefined || s.args.length > ARG_NAMES.length) return null;
    const key = `${s.op}(${types.join(",")})`;
    let fn = fnOf.get(key);
    if (!fn) {
      fn = `op${fnOf.size}`;
      fnOf.set(key, fn);
      const params = types.map((t, i) => `${ARG_NAMES[i]}: ${t}`).join(", ");
      functions.push(`fn ${fn}(${params}) -> ${wgslType(s.dtype)} { return ${expr}; }`);
    }
    const args = s.args.map((o) => ("input" in o ? `x${o.input}` : `v${o.step}`));
    lines.push(`  let v${j} = ${fn}(${args.join(", ")});`);
  }
  const outputs = p.outputs.map((s, j) => `out${j}: array<${wgslType(p.steps[s]!.dtype)}>`);
  p.outputs.forEach((s, j) => {
    lines.push(`  out${j}[i] = v${s};`);
  });
  return { functions: functions.join("\n"), inputs, outputs, statements: lines.join("\n") };
}

/** Whether `n` storage bindings fit the device's per-stage limit. */
function bindingsFit(n: number): boolean {
  const limit = gpuDevice().limits.maxStorageBuffersPerShaderStage;
  return n <= limit;
}

const kernels = new Map<string, WgslKernel | null>();

/** Memoised by the program itself (shapes, dtypes and operations) and the accumulator input. */
function cached(p: FusedProgram, accInput: number, make: () => WgslKernel | null) {
  const key = `${accInput}|${JSON.stringify(p)}`;
  let k = kernels.get(key);
  if (k === undefined) {
    k = make();
    if (k) stats.generated++;
    kernels.set(key, k);
  }
  return k;
}

/**
 * Compiles a program to one elementwise WGSL kernel; null when it has no WGSL form or needs
 * more storage bindings than the device allows (run it unfused then).
 */
export function compileFused(p: FusedProgram): WgslKernel | null {
  return cached(p, -1, () => {
    const g = generate(p, -1);
    if (!g || !bindingsFit(g.inputs.length + g.outputs.length + 1)) return null;
    const source = `${PRELUDE}
${g.functions}
${bindings(g.inputs, g.outputs)}
${FLAT_MAIN}
  if (i >= prm[0]) { return; }
${g.statements}
}`;
    return { program: p, source, accInput: -1 };
  });
}

/**
 * Compiles a program as the epilogue of a float32 matrix product whose elements are input
 * `accInput` (which must have the program's shape); null when it cannot.
 */
export function compileMatmulFused(p: FusedProgram, accInput: number): WgslKernel | null {
  const acc = p.inputs[accInput];
  if (acc?.dtype !== "float32" || !shapesEqual(acc.shape, p.shape)) return null;
  return cached(p, accInput, () => {
    const g = generate(p, accInput);
    if (!g || !bindingsFit(2 + g.inputs.length + g.outputs.length + 1)) return null;
    const epilogue: MatmulEpilogue = {
      prelude: `${PRELUDE}\n${g.functions}`,
      inputs: g.inputs,
      outputs: g.outputs,
      store: g.statements,
    };
    return { program: p, source: matmulEpilogueSource(epilogue), accInput };
  });
}

const outputsOf = (p: FusedProgram) => p.outputs.map((s) => newArray(p.shape, p.steps[s]!.dtype));

/**
 * Runs a fused elementwise kernel. Inputs still on the CPU are uploaded, as an unfused kernel
 * with a WebGPU operand does.
 */
export function runFusedKernel(
  kernel: WgslKernel,
  inputs: readonly ConcreteArray[],
): ConcreteArray[] {
  const p = kernel.program;
  const outs = outputsOf(p);
  const n = sizeOf(p.shape);
  if (n === 0) return outs;
  dispatch(
    kernel.source,
    [...inputs.map(gpuBuf), ...outs.map((o) => o.buffer as never)],
    [n],
    flatGrid(n),
  );
  stats.elementwise++;
  return outs;
}

/**
 * A program too wide for one kernel's storage bindings as consecutive kernels within them
 * (fused-chunks.ts); null when a chunk has no WGSL form either.
 */
function compileChunks(p: FusedProgram): { chunk: FusedChunk; kernel: WgslKernel }[] | null {
  // Each chunk binds its inputs and outputs, plus the meta words.
  const limit = gpuDevice().limits.maxStorageBuffersPerShaderStage - 1;
  const chunks = fusedChunks(p, limit);
  if (!chunks || chunks.length < 2) return null;
  const kernels = chunks.map((chunk) => ({ chunk, kernel: compileFused(chunk.program) }));
  if (kernels.some((k) => !k.kernel)) return null;
  stats.chunked++;
  return kernels as { chunk: FusedChunk; kernel: WgslKernel }[];
}

/** Runs the chunks of a program in order, each reading the group's inputs and earlier values. */
function runChunks(
  p: FusedProgram,
  chunks: readonly { chunk: FusedChunk; kernel: WgslKernel }[],
  inputs: readonly ConcreteArray[],
): ConcreteArray[] {
  const values = new Map<number, ConcreteArray>();
  for (const { chunk, kernel } of chunks) {
    const ins = chunk.sources.map((o) => ("input" in o ? inputs[o.input]! : values.get(o.step)!));
    const outs = runFusedKernel(kernel, ins);
    for (const [j, step] of chunk.writes.entries()) values.set(step, outs[j]!);
  }
  return p.outputs.map((step) => values.get(step)!);
}

/**
 * Runs matmul(a, b) with a fused epilogue (from `compileMatmulFused`): `inputs` are the
 * program's inputs, the accumulator's entry ignored. Null, launching nothing, where the tiled
 * kernel does not apply (an empty product, K = 0): run the unfused kernels then.
 */
export function runMatmulFused(
  kernel: WgslKernel,
  a: ConcreteArray,
  b: ConcreteArray,
  params: { transposeA?: boolean; transposeB?: boolean },
  inputs: readonly ConcreteArray[],
): ConcreteArray[] | null {
  const p = kernel.program;
  const outs = outputsOf(p);
  const extra = inputs.filter((_, k) => k !== kernel.accInput);
  if (!matmulWithEpilogue(a, b, params, kernel.source, extra, outs)) return null;
  stats.matmul++;
  return outs;
}

/**
 * The WebGPU backend's fused-group compilation (`Backend.fusion`): a group as one WGSL kernel,
 * or as the epilogue of a float32 matrix product.
 */
export const webgpuFusion: BackendFusion = {
  compile(p) {
    const kernel = compileFused(p);
    if (kernel) return (inputs) => runFusedKernel(kernel, inputs);
    const chunks = compileChunks(p);
    return chunks && ((inputs) => runChunks(p, chunks, inputs));
  },
  compileMatmulEpilogue(p, accInput) {
    const kernel = compileMatmulFused(p, accInput);
    return kernel && ((a, b, params, inputs) => runMatmulFused(kernel, a, b, params, inputs));
  },
};
