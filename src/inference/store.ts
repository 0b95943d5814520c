/**
 * The on-disk simulation store: the parameters drawn for each round and the simulator's outputs,
 * saved chunk by chunk as they finish so that a run killed at any moment resumes where it stopped.
 * Everything is plain JSON and NPY (numpy's format), readable without this library.
 *
 * Layout of a store folder:
 *
 *     manifest.json              {"format": "nbi-store", "version": 1, "paramDim": d,
 *                                 "dataShape": [...], "labels": [...]?,
 *                                 "rounds": [{"round": 0, "n": n, "dir": "round-000"}, ...]}
 *     round-000/theta.npy        n × d float64: the θ drawn for the round, written once, before
 *                                simulating (row i is simulation index i)
 *     round-000/chunk-000000.x.npy       k × ...dataShape float32 outputs (NaN rows where the
 *                                        simulator threw or its worker crashed)
 *     round-000/chunk-000000.status.npy  k uint8: 0 ok, 1 non-finite output, 2 simulator threw,
 *                                        3 worker crashed
 *     round-000/chunk-000000.index.npy   k int32: the θ rows the chunk holds
 *     round-000/chunk-s003-000000.*.npy  the same three files from the writer "s003" (a store
 *                                        opened with { writer: "s003" }: one shard of a round
 *                                        simulated by another process or machine)
 *     round-000/<name>.json      records the engine keeps per round (history, reports)
 *
 * Each file is written under a temporary name, flushed to disk and renamed into place, and a
 * chunk's index file is renamed last: a chunk exists exactly when its index file does. A crash
 * can leave temporary files or an x/status pair without an index file; both are ignored, and
 * chunk numbers are never reused, so a resumed run cannot overwrite them. If an index appears in
 * several chunks, the last one read wins (a deliberate re-simulation): chunks are read in the
 * order of their file names (unprefixed chunks by number first, then each writer's by number, writers
 * in code-unit order), which is also Python's `sorted` order.
 *
 * Writers: chunk numbers are taken per writer, so several processes (or machines sharing the folder)
 * can simulate one round at once when each opens the store with its own `writer` name: a Slurm array
 * job's shards write `chunk-s000-*`, `chunk-s001-*`, ... and `readRound` merges them all. One
 * process per writer name (the unnamed one included) at a time; θ is written by one process, before
 * the writers start.
 *
 * Reading a round from Python:
 *
 *     import glob, json, numpy as np
 *     m = json.load(open("store/manifest.json"))
 *     theta = np.load("store/round-000/theta.npy")
 *     x = np.full((len(theta), *m["dataShape"]), np.nan, np.float32)
 *     status = np.full(len(theta), 255, np.uint8)          # 255: not simulated yet
 *     for f in sorted(glob.glob("store/round-000/chunk-*.index.npy")):
 *         i = np.load(f)
 *         x[i] = np.load(f.replace(".index.npy", ".x.npy"))
 *         status[i] = np.load(f.replace(".index.npy", ".status.npy"))
 */
import { mkdir, open, readdir, readFile, rename, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { describe, fail, NbiError } from "../errors.js";
import { decodeNpy, encodeNpy, type NpyArray } from "./npy.js";
import type { SimulationChunk } from "./simulate-collect.js";

/** What every simulation in a store looks like. */
export interface StoreMeta {
  readonly paramDim: number;
  readonly dataShape: readonly number[];
  readonly labels?: readonly string[];
}

/** One round read back: θ, which rows are simulated, their status and outputs. */
export interface RoundData {
  /** Number of θ rows. */
  readonly n: number;
  /** n × paramDim. */
  readonly theta: Float64Array;
  /** 1 where the row has been simulated (whatever its status). */
  readonly done: Uint8Array;
  /** SimulationStatus per row (0 for rows not done: check `done`). */
  readonly status: Uint8Array;
  /** n × prod(dataShape); NaN rows where not done, or where the simulator threw or crashed. */
  readonly x: Float32Array;
}

/** A handle on a store folder (see the layout above); every write is atomic. */
export interface SimulationStore {
  /** The absolute path of the store folder. */
  readonly dir: string;
  /** The name this handle's chunks carry (`chunk-<writer>-NNNNNN`), if any. */
  readonly writer?: string;
  /** The shape of every simulation (and parameter vector) in the store. */
  readonly meta: StoreMeta;
  /** Output values per simulation: the product of `meta.dataShape`. */
  readonly size: number;
  /** The rounds whose θ has been written, ascending. */
  rounds(): Promise<number[]>;
  /** The round's θ (n × paramDim), or undefined if not written yet. */
  roundParams(round: number): Promise<Float64Array | undefined>;
  /**
   * Writes the round's θ once. Writing the same values again does nothing (a resumed run);
   * different values are refused with an NbiError.
   */
  writeRoundParams(round: number, theta: Float64Array): Promise<void>;
  /**
   * Persists one chunk atomically (named after this handle's writer, if it has one); its indices
   * must be rows of the round's θ.
   */
  appendChunk(round: number, chunk: SimulationChunk): Promise<void>;
  /** The round's θ and every stored chunk merged by index. */
  readRound(round: number): Promise<RoundData>;
  /** Writes `round-XXX/<name>.json` atomically. */
  writeJson(round: number, name: string, value: unknown): Promise<void>;
  /** Reads `round-XXX/<name>.json`, or undefined if it does not exist. */
  readJson<T>(round: number, name: string): Promise<T | undefined>;
  /** The round's folder (created by the first write to the round), for the engine's own files. */
  roundDir(round: number): string;
}

/** How a handle writes: `writer` names its chunks (letters, digits and '_', starting with a letter). */
export interface StoreOptions {
  readonly writer?: string;
}

interface Manifest {
  format: "nbi-store";
  version: 1;
  paramDim: number;
  dataShape: number[];
  labels?: string[];
  rounds: { round: number; n: number; dir: string }[];
}

const MANIFEST = "manifest.json";
/** A finished chunk: `chunk-[writer-]NNNNNN.index.npy`. */
const CHUNK_INDEX = /^chunk-(?:([A-Za-z][A-Za-z0-9_]*)-)?(\d+)\.index\.npy$/;
/** Any file of a chunk, finished or not, by writer ("" for unprefixed chunks) and number. */
const CHUNK_ANY = /^chunk-(?:([A-Za-z][A-Za-z0-9_]*)-)?(\d+)\./;
const WRITER = /^[A-Za-z][A-Za-z0-9_]*$/;
const ROUND_DIR = /^round-(\d+)$/;

/** The rows of a round still to simulate: those with done[i] = 0. */
export function pendingIndices(done: Uint8Array): Int32Array {
  const out: number[] = [];
  for (let i = 0; i < done.length; i++) if (!done[i]) out.push(i);
  return Int32Array.from(out);
}

/**
 * Opens the store in `dir`, creating the folder and its manifest if needed. An existing store
 * must have the same paramDim and dataShape (and labels, when both name them).
 *
 * @example
 * ```ts
 * const store = await inference.openStore("runs/sine", { paramDim: 2, dataShape: [50] });
 * for (const r of await store.rounds()) console.log(r, (await store.readRound(r)).n);
 * ```
 */
export async function openStore(
  dir: string,
  meta: StoreMeta,
  options: StoreOptions = {},
): Promise<SimulationStore> {
  validateMeta(meta);
  const writer = options?.writer;
  if (writer !== undefined && (typeof writer !== "string" || !WRITER.test(writer))) {
    fail(
      "openStore",
      "options.writer",
      "a name of letters, digits and '_' that starts with a letter (e.g. \"s003\")",
      writer,
    );
  }
  const root = resolve(dir);
  const manifestPath = join(root, MANIFEST);
  let manifest: Manifest;
  let rewrite = true;
  const existing = await readText(manifestPath);
  if (existing !== undefined) {
    manifest = parseManifest(existing, root);
    checkCompatible(manifest, meta, root);
    rewrite = meta.labels !== undefined && manifest.labels === undefined;
    if (meta.labels && !manifest.labels) manifest.labels = [...meta.labels];
  } else {
    const entries = await readdir(root).catch(ifMissing([] as string[]));
    if (entries.length > 0) {
      throw new NbiError(
        `openStore: dir expected an empty folder or an nbi store (with ${MANIFEST}), got ${JSON.stringify(root)} holding ${describe(entries)}`,
      );
    }
    await mkdir(root, { recursive: true });
    manifest = {
      format: "nbi-store",
      version: 1,
      paramDim: meta.paramDim,
      dataShape: [...meta.dataShape],
      ...(meta.labels ? { labels: [...meta.labels] } : {}),
      rounds: [],
    };
  }
  const store = new DiskStore(root, manifest, writer);
  await store.syncManifest(rewrite);
  return store;
}

class DiskStore implements SimulationStore {
  readonly meta: StoreMeta;
  readonly size: number;
  private readonly rowCounts = new Map<number, number>();
  private readonly nextChunk = new Map<number, Promise<{ next: number }>>();
  private manifestWrites: Promise<void> = Promise.resolve();

  constructor(
    readonly dir: string,
    private readonly manifest: Manifest,
    readonly writer?: string,
  ) {
    this.meta = {
      paramDim: manifest.paramDim,
      dataShape: [...manifest.dataShape],
      ...(manifest.labels ? { labels: [...manifest.labels] } : {}),
    };
    this.size = manifest.dataShape.reduce((a, b) => a * b, 1);
  }

  roundDir(round: number): string {
    checkRound("roundDir", round);
    return join(this.dir, `round-${String(round).padStart(3, "0")}`);
  }

  async rounds(): Promise<number[]> {
    const found: number[] = [];
    for (const name of await readdir(this.dir)) {
      const m = ROUND_DIR.exec(name);
      if (m && (await exists(join(this.dir, name, "theta.npy")))) found.push(Number(m[1]));
    }
    return found.sort((a, b) => a - b);
  }

  async roundParams(round: number): Promise<Float64Array | undefined> {
    const path = join(this.roundDir(round), "theta.npy");
    const bytes = await readFile(path).catch(ifMissing(undefined));
    if (bytes === undefined) return undefined;
    const array = decodeNpy(bytes, path);
    const d = this.meta.paramDim;
    if (!(array.data instanceof Float64Array) || array.shape.length !== 2 || array.shape[1] !== d) {
      throw new NbiError(
        `roundParams: ${path} expected float64 of shape [n, ${d}], got ${array.data.constructor.name} of shape [${array.shape.join(", ")}]`,
      );
    }
    this.rowCounts.set(round, array.shape[0]!);
    return array.data;
  }

  async writeRoundParams(round: number, theta: Float64Array): Promise<void> {
    const fn = "writeRoundParams";
    checkRound(fn, round);
    const d = this.meta.paramDim;
    if (!(theta instanceof Float64Array) || theta.length % d !== 0) {
      fail(
        fn,
        "theta",
        `a Float64Array whose length is a multiple of paramDim ${d}`,
        lengthOrValue(theta),
      );
    }
    const previous = await this.roundParams(round);
    if (previous !== undefined) {
      if (!sameBytes(previous, theta)) {
        throw new NbiError(
          `${fn}: round ${round} of the store ${this.dir} already has ${previous.length / d} θ rows that differ from the ${theta.length / d} given; start a new round or a new store`,
        );
      }
    } else {
      await mkdir(this.roundDir(round), { recursive: true });
      await writeAtomic(
        join(this.roundDir(round), "theta.npy"),
        encodeNpy({ data: theta, shape: [theta.length / d, d] }),
      );
      this.rowCounts.set(round, theta.length / d);
    }
    await this.syncManifest(false);
  }

  async appendChunk(round: number, chunk: SimulationChunk): Promise<void> {
    const fn = "appendChunk";
    const n = await this.rowCount(fn, round);
    const { index, x, status } = chunk;
    if (!(index instanceof Int32Array)) fail(fn, "chunk.index", "an Int32Array", index);
    const k = index.length;
    if (!(x instanceof Float32Array) || x.length !== k * this.size) {
      fail(fn, "chunk.x", `a Float32Array of length ${k} × ${this.size}`, lengthOrValue(x));
    }
    if (!(status instanceof Uint8Array) || status.length !== k) {
      fail(fn, "chunk.status", `a Uint8Array of length ${k}`, lengthOrValue(status));
    }
    for (const i of index) if (i < 0 || i >= n) fail(fn, "chunk.index", `values in [0, ${n})`, i);
    for (const s of status) if (s > 3) fail(fn, "chunk.status", "values 0 to 3", s);
    const number = await this.takeChunkNumber(round);
    const prefix = this.writer === undefined ? "" : `${this.writer}-`;
    const base = join(this.roundDir(round), `chunk-${prefix}${String(number).padStart(6, "0")}`);
    await writeAtomic(`${base}.x.npy`, encodeNpy({ data: x, shape: [k, ...this.meta.dataShape] }));
    await writeAtomic(`${base}.status.npy`, encodeNpy({ data: status, shape: [k] }));
    // Renamed last: its presence is what makes the chunk count.
    await writeAtomic(`${base}.index.npy`, encodeNpy({ data: index, shape: [k] }));
  }

  async readRound(round: number): Promise<RoundData> {
    const theta = await this.roundParams(round);
    if (theta === undefined) {
      throw new NbiError(
        `readRound: round expected a round whose θ is stored in ${this.dir}, got ${round} (stored: ${describe(await this.rounds())})`,
      );
    }
    const n = theta.length / this.meta.paramDim;
    const size = this.size;
    const done = new Uint8Array(n);
    const status = new Uint8Array(n);
    const x = new Float32Array(n * size).fill(Number.NaN);
    const folder = this.roundDir(round);
    const chunks = (await readdir(folder))
      .map((name) => CHUNK_INDEX.exec(name))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => ({ writer: m[1] ?? "", number: m[2]! }))
      .sort((a, b) =>
        a.writer === b.writer ? Number(a.number) - Number(b.number) : a.writer < b.writer ? -1 : 1,
      );
    for (const { writer, number } of chunks) {
      const base = join(folder, `chunk-${writer === "" ? "" : `${writer}-`}${number}`);
      const index = await this.readChunkFile(`${base}.index.npy`, Int32Array, [-1]);
      const k = index.length;
      const rows = await this.readChunkFile(`${base}.x.npy`, Float32Array, [
        k,
        ...this.meta.dataShape,
      ]);
      const codes = await this.readChunkFile(`${base}.status.npy`, Uint8Array, [k]);
      for (let j = 0; j < k; j++) {
        const i = index[j]!;
        if (i < 0 || i >= n) {
          throw new NbiError(
            `readRound: ${base}.index.npy expected indices in [0, ${n}), got ${i}`,
          );
        }
        done[i] = 1;
        status[i] = codes[j]!;
        x.set(rows.subarray(j * size, (j + 1) * size), i * size);
      }
    }
    return { n, theta, done, status, x };
  }

  async writeJson(round: number, name: string, value: unknown): Promise<void> {
    const path = this.jsonPath("writeJson", round, name);
    await mkdir(this.roundDir(round), { recursive: true });
    await writeAtomic(path, new TextEncoder().encode(`${JSON.stringify(value, null, 2)}\n`));
  }

  async readJson<T>(round: number, name: string): Promise<T | undefined> {
    const path = this.jsonPath("readJson", round, name);
    const text = await readText(path);
    if (text === undefined) return undefined;
    try {
      return JSON.parse(text) as T;
    } catch (error) {
      throw new NbiError(`readJson: ${path} is not valid JSON (${(error as Error).message})`);
    }
  }

  /** Rewrites the manifest when its round list differs from the rounds on disk (or `force`). */
  async syncManifest(force: boolean): Promise<void> {
    const write = async (): Promise<void> => {
      const rounds = [];
      for (const round of await this.rounds()) {
        const n =
          this.rowCounts.get(round) ?? (await this.roundParams(round))!.length / this.meta.paramDim;
        rounds.push({ round, n, dir: `round-${String(round).padStart(3, "0")}` });
      }
      if (!force && JSON.stringify(rounds) === JSON.stringify(this.manifest.rounds)) return;
      this.manifest.rounds = rounds;
      const text = `${JSON.stringify(this.manifest, null, 2)}\n`;
      await writeAtomic(join(this.dir, MANIFEST), new TextEncoder().encode(text));
    };
    this.manifestWrites = this.manifestWrites.then(write, write);
    await this.manifestWrites;
  }

  private jsonPath(fn: string, round: number, name: string): string {
    if (typeof name !== "string" || !/^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/.test(name)) {
      fail(fn, "name", "a file name of letters, digits, '_', '-' and '.'", name);
    }
    return join(this.roundDir(round), `${name}.json`);
  }

  private async rowCount(fn: string, round: number): Promise<number> {
    checkRound(fn, round);
    const known = this.rowCounts.get(round);
    if (known !== undefined) return known;
    if ((await this.roundParams(round)) === undefined) {
      throw new NbiError(
        `${fn}: round expected a round whose θ is stored in ${this.dir} (call writeRoundParams first), got ${round}`,
      );
    }
    return this.rowCounts.get(round)!;
  }

  /**
   * The next unused chunk number of a round for this handle's writer: above every chunk file of
   * that writer present, finished or not.
   */
  private async takeChunkNumber(round: number): Promise<number> {
    let counter = this.nextChunk.get(round);
    if (counter === undefined) {
      const writer = this.writer ?? "";
      counter = readdir(this.roundDir(round)).then((names) => {
        let next = 0;
        for (const name of names) {
          const m = CHUNK_ANY.exec(name);
          if (m && (m[1] ?? "") === writer) next = Math.max(next, Number(m[2]) + 1);
        }
        return { next };
      });
      this.nextChunk.set(round, counter);
    }
    const state = await counter;
    return state.next++;
  }

  private async readChunkFile<T extends NpyArray["data"]>(
    path: string,
    type: new (length: number) => T,
    shape: readonly number[],
  ): Promise<T> {
    const bytes = await readFile(path).catch(ifMissing(undefined));
    if (bytes === undefined) {
      throw new NbiError(
        `readRound: ${path} is missing although the chunk's index file exists; the store was modified by hand`,
      );
    }
    const array = decodeNpy(bytes, path);
    const shapeOk =
      array.shape.length === shape.length &&
      shape.every((d, i) => d === -1 || d === array.shape[i]);
    if (!(array.data instanceof type) || !shapeOk) {
      throw new NbiError(
        `readRound: ${path} expected ${type.name} of shape [${shape.map((d) => (d === -1 ? "k" : d)).join(", ")}], got ${array.data.constructor.name} of shape [${array.shape.join(", ")}]`,
      );
    }
    return array.data;
  }
}

let tempCounter = 0;

/** Writes `bytes` to a temporary file, flushes it to disk, then renames it to `path`. */
async function writeAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const temp = `${path}.tmp-${process.pid}-${tempCounter++}`;
  const handle = await open(temp, "w");
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temp, path);
}

function ifMissing<T>(value: T): (error: NodeJS.ErrnoException) => T {
  return (error) => {
    if (error.code === "ENOENT") return value;
    throw error;
  };
}

async function readText(path: string): Promise<string | undefined> {
  return readFile(path, "utf8").catch(ifMissing(undefined));
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, ifMissing(false));
}

function sameBytes(a: Float64Array, b: Float64Array): boolean {
  if (a.length !== b.length) return false;
  const ua = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const ub = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return false;
  return true;
}

function lengthOrValue(value: unknown): unknown {
  return ArrayBuffer.isView(value)
    ? `a ${value.constructor.name} of length ${(value as Uint8Array).length}`
    : value;
}

function checkRound(fn: string, round: number): void {
  if (!Number.isInteger(round) || round < 0) fail(fn, "round", "a non-negative integer", round);
}

function validateMeta(meta: StoreMeta): void {
  const fn = "openStore";
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

function parseManifest(text: string, root: string): Manifest {
  let value: Partial<Manifest>;
  try {
    value = JSON.parse(text) as Partial<Manifest>;
  } catch (error) {
    throw new NbiError(
      `openStore: ${join(root, MANIFEST)} is not valid JSON (${(error as Error).message})`,
    );
  }
  if (value.format !== "nbi-store" || value.version !== 1) {
    throw new NbiError(
      `openStore: ${join(root, MANIFEST)} expected format "nbi-store" version 1, got format ${describe(value.format)} version ${describe(value.version)}`,
    );
  }
  return { ...value, rounds: value.rounds ?? [] } as Manifest;
}

function checkCompatible(manifest: Manifest, meta: StoreMeta, root: string): void {
  const mismatch = (what: string, expected: unknown, found: unknown): never => {
    throw new NbiError(
      `openStore: the store ${root} holds simulations with ${what} ${describe(found)}, but meta.${what} is ${describe(expected)}; use another folder for a different model`,
    );
  };
  if (manifest.paramDim !== meta.paramDim) mismatch("paramDim", meta.paramDim, manifest.paramDim);
  if (JSON.stringify(manifest.dataShape) !== JSON.stringify([...meta.dataShape])) {
    mismatch("dataShape", [...meta.dataShape], manifest.dataShape);
  }
  if (
    meta.labels &&
    manifest.labels &&
    JSON.stringify(manifest.labels) !== JSON.stringify([...meta.labels])
  ) {
    mismatch("labels", [...meta.labels], manifest.labels);
  }
}
