import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NbiError } from "../../src/errors.js";
import { simulate } from "../../src/inference/simulation/simulate.js";
import { encodeNpy } from "../../src/io/npy.js";
// Registers the worker-thread runner of `{ module }` simulators (simulate.ts has no Node imports).
import "../../src/inference/simulation/pool.js";
import { openStore, pendingIndices } from "../../src/inference/store.js";
import {
  KILL_RESUME_META,
  KILL_RESUME_N,
  killResumeTheta,
  loggingSimulator,
} from "../fixtures/store/kill-resume-model.js";

const META = { paramDim: 2, dataShape: [2, 3], labels: ["a", "b"] } as const;
const SIZE = 6;
const theta5 = Float64Array.from({ length: 10 }, (_, k) => k * 0.25);
const rowsX = (rows: number[]) =>
  Float32Array.from(rows.flatMap((i) => Array.from({ length: SIZE }, (_, j) => 10 * i + j)));

describe("simulation store", () => {
  let root: string;
  let count = 0;
  const fresh = () => join(root, `store-${count++}`);
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "nbi-store-"));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it("round-trips θ, chunks and JSON records, and reopens", async () => {
    const dir = fresh();
    const store = await openStore(dir, META);
    expect(store.size).toBe(SIZE);
    expect(await store.rounds()).toEqual([]);
    expect(await store.roundParams(0)).toBeUndefined();
    await store.writeRoundParams(0, theta5);
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
    await store.writeJson(0, "history", { neff: [1.5] });

    const again = await openStore(dir, { paramDim: 2, dataShape: [2, 3] });
    expect(again.meta.labels).toEqual(["a", "b"]);
    expect(await again.rounds()).toEqual([0]);
    const round = await again.readRound(0);
    expect(round.n).toBe(5);
    expect(round.theta).toEqual(theta5);
    expect(Array.from(round.done)).toEqual([0, 1, 0, 1, 1]);
    expect(Array.from(round.status)).toEqual([0, 1, 0, 0, 2]);
    expect(Array.from(round.x.subarray(3 * SIZE, 4 * SIZE))).toEqual(Array.from(rowsX([3])));
    expect(Array.from(round.x.subarray(SIZE, 2 * SIZE))).toEqual(Array.from(rowsX([1])));
    for (const i of [0, 2, 4]) {
      expect(round.x.subarray(i * SIZE, (i + 1) * SIZE).every(Number.isNaN)).toBe(true);
    }
    expect(Array.from(pendingIndices(round.done))).toEqual([0, 2]);
    expect(await again.readJson(0, "history")).toEqual({ neff: [1.5] });
    expect(await again.readJson(0, "missing")).toBeUndefined();
    expect(again.roundDir(0)).toBe(join(dir, "round-000"));

    const manifest = JSON.parse(await readFile(join(dir, "manifest.json"), "utf8"));
    expect(manifest).toEqual({
      format: "nbi-store",
      version: 1,
      paramDim: 2,
      dataShape: [2, 3],
      labels: ["a", "b"],
      rounds: [{ round: 0, n: 5, dir: "round-000" }],
    });
  });

  it("accepts the same θ again but refuses different θ for a round", async () => {
    const store = await openStore(fresh(), META);
    await store.writeRoundParams(2, theta5);
    await store.writeRoundParams(2, theta5.slice());
    const other = theta5.slice();
    other[3] = 99;
    await expect(store.writeRoundParams(2, other)).rejects.toThrow(
      /writeRoundParams: round 2 of the store .* already has 5 θ rows that differ from the 5 given/,
    );
    await expect(store.writeRoundParams(1, new Float64Array(3))).rejects.toThrow(
      "writeRoundParams: theta expected a Float64Array whose length is a multiple of paramDim 2",
    );
    await expect(
      store.appendChunk(0, { index: Int32Array.of(0), x: rowsX([0]), status: Uint8Array.of(0) }),
    ).rejects.toThrow(/call writeRoundParams first/);
    await expect(
      store.appendChunk(2, { index: Int32Array.of(5), x: rowsX([5]), status: Uint8Array.of(0) }),
    ).rejects.toThrow("appendChunk: chunk.index expected values in [0, 5), got 5");
    await expect(
      store.appendChunk(2, { index: Int32Array.of(0), x: rowsX([0, 1]), status: Uint8Array.of(0) }),
    ).rejects.toThrow("chunk.x expected a Float32Array of length 1 × 6, got");
    expect(await store.rounds()).toEqual([2]);
  });

  it("ignores temporary files and chunks without an index file, and never reuses their numbers", async () => {
    const dir = fresh();
    const store = await openStore(dir, META);
    await store.writeRoundParams(0, theta5);
    await store.appendChunk(0, {
      index: Int32Array.of(0),
      x: rowsX([0]),
      status: Uint8Array.of(0),
    });
    // What a kill mid-write leaves: a half-written temp file and a chunk whose index never landed.
    const folder = store.roundDir(0);
    await writeFile(join(folder, "chunk-000001.index.npy.tmp-123-4"), "half");
    await writeFile(
      join(folder, "chunk-000001.x.npy"),
      encodeNpy({ data: rowsX([2]), shape: [1, 2, 3] }),
    );
    await writeFile(
      join(folder, "chunk-000001.status.npy"),
      encodeNpy({ data: Uint8Array.of(0), shape: [1] }),
    );
    const before = await (await openStore(dir, META)).readRound(0);
    expect(Array.from(before.done)).toEqual([1, 0, 0, 0, 0]);

    const resumed = await openStore(dir, META);
    await resumed.appendChunk(0, {
      index: Int32Array.of(2),
      x: rowsX([2]),
      status: Uint8Array.of(0),
    });
    const names = (await readdir(folder)).filter((f) => f.endsWith(".index.npy")).sort();
    expect(names).toEqual(["chunk-000000.index.npy", "chunk-000002.index.npy"]);
    expect(Array.from((await resumed.readRound(0)).done)).toEqual([1, 0, 1, 0, 0]);
  });

  it("refuses a store made for another model, naming the folder and both values", async () => {
    const dir = fresh();
    await openStore(dir, META);
    await expect(openStore(dir, { paramDim: 3, dataShape: [2, 3] })).rejects.toThrow(
      `openStore: the store ${dir} holds simulations with paramDim 2, but meta.paramDim is 3`,
    );
    await expect(openStore(dir, { paramDim: 2, dataShape: [6] })).rejects.toThrow(
      `the store ${dir} holds simulations with dataShape [2, 3], but meta.dataShape is [6]`,
    );
    await expect(openStore(dir, { ...META, labels: ["a", "c"] })).rejects.toThrow(
      'labels ["a", "b"], but meta.labels is ["a", "c"]',
    );
    const stranger = fresh();
    await mkdir(stranger);
    await writeFile(join(stranger, "notes.txt"), "mine");
    await expect(openStore(stranger, META)).rejects.toThrow(
      /openStore: dir expected an empty folder or an nbi store \(with manifest.json\)/,
    );
    await expect(openStore(fresh(), { paramDim: 2, dataShape: [0] })).rejects.toThrow(NbiError);
  });

  it("merges chunks from several writers, numbering each writer's chunks on its own", async () => {
    const dir = fresh();
    const main = await openStore(dir, META);
    await main.writeRoundParams(0, theta5);
    // Two shards open the same store at once, each under its own writer name.
    const [s0, s1] = await Promise.all([
      openStore(dir, META, { writer: "s000" }),
      openStore(dir, META, { writer: "s001" }),
    ]);
    expect(s0.writer).toBe("s000");
    expect(main.writer).toBeUndefined();
    await Promise.all([
      s0.appendChunk(0, { index: Int32Array.of(0), x: rowsX([0]), status: Uint8Array.of(0) }),
      s1.appendChunk(0, { index: Int32Array.of(1), x: rowsX([1]), status: Uint8Array.of(0) }),
    ]);
    await s0.appendChunk(0, { index: Int32Array.of(2), x: rowsX([2]), status: Uint8Array.of(2) });
    await main.appendChunk(0, { index: Int32Array.of(3), x: rowsX([3]), status: Uint8Array.of(0) });
    const names = (await readdir(main.roundDir(0))).filter((f) => f.endsWith(".index.npy")).sort();
    expect(names).toEqual([
      "chunk-000000.index.npy",
      "chunk-s000-000000.index.npy",
      "chunk-s000-000001.index.npy",
      "chunk-s001-000000.index.npy",
    ]);
    // A fresh handle of a writer continues after that writer's own chunks (finished or not).
    await writeFile(join(main.roundDir(0), "chunk-s001-000001.x.npy.tmp-1-1"), "half");
    await writeFile(
      join(main.roundDir(0), "chunk-s001-000004.x.npy"),
      encodeNpy({ data: rowsX([4]), shape: [1, 2, 3] }),
    );
    const s1again = await openStore(dir, META, { writer: "s001" });
    await s1again.appendChunk(0, {
      index: Int32Array.of(4),
      x: rowsX([4]),
      status: Uint8Array.of(0),
    });
    expect(existsSync(join(main.roundDir(0), "chunk-s001-000005.index.npy"))).toBe(true);

    const round = await (await openStore(dir, META)).readRound(0);
    expect(Array.from(round.done)).toEqual([1, 1, 1, 1, 1]);
    expect(Array.from(round.status)).toEqual([0, 0, 2, 0, 0]);
    expect(Array.from(round.x.subarray(SIZE, 2 * SIZE))).toEqual(Array.from(rowsX([1])));
    expect(Array.from(round.x.subarray(4 * SIZE))).toEqual(Array.from(rowsX([4])));
    // The unnamed writer's numbering ignores the shards' chunks.
    await main.appendChunk(0, { index: Int32Array.of(4), x: rowsX([4]), status: Uint8Array.of(0) });
    expect(existsSync(join(main.roundDir(0), "chunk-000001.index.npy"))).toBe(true);
  });

  it("reads chunks in file-name order: unprefixed first, then writers in code-unit order", async () => {
    const dir = fresh();
    const store = await openStore(dir, META);
    await store.writeRoundParams(0, theta5);
    const write = async (writer: string | undefined, value: number) => {
      const handle = await openStore(dir, META, writer === undefined ? {} : { writer });
      await handle.appendChunk(0, {
        index: Int32Array.of(0),
        x: new Float32Array(SIZE).fill(value),
        status: Uint8Array.of(0),
      });
    };
    await write("s001", 1);
    await write("s000", 2);
    await write(undefined, 3);
    // The same row simulated three times: the last in name order (s001) wins.
    expect((await store.readRound(0)).x[0]).toBe(1);
    await write("t", 4);
    expect((await store.readRound(0)).x[0]).toBe(4);
  });

  it("refuses a writer name that could not be told apart from a chunk number", async () => {
    const dir = fresh();
    for (const writer of ["", "3s", "s-1", "a.b", "a b"]) {
      await expect(openStore(dir, META, { writer })).rejects.toThrow(
        /openStore: options.writer expected a name of letters, digits and '_' that starts with a letter/,
      );
    }
    expect((await openStore(dir, META, { writer: "node_7" })).writer).toBe("node_7");
  });

  it("stores what simulate produces in worker threads", async () => {
    const store = await openStore(fresh(), { paramDim: 2, dataShape: [4] });
    const theta = Float64Array.from({ length: 24 }, (_, k) => k / 3);
    await store.writeRoundParams(1, theta);
    const module = fileURLToPath(new URL("../fixtures/simulators/basic.mjs", import.meta.url));
    const report = await simulate(
      { module },
      {
        theta,
        paramDim: 2,
        indices: Int32Array.from({ length: 12 }, (_, i) => i),
        expectedSize: store.size,
        onChunk: (chunk) => store.appendChunk(1, chunk),
      },
      { workers: 2, chunkSize: 5 },
    );
    expect(report.ok).toBe(12);
    const round = await store.readRound(1);
    expect(round.done.every((d) => d === 1)).toBe(true);
    expect(round.x[4 * 5]).toBeCloseTo(theta[10]! + theta[11]!, 5);
  });

  it("resumes after SIGKILL without losing a finished chunk or re-running a stored index", async () => {
    const dir = fresh();
    const log = join(root, "kill-resume.log");
    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        fileURLToPath(new URL("../fixtures/store/kill-resume-child.ts", import.meta.url)),
        dir,
        log,
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let stderr = "";
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    const exited = new Promise((resolve) => child.on("exit", resolve));
    // Kill once at least three chunks (9 simulations) are committed.
    const folder = join(dir, "round-000");
    const committed = async () =>
      existsSync(folder)
        ? (await readdir(folder)).filter((f) => f.endsWith(".index.npy")).length
        : 0;
    const deadline = Date.now() + 20_000;
    while ((await committed()) < 3) {
      if (child.exitCode !== null || Date.now() > deadline) {
        throw new Error(`the child stopped early (code ${child.exitCode}): ${stderr}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    child.kill("SIGKILL");
    expect(await exited).toBe(null);

    const store = await openStore(dir, KILL_RESUME_META);
    const atKill = await store.readRound(0);
    const stored = [...atKill.done.keys()].filter((i) => atKill.done[i] === 1);
    expect(stored.length).toBeGreaterThanOrEqual(9);
    expect(stored.length).toBeLessThan(KILL_RESUME_N);
    const runsBeforeResume = (await readFile(log, "utf8")).trim().split("\n").map(Number);

    const todo = pendingIndices(atKill.done);
    await simulate(loggingSimulator(log, 0), {
      theta: atKill.theta,
      paramDim: 2,
      indices: todo,
      expectedSize: 2,
      onChunk: (chunk) => store.appendChunk(0, chunk),
    });

    const round = await store.readRound(0);
    expect(round.theta).toEqual(killResumeTheta());
    expect(round.done.every((d) => d === 1)).toBe(true);
    for (let i = 0; i < KILL_RESUME_N; i++) {
      expect([round.x[2 * i], round.x[2 * i + 1]]).toEqual([2 * i, Math.fround(i / 10 + 1)]);
    }
    const runs = new Map<number, number>();
    for (const i of (await readFile(log, "utf8")).trim().split("\n").map(Number)) {
      runs.set(i, (runs.get(i) ?? 0) + 1);
    }
    // Stored indices ran once; only those the child ran but had not stored yet ran again: the
    // unflushed part of a chunk and the chunk being written, at most two chunks of three.
    for (const i of stored) expect(runs.get(i)).toBe(1);
    for (let i = 0; i < KILL_RESUME_N; i++) expect(runs.get(i)).toBeGreaterThanOrEqual(1);
    const rerun = [...runs].filter(([, c]) => c > 1).map(([i]) => i);
    expect(rerun.length).toBeLessThanOrEqual(6);
    for (const i of rerun) expect(runsBeforeResume).toContain(i);
  });

  const hasNumpy =
    spawnSync("/usr/bin/python3", ["-c", "import numpy"], { stdio: "ignore" }).status === 0;
  it.skipIf(!hasNumpy)("is readable from Python with numpy (skipped without numpy)", async () => {
    const dir = fresh();
    const store = await openStore(dir, META);
    await store.writeRoundParams(0, theta5);
    await store.appendChunk(0, {
      index: Int32Array.of(4, 0),
      x: rowsX([4, 0]),
      status: Uint8Array.of(0, 1),
    });
    const script = `
import glob, json, sys, numpy as np
d = sys.argv[1]
m = json.load(open(d + "/manifest.json"))
theta = np.load(d + "/round-000/theta.npy")
x = np.full((len(theta), *m["dataShape"]), np.nan, np.float32)
status = np.full(len(theta), 255, np.uint8)
for f in sorted(glob.glob(d + "/round-000/chunk-*.index.npy")):
    i = np.load(f)
    x[i] = np.load(f.replace(".index.npy", ".x.npy"))
    status[i] = np.load(f.replace(".index.npy", ".status.npy"))
print(json.dumps({"theta": theta.tolist(), "x4": x[4].tolist(), "status": status.tolist()}))
`;
    const out = spawnSync("/usr/bin/python3", ["-c", script, dir], { encoding: "utf8" });
    expect(out.stderr).toBe("");
    const parsed = JSON.parse(out.stdout);
    expect(parsed.theta).toEqual([...Array(5)].map((_, i) => [i * 0.5, i * 0.5 + 0.25]));
    expect(parsed.x4).toEqual([
      [40, 41, 42],
      [43, 44, 45],
    ]);
    expect(parsed.status).toEqual([1, 255, 255, 255, 0]);
  });
});
