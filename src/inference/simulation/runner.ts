/**
 * Where `simulate` finds how to run `{ module }` simulators: pool.ts (Node's worker
 * threads) or the browser entry (Web Workers) registers a runner here when loaded. A module of its
 * own so the pool can register without importing simulate.ts, which reads the runner.
 */
import type { ResultCollector } from "./collect.js";

/** A simulator that runs in worker threads: an ES module and the name of its function export. */
export interface WorkerSimulatorSpec {
  /** Absolute path or file: URL of an ES module (.js/.mjs; .ts needs tsx installed). */
  readonly module: string;
  /** The export to call; "default" unless given. */
  readonly exportName?: string;
}

export interface PoolPlan {
  readonly theta: Float64Array;
  readonly paramDim: number;
  readonly indices: Int32Array;
  readonly seeds: Uint32Array | undefined;
  readonly workers: number;
  readonly signal: AbortSignal | undefined;
  /** Longest a single simulation may run (ms); unlimited when undefined. */
  readonly timeoutMs?: number | undefined;
}

/**
 * Runs a `{ module }` simulator in workers; false when stopped by the signal. Registered by
 * pool.ts (Node's worker threads) or the browser entry (Web Workers), so simulate.ts
 * imports no Node built-in and the rounds run in a browser.
 */
export type ModuleRunner = (
  spec: WorkerSimulatorSpec,
  plan: Omit<PoolPlan, "workers"> & { readonly workers: number | undefined },
  collector: ResultCollector,
) => Promise<boolean>;

let moduleRunner: ModuleRunner | undefined;

/** Sets how `{ module }` simulators run (see `ModuleRunner`); the last registration wins. */
export function setModuleRunner(runner: ModuleRunner): void {
  moduleRunner = runner;
}

/** The runner registered last, if any. */
export function registeredModuleRunner(): ModuleRunner | undefined {
  return moduleRunner;
}
