/**
 * From a RunConfig to the engine: the NBI instance of a run folder and its fit options, shared by
 * `nbi fit` and `nbi simulate --prepare` so both see exactly the same run.
 *
 * A run folder holds the config the CLI ran with (nbi-config.json), the simulation store
 * (store/, the engine's `path`), and after `nbi fit` the saved model (model.json,
 * weights.safetensors) and the weighted draws of the fit (fit-posterior.csv).
 */
import { join } from "node:path";
import { type FitOptions, NBI } from "../inference/engine.js";
import type { Hooks } from "../inference/snpe.js";
import { interruptSignal } from "./common.js";
import { type RunConfig, STORE_DIR } from "./config.js";

export function engineFor(run: RunConfig): NBI {
  return new NBI({
    flow: run.flow,
    featurizer: run.featurizer,
    simulator: run.simulator,
    priors: run.prior,
    path: join(run.runDir, STORE_DIR),
    seed: run.seed,
    ...(run.workers !== undefined ? { workers: run.workers } : {}),
    ...(run.backend !== undefined ? { backend: run.backend } : {}),
    ...(run.dataShape !== undefined ? { dataShape: run.dataShape } : {}),
    ...(run.simTimeoutMs !== undefined ? { simTimeoutMs: run.simTimeoutMs } : {}),
  });
}

export function fitOptions(
  run: RunConfig,
  hooks: Hooks,
  nRounds?: number,
  extra: Pick<FitOptions, "resume" | "onResume"> = {},
): FitOptions {
  return {
    ...run.fit,
    ...extra,
    ...(nRounds !== undefined ? { nRounds } : {}),
    ...(run.xObs ? { xObs: run.xObs } : {}),
    ...hooks,
    signal: interruptSignal(),
    progress: false, // the CLI's reporter draws its own bars
  };
}

/** The rounds a fit of this config runs (an amortized fit has one). */
export function roundsOf(run: RunConfig): number {
  return run.fit.nRounds ?? 1;
}
