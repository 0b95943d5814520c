/**
 * The NBI engine's facade: bad input, faults, persistence, predict's top-up, determinism across
 * worker counts. Small problems and few epochs: these test plumbing and semantics; the
 * statistical proofs are in sine.test.ts and anpe.test.ts.
 */
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { type Array, np, random } from "../../src/index.js";
import { NBI } from "../../src/inference/engine.js";
import { hostKey, normals } from "../../src/inference/host.js";
import type { ImportanceResult } from "../../src/inference/importance.js";
import { gaussianLogLike } from "../../src/inference/likelihood.js";
import { normal, type Prior, uniform } from "../../src/inference/priors.js";
import { proposalFell, type RoundRecord } from "../../src/inference/snpe.js";
import { readSafetensors } from "../../src/io/safetensors.js";
import { tempDirs } from "../helpers/temp-dirs.js";

const tempDir = tempDirs("nbi-engine-");

/** A line through 8 points with slope and intercept: x_i = a + b·t_i. */
const T = globalThis.Array.from({ length: 8 }, (_, i) => i / 7);
const line = (theta: ArrayLike<number>) => Float64Array.from(T, (t) => theta[0]! + theta[1]! * t);
const linePriors = { a: normal(0, 1), b: uniform(-2, 2) };
const small = {
  flow: { nDims: 2, flowHidden: 16, numBlocks: 2 },
  featurizer: { type: "mlp" as const, dimIn: 8, dimOut: 8, hidden: [16] },
};
const xObsLine = (seed: number) => {
  const eps = normals(hostKey(seed), 8);
  return line([0.3, 1.1]).map((v, i) => v + 0.2 * eps[i]!);
};
const quickFit = { nSims: 64, nEpochs: 2, batchSize: 16, noise: 0.2, progress: false };

/**
 * A 4-round earlyStopTrain fit of the line (seed 4) whose log-likelihood is `logLike(calls,
 * dist)`: the likelihood calls so far, and the squared distance to xObs shifted by `shift`.
 */
function earlyStopFit(
  options: { nSims?: number; adaptRounds?: boolean },
  logLike: (calls: number, dist: (shift: number) => number) => number,
) {
  let calls = 0;
  const engine = new NBI({
    ...small,
    simulator: line,
    priors: linePriors,
    path: tempDir(),
    seed: 4,
  });
  return engine.fit({
    ...quickFit,
    ...options,
    xObs: xObsLine(5),
    nRounds: 4,
    earlyStopTrain: true,
    logLike: (xo, xs) => {
      calls++;
      return logLike(calls, (shift) => {
        let q = 0;
        for (let i = 0; i < 8; i++) q += (xo[i]! + shift - xs[i]!) ** 2;
        return q;
      });
    },
  });
}

describe("NBI: bad input", () => {
  it("refuses a flow dimension that differs from the priors'", () => {
    expect(
      () =>
        new NBI({
          ...small,
          flow: { nDims: 3 },
          simulator: line,
          priors: linePriors,
          path: tempDir(),
        }),
    ).toThrow(/flow\.nDims expected the priors' dimension \(2\), got 3/);
  });

  it("refuses a prior whose support excludes its own samples", () => {
    const base = uniform(0, 1);
    const broken: Prior = {
      dim: 1,
      labels: ["x"],
      lower: base.lower,
      upper: base.upper,
      logProb: (t) => new Float64Array(t.length).fill(Number.NEGATIVE_INFINITY),
      sample: (k, n) => base.sample(k, n),
      inSupport: (t) => base.inSupport(t),
      mean: () => base.mean(),
      std: () => base.std(),
      toString: () => "broken",
      toJSON: () => base.toJSON(),
    };
    expect(
      () =>
        new NBI({
          ...small,
          flow: { nDims: 1, flowHidden: 8, numBlocks: 1 },
          simulator: line,
          priors: broken,
          path: tempDir(),
        }),
    ).toThrow(/log-density that is finite at the priors' own samples/);
  });

  it("refuses an unknown flow option with a hint for nbi's snake_case", async () => {
    const engine = new NBI({
      ...small,
      flow: { nDims: 2, flow_hidden: 16 } as never,
      simulator: line,
      priors: linePriors,
      path: tempDir(),
    });
    await expect(engine.fit({ ...quickFit, xObs: xObsLine(0) })).rejects.toThrow(
      /flow\.flow_hidden .*did you mean flowHidden/,
    );
  });

  it("refuses xObs of the wrong length and xObs with NaN", async () => {
    const engine = new NBI({
      ...small,
      simulator: line,
      priors: linePriors,
      path: tempDir(),
      dataShape: [8],
    });
    await expect(engine.fit({ ...quickFit, xObs: [1, 2, 3] })).rejects.toThrow(
      /xObs expected 8 numbers .*got 3 numbers/,
    );
    const nan = globalThis.Array.from(xObsLine(0));
    nan[4] = Number.NaN;
    await expect(engine.fit({ ...quickFit, xObs: nan })).rejects.toThrow(
      /xObs expected finite values \(or fit with the gapped observation model.*got NaN at index 4/,
    );
  });

  it("asks for an observation before sequential rounds and for a fit before predict", async () => {
    const engine = new NBI({ ...small, simulator: line, priors: linePriors, path: tempDir() });
    await expect(engine.fit({ ...quickFit, nRounds: 2 })).rejects.toThrow(
      /xObs expected an observation for sequential rounds/,
    );
    await expect(engine.predict(xObsLine(0))).rejects.toThrow(/call fit\(\) first/);
  });

  it("stops with a clear error when a simulator returns the wrong length", async () => {
    let calls = 0;
    const engine = new NBI({
      ...small,
      simulator: (t) => (++calls === 5 ? [1, 2] : line(t)),
      priors: linePriors,
      path: tempDir(),
      dataShape: [8],
    });
    await expect(engine.fit({ ...quickFit, xObs: xObsLine(0) })).rejects.toThrow(
      /expected .*8.*got .*2|length/,
    );
  });

  it("keeps an empty round (every weight invalid): reported, in the history, not fatal", async () => {
    const engine = new NBI({ ...small, simulator: line, priors: linePriors, path: tempDir() });
    const warnings: string[] = [];
    const fit = await engine.fit({
      ...quickFit,
      xObs: xObsLine(0),
      nRounds: 2,
      logLike: () => Number.NaN,
      onWarning: (m) => warnings.push(m),
    });
    expect(fit.history.map((h) => h.nEff)).toEqual([0, 0]);
    expect(fit.emptyRounds).toEqual([0, 1]);
    expect(fit.samples.length).toBe(0);
    expect(warnings.some((w) => /all 64 log-weights are invalid/.test(w))).toBe(true);
    expect(warnings.some((w) => /no round has usable importance weights/.test(w))).toBe(true);
  });
});

describe("NBI: faults are counted, not fatal", () => {
  it("drops simulations that throw or return NaN, counts them and goes on", async () => {
    const engine = new NBI({
      ...small,
      simulator: (t, info) => {
        if (info.index % 10 === 3) throw new Error("solver diverged");
        if (info.index % 10 === 7) return new Float64Array(8).fill(Number.NaN);
        return line(t);
      },
      priors: linePriors,
      path: tempDir(),
      dataShape: [8],
    });
    const warnings: string[] = [];
    const fit = await engine.fit({
      ...quickFit,
      xObs: xObsLine(0),
      nRounds: 2,
      onWarning: (m) => warnings.push(m),
    });
    for (const h of fit.history) {
      expect(h.dropped.threw).toBe(Math.floor((64 - 4) / 10) + 1);
      expect(h.dropped.nonFinite).toBe(Math.floor((64 - 8) / 10) + 1);
      expect(h.nSimulated).toBe(64 - h.dropped.threw - h.dropped.nonFinite);
      expect(h.firstError).toMatch(/solver diverged/);
    }
    expect(warnings.some((w) => /dropped .*threw/.test(w))).toBe(true);
  });
});

describe("NBI: fit, predict, save and load", () => {
  it("runs SNPE-IS rounds with the per-round record nbi users expect", async () => {
    const engine = new NBI({
      ...small,
      simulator: line,
      priors: linePriors,
      path: tempDir(),
      seed: 3,
    });
    const epochs: number[] = [];
    const fit = await engine.fit({
      ...quickFit,
      xObs: xObsLine(1),
      nRounds: 2,
      onEpoch: (round, e) => epochs.push(round * 100 + e.epoch),
    });
    expect(fit.history).toHaveLength(2);
    expect(epochs).toEqual([0, 1, 100, 101]);
    const [r0, r1] = fit.history;
    expect(r0!.nEff).toBeGreaterThan(0);
    expect(r1!.efficiency).toBeGreaterThan(0);
    expect(r1!.epochs).toHaveLength(2);
    expect(Number.isFinite(r1!.logEvidence)).toBe(true);
    expect(fit.essHistory).toEqual([r0!.nEff, r1!.nEff]);
    // The combined result: draws of both rounds, weights normalised.
    expect(fit.samples.length).toBe(2 * fit.weights.length);
    expect(fit.weights.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 10);
  });

  it("predict tops up simulations until n_eff reaches neffMin, capped by nMax", async () => {
    const engine = new NBI({ ...small, simulator: line, priors: linePriors, path: tempDir() });
    const xObs = xObsLine(2);
    await engine.fit({ ...quickFit, xObs });
    // predict's own draws: the fit's (pooled by default at its target) would count towards neffMin.
    const base = await engine.predict(xObs, { xErr: 0.2, nSamples: 50, pool: false });
    expect(base.nSimulations).toBe(50);
    const topped = await engine.predict(xObs, {
      xErr: 0.2,
      nSamples: 50,
      pool: false,
      neffMin: base.ess * 3,
      nMax: 2000,
    });
    expect(topped.nSimulations).toBeGreaterThan(50);
    expect(topped.ess >= base.ess * 3 || topped.nSimulations === 2000).toBe(true);
    expect(topped.samples.length).toBe(2 * topped.nSimulations);
    const capped = await engine.predict(xObs, {
      xErr: 0.2,
      nSamples: 50,
      pool: false,
      neffMin: 1e9,
      nMax: 120,
    });
    expect(capped.nSimulations).toBe(120);
    expect(capped.warnings.join()).toMatch(/below neffMin/);
    const surrogate = await engine.predict(xObs, { nSamples: 40 });
    expect(surrogate.surrogateOnly).toBe(true);
    expect(surrogate.samples.length).toBe(80);
  });

  it("saves weights as safetensors and loads an engine that gives the same densities", async () => {
    const engine = new NBI({
      ...small,
      simulator: line,
      priors: linePriors,
      path: tempDir(),
      seed: 5,
    });
    const xObs = xObsLine(4);
    await engine.fit({ ...quickFit, xObs });
    const dir = tempDir();
    await engine.save(dir);
    const model = JSON.parse(readFileSync(join(dir, "model.json"), "utf8"));
    expect(model.format).toBe("nbi-model");
    expect(model.labels).toEqual(["a", "b"]);
    expect(model.dataShape).toEqual([8]);
    const { tensors } = await readSafetensors(join(dir, "weights.safetensors"));
    expect(Object.keys(tensors)).toContain("scales.thetaStd");
    expect(Object.keys(tensors).some((k) => k.startsWith("flow.blocks[0]"))).toBe(true);

    const loaded = await NBI.load(dir, { simulator: line });
    const theta = Float64Array.from([0.3, 1.1, 0, 0, -1, 1.5]);
    const a = await engine.logProb(xObs, theta);
    const b = await loaded.logProb(xObs, theta);
    expect(globalThis.Array.from(b)).toEqual(globalThis.Array.from(a));
    expect(loaded.labels).toEqual(["a", "b"]);
    const s1 = await engine.sample(xObs, 10);
    const s2 = await loaded.sample(xObs, 10);
    expect(globalThis.Array.from(s2)).toEqual(globalThis.Array.from(s1));
  });

  it("sampleBatch draws for many observations in one pass, matching per-observation sample", async () => {
    const engine = new NBI({ ...small, simulator: line, priors: linePriors, path: tempDir() });
    await engine.fit({ ...quickFit });
    const obs = [xObsLine(10), xObsLine(11), xObsLine(12)];
    const many = await engine.sampleBatch(obs, 20);
    expect(many.length).toBe(3 * 20 * 2);
    expect(many.every(Number.isFinite)).toBe(true);
    // The draws for observation 1 follow its own posterior: their mean is near per-observation draws'.
    const single = await engine.sample(obs[1]!, 400);
    const mean = (a: Float64Array, j: number) => {
      let s = 0;
      for (let i = j; i < a.length; i += 2) s += a[i]!;
      return s / (a.length / 2);
    };
    const batchMean = mean(many.subarray(40, 80), 0);
    expect(Math.abs(batchMean - mean(single, 0))).toBeLessThan(0.6);
  });
});

describe("NBI: stopping rules and precomputed simulations", () => {
  it("stops when the efficiency exceeds fAcceptMin or the summed n_eff exceeds neffStop", async () => {
    const fitWith = async (extra: object) => {
      const engine = new NBI({
        ...small,
        simulator: line,
        priors: linePriors,
        path: tempDir(),
        seed: 2,
      });
      return engine.fit({ ...quickFit, xObs: xObsLine(3), nRounds: 4, ...extra });
    };
    const free = await fitWith({});
    expect(free.history).toHaveLength(4);
    expect(free.stopped).toBe("completed all rounds");
    // A round's efficiency above fAcceptMin ends the run after that round's draws, untrained.
    const eff1 = free.history[1]!.efficiency!;
    const byEfficiency = await fitWith({ fAcceptMin: eff1 / 2 });
    const firstAbove = free.history.findIndex((h) => h.efficiency! > eff1 / 2);
    expect(byEfficiency.history).toHaveLength(firstAbove + 1);
    expect(byEfficiency.stopped).toMatch(/efficiency .* exceeded fAcceptMin/);
    expect(byEfficiency.history.at(-1)!.trained).toBe(false);
    const target = free.history[0]!.nEff! + free.history[1]!.nEff! / 2;
    const byNeff = await fitWith({ neffStop: target });
    expect(byNeff.stopped).toMatch(/summed n_eff exceeded neffStop/);
    expect(byNeff.history).toHaveLength(2);
  });

  it("earlyStopTrain reverts to the previous round's network when n_eff falls", async () => {
    // A likelihood that sharpens from round 2 on (after 128 calls) makes round 2's n_eff fall:
    // drawn from the surrogate in one batch (adaptRounds: false), as staged rounds would adapt
    // their draws to the sharper likelihood within the round.
    const fit = await earlyStopFit({ adaptRounds: false }, (calls, dist) =>
      calls > 128 ? -5 * dist(0) : -0.5 * dist(0),
    );
    const h = fit.history;
    expect(h[1]!.nEff!).toBeGreaterThan(h[2]!.nEff!);
    expect(h[2]!.nEff!).toBeGreaterThan(1);
    expect(h).toHaveLength(3);
    expect(fit.stopped).toMatch(/n_eff fell .* reverted to round 1's proposal/);
    expect(h[2]!.trained).toBe(false);
  });

  it("earlyStopTrain compares staged rounds' pilots (the surrogates' own efficiency), not their adapted n_eff", async () => {
    // A likelihood whose posterior moves from round 2 on (after 2 × 128 calls), rounds drawn in
    // stages: round 2's pilot, drawn from the surrogate alone, is the less efficient, and the
    // fit reverts.
    const fit = await earlyStopFit({ nSims: 128 }, (calls, dist) =>
      calls > 256 ? -0.05 * dist(3) : -0.05 * dist(0),
    );
    const h = fit.history;
    expect(h[0]!.pilot).toBeUndefined();
    expect(h[1]!.pilot!.nEff).toBeGreaterThanOrEqual(1);
    expect(h[1]!.pilot!.nEff / h[1]!.pilot!.draws).toBeGreaterThan(
      h[2]!.pilot!.nEff / h[2]!.pilot!.draws,
    );
    expect(h).toHaveLength(3);
    expect(fit.stopped).toMatch(/the pilot's efficiency fell .* reverted to round 1's proposal/);
    // A staged round whose adapted n_eff fell but whose pilot did not: no stop; a previous pilot
    // of less than one effective draw: no stop; rounds without pilots compare n_eff as nbi does.
    const record = { nEff: 40, pilot: { draws: 80, nEff: 2 } } as unknown as RoundRecord;
    const now = { nEff: 30 } as ImportanceResult;
    expect(proposalFell(record, now, { draws: 80, nEff: 4 })).toBeUndefined();
    expect(proposalFell(record, now, { draws: 80, nEff: 1 })).toMatch(
      /pilot's efficiency fell \(1\.3% < 2\.5%\)/,
    );
    const faint = { nEff: 40, pilot: { draws: 80, nEff: 0.6 } } as unknown as RoundRecord;
    expect(proposalFell(faint, now, { draws: 80, nEff: 0 })).toBeUndefined();
    expect(proposalFell({ nEff: 40 } as RoundRecord, now, undefined)).toMatch(/n_eff fell/);
    expect(proposalFell({ nEff: 20 } as RoundRecord, now, undefined)).toBeUndefined();
  });

  it("trains round 0 on precomputed simulations without calling the simulator", async () => {
    const theta = linePriors.a.sample(hostKey(8), 64);
    const slopes = linePriors.b.sample(hostKey(9), 64);
    const rows = globalThis.Array.from({ length: 64 }, (_, i) => [theta[i]!, slopes[i]!]);
    const x = rows.map((r) => line(r));
    const engine = new NBI({
      ...small,
      priors: linePriors,
      path: tempDir(),
      dataShape: [8],
    });
    const fit = await engine.fit({
      x,
      theta: rows,
      nEpochs: 2,
      batchSize: 16,
      noise: 0.2,
      progress: false,
    });
    expect(fit.history[0]!.nSimulated).toBe(64);
    const draws = await engine.sample(xObsLine(1), 5);
    expect(draws.every(Number.isFinite)).toBe(true);
    await expect(
      engine.fit({ x: x.slice(1), theta: rows, nEpochs: 1, progress: false }),
    ).rejects.toThrow(/as many simulations/);
  });
});

describe("NBI: noise functions and aborting", () => {
  it("applies a noise function afresh to every batch (and needs a likelihood for weights)", async () => {
    const engine = new NBI({ ...small, simulator: line, priors: linePriors, path: tempDir() });
    const noiseFn = (key: Array, x: Array) => np.add(x, np.mul(0.2, random.normal(key, x.shape)));
    await expect(
      engine.fit({ ...quickFit, noise: noiseFn, xObs: xObsLine(0), nRounds: 2 }),
    ).rejects.toThrow(/logLike expected a likelihood/);
    const fit = await engine.fit({
      ...quickFit,
      noise: noiseFn,
      xObs: xObsLine(0),
      nRounds: 2,
      logLike: gaussianLogLike(0.2, 8),
    });
    expect(fit.history[1]!.nEff).toBeGreaterThan(0);
  });

  it("stops promptly when the signal aborts, with the abort reason", async () => {
    const engine = new NBI({ ...small, simulator: line, priors: linePriors, path: tempDir() });
    const controller = new AbortController();
    const run = engine.fit({
      ...quickFit,
      nEpochs: 50,
      signal: controller.signal,
      onEpoch: (_, e) => {
        if (e.epoch === 1) controller.abort(new Error("user stop"));
      },
    });
    await expect(run).rejects.toThrow(/user stop/);
  });
});

describe("NBI: reproducibility", () => {
  it("gives the same run for the same seed whatever the number of worker threads", async () => {
    const module = resolve("test/fixtures/simulators/line.mjs");
    const run = async (workers: number) => {
      const engine = new NBI({
        ...small,
        simulator: { module, exportName: "line" },
        priors: linePriors,
        path: tempDir(),
        seed: 11,
        workers,
      });
      return engine.fit({ ...quickFit, xObs: xObsLine(6), nRounds: 2 });
    };
    const one = await run(1);
    const three = await run(3);
    expect(globalThis.Array.from(three.weights)).toEqual(globalThis.Array.from(one.weights));
    expect(globalThis.Array.from(three.samples)).toEqual(globalThis.Array.from(one.samples));
    expect(three.history.map((h) => h.epochs.map((e) => e.valLoss))).toEqual(
      one.history.map((h) => h.epochs.map((e) => e.valLoss)),
    );
  });

  it("derives keys from the seed: a different seed gives different draws", async () => {
    const runWithSeed = async (seed: number) => {
      const engine = new NBI({
        ...small,
        simulator: line,
        priors: linePriors,
        path: tempDir(),
        seed,
      });
      return (await engine.fit({ ...quickFit, xObs: xObsLine(6), nRounds: 2 })).samples;
    };
    const first = await runWithSeed(1);
    const again = await runWithSeed(1);
    const other = await runWithSeed(2);
    expect(globalThis.Array.from(again)).toEqual(globalThis.Array.from(first));
    expect(globalThis.Array.from(other)).not.toEqual(globalThis.Array.from(first));
  });
});
