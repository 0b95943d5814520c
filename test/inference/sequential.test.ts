/**
 * Sequential rounds beyond nbi's NLL: the APT and proposal-corrected losses, truncated and mixture
 * proposals with exact densities, and validation sets that stay held out across rounds. Fixed keys
 * throughout; the end-to-end runs check efficiency, means and mode weights against analytic truths.
 */
import { describe, expect, it } from "vitest";
import { balanceLogDensity } from "../../src/inference/adaptive-is.js";
import { NBI } from "../../src/inference/engine.js";
import { hostKey, keyAt, normals, uniforms } from "../../src/inference/host.js";
import { combineRounds, importanceWeights } from "../../src/inference/importance.js";
import { thetaLogLike } from "../../src/inference/likelihood.js";
import {
  chooseLoss,
  decideLoss,
  SELECT_MIN_ESS,
  SELECT_Z,
} from "../../src/inference/loss-selection.js";
import {
  initPosterior,
  posteriorNetwork,
  surrogateLogProb,
  surrogateOf,
  surrogateSample,
} from "../../src/inference/posterior.js";
import { independent, normal, uniform } from "../../src/inference/priors.js";
import {
  drawProposal,
  PRIOR_PROPOSAL,
  type ProposalContext,
  proposalJson,
  proposalLogDensity,
  type RoundProposal,
  revivedProposal,
  truncationThreshold,
} from "../../src/inference/proposals.js";
import {
  type Checkpoint,
  GATED_NLL_BELOW,
  proposalCorrection,
  type RoundData,
  roundLoss,
  snpeIS,
  validationMask,
} from "../../src/inference/snpe.js";
import { pooledDraws, roundStages, stagedDraws } from "../../src/inference/staged-draws.js";
import { atomIndices, trainPosterior } from "../../src/inference/train.js";
import type { Array as NpArray } from "../../src/trace/array.js";
import * as tree from "../../src/trace/tree.js";
import { tempDirs } from "../helpers/temp-dirs.js";

const tempDir = tempDirs("nbi-seq-");

/** The small network of these tests: 2-D θ, 2 data numbers, an MLP featurizer. */
function smallNet() {
  return posteriorNetwork(
    { nDims: 2, flowHidden: 16, numBlocks: 2 },
    { type: "mlp", dimIn: 2, dimOut: 8, hidden: [16] },
    [2],
  );
}

/** The small network with random (untrained) parameters. */
async function smallSurrogate(seed: number) {
  const net = smallNet();
  const params = await initPosterior(net, hostKey(seed));
  const checkpoint: Checkpoint = {
    params,
    scales: {
      xMean: new Float64Array(1),
      xStd: new Float64Array(1).fill(1),
      thetaMean: new Float64Array(2),
      thetaStd: new Float64Array(2).fill(0.8),
    },
  };
  return { net, checkpoint };
}

/** The proposals' context on the box [−2, 2]² at xObs (0.3, 0.1) with these surrogates' rounds. */
function boxContext(
  net: Awaited<ReturnType<typeof smallSurrogate>>["net"],
  checkpoints: Checkpoint[],
): ProposalContext {
  const prior = independent([uniform(-2, 2), uniform(-2, 2)]);
  return { net, prior, xObs: Float32Array.from([0.3, 0.1]), checkpoints };
}

/** ∫ q̃ dθ over the prior's support, by importance sampling from the prior: E_p[q̃/p]. */
async function integralOverPrior(ctx: ProposalContext, proposal: RoundProposal, seed: number) {
  const fromPrior = ctx.prior.sample(hostKey(seed), 40_000);
  const lp = ctx.prior.logProb(fromPrior);
  const dens = await proposalLogDensity(ctx, proposal, fromPrior, lp);
  return dens.reduce((s, v, i) => s + Math.exp(v - lp[i]!), 0) / lp.length;
}

/** n prior draws of the 2-D Gaussian-linear toy x = θ + N(0, 0.5²). */
function toyData(n: number, seed: number) {
  const theta = Float64Array.from(normals(hostKey(seed), 2 * n));
  const eps = normals(hostKey(seed + 1), 2 * n);
  const x = Float32Array.from(theta, (t, i) => t + 0.5 * eps[i]!);
  return { theta, x };
}

describe("atomic APT", () => {
  it("draws distinct contrasting atoms from the batch, after each example's own row", () => {
    const batch = Int32Array.from({ length: 16 }, (_, i) => 100 + 3 * i);
    const atoms = 6;
    const idx = atomIndices(batch, atoms, uniforms(hostKey(3), batch.length * (atoms - 1)));
    expect(idx.length).toBe(batch.length * atoms);
    for (let i = 0; i < batch.length; i++) {
      const row = [...idx.subarray(i * atoms, (i + 1) * atoms)];
      expect(row[0]).toBe(batch[i]);
      expect(new Set(row).size).toBe(atoms); // distinct, and none repeats the example's own θ
      for (const j of row) expect(batch.includes(j)).toBe(true);
    }
    // With as many atoms as the batch holds, every row of the batch is an atom of every example.
    const all = atomIndices(batch, 16, uniforms(hostKey(4), 16 * 15));
    for (let i = 0; i < 16; i++) expect(new Set(all.subarray(i * 16, (i + 1) * 16)).size).toBe(16);
  });

  it("with one atom trains exactly as NLL; with more, a different loss on the same data", async () => {
    const { net, checkpoint } = await smallSurrogate(0);
    const data = toyData(256, 10);
    const logPrior = normal(0, 1).logProb(data.theta.filter((_, i) => i % 2 === 0));
    const options = { nEpochs: 2, batchSize: 32, lr: 1e-3, minLr: 1e-4, key: hostKey(5) };
    const train = (extra: object) =>
      trainPosterior(
        net,
        checkpoint.params,
        checkpoint.scales,
        { ...data, logPrior },
        {
          ...options,
          ...extra,
        },
      );
    const nll = await train({ loss: "nll" });
    const one = await train({ loss: "apt", atoms: 1 });
    const ten = await train({ loss: "apt", atoms: 10 });
    expect(one.epochs.map((e) => e.trainLoss)).toEqual(nll.epochs.map((e) => e.trainLoss));
    expect(ten.epochs[0]!.trainLoss).not.toBe(nll.epochs[0]!.trainLoss);
    // The atomic loss is a log-ratio of softmax terms: between 0 and log(atoms) at the start.
    expect(ten.epochs[0]!.trainLoss).toBeGreaterThan(0);
    expect(ten.epochs[0]!.trainLoss).toBeLessThan(Math.log(10) + 0.5);
  });
});

describe("validation that does not leak", () => {
  it("a fixed mask decides the split: those rows are never trained on", async () => {
    const { net, checkpoint } = await smallSurrogate(1);
    const data = toyData(200, 20);
    const valMask = validationMask(hostKey(7), 200, 0.1);
    expect(valMask.reduce((s, v) => s + v, 0)).toBe(20);
    const r = await trainPosterior(
      net,
      checkpoint.params,
      checkpoint.scales,
      { ...data, valMask },
      {
        nEpochs: 1,
        batchSize: 16,
        lr: 1e-3,
        minLr: 1e-3,
        key: hostKey(8),
      },
    );
    expect([r.nTrain, r.nVal]).toEqual([180, 20]);
  });

  it("each round's validation rows keep their assignment, so no round validates on rows an earlier round trained on", async () => {
    const prior = independent([normal(0, 1), normal(0, 1)]);
    const net = smallNet();
    const xObs = Float32Array.from([0.4, -0.3]);
    const base = {
      net,
      prior,
      simulator: (t: Float64Array) => [t[0]!, t[1]!],
      xObs,
      noise: 0.5,
      logLike: thetaLogLike((x, t) => -2 * ((x[0]! - t[0]!) ** 2 + (x[1]! - t[1]!) ** 2)),
      nSims: 100,
      nEpochs: 3,
      batchSize: 20,
      lr: 1e-3,
      key: hostKey(9),
    };
    const two = await snpeIS({ ...base, nRounds: 2 });
    const three = await snpeIS({ ...base, nRounds: 3 });
    // Rounds 0 and 1 have the same assignment when round 2 trains as when round 1 did.
    for (let r = 0; r < 2; r++) {
      expect(three.state.data[r]!.valMask).toEqual(two.state.data[r]!.valMask);
      const held = three.state.data[r]!.valMask.reduce((s, v) => s + v, 0);
      expect(held).toBe(Math.round(three.state.data[r]!.theta.length / 2 / 10));
    }
    // Round 0 trains on prior draws, so on the NLL; later rounds chose between APT and NLL.
    expect(three.history[0]!.loss).toBe("nll");
    for (const h of three.history.slice(1)) expect(["apt", "nll"]).toContain(h.loss);
  });
});

describe("the gated loss", () => {
  it("is NLL while a round's draws weigh below ½ per dimension, APT from there on or without weights", () => {
    // 3-D: efficiency^(1/3) < ½ ⟺ efficiency < 12.5%.
    expect(roundLoss("gated", 0.12, 3)).toBe("nll");
    expect(roundLoss("gated", 0.13, 3)).toBe("apt");
    expect(roundLoss("gated", 0.5 ** 10 * 0.99, 10)).toBe("nll");
    expect(roundLoss("gated", 0.5 ** 10 * 1.01, 10)).toBe("apt");
    expect(roundLoss("gated", undefined, 2)).toBe("apt");
    for (const loss of ["nll", "apt", "weighted-nll"] as const)
      expect(roundLoss(loss, 0.001, 2)).toBe(loss);
  });

  it("records per round the loss its draws' efficiency chose, from a wide first proposal to a close one", async () => {
    const prior = independent([normal(0, 1), normal(0, 1)]);
    const net = smallNet();
    // Posterior sd 0.1 around (0.4, −0.3): round 1's surrogate (one round of 150 prior draws)
    // is far wider than that; training on the rounds narrows it.
    const r = await snpeIS({
      net,
      prior,
      simulator: (t: Float64Array) => [t[0]!, t[1]!],
      xObs: Float32Array.from([0.4, -0.3]),
      noise: 0.1,
      logLike: thetaLogLike((x, t) => -50 * ((x[0]! - t[0]!) ** 2 + (x[1]! - t[1]!) ** 2)),
      nSims: 150,
      nRounds: 4,
      nEpochs: 25,
      batchSize: 25,
      lr: 3e-3,
      key: hostKey(21),
      loss: "gated",
    });
    const later = r.history.slice(1);
    for (const h of later)
      expect(h.loss).toBe(h.efficiency! ** (1 / 2) < GATED_NLL_BELOW ? "nll" : "apt");
    expect(later.map((h) => h.loss)).toContain("nll");
    expect(later.map((h) => h.loss)).toContain("apt");
  });
});

describe("the select loss", () => {
  it("keeps APT unless NLL leads by more than two standard errors at ≥ SELECT_MIN_ESS effective draws", () => {
    const n = 40;
    const uniformW = new Float64Array(n).fill(1 / n);
    const apt = Float64Array.from({ length: n }, (_, i) => -1 - 0.01 * i);
    // NLL ahead by 0.5 at every draw: no spread, so any positive lead is significant.
    const ahead = apt.map((v) => v + 0.5);
    const won = decideLoss(uniformW, apt, ahead);
    expect(won.loss).toBe("nll");
    expect(won.scores.nll! - won.scores.apt!).toBeCloseTo(0.5, 12);
    expect(won.scores.se).toBeCloseTo(0, 12);
    expect(won.scores.ess).toBeCloseTo(n, 9);
    // The same lead ±1.5 around it: se = 1.5/√40 ≈ 0.24, two of which (0.47) < 0.5 wins; ±2
    // (2 se = 0.63) does not.
    const noisy = (spread: number) => apt.map((v, i) => v + 0.5 + (i % 2 === 0 ? spread : -spread));
    expect(decideLoss(uniformW, apt, noisy(1.5)).loss).toBe("nll");
    expect(decideLoss(uniformW, apt, noisy(1.5)).scores.se).toBeCloseTo(1.5 / Math.sqrt(n), 9);
    expect(decideLoss(uniformW, apt, noisy(2)).loss).toBe("apt");
    // Too few effective draws: 9 equal weights (Kish ESS 9 < 10) cannot choose NLL.
    expect(SELECT_MIN_ESS).toBe(10);
    expect(SELECT_Z).toBe(2);
    const nine = Float64Array.from({ length: n }, (_, i) => (i < 9 ? 1 / 9 : 0));
    expect(decideLoss(nine, apt, ahead).scores.ess).toBeCloseTo(9, 9);
    expect(decideLoss(nine, apt, ahead).loss).toBe("apt");
    // APT ahead, or a tie: APT.
    expect(decideLoss(uniformW, ahead, apt).loss).toBe("apt");
    expect(decideLoss(uniformW, apt, apt).loss).toBe("apt");
    // A candidate with no density at a weighted draw loses.
    const hole = ahead.slice();
    hole[3] = Number.NEGATIVE_INFINITY;
    expect(decideLoss(uniformW, apt, hole).loss).toBe("apt");
    expect(decideLoss(uniformW, hole, ahead).loss).toBe("nll");
  });

  it("trains both candidates from the round's warm start and keeps the one its scores chose", async () => {
    const prior = independent([normal(0, 1), normal(0, 1)]);
    const net = smallNet();
    // Posterior sd 0.25 around (0.4, −0.3): round 0's prior draws weigh at ~6%.
    const xObs = Float32Array.from([0.4, -0.3]);
    const stepped = new Set<string>();
    const run = (loss: "select" | "apt" | "nll", precision = 8, key = 22) =>
      snpeIS({
        net,
        prior,
        simulator: (t: Float64Array) => [t[0]!, t[1]!],
        xObs,
        noise: 0.1,
        logLike: thetaLogLike((x, t) => -precision * ((x[0]! - t[0]!) ** 2 + (x[1]! - t[1]!) ** 2)),
        nSims: 150,
        nRounds: 2,
        nEpochs: 15,
        batchSize: 25,
        lr: 3e-3,
        key: hostKey(key),
        ...(loss === "select"
          ? {
              onStep: (round: number, _e: number, _s: number, _n: number, candidate?: string) =>
                stepped.add(`${round} ${candidate ?? "-"}`),
            }
          : {}),
        loss,
      });
    const [selected, apt, nll] = [await run("select"), await run("apt"), await run("nll")];
    const round1 = selected.history[1]!;
    expect(selected.history[0]!.lossScores).toBeUndefined();
    expect(round1.lossScores).toBeDefined();
    // Rescore the single-loss runs' networks at the select run's weighted draws.
    const data = selected.state.data;
    const draws = combineRounds(
      data.map((r) => ({
        theta: r.theta,
        weights: r.importance!.weights,
        nEff: r.importance!.nEff,
      })),
      2,
    );
    const again = await chooseLoss(
      net,
      xObs,
      { apt: apt.state.current, nll: nll.state.current },
      draws,
    );
    expect(again.scores).toEqual(round1.lossScores);
    expect(round1.loss).toBe(again.loss);
    const kept = again.loss === "apt" ? apt : nll;
    const leaves = (r: typeof kept) =>
      Promise.all(tree.leaves<NpArray>(r.state.current.params).map((a) => a.data()));
    expect(await leaves(selected)).toEqual(await leaves(kept));
    const losses = (r: typeof kept) =>
      r.history[1]!.epochs.map((e) => [e.epoch, e.trainLoss, e.valLoss]);
    expect(losses(selected)).toEqual(losses(kept));

    // Posterior sd 0.05: round 1's weighted draws are too few (Kish ESS ~4) for NLL to win, so
    // the round trains APT alone, exactly as the "apt" loss does, and records only the ESS.
    const [narrowSelect, narrowApt] = [await run("select", 200, 22), await run("apt", 200, 22)];
    const narrow = narrowSelect.history[1]!;
    expect(narrow.loss).toBe("apt");
    expect(Object.keys(narrow.lossScores!)).toEqual(["ess"]);
    expect(narrow.lossScores!.ess).toBeGreaterThan(1);
    expect(narrow.lossScores!.ess).toBeLessThan(SELECT_MIN_ESS);
    expect(await leaves(narrowSelect)).toEqual(await leaves(narrowApt));
    // Round 0 trains NLL alone; round 1's steps name both candidates, in turn (the narrow
    // run's round 1 trains APT alone, unnamed).
    expect([...stepped]).toEqual(["0 -", "1 apt", "1 nll", "1 -"]);
    // At this key NLL's candidate leads by ~8 standard errors at ~70 effective draws.
    expect(round1.loss).toBe("nll");
  }, 120_000);
});

describe("proposals with exact densities", () => {
  it("the truncation region holds 1 − ε of the surrogate's mass, and truncated draws stay in the prior", async () => {
    const { net, checkpoint } = await smallSurrogate(2);
    const ctx = boxContext(net, [checkpoint]);
    const prior = ctx.prior;
    const eps = 0.1;
    const tau = await truncationThreshold(ctx, 0, hostKey(11), eps);
    const surrogate = surrogateOf(net, checkpoint);
    const fresh = await surrogateSample(surrogate, hostKey(12), ctx.xObs, 20_000);
    const logQ = await surrogateLogProb(surrogate, ctx.xObs, fresh);
    const inside = logQ.reduce((s, v) => s + (v >= tau ? 1 : 0), 0) / logQ.length;
    expect(Math.abs(inside - (1 - eps))).toBeLessThan(0.01); // MC sd ≈ 0.003

    const plan = {
      parts: [
        { weight: 1, part: { kind: "truncated" as const, round: 0, threshold: 0, logMass: 0 } },
      ],
    };
    const draw = await drawProposal(ctx, plan, hostKey(13), 2000, {
      kind: "truncated",
      truncationEps: eps,
    });
    expect(prior.inSupport(draw.theta).every((v) => v === 1)).toBe(true);
    const lq = await surrogateLogProb(surrogate, ctx.xObs, draw.theta);
    const threshold = (draw.proposal.parts[0]!.part as { threshold: number }).threshold;
    expect(lq.every((v) => v >= threshold)).toBe(true);
    // Its density is the prior's over the region's prior mass: it integrates to 1.
    expect(Math.abs((await integralOverPrior(ctx, draw.proposal, 14)) - 1)).toBeLessThan(0.03);
  });

  it("a mixture of the prior and surrogates has a density that integrates to 1 on the prior's support", async () => {
    const a = await smallSurrogate(3);
    const b = await smallSurrogate(4);
    const ctx = boxContext(a.net, [a.checkpoint, b.checkpoint]);
    const prior = ctx.prior;
    const defensive = { alpha: 0.3, tau: 2 };
    const plan = {
      parts: [
        { weight: 0.1, part: { kind: "prior" as const } },
        { weight: 0.3, part: { kind: "surrogate" as const, round: 0, defensive, logMass: 0 } },
        { weight: 0.6, part: { kind: "surrogate" as const, round: 1, defensive, logMass: 0 } },
      ],
    };
    const draw = await drawProposal(ctx, plan, hostKey(15), 4000, {
      kind: "mixture",
      defensive,
      truncationEps: 1e-4,
    });
    expect(prior.inSupport(draw.theta).every((v) => v === 1)).toBe(true);
    expect(Math.abs((await integralOverPrior(ctx, draw.proposal, 16)) - 1)).toBeLessThan(0.05);
  });

  it("the proposal-corrected NLL's weights are all 1 on prior draws", async () => {
    const { net, checkpoint } = await smallSurrogate(5);
    const prior = independent([normal(0, 1), normal(0, 1)]);
    const ctx: ProposalContext = {
      net,
      prior,
      xObs: Float32Array.from([0, 0]),
      checkpoints: [checkpoint],
    };
    const round = (seed: number): RoundData => {
      const { theta, x } = toyData(50, seed);
      return {
        theta,
        x,
        logPrior: prior.logProb(theta),
        valMask: new Uint8Array(50),
        proposal: PRIOR_PROPOSAL,
      };
    };
    const w = await proposalCorrection(ctx, [round(30), round(40)]);
    expect(w.length).toBe(100);
    for (const v of w) expect(v).toBeCloseTo(1, 12);
  });
});

describe("rounds drawn in adaptive stages", () => {
  it("a pilot quarter, then at most five stages of at least max(25, 5·d) draws", () => {
    expect(roundStages(320, 3)).toEqual({ pilot: 80, stages: 5 });
    expect(roundStages(100, 10)).toEqual({ pilot: 25, stages: 1 });
    expect(roundStages(1000, 5)).toEqual({ pilot: 250, stages: 5 });
    expect(roundStages(1, 2)).toEqual({ pilot: 1, stages: 0 });
  });

  it("draw far more efficiently than the surrogate they start from, with a density that integrates to 1 and survives the store", async () => {
    const { net, checkpoint } = await smallSurrogate(6);
    const ctx = boxContext(net, [checkpoint]);
    const prior = ctx.prior;
    // A posterior the (untrained) surrogate knows nothing of: N((1, −1), 0.15²) on the box.
    const logTarget = async (theta: Float64Array) => {
      const lp = prior.logProb(theta);
      return lp.map(
        (v, i) =>
          v - 0.5 * (((theta[2 * i]! - 1) / 0.15) ** 2 + ((theta[2 * i + 1]! + 1) / 0.15) ** 2),
      );
    };
    const defensive = { alpha: 0.3, tau: 2 };
    const plan: RoundProposal = {
      parts: [{ weight: 1, part: { kind: "surrogate", round: 0, defensive, logMass: 0 } }],
    };
    const options = { kind: "surrogate" as const, defensive, truncationEps: 1e-4 };
    const efficiency = async (theta: Float64Array, proposal: RoundProposal) => {
      const lq = await proposalLogDensity(ctx, proposal, theta, prior.logProb(theta));
      const lt = await logTarget(theta);
      return importanceWeights(lt.map((v, i) => v - lq[i]!)).efficiency;
    };
    const n = 800;
    await expect(
      stagedDraws({ ctx, plan: PRIOR_PROPOSAL, key: hostKey(17), n, options, logTarget }),
    ).rejects.toThrow(/plan expected a single surrogate part, got parts prior/);
    const staged = await stagedDraws({ ctx, plan, key: hostKey(17), n, options, logTarget });
    expect(staged.theta.length).toBe(2 * n);
    expect(prior.inSupport(staged.theta).every((v) => v === 1)).toBe(true);
    expect(staged.proposal.parts.some((p) => p.part.kind === "adapted")).toBe(true);
    expect(staged.proposal.parts.reduce((s, p) => s + p.weight, 0)).toBeCloseTo(1, 12);
    const plain = await drawProposal(ctx, plan, hostKey(17), n, options);
    const stagedEff = await efficiency(staged.theta, staged.proposal);
    const plainEff = await efficiency(plain.theta, plain.proposal);
    expect(stagedEff).toBeGreaterThan(0.1);
    expect(stagedEff).toBeGreaterThan(5 * plainEff);
    // The stages' mixture is a density on the support: what the round's weights divide by.
    expect(Math.abs((await integralOverPrior(ctx, staged.proposal, 18)) - 1)).toBeLessThan(0.05);
    // Written to the store's JSON and read back, it gives the same density bit for bit.
    const back = revivedProposal(JSON.parse(JSON.stringify(proposalJson(staged.proposal))));
    const lp = prior.logProb(staged.theta);
    expect(await proposalLogDensity(ctx, back, staged.theta, lp)).toEqual(
      await proposalLogDensity(ctx, staged.proposal, staged.theta, lp),
    );
    // Each stage comes with the proposal that drew it (the round's unbiased weights divide by
    // it): the pilot's is the surrogate, each is a density on the support, and in proportion to
    // their sizes they are the round's mixture.
    const stages = staged.stages!;
    expect(stages.reduce((a, st) => a + st.size, 0)).toBe(n);
    expect(stages[0]!.proposal.parts.map((p) => p.part.kind)).toEqual(["surrogate"]);
    const last = stages.at(-1)!.proposal;
    expect(last.parts.map((p) => p.part.kind)).toEqual(["surrogate", "adapted"]);
    expect(Math.abs((await integralOverPrior(ctx, last, 19)) - 1)).toBeLessThan(0.05);
    const perStage = await Promise.all(
      stages.map((st) => proposalLogDensity(ctx, st.proposal, staged.theta, lp)),
    );
    const mixed = balanceLogDensity(
      stages.map((st) => st.size),
      perStage,
    );
    const whole = await proposalLogDensity(ctx, staged.proposal, staged.theta, lp);
    for (const i of [0, 100, 400, n - 1]) expect(mixed[i]).toBeCloseTo(whole[i]!, 10);
  });

  it("pool sets of weighed draws, each counting for its n_eff, and leave out a set with n_eff 0", () => {
    // Set a: two equal weights (n_eff = 1/Σw² − 1 = 1); set b: three equal and one invalid (n_eff 2).
    const weighed = (theta: number[], logTarget: number[], logWeights: number[]) => {
      const imp = importanceWeights(Float64Array.from(logWeights));
      return {
        theta: Float64Array.from(theta),
        logTarget: Float64Array.from(logTarget),
        weights: imp.weights,
        nEff: imp.nEff,
      };
    };
    const a = weighed([0, 1], [-1, -2], [5, 5]);
    const b = weighed([2, 3, 4, 5], [-3, -4, -5, -6], [0, 0, 0, Number.NEGATIVE_INFINITY]);
    // One draw carrying all the weight: n_eff 0.
    const none = weighed([9], [-9], [0]);
    expect(pooledDraws([none], 1)).toBeUndefined();
    const pooled = pooledDraws([a, none, b], 1)!;
    expect([...pooled.theta]).toEqual([0, 1, 2, 3, 4, 5]);
    expect([...pooled.logTarget]).toEqual([-1, -2, -3, -4, -5, -6]);
    const expected = [1 / 6, 1 / 6, 2 / 9, 2 / 9, 2 / 9, 0];
    for (const [i, w] of pooled.weights.entries()) expect(w).toBeCloseTo(expected[i]!, 12);
  });

  it("fit their mixtures to earlier rounds' weighed draws too: a small round after one that found the posterior draws more efficiently", async () => {
    const { net, checkpoint } = await smallSurrogate(6);
    const ctx = boxContext(net, [checkpoint]);
    const prior = ctx.prior;
    // The posterior N((1, −1), 0.15²), which the untrained surrogate knows nothing of.
    const logTarget = async (theta: Float64Array) =>
      prior
        .logProb(theta)
        .map(
          (v, i) =>
            v - 0.5 * (((theta[2 * i]! - 1) / 0.15) ** 2 + ((theta[2 * i + 1]! + 1) / 0.15) ** 2),
        );
    // An earlier round: 400 draws of N((1, −1), 0.3²) weighed against that density.
    const z = normals(hostKey(40), 800);
    const theta = Float64Array.from(z, (v, i) => (i % 2 === 0 ? 1 : -1) + 0.3 * v);
    const logQ = Float64Array.from(
      { length: 400 },
      (_, i) => -0.5 * (z[2 * i]! ** 2 + z[2 * i + 1]! ** 2) - 2 * Math.log(0.3),
    );
    const target = await logTarget(theta);
    const imp = importanceWeights(target.map((t, i) => t - logQ[i]!));
    const earlier = [{ theta, logTarget: target, weights: imp.weights, nEff: imp.nEff }];
    const defensive = { alpha: 0.3, tau: 2 };
    const plan: RoundProposal = {
      parts: [{ weight: 1, part: { kind: "surrogate", round: 0, defensive, logMass: 0 } }],
    };
    const options = { kind: "surrogate" as const, defensive, truncationEps: 1e-4 };
    const efficiency = async (o: { theta: Float64Array; proposal: RoundProposal }) => {
      const lq = await proposalLogDensity(ctx, o.proposal, o.theta, prior.logProb(o.theta));
      const lt = await logTarget(o.theta);
      return importanceWeights(lt.map((v, i) => v - lq[i]!)).efficiency;
    };
    const n = 120;
    const alone = await stagedDraws({ ctx, plan, key: hostKey(41), n, options, logTarget });
    const pooled = await stagedDraws({
      ctx,
      plan,
      key: hostKey(41),
      n,
      options,
      logTarget,
      earlier,
    });
    // The same pilot: the earlier draws change only what the adapted stages are fitted to.
    expect(pooled.theta.subarray(0, 60)).toEqual(alone.theta.subarray(0, 60));
    const [effAlone, effPooled] = [await efficiency(alone), await efficiency(pooled)];
    expect(effPooled).toBeGreaterThan(0.3);
    expect(effPooled).toBeGreaterThan(10 * effAlone);
  });

  it("lift a fit's later rounds with a likelihood of θ alone, calling it once per draw; adaptRounds: false draws from the surrogate", async () => {
    const sigma = 0.05;
    const xObs = [0.7, -0.4];
    const run = async (adaptRounds: boolean) => {
      const engine = new NBI({
        flow: { nDims: 2, flowHidden: 16, numBlocks: 2 },
        featurizer: { type: "mlp", dimIn: 2, dimOut: 8, hidden: [16] },
        simulator: (t: Float64Array) => [t[0]!, t[1]!],
        priors: [uniform(-2, 2), uniform(-2, 2)],
        path: tempDir(),
        seed: 4,
      });
      let calls = 0;
      const logLike = thetaLogLike((x, t) => {
        calls++;
        return -0.5 * (((x[0]! - t[0]!) / sigma) ** 2 + ((x[1]! - t[1]!) / sigma) ** 2);
      });
      const fit = await engine.fit({
        xObs,
        nSims: 200,
        nRounds: 2,
        nEpochs: 5,
        batchSize: 50,
        noise: sigma,
        logLike,
        adaptRounds,
        progress: false,
      });
      return { efficiency: fit.history[1]!.efficiency!, calls };
    };
    const [on, off] = [await run(true), await run(false)];
    expect(on.efficiency).toBeGreaterThan(2 * off.efficiency);
    // The stages weigh each draw once, and the round reuses those weights.
    expect(on.calls).toBe(off.calls);
  });
});

describe("sequential rounds end to end (default loss and proposal)", () => {
  it("5-D Gaussian-linear: 3 rounds keep predict efficiency ≥ 20% and the weighted mean within 0.1 σ", async () => {
    const d = 5;
    const sigma = 0.3;
    const truth = [0.5, -1, 0.2, 1.2, -0.4];
    const eps = normals(hostKey(21), d);
    const xObs = truth.map((t, i) => t + sigma * eps[i]!);
    const engine = new NBI({
      flow: { nDims: d, flowHidden: 32, numBlocks: 3 },
      featurizer: { type: "mlp", dimIn: d, dimOut: 16, hidden: [32] },
      simulator: (t: Float64Array) => Array.from(t),
      priors: Array.from({ length: d }, () => normal(0, 1)),
      path: tempDir(),
      seed: 1,
    });
    const fit = await engine.fit({
      xObs,
      nSims: 500,
      nRounds: 3,
      nEpochs: 40,
      batchSize: 50,
      noise: sigma,
      earlyStopPatience: 10,
      progress: false,
    });
    expect(fit.history.length).toBe(3);
    const post = await engine.predict(xObs, { xErr: sigma, nSamples: 2000 });
    expect(post.efficiency).toBeGreaterThanOrEqual(0.2);
    const s2 = (sigma * sigma) / (1 + sigma * sigma); // analytic posterior N(x/(1+σ²), σ²/(1+σ²))
    for (let j = 0; j < d; j++) {
      let m = 0;
      for (let i = 0; i < post.weights.length; i++)
        m += post.weights[i]! * post.samples[i * d + j]!;
      expect(Math.abs(m - xObs[j]! / (1 + sigma * sigma)) / Math.sqrt(s2)).toBeLessThan(0.1);
    }
  });

  it("two modes (x = θ0², θ1): both keep their weight within 0.05 of ½", async () => {
    const sigma = 0.1;
    const xObs = [1, 0.5];
    const engine = new NBI({
      flow: { nDims: 2, flowHidden: 32, numBlocks: 3 },
      featurizer: { type: "mlp", dimIn: 2, dimOut: 16, hidden: [32] },
      simulator: (t: Float64Array) => [t[0]! * t[0]!, t[1]!],
      priors: [uniform(-2, 2), uniform(-2, 2)],
      path: tempDir(),
      seed: 2,
    });
    await engine.fit({
      xObs,
      nSims: 600,
      nRounds: 3,
      nEpochs: 40,
      batchSize: 50,
      noise: sigma,
      earlyStopPatience: 10,
      progress: false,
    });
    const post = await engine.predict(xObs, {
      xErr: sigma,
      nSamples: 4000,
      key: keyAt(hostKey(3), 0),
    });
    let right = 0;
    for (let i = 0; i < post.weights.length; i++)
      if (post.samples[2 * i]! > 0) right += post.weights[i]!;
    expect(Math.abs(right - 0.5)).toBeLessThan(0.05);
    expect(post.ess).toBeGreaterThan(400);
  });
});
