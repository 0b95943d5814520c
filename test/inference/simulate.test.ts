import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NbiError } from "../../src/errors.js";
// Registers the worker-thread runner of `{ module }` simulators (simulate.ts has no Node imports).
import "../../src/inference/simulation/pool.js";
import {
  type SimulateOptions,
  type SimulationChunk,
  type SimulationReport,
  SimulationStatus,
  type SimulatorFn,
  simulate,
  type WorkerSimulatorSpec,
} from "../../src/inference/simulation/simulate.js";

const fixture = (name: string) =>
  fileURLToPath(new URL(`../fixtures/simulators/${name}`, import.meta.url));
const BASIC = fixture("basic.mjs");
const CRASH = fixture("crash.mjs");

/** θ row i is [i − 4, 0.5 i], so rows 0–3 have θ0 < 0 and row 7 has θ0 = 3. */
function thetaRows(n: number): Float64Array {
  return Float64Array.from({ length: 2 * n }, (_, k) =>
    k % 2 === 0 ? k / 2 - 4 : 0.5 * ((k - 1) / 2),
  );
}
const allIndices = (n: number) => Int32Array.from({ length: n }, (_, i) => i);
const seedsFor = (n: number) => Uint32Array.from({ length: n }, (_, i) => 1000 + 37 * i);

interface Collected {
  report: SimulationReport;
  chunks: SimulationChunk[];
  /** Per simulated index: its status and output row. */
  rows: Map<number, { status: number; x: number[] }>;
}

async function run(
  simulator: SimulatorFn | WorkerSimulatorSpec,
  n: number,
  options: SimulateOptions = {},
  indices = allIndices(n),
): Promise<Collected> {
  const chunks: SimulationChunk[] = [];
  const report = await simulate(
    simulator,
    {
      theta: thetaRows(n),
      paramDim: 2,
      indices,
      seeds: seedsFor(n),
      onChunk: (chunk) => {
        chunks.push(chunk);
      },
    },
    options,
  );
  return { report, chunks, rows: rowsOf(chunks, report.size) };
}

function rowsOf(chunks: SimulationChunk[], size: number) {
  const rows = new Map<number, { status: number; x: number[] }>();
  for (const c of chunks) {
    c.index.forEach((i, j) => {
      expect(rows.has(i), `index ${i} delivered twice`).toBe(false);
      rows.set(i, { status: c.status[j]!, x: Array.from(c.x.subarray(j * size, (j + 1) * size)) });
    });
  }
  return rows;
}

const basic: SimulatorFn = (theta, info) => {
  const [a, b] = [theta[0]!, theta[1]!];
  return [a + b, a * b, Math.sin(a), info.seed % 997];
};
const f32 = (v: number[]) => Array.from(Float32Array.from(v));

describe("simulate in-process", () => {
  it("runs a sync simulator once per index with its seed, in chunks", async () => {
    const progress: number[] = [];
    const indices = Int32Array.of(9, 2, 5, 0, 7);
    const { report, chunks, rows } = await run(
      basic,
      10,
      { chunkSize: 2, onProgress: (done, total) => progress.push(done / total) },
      indices,
    );
    expect(report).toEqual({ ok: 5, nonFinite: 0, threw: 0, crashed: 0, size: 4 });
    expect(chunks.map((c) => c.index.length)).toEqual([2, 2, 1]);
    expect([...rows.keys()]).toEqual([9, 2, 5, 0, 7]);
    const theta = thetaRows(10);
    for (const i of indices) {
      const row = theta.subarray(2 * i, 2 * i + 2);
      expect(rows.get(i)).toEqual({
        status: 0,
        x: f32(basic(row, { index: i, seed: 1000 + 37 * i }) as number[]),
      });
    }
    expect(progress).toEqual([0.2, 0.4, 0.6, 0.8, 1]);
  });

  it("also cuts a chunk when flushIntervalMs has passed since the last one", async () => {
    const { chunks } = await run(basic, 5, { chunkSize: 100, flushIntervalMs: 0 });
    expect(chunks.map((c) => Array.from(c.index))).toEqual([[0], [1], [2], [3], [4]]);
  });

  it("runs an async simulator and takes the length of the first output when none is given", async () => {
    const asyncSim: SimulatorFn = async (theta, info) => {
      await new Promise((resolve) => setTimeout(resolve, 1));
      return Float64Array.from(basic(theta, info) as number[]);
    };
    const a = await run(asyncSim, 6);
    const b = await run(basic, 6);
    expect(a.report.size).toBe(4);
    expect([...a.rows.entries()].sort()).toEqual([...b.rows.entries()].sort());
  });

  it("counts NaN outputs and simulators that throw, and goes on", async () => {
    const flaky: SimulatorFn = (theta, info) => {
      if (theta[0] === -4) throw new Error("no convergence at θ0 = -4");
      if (theta[0] === -3) throw "a string";
      const out = basic(theta, info) as number[];
      if (theta[0]! < 0) out[2] = Number.POSITIVE_INFINITY;
      if (theta[0] === 5) out[0] = 1e39; // beyond float32: Infinity once stored
      return out;
    };
    const { report, rows } = await run(flaky, 10);
    expect(report).toEqual({
      ok: 5,
      nonFinite: 3,
      threw: 2,
      crashed: 0,
      firstError: "no convergence at θ0 = -4",
      size: 4,
    });
    expect(report.ok + report.nonFinite + report.threw).toBe(10);
    expect(rows.get(0)!.status).toBe(SimulationStatus.threw);
    expect(rows.get(0)!.x.every(Number.isNaN)).toBe(true);
    expect(rows.get(2)!.status).toBe(SimulationStatus.nonFinite);
    expect(rows.get(9)!.status).toBe(SimulationStatus.nonFinite);
    expect(rows.get(4)!.status).toBe(SimulationStatus.ok);
  });

  it("stops on an output of the wrong length, naming index, θ and both lengths", async () => {
    const chunks: SimulationChunk[] = [];
    const buggy: SimulatorFn = (theta, info) =>
      info.index === 5 ? [1, 2, 3] : (basic(theta, info) as number[]);
    const job = {
      theta: thetaRows(10),
      paramDim: 2,
      indices: allIndices(10),
      expectedSize: 4,
      onChunk: (c: SimulationChunk) => {
        chunks.push(c);
      },
    };
    await expect(simulate(buggy, job, { chunkSize: 2 })).rejects.toThrow(
      "simulate: the output for index 5 (θ = [1, 2.5]) expected length 4, got length 3",
    );
    // The results before the bad one were still flushed.
    expect(chunks.flatMap((c) => Array.from(c.index))).toEqual([0, 1, 2, 3, 4]);
    const noExpected = simulate(buggy, { ...job, expectedSize: undefined });
    await expect(noExpected).rejects.toThrow(
      "expected length 4 (the length of the first output), got length 3",
    );
    await expect(simulate(() => 3 as never, job)).rejects.toThrow(
      "simulate: the output for index 0 (θ = [-4, 0]) expected an array of numbers, got 3",
    );
  });

  it("validates its arguments", async () => {
    const job = {
      theta: thetaRows(3),
      paramDim: 2,
      indices: Int32Array.of(0, 3),
      onChunk: () => {},
    };
    await expect(simulate(basic, job)).rejects.toThrow(
      "simulate: job.indices expected values in [0, 3), got 3",
    );
    await expect(simulate(basic, { ...job, indices: Int32Array.of(1, 1) })).rejects.toThrow(
      "distinct values",
    );
    await expect(
      simulate(basic, { ...job, indices: Int32Array.of(0), seeds: new Uint32Array(2) }),
    ).rejects.toThrow("job.seeds expected a Uint32Array of length 3 (one seed per θ row)");
    const one = { ...job, indices: Int32Array.of(0) };
    await expect(simulate({ module: "relative/sim.mjs" }, one)).rejects.toThrow(
      'simulator.module expected an absolute path or file: URL of an ES module, got "relative/sim.mjs"',
    );
  });

  it("aborts between simulations after flushing finished results", async () => {
    const controller = new AbortController();
    const chunks: SimulationChunk[] = [];
    const run = simulate(
      (theta, info) => basic(theta, info),
      {
        theta: thetaRows(50),
        paramDim: 2,
        indices: allIndices(50),
        onChunk: (c) => {
          chunks.push(c);
        },
      },
      {
        signal: controller.signal,
        chunkSize: 100,
        onProgress: (done) => {
          if (done === 7) controller.abort(new Error("stop now"));
        },
      },
    );
    await expect(run).rejects.toThrow("stop now");
    expect(chunks.flatMap((c) => Array.from(c.index))).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });

  it("stops when onChunk fails and rethrows its error", async () => {
    let calls = 0;
    const job = {
      theta: thetaRows(10),
      paramDim: 2,
      indices: allIndices(10),
      onChunk: () => {
        calls++;
        throw new Error("disk full");
      },
    };
    await expect(simulate(basic, job, { chunkSize: 1 })).rejects.toThrow("disk full");
    expect(calls).toBe(1);
  });
});

describe("simulate in worker threads", () => {
  let markers: string;
  beforeAll(async () => {
    markers = await mkdtemp(join(tmpdir(), "nbi-markers-"));
    process.env.NBI_TEST_MARKERS = markers;
  });
  afterAll(async () => {
    await rm(markers, { recursive: true, force: true });
  });

  it("gives the same results with 1, 2 or 3 workers as in-process", async () => {
    const reference = await run(basic, 23);
    for (const workers of [1, 2, 3]) {
      const { report, rows } = await run({ module: BASIC }, 23, { workers, chunkSize: 4 });
      expect(report).toEqual(reference.report);
      expect(new Map([...rows].sort((a, b) => a[0] - b[0]))).toEqual(
        new Map([...reference.rows].sort((a, b) => a[0] - b[0])),
      );
    }
  });

  it("counts NaN outputs and throwing simulators, from a file URL and a named export", async () => {
    const url = pathToFileURL(BASIC).href;
    const nan = await run({ module: url, exportName: "nanForNegative" }, 8, { workers: 2 });
    expect(nan.report).toEqual({ ok: 4, nonFinite: 4, threw: 0, crashed: 0, size: 4 });
    const threw = await run({ module: url, exportName: "throwsForNegative" }, 8, { workers: 2 });
    expect(threw.report).toMatchObject({ ok: 4, nonFinite: 0, threw: 4, crashed: 0 });
    expect(threw.report.firstError).toMatch(/^negative amplitude -\d$/);
    expect(threw.rows.get(1)!.status).toBe(SimulationStatus.threw);
  });

  it("stops on a wrong output length in a worker", async () => {
    await expect(
      run({ module: BASIC, exportName: "wrongLengthAt5" }, 8, { workers: 2 }),
    ).rejects.toThrow("the output for index 5 (θ = [1, 2.5]) expected length 4");
  });

  it("replaces a worker that exits; its θ is retried once, then counted as crashed", async () => {
    const { report, rows } = await run({ module: CRASH }, 12, { workers: 2 });
    expect(report).toMatchObject({ ok: 11, nonFinite: 0, threw: 0, crashed: 1, size: 4 });
    expect(report.firstCrash).toBe("the worker exited with code 7");
    expect(rows.get(7)!.status).toBe(SimulationStatus.crashed);
    expect(rows.get(7)!.x.every(Number.isNaN)).toBe(true);
    expect(rows.size).toBe(12);

    const once = await run({ module: CRASH, exportName: "exitOnceAt3" }, 12, { workers: 2 });
    expect(once.report).toMatchObject({ ok: 12, crashed: 0 });
    expect(once.rows.get(7)!.x).toEqual(
      f32([3 + 3.5, 3 * 3.5, Math.sin(3), (1000 + 37 * 7) % 997]),
    );
  });

  it("treats an uncaught error outside the simulator call as a crash", async () => {
    const { report } = await run({ module: CRASH, exportName: "uncaughtAt3" }, 10, { workers: 1 });
    expect(report).toMatchObject({ ok: 9, crashed: 1 });
    expect(report.firstCrash).toBe("boom outside the simulator call");
  });

  it("explains a module that cannot be loaded", async () => {
    await expect(run({ module: BASIC, exportName: "nope" }, 3, { workers: 2 })).rejects.toThrow(
      /cannot load the simulator .*basic\.mjs: expected a function export "nope", found exports: default, nanForNegative/,
    );
    await expect(run({ module: fixture("missing.mjs") }, 3)).rejects.toThrow(
      /simulator.module expected an existing file, got file:.*missing\.mjs/,
    );
  });

  it("loads a TypeScript simulator through tsx", async () => {
    const { report, rows } = await run({ module: fixture("typed.ts"), exportName: "typed" }, 5, {
      workers: 1,
    });
    const reference = await run(basic, 5);
    expect(report).toEqual(reference.report);
    expect(rows).toEqual(reference.rows);
  });

  it("aborts promptly, terminating workers, after flushing finished results", async () => {
    const controller = new AbortController();
    const chunks: SimulationChunk[] = [];
    let finished = 0;
    const started = Date.now();
    const pending = simulate(
      { module: BASIC, exportName: "slow" },
      {
        theta: thetaRows(200),
        paramDim: 2,
        indices: allIndices(200),
        onChunk: (c) => {
          chunks.push(c);
        },
      },
      {
        workers: 2,
        chunkSize: 1000,
        signal: controller.signal,
        onProgress: (done) => {
          finished = done;
          if (done === 6) controller.abort();
        },
      },
    );
    await expect(pending).rejects.toThrow(/aborted/i);
    // 200 θ at 20 ms on 2 workers would take 2 s.
    expect(Date.now() - started).toBeLessThan(1500);
    expect(chunks.reduce((s, c) => s + c.index.length, 0)).toBe(finished);
    expect(finished).toBeGreaterThanOrEqual(6);
  });

  it("rejects at once when already aborted, and runs nothing for no indices", async () => {
    const job = { theta: thetaRows(3), paramDim: 2, indices: allIndices(3), onChunk: () => {} };
    await expect(simulate({ module: BASIC }, job, { signal: AbortSignal.abort() })).rejects.toThrow(
      /aborted/i,
    );
    const empty = await simulate(
      { module: BASIC },
      { ...job, indices: new Int32Array(0), expectedSize: 4 },
    );
    expect(empty).toEqual({ ok: 0, nonFinite: 0, threw: 0, crashed: 0, size: 4 });
  });

  it("rejects a malformed simulator argument", async () => {
    const job = { theta: thetaRows(1), paramDim: 2, indices: allIndices(1), onChunk: () => {} };
    await expect(simulate({} as WorkerSimulatorSpec, job)).rejects.toThrow(NbiError);
  });
});
