/// <reference types="@webgpu/types" />
/**
 * What a kernel launch can reuse from the launches before it, so that a training step's hundreds
 * of small dispatches cost the host less (a host-side profile on an H200 found the step bound by
 * the Dawn calls each dispatch made: a fresh `meta` buffer written with the shape words, the
 * pipeline's bind-group layout fetched again, a new bind group):
 *
 * - `meta` buffers by content. A step's kernels see the same shapes every step, so the u32 words
 *   are uploaded once into a buffer of their own that is never written again (immutable, hence
 *   safe to bind from any number of pending dispatches) and looked up by value after that.
 * - The bind-group layout, per pipeline. Bind groups themselves are made per launch: caching
 *   them by (pipeline, buffers) crashed the test worker on lavapipe now and then, even with
 *   at most 1,024 kept (bench/RESULTS.md, 2026-12-06 midday).
 *
 * The meta cache is bounded: when it outgrows its limit it is emptied (the buffers destroyed
 * after the pending batch is submitted, since recorded commands may still read them).
 */
import { afterSubmit, gpuDevice } from "./backend.js";

/** Distinct meta contents kept at most before the cache starts over. */
export const META_CACHE_LIMIT = 4096;

const STORAGE = 128;
const COPY_DST = 8;

const metaBuffers = new Map<string, GPUBuffer>();
const layouts = new WeakMap<GPUComputePipeline, GPUBindGroupLayout>();
let cachedDevice: GPUDevice | null = null;

const stats = {
  /** Meta buffers created (distinct contents uploaded). */
  metaUploads: 0,
  /** Launches whose meta words were already on the GPU. */
  metaHits: 0,
};

/** Counters of the meta cache (a snapshot), for tests and benchmarks. */
export function launchCacheStats(): Readonly<typeof stats> {
  return { ...stats };
}

/** Empties the meta cache when the device changed (its buffers belong to the old one). */
function checkDevice(device: GPUDevice): void {
  if (device !== cachedDevice) {
    metaBuffers.clear();
    cachedDevice = device;
  }
}

/** An immutable GPU buffer holding `words` (one per distinct content). */
export function metaBuffer(words: Uint32Array): GPUBuffer {
  const device = gpuDevice();
  checkDevice(device);
  const key = words.join(",");
  const hit = metaBuffers.get(key);
  if (hit) {
    stats.metaHits++;
    return hit;
  }
  if (metaBuffers.size >= META_CACHE_LIMIT) {
    const old = [...metaBuffers.values()];
    metaBuffers.clear();
    afterSubmit(() => {
      for (const b of old) b.destroy();
    });
  }
  const buffer = device.createBuffer({ size: words.byteLength, usage: STORAGE | COPY_DST });
  device.queue.writeBuffer(buffer, 0, words);
  metaBuffers.set(key, buffer);
  stats.metaUploads++;
  return buffer;
}

/** The bind group of `pipeline` with `buffers` at bindings 0, 1, … in order. */
export function bindGroup(
  pipeline: GPUComputePipeline,
  buffers: readonly GPUBuffer[],
): GPUBindGroup {
  let layout = layouts.get(pipeline);
  if (!layout) {
    layout = pipeline.getBindGroupLayout(0);
    layouts.set(pipeline, layout);
  }
  return gpuDevice().createBindGroup({
    layout,
    entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
  });
}
