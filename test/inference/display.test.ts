import { inspect } from "node:util";
import { describe, expect, it } from "vitest";
import {
  formatFitResult,
  formatPredictResult,
  type JupyterBundle,
  withDisplay,
} from "../../src/inference/display.js";
import type { FitResult, PredictResult } from "../../src/inference/engine.js";
import { oodUnavailable } from "../../src/inference/ood.js";
import { independent, normal, uniform } from "../../src/inference/priors.js";
import type { RoundRecord } from "../../src/inference/snpe.js";
import { trustReport } from "../../src/inference/trust.js";

const JUPYTER = Symbol.for("Jupyter.display");
const labels = ["phi0", "A"];

/** n draws of two parameters: phi0 = 1 + 0.1·z, A = 3 + 0.5·z', equal weights. */
function draws(n: number): { samples: Float64Array; weights: Float64Array } {
  const samples = new Float64Array(2 * n);
  for (let i = 0; i < n; i++) {
    const u = (i + 0.5) / n; // an evenly spread sample of a symmetric shape
    samples[2 * i] = 1 + 0.1 * Math.sqrt(3) * (2 * u - 1);
    samples[2 * i + 1] = 3 + 0.5 * Math.sqrt(3) * ((2 * ((i * 7919) % n)) / n - 1);
  }
  return { samples, weights: new Float64Array(n).fill(1 / n) };
}

function round(r: number, extra: Partial<RoundRecord> = {}): RoundRecord {
  return {
    round: r,
    nDrawn: 320,
    nSimulated: 320,
    dropped: { nonFinite: 0, threw: 0, crashed: 0 },
    redrawn: 0,
    epochs: Array.from({ length: 30 }, (_, e) => ({
      epoch: e,
      trainLoss: 1,
      valLoss: 1,
      lr: 1e-3,
      seconds: 0.1,
    })),
    bestEpoch: 27,
    bestValLoss: 2.345,
    stoppedEarly: false,
    trained: true,
    seconds: { simulate: 0.2, train: 3.1 },
    warnings: [],
    ...extra,
  };
}

function fitResult(): FitResult {
  return {
    history: [
      round(0, { nEff: 4.2, kishEss: 5.2, efficiency: 4.2 / 320, paretoK: 1.1 }),
      round(1, {
        nEff: 96.5,
        kishEss: 97.5,
        efficiency: 96.5 / 320,
        paretoK: 0.41,
        logEvidence: -80.12,
        logEvidenceSe: 0.05,
        dropped: { nonFinite: 2, threw: 1, crashed: 0 },
        nSimulated: 317,
        warnings: ["something to know"],
        loss: "nll",
        lossScores: { ess: 29.4, apt: -3.86, nll: -0.35, se: 0.14 },
      }),
    ],
    ...draws(1000),
    essHistory: [4.2, 96.5],
    stopped: "all rounds done",
    labels,
  };
}

function predictResult(extra: Partial<PredictResult> = {}): PredictResult {
  return {
    ...draws(2000),
    ess: 612.3,
    kishEss: 613.3,
    efficiency: 0.306,
    logEvidence: -80.05,
    logEvidenceSe: 0.04,
    paretoK: 0.32,
    nSimulations: 2000,
    dropped: 0,
    redrawn: 12,
    pooled: { rows: 0, nEff: 0 },
    surrogateOnly: false,
    warnings: [],
    labels,
    trust: trustReport(oodUnavailable("not part of this test"), {
      ess: 612.3,
      efficiency: 0.306,
      paretoK: 0.32,
      target: 0,
    }),
    ...extra,
  };
}

describe("display of fit results", () => {
  it("formats the rounds and the combined posterior as a table", () => {
    const text = formatFitResult(fitResult());
    expect(text).toContain("NBI fit: 2 rounds, stopped: all rounds done");
    expect(text).toMatch(/round\s+simulations\s+n_eff\s+efficiency\s+k̂/);
    expect(text).toMatch(/\n\s+0\s+320\s+4\.2\s+1\.3%\s+1\.10/);
    expect(text).toMatch(
      /\n\s+1\s+317 \(3 dropped\)\s+96\.5\s+30\.2%\s+0\.41\s+-80\.12 ± 0\.05\s+30/,
    );
    expect(text).toContain("27 (2.345)");
    // The loss each round trained with; a select round's choice says so.
    expect(text).toMatch(/\n\s+0\s.*\s30\s+–\s+27 \(2\.345\)/);
    expect(text).toMatch(/\n\s+1\s.*\s30\s+nll \(select\)\s+27 \(2\.345\)/);
    const own = fitResult();
    const kept = { ...own.history[1]!, trainedFrom: 1 };
    expect(formatFitResult({ ...own, history: [own.history[0]!, kept] })).toMatch(
      /\n\s+1\s.*\s30\s+nll \(select, own draws\)\s+27 \(2\.345\)/,
    );
    // A challenger kept for the next round's pilot, and the pilot's choice.
    const challenger = { ...own.history[1]!, challenger: true };
    expect(formatFitResult({ ...own, history: [own.history[0]!, challenger] })).toMatch(
      /\n\s+1\s.*\s30\s+nll \(select, own draws' challenger kept\)\s+27 \(2\.345\)/,
    );
    const draw = { draws: 40, nEff: 3 };
    const duel = {
      ...own.history[1]!,
      duel: { kept: draw, challenger: draw, winner: "challenger" as const },
    };
    expect(formatFitResult({ ...own, history: [own.history[0]!, duel] })).toMatch(
      /\n\s+1\s.*\s30\s+nll \(select, pilot chose the challenger\)\s+27 \(2\.345\)/,
    );
    // A spread calibrated at held-out draws; one fitted and not kept says nothing.
    const spread = { ess: 20, tau: 1.304, se: 0.2, gain: 0.25, applied: true };
    const widened = { ...own.history[1]!, spread };
    expect(formatFitResult({ ...own, history: [own.history[0]!, widened] })).toMatch(
      /\n\s+1\s.*\s30\s+nll \(select, spread ×1\.30\)\s+27 \(2\.345\)/,
    );
    const notKept = { ...own.history[1]!, spread: { ...spread, applied: false } };
    expect(formatFitResult({ ...own, history: [own.history[0]!, notKept] })).toMatch(
      /\n\s+1\s.*\s30\s+nll \(select\)\s+27 \(2\.345\)/,
    );
    expect(text).toContain("weighted posterior (all rounds):");
    expect(text).toMatch(/phi0\s+1\.000 ± 0\.100/);
    expect(text).toContain("warning: round 1: something to know");
  });

  it("names each warning by its round once, and prints no negative zero", () => {
    const fit = fitResult();
    const history = [round(0, { paretoK: -0.001, warnings: ["round 0: Pareto k̂ = 0.90 > 0.7"] })];
    const text = formatFitResult({ ...fit, history });
    expect(text).toContain("warning: round 0: Pareto k̂ = 0.90 > 0.7");
    expect(text).not.toContain("round 0: round 0");
    expect(text).toMatch(/\n\s+0\s+320\s+–\s+–\s+0\.00\s/);
    expect(formatPredictResult(predictResult({ paretoK: -0.003 }))).toContain("Pareto k̂ 0.00,");
  });

  it("util.inspect and the Jupyter display show the table; the data stays as it was", () => {
    const plain = fitResult();
    const result = withDisplay(fitResult(), "fit");
    expect(inspect(result)).toBe(formatFitResult(result));
    expect(inspect({ result })).toContain("NBI fit: 2 rounds");
    const bundle = (result as unknown as Record<symbol, () => JupyterBundle>)[JUPYTER]!();
    expect(bundle["text/plain"]).toBe(formatFitResult(result));
    expect(bundle["text/html"]).toMatch(/^<table>.*<th style="text-align:right">n_eff<\/th>/);
    expect(bundle["text/html"]).toContain('<td style="text-align:left">phi0</td>');
    // Non-enumerable: keys, spreading, JSON and deep equality see the plain result.
    expect(Object.keys(result)).toEqual(Object.keys(plain));
    expect(JSON.stringify(result)).toBe(JSON.stringify(plain));
    expect(result).toEqual(plain);
    expect(withDisplay({ ...plain }, "fit")).toEqual(result);
  });
});

describe("display of predict results", () => {
  it("formats mean ± std and quantiles per parameter, with n_eff and the evidence", () => {
    const result = withDisplay(predictResult(), "predict");
    const text = inspect(result);
    expect(text).toBe(formatPredictResult(result));
    expect(text).toContain(
      "NBI posterior: n_eff 612.3 of 2000 simulations (efficiency 30.6%), Pareto k̂ 0.32, log evidence -80.05 ± 0.04",
    );
    expect(text).toContain("12 draws outside the prior redrawn");
    expect(text).not.toContain("pooled");
    expect(formatPredictResult(predictResult({ pooled: { rows: 400, nEff: 120.4 } }))).toContain(
      "the fit's 400 weighed draws pooled in (n_eff 120.4 of them)",
    );
    expect(text).toMatch(/parameter\s+mean ± std\s+2\.5%\s+16%\s+50%\s+84%\s+97\.5%/);
    // Uniform on 1 ± 0.1·√3: the quantiles are 1 + 0.1·√3·(2q − 1).
    const q = [0.025, 0.16, 0.5, 0.84, 0.975].map((p) =>
      (1 + 0.1 * Math.sqrt(3) * (2 * p - 1)).toFixed(3),
    );
    expect(text).toMatch(new RegExp(`phi0\\s+1\\.000 ± 0\\.100\\s+${q.join("\\s+")}`));
    expect(text).toMatch(/A\s+3\.00 ± 0\.50\s/);
    const bundle = (result as unknown as Record<symbol, () => JupyterBundle>)[JUPYTER]!();
    expect(bundle["text/html"]).toContain("<caption");
    expect(bundle["text/html"]).toContain('<th style="text-align:right">97.5%</th>');
  });

  it("lists warnings, notes a surrogate-only result, and never throws", () => {
    const warned = formatPredictResult(predictResult({ warnings: ["Pareto k̂ = 0.90 > 0.7"] }));
    expect(warned).toContain("warning: Pareto k̂ = 0.90 > 0.7");
    const surrogate = formatPredictResult(
      predictResult({ surrogateOnly: true, ess: Number.NaN, efficiency: Number.NaN }),
    );
    expect(surrogate).toContain("NBI posterior: 2000 surrogate draws (unweighted)");
    const empty = predictResult({ weights: new Float64Array(2000) });
    expect(formatPredictResult(empty)).toContain("(no draws with positive weight)");
    const broken = withDisplay(
      { ...predictResult(), samples: new Float64Array(3) } as PredictResult,
      "predict",
    );
    expect(() => inspect(broken)).not.toThrow();
    // NaN draws are left out of the summary rather than poisoning it.
    const withNaN = predictResult();
    withNaN.samples[0] = Number.NaN;
    expect(formatPredictResult(withNaN)).toMatch(/phi0\s+1\.000 ± 0\.100/);
  });
});

describe("display of priors", () => {
  it("util.inspect prints a prior as its toString", () => {
    expect(inspect(uniform(0, 1))).toBe("uniform(0, 1)");
    const prior = independent({ phi0: uniform(0, 2 * Math.PI), mu: normal(0, 1) });
    expect(inspect(prior)).toBe(prior.toString());
    expect(inspect(prior)).toBe("independent{phi0: uniform(0, 6.283), mu: normal(0, 1)}");
  });
});
