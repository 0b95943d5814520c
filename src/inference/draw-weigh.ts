/**
 * The step sequential rounds (snpe.ts's `runRound`) and `predict` (weighted-draws.ts) share:
 * draw θ from a proposal, simulate the draws, drop (and count) the failed simulations, and weigh
 * each draw with the exact likelihood and the prior, log p(xObs | θ) + log p(θ): the log target
 * of its importance weight. What the target is divided by is the caller's: a round and predict
 * weigh each stage's draws against the proposal that drew them (and fit their adapted stages to
 * the draws weighed against all stages' proposals as one deterministic mixture).
 *
 * It comes in two parts so a round can check its simulations between them: `drawAndSimulate`
 * (the draw is the caller's thunk, so a round can reload its draws from the store) and
 * `weighDraws`; `drawSimulateWeigh` runs both.
 */
import { type LogLike, logLikelihoods, needsSimulation } from "./likelihood.js";
import type { Prior } from "./priors.js";
import type { ProposalDraw } from "./proposals.js";

/** What a simulation of n draws gives: outputs n × dataSize and a status per row (0: ok). */
export interface Simulation {
  readonly x: Float32Array;
  readonly status: Uint8Array;
}

/** What `drawAndSimulate` needs. */
export interface DrawAndSimulateOptions<S extends Simulation> {
  /** Draws θ (from a proposal with `drawProposal`, or reloaded from a store). */
  readonly draw: () => Promise<ProposalDraw>;
  /** Dimension of θ. */
  readonly nDims: number;
  /** Simulates the draws (with the caller's seeds). */
  readonly simulate: (theta: Float64Array) => Promise<S>;
  /** The likelihood that will weigh the draws: one of θ alone (`needsSimulation`) skips simulating. */
  readonly logLike?: LogLike;
  /** Simulate whatever the likelihood reads (a round trains on the outputs). */
  readonly alwaysSimulate?: boolean;
}

/** The draws and their simulations. */
export interface DrawnAndSimulated<S extends Simulation> {
  /** The draws (n × d, every row), what drew them with its estimated masses, the redraws. */
  readonly draw: ProposalDraw;
  /** The simulations (undefined when the likelihood reads θ alone and none ran). */
  readonly simulation: S | undefined;
  /** Per row: 0 ok, else why its simulation was dropped (zeros when none ran). */
  readonly status: Uint8Array;
  /** The rows whose simulation succeeded (every row when none ran). */
  readonly okRows: readonly number[];
  /** Rows dropped (a failed simulation). */
  readonly dropped: number;
}

/** Draws θ, then simulates them unless the likelihood reads θ alone (see the module comment). */
export async function drawAndSimulate<S extends Simulation>(
  o: DrawAndSimulateOptions<S>,
): Promise<DrawnAndSimulated<S>> {
  const draw = await o.draw();
  const simulated = o.alwaysSimulate || (o.logLike !== undefined && needsSimulation(o.logLike));
  const simulation = simulated ? await o.simulate(draw.theta) : undefined;
  const status = simulation?.status ?? new Uint8Array(draw.theta.length / o.nDims);
  const okRows = globalThis.Array.from(status.keys()).filter((i) => status[i] === 0);
  return { draw, simulation, status, okRows, dropped: status.length - okRows.length };
}

/** The draws' weights' numerators. */
export interface Weighed {
  /** log p(θ) at every row. */
  readonly logPrior: Float64Array;
  /**
   * log p(xObs | θ) + log p(θ) at every row; NaN where the simulation was dropped (excluded from
   * the weights and counted, never weighted). Undefined without a likelihood.
   */
  readonly logTarget: Float64Array | undefined;
}

/**
 * log p(θ) at every draw and, with a likelihood, log p(xObs | θ) + log p(θ) at the rows whose
 * simulation succeeded (NaN at the others; the likelihood is called on those rows only).
 */
export function weighDraws(
  drawn: DrawnAndSimulated<Simulation>,
  prior: Prior,
  nDims: number,
  likelihood?: {
    readonly logLike: LogLike;
    /** The observation as the likelihood reads it. */
    readonly xObs: Float32Array;
  },
): Weighed {
  const theta = drawn.draw.theta;
  const n = theta.length / nDims;
  const logPrior = prior.logProb(theta);
  if (!likelihood) return { logPrior, logTarget: undefined };
  const { okRows, simulation } = drawn;
  const thetaOk = selectRows(theta, okRows, nDims);
  const xOk = simulation && selectRows(simulation.x, okRows, simulation.x.length / n);
  const ll = logLikelihoods(likelihood.logLike, likelihood.xObs, xOk, thetaOk, nDims);
  const logTarget = new Float64Array(n).fill(Number.NaN);
  okRows.forEach((r, i) => {
    logTarget[r] = ll[i]! + logPrior[r]!;
  });
  return { logPrior, logTarget };
}

/** What `drawSimulateWeigh` needs: the draw and simulation, the prior and the likelihood. */
export interface DrawSimulateWeighOptions<S extends Simulation> extends DrawAndSimulateOptions<S> {
  readonly prior: Prior;
  readonly logLike: LogLike;
  /** The observation as the likelihood reads it. */
  readonly xObs: Float32Array;
}

/** Draw → simulate → weigh in one call (see the module comment). */
export async function drawSimulateWeigh<S extends Simulation>(
  o: DrawSimulateWeighOptions<S>,
): Promise<DrawnAndSimulated<S> & Weighed> {
  const drawn = await drawAndSimulate(o);
  return { ...drawn, ...weighDraws(drawn, o.prior, o.nDims, { logLike: o.logLike, xObs: o.xObs }) };
}

/** The arrays one after another, as one new array made by `ctor`. */
export function concat<T extends Float32Array | Float64Array | Uint8Array>(
  parts: readonly T[],
  ctor: new (n: number) => T,
): T {
  const out = new ctor(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** The given rows of a row-major array `width` numbers wide, as a new array. */
export function selectRows<T extends Float32Array | Float64Array>(
  a: T,
  rows: readonly number[],
  width: number,
): T {
  const out = new (a.constructor as new (n: number) => T)(rows.length * width);
  rows.forEach((r, i) => {
    out.set(a.subarray(r * width, (r + 1) * width), i * width);
  });
  return out;
}
