/**
 * Runs you can trust (issue 16), through the API: a resumed fit is the same fit (fingerprint),
 * one writer per run folder (lock), loading is data-only and checks sizes before building,
 * an empty round is not fatal, training yields to the event loop (aborts from timers), hung
 * simulations time out and finished ones are written promptly, the store validates what it
 * reads (and a fuzz test garbles every file in turn), and mistakes are named before anything is
 * simulated. The process-level behaviour (signals, two processes, predict) is in
 * test/cli/integrity.test.ts.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { copyFile, cp, mkdtemp, readdir, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { NbiError } from "../../src/errors.js";
import { type FitOptions, NBI, type NbiOptions } from "../../src/inference/engine.js";
import { hostKey, normals } from "../../src/inference/host.js";
import { checkSavedSizes } from "../../src/inference/model-size.js";
import { initPosterior, posteriorNetwork } from "../../src/inference/posterior.js";
import { normal, uniform } from "../../src/inference/priors.js";
import { type SimulatorFn, simulate } from "../../src/inference/simulation/simulate.js";
import { openStore, type RoundData } from "../../src/inference/store.js";
import { encodeNpy } from "../../src/io/npy.js";
import * as tree from "../../src/trace/tree.js";

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
const tempDir = async () => {
  const d = await mkdtemp(join(tmpdir(), "nbi-integrity-"));
  dirs.push(d);
  return d;
};

const T = Array.from({ length: 8 }, (_, i) => i / 7);
const line = (theta: ArrayLike<number>) => Float64Array.from(T, (t) => theta[0]! + theta[1]! * t);
const priors = { a: normal(0, 1), b: uniform(-2, 2) };
const small = {
  flow: { nDims: 2, flowHidden: 16, numBlocks: 2 },
  featurizer: { type: "mlp" as const, dimIn: 8, dimOut: 8, hidden: [16] },
};
const eps = normals(hostKey(3), 8);
const xObs = Array.from(line([0.3, 1.1]), (v, i) => v + 0.2 * eps[i]!);
const quick: FitOptions = { nSims: 32, nEpochs: 1, batchSize: 16, noise: 0.2, progress: false };
const quick32 = quick;
const SIMULATORS = resolve("test/fixtures/integrity/simulators.mjs");
const LOCK = "nbi.lock";

/** An engine on the line problem whose simulator counts its calls. */
function lineEngine(path: string, extra: Partial<NbiOptions> = {}) {
  const counter = { calls: 0 };
  const engine = new NBI({
    ...small,
    simulator: (theta) => {
      counter.calls++;
      return line(theta);
    },
    priors,
    path,
    dataShape: [8],
    ...extra,
  });
  return { engine, counter };
}

describe("a resumed fit is the same fit (fingerprint)", () => {
  it("refuses a changed in-process simulator, saying how it is identified and what to do", async () => {
    const path = await tempDir();
    await lineEngine(path).engine.fit({ ...quick, xObs });
    let calls = 0;
    const changed = new NBI({
      ...small,
      simulator: (theta) => {
        calls++;
        return line(theta).map((v) => v + 100);
      },
      priors,
      path,
      dataShape: [8],
    });
    const error = await changed.fit({ ...quick, xObs }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NbiError);
    const message = (error as Error).message;
    expect(message).toMatch(/holds simulations made with another setup: simulator: the in-process/);
    expect(message).toMatch(/hash of fn\.toString\(\) because no simulatorVersion was given/);
    expect(message).toMatch(/resume: "never".*resume: "force"/);
    expect(calls).toBe(0);
  });

  it("names each changed setting: nSims, seed, prior, noise, observation, epochs", async () => {
    const path = await tempDir();
    await lineEngine(path).engine.fit({ ...quick, xObs });
    const refit = (options: Partial<FitOptions>, extra: Partial<NbiOptions> = {}) =>
      lineEngine(path, extra).engine.fit({ ...quick, xObs, ...options });
    await expect(refit({ nSims: 40 })).rejects.toThrow(/nSims 32 → 40/);
    await expect(refit({}, { seed: 1 })).rejects.toThrow(/seed 0 → 1/);
    await expect(refit({}, { priors: { a: normal(0, 2), b: uniform(-2, 2) } })).rejects.toThrow(
      /prior \{.* → \{/,
    );
    await expect(refit({ noise: 0.3 })).rejects.toThrow(/noise 0\.2 → 0\.3/);
    await expect(refit({ xObs: xObs.map((v) => v + 1) })).rejects.toThrow(/xObs changed/);
    await expect(refit({ nEpochs: 2 })).rejects.toThrow(/nEpochs 1 → 2/);
  });

  it("continues with more rounds, says what it resumed, and obeys resume: force and never", async () => {
    const path = await tempDir();
    const quick = { ...quick32, nSims: 64 }; // APT needs ≥ 10 validation rows (atoms) in round 1
    await lineEngine(path).engine.fit({ ...quick, xObs });
    const more = lineEngine(path);
    const resumed: string[] = [];
    const fit = await more.engine.fit({
      ...quick,
      xObs,
      nRounds: 2,
      onResume: (info) => resumed.push(info.message),
    });
    expect(resumed).toEqual([`resumed 1 round from ${path}`]);
    expect(fit.resumedRounds).toBe(1);
    expect(more.counter.calls).toBe(64); // round 1 only
    expect(fit.history).toHaveLength(2);

    const warnings: string[] = [];
    const forced = lineEngine(path);
    await forced.engine.fit({
      ...quick,
      xObs,
      nRounds: 2,
      nEpochs: 2,
      resume: "force",
      onWarning: (m) => warnings.push(m),
    });
    expect(warnings.some((w) => /despite a changed setup.*nEpochs 1 → 2/.test(w))).toBe(true);
    expect(forced.counter.calls).toBe(0);

    const fresh = lineEngine(path);
    const again = await fresh.engine.fit({ ...quick, xObs, nRounds: 2, resume: "never" });
    expect(fresh.counter.calls).toBe(128);
    expect(again.resumedRounds).toBe(0);
  });

  it("identifies a module simulator by its content, a function by simulatorVersion when given", async () => {
    const path = await tempDir();
    const module = join(path, "..", `${path.split("/").at(-1)}-line.mjs`);
    dirs.push(module);
    await copyFile(resolve("test/fixtures/simulators/line.mjs"), module);
    const moduleEngine = () =>
      new NBI({
        ...small,
        simulator: { module, exportName: "line" },
        priors,
        path,
        dataShape: [8],
        workers: 1,
      });
    await moduleEngine().fit({ ...quick, xObs });
    await moduleEngine().fit({ ...quick, xObs }); // unchanged: resumes
    await writeFile(module, `${await readFile(module, "utf8")}\n// an edit\n`);
    await expect(moduleEngine().fit({ ...quick, xObs })).rejects.toThrow(
      /simulator module .*-line\.mjs changed \(content hash [0-9a-f]{12} → [0-9a-f]{12}\)/,
    );

    const versioned = await tempDir();
    await lineEngine(versioned, { simulatorVersion: "1" }).engine.fit({ ...quick, xObs });
    // Another function's source, the same declared version: the version decides.
    const same = new NBI({
      ...small,
      simulator: (t) => Float64Array.from(line(t)),
      priors,
      path: versioned,
      dataShape: [8],
      simulatorVersion: "1",
    });
    await expect(same.fit({ ...quick, xObs })).resolves.toBeDefined();
    await expect(
      lineEngine(versioned, { simulatorVersion: "2" }).engine.fit({ ...quick, xObs }),
    ).rejects.toThrow(/simulatorVersion "1" → "2"/);
  });
});

describe("one writer per run folder (lock)", () => {
  it("refuses a second fit while one runs, naming the holder, and frees the folder after", async () => {
    const path = await tempDir();
    const slow = new NBI({
      ...small,
      simulator: async (theta) => {
        await new Promise((r) => setTimeout(r, 10));
        return line(theta);
      },
      priors,
      path,
      dataShape: [8],
      simulatorVersion: "line",
    });
    const first = slow.fit({ ...quick, xObs });
    while (!existsSync(join(path, LOCK))) await new Promise((r) => setTimeout(r, 5));
    const second = lineEngine(path);
    await expect(second.engine.fit({ ...quick, xObs })).rejects.toThrow(
      new RegExp(`in use by fit \\(pid ${process.pid} on .*\\); one writer at a time`),
    );
    expect(second.counter.calls).toBe(0);
    await first;
    expect(existsSync(join(path, LOCK))).toBe(false);
    const third = lineEngine(path, { simulatorVersion: "line" });
    await expect(third.engine.fit({ ...quick, xObs })).resolves.toBeDefined();
    expect(third.counter.calls).toBe(0); // resumed
  });

  it("takes over the lock of a dead process, and respects one held on another host", async () => {
    const path = await tempDir();
    const dead = spawnSync(process.execPath, ["-e", "0"]).pid!;
    const lockOf = (pid: number, host: string) =>
      JSON.stringify({ pid, host, started: "2020-01-01T00:00:00.000Z", purpose: "fit" });
    await writeFile(join(path, LOCK), lockOf(dead, hostname()));
    await expect(lineEngine(path).engine.fit({ ...quick, xObs })).resolves.toBeDefined();
    expect(existsSync(join(path, LOCK))).toBe(false);

    await writeFile(join(path, LOCK), lockOf(4242, "elsewhere.example"));
    await expect(lineEngine(path).engine.fit({ ...quick, xObs })).rejects.toThrow(
      /in use by fit \(pid 4242 on elsewhere\.example.*if that process is gone, delete .*nbi\.lock/,
    );
  });

  it("releases the lock when the fit fails", async () => {
    const path = await tempDir();
    const broken = new NBI({
      ...small,
      simulator: (theta, info) => (info.index === 5 ? [1, 2] : line(theta)),
      priors,
      path,
      dataShape: [8],
    });
    await expect(broken.fit({ ...quick, xObs })).rejects.toThrow(/expected length 8/);
    expect(existsSync(join(path, LOCK))).toBe(false);
  });
});

describe("NBI.load reads data and checks sizes before building networks", () => {
  const saved = async () => {
    const dir = await tempDir();
    const { engine } = lineEngine(join(dir, "run"));
    await engine.fit({ ...quick, xObs });
    await engine.save(dir);
    return dir;
  };
  const editModel = async (dir: string, edit: (m: Record<string, unknown>) => void) => {
    const path = join(dir, "model.json");
    const model = JSON.parse(await readFile(path, "utf8")) as Record<string, unknown>;
    edit(model);
    await writeFile(path, JSON.stringify(model));
  };

  it("refuses networks far larger than the weights file before allocating them", async () => {
    const dir = await saved();
    await expect(NBI.load(dir)).resolves.toBeDefined();
    await editModel(dir, (m) => {
      (m.featurizer as { hidden: number[] }).hidden = [6000, 6000];
    });
    const before = process.memoryUsage().rss;
    await expect(NBI.load(dir)).rejects.toThrow(
      /describes networks of at least [\d,]+ parameters .* holds [\d,]+: the two files do not belong together \(refused before building the networks\)/,
    );
    // 6000 × 6000 float32 weights alone would be 144 MB (and the flow's masks more).
    expect(process.memoryUsage().rss - before).toBeLessThan(100e6);

    await editModel(dir, (m) => {
      (m.featurizer as { hidden: number[] }).hidden = [16];
      m.flow = { nDims: 2, flowHidden: 3000, numBlocks: 10 };
    });
    await expect(NBI.load(dir)).rejects.toThrow(/do not belong together/);
    await editModel(dir, (m) => {
      m.flow = { nDims: 2, flowHidden: 16, numBlocks: 100000 };
    });
    await expect(NBI.load(dir)).rejects.toThrow(
      /flow\.numBlocks expected an integer in \[0, 4096\]/,
    );
    await editModel(dir, (m) => {
      m.flow = { nDims: 2, flowHidden: 16, numBlocks: 2 };
      m.dataShape = [2, 4];
    });
    await expect(NBI.load(dir)).rejects.toThrow(/scales\.xMean expected 2 values .*got 1/);
  });

  it("bounds every network below its true parameter count", async () => {
    const configs = [
      [{ nDims: 3 }, { type: "mlp", dimIn: 50, dimOut: 16 }, [50]],
      [
        { nDims: 2, nMog: 3, hiddenLayers: 3 },
        { type: "gru", dimIn: 2, dimOut: 8, dimHidden: 8 },
        [2, 20],
      ],
      [{ nDims: 3, type: "nsf" }, { type: "resnet", dimIn: 1, depth: 2 }, [32]],
      [{ nDims: 3, flowHidden: 32 }, { type: "resnet-gru", dimIn: 1, depth: 3 }, [50]],
    ] as const;
    for (const [flow, featurizer, shape] of configs) {
      const net = posteriorNetwork(flow as never, featurizer as never, shape);
      const params = await initPosterior(net, hostKey(0));
      const count = tree.leaves<{ size: number }>(params).reduce((s, leaf) => s + leaf.size, 0);
      expect(() =>
        checkSavedSizes(
          "m",
          flow as never,
          featurizer as never,
          net.inputShape,
          flow.nDims,
          count,
          "w",
        ),
      ).not.toThrow();
    }
  });
});

describe("an empty round (n_eff 0) does not end the run", () => {
  it("keeps the round, saves the model, and a re-run resumes", async () => {
    const path = await tempDir();
    // So peaked that one draw holds all the weight: n_eff = 1/Σw² − 1 = 0.
    const peaked = (obs: Float32Array | Float64Array, sim: Float32Array) => {
      let s = 0;
      for (let i = 0; i < obs.length; i++) s += (obs[i]! - sim[i]!) ** 2;
      return -1e6 * s;
    };
    const warnings: string[] = [];
    const { engine } = lineEngine(path);
    const fit = await engine.fit({
      ...quick,
      xObs,
      logLike: peaked,
      onWarning: (m) => warnings.push(m),
    });
    expect(fit.history[0]!.nEff).toBe(0);
    expect(fit.emptyRounds).toEqual([0]);
    expect(fit.weights.length).toBe(0);
    expect(warnings.some((w) => /no round has usable importance weights/.test(w))).toBe(true);
    await engine.save(join(path, "model"));
    expect(existsSync(join(path, "model", "model.json"))).toBe(true);

    const again = lineEngine(path);
    const resumed = await again.engine.fit({ ...quick, xObs, logLike: peaked });
    expect(resumed.resumedRounds).toBe(1);
    expect(again.counter.calls).toBe(0);
    expect(resumed.emptyRounds).toEqual([0]);
  });
});

describe("training yields to the event loop", () => {
  it("stops within one step when a timer aborts the fit mid-round", async () => {
    const path = await tempDir();
    const controller = new AbortController();
    let epochs = 0;
    let stepsAfterAbort = 0;
    const nEpochs = 300;
    const run = lineEngine(path).engine.fit({
      ...quick,
      nSims: 64,
      nEpochs,
      signal: controller.signal,
      onEpoch: (_, e) => {
        epochs++;
        // A timer, not a direct call: it fires only if training lets the event loop run.
        if (e.epoch === 0) setTimeout(() => controller.abort(new Error("timer stop")), 0);
      },
      onStep: () => {
        if (controller.signal.aborted) stepsAfterAbort++;
      },
    });
    await expect(run).rejects.toThrow(/timer stop/);
    expect(epochs).toBeLessThan(nEpochs);
    expect(stepsAfterAbort).toBeLessThanOrEqual(1);
    expect(existsSync(join(path, LOCK))).toBe(false);
  });
});

describe("hung simulations time out; finished ones are written promptly", () => {
  const theta = Float64Array.from([1, 2, 3, 1, 2, 5, 3, 0, 4, 4]); // rows 1 and 3 have θ0 = 3
  const job = (onChunk: (c: { index: Int32Array; status: Uint8Array }) => void) => ({
    theta,
    paramDim: 2,
    indices: Int32Array.from([0, 1, 2, 3, 4]),
    onChunk,
  });

  it("terminates a worker past simTimeoutMs (a spinning loop or a promise that never settles)", async () => {
    for (const exportName of ["spinsAt3", "neverAt3"]) {
      const status = new Map<number, number>();
      const report = await simulate(
        { module: SIMULATORS, exportName },
        job((c) => {
          c.index.forEach((i, j) => {
            status.set(i, c.status[j]!);
          });
        }),
        { workers: 2, simTimeoutMs: 300 },
      );
      expect(report).toMatchObject({ ok: 3, timedOut: 2, threw: 0, crashed: 0 });
      expect([...status.entries()].sort((a, b) => a[0] - b[0])).toEqual([
        [0, 0],
        [1, 4],
        [2, 0],
        [3, 4],
        [4, 0],
      ]);
    }
  });

  it("counts an in-process promise past simTimeoutMs as timed out", async () => {
    const report = await simulate(
      (row) => (row[0] === 3 ? new Promise<number[]>(() => {}) : [row[0]!, 1]),
      job(() => {}),
      { simTimeoutMs: 100 },
    );
    expect(report).toMatchObject({ ok: 3, timedOut: 2 });
  });

  it("hands a finished result to onChunk while the next simulation is still running", async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const seen: number[] = [];
    // Index 1 waits until index 0's result has been written: without a flush timer it would
    // wait forever (the result sat in the buffer until another arrived).
    await simulate(
      async (row, info) => {
        if (info.index === 1) await gate;
        return [row[0]!];
      },
      {
        theta: Float64Array.from([1, 2]),
        paramDim: 1,
        indices: Int32Array.from([0, 1]),
        onChunk: (c) => {
          seen.push(...c.index);
          if (c.index.includes(0)) release();
        },
      },
      { chunkSize: 10, flushIntervalMs: 50 },
    );
    expect(seen).toEqual([0, 1]);
  });

  it("a fit goes on past hung simulations and counts them", async () => {
    const path = await tempDir();
    const engine = new NBI({
      ...small,
      simulator: { module: SIMULATORS, exportName: "lineHangs" },
      priors,
      path,
      dataShape: [8],
      workers: 2,
      simTimeoutMs: 300,
    });
    const warnings: string[] = [];
    const fit = await engine.fit({ ...quick, xObs, onWarning: (m) => warnings.push(m) });
    expect(fit.history[0]!.dropped.timedOut).toBe(4); // indices 3, 11, 19, 27
    expect(fit.history[0]!.nSimulated).toBe(28);
    expect(warnings.some((w) => /4 of 32 simulations dropped .*4 timed out/.test(w))).toBe(true);
  });
});

describe("the store validates what it reads", () => {
  const META = { paramDim: 2, dataShape: [3] };
  const theta4 = Float64Array.from([0, 1, 2, 3, 4, 5, 6, 7]);
  const rows = (...v: number[]) => Float32Array.from(v);

  it("re-marks ok rows with NaN outputs as non-finite and counts them", async () => {
    const store = await openStore(await tempDir(), META);
    await store.writeRoundParams(0, theta4);
    await store.appendChunk(0, {
      index: Int32Array.of(0, 1),
      x: rows(1, 2, 3, 4, Number.NaN, 6),
      status: Uint8Array.of(0, 0),
    });
    const round = await store.readRound(0);
    expect(Array.from(round.status.subarray(0, 2))).toEqual([0, 1]);
    expect(round.remarked).toBe(1);
  });

  it("refuses unknown status codes, garbled θ and mismatched checksums, naming the file", async () => {
    const dir = await tempDir();
    const store = await openStore(dir, META);
    await store.writeRoundParams(0, theta4);
    await store.appendChunk(0, {
      index: Int32Array.of(0),
      x: rows(1, 2, 3),
      status: Uint8Array.of(0),
    });
    const folder = store.roundDir(0);
    // A store written without checksums (or by another tool) is still checked for codes.
    await rm(join(folder, "chunk-000000.sum.json"));
    await writeFile(
      join(folder, "chunk-000000.status.npy"),
      encodeNpy({ data: Uint8Array.of(7), shape: [1] }),
    );
    await expect((await openStore(dir, META)).readRound(0)).rejects.toThrow(
      /chunk-000000\.status\.npy expected status codes 0 to 4, got 7/,
    );
    await writeFile(
      join(folder, "theta.npy"),
      encodeNpy({ data: Float32Array.from(theta4), shape: [4, 2] }),
    );
    // Opening reads every round's θ (for the manifest), so the error comes from openStore.
    await expect(openStore(dir, META)).rejects.toThrow(
      /theta\.npy expected the content recorded in .*theta\.sum\.json/,
    );
    await rm(join(folder, "theta.sum.json"));
    await expect(openStore(dir, META)).rejects.toThrow(
      /theta\.npy expected float64 of shape \[n, 2\], got Float32Array/,
    );
    const nan = Float64Array.from(theta4);
    nan[3] = Number.NaN;
    await writeFile(join(folder, "theta.npy"), encodeNpy({ data: nan, shape: [4, 2] }));
    await expect(openStore(dir, META)).rejects.toThrow(
      /theta\.npy expected finite θ, got NaN in row 1/,
    );
  });

  it("removes temporary files left by a crash when it opens, keeping fresh ones", async () => {
    const dir = await tempDir();
    const store = await openStore(dir, META);
    await store.writeRoundParams(0, theta4);
    const old = join(store.roundDir(0), "chunk-000001.x.npy.tmp-999-1");
    const young = join(store.roundDir(0), "chunk-000002.x.npy.tmp-999-2");
    const manifestTemp = join(dir, "manifest.json.tmp-998-0");
    for (const f of [old, young, manifestTemp]) await writeFile(f, "half");
    const past = new Date(Date.now() - 5 * 60_000);
    await utimes(old, past, past);
    await utimes(manifestTemp, past, past);
    await openStore(dir, META);
    expect(existsSync(old)).toBe(false);
    expect(existsSync(manifestTemp)).toBe(false);
    expect(existsSync(young)).toBe(true);
  });

  it("fuzz: every garbled file gives a clear error or a counted exclusion, never another result", async () => {
    const dir = await tempDir();
    const origin = join(dir, "origin");
    const meta = { ...META, labels: ["a", "b"] };
    const store = await openStore(origin, meta);
    await store.writeRoundParams(0, theta4);
    await store.appendChunk(0, {
      index: Int32Array.of(0, 2),
      x: rows(1, 2, 3, 7, 8, 9),
      status: Uint8Array.of(0, 2),
    });
    await store.appendChunk(0, {
      index: Int32Array.of(3),
      x: rows(4, 5, 6),
      status: Uint8Array.of(0),
    });
    const original = await store.readRound(0);
    const same = (a: RoundData, b: RoundData) =>
      a.n === b.n &&
      Buffer.from(a.theta.buffer).equals(Buffer.from(b.theta.buffer)) &&
      Buffer.from(a.done).equals(Buffer.from(b.done)) &&
      Buffer.from(a.status).equals(Buffer.from(b.status)) &&
      Buffer.from(a.x.buffer).equals(Buffer.from(b.x.buffer));
    const files = [
      "manifest.json",
      ...(await readdir(join(origin, "round-000"))).map((f) => `round-000/${f}`),
    ];
    expect(files.length).toBe(11); // manifest, θ + its sum, 2 chunks × (x, status, index, sum)
    const garble: Record<string, (b: Buffer) => Buffer> = {
      truncated: (b) => b.subarray(0, Math.floor(b.length / 2)),
      empty: () => Buffer.alloc(0),
      "junk appended": (b) => Buffer.concat([b, Buffer.from("junk")]),
      ...Object.fromEntries(
        [0.05, 0.3, 0.6, 0.9, 0.999].map((at) => [
          `byte at ${at} flipped`,
          (b: Buffer) => {
            const c = Buffer.from(b);
            if (c.length > 0) c[Math.floor(at * c.length)]! ^= 0x41;
            return c;
          },
        ]),
      ),
    };
    let errors = 0;
    let unchanged = 0;
    let cases = 0;
    for (const file of files) {
      for (const [how, f] of Object.entries(garble)) {
        const copy = join(dir, `case-${cases++}`);
        await cp(origin, copy, { recursive: true });
        await writeFile(join(copy, file), f(await readFile(join(copy, file))));
        let result: RoundData | undefined;
        try {
          result = await (await openStore(copy, meta)).readRound(0);
        } catch (error) {
          // A clear error: an NbiError that names the damaged file (or the one that refers to it).
          expect(error, `${file} ${how}`).toBeInstanceOf(NbiError);
          const message = (error as Error).message;
          if (file === "manifest.json") {
            // The manifest names the store itself: "the store DIR holds ...", or the file.
            expect(message.includes(copy), `${file} ${how}: ${message}`).toBe(true);
          } else {
            const name = file.split("/").at(-1)!.split(".")[0]!;
            expect(message, `${file} ${how}`).toContain(name);
          }
          errors++;
          continue;
        }
        // Or nothing changed at all (a byte the reader does not use, such as the manifest's
        // round folder name), or a change that is counted.
        if (same(result, original)) unchanged++;
        else expect(result.remarked, `${file} ${how}: a silent change`).toBeGreaterThan(0);
      }
    }
    expect(errors).toBeGreaterThan(cases * 0.8);
    expect(errors + unchanged).toBe(cases);
  });
});

describe("mistakes are named before anything is simulated", () => {
  it("blames an xObs of the wrong length on xObs, after at most one probe simulation", async () => {
    const path = await tempDir();
    const { engine, counter } = lineEngine(path, { dataShape: undefined as never });
    await expect(engine.fit({ ...quick, xObs: [1, 2, 3] })).rejects.toThrow(
      /fit: xObs expected 8 numbers \(one simulator output\), got 3 numbers/,
    );
    expect(counter.calls).toBeLessThanOrEqual(1);
    expect(existsSync(join(path, "round-000"))).toBe(false);
  });

  it("checks a featurizer's dimIn against the data before round 0", async () => {
    const path = await tempDir();
    const { engine, counter } = lineEngine(path, {
      featurizer: { type: "mlp", dimIn: 10, dimOut: 8 },
      dataShape: undefined as never,
    });
    await expect(engine.fit({ ...quick, xObs })).rejects.toThrow(
      /featurizer\.dimIn expected 8 \(an MLP sees each simulation flattened: data of shape \[8\]\), got 10/,
    );
    expect(counter.calls).toBeLessThanOrEqual(1);
    const gru = lineEngine(await tempDir(), {
      featurizer: { type: "resnet-gru", dimIn: 2, depth: 2 },
    });
    await expect(gru.engine.fit({ ...quick, xObs })).rejects.toThrow(
      /featurizer\.dimIn expected 1 \(the data's channels: data of shape \[8\], one channel\), got 2/,
    );
    expect(gru.counter.calls).toBe(0);
  });

  it("names unknown fit options with the option probably meant", async () => {
    const { engine, counter } = lineEngine(await tempDir());
    await expect(
      engine.fit({ ...quick, nEpoch: 3, n_sims: 10 } as unknown as FitOptions),
    ).rejects.toThrow(
      /unknown "nEpoch" \(did you mean nEpochs\?\), "n_sims" \(did you mean nSims\?\)/,
    );
    expect(counter.calls).toBe(0);
  });

  it("names every bad setting at once, before any simulation (one validator for API and config)", async () => {
    const { engine, counter } = lineEngine(await tempDir());
    const error = await engine
      .fit({
        ...quick,
        nSims: 1,
        lr: "fast",
        loss: "kl",
        truncationEps: 2,
        resume: "always",
        nReuse: "some",
        nEpoch: 3,
      } as unknown as FitOptions)
      .catch((e: unknown) => e as Error);
    expect(error).toBeInstanceOf(NbiError);
    const parts = (error as Error).message.split("; ");
    expect(parts[0]).toMatch(/^fit: options expected only known options, got unknown "nEpoch"/);
    for (const expected of [
      "nSims expected an integer ≥ 2, got 1",
      'lr expected a number, got "fast"',
      'loss expected "auto", "nll", "apt", "gated", "select" or "weighted-nll", got "kl"',
      "truncationEps expected a number in (0, 1), e.g. 1e-4, got 2",
      'resume expected "never", "ifSame" or "force", got "always"',
      'nReuse expected an integer ≥ −1 (−1: all rounds) or "auto", got "some"',
    ])
      expect(parts).toContain(expected);
    expect(counter.calls).toBe(0);
  });

  it("does not warn about Pareto k̂ in round 0 (prior draws are heavy-tailed by nature)", async () => {
    const warnings: string[] = [];
    const { engine } = lineEngine(await tempDir());
    const fit = await engine.fit({
      ...quick,
      xObs,
      noise: 0.1,
      onWarning: (m) => warnings.push(m),
    });
    expect(fit.history[0]!.paretoK).toBeGreaterThan(0.7);
    expect(warnings.filter((w) => /Pareto/.test(w))).toEqual([]);
  });

  it("explains a simulator that returns 64-bit integers", async () => {
    await expect(
      simulate((() => BigInt64Array.of(1n, 2n)) as unknown as SimulatorFn, {
        theta: Float64Array.of(1),
        paramDim: 1,
        indices: Int32Array.of(0),
        onChunk: () => {},
      }),
    ).rejects.toThrow(/expected an array of numbers, got a BigInt64Array .*Float64Array/);
    await expect(
      simulate(() => [1n, 2n] as unknown as number[], {
        theta: Float64Array.of(1),
        paramDim: 1,
        indices: Int32Array.of(0),
        onChunk: () => {},
      }),
    ).rejects.toThrow(/expected an array of numbers, got .*an element that is not a number/);
  });
});
