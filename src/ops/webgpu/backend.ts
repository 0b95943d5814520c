/// <reference types="@webgpu/types" preserve="true" />
/**
 * The WebGPU backend: storage is pooled GPU buffers, kernels are WGSL compute shaders (see
 * kernels.ts). Every element is 4 bytes on the GPU: float32 as f32, int32 as i32, uint32 as u32
 * and bool as a u32 holding 0 or 1 (converted to and from one byte per element on the host).
 * float64 is refused: WGSL has no 64-bit floats.
 *
 * Memory. Users never dispose arrays. A `GpuBuf` owns one pooled GPUBuffer; arrays (a reshape
 * shares its input's GpuBuf) hold it, and when the last array holding it becomes unreachable a
 * FinalizationRegistry gives the GPUBuffer back to the pool, keyed by its size class (powers of
 * two). Finalizers only run between tasks after a garbage collection, so a tight synchronous loop
 * can outrun them: `np.scope(fn)` releases every buffer allocated inside `fn` that its result does
 * not hold, eagerly (`runScoped` below, reached through the backend's `scopes`). `poolStats()`
 * reports the counters the memory test asserts.
 *
 * Cost model. Kernels are recorded into one command encoder and submitted together: at a
 * readback, or every MAX_BATCH dispatches (a submission costs more than a dispatch, on real GPUs
 * and on lavapipe alike). Uploads (`queue.writeBuffer`) run at the next submission, before the
 * recorded commands, so a buffer that recorded commands still use must not be written: buffers
 * given back to the pool while commands are pending (by np.scope, the garbage collector or a
 * kernel's scratch) wait until the batch is submitted. Dispatch overhead dominates small arrays;
 * reading back (`await x.data()`) submits and waits for the queue to drain, so a training loop
 * should read back once per step (the loss), not per intermediate.
 */
import { NbiError } from "../../errors.js";
import type { Backend, BackendFusion } from "../../trace/backend.js";
import { allocate, type DType, type TypedArray } from "../../trace/dtype.js";
import { type GpuContext, type GpuDeviceInfo, takeDeviceError } from "./device.js";

// GPUBufferUsage / GPUMapMode values (the globals are absent in Node unless installed).
const MAP_READ = 1;
const COPY_SRC = 4;
const COPY_DST = 8;
const STORAGE = 128;

let context: GpuContext | null = null;
/** Fused-group compilation (fused.ts, which builds on this module), plugged in at initialisation. */
let fusion: BackendFusion | undefined;

export function setGpuContext(ctx: GpuContext, fused?: BackendFusion): void {
  context = ctx;
  if (fused) fusion = fused;
}

export function gpuInfo(): GpuDeviceInfo | null {
  return context?.info ?? null;
}

export function gpuDevice(): GPUDevice {
  if (!context) {
    throw new NbiError(
      'webgpu: the device is not initialised; call `await np.useBackend("webgpu")` first',
    );
  }
  return context.device;
}

/** One pooled GPU buffer, shared by every array viewing the same data (reshape). */
export class GpuBuf {
  released = false;
  constructor(
    readonly buffer: GPUBuffer,
    /** Capacity in bytes (the size class). */
    readonly capacity: number,
  ) {}
}

interface Held {
  buffer: GPUBuffer;
  capacity: number;
}

const free = new Map<number, GPUBuffer[]>();
const counters = {
  /** GPUBuffers ever created by the pool. */
  created: 0,
  /** Buffers handed out and not yet given back. */
  inUse: 0,
  /** Buffers waiting in the pool. */
  free: 0,
  /** Bytes of every buffer the pool owns (in use and free). */
  bytes: 0,
  /** Buffers given back by the FinalizationRegistry. */
  reclaimedByGc: 0,
  /** Buffers given back eagerly by np.scope. */
  releasedByScope: 0,
};

/** Commands recorded and not yet submitted; buffers given back meanwhile wait in `deferred`. */
let batch: { encoder: GPUCommandEncoder; pass: GPUComputePassEncoder; count: number } | null = null;
const deferred: Held[] = [];
/** Dispatches per submission at most (bounds what deferred buffers hold). */
export const MAX_BATCH = 64;

/** Records one dispatch into the pending batch (dispatch.ts); submits when the batch is full. */
export function recordDispatch(
  pipeline: GPUComputePipeline,
  group: GPUBindGroup,
  grid: readonly [number, number, number],
): void {
  if (!batch) {
    const encoder = gpuDevice().createCommandEncoder();
    batch = { encoder, pass: encoder.beginComputePass(), count: 0 };
  }
  batch.pass.setPipeline(pipeline);
  batch.pass.setBindGroup(0, group);
  batch.pass.dispatchWorkgroups(grid[0], grid[1], grid[2]);
  if (++batch.count >= MAX_BATCH) flushGpu();
}

/** Work that must wait until the pending batch is submitted (afterSubmit). */
const whenSubmitted: (() => void)[] = [];

/** Submits the recorded dispatches, then returns the buffers given back meanwhile to the pool. */
export function flushGpu(): void {
  if (!batch) return;
  const { encoder, pass } = batch;
  batch = null;
  pass.end();
  gpuDevice().queue.submit([encoder.finish()]);
  for (const held of deferred.splice(0)) giveBack(held);
  for (const fn of whenSubmitted.splice(0)) fn();
}

/**
 * Runs `fn` once the recorded dispatches are submitted (now, when none are pending): destroying a
 * buffer that recorded commands still bind must wait for their submission.
 */
export function afterSubmit(fn: () => void): void {
  if (batch) whenSubmitted.push(fn);
  else fn();
}

function giveBack(held: Held): void {
  if (batch) {
    deferred.push(held);
    return;
  }
  let list = free.get(held.capacity);
  if (!list) {
    list = [];
    free.set(held.capacity, list);
  }
  list.push(held.buffer);
  counters.inUse--;
  counters.free++;
}

const registry = new FinalizationRegistry<Held>((held) => {
  counters.reclaimedByGc++;
  giveBack(held);
});

function sizeClass(bytes: number): number {
  let c = 16;
  while (c < bytes) c *= 2;
  return c;
}

/** Buffers allocated inside each active np.scope, innermost last. */
const scopes: GpuBuf[][] = [];

export function allocBuf(bytes: number): GpuBuf {
  const capacity = sizeClass(bytes);
  const list = free.get(capacity);
  let buffer = list?.pop();
  if (buffer) {
    counters.free--;
  } else {
    buffer = gpuDevice().createBuffer({ size: capacity, usage: STORAGE | COPY_SRC | COPY_DST });
    counters.created++;
    counters.bytes += capacity;
  }
  counters.inUse++;
  const buf = new GpuBuf(buffer, capacity);
  registry.register(buf, { buffer, capacity }, buf);
  scopes[scopes.length - 1]?.push(buf);
  return buf;
}

/** Gives a buffer back now (np.scope, and short-lived kernel scratch). */
export function releaseBuf(buf: GpuBuf): void {
  if (buf.released) return;
  buf.released = true;
  registry.unregister(buf);
  giveBack({ buffer: buf.buffer, capacity: buf.capacity });
}

/**
 * The WebGPU buffer pool's counters (a snapshot): buffers created, in use, free, bytes owned, and
 * how many were given back by the garbage collector or by `np.scope`. All zero on the CPU.
 *
 * @example
 * ```ts
 * const { inUse, bytes } = np.poolStats();
 * console.log(`${inUse} GPU buffers in use, ${bytes} bytes pooled`);
 * ```
 */
export function poolStats(): Readonly<typeof counters> {
  return { ...counters };
}

/** Destroys the pooled buffers nobody holds (frees GPU memory; they are re-created on demand). */
export function trimPool(): void {
  for (const list of free.values()) {
    for (const b of list) {
      counters.bytes -= b.size;
      b.destroy();
    }
    counters.free -= list.length;
    list.length = 0;
  }
}

/**
 * Runs `fn` and releases, when it returns, every GPU buffer allocated inside it that is not held
 * by the arrays in `keep(result)`. Arrays created inside and not returned must not be used
 * afterwards (using one throws). `fn` must be synchronous.
 */
function runScoped<T>(fn: () => T, keep: (result: T) => readonly GpuBuf[]): T {
  const mine: GpuBuf[] = [];
  scopes.push(mine);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    scopes.pop();
    for (const b of mine) releaseBuf(b);
    throw e;
  }
  scopes.pop();
  if (result instanceof Promise) {
    throw new NbiError("scope: fn expected a synchronous function, got one returning a Promise");
  }
  const kept = new Set(keep(result));
  const outer = scopes[scopes.length - 1];
  for (const b of mine) {
    if (kept.has(b)) outer?.push(b);
    else if (!b.released) {
      releaseBuf(b);
      counters.releasedByScope++;
    }
  }
  return result;
}

/**
 * Runs `fn` with no scope active: buffers it allocates belong to no `np.scope` (jit uses it for
 * the constants a trace captures, which its cache keeps beyond the scope of the first call).
 */
function outsideScopes<T>(fn: () => T): T {
  const saved = scopes.splice(0);
  try {
    return fn();
  } finally {
    scopes.push(...saved);
  }
}

export function checkLive(buf: GpuBuf): GPUBuffer {
  if (buf.released) {
    throw new NbiError(
      "webgpu: an array was used after the np.scope that created it ended (its buffer was " +
        "released); return it from the scope's function to keep it",
    );
  }
  return buf.buffer;
}

function refuseFloat64(fn: string): never {
  throw new NbiError(
    `${fn}: dtype float64 is not supported on the webgpu backend (WGSL has no 64-bit floats); ` +
      'use float32, or run float64 work on the CPU backend (np.useBackend("cpu") or ' +
      '{backend: "cpu"})',
  );
}

export function checkGpuDType(fn: string, dtype: DType): void {
  if (dtype === "float64") refuseFloat64(fn);
}

/** Host data in GPU layout (bool widened to u32). */
function toGpuLayout(data: TypedArray, dtype: DType): Float32Array | Int32Array | Uint32Array {
  if (dtype === "bool") return Uint32Array.from(data as Uint8Array);
  if (dtype === "float32" && !(data instanceof Float32Array)) return Float32Array.from(data);
  if (dtype === "int32" && !(data instanceof Int32Array)) return Int32Array.from(data);
  if (dtype === "uint32" && !(data instanceof Uint32Array)) return Uint32Array.from(data);
  return data as Float32Array | Int32Array | Uint32Array;
}

export function upload(data: TypedArray, dtype: DType): GpuBuf {
  checkGpuDType("webgpu", dtype);
  const host = toGpuLayout(data, dtype);
  const buf = allocBuf(Math.max(4, host.byteLength));
  if (host.byteLength > 0) {
    gpuDevice().queue.writeBuffer(buf.buffer, 0, host.buffer, host.byteOffset, host.byteLength);
  }
  return buf;
}

async function download(buf: GpuBuf, dtype: DType, size: number): Promise<TypedArray> {
  const bytes = size * 4;
  if (dtype === "float64") refuseFloat64("data");
  const out = allocate(dtype, size);
  if (size === 0) return out;
  const device = gpuDevice();
  flushGpu();
  const staging = device.createBuffer({ size: bytes, usage: MAP_READ | COPY_DST });
  const encoder = device.createCommandEncoder();
  encoder.copyBufferToBuffer(checkLive(buf), 0, staging, 0, bytes);
  device.queue.submit([encoder.finish()]);
  await staging.mapAsync(1);
  const gpuError = takeDeviceError();
  if (gpuError !== undefined) {
    staging.destroy();
    throw new NbiError(
      `webgpu: the GPU reported an error while computing this value, so it would be wrong: ${gpuError}`,
    );
  }
  const mapped = staging.getMappedRange();
  if (dtype === "bool") {
    const words = new Uint32Array(mapped);
    for (let i = 0; i < size; i++) out[i] = words[i]! !== 0 ? 1 : 0;
  } else {
    new Uint8Array(out.buffer).set(new Uint8Array(mapped));
  }
  staging.unmap();
  staging.destroy();
  return out;
}

export const webgpuBackend: Backend = {
  name: "webgpu",
  // Any WebGPU operand puts an operation on WebGPU: its kernels upload CPU operands (cheap and
  // synchronous), while moving WebGPU data to the CPU needs an async readback.
  priority: 1,
  scopes: {
    run: (fn, keep) => runScoped(fn, (result) => keep(result) as readonly GpuBuf[]),
    outside: outsideScopes,
  },
  get fusion() {
    return fusion;
  },
  fromHost(data: TypedArray, dtype: DType): unknown {
    return upload(data, dtype);
  },
  read(buffer: unknown, dtype: DType, size: number): Promise<TypedArray> {
    return download(buffer as GpuBuf, dtype, size);
  },
  readSync(): TypedArray {
    throw new NbiError(
      "dataSync: arrays on the webgpu backend can only be read asynchronously; use " +
        "`await x.data()` (tolist, item and printing read synchronously too: read the data " +
        'first, or move the array with `await np.toBackend(x, "cpu")`)',
    );
  },
};
