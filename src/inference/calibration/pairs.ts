/**
 * Test pairs for calibration: θ* from the prior, x from the simulator plus the training's noise
 * model, so each x is distributed as the data the amortized network was trained on. Failed
 * simulations are left out and counted by cause, never silently dropped.
 */
import type { Array } from "../../trace/array.js";
import { addNoise } from "../add-noise.js";
import { keyAt } from "../host.js";
import type { Prior } from "../priors.js";
import { type Simulator, simulateRows, simulationSeeds } from "../simulation/rows.js";
import type { Noise } from "../train.js";
import type { FailedPairs } from "./result.js";

/** Test pairs whose simulations succeeded, and the ones that failed. */
export interface TestPairs {
  /** True parameters, n × d (successful pairs only). */
  readonly theta: Float64Array;
  /** Their data with noise, n × size. */
  readonly x: Float64Array;
  /** Pairs drawn. */
  readonly requested: number;
  /** Pairs left out, by cause. */
  readonly failed: FailedPairs;
}

/** What `drawTestPairs` needs. */
export interface TestPairOptions {
  readonly prior: Prior;
  readonly simulator: Simulator | undefined;
  /** Test pairs to draw. */
  readonly nTest: number;
  /** The network's input shape [channels, length] (the noise function sees [n, C, L]). */
  readonly inputShape: readonly [number, number];
  /** The training's noise model (Gaussian sigmas or a noise function), if it had one. */
  readonly noise?: Noise;
  /** Key of θ* (index 0), simulator seeds (1) and noise (2). */
  readonly key: Array;
  readonly workers?: number;
  readonly simTimeoutMs?: number;
  readonly signal?: AbortSignal;
  readonly onSimulate?: (done: number, total: number) => void;
}

/**
 * nTest test pairs (θ*, x): θ* from the prior, x simulated (worker threads for a module
 * simulator) with the training's noise added. Pairs whose simulation failed, or whose noisy data
 * is not finite, are left out and counted in `failed`.
 *
 * @example
 * ```ts
 * const pairs = await drawTestPairs({ prior, simulator, nTest: 200, inputShape: [1, 50], noise: 0.1, key });
 * pairs.failed.total; // simulations that failed
 * ```
 */
export async function drawTestPairs(options: TestPairOptions): Promise<TestPairs> {
  const { prior, nTest, inputShape } = options;
  const d = prior.dim;
  const size = inputShape[0] * inputShape[1];
  const thetaAll = prior.sample(keyAt(options.key, 0), nTest);
  const sim = await simulateRows(
    options.simulator,
    thetaAll,
    d,
    size,
    simulationSeeds(keyAt(options.key, 1), nTest),
    {
      ...(options.workers !== undefined ? { workers: options.workers } : {}),
      ...(options.simTimeoutMs !== undefined ? { simTimeoutMs: options.simTimeoutMs } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.onSimulate ? { onProgress: options.onSimulate } : {}),
    },
  );
  // The noise model sees NaN rows of failed simulations too; they are left out below.
  const x =
    options.noise === undefined
      ? sim.x
      : await addNoise(
          options.noise,
          keyAt(options.key, 2),
          sim.x,
          thetaAll,
          inputShape,
          d,
          "calibrate",
          "noise",
        );
  const counts = [0, 0, 0, 0, 0];
  const keep: number[] = [];
  for (let i = 0; i < nTest; i++) {
    let status = sim.status[i]!;
    if (status === 0) {
      for (let k = i * size; k < (i + 1) * size; k++) {
        if (!Number.isFinite(x[k]!)) {
          status = 1;
          break;
        }
      }
    }
    if (status === 0) keep.push(i);
    else counts[Math.min(status, 4)]! += 1;
  }
  const theta = new Float64Array(keep.length * d);
  const xs = new Float64Array(keep.length * size);
  keep.forEach((i, r) => {
    theta.set(thetaAll.subarray(i * d, (i + 1) * d), r * d);
    xs.set(x.subarray(i * size, (i + 1) * size), r * size);
  });
  return {
    theta,
    x: xs,
    requested: nTest,
    failed: {
      total: nTest - keep.length,
      nonFinite: counts[1]!,
      threw: counts[2]!,
      crashed: counts[3]!,
      timedOut: counts[4]!,
      ...(sim.firstError ? { firstError: sim.firstError } : {}),
    },
  };
}
