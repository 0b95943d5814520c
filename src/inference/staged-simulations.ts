/**
 * The simulations of a round drawn in adaptive stages (staged-draws.ts) when its likelihood reads
 * simulations: each stage is simulated before the next is drawn, with the seeds the round gives
 * those rows, kept for the round (it simulates no row twice) and in the store's `stages` record
 * until the round's θ and chunk are written, so a run stopped mid-round resumes the finished
 * stages. With a likelihood of θ alone nothing is simulated here; either way each draw is weighed
 * once and the round reuses the weights.
 */
import type { Array } from "../trace/array.js";
import { concat, drawAndSimulate, weighDraws } from "./draw-weigh.js";
import { type LogLike, logLikelihoods, needsSimulation } from "./likelihood.js";
import type { PosteriorNetwork } from "./posterior.js";
import type { Prior } from "./priors.js";
import { PRIOR_PROPOSAL } from "./proposals.js";
import {
  type SimulatedRows,
  type Simulator,
  simulateRows,
  simulationSeeds,
} from "./simulation/rows.js";
import type { SimulationStore } from "./store.js";
import { abortError } from "./train.js";

/** What a staged round's simulations need of the fit's configuration (snpe.ts's `SnpeConfig`). */
export interface StagedRoundConfig {
  readonly net: PosteriorNetwork;
  readonly prior: Prior;
  readonly nSims: number;
  readonly logLike?: LogLike;
  readonly xObs?: Float32Array;
  readonly simulator?: Simulator;
  readonly store?: SimulationStore;
  readonly workers?: number;
  readonly signal?: AbortSignal;
  readonly simTimeoutMs?: number;
  readonly onSimulate?: (round: number, done: number, total: number) => void;
}

/** The simulations a round ran while its draws were staged, in draw order. */
export interface StagedSimulations {
  readonly theta: Float64Array[];
  /** Each stage's log p(xObs | θ) + log p(θ) (NaN where its simulation failed). */
  readonly logTarget: Float64Array[];
  readonly x: Float32Array[];
  readonly status: Uint8Array[];
  rows: number;
  firstError?: string;
}

/**
 * The staged simulations so far, in the store's `stages` record until the round's own θ and
 * chunks are written: a run stopped mid-round redraws the same stages (same keys, same weights)
 * and reuses them, so it loses at most the stage in flight. NaN outputs are null in JSON.
 */
interface StagesRecord {
  readonly theta: number[];
  readonly x: (number | null)[];
  readonly status: number[];
}
const STAGES_RECORD = "stages";

/** Whether the record's θ from number `at` on are θ's (the same draws, bit for bit). */
const holds = (record: StagesRecord, theta: Float64Array, at: number): boolean =>
  theta.every((v, i) => record.theta[at + i] === v);

/**
 * Simulates rows of a round with their seeds (worker threads, timeouts, the abort signal as the
 * fit's), reporting progress as rows `offset + done` of `total` (default: these rows' count);
 * `persist` writes them to the store's round as they come (the round's θ must be stored).
 */
export async function simulateForRound(
  config: StagedRoundConfig,
  round: number,
  theta: Float64Array,
  seeds: Uint32Array,
  options: { offset?: number; total?: number; persist?: boolean } = {},
): Promise<SimulatedRows> {
  const offset = options.offset ?? 0;
  const rows = await simulateRows(
    config.simulator,
    theta,
    config.net.nDims,
    config.net.dataSize,
    seeds,
    {
      ...(config.workers !== undefined ? { workers: config.workers } : {}),
      ...(config.signal ? { signal: config.signal } : {}),
      onProgress: (done, total) =>
        config.onSimulate?.(round, offset + done, options.total ?? total),
      ...(options.persist && config.store ? { store: { store: config.store, round } } : {}),
      ...(config.simTimeoutMs !== undefined ? { simTimeoutMs: config.simTimeoutMs } : {}),
    },
  );
  if (config.signal?.aborted) throw abortError(config.signal);
  return rows;
}

/**
 * log p(xObs | θ) + log p(θ) of a stage's draws (NaN where a simulation failed). A likelihood of
 * θ alone needs no simulation; one that reads the simulations gets them here, with the seeds the
 * round would give those rows (`simulationSeeds` of the round's key over nSims rows), and they are
 * kept for the round (`stagedRows`): no row is simulated twice, and a stopped run resumes them
 * from the store's `stages` record.
 */
export function stageLogTarget(
  config: StagedRoundConfig,
  round: number,
  simKey: Array,
  staged: StagedSimulations,
): (theta: Float64Array) => Promise<Float64Array> {
  const { logLike, xObs, prior, net } = config;
  const d = net.nDims;
  const likelihood = { logLike: logLike!, xObs: xObs! };
  if (!needsSimulation(logLike!)) {
    return async (theta) => {
      const ll = logLikelihoods(logLike!, xObs!, undefined, theta, d);
      const lp = prior.logProb(theta);
      const target = ll.map((v, i) => v + lp[i]!);
      staged.logTarget.push(target);
      return target;
    };
  }
  const seeds = simulationSeeds(simKey, config.nSims);
  const store = config.store;
  let saved: StagesRecord | undefined | null = null; // null: not read yet
  return async (theta) => {
    const offset = staged.rows;
    const m = theta.length / d;
    if (saved === null)
      saved = store ? await store.readJson<StagesRecord>(round, STAGES_RECORD) : undefined;
    const size = net.dataSize;
    const kept =
      saved && saved.status.length >= offset + m && holds(saved, theta, offset * d)
        ? {
            x: Float32Array.from(
              saved.x.slice(offset * size, (offset + m) * size),
              (v) => v ?? Number.NaN,
            ),
            status: Uint8Array.from(saved.status.slice(offset, offset + m)),
          }
        : undefined;
    const drawn = await drawAndSimulate({
      draw: async () => ({ theta, proposal: PRIOR_PROPOSAL, redrawn: 0, acceptance: 1 }),
      nDims: d,
      simulate: async (t) =>
        kept ??
        simulateForRound(config, round, t, seeds.subarray(offset, offset + m), {
          offset,
          total: config.nSims,
        }),
      alwaysSimulate: true,
    });
    const sim = drawn.simulation!;
    staged.theta.push(theta);
    staged.x.push(sim.x);
    staged.status.push(sim.status);
    staged.rows += m;
    if ("firstError" in sim && sim.firstError !== undefined) staged.firstError ??= sim.firstError;
    if (store && !kept) {
      const record: StagesRecord = {
        theta: globalThis.Array.from(concat(staged.theta, Float64Array)),
        x: globalThis.Array.from(concat(staged.x, Float32Array), (v) =>
          Number.isFinite(v) ? v : null,
        ),
        status: globalThis.Array.from(concat(staged.status, Uint8Array)),
      };
      await store.writeJson(round, STAGES_RECORD, record);
    }
    const target = weighDraws(drawn, prior, d, likelihood).logTarget!;
    staged.logTarget.push(target);
    return target;
  };
}

/** The staged simulations as the round's, written to the store (its θ is there already). */
export async function stagedRows(
  config: StagedRoundConfig,
  round: number,
  staged: StagedSimulations,
): Promise<SimulatedRows> {
  const x = concat(staged.x, Float32Array);
  const status = concat(staged.status, Uint8Array);
  if (config.store) {
    const index = Int32Array.from({ length: staged.rows }, (_, i) => i);
    await config.store.appendChunk(round, { index, x, status });
    // The chunk holds them now: the record's copy is spent.
    await config.store.writeJson(round, STAGES_RECORD, { theta: [], x: [], status: [] });
  }
  return staged.firstError !== undefined
    ? { x, status, firstError: staged.firstError }
    : { x, status };
}

/**
 * A round whose θ were stored but whose chunk was not (stopped in between): its stages' record
 * still holds the simulations, taken back into `staged` when they match θ and nothing else was
 * stored for the round.
 */
export async function restoreStaged(
  store: SimulationStore,
  round: number,
  theta: Float64Array,
  d: number,
  staged: StagedSimulations,
): Promise<void> {
  const record = await store.readJson<StagesRecord>(round, STAGES_RECORD);
  if (
    record &&
    record.theta.length === theta.length &&
    holds(record, theta, 0) &&
    !(await store.readRound(round)).done.some((v) => v === 1)
  ) {
    staged.theta.push(theta);
    staged.x.push(Float32Array.from(record.x, (v) => v ?? Number.NaN));
    staged.status.push(Uint8Array.from(record.status));
    staged.rows = theta.length / d;
  }
}
