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
 *                                        3 worker crashed, 4 timed out (simTimeoutMs)
 *     round-000/chunk-000000.index.npy   k int32: the θ rows the chunk holds
 *     round-000/chunk-000000.sum.json    SHA-256 of the chunk's three files, written before
 *                                        the index file ({"x.npy": hex, "status.npy": hex,
 *                                        "index.npy": hex}); round-000/theta.sum.json likewise
 *                                        for theta.npy
 *     round-000/chunk-s003-000000.*.npy  the same three files from the writer "s003" (a store
 *                                        opened with { writer: "s003" }: one shard of a round
 *                                        simulated by another process or machine)
 *     round-000/<name>.json      records the engine keeps per round (history, reports)
 *     round-000/training.safetensors   the round's training stopped by a signal, at its last
 *                                        finished epoch (see train-checkpoint.ts); removed
 *                                        once the round's training finishes
 *
 * Each file is written under a temporary name, flushed to disk and renamed into place, and a
 * chunk's index file is renamed last: a chunk exists exactly when its index file does. A crash
 * can leave temporary files or an x/status pair without an index file; both are ignored, and
 * chunk numbers are never reused, so a resumed run cannot overwrite them. Temporary files older
 * than a minute (no write takes that long) are removed when the store is opened.
 *
 * What is read is checked, never trusted: every file must match its checksum (a flipped byte in
 * an output would otherwise pass as a different simulation), θ must be finite float64 rows
 * matching the manifest, chunk files must have the dtypes and shapes above, status codes must
 * be 0 to 4 and indices rows of θ (anything else is refused with the file's name); an output
 * marked ok that holds NaN or ±Infinity is re-marked non-finite and counted in
 * `RoundData.remarked`. (Stores written before checksums are read without them.)
 *
 * The manifest may also record the run's `fingerprint` (what decided the stored data: see
 * `NBI.fit`'s `resume` option); the store keeps it and never interprets it. If an index appears in
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
import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, rm, stat, unlink } from "node:fs/promises";
import { join, resolve } from "node:path";
import { describe, fail, NbiError } from "../errors.js";
import { TEMP_FILE, writeFileAtomic } from "../io/atomic.js";
import { decodeNpy, encodeNpy, type NpyArray } from "../io/npy.js";
import type { SimulationChunk } from "./simulation/collect.js";
import {
  checkChunk,
  checkRecordName,
  checkRound,
  checkSameParams,
  checkTheta,
  MAX_STATUS,
  remarkNonFinite,
  type StoreMeta,
  validateMeta,
} from "./store-checks.js";
import type { TrainCheckpoint, TrainTemplate } from "./train.js";
import {
  loadTrainCheckpoint,
  saveTrainCheckpoint,
  trainCheckpointPath,
} from "./train-checkpoint.js";

export type { StoreMeta } from "./store-checks.js";

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
  /** Rows stored as ok whose outputs are not finite: re-marked non-finite (status 1) on reading. */
  readonly remarked: number;
}

/** What decided a run's stored data (and its training), as the engine records it: plain JSON. */
export type StoreFingerprint = Readonly<Record<string, unknown>>;

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
  /** The fingerprint recorded in the manifest, if any (see `StoreFingerprint`). */
  fingerprint(): Promise<StoreFingerprint | undefined>;
  /** Records the run's fingerprint in the manifest (replacing any earlier one). */
  writeFingerprint(fingerprint: StoreFingerprint): Promise<void>;
  /**
   * Keeps a round's training stopped by a signal, so the next fit continues it; a store without
   * it trains an interrupted round again from its start.
   */
  readonly training?: TrainingKeeper;
}

/** Where a store keeps the interrupted training of a round (see train-checkpoint.ts). */
export interface TrainingKeeper {
  /** Where round's training is kept, for messages (a path for the file store). */
  where(round: number): string;
  /** The saved training, filled into the template's shapes, or undefined when none is saved. */
  load(round: number, template: TrainTemplate): Promise<TrainCheckpoint | undefined>;
  save(round: number, checkpoint: TrainCheckpoint): Promise<void>;
  /** Forgets the round's training (nothing saved is fine). */
  remove(round: number): Promise<void>;
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
  fingerprint?: StoreFingerprint;
}

const MANIFEST = "manifest.json";
/** A finished chunk: `chunk-[writer-]NNNNNN.index.npy`. */
const CHUNK_INDEX = /^chunk-(?:([A-Za-z][A-Za-z0-9_]*)-)?(\d+)\.index\.npy$/;
/** Any file of a chunk, finished or not, by writer ("" for unprefixed chunks) and number. */
const CHUNK_ANY = /^chunk-(?:([A-Za-z][A-Za-z0-9_]*)-)?(\d+)\./;
const WRITER = /^[A-Za-z][A-Za-z0-9_]*$/;
const ROUND_DIR = /^round-(\d+)$/;
/** Temporary files older than this are left over from a crash (a write takes milliseconds). */
const STALE_TEMP_MS = 60_000;
/** Files that may sit in a store folder besides the store's own: run locks, temporary files. */
const isAside = (name: string) => name.endsWith(".lock") || TEMP_FILE.test(name);

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
  validateMeta("openStore", meta);
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
    const entries = (await readdir(root).catch(ifMissing([] as string[]))).filter(
      (name) => !isAside(name),
    );
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
  await removeStaleTemps(root);
  const store = new DiskStore(root, manifest, writer);
  await store.syncManifest(rewrite);
  return store;
}

/**
 * Empties a store folder for a fresh run: removes its manifest and round folders (nothing else:
 * a folder that is not an nbi store is refused).
 *
 * @example
 * ```ts
 * await inference.resetStore("runs/sine/store"); // then openStore starts it afresh
 * ```
 */
export async function resetStore(dir: string): Promise<void> {
  const root = resolve(dir);
  const names = await readdir(root).catch(ifMissing([] as string[]));
  if (names.length === 0) return;
  if (!names.includes(MANIFEST)) {
    const others = names.filter((n) => !isAside(n));
    if (others.length === 0) return;
    throw new NbiError(
      `resetStore: dir expected an nbi store (with ${MANIFEST}), got ${JSON.stringify(root)} holding ${describe(others)}; nothing was removed`,
    );
  }
  for (const name of names) {
    if (ROUND_DIR.test(name)) await rm(join(root, name), { recursive: true, force: true });
  }
  await unlink(join(root, MANIFEST)).catch(ifMissing(undefined));
}

/** Removes temporary files left by crashed writers, in the store folder and its round folders. */
async function removeStaleTemps(root: string): Promise<void> {
  const folders = [root];
  for (const name of await readdir(root)) if (ROUND_DIR.test(name)) folders.push(join(root, name));
  const now = Date.now();
  for (const folder of folders) {
    for (const name of await readdir(folder).catch(ifMissing([] as string[]))) {
      if (!TEMP_FILE.test(name) && !name.endsWith(".tmp")) continue;
      const path = join(folder, name);
      const info = await stat(path).catch(ifMissing(undefined));
      if (info?.isFile() && now - info.mtimeMs > STALE_TEMP_MS) {
        await unlink(path).catch(ifMissing(undefined));
      }
    }
  }
}

class DiskStore implements SimulationStore {
  readonly meta: StoreMeta;
  readonly size: number;
  private readonly rowCounts = new Map<number, number>();
  private readonly nextChunk = new Map<number, Promise<{ next: number }>>();
  private manifestWrites: Promise<void> = Promise.resolve();
  /** True once this handle recorded a fingerprint (a rewrite then keeps its own). */
  private fingerprintSet = false;
  /** `round-RRR/training.safetensors`, written atomically. */
  readonly training: TrainingKeeper = {
    where: (round) => trainCheckpointPath(this, round),
    load: (round, template) => loadTrainCheckpoint(trainCheckpointPath(this, round), template),
    save: (round, checkpoint) => saveTrainCheckpoint(trainCheckpointPath(this, round), checkpoint),
    remove: (round) => rm(trainCheckpointPath(this, round), { force: true }),
  };

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
    const sumPath = join(this.roundDir(round), "theta.sum.json");
    verifySum(bytes, await readSums(sumPath), "theta.npy", path, sumPath);
    const array = decodeNpy(bytes, path);
    const d = this.meta.paramDim;
    if (!(array.data instanceof Float64Array) || array.shape.length !== 2 || array.shape[1] !== d) {
      throw new NbiError(
        `roundParams: ${path} expected float64 of shape [n, ${d}], got ${array.data.constructor.name} of shape [${array.shape.join(", ")}]`,
      );
    }
    const n = array.shape[0]!;
    const listed = this.manifest.rounds.find((r) => r.round === round);
    if (listed !== undefined && listed.n !== n) {
      throw new NbiError(
        `roundParams: ${path} expected ${listed.n} θ rows (as ${join(this.dir, MANIFEST)} records), got ${n}; the store was modified or damaged`,
      );
    }
    const bad = array.data.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) {
      throw new NbiError(
        `roundParams: ${path} expected finite θ, got ${array.data[bad]} in row ${Math.floor(bad / d)}; the store was modified or damaged`,
      );
    }
    this.rowCounts.set(round, n);
    return array.data;
  }

  async writeRoundParams(round: number, theta: Float64Array): Promise<void> {
    const fn = "writeRoundParams";
    checkRound(fn, round);
    const d = this.meta.paramDim;
    checkTheta(fn, theta, d);
    const previous = await this.roundParams(round);
    if (previous !== undefined) {
      checkSameParams(fn, round, this.dir, previous, theta, d);
    } else {
      await mkdir(this.roundDir(round), { recursive: true });
      const bytes = encodeNpy({ data: theta, shape: [theta.length / d, d] });
      await writeFileAtomic(
        join(this.roundDir(round), "theta.sum.json"),
        `${JSON.stringify({ "theta.npy": sha256(bytes) })}\n`,
      );
      await writeFileAtomic(join(this.roundDir(round), "theta.npy"), bytes);
      this.rowCounts.set(round, theta.length / d);
    }
    await this.syncManifest(false);
  }

  async appendChunk(round: number, chunk: SimulationChunk): Promise<void> {
    const fn = "appendChunk";
    const n = await this.rowCount(fn, round);
    checkChunk(fn, chunk, n, this.size);
    const { index, x, status } = chunk;
    const k = index.length;
    const number = await this.takeChunkNumber(round);
    const prefix = this.writer === undefined ? "" : `${this.writer}-`;
    const base = join(this.roundDir(round), `chunk-${prefix}${String(number).padStart(6, "0")}`);
    const files = {
      "x.npy": encodeNpy({ data: x, shape: [k, ...this.meta.dataShape] }),
      "status.npy": encodeNpy({ data: status, shape: [k] }),
      "index.npy": encodeNpy({ data: index, shape: [k] }),
    };
    const sums = Object.fromEntries(Object.entries(files).map(([n, b]) => [n, sha256(b)]));
    await writeFileAtomic(`${base}.x.npy`, files["x.npy"]);
    await writeFileAtomic(`${base}.status.npy`, files["status.npy"]);
    await writeFileAtomic(`${base}.sum.json`, `${JSON.stringify(sums)}\n`);
    // Renamed last: its presence is what makes the chunk count.
    await writeFileAtomic(`${base}.index.npy`, files["index.npy"]);
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
      const sums = await readSums(`${base}.sum.json`);
      const index = await this.readChunkFile(`${base}.index.npy`, Int32Array, [-1], sums);
      const k = index.length;
      const rows = await this.readChunkFile(
        `${base}.x.npy`,
        Float32Array,
        [k, ...this.meta.dataShape],
        sums,
      );
      const codes = await this.readChunkFile(`${base}.status.npy`, Uint8Array, [k], sums);
      for (let j = 0; j < k; j++) {
        const i = index[j]!;
        if (i < 0 || i >= n) {
          throw new NbiError(
            `readRound: ${base}.index.npy expected indices in [0, ${n}), got ${i}`,
          );
        }
        const code = codes[j]!;
        if (code > MAX_STATUS) {
          throw new NbiError(
            `readRound: ${base}.status.npy expected status codes 0 to ${MAX_STATUS}, got ${code} at row ${j}; the store was modified or damaged`,
          );
        }
        done[i] = 1;
        status[i] = code;
        x.set(rows.subarray(j * size, (j + 1) * size), i * size);
      }
    }
    // An output stored as ok must be finite: anything else is re-marked and counted.
    const remarked = remarkNonFinite(done, status, x, size);
    return { n, theta, done, status, x, remarked };
  }

  async writeJson(round: number, name: string, value: unknown): Promise<void> {
    const path = this.jsonPath("writeJson", round, name);
    await mkdir(this.roundDir(round), { recursive: true });
    await writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
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

  async fingerprint(): Promise<StoreFingerprint | undefined> {
    await this.manifestWrites.catch(() => undefined);
    const text = await readText(join(this.dir, MANIFEST));
    const onDisk = text === undefined ? undefined : parseManifest(text, this.dir).fingerprint;
    return onDisk ?? this.manifest.fingerprint;
  }

  async writeFingerprint(fingerprint: StoreFingerprint): Promise<void> {
    if (fingerprint === null || typeof fingerprint !== "object") {
      fail("writeFingerprint", "fingerprint", "a JSON object", fingerprint);
    }
    this.manifest.fingerprint = JSON.parse(JSON.stringify(fingerprint)) as StoreFingerprint;
    this.fingerprintSet = true;
    await this.syncManifest(true);
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
      if (!this.fingerprintSet) {
        // Another process (the fit, while shards run) may have recorded one since this opened.
        const text = await readText(join(this.dir, MANIFEST));
        const onDisk = text === undefined ? undefined : parseManifest(text, this.dir).fingerprint;
        if (onDisk !== undefined) this.manifest.fingerprint = onDisk;
      }
      const text = `${JSON.stringify(this.manifest, null, 2)}\n`;
      await writeFileAtomic(join(this.dir, MANIFEST), text);
    };
    this.manifestWrites = this.manifestWrites.then(write, write);
    await this.manifestWrites;
  }

  private jsonPath(fn: string, round: number, name: string): string {
    checkRecordName(fn, name);
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
    sums: { sums: Record<string, string>; path: string } | undefined,
  ): Promise<T> {
    const bytes = await readFile(path).catch(ifMissing(undefined));
    if (bytes === undefined) {
      throw new NbiError(
        `readRound: ${path} is missing although the chunk's index file exists; the store was modified by hand`,
      );
    }
    const name = /\.(x|status|index)\.npy$/.exec(path)![0].slice(1);
    verifySum(bytes, sums, name, path, sums?.path ?? "");
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

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** A checksum file's entries, or undefined where there is none (a store from before them). */
async function readSums(
  path: string,
): Promise<{ sums: Record<string, string>; path: string } | undefined> {
  const text = await readText(path);
  if (text === undefined) return undefined;
  let sums: unknown;
  try {
    sums = JSON.parse(text);
  } catch {
    sums = undefined;
  }
  if (
    sums === null ||
    typeof sums !== "object" ||
    Array.isArray(sums) ||
    !Object.values(sums).every((v) => typeof v === "string" && /^[0-9a-f]{64}$/.test(v))
  ) {
    throw new NbiError(
      `readRound: ${path} expected {"<file>": "<sha256 hex>", ...}, got ${JSON.stringify(text.slice(0, 60))}; the store was modified or damaged`,
    );
  }
  return { sums: sums as Record<string, string>, path };
}

/** Refuses bytes that do not match their recorded checksum (when one is recorded). */
function verifySum(
  bytes: Uint8Array,
  sums: { sums: Record<string, string> } | undefined,
  name: string,
  path: string,
  sumPath: string,
): void {
  if (sums === undefined) return;
  const expected = sums.sums[name];
  if (expected === undefined || sha256(bytes) !== expected) {
    throw new NbiError(
      `readRound: ${path} expected the content recorded in ${sumPath} (SHA-256 ${expected?.slice(0, 12) ?? "missing"}…), got different bytes; the file was modified or damaged`,
    );
  }
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
