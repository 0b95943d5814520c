/**
 * Interrupted training resumes (issue 16): a fit stopped by its AbortSignal during a round's
 * training saves the round's state at its last finished epoch (round-RRR/training.safetensors),
 * and a fit on the same folder continues from there to the very result of an uninterrupted run.
 * The CLI's signals (a second one exits at once) are in test/cli/integrity.test.ts.
 */
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type FitOptions, type FitResult, NBI } from "../../src/inference/engine.js";
import { hostKey, normals } from "../../src/inference/host.js";
import { initPosterior, posteriorNetwork } from "../../src/inference/posterior.js";
import { normal, uniform } from "../../src/inference/priors.js";
import { loadTrainCheckpoint, saveTrainCheckpoint } from "../../src/inference/train-checkpoint.js";
import * as np from "../../src/ops/np.js";
import * as optim from "../../src/optim/index.js";
import type { Array as NpArray } from "../../src/trace/array.js";
import * as tree from "../../src/trace/tree.js";

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
const tempDir = async () => {
  const d = await mkdtemp(join(tmpdir(), "nbi-interrupt-"));
  dirs.push(d);
  return d;
};

const T = Array.from({ length: 8 }, (_, i) => i / 7);
const line = (theta: ArrayLike<number>) => Float64Array.from(T, (t) => theta[0]! + theta[1]! * t);
const eps = normals(hostKey(3), 8);
const xObs = Array.from(line([0.3, 1.1]), (v, i) => v + 0.2 * eps[i]!);
const nEpochs = 5;
// 32 simulations, 3 held out, batches of 8: 3 steps an epoch.
const options: FitOptions = {
  nSims: 32,
  nRounds: 2,
  nEpochs,
  batchSize: 8,
  noise: 0.2,
  xObs,
  progress: false,
};

function engine(path: string) {
  return new NBI({
    flow: { nDims: 2, flowHidden: 8, numBlocks: 1 },
    featurizer: { type: "mlp", dimIn: 8, dimOut: 4, hidden: [8] },
    simulator: (theta) => line(theta),
    priors: { a: normal(0, 1), b: uniform(-2, 2) },
    path,
    dataShape: [8],
  });
}

/** The fit's result and its final network's bytes. */
async function outcome(e: NBI, result: FitResult) {
  const model = await tempDir();
  await e.save(model);
  return {
    essHistory: result.essHistory,
    samples: result.samples,
    weights: result.weights,
    losses: result.history.map((h) => h.epochs.map((r) => [r.epoch, r.trainLoss, r.valLoss])),
    bestEpochs: result.history.map((h) => h.bestEpoch),
    network: await readFile(join(model, "weights.safetensors")),
  };
}

/**
 * Fits once with an AbortSignal fired by `stop` (from onEpoch or onStep), then again on the same
 * folder without it; returns the epochs each fit ran per round and the resumed fit's outcome.
 */
async function interruptedThenResumed(
  stop: (round: number, epoch: number, step?: number) => boolean,
  fitOptions: FitOptions = options,
) {
  const path = await tempDir();
  const controller = new AbortController();
  const first: [number, number][] = [];
  const e1 = engine(path);
  await expect(
    e1.fit({
      ...fitOptions,
      signal: controller.signal,
      onEpoch: (round, r) => {
        first.push([round, r.epoch]);
        if (stop(round, r.epoch)) controller.abort(new Error("stopped"));
      },
      onStep: (round, epoch, step) => {
        if (stop(round, epoch, step)) controller.abort(new Error("stopped"));
      },
    }),
  ).rejects.toThrow(/stopped/);
  const second: [number, number][] = [];
  const warnings: string[] = [];
  const e2 = engine(path);
  const result = await e2.fit({
    ...fitOptions,
    onEpoch: (round, r) => second.push([round, r.epoch]),
    onWarning: (m) => warnings.push(m),
  });
  return { path, first, second, warnings, outcome: await outcome(e2, result) };
}

describe("an interrupted round's training resumes where it stopped", () => {
  it("at an epoch boundary or mid-epoch, to the result of an uninterrupted run, bit for bit", async () => {
    const reference = engine(await tempDir());
    const expected = await outcome(reference, await reference.fit(options));
    expect(expected.samples.length).toBeGreaterThan(0);
    const all = (round: number, from = 0) =>
      Array.from({ length: nEpochs - from }, (_, i) => [round, from + i] as [number, number]);

    // Stopped after round 0's epoch 1: round 0 resumes at epoch 2 (its trained network decides
    // round 1's proposal, draws and weights).
    const atBoundary = await interruptedThenResumed(
      (round, epoch, step) => round === 0 && epoch === 1 && step === undefined,
    );
    expect(atBoundary.first).toEqual(all(0).slice(0, 2));
    expect(atBoundary.second).toEqual([...all(0, 2), ...all(1)]);
    expect(atBoundary.outcome).toEqual(expected);
    // Removed once the round's training finished.
    expect(existsSync(join(atBoundary.path, "store", "round-000", "training.safetensors"))).toBe(
      false,
    );

    // Stopped during round 1's epoch 3 (after its second step): the steps of epoch 3 are lost,
    // and the round resumes at epoch 3 from its start.
    const midEpoch = await interruptedThenResumed(
      (round, epoch, step) => round === 1 && epoch === 3 && step === 2,
    );
    expect(midEpoch.first).toEqual([...all(0), ...all(1).slice(0, 3)]);
    expect(midEpoch.second).toEqual(all(1, 3));
    expect(midEpoch.outcome).toEqual(expected);
  }, 120_000);

  it("in either candidate of a select round, to the result of an uninterrupted run", async () => {
    // 48 simulations with noise 0.5: round 1's weighted draws (Kish ESS ~11.5) are enough for
    // both candidates to train (with fewer, a select round trains APT alone).
    const select: FitOptions = {
      ...options,
      nSims: 48,
      noise: 0.5,
      xObs: Array.from(line([0.3, 1.1]), (v, i) => v + 0.5 * eps[i]!),
      loss: "select",
    };
    const reference = engine(await tempDir());
    const uninterrupted = await reference.fit(select);
    const expected = await outcome(reference, uninterrupted);
    const all = (round: number, from = 0) =>
      Array.from({ length: nEpochs - from }, (_, i) => [round, from + i] as [number, number]);
    /** Stops round 1's candidate `which` (1: APT's, trained first; 2: NLL's) after its epoch 1. */
    const inCandidate = (which: number) => {
      let started = 0;
      return (round: number, epoch: number, step?: number) => {
        if (round === 1 && epoch === 0 && step === undefined) started++;
        return round === 1 && started === which && epoch === 1 && step === undefined;
      };
    };
    // Stopped in APT's candidate: it resumes at epoch 2, then NLL's trains.
    const inApt = await interruptedThenResumed(inCandidate(1), select);
    expect(inApt.first).toEqual([...all(0), ...all(1).slice(0, 2)]);
    expect(inApt.second).toEqual([...all(1, 2), ...all(1)]);
    expect(inApt.outcome).toEqual(expected);
    expect(inApt.warnings.filter((w) => /saved training/.test(w))).toEqual([]);
    // Stopped in NLL's: APT's candidate (not kept) trains again, passing NLL's saved training
    // by without a warning; NLL's resumes at epoch 2.
    const inNll = await interruptedThenResumed(inCandidate(2), select);
    expect(inNll.first).toEqual([...all(0), ...all(1), ...all(1).slice(0, 2)]);
    expect(inNll.second).toEqual([...all(1), ...all(1, 2)]);
    expect(inNll.outcome).toEqual(expected);
    expect(inNll.warnings.filter((w) => /saved training/.test(w))).toEqual([]);
    expect(existsSync(join(inNll.path, "store", "round-001", "training.safetensors"))).toBe(false);
    // Both candidates trained, and a fit that restores the finished run keeps the record.
    const chose = uninterrupted.history[1]!;
    expect(Object.keys(chose.lossScores!)).toEqual(["ess", "apt", "nll", "se"]);
    const restored = (await reference.fit(select)).history[1]!;
    expect([restored.loss, restored.lossScores]).toEqual([chose.loss, chose.lossScores]);
  }, 120_000);

  it("saves and loads every array of the training state exactly (optimizer counts as int32)", async () => {
    const net = posteriorNetwork(
      { nDims: 2, flowHidden: 8, numBlocks: 1 },
      { type: "mlp", dimIn: 8, dimOut: 4, hidden: [8] },
      [8],
    );
    const params = await initPosterior(net, hostKey(1));
    const opt = optim.chain(optim.adaptiveClip({ percentile: 85, window: 4 }), optim.adam(1e-3));
    const template = opt.init(params);
    // A state with every leaf distinct from the template's.
    const optState = tree.map(
      (l: NpArray) =>
        l.dtype === "int32" ? np.add(l, 7) : np.add(l, np.array(0.123, { dtype: l.dtype })),
      template,
    );
    const best = {
      params: tree.map((l: NpArray) => np.mul(l, 2), params),
      loss: Number.POSITIVE_INFINITY,
      epoch: -1,
    };
    const path = join(await tempDir(), "training.safetensors");
    const epochs = [{ epoch: 0, trainLoss: 1.5, valLoss: Number.NaN, lr: 1e-3, seconds: 0.25 }];
    await saveTrainCheckpoint(path, { setup: "s", epoch: 1, params, optState, best, epochs });
    const back = await loadTrainCheckpoint(path, { params, optState: template, setup: "s" });
    const host = async (t: unknown) =>
      Promise.all(
        tree.leaves<NpArray>(t).map(async (l) => [l.dtype, [...l.shape], [...(await l.data())]]),
      );
    expect(back!.setup).toBe("s");
    expect(back!.epoch).toBe(1);
    expect(back!.epochs).toEqual(epochs);
    expect(back!.best.loss).toBe(Number.POSITIVE_INFINITY);
    expect(back!.best.epoch).toBe(-1);
    expect(await host(back!.params)).toEqual(await host(params));
    expect(await host(back!.optState)).toEqual(await host(optState));
    expect(await host(back!.best.params)).toEqual(await host(best.params));
    expect(await loadTrainCheckpoint(`${path}.missing`, { params, optState, setup: "s" })).toBe(
      undefined,
    );
  });
});
