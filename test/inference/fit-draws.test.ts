/**
 * The fit's weighed draws pooled into predict (fit-draws.ts, fit-draws-file.ts): only at the
 * fit's own target, each group counting by its ESS, and the same after save and load.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BrowserNBI } from "../../src/browser.js";
import { NbiError } from "../../src/errors.js";
import { NBI } from "../../src/inference/engine.js";
import {
  consistentGroups,
  fitDrawsOf,
  sameTarget,
  TARGET_SPOTS,
} from "../../src/inference/fit-draws.js";
import { FIT_DRAWS_FILE, readFitDraws, writeFitDraws } from "../../src/inference/fit-draws-file.js";
import { EVIDENCE_Z } from "../../src/inference/held-rounds.js";
import { hostKey } from "../../src/inference/host.js";
import { importanceWeights } from "../../src/inference/importance.js";
import { gaussianLogLike, thetaLogLike } from "../../src/inference/likelihood.js";
import { independent, uniform } from "../../src/inference/priors.js";
import { tempDirs } from "../helpers/temp-dirs.js";

const tempDir = tempDirs("nbi-fit-draws-");

const prior = independent([uniform(-2, 2), uniform(-2, 2)]);
const xObs = Float32Array.of(0.5, -0.3);
const sigma = 0.3;

/** Rounds as a fit keeps them: n rows of 2 parameters, x = θ, weighed at xObs. */
function round(n: number, seed: number, staged: boolean) {
  const theta = Float64Array.from({ length: 2 * n }, (_, i) => Math.sin(seed * 7.1 + i * 1.3));
  const x = Float32Array.from(theta);
  const ll = gaussianLogLike(sigma, 2);
  const logPrior = prior.logProb(theta);
  const logTarget = Float64Array.from(
    { length: n },
    (_, i) =>
      ll(xObs, x.subarray(2 * i, 2 * i + 2), theta.subarray(2 * i, 2 * i + 2)) + logPrior[i]!,
  );
  // Log-weights within ±0.3 (a proposal near the target): light tails, Pareto k̂ well below 0.7.
  const imp = importanceWeights(Float64Array.from({ length: n }, (_, i) => 0.3 * Math.cos(i)));
  // A staged round's unbiased weights differ from its mixture's: fitDrawsOf keeps the former.
  const estimate = staged
    ? importanceWeights(Float64Array.from({ length: n }, (_, i) => 0.2 * Math.sin(i)))
    : undefined;
  return { theta, x, logTarget, importance: imp, ...(estimate ? { estimate } : {}) };
}

describe("fitDrawsOf and sameTarget", () => {
  const r0 = round(30, 1, false);
  const r2 = round(40, 2, true);
  // Heavy-tailed weights (a few draws hold nearly all): left out, as an unweighed round is.
  const heavy = {
    ...round(40, 3, false),
    importance: importanceWeights(Float64Array.from({ length: 40 }, (_, i) => (i * i) / 40)),
  };
  const rounds = [r0, { theta: new Float64Array(4), x: new Float32Array(4) }, heavy, r2];
  const kept = fitDrawsOf(rounds, 2, 2)!;

  it("keeps the weighed rounds, a staged round's unbiased weights, and spots from the rounds", () => {
    expect(heavy.importance.paretoK).toBeGreaterThan(0.7);
    expect(Math.max(r0.importance.paretoK, r2.estimate!.paretoK)).toBeLessThan(0.7);
    expect(kept.groups.length).toBe(2); // the unweighed and the heavy-tailed rounds left out
    expect(kept.groups[0]!.logWeights).toBe(r0.importance.logWeights);
    expect(kept.groups[1]!.logWeights).toBe(r2.estimate!.logWeights);
    expect(kept.spots.logTarget.length).toBe(TARGET_SPOTS);
    // The last row of the last round is a spot, with its θ, x and log target.
    expect(kept.spots.logTarget[TARGET_SPOTS - 1]).toBe(r2.logTarget[39]);
    expect([...kept.spots.theta.subarray(-2)]).toEqual([...r2.theta.subarray(-2)]);
    expect(fitDrawsOf([rounds[1]!, heavy], 2, 2)).toBeUndefined();
  });

  it("vouches for the fit's target only", () => {
    expect(sameTarget(kept, prior, gaussianLogLike(sigma, 2), xObs)).toBe(true);
    expect(sameTarget(kept, prior, gaussianLogLike(sigma, 2), Float32Array.of(0.5, -0.2))).toBe(
      false,
    );
    expect(sameTarget(kept, prior, gaussianLogLike(0.31, 2), xObs)).toBe(false);
    expect(
      sameTarget(
        kept,
        independent([uniform(-3, 3), uniform(-2, 2)]),
        gaussianLogLike(sigma, 2),
        xObs,
      ),
    ).toBe(false);
    expect(sameTarget(kept, prior, gaussianLogLike(sigma, 3), Float32Array.of(0.5, -0.3, 0))).toBe(
      false,
    );
    const throws = thetaLogLike(() => {
      throw new Error("no");
    });
    expect(sameTarget(kept, prior, throws, xObs)).toBe(false);
  });

  it("round-trips through draws.safetensors and refuses another model's file by name", async () => {
    const path = join(tempDir(), FIT_DRAWS_FILE);
    await writeFitDraws(path, kept);
    const back = await readFitDraws(path, 2);
    expect(back.groups.length).toBe(2);
    back.groups.forEach((g, i) => {
      expect([...g.logWeights]).toEqual([...kept.groups[i]!.logWeights]);
      expect([...g.theta]).toEqual([...kept.groups[i]!.theta]);
      expect([...g.logTarget]).toEqual([...kept.groups[i]!.logTarget]);
    });
    expect([...back.spots.x]).toEqual([...kept.spots.x]);
    expect(sameTarget(back, prior, gaussianLogLike(sigma, 2), xObs)).toBe(true);
    await expect(readFitDraws(path, 3)).rejects.toThrow(NbiError);
    await expect(readFitDraws(path, 3)).rejects.toThrow(
      /draws\.safetensors expected draws of 3 parameters \(flow\.nDims\), got 2/,
    );
  });
});

describe("consistentGroups: a fit round whose evidence falls short is not pooled", () => {
  it("keeps a group whose evidence agrees, drops one short by its missing mass", () => {
    const flat = (n: number, v: number) => new Float64Array(n).fill(v);
    const noisy = (n: number, v: number) =>
      Float64Array.from({ length: n }, (_, i) => v + 0.1 * Math.cos(i));
    const own = importanceWeights(noisy(1000, 0));
    const agrees = {
      theta: new Float64Array(200),
      logTarget: flat(100, 0),
      logWeights: noisy(100, 0),
    };
    // Half the posterior's mass never drawn: every weight, and so the evidence, halved.
    const short = { ...agrees, logWeights: noisy(100, Math.log(0.5)) };
    const single = { theta: new Float64Array(2), logTarget: flat(1, 0), logWeights: flat(1, 0) };
    const groups = [agrees, short, single];
    const kept = consistentGroups(
      groups,
      groups.map((g) => importanceWeights(g.logWeights)),
      own,
    );
    expect(kept).toEqual([agrees]);
    // Within EVIDENCE_Z standard errors: a small shortfall is noise, kept.
    const near = { ...agrees, logWeights: noisy(100, -0.005) };
    expect(consistentGroups([near], [importanceWeights(near.logWeights)], own)).toEqual([near]);
    expect(EVIDENCE_Z).toBe(2);
  });
});

describe("predict pools the fit's weighed draws", () => {
  const engineAt = (path: string) =>
    new NBI({
      flow: { nDims: 2, flowHidden: 16, numBlocks: 2 },
      featurizer: { type: "mlp", dimIn: 2, dimOut: 8, hidden: [16] },
      simulator: (t: Float64Array) => [t[0]!, t[1]!],
      priors: [uniform(-2, 2), uniform(-2, 2)],
      path,
      seed: 5,
    });

  it("at the fit's target only, adding its groups' ESS, and the same after save and load", async () => {
    const engine = engineAt(tempDir());
    const fit = await engine.fit({
      xObs,
      nSims: 200,
      nRounds: 2,
      nEpochs: 20,
      batchSize: 50,
      noise: sigma,
      progress: false,
    });
    // The rounds whose weights have light tails (Pareto k̂ ≤ 0.7) are pooled.
    const light = fit.history.filter((h) => (h.paretoK ?? Number.NaN) <= 0.7);
    expect(light.length).toBeGreaterThan(0);
    const fitRows = light.reduce((a, h) => a + h.nDrawn, 0);
    const key = hostKey(11);
    const opts = { xErr: sigma, nSamples: 400, key, adapt: false };
    const own = await engine.predict(xObs, { ...opts, pool: false });
    const pooled = await engine.predict(xObs, opts);
    expect(own.pooled).toEqual({ rows: 0, nEff: 0 });
    expect(pooled.pooled.rows).toBeGreaterThan(0);
    expect(pooled.pooled.rows).toBeLessThanOrEqual(fitRows);
    expect(pooled.samples.length).toBe(own.samples.length + 2 * pooled.pooled.rows);
    // predict's own draws first, unchanged (adapt false: no stage fitted to the fit's draws).
    expect([...pooled.samples.subarray(0, own.samples.length)]).toEqual([...own.samples]);
    // Independent importance samples combined by their ESS: the Kish ESS add up.
    const pooledKish = pooled.pooled.nEff + 1;
    expect(pooled.kishEss).toBeCloseTo(own.kishEss + pooledKish, 6);
    expect(pooled.nSimulations).toBe(own.nSimulations);
    // The weighted mean at the analytic posterior (N(xObs, σ²), the box's edges ≥ 5σ away).
    for (let j = 0; j < 2; j++) {
      let m = 0;
      pooled.weights.forEach((w, i) => {
        m += w * pooled.samples[2 * i + j]!;
      });
      expect(Math.abs(m - xObs[j]!) / sigma).toBeLessThan(0.1);
    }
    // The pooled draws count towards neffMin: no top-up where predict's own would need one.
    const target = { ...opts, neffMin: Math.floor(pooled.ess) - 1 };
    expect((await engine.predict(xObs, target)).nSimulations).toBe(400);
    expect((await engine.predict(xObs, { ...target, pool: false })).nSimulations).toBeGreaterThan(
      400,
    );
    // Another observation, or other error bars: nothing pooled.
    expect((await engine.predict(Float32Array.of(0.4, -0.3), opts)).pooled.rows).toBe(0);
    expect((await engine.predict(xObs, { ...opts, xErr: 0.35 })).pooled.rows).toBe(0);
    // Saved and loaded: the same pooled result, bit for bit.
    const dir = tempDir();
    await engine.save(dir);
    expect(existsSync(join(dir, FIT_DRAWS_FILE))).toBe(true);
    const loaded = await NBI.load(dir, { simulator: (t: Float64Array) => [t[0]!, t[1]!] });
    const again = await loaded.predict(xObs, opts);
    expect([...again.weights]).toEqual([...pooled.weights]);
    expect(again.pooled).toEqual(pooled.pooled);
    await expect(engine.predict(xObs, { ...opts, pool: 1 as unknown as boolean })).rejects.toThrow(
      /predict: pool expected true or false, got 1/,
    );
  });

  it("an amortized fit keeps no draws, and its save removes a stale file", async () => {
    const engine = engineAt(tempDir());
    await engine.fit({ nSims: 200, nEpochs: 2, batchSize: 50, noise: sigma, progress: false });
    const dir = tempDir();
    await writeFitDraws(join(dir, FIT_DRAWS_FILE), fitDrawsOf([round(30, 3, false)], 2, 2)!);
    await engine.save(dir);
    expect(existsSync(join(dir, FIT_DRAWS_FILE))).toBe(false);
    const post = await engine.predict(xObs, { xErr: sigma, nSamples: 100, adapt: false });
    expect(post.pooled.rows).toBe(0);
  });

  it("the browser engine pools the same way", async () => {
    const engine = new BrowserNBI({
      flow: { nDims: 2, flowHidden: 16, numBlocks: 2 },
      featurizer: { type: "mlp", dimIn: 2, dimOut: 8, hidden: [16] },
      simulator: (t: Float64Array) => [t[0]!, t[1]!],
      priors: [uniform(-2, 2), uniform(-2, 2)],
      dataShape: [2],
      store: "memory",
      backend: "cpu",
      seed: 5,
    });
    await engine.fit({ xObs, xErr: sigma, noise: sigma, nSims: 200, nRounds: 2, nEpochs: 20 });
    const opts = { xErr: sigma, nSamples: 400, adapt: false };
    const own = await engine.predict(xObs, { ...opts, pool: false });
    const pooled = await engine.predict(xObs, opts);
    expect(own.pooled).toEqual({ rows: 0, nEff: 0 });
    expect(pooled.pooled.rows).toBeGreaterThan(0);
    expect(pooled.samples.length).toBe(own.samples.length + 2 * pooled.pooled.rows);
    expect(pooled.ess).toBeGreaterThan(own.ess);
    expect((await engine.predict(Float32Array.of(0.4, -0.3), opts)).pooled.rows).toBe(0);
    await expect(engine.predict(xObs, { ...opts, pool: 1 as unknown as boolean })).rejects.toThrow(
      /predict: pool expected true or false, got 1/,
    );
  });
});
