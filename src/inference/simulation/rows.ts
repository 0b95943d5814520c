/**
 * Simulates every row of a θ batch into one dense result (x rows, status per row), resuming from
 * and persisting to the simulation store when one is given: the link between the simulator pool
 * and the engine's rounds.
 */
import { NbiError } from "../../errors.js";
import type { Array } from "../../trace/array.js";
import { uniforms } from "../host.js";
import type { SimulationStore } from "../store.js";
import { type SimulatorFn, simulate, type WorkerSimulatorSpec } from "./simulate.js";

export type Simulator = SimulatorFn | WorkerSimulatorSpec;

export interface SimulatedRows {
  /** n × size outputs (NaN rows where the simulation failed). */
  readonly x: Float32Array;
  /** Per row: 0 ok, 1 non-finite, 2 threw, 3 crashed, 4 timed out. */
  readonly status: Uint8Array;
  readonly firstError?: string;
  /** Stored rows marked ok whose outputs were not finite, re-marked non-finite on reading. */
  readonly remarked?: number;
}

export interface SimulateRowsOptions {
  workers?: number;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
  /** Persist to (and resume from) this store's round. */
  store?: { store: SimulationStore; round: number };
  /** Longest one simulation may run, in milliseconds (see `SimulateOptions.simTimeoutMs`). */
  simTimeoutMs?: number;
}

/** One seed per θ row from a key (passed to the simulator, for reproducible stochastic models). */
export function simulationSeeds(key: Array, n: number): Uint32Array {
  return Uint32Array.from(uniforms(key, n), (v) => Math.floor(v * 2 ** 32));
}

export async function simulateRows(
  simulator: Simulator | undefined,
  theta: Float64Array,
  paramDim: number,
  size: number,
  seeds: Uint32Array,
  options: SimulateRowsOptions = {},
): Promise<SimulatedRows> {
  if (!simulator) {
    throw new NbiError(
      "NBI: simulator expected a function (θ) → data or { module, exportName } to simulate new " +
        "parameters, got undefined (give one to the NBI constructor or to NBI.load)",
    );
  }
  const n = theta.length / paramDim;
  const x = new Float32Array(n * size).fill(Number.NaN);
  const status = new Uint8Array(n);
  const done = new Uint8Array(n);
  const target = options.store;
  let remarked = 0;
  if (target) {
    const prev = await target.store.readRound(target.round);
    x.set(prev.x);
    status.set(prev.status);
    done.set(prev.done);
    remarked = prev.remarked;
  }
  const extra = remarked > 0 ? { remarked } : {};
  const todo = Int32Array.from(
    globalThis.Array.from({ length: n }, (_, i) => i).filter((i) => !done[i]),
  );
  if (todo.length === 0) return { x, status, ...extra };
  const report = await simulate(
    simulator,
    {
      theta,
      paramDim,
      indices: todo,
      seeds,
      expectedSize: size,
      onChunk: async (chunk) => {
        for (let j = 0; j < chunk.index.length; j++) {
          const i = chunk.index[j]!;
          status[i] = chunk.status[j]!;
          x.set(chunk.x.subarray(j * size, (j + 1) * size), i * size);
        }
        await target?.store.appendChunk(target.round, chunk);
      },
    },
    {
      ...(options.workers !== undefined ? { workers: options.workers } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      ...(options.simTimeoutMs !== undefined ? { simTimeoutMs: options.simTimeoutMs } : {}),
    },
  );
  const firstError = report.firstError ?? report.firstCrash;
  return firstError ? { x, status, firstError, ...extra } : { x, status, ...extra };
}
