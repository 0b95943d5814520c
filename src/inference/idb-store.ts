/**
 * A simulation store in the browser's IndexedDB: one database per store name, one object store
 * of key → value (the keys of memory-store.ts; θ and chunks as typed arrays, which IndexedDB
 * keeps as ArrayBuffers). Simulations survive a reload, so a page resumes its run where it
 * stopped, as the file store does in Node.
 */
import { NbiError } from "../errors.js";
import { type KeyValueBackend, openKeyedStore } from "./memory-store.js";
import type { SimulationStore, StoreMeta } from "./store.js";

const OBJECT_STORE = "simulations";

// The slice of the IndexedDB API used here (the package compiles without the DOM library).
interface IdbRequest<T> {
  readonly result: T;
  readonly error: unknown;
  onsuccess: (() => void) | null;
  onerror: (() => void) | null;
}
interface IdbOpenRequest extends IdbRequest<IdbDatabase> {
  onupgradeneeded: (() => void) | null;
}
interface IdbObjectStore {
  get(key: string): IdbRequest<unknown>;
  put(value: unknown, key: string): IdbRequest<unknown>;
  getAllKeys(range: unknown): IdbRequest<unknown[]>;
}
interface IdbTransaction {
  objectStore(name: string): IdbObjectStore;
  readonly error: unknown;
  oncomplete: (() => void) | null;
  onerror: (() => void) | null;
  onabort: (() => void) | null;
}
interface IdbDatabase {
  readonly objectStoreNames: { contains(name: string): boolean };
  createObjectStore(name: string): unknown;
  transaction(name: string, mode: "readonly" | "readwrite"): IdbTransaction;
}
interface IdbGlobals {
  readonly indexedDB: {
    open(name: string, version: number): IdbOpenRequest;
    deleteDatabase(name: string): IdbRequest<unknown>;
  };
  readonly IDBKeyRange: {
    bound(lower: string, upper: string, lowerOpen: boolean, upperOpen: boolean): unknown;
  };
}
const idb = () => globalThis as unknown as IdbGlobals;

/** True where IndexedDB exists (browsers, workers); false in Node. */
export function hasIndexedDb(): boolean {
  return typeof (globalThis as { indexedDB?: unknown }).indexedDB === "object";
}

function request<T>(req: IdbRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function openDatabase(name: string): Promise<IdbDatabase> {
  const req = idb().indexedDB.open(name, 1);
  req.onupgradeneeded = () => {
    if (!req.result.objectStoreNames.contains(OBJECT_STORE)) {
      req.result.createObjectStore(OBJECT_STORE);
    }
  };
  return request(req);
}

/**
 * Opens (or creates) the store named `name` in IndexedDB. An existing store must have the same
 * paramDim and dataShape.
 *
 * @example
 * ```ts
 * const store = await openIndexedDbStore("sine", { paramDim: 2, dataShape: [50] });
 * ```
 */
export async function openIndexedDbStore(name: string, meta: StoreMeta): Promise<SimulationStore> {
  const fn = "openIndexedDbStore";
  if (typeof name !== "string" || name.length === 0) {
    throw new NbiError(`${fn}: name expected a non-empty string, got ${JSON.stringify(name)}`);
  }
  if (!hasIndexedDb()) {
    throw new NbiError(
      `${fn}: indexedDB expected (a browser or a worker), got none in this runtime; use memoryStore`,
    );
  }
  const db = await openDatabase(`nbi-store:${name}`);
  const tx = (mode: "readonly" | "readwrite") =>
    db.transaction(OBJECT_STORE, mode).objectStore(OBJECT_STORE);
  const backend: KeyValueBackend = {
    get: (key) => request(tx("readonly").get(key)),
    put: async (key, value) => {
      const t = db.transaction(OBJECT_STORE, "readwrite");
      t.objectStore(OBJECT_STORE).put(value, key);
      // Resolved once committed, so a write that returned survives a reload.
      await new Promise<void>((resolve, reject) => {
        t.oncomplete = () => resolve();
        t.onerror = () => reject(t.error);
        t.onabort = () => reject(t.error ?? new Error("IndexedDB transaction aborted"));
      });
    },
    keys: async (prefix) => {
      // Every key starting with prefix: the range [prefix, prefix + U+FFFF).
      const range = idb().IDBKeyRange.bound(prefix, `${prefix}\uffff`, false, true);
      return (await request(tx("readonly").getAllKeys(range))).map(String);
    },
  };
  return openKeyedStore(fn, `indexeddb:${name}`, backend, meta);
}

/** Deletes the IndexedDB store named `name` (nothing to delete is fine). */
export async function deleteIndexedDbStore(name: string): Promise<void> {
  if (!hasIndexedDb()) return;
  await request(idb().indexedDB.deleteDatabase(`nbi-store:${name}`));
}
