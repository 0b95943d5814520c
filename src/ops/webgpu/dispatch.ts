/// <reference types="@webgpu/types" />
/**
 * Running WGSL compute shaders: a pipeline cache keyed by the shader source, bindings in a fixed
 * order (inputs read-only, then outputs, then a `meta` array of u32 words with the shapes and
 * strides, so one compiled shader serves every shape of a given rank), and one submission per
 * kernel.
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

export const WORKGROUP = 64;

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
  const device = gpuDevice();
  const pipeline = pipelineFor(source);
  stats.dispatches++;
  const metaWords = Uint32Array.from(meta.length > 0 ? meta : [0]);
  const metaBuf = allocBuf(metaWords.byteLength);
  device.queue.writeBuffer(metaBuf.buffer, 0, metaWords);
  const entries = [...buffers, metaBuf].map((b, i) => ({
    binding: i,
    resource: { buffer: checkLive(b) },
  }));
  const group = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
  recordDispatch(pipeline, group, grid);
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
