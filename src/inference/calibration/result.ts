/**
 * A calibration's result as plain data, assembled from host arrays: SBC ranks, HPD expected
 * coverage, TARP and the verdict. `NBI.calibrate` draws the test pairs and the surrogate's draws
 * and densities and hands them here; tests hand it an exact posterior's.
 */
import { failText } from "../../errors.js";
import type { Array } from "../../trace/array.js";
import { type HpdCoverage, hpdCoverage } from "./coverage.js";
import { type SbcResult, sbc } from "./sbc.js";
import { type TarpResult, tarp } from "./tarp.js";
import { calibrationVerdict, type Verdict } from "./verdict.js";

/** Test pairs whose simulation failed, by cause (they are left out of every statistic). */
export interface FailedPairs {
  /** All failed test pairs. */
  readonly total: number;
  /** The simulation (or the noise added to it) returned NaN or ±Infinity. */
  readonly nonFinite: number;
  /** The simulator threw. */
  readonly threw: number;
  /** The worker died on this θ. */
  readonly crashed: number;
  /** The simulation ran past simTimeoutMs. */
  readonly timedOut: number;
  /** The first simulator error's message, if one threw. */
  readonly firstError?: string;
}

/** What `NBI.calibrate` (and `calibrationFromSamples`) returns. */
export interface CalibrationResult {
  /** One name per parameter. */
  readonly labels: readonly string[];
  /** Test pairs asked for. */
  readonly nRequested: number;
  /** Test pairs used: those whose simulation succeeded. */
  readonly nTest: number;
  /** Posterior draws per test pair. */
  readonly nSamples: number;
  /** Test pairs left out because their simulation failed, by cause. */
  readonly failed: FailedPairs;
  /** The true parameters of the test pairs used, nTest × d. */
  readonly theta: Float64Array;
  /** Simulation-based calibration: ranks and their uniformity tests per parameter. */
  readonly sbc: SbcResult;
  /** Expected coverage of highest-density regions. */
  readonly coverage: HpdCoverage;
  /** TARP's expected coverage with random reference points. */
  readonly tarp: TarpResult;
  /** The verdict in words, with sizes. */
  readonly verdict: Verdict;
  /** Things worth knowing about the run itself (failed simulations, a small test set). */
  readonly warnings: readonly string[];
}

/** What `calibrationFromSamples` takes: test pairs, draws at their data and log-densities. */
export interface CalibrationInput {
  /** True parameters, nTest × d. */
  readonly theta: ArrayLike<number>;
  /** Posterior draws at each test pair's data, nTest × nSamples × d. */
  readonly samples: ArrayLike<number>;
  /** log q(θ* | x) per test pair. */
  readonly logProbTrue: ArrayLike<number>;
  /** log q(θ_i | x) of each draw, nTest × nSamples. */
  readonly logProbSamples: ArrayLike<number>;
  /** Parameters per row. */
  readonly nDims: number;
  /** Draws per test pair. */
  readonly nSamples: number;
  /** One name per parameter (default θ0, θ1, ...). */
  readonly labels?: readonly string[];
  /** PRNG key of TARP's reference points. */
  readonly key: Array;
  /** Test pairs left out (default none). */
  readonly failed?: FailedPairs;
  /** Familywise significance of the verdict (default 0.05). */
  readonly significance?: number;
  /** Rank bins of the SBC χ² test (default: ≤ 20, ≥ 5 pairs expected per bin). */
  readonly bins?: number;
}

const NO_FAILURES: FailedPairs = { total: 0, nonFinite: 0, threw: 0, crashed: 0, timedOut: 0 };

/**
 * SBC, HPD coverage, TARP and the verdict from host arrays.
 *
 * @example
 * ```ts
 * const result = calibrationFromSamples({ theta, samples, logProbTrue, logProbSamples,
 *   nDims: 2, nSamples: 200, labels: ["a", "b"], key: inference.hostKey(0) });
 * console.log(result.verdict.summary);
 * ```
 */
export function calibrationFromSamples(input: CalibrationInput): CalibrationResult {
  const fn = "calibrationFromSamples";
  const { nDims: d, nSamples } = input;
  const significance = input.significance ?? 0.05;
  if (!(significance > 0 && significance < 1)) {
    failText(fn, "significance", "a number in (0, 1)", String(input.significance));
  }
  const labels = input.labels ?? globalThis.Array.from({ length: d }, (_, j) => `θ${j}`);
  const s: SbcResult = sbc(input.theta, input.samples, {
    nDims: d,
    nSamples,
    labels,
    ...(input.bins !== undefined ? { bins: input.bins } : {}),
  });
  if (input.logProbTrue.length !== s.nTest) {
    failText(
      fn,
      "logProbTrue",
      `${s.nTest} numbers (one per test pair)`,
      `${input.logProbTrue.length}`,
    );
  }
  const coverage: HpdCoverage = hpdCoverage(input.logProbTrue, input.logProbSamples, { nSamples });
  const t: TarpResult = tarp(input.theta, input.samples, { nDims: d, nSamples, key: input.key });
  const failed = input.failed ?? NO_FAILURES;
  const nRequested = s.nTest + failed.total;
  const warnings: string[] = [];
  if (failed.total > 0) {
    const causes = (
      [
        ["non-finite output", failed.nonFinite],
        ["simulator error", failed.threw],
        ["crashed worker", failed.crashed],
        ["timed out", failed.timedOut],
      ] as const
    )
      .filter(([, n]) => n > 0)
      .map(([what, n]) => `${n} ${what}`)
      .join(", ");
    warnings.push(
      `${failed.total} of ${nRequested} test simulations failed (${causes}) and were left out` +
        (failed.firstError ? `; first error: ${failed.firstError}` : "") +
        ": if failures depend on θ, the remaining pairs no longer follow the prior",
    );
  }
  if (s.nTest < 50) {
    warnings.push(
      `only ${s.nTest} test pairs: the tests can detect gross miscalibration only (use nTest ≥ 200)`,
    );
  }
  return {
    labels,
    nRequested,
    nTest: s.nTest,
    nSamples,
    failed,
    theta: Float64Array.from(input.theta),
    sbc: s,
    coverage,
    tarp: t,
    verdict: calibrationVerdict({
      sbc: s,
      coverage,
      tarp: t,
      significance,
      requested: nRequested,
      failed: failed.total,
    }),
    warnings,
  };
}
