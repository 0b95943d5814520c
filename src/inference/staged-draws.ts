/**
 * A sequential round's draws in adaptive stages, weighed stage by stage with the fit's likelihood
 * (the caller simulates a stage first when the likelihood reads simulations; snpe.ts keeps those
 * simulations for the round): a pilot from the round's planned proposal (the
 * defensive surrogate), then — while the weights are poor — stages from a Student-t mixture
 * fitted to the round's weighted draws so far and to the earlier rounds' (`pooledDraws`), mixed
 * with the surrogate (predict's adaptive importance sampling, adaptive-is.ts, on the round's own
 * budget). The round's proposal is the
 * stages' deterministic mixture Σ_g (n_g/N) q_g, written as one `RoundProposal`, so the round's
 * weights, the losses that read proposal densities and a resumed run all use its exact density
 * as they use any other plan's. No simulation and no likelihood call is added: every draw is
 * weighed once, and the round simulates the N draws as before.
 *
 * Why: a round's efficiency is its surrogate's, and a surrogate from a few hundred simulations is
 * rough; the stages move the round's draws (its training data and its weighted posterior) toward
 * where the weights say the posterior is. The earlier rounds' draws are exact importance samples
 * of the same posterior (each weighed against the proposal that drew it): a round of a few hundred
 * draws adapts from them as well as from its own, and its pilot's poor weights no longer decide
 * the first adapted stage alone (nbi's sine at nbi's settings: bench/RESULTS.md).
 *
 * After a round that kept a challenger (snpe.ts: its own draws' candidate, which its held-out
 * draws could not judge), the pilot is split between the kept surrogate and the
 * challenger, each half weighed against its own network, and the half with the larger n_eff
 * decides which network the rest of the round draws from (`PilotDuel`); both stay in the round's
 * mixture with their shares.
 */
import { failText } from "../errors.js";
import type { Array } from "../trace/array.js";
import { ADAPT_BELOW, adaptedProposal } from "./adaptive-is.js";
import { concat } from "./draw-weigh.js";
import { keyAt } from "./host.js";
import { combineRounds, importanceWeights, type WeightedRound } from "./importance.js";
import {
  type DrawStage,
  drawProposal,
  type PilotDraws,
  type PilotDuel,
  type ProposalContext,
  type ProposalDraw,
  type ProposalOptions,
  type ProposalPart,
  proposalLogDensity,
  type RoundProposal,
} from "./proposals.js";

/** What `stagedDraws` needs. */
export interface StagedDrawsOptions {
  readonly ctx: ProposalContext;
  /** The round's planned proposal: a single surrogate part (the defensive surrogate). */
  readonly plan: RoundProposal;
  readonly key: Array;
  /** Draws in all. */
  readonly n: number;
  readonly options: ProposalOptions;
  /**
   * log p(xObs | θ) + log p(θ) at each row of θ (NaN where a draw cannot be weighed): the
   * numerator of its importance weight.
   */
  readonly logTarget: (theta: Float64Array) => Promise<Float64Array>;
  /**
   * Earlier rounds' weighed draws (each weighed against the proposal that drew it): the adapted
   * stages' mixtures are fitted to them as well as to this round's draws.
   */
  readonly earlier?: readonly WeighedDraws[];
}

/**
 * Weighed draws as nbi combines rounds (`WeightedRound`: normalised weights and their n_eff),
 * with log p(xObs | θ) + log p(θ) at each draw (NaN: dropped).
 */
export interface WeighedDraws extends WeightedRound {
  readonly logTarget: Float64Array;
}

/**
 * Several sets of weighed draws as one set to fit a mixture to, combined as nbi combines rounds
 * (`combineRounds`: each set's normalised weights scaled by its n_eff), so a set drawn far from
 * the posterior (the prior round) counts for the little it is worth, not for its raw weights'
 * scale. Sets with n_eff 0 are left out; undefined when none is left.
 */
export function pooledDraws(
  sets: readonly WeighedDraws[],
  dim: number,
): { theta: Float64Array; logTarget: Float64Array; weights: Float64Array } | undefined {
  // combineRounds leaves out the same sets (n_eff ≤ 0): their log targets are left out here.
  const kept = sets.filter((s) => s.nEff > 0);
  if (kept.length === 0) return undefined;
  const { theta, weights } = combineRounds(kept, dim);
  const logTarget = concat(
    kept.map((s) => s.logTarget),
    Float64Array,
  );
  return { theta, logTarget, weights };
}

/**
 * The pilot's share of a round and the number of adapted stages after it: a quarter, then up to
 * five stages of at least max(25, 5·d) draws each (a round holds hundreds of draws, not predict's
 * thousands, so the stages are smaller than predict's; each refits the mixture).
 */
export function roundStages(n: number, dim: number): { pilot: number; stages: number } {
  const pilot = Math.max(1, Math.ceil(n / 4));
  const rest = n - pilot;
  const stages = rest > 0 ? Math.max(1, Math.min(5, Math.floor(rest / Math.max(25, 5 * dim)))) : 0;
  return { pilot, stages };
}

/** Whether a plan can be drawn in stages: one surrogate part (the "surrogate" proposal). */
export function stageable(plan: RoundProposal): boolean {
  return plan.parts.length === 1 && plan.parts[0]!.part.kind === "surrogate";
}

/** The challenger's half of a duelling pilot is drawn with this child of the round's key. */
const DUEL_KEY = 200_000;

/** A surrogate network the stages draw from, and its draws kept against those tried. */
interface SurrogateDraws {
  readonly part: Extract<ProposalPart, { kind: "surrogate" }>;
  accepted: number;
  tried: number;
}

/** One stage: its size, which surrogate it drew from, and its adapted part (null: none). */
interface Stage {
  readonly size: number;
  readonly surrogate: number;
  readonly adapted: { share: number; part: ProposalPart } | null;
}

/** The round's draws in adaptive stages (see the module comment), with their log targets. */
export async function stagedDraws(
  o: StagedDrawsOptions,
): Promise<ProposalDraw & { readonly logTarget: Float64Array }> {
  const { ctx, key, n, options } = o;
  let plan = o.plan;
  if (!stageable(plan)) {
    failText(
      "stagedDraws",
      "plan",
      "a single surrogate part",
      `parts ${plan.parts.map((p) => p.part.kind).join(", ") || "none"}`,
    );
  }
  const d = ctx.net.nDims;
  const kept = plan.parts[0]!.part as Extract<ProposalPart, { kind: "surrogate" }>;
  const surrogates: SurrogateDraws[] = [{ part: kept, accepted: 0, tried: 0 }];
  const { pilot, stages } = roundStages(n, d);
  // A previous round that kept a challenger: the pilot is split between the two networks.
  const duelling = !kept.challenger && ctx.challengers?.[kept.round] !== undefined && pilot >= 2;
  if (duelling) surrogates.push({ part: { ...kept, challenger: true }, accepted: 0, tried: 0 });
  const thetas: Float64Array[] = [];
  const targets: Float64Array[] = [];
  const drawn: Stage[] = [];
  let redrawn = 0;
  /** The surrogate the stages draw from (the duel's winner once the pilot is drawn). */
  let current = 0;
  const logMassOf = (s: SurrogateDraws) => Math.log(s.accepted / s.tried);
  let stagePlan = plan;
  let batch = pilot;
  let left = n - pilot;
  let combined: RoundProposal = plan;
  let pilotDraws: PilotDraws | undefined;
  let duel: PilotDuel | undefined;
  /** One stage's draws from `stagePlan` and their log targets, recorded as stage `which`'s. */
  const drawStage = async (
    stagePlan: RoundProposal,
    which: number,
    stageKey: Array,
    size: number,
    pure: boolean,
  ) => {
    const draw = await drawProposal(ctx, stagePlan, stageKey, size, options);
    redrawn += draw.redrawn;
    if (pure) {
      surrogates[which]!.accepted += size;
      surrogates[which]!.tried += size + draw.redrawn;
    }
    const part = draw.proposal.parts.find((p) => p.part.kind === "adapted");
    const share = draw.proposal.parts.find((p) => p.part.kind === "surrogate")?.weight ?? 1;
    drawn.push({ size, surrogate: which, adapted: part ? { share, part: part.part } : null });
    thetas.push(draw.theta);
    const target = await o.logTarget(draw.theta);
    targets.push(target);
    return { draw, target };
  };
  for (let stage = 0; batch > 0; stage++) {
    if (stage === 0 && duelling) {
      const halves: PilotDraws[] = [];
      for (const which of [0, 1]) {
        const size = which === 0 ? Math.ceil(pilot / 2) : pilot - Math.ceil(pilot / 2);
        const half: RoundProposal = { parts: [{ weight: 1, part: surrogates[which]!.part }] };
        const stageKey = which === 0 ? keyAt(key, 0) : keyAt(key, DUEL_KEY);
        const { draw, target } = await drawStage(half, which, stageKey, size, true);
        const logQ = await proposalLogDensity(
          ctx,
          draw.proposal,
          draw.theta,
          ctx.prior.logProb(draw.theta),
        );
        const logW = target.map((t, i) => t - logQ[i]!);
        const nEff = logW.some(Number.isFinite) ? importanceWeights(logW).nEff : 0;
        halves.push({ draws: size, nEff });
      }
      const [keptHalf, challengerHalf] = halves as [PilotDraws, PilotDraws];
      // Equal halves (or the challenger's one draw fewer): the larger n_eff is the better
      // proposal, once it holds one effective draw (below that a pilot shows nothing).
      current = challengerHalf.nEff > keptHalf.nEff && challengerHalf.nEff >= 1 ? 1 : 0;
      duel = {
        kept: keptHalf,
        challenger: challengerHalf,
        winner: current ? "challenger" : "kept",
      };
      pilotDraws = current ? challengerHalf : keptHalf;
      plan = { parts: [{ weight: 1, part: surrogates[current]!.part }] };
    } else {
      await drawStage(stagePlan, current, keyAt(key, stage), batch, stagePlan === plan);
    }
    combined = stagesProposal(
      surrogates.map((s) => ({ ...s.part, logMass: logMassOf(s) })),
      drawn,
    );
    if (left === 0) break;
    const theta = concat(thetas, Float64Array);
    const logTarget = concat(targets, Float64Array);
    const logQ = await proposalLogDensity(ctx, combined, theta, ctx.prior.logProb(theta));
    const logW = logTarget.map((t, i) => t - logQ[i]!);
    const valid = logW.some(Number.isFinite);
    const importance = valid ? importanceWeights(logW) : undefined;
    const efficiency = importance ? importance.nEff / (theta.length / d) : 0;
    if (stage === 0 && !duel) pilotDraws = { draws: theta.length / d, nEff: importance?.nEff ?? 0 };
    const remaining = stages - (drawn.length - (duel ? 2 : 1));
    batch = remaining > 1 ? Math.ceil(left / remaining) : left;
    left -= batch;
    // Fitted to earlier rounds' weighed draws too: a round holds a few hundred draws, and the
    // earlier rounds' have already found where the posterior is.
    const fitSet = importance
      ? ((o.earlier?.length
          ? pooledDraws(
              [
                ...o.earlier,
                { theta, logTarget, weights: importance.weights, nEff: importance.nEff },
              ],
              d,
            )
          : undefined) ?? { theta, logTarget, weights: importance.weights })
      : undefined;
    const surrogate = surrogates[current]!;
    stagePlan =
      fitSet && efficiency < ADAPT_BELOW
        ? adaptedProposal(
            ctx.prior,
            { ...surrogate.part, logMass: logMassOf(surrogate) },
            fitSet.theta,
            fitSet.weights,
            d,
            keyAt(key, 100_000 + stage),
            fitSet.logTarget,
          )
        : plan;
  }
  const accepted = surrogates.reduce((a, s) => a + s.accepted, 0);
  const tried = surrogates.reduce((a, s) => a + s.tried, 0);
  // Each stage's own proposal, with the surrogates' masses as the round's mixture has them.
  const stageParts = drawn.map(({ size, surrogate, adapted: a }): DrawStage => {
    const s = surrogates[surrogate]!;
    const part = { ...s.part, logMass: logMassOf(s) };
    return {
      size,
      proposal: a
        ? {
            parts: [
              { weight: a.share, part },
              { weight: 1 - a.share, part: a.part },
            ],
          }
        : { parts: [{ weight: 1, part }] },
    };
  });
  return {
    theta: concat(thetas, Float64Array),
    proposal: combined,
    stages: stageParts,
    redrawn,
    acceptance: accepted / tried,
    logTarget: concat(targets, Float64Array),
    ...(pilotDraws ? { pilot: pilotDraws } : {}),
    ...(duel ? { duel } : {}),
  };
}

/**
 * The stages as one mixture: each surrogate network with its share of every stage that drew
 * from it (all of a surrogate stage), and each adapted stage's mixture with the rest of that
 * stage, in proportion to the stages' sizes (the balance heuristic).
 */
function stagesProposal(
  surrogates: readonly Extract<ProposalPart, { kind: "surrogate" }>[],
  stages: readonly Stage[],
): RoundProposal {
  const total = stages.reduce((a, s) => a + s.size, 0);
  const surrogateWeights = surrogates.map(() => 0);
  const parts: { weight: number; part: ProposalPart }[] = [];
  for (const { size, surrogate, adapted: a } of stages) {
    const f = size / total;
    if (!a) surrogateWeights[surrogate]! += f;
    else {
      surrogateWeights[surrogate]! += f * a.share;
      parts.push({ weight: f * (1 - a.share), part: a.part });
    }
  }
  return {
    parts: [...surrogates.map((part, k) => ({ weight: surrogateWeights[k]!, part })), ...parts],
  };
}
