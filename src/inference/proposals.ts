/**
 * The proposals of sequential rounds, each a mixture of parts whose exact density on the prior's
 * support is known, so every importance weight p(x|θ) p(θ) / q̃(θ) uses the density of what drew θ:
 *
 * - the prior;
 * - a surrogate q(θ | xObs) after some round (optionally the defensive mixture with a broadened
 *   copy; optionally restricted to its highest-density region), truncated to the prior's support;
 * - a truncated prior (TSNPE, Deistler et al. 2022): p(θ) restricted to the region where the
 *   surrogate's density is at least the ε-quantile of its own draws', holding 1 − ε of its mass;
 * - a Student-t mixture fitted to earlier importance-weighted draws, on the unbounded image of the
 *   prior's support (predict's adapted stages).
 *
 * A part's normalising mass (the share of a surrogate inside the support, or the prior's mass in
 * a region) is estimated from the acceptance rate of the round's own draws and recorded, so a
 * resumed run weighs with the same numbers. A plan names checkpoints by the round that trained
 * them, so it is plain JSON (kept in the store's `draws` record).
 */
import { NbiError } from "../errors.js";
import type { Array } from "../trace/array.js";
import type { PROPOSAL_KINDS } from "./fit-settings.js";
import { keyAt, uniforms } from "./host.js";
import {
  type Checkpoint,
  type Defensive,
  defensiveLogProb,
  type PosteriorNetwork,
  proposalSample,
  type Surrogate,
  surrogateLogProb,
  surrogateOf,
} from "./posterior.js";
import type { Prior } from "./priors.js";
import { sampleTMixture, type TMixture, tMixtureLogDensity } from "./t-mixture.js";
import { fromUnbounded, mapsExactly, type SupportBounds, toUnbounded } from "./unbounded.js";

/** The proposal of sequential rounds (see `RoundOptions.proposal`). */
export type ProposalKind = (typeof PROPOSAL_KINDS)[number];

/** One component of a round's proposal. `round` names the checkpoint trained after that round. */
export type ProposalPart =
  | {
      /** The prior itself. */
      readonly kind: "prior";
    }
  | {
      /** The surrogate q(θ | xObs) after `round`. */
      readonly kind: "surrogate";
      /** The round that trained the surrogate. */
      readonly round: number;
      /**
       * true: that round's challenger (its network trained on its own draws, kept for the next
       * round's pilot to judge: snpe.ts) instead of the surrogate the round kept.
       */
      readonly challenger?: true;
      /** The defensive mixture the surrogate is drawn with (none: the surrogate alone). */
      readonly defensive?: Defensive;
      /** Draws are kept only where log q(θ|xObs) ≥ threshold (none: everywhere). */
      readonly threshold?: number;
      /** log of the part's mass inside the prior's support (and the region), estimated. */
      readonly logMass: number;
    }
  | {
      /** The prior restricted to the surrogate's highest-density region (TSNPE). */
      readonly kind: "truncated";
      /** The round that trained the surrogate defining the region. */
      readonly round: number;
      /** The region is log q(θ | xObs) ≥ threshold. */
      readonly threshold: number;
      /** log of the prior's mass inside the region, estimated. */
      readonly logMass: number;
    }
  | {
      /**
       * A Student-t mixture fitted to earlier weighted draws (predict's later stages), on the
       * unbounded image of the prior's support, so all its mass lies inside the support.
       */
      readonly kind: "adapted";
      /** The mixture, in unbounded coordinates (see `toUnbounded`). */
      readonly mixture: TMixture;
      /**
       * log of the mixture's mass whose image lands where the map is exact (see `mapsExactly`),
       * estimated from its draws; draws outside are redrawn (absent: 0, plans saved before).
       */
      readonly logMass?: number;
    };

/** A round's proposal: Σ weight · part, the weights summing to 1. */
export interface RoundProposal {
  /** The mixture's parts and their weights. */
  readonly parts: readonly {
    /** The part's share of the draws. */
    readonly weight: number;
    /** What the part is. */
    readonly part: ProposalPart;
  }[];
}

/** The proposal with each adapted part's mixture arrays passed through `f`. */
function mapMixtureArrays(
  p: RoundProposal,
  f: (a: ArrayLike<number>) => ArrayLike<number>,
): RoundProposal {
  return {
    parts: p.parts.map(({ weight, part }) =>
      part.kind === "adapted"
        ? {
            weight,
            part: {
              ...part,
              mixture: {
                ...part.mixture,
                weights: f(part.mixture.weights) as Float64Array,
                means: f(part.mixture.means) as Float64Array,
                chol: f(part.mixture.chol) as Float64Array,
              },
            },
          }
        : { weight, part },
    ),
  };
}

/**
 * A proposal as plain JSON (for the store's `draws` record): adapted mixtures' typed arrays as
 * number arrays. `revivedProposal` reads it back.
 */
export function proposalJson(p: RoundProposal): unknown {
  return mapMixtureArrays(p, (a) => globalThis.Array.from(a));
}

/** A proposal read back from JSON (see `proposalJson`): adapted mixtures' arrays as Float64Array. */
export function revivedProposal(p: RoundProposal): RoundProposal {
  return mapMixtureArrays(p, (a) => Float64Array.from(a));
}

/** The prior alone: round 0's proposal and amortized fits'. */
export const PRIOR_PROPOSAL: RoundProposal = { parts: [{ weight: 1, part: { kind: "prior" } }] };

/** What evaluating and drawing proposals needs: the network, prior, observation, checkpoints. */
export interface ProposalContext {
  /** The surrogate's architecture. */
  readonly net: PosteriorNetwork;
  /** The prior (a part, and the support every draw lies in). */
  readonly prior: Prior;
  /** The observation the surrogates are conditioned on. */
  readonly xObs: Float32Array;
  /** checkpoints[k]: the surrogate after round k. */
  readonly checkpoints: readonly Checkpoint[];
  /** challengers[k]: round k's challenger, where it kept one (surrogate parts with `challenger`). */
  readonly challengers?: readonly (Checkpoint | undefined)[];
}

/** How a sequential round's proposal is made (the fit's options). */
export interface ProposalOptions {
  /** What the proposal is made of (see `RoundOptions.proposal`). */
  readonly kind: Exclude<ProposalKind, "auto">;
  /** The defensive mixture surrogate parts are drawn with. */
  readonly defensive?: Defensive;
  /** Surrogate mass left outside the truncated proposal's region (TSNPE's ε). */
  readonly truncationEps: number;
}

/** The mixture proposal's share for the prior and for the latest surrogate. */
const MIXTURE_PRIOR = 0.1;
const MIXTURE_LATEST = 0.6;
/** Surrogate draws that set the truncation threshold. */
const THRESHOLD_DRAWS = 20_000;
/** Give up drawing inside the support after this many batches. */
const MAX_ATTEMPTS = 50;

/** The prior's support as the unbounded map's bounds. */
const supportOf = (prior: Prior): SupportBounds => ({
  thetaLower: prior.lower,
  thetaUpper: prior.upper,
});

const logSumExp2 = (a: number, b: number): number => {
  const m = Math.max(a, b);
  return m === Number.NEGATIVE_INFINITY ? m : m + Math.log(Math.exp(a - m) + Math.exp(b - m));
};

/**
 * A round's proposal before drawing: which parts in which shares (masses and thresholds are filled
 * in by `drawProposal`). Round 0 draws from the prior.
 */
export function planProposal(round: number, options: ProposalOptions): RoundProposal {
  if (round === 0) return PRIOR_PROPOSAL;
  const latest = round - 1;
  const surrogate = (r: number): ProposalPart => ({
    kind: "surrogate",
    round: r,
    ...(options.defensive ? { defensive: options.defensive } : {}),
    logMass: 0,
  });
  switch (options.kind) {
    case "surrogate":
      return { parts: [{ weight: 1, part: surrogate(latest) }] };
    case "truncated":
      return {
        parts: [
          { weight: 1, part: { kind: "truncated", round: latest, threshold: 0, logMass: 0 } },
        ],
      };
    case "mixture": {
      // The prior, the latest surrogate, and the surrogates that drew the earlier rounds.
      const earlier = globalThis.Array.from({ length: latest }, (_, r) => r);
      const latestShare = earlier.length > 0 ? MIXTURE_LATEST : 1 - MIXTURE_PRIOR;
      const share = earlier.length > 0 ? (1 - MIXTURE_PRIOR - MIXTURE_LATEST) / earlier.length : 0;
      return {
        parts: [
          { weight: MIXTURE_PRIOR, part: { kind: "prior" } },
          ...earlier.map((r) => ({ weight: share, part: surrogate(r) })),
          { weight: latestShare, part: surrogate(latest) },
        ],
      };
    }
  }
}

// Surrogate densities are evaluated at the same pooled θ again and again (every round's weights
// and losses): keep them per checkpoint and θ array.
const densityCache = new WeakMap<Checkpoint, WeakMap<Float64Array, Map<string, Float64Array>>>();

async function cached(
  checkpoint: Checkpoint,
  theta: Float64Array,
  what: string,
  compute: () => Promise<Float64Array>,
): Promise<Float64Array> {
  let byTheta = densityCache.get(checkpoint);
  if (!byTheta) {
    byTheta = new WeakMap();
    densityCache.set(checkpoint, byTheta);
  }
  let byWhat = byTheta.get(theta);
  if (!byWhat) {
    byWhat = new Map();
    byTheta.set(theta, byWhat);
  }
  let v = byWhat.get(what);
  if (!v) {
    v = await compute();
    byWhat.set(what, v);
  }
  return v;
}

function checkpointOf(ctx: ProposalContext, round: number, challenger = false): Checkpoint {
  const c = challenger ? ctx.challengers?.[round] : ctx.checkpoints[round];
  if (!c) {
    throw new NbiError(
      `proposal: no ${challenger ? "challenger" : "surrogate"} after round ${round} to draw from`,
    );
  }
  return c;
}

/** The surrogate after `round`, or its challenger (the checkpoint keys the density cache). */
function surrogateAfter(ctx: ProposalContext, round: number, challenger = false): Surrogate {
  return surrogateOf(ctx.net, checkpointOf(ctx, round, challenger));
}

/** log q(θ | xObs) of the surrogate after `round` (or its challenger), in the user's units. */
export function surrogateDensity(
  ctx: ProposalContext,
  round: number,
  theta: Float64Array,
  challenger = false,
): Promise<Float64Array> {
  const c = checkpointOf(ctx, round, challenger);
  return cached(c, theta, "q", () => surrogateLogProb(surrogateOf(ctx.net, c), ctx.xObs, theta));
}

function defensiveDensity(
  ctx: ProposalContext,
  round: number,
  theta: Float64Array,
  defensive: Defensive,
  challenger = false,
): Promise<Float64Array> {
  const c = checkpointOf(ctx, round, challenger);
  return cached(c, theta, `d${defensive.alpha},${defensive.tau}`, () =>
    defensiveLogProb(surrogateOf(ctx.net, c), ctx.xObs, theta, defensive),
  );
}

/** log density of one part at each row of θ (rows inside the prior's support). */
async function partLogDensity(
  ctx: ProposalContext,
  part: ProposalPart,
  theta: Float64Array,
  logPrior: Float64Array,
): Promise<Float64Array> {
  if (part.kind === "prior") return logPrior;
  if (part.kind === "adapted") {
    const support = supportOf(ctx.prior);
    const { u, logJac } = toUnbounded(support, theta, ctx.net.nDims);
    const exact = mapsExactly(support, theta, ctx.net.nDims);
    const logMass = part.logMass ?? 0;
    return tMixtureLogDensity(part.mixture, u).map((v, i) =>
      Number.isFinite(logPrior[i]!) && exact[i]
        ? v + logJac[i]! - logMass
        : Number.NEGATIVE_INFINITY,
    );
  }
  const challenger = part.kind === "surrogate" && part.challenger === true;
  const logQ = await surrogateDensity(ctx, part.round, theta, challenger);
  if (part.kind === "truncated") {
    return logPrior.map((lp, i) =>
      logQ[i]! >= part.threshold ? lp - part.logMass : Number.NEGATIVE_INFINITY,
    );
  }
  const base = part.defensive
    ? await defensiveDensity(ctx, part.round, theta, part.defensive, challenger)
    : logQ;
  const threshold = part.threshold ?? Number.NEGATIVE_INFINITY;
  return base.map((v, i) =>
    logQ[i]! >= threshold && Number.isFinite(logPrior[i]!)
      ? v - part.logMass
      : Number.NEGATIVE_INFINITY,
  );
}

/**
 * log q̃(θ) of a round's proposal at each row of θ: the mixture of its parts, each normalised on
 * the prior's support. `logPrior` is the prior's log density at the same rows.
 */
export async function proposalLogDensity(
  ctx: ProposalContext,
  proposal: RoundProposal,
  theta: Float64Array,
  logPrior: Float64Array,
): Promise<Float64Array> {
  const out = new Float64Array(logPrior.length).fill(Number.NEGATIVE_INFINITY);
  for (const { weight, part } of proposal.parts) {
    if (!(weight > 0)) continue;
    const lw = Math.log(weight);
    const lp = await partLogDensity(ctx, part, theta, logPrior);
    for (let i = 0; i < out.length; i++) out[i] = logSumExp2(out[i]!, lw + lp[i]!);
  }
  return out;
}

/** A realised proposal's draws. */
export interface ProposalDraw {
  /** n × d parameters inside the prior's support. */
  readonly theta: Float64Array;
  /** The proposal with its masses and thresholds estimated from these draws. */
  readonly proposal: RoundProposal;
  /** Draws rejected (outside the support or a region) and drawn again. */
  readonly redrawn: number;
  /** Accepted / drawn over the surrogate parts (1 when there are none). */
  readonly acceptance: number;
  /** Drawn in adaptive stages (staged-draws.ts): its pilot, drawn from the surrogate alone. */
  readonly pilot?: PilotDraws;
  /** Drawn in stages after a round that kept a challenger: the pilot's verdict. */
  readonly duel?: PilotDuel;
  /**
   * Drawn in adaptive stages: the stages in the order of the rows, each with the proposal that
   * drew it (fixed before it drew; `proposal` is their deterministic mixture). Weighing each
   * stage against its own proposal gives the round's unbiased estimates (`combineStages`).
   */
  readonly stages?: readonly DrawStage[];
}

/** One stage of a round drawn in stages: its rows and the proposal that drew them. */
export interface DrawStage {
  /** Its number of rows (consecutive, after the earlier stages'). */
  readonly size: number;
  /** The proposal that drew them, with its masses as the round's mixture has them. */
  readonly proposal: RoundProposal;
}

/** A staged round's pilot: its draws and their n_eff (weighed against the surrogate alone). */
export interface PilotDraws {
  /** The pilot's draws. */
  readonly draws: number;
  /** Their n_eff, weighed against the network that drew them alone. */
  readonly nEff: number;
}

/**
 * A staged round whose previous round kept a challenger: the pilot split between the previous
 * round's surrogate and its challenger, each half weighed against its own network alone, and the
 * one with the larger n_eff drawing the rest of the round (the surrogate on a tie, or when the
 * challenger's half holds less than one effective draw).
 */
export interface PilotDuel {
  /** The half drawn from the surrogate the previous round kept. */
  readonly kept: PilotDraws;
  /** The half drawn from its challenger. */
  readonly challenger: PilotDraws;
  /** Which drew the rest of the round (and is the round's warm start). */
  readonly winner: "kept" | "challenger";
}

/**
 * n draws from a planned proposal. Parts get their share of the draws by a multinomial draw (so
 * the draws follow the mixture exactly); each part's mass is estimated by its acceptance rate.
 */
export async function drawProposal(
  ctx: ProposalContext,
  plan: RoundProposal,
  key: Array,
  n: number,
  options: ProposalOptions,
): Promise<ProposalDraw> {
  const d = ctx.net.nDims;
  const counts = new globalThis.Array<number>(plan.parts.length).fill(0);
  // Each draw's part by a multinomial draw on the weights.
  const cumulative: number[] = [];
  let total = 0;
  for (const { weight } of plan.parts) {
    total += weight;
    cumulative.push(total);
  }
  for (const u of uniforms(keyAt(key, 0), n)) {
    const k = cumulative.findIndex((c) => u * total < c);
    counts[k < 0 ? plan.parts.length - 1 : k]!++;
  }
  const out = new Float64Array(n * d);
  let filled = 0;
  let redrawn = 0;
  let accepted = 0;
  let tried = 0;
  const parts: { weight: number; part: ProposalPart }[] = [];
  for (let k = 0; k < plan.parts.length; k++) {
    const { weight, part } = plan.parts[k]!;
    const m = counts[k]!;
    const partKey = keyAt(key, k + 1);
    if (part.kind === "prior") {
      if (m > 0) out.set(ctx.prior.sample(partKey, m), filled * d);
      parts.push({ weight, part });
    } else if (part.kind === "adapted") {
      const r = await drawAdapted(ctx, part.mixture, partKey, m);
      out.set(r.theta, filled * d);
      redrawn += r.drawn - m;
      parts.push({ weight, part: { ...part, logMass: m > 0 ? Math.log(m / r.drawn) : 0 } });
    } else if (part.kind === "surrogate") {
      if (m === 0) {
        parts.push({ weight, part });
        continue;
      }
      const r = await drawSurrogate(ctx, part, partKey, m);
      out.set(r.theta, filled * d);
      redrawn += r.drawn - m;
      accepted += m;
      tried += r.drawn;
      parts.push({ weight, part: { ...part, logMass: Math.log(m / r.drawn) } });
    } else {
      // TSNPE: the truncated prior, drawn by rejection from the prior.
      const r = await drawTruncated(ctx, part.round, partKey, m, options);
      out.set(r.theta, filled * d);
      redrawn += r.redrawn;
      parts.push(...r.parts.map((p) => ({ weight: weight * p.weight, part: p.part })));
    }
    filled += m;
  }
  return {
    theta: out,
    proposal: { parts },
    redrawn,
    acceptance: tried > 0 ? accepted / tried : 1,
  };
}

/** How `fillByRejection` sizes later batches and when it gives up (defaults: the proposals'). */
export interface RejectionLimits {
  /** Candidates for a later batch, from the rows still missing, kept and tried so far. */
  readonly next?: (missing: number, filled: number, drawn: number) => number;
  /** Batches before giving up (default MAX_ATTEMPTS). */
  readonly maxAttempts?: number;
  /** Candidates before giving up (default: no bound). */
  readonly budget?: number;
}

/**
 * m rows of d numbers by rejection: `draw(attempt, want)` gives `want` candidate rows and which to
 * keep; attempt 0 asks for `first` rows, later ones for 1.5 × the rows still missing (at least
 * 16) unless `limits.next` says otherwise. Returns the kept rows in order and the candidates tried
 * until the m-th was kept (so m / tried estimates the kept share); `exhausted` words the error
 * after the attempts or the candidates `limits` allows.
 */
export async function fillByRejection(
  m: number,
  d: number,
  first: number,
  draw: (
    attempt: number,
    want: number,
  ) => Promise<{ theta: Float64Array; keep: ArrayLike<number> }>,
  exhausted: (filled: number, drawn: number) => string,
  limits: RejectionLimits = {},
): Promise<{ theta: Float64Array; drawn: number }> {
  const out = new Float64Array(m * d);
  const maxAttempts = limits.maxAttempts ?? MAX_ATTEMPTS;
  const budget = limits.budget ?? Number.POSITIVE_INFINITY;
  const next = limits.next ?? ((missing: number) => Math.max(16, Math.ceil(missing * 1.5)));
  let filled = 0;
  let drawn = 0;
  for (let attempt = 0; filled < m; attempt++) {
    if (attempt >= maxAttempts || drawn >= budget) throw new NbiError(exhausted(filled, drawn));
    const want = attempt === 0 ? first : Math.min(budget - drawn, next(m - filled, filled, drawn));
    const { theta, keep } = await draw(attempt, want);
    for (let i = 0; i < want && filled < m; i++) {
      drawn++;
      if (keep[i]) out.set(theta.subarray(i * d, (i + 1) * d), d * filled++);
    }
  }
  return { theta: out, drawn };
}

/** m draws from a t mixture on the unbounded image, where the map is exact: the draws and the tries. */
function drawAdapted(
  ctx: ProposalContext,
  mixture: TMixture,
  key: Array,
  m: number,
): Promise<{ theta: Float64Array; drawn: number }> {
  const d = ctx.net.nDims;
  const support = supportOf(ctx.prior);
  return fillByRejection(
    m,
    d,
    m,
    async (attempt, want) => {
      // The first attempt draws with the part's own key (the draws of plans before the redraw).
      const k = attempt === 0 ? key : keyAt(key, attempt);
      const theta = fromUnbounded(support, sampleTMixture(mixture, want, k), d);
      return { theta, keep: mapsExactly(support, theta, d) };
    },
    (filled, drawn) =>
      `predict: the adapted mixture put almost all its draws on the prior's bounds (${filled} of ${m} inside after ${drawn} draws)`,
  );
}

/** m draws from a surrogate part, inside the support (and its region): the draws and the tries. */
function drawSurrogate(
  ctx: ProposalContext,
  part: Extract<ProposalPart, { kind: "surrogate" }>,
  key: Array,
  m: number,
): Promise<{ theta: Float64Array; drawn: number }> {
  const d = ctx.net.nDims;
  const surrogate = surrogateAfter(ctx, part.round, part.challenger === true);
  return fillByRejection(
    m,
    d,
    Math.max(16, m),
    async (attempt, want) => {
      const theta = await proposalSample(
        surrogate,
        keyAt(key, attempt),
        ctx.xObs,
        want,
        part.defensive,
      );
      const inSupport = ctx.prior.inSupport(theta);
      const exact = mapsExactly(surrogate.scales, theta, d);
      const logQ =
        part.threshold === undefined
          ? undefined
          : await surrogateLogProb(surrogate, ctx.xObs, theta);
      const keep = inSupport.map((v, i) =>
        v && exact[i] && (logQ === undefined || logQ[i]! >= part.threshold!) ? 1 : 0,
      );
      return { theta, keep };
    },
    (filled, drawn) =>
      "fit: the surrogate posterior put almost all its draws outside the prior's support " +
      `(${filled} of ${m} inside after ${drawn} draws); expected a surrogate that overlaps ` +
      "the prior — check that xObs was simulated from a parameter inside the prior",
  );
}

/**
 * The threshold of the surrogate's highest-density region holding 1 − ε of its mass: the
 * ε-quantile of log q over the surrogate's own draws.
 */
export async function truncationThreshold(
  ctx: ProposalContext,
  round: number,
  key: Array,
  eps: number,
): Promise<number> {
  const surrogate = surrogateAfter(ctx, round);
  const nDraws = Math.max(THRESHOLD_DRAWS, Math.ceil(2 / eps));
  const draws = await proposalSample(surrogate, key, ctx.xObs, nDraws);
  // Draws whose density underflows count as the lowest (a finite threshold stays JSON in the store).
  const logQ = Float64Array.from(await surrogateLogProb(surrogate, ctx.xObs, draws)).sort();
  const finite = logQ.filter(Number.isFinite);
  if (finite.length === 0)
    throw new NbiError("fit: the surrogate's density is not finite at any of its own draws");
  return finite[Math.max(0, Math.floor(eps * nDraws) - (nDraws - finite.length))]!;
}

/**
 * m draws from the prior restricted to the surrogate's region {log q ≥ threshold}, by rejection
 * from the prior. Where the region holds too little prior mass for that (a tight posterior in many
 * dimensions), the rest comes from the defensive surrogate restricted to the same region, and the
 * round's proposal is the two-part mixture of what was drawn (both densities exact).
 */
async function drawTruncated(
  ctx: ProposalContext,
  round: number,
  key: Array,
  m: number,
  options: ProposalOptions,
): Promise<{
  theta: Float64Array;
  redrawn: number;
  parts: { weight: number; part: ProposalPart }[];
}> {
  const d = ctx.net.nDims;
  const threshold = await truncationThreshold(ctx, round, keyAt(key, 0), options.truncationEps);
  const surrogate = surrogateAfter(ctx, round);
  const out = new Float64Array(m * d);
  let filled = 0;
  let drawn = 0;
  let inRegion = 0;
  const budget = Math.max(50 * m, 200_000);
  const batch = Math.max(4 * m, 8192);
  for (let attempt = 0; filled < m && drawn < budget; attempt++) {
    const draws = ctx.prior.sample(keyAt(key, 1 + attempt), batch);
    const logQ = await surrogateLogProb(surrogate, ctx.xObs, draws);
    for (let i = 0; i < batch; i++) {
      drawn++;
      if (logQ[i]! >= threshold) {
        inRegion++;
        if (filled < m) out.set(draws.subarray(i * d, (i + 1) * d), d * filled++);
      }
    }
  }
  const parts: { weight: number; part: ProposalPart }[] = [];
  if (filled > 0) {
    parts.push({
      weight: filled / m,
      part: { kind: "truncated", round, threshold, logMass: Math.log(inRegion / drawn) },
    });
  }
  let redrawn = drawn - filled;
  if (filled < m) {
    const part = {
      kind: "surrogate" as const,
      round,
      ...(options.defensive ? { defensive: options.defensive } : {}),
      threshold,
      logMass: 0,
    };
    const r = await drawSurrogate(ctx, part, keyAt(key, 1_000_000), m - filled);
    out.set(r.theta, filled * d);
    redrawn += r.drawn - (m - filled);
    parts.push({
      weight: (m - filled) / m,
      part: { ...part, logMass: Math.log((m - filled) / r.drawn) },
    });
  }
  return { theta: out, redrawn, parts };
}
