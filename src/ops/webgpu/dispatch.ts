/// <reference types="@webgpu/types" />
/**
 * Running WGSL compute shaders: a pipeline cache keyed by the shader source, bindings in a fixed
 * order (inputs read-only, then outputs, then a `meta` array of u32 words with the shapes and
 * strides, so one compiled shader serves every shape of a given rank), recorded into the pending
 * batch; the meta buffers and bind groups come from launch-cache.ts.
 */
import { ConcreteArray } from "../../trace/concrete-array.js";
import type { DType, TypedArray } from "../../trace/dtype.js";
import type { Shape } from "../../trace/shape.js";
import { sizeOf } from "../../trace/shape.js";
import {
  allocBuf,
  checkGpuDType,
  checkLive,
  type GpuBuf,
  gpuDevice,
  recordDispatch,
  releaseBuf,
  upload,
  webgpuBackend,
} from "./backend.js";
import { bindGroup, metaBuffer } from "./launch-cache.js";

export const WORKGROUP = 64;
/** Meta arrays up to this many words (shapes and strides) are uploaded once per content. */
const META_CACHED_WORDS = 256;

/** The WGSL element type of a dtype's GPU storage. */
export function wgslType(dtype: DType): "f32" | "i32" | "u32" {
  checkGpuDType("webgpu", dtype);
  return dtype === "float32" ? "f32" : dtype === "int32" ? "i32" : "u32";
}

/**
 * The GPU buffer behind an operand. Operands still on the CPU backend are uploaded here: an
 * operation with any WebGPU operand runs on WebGPU (see EvalTrace in trace/core.ts).
 */
export function gpuBuf(x: ConcreteArray): GpuBuf {
  if (x.backend.name === "webgpu") {
    const b = x.buffer as GpuBuf;
    checkLive(b);
    return b;
  }
  return upload(x.buffer as TypedArray, x.dtype);
}

/** A fresh output array on WebGPU. */
export function newArray(shape: Shape, dtype: DType): ConcreteArray {
  checkGpuDType("webgpu", dtype);
  const buf = allocBuf(Math.max(4, sizeOf(shape) * 4));
  return new ConcreteArray([...shape], dtype, webgpuBackend, buf);
}

/** An array viewing another's buffer with a new shape (reshape). */
export function viewArray(x: ConcreteArray, shape: Shape): ConcreteArray {
  return new ConcreteArray([...shape], x.dtype, webgpuBackend, gpuBuf(x));
}

const pipelines = new Map<string, GPUComputePipeline>();

/**
 * A shader builder that returns the very same string for the same arguments. The pipeline cache
 * is keyed by source text, and looking up a freshly built copy hashes and compares the whole
 * text (~13 µs a launch on lavapipe's host, measured); the same string object is found by its
 * cached hash and identity. Arguments are joined into the key, so they must be strings, numbers
 * or arrays of them.
 */
export function memoSource<A extends readonly unknown[]>(
  build: (...args: A) => string,
): (...args: A) => string {
  const built = new Map<string, string>();
  return (...args: A) => {
    const key = args.join("\u0001");
    let source = built.get(key);
    if (source === undefined) {
      source = build(...args);
      built.set(key, source);
    }
    return source;
  };
}

const stats = {
  /** Kernels dispatched (one compute pass each). */
  dispatches: 0,
  /** Pipelines compiled (cache misses). */
  compiled: 0,
  /** Dispatches that found their pipeline in the cache. */
  cacheHits: 0,
};

/**
 * Counters of the WebGPU kernel launcher (a snapshot): kernels dispatched, pipelines compiled and
 * pipeline cache hits since the process started. Tests and benchmarks read differences of these
 * (e.g. kernels per jit call, fused against unfused).
 */
export function dispatchStats(): Readonly<typeof stats> {
  return { ...stats };
}

function pipelineFor(source: string): GPUComputePipeline {
  let p = pipelines.get(source);
  if (p) stats.cacheHits++;
  else {
    stats.compiled++;
    const device = gpuDevice();
    // NBI_WGSL_DEBUG=1 prints each shader once, when it is compiled.
    if (globalThis.process?.env?.NBI_WGSL_DEBUG) console.error(source);
    const module = device.createShaderModule({ code: source });
    p = device.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" } });
    pipelines.set(source, p);
  }
  return p;
}

/** Number of compiled pipelines (for benchmarks and tests). */
export function pipelineCount(): number {
  return pipelines.size;
}

/** Declarations of the bindings: inputs, outputs, then meta. */
export function bindings(inputs: string[], outputs: string[]): string {
  const lines: string[] = [];
  let b = 0;
  for (const decl of inputs) {
    lines.push(`@group(0) @binding(${b++}) var<storage, read> ${decl};`);
  }
  for (const decl of outputs) {
    lines.push(`@group(0) @binding(${b++}) var<storage, read_write> ${decl};`);
  }
  lines.push(`@group(0) @binding(${b}) var<storage, read> prm: array<u32>;`);
  return lines.join("\n");
}

/** The flat invocation index of a 1-D launch folded into a 2-D grid (65535 groups per axis). */
export const FLAT_MAIN = `@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * ${WORKGROUP}u;`;

/** Workgroup counts covering `threads` invocations of FLAT_MAIN. */
export function flatGrid(threads: number): [number, number, number] {
  const groups = Math.ceil(threads / WORKGROUP);
  if (groups <= 65535) return [Math.max(groups, 1), 1, 1];
  const y = Math.ceil(groups / 65535);
  return [Math.ceil(groups / y), y, 1];
}

/**
 * Runs one shader. `buffers` are bound in declaration order (inputs, then outputs); `meta` is
 * uploaded as the last binding. Every declared binding must be used by the shader (the "auto"
 * pipeline layout drops unused ones).
 */
export function dispatch(
  source: string,
  buffers: GpuBuf[],
  meta: ArrayLike<number>,
  grid: [number, number, number],
): void {
  const pipeline = pipelineFor(source);
  stats.dispatches++;
  const metaWords = Uint32Array.from(meta.length > 0 ? meta : [0]);
  const bound = buffers.map(checkLive);
  if (metaWords.length <= META_CACHED_WORDS) {
    bound.push(metaBuffer(metaWords));
    recordDispatch(pipeline, bindGroup(pipeline, bound), grid);
    return;
  }
  // Long meta (data more than shapes): a pooled buffer for this launch alone.
  const metaBuf = allocBuf(metaWords.byteLength);
  gpuDevice().queue.writeBuffer(metaBuf.buffer, 0, metaWords);
  bound.push(metaBuf.buffer);
  recordDispatch(pipeline, bindGroup(pipeline, bound), grid);
  // Back to the pool once the batch recording this dispatch is submitted (backend.ts).
  releaseBuf(metaBuf);
}

/** Row-major strides. */
export function strides(shape: Shape): number[] {
  const s = new globalThis.Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

/** Bit patterns of a number as stored in a dtype (for fill values passed through meta). */
export function bitsOf(value: number, dtype: DType): number {
  if (dtype === "float32") return new Uint32Array(new Float32Array([value]).buffer)[0]!;
  if (dtype === "int32") return new Uint32Array(new Int32Array([value]).buffer)[0]!;
  if (dtype === "bool") return value !== 0 ? 1 : 0;
  return value >>> 0;
}
