/**
 * The importance-weighted draws of `predict`, for the Node engine (engine.ts) and the browser one
 * (browser.ts) alike: draws from the surrogate at xObs (with its defensive mixture), simulates
 * them, weights them with the exact likelihood, w ∝ p(xObs | θ) p(θ) / q(θ) (the draw → simulate
 * → weigh step is draw-weigh.ts's, which the sequential rounds run too), adapts the proposal
 * when the pilot's efficiency is low (adaptive-is.ts), and tops up until n_eff reaches neffMin.
 * Each stage's draws are weighed against the proposal that drew it, and the stages combined by
 * their ESS (`combineStages`): unbiased, where weighing the adapted stages as one mixture put
 * predict's evidence 0.05–0.1 nats low on sbibm's tasks at 10⁴ simulations (bench/RESULTS.md).
 * How simulations run is the caller's (worker threads, Web Workers, in-process).
 */
import type { Array } from "../trace/array.js";
import {
  ADAPT_BELOW,
  adaptedProposal,
  adaptedStageCount,
  balanceLogDensity,
} from "./adaptive-is.js";
import { concat, drawSimulateWeigh } from "./draw-weigh.js";
import { consistentGroups, type FitDrawGroup } from "./fit-draws.js";
import { keyAt } from "./host.js";
import {
  combineStages,
  type ImportanceResult,
  importanceWeights,
  PARETO_K_UNRELIABLE,
} from "./importance.js";
import type { LogLike } from "./likelihood.js";
import type { Defensive, Surrogate } from "./posterior.js";
import type { Prior } from "./priors.js";
import {
  drawProposal,
  type ProposalContext,
  type ProposalPart,
  proposalLogDensity,
  type RoundProposal,
} from "./proposals.js";
import { simulationSeeds } from "./simulation/rows.js";
import { defensiveFor } from "./snpe.js";
import { logSumExp } from "./special.js";

export interface WeightedDrawsOptions {
  /** The trained surrogate. */
  readonly surrogate: Surrogate;
  readonly prior: Prior;
  /** The observation as the likelihood reads it (NaN where a point is missing, gapped model). */
  readonly xObs: Float32Array;
  /**
   * The observation as the network's host functions take it (default xObs): for the gapped
   * observation model, values and sigmas packed (see gaps.ts).
   */
  readonly netInput?: Float32Array;
  readonly logLike: LogLike;
  readonly key: Array;
  /** Draws planned (see `PredictOptions.nSamples`). */
  readonly nSamples: number;
  /** At most this many draws in all. */
  readonly nMax: number;
  /** Top up until n_eff reaches this. */
  readonly neffMin: number;
  /** Stop topping up when the efficiency falls below this. */
  readonly fAcceptMin: number;
  readonly defensive: Defensive | false | undefined;
  /** Adaptive stages after a pilot (see `PredictOptions.adapt`). */
  readonly adapt: boolean;
  /** Simulates n × d draws with one seed each: outputs n × dataSize and a status per row. */
  readonly simulate: (
    theta: Float64Array,
    seeds: Uint32Array,
    onProgress: (done: number) => void,
  ) => Promise<{ readonly x: Float32Array; readonly status: Uint8Array }>;
  /** Simulations done so far and the first batch's size (top-ups go beyond it). */
  readonly onSimulate?: (done: number, total: number) => void;
  /**
   * The fit's weighed draws at this target (fit-draws.ts; the caller checked `sameTarget`): they
   * join the result, each group by its ESS (the adapted stages are fitted to predict's own).
   */
  readonly earlier?: readonly FitDrawGroup[];
}

export interface WeightedDraws {
  /** Every draw, n × d: predict's own, then the fit's pooled rows. */
  readonly samples: Float64Array;
  /** Their importance weights and ESS, the stages (and the fit's groups) combined. */
  readonly importance: ImportanceResult;
  /** The rows of `samples` that came from the fit (the last ones), and their own n_eff. */
  readonly pooled: { readonly rows: number; readonly nEff: number };
  readonly nSimulations: number;
  readonly dropped: number;
  readonly redrawn: number;
  /** Heavy-tailed weights, an n_eff short of neffMin. */
  readonly warnings: string[];
}

/** A stage of predict's draws: how many, from which proposal, its mixture's log densities. */
interface Stage {
  readonly size: number;
  readonly plan: RoundProposal;
  /** An adapted stage's t mixture alone, as a proposal; null for the surrogate. */
  readonly mixture: RoundProposal | null;
  /** That mixture's log density at every draw so far, batch by batch. */
  readonly mixtureLog: Float64Array[] | null;
}

/** Draws, simulates and weighs predict's samples (see the module comment). */
export async function weightedDraws(o: WeightedDrawsOptions): Promise<WeightedDraws> {
  const { surrogate, prior, xObs: x, logLike, key, nSamples, nMax, neffMin, fAcceptMin } = o;
  const { net } = surrogate;
  const d = net.nDims;
  const warnings: string[] = [];
  let nSimulations = 0;
  let dropped = 0;
  let redrawn = 0;
  const defensive = defensiveFor(net, o.defensive);
  const ctx: ProposalContext = { net, prior, xObs: o.netInput ?? x, checkpoints: [surrogate] };
  const surrogatePart: ProposalPart = {
    kind: "surrogate",
    round: 0,
    ...(defensive ? { defensive } : {}),
    logMass: 0,
  };
  const surrogatePlan: RoundProposal = { parts: [{ weight: 1, part: surrogatePart }] };
  const adapt = o.adapt;
  // Every draw so far, with what its weight under the stages' mixture needs: its prior and
  // likelihood terms (NaN when its simulation was dropped), the surrogate's log density (its
  // mass inside the support not yet divided out), and each adapted stage's mixture log density.
  const thetas: Float64Array[] = [];
  const logPriors: Float64Array[] = [];
  const logTarget: Float64Array[] = [];
  const logSurrogate: Float64Array[] = [];
  // One entry per stage: its draws and, for an adapted stage, its mixture's log density at every
  // draw (filled in for later draws as they come).
  const stages: Stage[] = [];
  let accepted = 0;
  let tried = 0;
  let plan = surrogatePlan;
  // With adaptation, a pilot quarter shows whether the surrogate needs help.
  const pilot = adapt ? Math.min(nSamples, Math.max(Math.ceil(nSamples / 4), 20 * d)) : nSamples;
  let batch = pilot;
  let planned = nSamples - batch;
  let importance: ImportanceResult | undefined;
  let thetaAll: Float64Array = new Float64Array(0);
  // The fit's weighed draws at this target: each group an importance sample of its own.
  const offered = (o.earlier ?? []).filter((g) => g.logWeights.some(Number.isFinite));
  const offeredImp = offered.map((g) => importanceWeights(g.logWeights));
  let ownGroups: Float64Array[] = [];
  /** predict's draws and the fit's groups that agree with them, combined as the result holds them. */
  const pooledResult = () => {
    const kept = consistentGroups(offered, offeredImp, importance!);
    const combined =
      kept.length > 0
        ? combineStages([...ownGroups, ...kept.map((g) => g.logWeights)])
        : importance!;
    return { kept, combined };
  };
  for (let attempt = 0; batch > 0; attempt++) {
    const step = await drawSimulateWeigh({
      draw: () =>
        drawProposal(ctx, plan, keyAt(key, 2 * attempt), batch, {
          kind: "surrogate",
          ...(defensive ? { defensive } : {}),
          truncationEps: 1e-4,
        }),
      nDims: d,
      simulate: (theta) =>
        o.simulate(theta, simulationSeeds(keyAt(key, 2 * attempt + 1), batch), (done) =>
          o.onSimulate?.(nSimulations + done, nSamples),
        ),
      prior,
      logLike,
      xObs: x,
    });
    const { draw, logPrior: lp } = step;
    const draws = draw.theta;
    const target = step.logTarget!; // NaN where a simulation was dropped: counted, never weighted
    redrawn += draw.redrawn;
    if (step.simulation) nSimulations += batch;
    dropped += step.dropped;
    if (plan === surrogatePlan) {
      accepted += batch;
      tried += batch + draw.redrawn;
    }
    // The stage's mixture at the earlier draws, and every adapted mixture at the new ones.
    // (from the drawn proposal: its mass on the exactly mapped region estimated)
    const adapted = draw.proposal.parts.find((p) => p.part.kind === "adapted");
    const mixture = adapted ? { parts: [{ weight: 1, part: adapted.part }] } : null;
    const mixtureLog: Float64Array[] | null = mixture ? [] : null;
    for (let b = 0; mixture && b < thetas.length; b++)
      mixtureLog!.push(await proposalLogDensity(ctx, mixture, thetas[b]!, logPriors[b]!));
    stages.push({ size: batch, plan, mixture, mixtureLog });
    thetas.push(draws);
    logPriors.push(lp);
    logTarget.push(target);
    logSurrogate.push(await proposalLogDensity(ctx, surrogatePlan, draws, lp));
    for (const st of stages) {
      if (st.mixture) st.mixtureLog!.push(await proposalLogDensity(ctx, st.mixture, draws, lp));
    }
    thetaAll = concat(thetas, Float64Array);
    const logQ = stageLogDensities(stages, logSurrogate, Math.log(accepted / tried));
    const targets = concat(logTarget, Float64Array);
    ownGroups = stageGroups(stages, logQ, targets);
    importance = combineStages(ownGroups);
    const drawn = thetaAll.length / d;
    const efficiency = importance.nEff / drawn;
    if (planned > 0) {
      // The planned draws left: the rest of the budget, in up to ten adapted stages.
      if (plan === surrogatePlan && efficiency >= ADAPT_BELOW) {
        batch = planned;
        planned = 0;
        continue;
      }
      const rest = nSamples - pilot;
      batch = Math.min(planned, Math.max(Math.ceil(rest / adaptedStageCount(rest, d)), 2));
      planned -= batch;
    } else {
      const nEff = pooledResult().combined.nEff;
      if (nEff >= neffMin || drawn >= nMax || efficiency < fAcceptMin) break;
      // Enough further draws to reach neffMin at the efficiency seen so far.
      const need = Math.ceil((neffMin - nEff) / Math.max(efficiency, 1e-3));
      batch = Math.min(Math.max(need, 2), nMax - drawn);
    }
    if (adapt && efficiency < ADAPT_BELOW && importance.nValid > 0) {
      // Fitted to predict's own draws only: fitted to the fit's as well (as a staged round's
      // stages are to the earlier rounds'), the stages lost SLCP's modes at 10³ simulations
      // (bench/RESULTS.md, 2026-12-06 morning).
      plan = adaptedProposal(
        prior,
        { ...surrogatePart, logMass: Math.log(accepted / tried) },
        thetaAll,
        importanceWeights(balanceLogWeights(stages, logQ, targets)).weights,
        d,
        keyAt(key, 100_000 + attempt),
        targets,
      );
    }
  }
  const { kept: earlier, combined: imp } = pooledResult();
  const samples =
    earlier.length > 0
      ? concat([thetaAll, ...earlier.map((g) => g.theta)], Float64Array)
      : thetaAll;
  const pooledRows = (samples.length - thetaAll.length) / d;
  if (imp.paretoK > PARETO_K_UNRELIABLE) {
    warnings.push(
      `Pareto k̂ = ${imp.paretoK.toFixed(2)} > ${PARETO_K_UNRELIABLE}: the weights are heavy-tailed; the weighted posterior is unreliable`,
    );
  }
  if (neffMin > 0 && imp.nEff < neffMin) {
    warnings.push(
      `n_eff ${imp.nEff.toFixed(1)} is below neffMin ${neffMin} after ${nSimulations} simulations`,
    );
  }
  return {
    samples,
    importance: imp,
    pooled: {
      rows: pooledRows,
      nEff: earlier.length > 0 ? combineStages(earlier.map((g) => g.logWeights)).nEff : 0,
    },
    nSimulations,
    dropped,
    redrawn,
    warnings,
  };
}

/**
 * Each stage's proposal density at every draw so far: the surrogate (normalised on the support by
 * its estimated mass) or, for an adapted stage, its t mixture with the surrogate.
 */
function stageLogDensities(
  stages: readonly Stage[],
  logSurrogate: readonly Float64Array[],
  logMass: number,
): Float64Array[] {
  const ls = concat(logSurrogate, Float64Array).map((v) => v - logMass);
  return stages.map((st) => {
    if (!st.mixtureLog) return ls;
    const mix = concat(st.mixtureLog, Float64Array);
    const share = st.plan.parts.find((p) => p.part.kind !== "adapted")?.weight ?? 0;
    return ls.map((v, i) => logSumExp([Math.log(share) + v, Math.log(1 - share) + mix[i]!]));
  });
}

/**
 * log w = log p(x|θ) + log p(θ) − log q(θ) for every draw, q the stages' proposals as one
 * deterministic mixture (`balanceLogDensity`): the weights the next stage's mixture is fitted to.
 * Biased as estimates (each draw is weighed against mixtures fitted to it), they spread weight
 * over every stage that reached a region, which steadies the fits.
 */
function balanceLogWeights(
  stages: readonly Stage[],
  logQ: readonly Float64Array[],
  logTarget: Float64Array,
): Float64Array {
  const lq = balanceLogDensity(
    stages.map((st) => st.size),
    logQ,
  );
  // NaN (a dropped simulation) stays NaN: excluded from the weights and counted.
  return logTarget.map((t, i) => t - lq[i]!);
}

/**
 * The draws' log-weights in groups for `combineStages`: each maximal run of consecutive stages
 * drawn from one proposal (the pilot and the surrogate's rest, say) is one group, its draws
 * weighed against that proposal alone, which was fixed before they were drawn.
 */
function stageGroups(
  stages: readonly Stage[],
  logQ: readonly Float64Array[],
  logTarget: Float64Array,
): Float64Array[] {
  const groups: Float64Array[] = [];
  let at = 0;
  for (let g = 0; g < stages.length; ) {
    let end = g + 1;
    while (end < stages.length && stages[end]!.plan === stages[g]!.plan) end++;
    const size = stages.slice(g, end).reduce((a, st) => a + st.size, 0);
    groups.push(
      Float64Array.from({ length: size }, (_, i) => logTarget[at + i]! - logQ[g]![at + i]!),
    );
    at += size;
    g = end;
  }
  return groups;
}
