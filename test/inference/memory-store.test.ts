/**
 * The in-memory store passes the store contract (store-contract.ts), and so does a keyed store on
 * a shared Map backend, reopened: the code the IndexedDB store runs in browsers, minus IndexedDB.
 * The file store runs the same contract, so the three agree where the contract reaches. Also:
 * the memory store keeps an interrupted round's training, and bad input is refused by name.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { NbiError } from "../../src/errors.js";
import {
  type KeyValueBackend,
  memoryStore,
  openKeyedStore,
} from "../../src/inference/memory-store.js";
import { openStore } from "../../src/inference/store.js";
import type { TrainCheckpoint } from "../../src/inference/train.js";
import { type ContractTarget, storeContract } from "./store-contract.js";

function mapBackend(): KeyValueBackend {
  const values = new Map<string, unknown>();
  return {
    get: async (key) => structuredClone(values.get(key)),
    put: async (key, value) => void values.set(key, structuredClone(value)),
    keys: async (prefix) => [...values.keys()].filter((k) => k.startsWith(prefix)),
  };
}

const memory: ContractTarget = { fresh: async (meta) => memoryStore(meta) };

let backend = mapBackend();
const keyed: ContractTarget = {
  fresh: async (meta) => {
    backend = mapBackend();
    return openKeyedStore("openKeyedStore", "map:test", backend, meta);
  },
  reopen: async (meta) => openKeyedStore("openKeyedStore", "map:test", backend, meta),
};

const roots: string[] = [];
let lastDir = "";
const disk: ContractTarget = {
  fresh: async (meta) => {
    lastDir = await mkdtemp(join(tmpdir(), "nbi-contract-"));
    roots.push(lastDir);
    return openStore(lastDir, meta);
  },
  reopen: async (meta) => openStore(lastDir, meta),
};
afterAll(async () => {
  for (const dir of roots) await rm(dir, { recursive: true, force: true });
});

for (const [name, target] of [
  ["memoryStore", memory],
  ["keyed store on a shared backend", keyed],
  ["file store", disk],
] as const) {
  describe(`store contract: ${name}`, () => {
    for (const [what, run] of Object.entries(storeContract)) it(what, () => run(target));
  });
}

describe("memoryStore", () => {
  it("keeps an interrupted round's training on the handle", async () => {
    const store = memoryStore({ paramDim: 1, dataShape: [3] });
    const keeper = store.training!;
    const template = { params: {}, optState: {}, setup: "s" } as never;
    expect(await keeper.load(0, template)).toBeUndefined();
    const saved = { setup: "s", epoch: 2 } as unknown as TrainCheckpoint;
    await keeper.save(0, saved);
    expect(await keeper.load(0, template)).toBe(saved);
    expect(await keeper.load(1, template)).toBeUndefined();
    await keeper.remove(0);
    expect(await keeper.load(0, template)).toBeUndefined();
    expect(keeper.where(0)).toContain("round-000");
  });

  it("refuses bad meta naming the argument", () => {
    expect(() => memoryStore({ paramDim: 0, dataShape: [3] })).toThrow(NbiError);
    expect(() => memoryStore({ paramDim: 0, dataShape: [3] })).toThrow(/meta\.paramDim/);
    expect(() => memoryStore({ paramDim: 1, dataShape: [0] })).toThrow(/meta\.dataShape/);
    expect(() => memoryStore({ paramDim: 2, dataShape: [3], labels: ["a"] })).toThrow(
      /meta\.labels/,
    );
  });
});
