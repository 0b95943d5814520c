/**
 * Simulation stores without a file system: the same `SimulationStore` contract as the file store
 * (store.ts), kept in a key-value backend. `memoryStore` keeps everything in the page or process
 * (gone when it ends); `openIndexedDbStore` (idb-store.ts) keeps it in the browser's IndexedDB,
 * so a reloaded page resumes its run.
 *
 * Keys of the backend:
 *
 *     meta                 { paramDim, dataShape, labels?, fingerprint? }
 *     theta/RRR            the round's θ, n × paramDim float64
 *     chunk/RRR/NNNNNN     { index: Int32Array, x: Float32Array, status: Uint8Array }
 *     json/RRR/<name>      a record as JSON text
 *
 * An interrupted round's training is kept by the handle only (in memory, not in the backend): a
 * fit stopped by a signal continues on the same handle, and trains again after a reload.
 */
import { NbiError } from "../errors.js";
import type { SimulationChunk } from "./simulation/collect.js";
import type {
  RoundData,
  SimulationStore,
  StoreFingerprint,
  StoreMeta,
  TrainingKeeper,
} from "./store.js";
import {
  checkChunk,
  checkRecordName,
  checkRound,
  checkSameParams,
  checkTheta,
  remarkNonFinite,
  validateMeta,
} from "./store-checks.js";
import type { TrainCheckpoint } from "./train.js";

/** Where a keyed store keeps its values; each value is copied in and out (structured clone). */
export interface KeyValueBackend {
  get(key: string): Promise<unknown>;
  put(key: string, value: unknown): Promise<void>;
  /** Every key that starts with `prefix`, in any order. */
  keys(prefix: string): Promise<string[]>;
}

interface StoredMeta {
  paramDim: number;
  dataShape: number[];
  labels?: string[];
  fingerprint?: StoreFingerprint;
}

const pad = (v: number, width: number) => String(v).padStart(width, "0");
const CHUNK_KEY = /^chunk\/\d+\/(\d+)$/;

/**
 * A store that lives in memory: for a page that needs no resume, tests, and one-off fits.
 *
 * @example
 * ```ts
 * const store = memoryStore({ paramDim: 2, dataShape: [50] });
 * await engine.fit({ xObs, store }); // in nbi/browser
 * ```
 */
export function memoryStore(meta: StoreMeta, name = "memory"): SimulationStore {
  validateMeta("memoryStore", meta);
  const values = new Map<string, unknown>();
  // structuredClone copies typed arrays, so the caller's arrays never alias the stored ones.
  const backend: KeyValueBackend = {
    get: async (key) => (values.has(key) ? structuredClone(values.get(key)) : undefined),
    put: async (key, value) => void values.set(key, structuredClone(value)),
    keys: async (prefix) => [...values.keys()].filter((k) => k.startsWith(prefix)),
  };
  return new KeyedStore(`memory:${name}`, backend, {
    paramDim: meta.paramDim,
    dataShape: [...meta.dataShape],
    ...(meta.labels ? { labels: [...meta.labels] } : {}),
  });
}

/**
 * Opens a keyed store on `backend`, recording `meta` in an empty one; an existing one must have the
 * same paramDim and dataShape (and labels, when both name them).
 */
export async function openKeyedStore(
  fn: string,
  dir: string,
  backend: KeyValueBackend,
  meta: StoreMeta,
): Promise<SimulationStore> {
  validateMeta(fn, meta);
  const existing = (await backend.get("meta")) as StoredMeta | undefined;
  if (existing !== undefined) {
    const mismatch = (what: string, want: unknown, found: unknown): never => {
      throw new NbiError(
        `${fn}: the store ${dir} holds simulations with ${what} ${JSON.stringify(found)}, but meta.${what} is ${JSON.stringify(want)}; use another name for a different model`,
      );
    };
    if (existing.paramDim !== meta.paramDim) mismatch("paramDim", meta.paramDim, existing.paramDim);
    if (JSON.stringify(existing.dataShape) !== JSON.stringify([...meta.dataShape])) {
      mismatch("dataShape", [...meta.dataShape], existing.dataShape);
    }
    if (meta.labels && existing.labels && existing.labels.join("\n") !== meta.labels.join("\n")) {
      mismatch("labels", [...meta.labels], existing.labels);
    }
    if (meta.labels && !existing.labels) {
      existing.labels = [...meta.labels];
      await backend.put("meta", existing);
    }
    return new KeyedStore(dir, backend, existing);
  }
  const fresh: StoredMeta = {
    paramDim: meta.paramDim,
    dataShape: [...meta.dataShape],
    ...(meta.labels ? { labels: [...meta.labels] } : {}),
  };
  await backend.put("meta", fresh);
  return new KeyedStore(dir, backend, fresh);
}

class KeyedStore implements SimulationStore {
  readonly meta: StoreMeta;
  readonly size: number;
  private readonly rowCounts = new Map<number, number>();
  private readonly nextChunk = new Map<number, Promise<{ next: number }>>();
  private readonly saved = new Map<number, TrainCheckpoint>();
  private metaWritten: Promise<void>;

  readonly training: TrainingKeeper = {
    where: (round) => `${this.roundDir(round)} (training kept in memory)`,
    load: async (round) => this.saved.get(round),
    save: async (round, checkpoint) => void this.saved.set(round, checkpoint),
    remove: async (round) => void this.saved.delete(round),
  };

  constructor(
    readonly dir: string,
    private readonly backend: KeyValueBackend,
    private readonly stored: StoredMeta,
  ) {
    this.meta = {
      paramDim: stored.paramDim,
      dataShape: [...stored.dataShape],
      ...(stored.labels ? { labels: [...stored.labels] } : {}),
    };
    this.size = stored.dataShape.reduce((a, b) => a * b, 1);
    // memoryStore builds its handle synchronously: its meta lands with the first write.
    this.metaWritten = backend.put("meta", stored);
  }

  roundDir(round: number): string {
    checkRound("roundDir", round);
    return `${this.dir}/round-${pad(round, 3)}`;
  }

  async rounds(): Promise<number[]> {
    return (await this.backend.keys("theta/"))
      .map((k) => Number(k.slice("theta/".length)))
      .sort((a, b) => a - b);
  }

  async roundParams(round: number): Promise<Float64Array | undefined> {
    checkRound("roundParams", round);
    const theta = await this.backend.get(`theta/${pad(round, 3)}`);
    if (theta === undefined) return undefined;
    if (!(theta instanceof Float64Array) || theta.length % this.meta.paramDim !== 0) {
      throw new NbiError(
        `roundParams: ${this.roundDir(round)} expected float64 θ rows of ${this.meta.paramDim}, got ${String(theta)}; the store was modified or damaged`,
      );
    }
    this.rowCounts.set(round, theta.length / this.meta.paramDim);
    return theta;
  }

  async writeRoundParams(round: number, theta: Float64Array): Promise<void> {
    const fn = "writeRoundParams";
    checkRound(fn, round);
    const d = this.meta.paramDim;
    checkTheta(fn, theta, d);
    const previous = await this.roundParams(round);
    if (previous !== undefined) {
      checkSameParams(fn, round, this.dir, previous, theta, d);
      return;
    }
    await this.metaWritten;
    await this.backend.put(`theta/${pad(round, 3)}`, theta);
    this.rowCounts.set(round, theta.length / d);
  }

  async appendChunk(round: number, chunk: SimulationChunk): Promise<void> {
    const fn = "appendChunk";
    checkRound(fn, round);
    let n = this.rowCounts.get(round);
    if (n === undefined) {
      if ((await this.roundParams(round)) === undefined) {
        throw new NbiError(
          `${fn}: round expected a round whose θ is stored in ${this.dir} (call writeRoundParams first), got ${round}`,
        );
      }
      n = this.rowCounts.get(round)!;
    }
    checkChunk(fn, chunk, n, this.size);
    const number = await this.takeChunkNumber(round);
    const { index, x, status } = chunk;
    await this.backend.put(`chunk/${pad(round, 3)}/${pad(number, 6)}`, { index, x, status });
  }

  async readRound(round: number): Promise<RoundData> {
    const theta = await this.roundParams(round);
    if (theta === undefined) {
      throw new NbiError(
        `readRound: round expected a round whose θ is stored in ${this.dir}, got ${round} (stored: ${(await this.rounds()).join(", ") || "none"})`,
      );
    }
    const n = theta.length / this.meta.paramDim;
    const size = this.size;
    const done = new Uint8Array(n);
    const status = new Uint8Array(n);
    const x = new Float32Array(n * size).fill(Number.NaN);
    // Chunks in the order they were written: a row simulated again, the last one wins.
    const keys = (await this.backend.keys(`chunk/${pad(round, 3)}/`)).sort();
    for (const key of keys) {
      const chunk = (await this.backend.get(key)) as SimulationChunk | undefined;
      if (
        !chunk ||
        !(chunk.index instanceof Int32Array) ||
        !(chunk.x instanceof Float32Array) ||
        !(chunk.status instanceof Uint8Array) ||
        chunk.x.length !== chunk.index.length * size ||
        chunk.status.length !== chunk.index.length
      ) {
        throw new NbiError(
          `readRound: ${this.dir}/${key} expected { index: Int32Array, x: Float32Array, status: Uint8Array } of matching lengths; the store was modified or damaged`,
        );
      }
      checkChunk("readRound", chunk, n, size);
      chunk.index.forEach((i, j) => {
        done[i] = 1;
        status[i] = chunk.status[j]!;
        x.set(chunk.x.subarray(j * size, (j + 1) * size), i * size);
      });
    }
    const remarked = remarkNonFinite(done, status, x, size);
    return { n, theta, done, status, x, remarked };
  }

  async writeJson(round: number, name: string, value: unknown): Promise<void> {
    checkRound("writeJson", round);
    checkRecordName("writeJson", name);
    // Stored as JSON text: what comes back is what the file store would give back.
    await this.backend.put(`json/${pad(round, 3)}/${name}`, JSON.stringify(value));
  }

  async readJson<T>(round: number, name: string): Promise<T | undefined> {
    checkRound("readJson", round);
    checkRecordName("readJson", name);
    const text = await this.backend.get(`json/${pad(round, 3)}/${name}`);
    return typeof text === "string" ? (JSON.parse(text) as T) : undefined;
  }

  async fingerprint(): Promise<StoreFingerprint | undefined> {
    const stored = (await this.backend.get("meta")) as StoredMeta | undefined;
    return stored?.fingerprint;
  }

  async writeFingerprint(fingerprint: StoreFingerprint): Promise<void> {
    if (fingerprint === null || typeof fingerprint !== "object" || Array.isArray(fingerprint)) {
      throw new NbiError(
        `writeFingerprint: fingerprint expected a JSON object, got ${JSON.stringify(fingerprint)}`,
      );
    }
    this.stored.fingerprint = JSON.parse(JSON.stringify(fingerprint)) as StoreFingerprint;
    await this.metaWritten;
    this.metaWritten = this.backend.put("meta", this.stored);
    await this.metaWritten;
  }

  /** The next unused chunk number of a round: above every chunk stored. */
  private async takeChunkNumber(round: number): Promise<number> {
    let counter = this.nextChunk.get(round);
    if (counter === undefined) {
      counter = this.backend.keys(`chunk/${pad(round, 3)}/`).then((keys) => ({
        next: keys.reduce((m, k) => Math.max(m, Number(CHUNK_KEY.exec(k)?.[1] ?? -1) + 1), 0),
      }));
      this.nextChunk.set(round, counter);
    }
    const state = await counter;
    return state.next++;
  }
}
