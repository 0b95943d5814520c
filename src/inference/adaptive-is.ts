/**
 * Adaptive importance sampling for predict (population Monte Carlo, Cappé et al. 2004): a pilot
 * stage draws from the surrogate; when its weights are poor, later stages draw from a Student-t
 * mixture fitted to the weighted draws so far (on the unbounded image of the prior's support;
 * degenerate weights tempered first; 8 or 16 components, chosen on held-out draws), mixed with
 * the surrogate so that no region the surrogate covers is lost. Each stage is fitted to the draws
 * so far weighed against all the stages' proposals as one deterministic mixture (weights that
 * spread over every stage that reached a region, steadying the fits); the estimates weigh each
 * draw against the proposal that drew it and combine the stages by their ESS (importance.ts's
 * `combineStages`), which keeps them unbiased: the mixture's weights are not, since every draw is
 * weighed against mixtures fitted to it (bench/RESULTS.md).
 */
import type { Array } from "../trace/array.js";
import { kishEss } from "./importance.js";
import type { Prior } from "./priors.js";
import type { ProposalPart, RoundProposal } from "./proposals.js";
import { logSumExp } from "./special.js";
import { fitTMixture, tMixtureLogDensity } from "./t-mixture.js";
import { toUnbounded } from "./unbounded.js";

/** Below this pilot efficiency (n_eff / draws), later stages draw from an adapted proposal. */
export const ADAPT_BELOW = 0.5;
/** The surrogate's share of an adapted stage's proposal. */
export const SURROGATE_SHARE = 0.2;
/**
 * How many adapted stages share the draws after the pilot: each refits the mixture, so more and
 * smaller stages adapt faster, as long as each holds enough draws to refit on (max(100, 20·d)).
 */
export function adaptedStageCount(draws: number, dim: number): number {
  return Math.max(1, Math.min(10, Math.floor(draws / Math.max(100, 20 * dim))));
}

/**
 * log Σ_g (n_g / N) q_g(θ) at every draw: the stages' proposals as one deterministic mixture
 * (multiple importance sampling's balance heuristic). `sizes[g]` is stage g's number of draws and
 * `logQ[g]` its proposal's normalised log density at every draw of every stage. For proposals
 * fixed in advance, weighing each draw against this mixture rather than only the proposal that
 * drew it keeps the estimates unbiased and lowers their variance: a draw from a poor stage, where
 * a better stage reaches, gets a moderate weight instead of a dominant one (Elvira et al. 2019,
 * "Generalized multiple importance sampling"). Adapted stages are fitted to the earlier draws, so
 * there it is biased (the recycling bias of adaptive multiple importance sampling): predict fits
 * its stages to these weights and estimates with `combineStages`.
 */
export function balanceLogDensity(
  sizes: readonly number[],
  logQ: readonly Float64Array[],
): Float64Array {
  const total = sizes.reduce((a, b) => a + b, 0);
  const n = logQ[0]?.length ?? 0;
  const shares = sizes.map((s) => Math.log(s / total));
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const terms = logQ.map((q, g) => shares[g]! + q[i]!);
    out[i] = logSumExp(terms);
  }
  return out;
}

/**
 * The next stage's proposal: the surrogate part (with its estimated mass inside the support) and
 * a t mixture fitted to the weighted draws so far, on the unbounded image of the prior's support.
 *
 * @example
 * ```ts
 * const plan = inference.adaptedProposal(prior, surrogatePart, theta, combined.weights, 3, key);
 * ```
 */
export function adaptedProposal(
  prior: Prior,
  surrogate: ProposalPart,
  theta: Float64Array,
  weights: Float64Array,
  dim: number,
  key: Array,
  /** log p(x|θ) + log p(θ) at the draws (NaN where dropped): lets the component count be chosen. */
  logTarget?: Float64Array,
): RoundProposal {
  const { u, logJac } = toUnbounded(
    { thetaLower: prior.lower, thetaUpper: prior.upper },
    theta,
    dim,
  );
  const fitWeights = temperedWeights(weights, fitFloor(dim));
  const components = logTarget
    ? chooseComponents(u, logJac, fitWeights, weights, logTarget, dim, key)
    : COMPONENT_CHOICES[0];
  const mixture = fitTMixture(u, fitWeights, dim, key, { components });
  return {
    parts: [
      { weight: SURROGATE_SHARE, part: surrogate },
      { weight: 1 - SURROGATE_SHARE, part: { kind: "adapted", mixture } },
    ],
  };
}

/** The component counts an adapted mixture chooses between (see `chooseComponents`). */
export const COMPONENT_CHOICES = [8, 16] as const;
/**
 * The effective draws (of the half a candidate is fitted to) below which the smallest count is
 * taken unscored: ~12 per component of the largest. From fewer, the held-out score itself is
 * noise, and on sbibm's SLCP at 10³ simulations (30–80 effective draws) it chose 16 where 8
 * drew better (bench/RESULTS.md).
 */
export const CHOOSE_MIN_ESS = 200;

/**
 * The component count whose mixture would draw most efficiently, judged on draws it was not
 * fitted to: each candidate is fitted to the odd-numbered draws and scored on the even ones by
 * Σ w̄ᵢ p̃(θᵢ)/q′(θᵢ), the importance estimate of E_p[p̃/q′] = Z / efficiency(q′) (w̄ the current
 * self-normalised weights, p̃ = p(x|θ)p(θ) the unnormalised posterior), so the lower score is
 * the more efficient proposal (its χ² distance to the posterior is the smaller). More components
 * fit a posterior of several non-Gaussian modes better (sbibm's SLCP: a t mixture fitted to
 * 10,000 exact posterior draws gave ESS ~2,900 of 10,000 with 8 components, ~4,800 with 16), but
 * fitted to few effective draws they overfit; the held-out score says which holds.
 *
 * @example
 * ```ts
 * const k = chooseComponents(u, logJac, fitWeights, weights, logTarget, dim, key); // 8 or 16
 * ```
 */
export function chooseComponents(
  u: Float64Array,
  logJac: Float64Array,
  fitWeights: Float64Array,
  weights: Float64Array,
  logTarget: Float64Array,
  dim: number,
  key: Array,
): number {
  const n = weights.length;
  const train = fitWeights.map((w, i) => (i % 2 === 1 ? w : 0));
  if (kishEss(train) < CHOOSE_MIN_ESS) return COMPONENT_CHOICES[0];
  let best: number = COMPONENT_CHOICES[0];
  let bestScore = Number.POSITIVE_INFINITY;
  for (const k of COMPONENT_CHOICES) {
    const logQ = tMixtureLogDensity(fitTMixture(u, train, dim, key, { components: k }), u);
    const terms: number[] = [];
    for (let i = 0; i < n; i += 2) {
      const w = weights[i]!;
      if (w > 0 && Number.isFinite(logTarget[i]!)) {
        terms.push(Math.log(w) + logTarget[i]! - (logQ[i]! + logJac[i]!));
      }
    }
    const score = terms.length > 0 ? logSumExp(terms) : Number.POSITIVE_INFINITY;
    if (score < bestScore) {
      bestScore = score;
      best = k;
    }
  }
  return best;
}

/** The fewest effective draws an adapted mixture is fitted to (see `temperedWeights`). */
export function fitFloor(dim: number): number {
  return Math.max(50, 10 * dim);
}

/**
 * The weights raised to the power β ∈ (0, 1] that brings their Kish ESS up to `floor` (β = 1
 * when it is already there): what the next stage's mixture is fitted to. A pilot whose weights
 * rest on a handful of draws would otherwise give a mixture of a few narrow components around
 * them; tempered weights spread it over the region the surrogate found, tilted toward the
 * posterior, and the next stage's weights (exact, untempered) do the rest. Only the proposal
 * changes, so every estimate stays consistent (nonlinear PMC's remedy for degenerate weights,
 * Koblents & Míguez 2015, with tempering in place of clipping).
 */
export function temperedWeights(weights: Float64Array, floor: number): Float64Array {
  const logW: number[] = [];
  let max = Number.NEGATIVE_INFINITY;
  for (const w of weights) {
    const l = w > 0 ? Math.log(w) : Number.NEGATIVE_INFINITY;
    logW.push(l);
    if (l > max) max = l;
  }
  const at = (beta: number) => {
    const out = Float64Array.from(logW, (l) =>
      Number.isFinite(l) ? Math.exp(beta * (l - max)) : 0,
    );
    const ess = kishEss(out);
    const s = out.reduce((a, b) => a + b, 0);
    for (let i = 0; i < out.length; i++) out[i]! /= s;
    return { out, ess };
  };
  const full = at(1);
  if (full.ess >= floor) return full.out;
  let lo = 0;
  let hi = 1;
  for (let it = 0; it < 40; it++) {
    const mid = (lo + hi) / 2;
    if (at(mid).ess >= floor) lo = mid;
    else hi = mid;
  }
  return at(lo).out;
}
