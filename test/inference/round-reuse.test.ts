/**
 * Which rounds' simulations a sequential round trains on (fit's nReuse): the rule itself, and a
 * fixed-key run where the select loss's rounds whose draws found the posterior train a third
 * candidate on their own draws, kept or not by its score at held-out draws.
 */
import { describe, expect, it } from "vitest";
import { hostKey } from "../../src/inference/host.js";
import { thetaLogLike } from "../../src/inference/likelihood.js";
import { SELECT_MIN_ESS, SELECT_Z } from "../../src/inference/loss-selection.js";
import { posteriorNetwork } from "../../src/inference/posterior.js";
import { independent, normal } from "../../src/inference/priors.js";
import {
  firstTrainingRound,
  offersChallenger,
  REUSE_EFFECTIVE_PER_DIM,
  REUSE_ROWS_PER_DIM,
  type ReuseRound,
} from "../../src/inference/round-reuse.js";
import { type RoundRecord, snpeIS } from "../../src/inference/snpe.js";
import { roundStages } from "../../src/inference/staged-draws.js";

const round = (rows: number, nEff?: number): ReuseRound => ({
  logPrior: { length: rows },
  ...(nEff !== undefined ? { importance: { nEff } } : {}),
});

describe("firstTrainingRound", () => {
  const rounds = [round(320, 0.2), round(320, 12), round(320, 150)];

  it("counts nbi's n_reuse back from the round training now; −1 takes every round", () => {
    expect(firstTrainingRound(rounds, 0, 3)).toBe(2);
    expect(firstTrainingRound(rounds, 1, 3)).toBe(1);
    expect(firstTrainingRound(rounds, 5, 3)).toBe(0);
    expect(firstTrainingRound(rounds, -1, 3)).toBe(0);
    expect(firstTrainingRound(rounds.slice(0, 1), 0, 3)).toBe(0);
  });

  it('"auto": a round alone once its draws hold 3 effective samples and 100 rows per parameter', () => {
    const d = 3;
    const enough = REUSE_EFFECTIVE_PER_DIM * d;
    const rows = REUSE_ROWS_PER_DIM * d;
    expect(firstTrainingRound(rounds, "auto", d)).toBe(2);
    // One effective draw short, one row short, or no weights at all: every round.
    expect(firstTrainingRound([...rounds, round(rows, enough - 0.01)], "auto", d)).toBe(0);
    expect(firstTrainingRound([...rounds, round(rows - 1, 1000)], "auto", d)).toBe(0);
    expect(firstTrainingRound([...rounds, round(rows)], "auto", d)).toBe(0);
    expect(firstTrainingRound([...rounds, round(rows, enough)], "auto", d)).toBe(3);
    // Round 0 has nothing earlier to leave out.
    expect(firstTrainingRound([round(rows, 1000)], "auto", d)).toBe(0);
    // The rule reads the round training now only: an efficient round before it does not count.
    expect(firstTrainingRound([round(rows, 0), round(rows, 500), round(rows, 1)], "auto", d)).toBe(
      0,
    );
  });
});

/**
 * A 3-round select fit on the 2-D toy x = θ + N(0, sd²) at xObs (0.4, −0.3): its history, and per
 * round the trainings it ran ("<candidate> <steps per epoch>"; "one" outside a select).
 */
async function toyFit(
  nReuse: "auto" | -1,
  sd: number,
  nSims: number,
  seed: number,
  fAcceptMin?: number,
) {
  const trainings = new Map<number, Set<string>>();
  const r = await snpeIS({
    net: posteriorNetwork(
      { nDims: 2, flowHidden: 16, numBlocks: 2 },
      { type: "mlp", dimIn: 2, dimOut: 8, hidden: [16] },
      [2],
    ),
    prior: independent([normal(0, 1), normal(0, 1)]),
    simulator: (t: Float64Array) => [t[0]!, t[1]!],
    xObs: Float32Array.from([0.4, -0.3]),
    noise: sd,
    logLike: thetaLogLike(
      (x, t) => -(1 / (2 * sd ** 2)) * ((x[0]! - t[0]!) ** 2 + (x[1]! - t[1]!) ** 2),
    ),
    nSims,
    nRounds: 3,
    nEpochs: 6,
    batchSize: BATCH,
    lr: 3e-3,
    key: hostKey(seed),
    nReuse,
    ...(fAcceptMin !== undefined ? { fAcceptMin } : {}),
    onStep: (round, _epoch, _step, perEpoch, candidate) => {
      const seen = trainings.get(round) ?? new Set<string>();
      trainings.set(round, seen.add(`${candidate ?? "one"} ${perEpoch}`));
    },
  });
  // Each round holds out round(10%) of its rows; full batches of the rest make an epoch.
  const steps = (rounds: number) =>
    Math.floor((rounds * (nSims - Math.round(0.1 * nSims))) / BATCH);
  return { r, trainings, steps };
}
const BATCH = 20;

describe("offersChallenger", () => {
  it("any round after the first with 100 rows per parameter, whatever its effective draws", () => {
    const d = 3;
    const rows = REUSE_ROWS_PER_DIM * d;
    expect(offersChallenger([round(rows, 0), round(rows, 0.5)], d)).toBe(true);
    expect(offersChallenger([round(rows, 0), round(rows)], d)).toBe(true);
    expect(offersChallenger([round(rows, 0), round(rows - 1, 500)], d)).toBe(false);
    // Round 0 has no earlier round to be judged against.
    expect(offersChallenger([round(rows, 500)], d)).toBe(false);
  });
});

describe('nReuse "auto" in a fit', () => {
  it("a select round whose own draws found the posterior also trains NLL on them alone, kept when it scores better at held-out draws", async () => {
    // Posterior sd 0.1: ~1 prior draw in 40 is effective; rounds 1 and 2 found the posterior.
    const { r, trainings, steps } = await toyFit("auto", 0.1, 400, 31);
    expect(r.history[0]!.lossScores).toBeUndefined();
    for (const h of r.history.slice(1)) {
      // Each round found the posterior: a third candidate trained on its own rows.
      expect(h.nEff!).toBeGreaterThanOrEqual(REUSE_EFFECTIVE_PER_DIM * 2);
      const all = steps(h.round + 1);
      expect([...trainings.get(h.round)!]).toEqual([`apt ${all}`, `nll ${all}`, `nll ${steps(1)}`]);
      // The record keeps the held-out comparison, and what it chose.
      const own = h.lossScores!.own!;
      expect(own.ess).toBeGreaterThanOrEqual(SELECT_MIN_ESS);
      const ownKept = own.own! - own.pooled! > SELECT_Z * own.se!;
      expect(h.trainedFrom).toBe(ownKept ? h.round : 0);
      if (ownKept) expect(h.loss).toBe("nll");
    }
    // At this key round 1 kept its own draws' candidate, round 2 the one on every round's.
    expect(r.history.map((h) => h.trainedFrom)).toEqual([0, 1, 0]);
    // nReuse −1: every candidate on every round's rows, as before.
    const all = await toyFit(-1, 0.1, 400, 31);
    expect([...all.trainings.get(2)!]).toEqual([`apt ${steps(3)}`, `nll ${steps(3)}`]);
    expect(all.r.history.map((h) => h.trainedFrom)).toEqual([0, 0, 0]);
  });

  it("too few effective held-out draws to judge by in the last round: the third candidate is not trained", async () => {
    // Posterior sd 0.05 and rounds of 240: the rounds find the posterior, but their 24
    // validation rows each hold too few effective draws (and no round follows the last).
    const { r, trainings, steps } = await toyFit("auto", 0.05, 240, 31);
    const last = r.history[2]!;
    expect(last.nEff!).toBeGreaterThanOrEqual(REUSE_EFFECTIVE_PER_DIM * 2);
    expect(last.lossScores!.own!.ess).toBeLessThan(SELECT_MIN_ESS);
    expect(Object.keys(last.lossScores!.own!)).toEqual(["ess"]);
    expect([...trainings.get(2)!]).toEqual([`apt ${steps(3)}`, `nll ${steps(3)}`]);
    expect(last.trainedFrom).toBe(0);
    expect(last.challenger).toBeUndefined();
  });

  it("too few held-out (or own effective) draws before a round drawn in stages: the candidate is a challenger, and the next round's pilot chooses between the two networks", async () => {
    const nSims = 300;
    const { r, trainings, steps } = await toyFit("auto", 0.05, nSims, 5);
    const [, first, last] = r.history as [RoundRecord, RoundRecord, RoundRecord];
    // Round 1 found the posterior, but its held-out draws cannot judge its own candidate: it
    // trains it (a third training, on its own rows) and keeps it as a challenger.
    // (The reuse rule reads the weights the stages are fitted to, the round's mixture's; the
    // history reports each stage weighed against its own proposal.)
    expect(r.state.data[1]!.importance!.nEff).toBeGreaterThanOrEqual(REUSE_EFFECTIVE_PER_DIM * 2);
    expect(first.lossScores!.own!.ess).toBeLessThan(SELECT_MIN_ESS);
    expect(first.challenger).toBe(true);
    expect(first.trainedFrom).toBe(0);
    expect([...trainings.get(1)!]).toEqual([
      `apt ${steps(2)}`,
      `nll ${steps(2)}`,
      `nll ${steps(1)}`,
    ]);
    // Round 2's pilot (a quarter of the round) is split between the two networks, each half
    // weighed against its own network; the larger n_eff (at least one draw) draws the rest.
    const duel = last.duel!;
    expect(duel.kept.draws + duel.challenger.draws).toBe(roundStages(nSims, 2).pilot);
    expect(Math.abs(duel.kept.draws - duel.challenger.draws)).toBeLessThanOrEqual(1);
    const better = duel.challenger.nEff > duel.kept.nEff && duel.challenger.nEff >= 1;
    expect(duel.winner).toBe(better ? "challenger" : "kept");
    // At this key the challenger's half was the better proposal (2.8 against 1.4 effective draws).
    expect(duel.winner).toBe("challenger");
    expect(last.pilot).toEqual(duel.challenger);
    // The round's proposal holds both networks with their exact shares: the kept surrogate its
    // pilot half only, the challenger its half and its share of the adapted stages.
    const parts = last.proposal!.parts;
    const surrogates = parts.filter((p) => p.part.kind === "surrogate");
    expect(
      surrogates.map((p) => p.part.kind === "surrogate" && p.part.challenger === true),
    ).toEqual([false, true]);
    expect(surrogates[0]!.weight).toBeCloseTo(duel.kept.draws / nSims, 12);
    expect(surrogates[1]!.weight).toBeGreaterThan(duel.challenger.draws / nSims);
    expect(parts.reduce((a, p) => a + p.weight, 0)).toBeCloseTo(1, 12);
    // The last round has no next round to judge a challenger.
    expect(last.challenger).toBeUndefined();
    // A round whose own draws hold too few effective ones for the reuse rule still offers one:
    // the pilot judges it with fresh draws (here round 1's 4.6 effective draws of 240 under its
    // mixture; 22.5 with each stage against its own proposal).
    const few = await toyFit("auto", 0.05, 240, 32);
    const offered = few.r.history[1]!;
    expect(few.r.state.data[1]!.importance!.nEff).toBeLessThan(REUSE_EFFECTIVE_PER_DIM * 2);
    // The history reports the round's unbiased estimate: here far above its mixture's n_eff,
    // whose poor pilot stage weighs on every draw.
    expect(offered.nEff).toBe(few.r.state.data[1]!.estimate!.nEff);
    expect(offered.nEff!).toBeGreaterThan(4 * few.r.state.data[1]!.importance!.nEff);
    expect(offered.challenger).toBe(true);
    expect([...few.trainings.get(1)!]).toContain(`nll ${few.steps(1)}`);
    expect(few.r.history[2]!.duel).toBeDefined();
    // The challenger that won the pilot is the round's start: a run stopped by fAcceptMin
    // once round 2's draws weigh above 30% (round 1's 16.5% did not) ends on it, untrained.
    const stopped = await toyFit("auto", 0.05, nSims, 5, 0.3);
    expect(stopped.r.stopped).toMatch(/fAcceptMin/);
    expect(stopped.r.history[2]!.duel!.winner).toBe("challenger");
    expect(stopped.r.state.current).toBe(stopped.r.state.data[1]!.challenger);
    // The same run's weights are finite and the result combines all three rounds.
    expect(r.essHistory.every((e) => Number.isFinite(e))).toBe(true);
  });
});
