/**
 * What every `SimulationStore` must do, as named checks that throw on a failure: round θ, chunks
 * appended and merged, JSON records, the fingerprint, and (where the store can be reopened) that
 * a second handle sees it all. Free of vitest and Node so the browser test runs the same checks
 * on the IndexedDB store in Chromium (test/browser/web-engine.test.ts).
 */
import type { SimulationStore, StoreMeta } from "../../src/inference/store.js";

export const CONTRACT_META: StoreMeta = { paramDim: 2, dataShape: [2, 3], labels: ["a", "b"] };
const SIZE = 6;
const theta5 = () => Float64Array.from({ length: 10 }, (_, k) => k * 0.25);
const rowsX = (rows: number[]) =>
  Float32Array.from(rows.flatMap((i) => Array.from({ length: SIZE }, (_, j) => 10 * i + j)));

export interface ContractTarget {
  /** A fresh, empty store with `meta`. */
  fresh(meta: StoreMeta): Promise<SimulationStore>;
  /** Another handle on the store `fresh` made last (omitted: the store cannot be reopened). */
  reopen?(meta: StoreMeta): Promise<SimulationStore>;
}

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(what);
}

function same(a: ArrayLike<number>, b: ArrayLike<number>, what: string): void {
  const la = Array.from(a);
  const lb = Array.from(b);
  const eq = la.length === lb.length && la.every((v, i) => Object.is(v, lb[i]));
  check(eq, `${what}: got [${la.join(", ")}], expected [${lb.join(", ")}]`);
}

async function rejects(p: Promise<unknown>, pattern: RegExp, what: string): Promise<void> {
  try {
    await p;
  } catch (error) {
    const message = (error as Error).message;
    check(
      (error as Error).name === "NbiError" && pattern.test(message),
      `${what}: threw ${(error as Error).name}: ${message}`,
    );
    return;
  }
  throw new Error(`${what}: did not throw`);
}

/** The checks, by name; each takes a target and throws on a failure. */
export const storeContract: Record<string, (t: ContractTarget) => Promise<void>> = {
  "round θ: written once, read back, rewritten only with the same values": async (t) => {
    const store = await t.fresh(CONTRACT_META);
    check(store.size === SIZE, `size ${store.size}, expected ${SIZE}`);
    same(await store.rounds(), [], "rounds of a fresh store");
    check((await store.roundParams(0)) === undefined, "roundParams of an unwritten round");
    const theta = theta5();
    await store.writeRoundParams(2, theta);
    await store.writeRoundParams(0, theta5());
    theta[0] = 99; // the store keeps its own copy
    same((await store.roundParams(2))!, theta5(), "θ read back");
    same(await store.rounds(), [0, 2], "rounds, ascending");
    await store.writeRoundParams(2, theta5()); // a resumed run writes the same θ again
    await rejects(
      store.writeRoundParams(2, Float64Array.of(1, 2)),
      /differ/,
      "different θ for a written round",
    );
    await rejects(store.writeRoundParams(1, Float64Array.of(1, 2, 3)), /theta/, "ragged θ");
    await rejects(store.roundParams(-1), /round/, "a negative round");
  },

  "chunks: appended, merged by index, the last write of a row wins, bad ones refused": async (
    t,
  ) => {
    const store = await t.fresh(CONTRACT_META);
    const chunk = { index: Int32Array.of(0), x: rowsX([0]), status: Uint8Array.of(0) };
    await rejects(store.appendChunk(0, chunk), /writeRoundParams first/, "a chunk before θ");
    await store.writeRoundParams(0, theta5());
    await store.appendChunk(0, {
      index: Int32Array.of(3, 1),
      x: rowsX([3, 1]),
      status: Uint8Array.of(0, 1),
    });
    await store.appendChunk(0, {
      index: Int32Array.of(4),
      x: new Float32Array(SIZE).fill(Number.NaN),
      status: Uint8Array.of(2),
    });
    const nan = rowsX([0]).fill(7);
    nan[2] = Number.NaN; // marked ok although not finite: re-marked on reading
    await store.appendChunk(0, { index: Int32Array.of(0), x: nan, status: Uint8Array.of(0) });
    let round = await store.readRound(0);
    check(round.n === 5, `n ${round.n}, expected 5`);
    same(round.done, [1, 1, 0, 1, 1], "done");
    same(round.status, [1, 1, 0, 0, 2], "status");
    same(round.x.subarray(3 * SIZE, 4 * SIZE), rowsX([3]), "row 3's output");
    check(round.x.subarray(2 * SIZE, 3 * SIZE).every(Number.isNaN), "a row not done is NaN");
    check(round.remarked === 1, `remarked ${round.remarked}, expected 1`);
    // Row 1 simulated again: the later chunk wins.
    await store.appendChunk(0, {
      index: Int32Array.of(1),
      x: rowsX([5]),
      status: Uint8Array.of(0),
    });
    round = await store.readRound(0);
    same(round.status, [1, 0, 0, 0, 2], "status after re-simulating row 1");
    same(round.x.subarray(SIZE, 2 * SIZE), rowsX([5]), "row 1 after re-simulating it");
    await rejects(
      store.appendChunk(0, {
        index: Int32Array.of(1),
        x: new Float32Array(2),
        status: Uint8Array.of(0),
      }),
      /chunk\.x/,
      "a chunk of the wrong output length",
    );
    await rejects(
      store.appendChunk(0, { index: Int32Array.of(5), x: rowsX([5]), status: Uint8Array.of(0) }),
      /chunk\.index/,
      "an index outside θ",
    );
    await rejects(
      store.appendChunk(0, { index: Int32Array.of(2), x: rowsX([2]), status: Uint8Array.of(9) }),
      /chunk\.status/,
      "an unknown status",
    );
    await rejects(store.readRound(1), /round/, "reading a round without θ");
  },

  "JSON records: written, read back as JSON, missing ones undefined, bad names refused": async (
    t,
  ) => {
    const store = await t.fresh(CONTRACT_META);
    await store.writeJson(0, "history", { neff: [1.5, Number.NaN], at: "x" });
    const back = await store.readJson<{ neff: unknown[]; at: string }>(0, "history");
    check(
      JSON.stringify(back) === JSON.stringify({ neff: [1.5, null], at: "x" }),
      `record read back: ${JSON.stringify(back)}`,
    );
    check((await store.readJson(0, "missing")) === undefined, "a missing record");
    check((await store.readJson(3, "history")) === undefined, "a record of another round");
    await rejects(store.writeJson(0, "../escape", {}), /name/, "a record name with a slash");
  },

  "fingerprint: none at first, recorded as a copy, replaced": async (t) => {
    const store = await t.fresh(CONTRACT_META);
    check((await store.fingerprint()) === undefined, "fingerprint of a fresh store");
    const print = { seed: 1, simulator: "abc" };
    await store.writeFingerprint(print);
    print.seed = 2;
    check(
      JSON.stringify(await store.fingerprint()) === JSON.stringify({ seed: 1, simulator: "abc" }),
      `fingerprint read back: ${JSON.stringify(await store.fingerprint())}`,
    );
    await store.writeFingerprint({ seed: 3 });
    check((await store.fingerprint())?.seed === 3, "fingerprint replaced");
  },

  "reopened: another handle sees θ, chunks, records and the fingerprint; other shapes refused":
    async (t) => {
      if (!t.reopen) return;
      const store = await t.fresh(CONTRACT_META);
      await store.writeRoundParams(0, theta5());
      await store.appendChunk(0, {
        index: Int32Array.of(2),
        x: rowsX([2]),
        status: Uint8Array.of(0),
      });
      await store.writeJson(0, "record", { a: 1 });
      await store.writeFingerprint({ seed: 4 });
      const again = await t.reopen({ paramDim: 2, dataShape: [2, 3] });
      same(again.meta.labels ? [again.meta.labels.length] : [], [2], "labels kept");
      same(await again.rounds(), [0], "rounds of the reopened store");
      const round = await again.readRound(0);
      same(round.done, [0, 0, 1, 0, 0], "done in the reopened store");
      same(round.x.subarray(2 * SIZE, 3 * SIZE), rowsX([2]), "row 2 in the reopened store");
      check((await again.readJson<{ a: number }>(0, "record"))?.a === 1, "record reopened");
      check((await again.fingerprint())?.seed === 4, "fingerprint reopened");
      // A new chunk from the second handle does not overwrite the first handle's.
      await again.appendChunk(0, {
        index: Int32Array.of(4),
        x: rowsX([4]),
        status: Uint8Array.of(0),
      });
      same((await store.readRound(0)).done, [0, 0, 1, 0, 1], "both handles' chunks");
      await rejects(t.reopen({ paramDim: 3, dataShape: [2, 3] }), /paramDim/, "another paramDim");
    },
};
