/**
 * The CLI's round line: what a round measured and, for sequential rounds, the loss it trained
 * with — with a "select" round's scores, or why it could not score.
 */
import { describe, expect, it } from "vitest";
import { roundLine } from "../../src/cli/report.js";
import type { RoundRecord } from "../../src/inference/snpe.js";

const base: RoundRecord = {
  round: 2,
  nDrawn: 320,
  nSimulated: 320,
  dropped: { nonFinite: 0, threw: 0, crashed: 0 },
  redrawn: 0,
  nEff: 95.24,
  efficiency: 0.2976,
  paretoK: 0.412,
  epochs: [],
  bestEpoch: 7,
  bestValLoss: 1.23456,
  stoppedEarly: false,
  trained: true,
  seconds: { simulate: 1.5, train: 2.7 },
  warnings: [],
  loss: "apt",
};

describe("roundLine", () => {
  it("names a sequential round's loss, a select round's scores, or why it could not score", () => {
    expect(roundLine(base)).toBe(
      "round 2: 320 simulations, n_eff 95.2, efficiency 29.8%, Pareto k̂ 0.41, " +
        "best epoch 7 (val loss 1.235), loss apt, 4.2 s",
    );
    expect(roundLine({ ...base, round: 0, loss: "nll" })).not.toMatch(/loss nll/);
    expect(
      roundLine({
        ...base,
        loss: "nll",
        lossScores: { ess: 29.4, apt: -3.863, nll: -0.348, se: 0.141 },
      }),
    ).toMatch(/loss nll \(scores: apt -3\.86, nll -0\.35 ± 0\.14 at ESS 29\), 4\.2 s$/);
    expect(roundLine({ ...base, lossScores: { ess: 2.63 } })).toMatch(
      /loss apt \(too few weighted draws to score: ESS 2\.6\), 4\.2 s$/,
    );
  });
});
