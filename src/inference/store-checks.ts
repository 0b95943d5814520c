/**
 * The checks and merging every simulation store shares (the file store, the in-memory and the
 * IndexedDB ones), free of Node built-ins so the browser stores can use them.
 */
import { fail, NbiError } from "../errors.js";
import type { SimulationChunk } from "./simulation/collect.js";

/**
 * What every simulation in a store looks like. (Defined here, with its check, and re-exported by
 * store.ts: the store imports these checks, so importing it back would make a cycle.)
 */
export interface StoreMeta {
  readonly paramDim: number;
  readonly dataShape: readonly number[];
  readonly labels?: readonly string[];
}

/** Status codes a chunk may hold (SimulationStatus: ok, nonFinite, threw, crashed, timeout). */
export const MAX_STATUS = 4;

export function checkRound(fn: string, round: number): void {
  if (!Number.isInteger(round) || round < 0) fail(fn, "round", "a non-negative integer", round);
}

export function validateMeta(fn: string, meta: StoreMeta): void {
  if (meta === null || typeof meta !== "object")
    fail(fn, "meta", "{ paramDim, dataShape, labels? }", meta);
  if (!Number.isInteger(meta.paramDim) || meta.paramDim < 1) {
    fail(fn, "meta.paramDim", "a positive integer", meta.paramDim);
  }
  if (!Array.isArray(meta.dataShape) || meta.dataShape.some((d) => !Number.isInteger(d) || d < 1)) {
    fail(fn, "meta.dataShape", "an array of positive integers", meta.dataShape);
  }
  if (
    meta.labels !== undefined &&
    (!Array.isArray(meta.labels) ||
      meta.labels.length !== meta.paramDim ||
      meta.labels.some((l) => typeof l !== "string"))
  ) {
    fail(fn, "meta.labels", `${meta.paramDim} strings (one per parameter)`, meta.labels);
  }
}

/** θ to write for a round: a Float64Array of whole rows. */
export function checkTheta(fn: string, theta: Float64Array, paramDim: number): void {
  if (!(theta instanceof Float64Array) || theta.length % paramDim !== 0) {
    fail(
      fn,
      "theta",
      `a Float64Array whose length is a multiple of paramDim ${paramDim}`,
      lengthOrValue(theta),
    );
  }
}

/** A chunk to append to a round of n rows, each output `size` values. */
export function checkChunk(fn: string, chunk: SimulationChunk, n: number, size: number): void {
  const { index, x, status } = chunk;
  if (!(index instanceof Int32Array)) fail(fn, "chunk.index", "an Int32Array", index);
  const k = index.length;
  if (!(x instanceof Float32Array) || x.length !== k * size) {
    fail(fn, "chunk.x", `a Float32Array of length ${k} × ${size}`, lengthOrValue(x));
  }
  if (!(status instanceof Uint8Array) || status.length !== k) {
    fail(fn, "chunk.status", `a Uint8Array of length ${k}`, lengthOrValue(status));
  }
  for (const i of index) if (i < 0 || i >= n) fail(fn, "chunk.index", `values in [0, ${n})`, i);
  for (const s of status)
    if (s > MAX_STATUS) fail(fn, "chunk.status", `values 0 to ${MAX_STATUS}`, s);
}

/** A record name: what the file store turns into `<name>.json`. */
export function checkRecordName(fn: string, name: string): void {
  if (typeof name !== "string" || !/^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/.test(name)) {
    fail(fn, "name", "a file name of letters, digits, '_', '-' and '.'", name);
  }
}

/**
 * An output stored as ok must be finite: anything else is re-marked non-finite (status 1).
 * Returns how many rows were re-marked.
 */
export function remarkNonFinite(
  done: Uint8Array,
  status: Uint8Array,
  x: Float32Array,
  size: number,
): number {
  let remarked = 0;
  for (let i = 0; i < done.length; i++) {
    if (!done[i] || status[i] !== 0) continue;
    for (let v = i * size; v < (i + 1) * size; v++) {
      if (!Number.isFinite(x[v]!)) {
        status[i] = 1;
        remarked++;
        break;
      }
    }
  }
  return remarked;
}

/**
 * θ for a round that already has some: identical rows are fine (a resumed draw writes them
 * again), different ones are refused, naming the store.
 */
export function checkSameParams(
  fn: string,
  round: number,
  store: string,
  previous: Float64Array,
  theta: Float64Array,
  paramDim: number,
): void {
  if (!sameBytes(previous, theta)) {
    throw new NbiError(
      `${fn}: round ${round} of the store ${store} already has ${previous.length / paramDim} θ rows that differ from the ${theta.length / paramDim} given; start a new round or a new store`,
    );
  }
}

export function sameBytes(a: Float64Array, b: Float64Array): boolean {
  if (a.length !== b.length) return false;
  const ua = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const ub = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return false;
  return true;
}

export function lengthOrValue(value: unknown): unknown {
  return ArrayBuffer.isView(value)
    ? `a ${value.constructor.name} of length ${(value as Uint8Array).length}`
    : value;
}
