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
 * - Bind groups by (pipeline, buffers). The pool hands the same GPUBuffers back in the same order
 *   from step to step, so the same group recurs. Buffers are keyed by object identity, so a
 *   buffer created after another was destroyed never finds the old one's groups; the groups of
 *   destroyed buffers are dropped (memory) when the pool trims (`trimPool`), and everything when
 *   the device changes.
 *
 * Both caches are bounded: when one outgrows its limit it is emptied (the meta buffers destroyed
 * after the pending batch is submitted, since recorded commands may still read them).
 */
import { afterSubmit, gpuDevice, poolTrims } from "./backend.js";

/** Distinct meta contents kept at most before the cache starts over. */
export const META_CACHE_LIMIT = 4096;
/**
 * Bind groups kept at most before the cache starts over. Each live group holds descriptors: on
 * lavapipe about 8,000 live groups crashed the process (the bijector-law suite), 4,096 did not;
 * a ResNet-GRU training step needs ~600.
 */
export const GROUP_CACHE_LIMIT = 1024;

const STORAGE = 128;
const COPY_DST = 8;

const metaBuffers = new Map<string, GPUBuffer>();
const groups = new Map<string, GPUBindGroup>();
const layouts = new WeakMap<GPUComputePipeline, GPUBindGroupLayout>();
const ids = new WeakMap<object, number>();
let nextId = 1;
let cachedDevice: GPUDevice | null = null;
let cachedTrims = 0;

const stats = {
  /** Meta buffers created (distinct contents uploaded). */
  metaUploads: 0,
  /** Launches whose meta words were already on the GPU. */
  metaHits: 0,
  /** Bind groups created. */
  groupsCreated: 0,
  /** Launches that reused a bind group. */
  groupHits: 0,
};

/** Counters of the launch caches (a snapshot, with the groups now cached), for tests and benchmarks. */
export function launchCacheStats(): Readonly<typeof stats & { groupsCached: number }> {
  return { ...stats, groupsCached: groups.size };
}

function idOf(o: object): number {
  let id = ids.get(o);
  if (id === undefined) {
    id = nextId++;
    ids.set(o, id);
  }
  return id;
}

/** Empties the caches that a new device or a pool trim made stale. */
function checkValid(device: GPUDevice): void {
  const trims = poolTrims();
  if (device !== cachedDevice) {
    metaBuffers.clear();
    groups.clear();
    cachedDevice = device;
  } else if (trims !== cachedTrims) {
    groups.clear();
  }
  cachedTrims = trims;
}

/** An immutable GPU buffer holding `words` (one per distinct content). */
export function metaBuffer(words: Uint32Array): GPUBuffer {
  const device = gpuDevice();
  checkValid(device);
  const key = words.join(",");
  const hit = metaBuffers.get(key);
  if (hit) {
    stats.metaHits++;
    return hit;
  }
  if (metaBuffers.size >= META_CACHE_LIMIT) {
    const old = [...metaBuffers.values()];
    metaBuffers.clear();
    // Groups bind the old buffers: they go too.
    groups.clear();
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
  const device = gpuDevice();
  checkValid(device);
  let key = String(idOf(pipeline));
  for (const b of buffers) key += `,${idOf(b)}`;
  const hit = groups.get(key);
  if (hit) {
    stats.groupHits++;
    return hit;
  }
  let layout = layouts.get(pipeline);
  if (!layout) {
    layout = pipeline.getBindGroupLayout(0);
    layouts.set(pipeline, layout);
  }
  const group = device.createBindGroup({
    layout,
    entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
  });
  if (groups.size >= GROUP_CACHE_LIMIT) groups.clear();
  groups.set(key, group);
  stats.groupsCreated++;
  return group;
}
