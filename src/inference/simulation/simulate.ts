/**
 * Running the expensive simulator once per parameter vector θ: in-process (a plain function,
 * sync or async, one θ at a time) or in a pool of worker threads (an ES module). Outputs come out
 * in chunks that carry their θ indices, so a store can persist them as they finish and a run
 * killed at any moment resumes by simulating only the indices not yet stored.
 *
 * The simulator must be a function of θ and `info.seed` alone: then results do not depend on the
 * number of workers or on the order in which chunks arrive.
 */

import { fail, NbiError } from "../../errors.js";
import { yieldToEventLoop } from "../host.js";
import {
  messageOf,
  type Outcome,
  ResultCollector,
  type SimulationChunk,
  type SimulationReport,
} from "./collect.js";
import { type ModuleRunner, registeredModuleRunner, type WorkerSimulatorSpec } from "./runner.js";

export {
  type SimulationChunk,
  type SimulationReport,
  SimulationStatus,
} from "./collect.js";
export type { WorkerSimulatorSpec } from "./runner.js";

/** What a simulator learns besides θ: its row index and the seed for its own randomness. */
export interface SimulationInfo {
  readonly index: number;
  readonly seed: number;
}

/** An in-process simulator: θ (one row, length paramDim) to an output of fixed length. */
export type SimulatorFn = (
  theta: Float64Array,
  info: SimulationInfo,
) => ArrayLike<number> | Promise<ArrayLike<number>>;

/** Which simulations to run and where their results go. */
export interface SimulationJob {
  /** n × paramDim parameters, row-major. */
  readonly theta: Float64Array;
  readonly paramDim: number;
  /** The rows of `theta` to simulate (distinct, in [0, n)). */
  readonly indices: Int32Array;
  /** One seed per row of `theta` (length n), passed as `info.seed`; the row index if omitted. */
  readonly seeds?: Uint32Array;
  /** The output length every simulation must return; the first output's length if omitted. */
  readonly expectedSize?: number;
  /** Receives chunks in order as they fill; the run waits for it and stops if it throws. */
  readonly onChunk: (chunk: SimulationChunk) => Promise<void> | void;
}

export interface SimulateOptions {
  /** Worker threads for a module simulator (default: os.availableParallelism()). */
  readonly workers?: number;
  /** Results per chunk (default max(1, ⌈count/50⌉)). */
  readonly chunkSize?: number;
  /** A chunk is also cut when this long has passed since the last one (default 1000 ms). */
  readonly flushIntervalMs?: number;
  /** Stops the run: workers are terminated, finished results flushed, then the call rejects. */
  readonly signal?: AbortSignal;
  readonly onProgress?: (done: number, total: number) => void;
  /**
   * Longest one simulation may run, in milliseconds (default: no limit). A worker simulator past
   * it is terminated (its worker replaced) and the θ gets status timeout; the queue goes on. An
   * in-process async simulator's θ is counted as timed out too, but its promise cannot be stopped
   * and runs on unobserved; a synchronous in-process simulator cannot be interrupted at all (give
   * it as a module to run it in workers).
   */
  readonly simTimeoutMs?: number;
}

/**
 * Runs `simulator` on the rows `job.indices` of `job.theta` and passes the results to
 * `job.onChunk`. An output with NaN or ±Infinity gets status nonFinite; a simulator that throws
 * gets status threw and the run goes on; with workers, a θ whose worker dies twice gets status
 * crashed, and one running past `options.simTimeoutMs` gets status timeout. Finished results are
 * handed to `onChunk` within `flushIntervalMs` even while the next simulation is still running. An output of the wrong length is a bug in the simulator: the run stops (after flushing
 * the results before it) with an NbiError naming the index, θ and both lengths.
 *
 * @example
 * ```ts
 * const report = await inference.simulate((θ) => [2 * θ[0]!], {
 *   theta: Float64Array.from([1, 2, 3]), paramDim: 1, indices: Int32Array.from([0, 1, 2]),
 *   onChunk: (chunk) => console.log(chunk.index, chunk.x), // θ rows and their outputs, as they finish
 * });
 * ```
 */
export async function simulate(
  simulator: SimulatorFn | WorkerSimulatorSpec,
  job: SimulationJob,
  options: SimulateOptions = {},
): Promise<SimulationReport> {
  validate(simulator, job, options);
  const { theta, paramDim, indices, seeds } = job;
  const collector = new ResultCollector({
    theta,
    paramDim,
    expectedSize: job.expectedSize,
    total: indices.length,
    chunkSize: options.chunkSize ?? Math.max(1, Math.ceil(indices.length / 50)),
    flushIntervalMs: options.flushIntervalMs ?? 1000,
    onChunk: job.onChunk,
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  });
  let runError: unknown;
  let completed = false;
  try {
    completed =
      typeof simulator === "function"
        ? await runInProcess(simulator, job, collector, options.signal, options.simTimeoutMs)
        : await runModule(
            simulator,
            {
              theta,
              paramDim,
              indices,
              seeds,
              workers: options.workers,
              signal: options.signal,
              timeoutMs: options.simTimeoutMs,
            },
            collector,
          );
  } catch (error) {
    runError = error;
  }
  // Finished results are flushed whatever stopped the run, so none is lost.
  const report = await collector.finish();
  if (runError !== undefined) throw runError;
  if (!completed) throw options.signal?.reason ?? new Error("simulate: aborted");
  return report;
}

function runModule(...args: Parameters<ModuleRunner>): Promise<boolean> {
  const moduleRunner = registeredModuleRunner();
  if (moduleRunner === undefined) {
    throw new NbiError(
      `simulate: simulator ${JSON.stringify(args[0].module)} is a module, which needs worker threads (import "nbi", or the engine, in Node) or Web Workers (import "nbi/browser"); none is loaded`,
    );
  }
  return moduleRunner(...args);
}

async function runInProcess(
  fn: SimulatorFn,
  job: SimulationJob,
  collector: ResultCollector,
  signal: AbortSignal | undefined,
  timeoutMs: number | undefined,
): Promise<boolean> {
  const { theta, paramDim, indices, seeds } = job;
  let lastYield = Date.now();
  for (const index of indices) {
    if (signal?.aborted || collector.chunkError !== undefined) return false;
    const row = theta.slice(index * paramDim, (index + 1) * paramDim);
    const info = { index, seed: seeds ? seeds[index]! : index };
    let outcome: Outcome;
    try {
      const value = fn(row, info);
      outcome =
        timeoutMs !== undefined && isThenable(value)
          ? await withTimeout(value, timeoutMs)
          : { kind: "returned", value: await value };
    } catch (error) {
      outcome = { kind: "threw", message: messageOf(error) };
    }
    collector.add(index, outcome);
    // Simulating faster than chunks are written would pile them up in memory.
    if (collector.backlog > 1) await collector.drain();
    // A synchronous simulator never yields to the event loop; let timers (abort, I/O) run.
    if (Date.now() - lastYield > 50) {
      await yieldToEventLoop();
      lastYield = Date.now();
    }
  }
  return collector.chunkError === undefined;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as { then?: unknown }).then === "function"
  );
}

/** The promise's outcome, or a timeout outcome once `ms` has passed (the promise runs on). */
async function withTimeout(value: PromiseLike<unknown>, ms: number): Promise<Outcome> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<Outcome>((resolve) => {
    timer = setTimeout(
      () =>
        resolve({
          kind: "timeout",
          message: `the simulation ran past simTimeoutMs = ${ms} ms (its promise was abandoned)`,
        }),
      ms,
    );
  });
  try {
    return await Promise.race([
      Promise.resolve(value).then((v): Outcome => ({ kind: "returned", value: v })),
      late,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function validate(
  simulator: SimulatorFn | WorkerSimulatorSpec,
  job: SimulationJob,
  options: SimulateOptions,
): void {
  const fn = "simulate";
  if (typeof simulator !== "function") {
    if (
      simulator === null ||
      typeof simulator !== "object" ||
      typeof simulator.module !== "string"
    ) {
      fail(fn, "simulator", "a function or { module, exportName? }", simulator);
    }
  }
  const { theta, paramDim, indices, seeds, expectedSize } = job;
  if (!Number.isInteger(paramDim) || paramDim < 1)
    fail(fn, "job.paramDim", "a positive integer", paramDim);
  if (!(theta instanceof Float64Array) || theta.length % paramDim !== 0) {
    fail(
      fn,
      "job.theta",
      `a Float64Array whose length is a multiple of paramDim ${paramDim}`,
      theta instanceof Float64Array ? `length ${theta.length}` : theta,
    );
  }
  const n = theta.length / paramDim;
  if (!(indices instanceof Int32Array)) fail(fn, "job.indices", "an Int32Array", indices);
  const seen = new Uint8Array(n);
  for (const i of indices) {
    if (i < 0 || i >= n) fail(fn, "job.indices", `values in [0, ${n})`, i);
    if (seen[i]) fail(fn, "job.indices", "distinct values", `${i} twice`);
    seen[i] = 1;
  }
  if (seeds !== undefined && (!(seeds instanceof Uint32Array) || seeds.length !== n)) {
    fail(
      fn,
      "job.seeds",
      `a Uint32Array of length ${n} (one seed per θ row)`,
      seeds instanceof Uint32Array ? `length ${seeds.length}` : seeds,
    );
  }
  if (expectedSize !== undefined && (!Number.isInteger(expectedSize) || expectedSize < 0)) {
    fail(fn, "job.expectedSize", "a non-negative integer", expectedSize);
  }
  if (typeof job.onChunk !== "function") fail(fn, "job.onChunk", "a function", job.onChunk);
  const { workers, chunkSize, flushIntervalMs } = options;
  if (workers !== undefined && (!Number.isInteger(workers) || workers < 1)) {
    fail(fn, "options.workers", "a positive integer", workers);
  }
  if (chunkSize !== undefined && (!Number.isInteger(chunkSize) || chunkSize < 1)) {
    fail(fn, "options.chunkSize", "a positive integer", chunkSize);
  }
  if (flushIntervalMs !== undefined && !(flushIntervalMs >= 0)) {
    fail(fn, "options.flushIntervalMs", "a non-negative number", flushIntervalMs);
  }
  const { simTimeoutMs } = options;
  if (simTimeoutMs !== undefined && !(simTimeoutMs > 0 && simTimeoutMs <= 2 ** 31 - 1)) {
    fail(
      fn,
      "options.simTimeoutMs",
      "a positive number of milliseconds (below 2^31)",
      simTimeoutMs,
    );
  }
}
