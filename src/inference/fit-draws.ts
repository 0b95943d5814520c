/**
 * The fit's weighed draws, kept for `predict`. A sequential fit with a likelihood weighs every
 * round's draws against the proposal that drew them (a staged round each stage against its own:
 * `RoundData.estimate`), so they are exact importance samples of the posterior at the fit's
 * observation, paid for with the fit's simulations and likelihood calls. predict adds them to its
 * own draws (`combineStages`: each group by its ESS), round by round where the round holds
 * (light-tailed weights, evidence that agrees with predict's own: `consistentGroups`), and only
 * where its target is the fit's: the same prior, likelihood and observation. That is
 * checked on the target itself, not on names: a few of the fit's rows (their θ and simulation
 * kept) are weighed again with predict's likelihood and must give the fit's log target. So a
 * predict at another observation, with other error bars or another likelihood function, pools
 * nothing, and a saved engine (fit-draws-file.ts) pools after `NBI.load` as it did before.
 */
import { fail } from "../errors.js";
import { evidenceShort, lightTailed } from "./held-rounds.js";
import type { ImportanceResult } from "./importance.js";
import { type LogLike, logLikelihoods } from "./likelihood.js";
import type { Prior } from "./priors.js";

/** One importance sample of the fit: a round's valid rows, weighed against their proposals. */
export interface FitDrawGroup {
  /** n × d parameters, row-major. */
  readonly theta: Float64Array;
  /** log p(xObs | θ) + log p(θ) per row. */
  readonly logTarget: Float64Array;
  /** log p(xObs | θ) + log p(θ) − log q(θ) per row, q the proposal that drew the row. */
  readonly logWeights: Float64Array;
}

/** Rows of the fit kept whole, to check that a later target is the fit's. */
export interface TargetSpots {
  /** k × d parameters. */
  readonly theta: Float64Array;
  /** k × dataSize simulations at them (what a likelihood that reads simulations needs). */
  readonly x: Float32Array;
  /** The fit's log p(xObs | θ) + log p(θ) at them. */
  readonly logTarget: Float64Array;
}

/** What `predict` may pool: the fit's weighed rounds and the spots that vouch for their target. */
export interface FitDraws {
  readonly nDims: number;
  /** One group per weighed round, in round order. */
  readonly groups: readonly FitDrawGroup[];
  readonly spots: TargetSpots;
}

/** How many of the fit's rows are kept whole to check a target against. */
export const TARGET_SPOTS = 8;
/** The relative difference at which two log targets count as different. */
export const TARGET_TOLERANCE = 1e-7;

/** A round as the fit keeps it (the fields of snpe.ts's RoundData read here). */
export interface WeighedRoundData {
  readonly theta: Float64Array;
  readonly x: Float32Array;
  readonly logTarget?: Float64Array;
  readonly importance?: ImportanceResult;
  readonly estimate?: ImportanceResult;
}

/**
 * The fit's weighed draws from its rounds, or undefined when none is left: rounds without a
 * likelihood's weights, none of whose weights is finite, or whose weights are heavy-tailed
 * (Pareto k̂ above 0.7, or too few draws for k̂) are left out.
 *
 * @example
 * ```ts
 * const kept = fitDrawsOf(result.state.data, 3, 50); // after a sequential fit with a likelihood
 * kept?.groups.length; // its weighed rounds
 * ```
 */
export function fitDrawsOf(
  rounds: readonly WeighedRoundData[],
  nDims: number,
  dataSize: number,
): FitDraws | undefined {
  const groups: FitDrawGroup[] = [];
  const spotRows: { round: number; row: number }[] = [];
  rounds.forEach((r, round) => {
    const imp = r.estimate ?? r.importance;
    if (!imp || !r.logTarget || !imp.logWeights.some(Number.isFinite)) return;
    // Heavy-tailed weights (or too few draws to tell): their ESS overstates what the round
    // holds, and weighed by it a round that missed part of the posterior pulls the result.
    if (!lightTailed(imp)) return;
    groups.push({ theta: r.theta, logTarget: r.logTarget, logWeights: imp.logWeights });
    r.logTarget.forEach((t, row) => {
      if (Number.isFinite(t)) spotRows.push({ round, row });
    });
  });
  if (groups.length === 0) return undefined;
  // Spread over the fit's rows (the last row always among them), so the check spans the rounds.
  const k = Math.min(TARGET_SPOTS, spotRows.length);
  const picked = Array.from(
    { length: k },
    (_, i) => spotRows[Math.floor(((i + 1) * spotRows.length) / k) - 1]!,
  );
  const theta = new Float64Array(k * nDims);
  const x = new Float32Array(k * dataSize);
  const logTarget = new Float64Array(k);
  picked.forEach(({ round, row }, i) => {
    const r = rounds[round]!;
    theta.set(r.theta.subarray(row * nDims, (row + 1) * nDims), i * nDims);
    x.set(r.x.subarray(row * dataSize, (row + 1) * dataSize), i * dataSize);
    logTarget[i] = r.logTarget![row]!;
  });
  return { nDims, groups, spots: { theta, x, logTarget } };
}

/**
 * Whether `prior` and `logLike` at `xObs` give the fit's log target at its spots (within
 * TARGET_TOLERANCE, relative): if so, the fit's draws are importance samples of predict's target.
 *
 * @example
 * ```ts
 * sameTarget(kept, prior, logLike, xObs); // false at another observation
 * ```
 */
export function sameTarget(
  draws: FitDraws,
  prior: Prior,
  logLike: LogLike,
  xObs: Float32Array,
): boolean {
  const { spots, nDims } = draws;
  const k = spots.logTarget.length;
  if (k === 0) return false;
  if (spots.x.length % k !== 0 || spots.x.length / k !== xObs.length) return false;
  const logPrior = prior.logProb(spots.theta);
  let ll: Float64Array;
  try {
    ll = logLikelihoods(logLike, xObs, spots.x, spots.theta, nDims);
  } catch {
    return false; // a likelihood that cannot read the fit's rows is not the fit's
  }
  for (let i = 0; i < k; i++) {
    const now = ll[i]! + logPrior[i]!;
    const then = spots.logTarget[i]!;
    if (!(Math.abs(now - then) <= TARGET_TOLERANCE * Math.max(1, Math.abs(then)))) return false;
  }
  return true;
}

/**
 * The fit's draws a predict pools: the kept draws when pooling is on (`pool` not false) and
 * predict's target is the fit's (`sameTarget`), else undefined. The Node and browser engines'
 * predict both read it.
 *
 * @example
 * ```ts
 * const earlier = drawsToPool(kept, options.pool, prior, logLike, xObs)?.groups;
 * ```
 */
export function drawsToPool(
  draws: FitDraws | undefined,
  pool: boolean | undefined,
  prior: Prior,
  logLike: LogLike,
  xObs: Float32Array,
): FitDraws | undefined {
  return pool !== false && draws && sameTarget(draws, prior, logLike, xObs) ? draws : undefined;
}

/**
 * Checks a FitDraws read back from disk: every group's θ, log target and log-weights agree in
 * rows, the spots in count; `source` names the file in the error.
 */
export function checkFitDraws(draws: FitDraws, source: string): FitDraws {
  const d = draws.nDims;
  draws.groups.forEach((g, i) => {
    const n = g.logWeights.length;
    if (g.theta.length !== n * d || g.logTarget.length !== n) {
      fail(
        "NBI.load",
        `${source} group ${i}`,
        `θ of ${n} × ${d} values and ${n} log targets (one per log-weight)`,
        `${g.theta.length} θ values and ${g.logTarget.length} log targets`,
      );
    }
  });
  const k = draws.spots.logTarget.length;
  if (draws.spots.theta.length !== k * d) {
    fail("NBI.load", `${source} spots`, `${k} × ${d} θ values`, draws.spots.theta.length);
  }
  return draws;
}

/**
 * The fit's groups whose evidence agrees with predict's own draws': log Ẑ_g not below
 * log Ẑ − EVIDENCE_Z·√(se_g² + se²) (`evidenceShort`, held-rounds.ts). A round whose proposal
 * missed part of the posterior (one of SLCP's modes) weighs its draws with light tails and a
 * fair-looking ESS, yet its estimates are off and its evidence is short by the mass it missed;
 * weighed in by its ESS it pulled SLCP's pooled means from 0.05–0.07 σ to 0.11–0.13 σ
 * (bench/RESULTS.md, 2026-12-06 morning).
 *
 * @example
 * ```ts
 * consistentGroups(fitGroups, fitGroups.map((g) => importanceWeights(g.logWeights)), own);
 * ```
 */
export function consistentGroups(
  groups: readonly FitDrawGroup[],
  imps: readonly ImportanceResult[],
  own: ImportanceResult,
): FitDrawGroup[] {
  return groups.filter((_, i) => !evidenceShort(imps[i]!, own));
}
