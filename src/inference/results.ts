/**
 * What the engine's fit and predict return (`NBI.fit`, `NBI.predict`, and the browser engine's):
 * plain values, in a file of their own so the displays that print them (display.ts) need not
 * import the engine that makes them.
 */
import type { RoundRecord } from "./snpe.js";
import type { TrustReport } from "./trust.js";

/** What `NBI.fit` returns; it prints as a table of rounds and the weighted posterior. */
export interface FitResult {
  /** Per round: ESS, efficiency, losses, epochs, simulations made, dropped and redrawn. */
  readonly history: readonly RoundRecord[];
  /** Weighted draws of all rounds (n × d) and their normalised weights (nbi's result()). */
  readonly samples: Float64Array;
  /** One normalised weight per row of `samples`, each round's scaled by its n_eff. */
  readonly weights: Float64Array;
  /** n_eff per round (NaN for rounds without importance weights, e.g. amortized NPE). */
  readonly essHistory: readonly number[];
  /** Why the run stopped. */
  readonly stopped: string;
  /** One name per parameter (the columns of `samples`). */
  readonly labels: readonly string[];
  /**
   * Rounds whose importance weights could not contribute (n_eff 0): kept in `history`, left out
   * of `samples`. When every weighted round is empty, `samples` and `weights` are empty.
   */
  readonly emptyRounds?: readonly number[];
  /** Finished rounds found in the store and replayed rather than run (0 for a fresh run). */
  readonly resumedRounds?: number;
}

/** What `NBI.predict` returns; it prints as a table of the weighted posterior. */
export interface PredictResult {
  /** Draws from the proposal, n × d in the user's units. */
  readonly samples: Float64Array;
  /** Normalised importance weights, one per row of `samples` (uniform when surrogateOnly). */
  readonly weights: Float64Array;
  /** nbi's n_eff = 1/Σw² − 1, and Kish's 1/Σw². */
  readonly ess: number;
  /** Kish's effective sample size 1/Σw². */
  readonly kishEss: number;
  /** n_eff / draws: the sampling efficiency (near 1 when the surrogate matches the posterior). */
  readonly efficiency: number;
  /** log of the evidence p(xObs) estimated from the weights. */
  readonly logEvidence: number;
  /** Standard error of `logEvidence`. */
  readonly logEvidenceSe: number;
  /** PSIS k̂ of the weights: below 0.7 the weighted results can be trusted. */
  readonly paretoK: number;
  /** Simulations run (all top-ups included). */
  readonly nSimulations: number;
  /** Simulations dropped (non-finite output, simulator error, crashed worker). */
  readonly dropped: number;
  /** Proposal draws outside the prior's support, redrawn. */
  readonly redrawn: number;
  /**
   * The fit's weighed draws pooled into the result (`PredictOptions.pool`): the last `rows` rows
   * of `samples` (0 when none: another target, no fit weights, or pool false), and the n_eff
   * they hold on their own. Not simulations of this call: `nSimulations` counts predict's own.
   */
  readonly pooled: {
    /** Rows of `samples` from the fit's rounds (its last rows). */
    readonly rows: number;
    /** n_eff of those rows' weights on their own. */
    readonly nEff: number;
  };
  /** True when no likelihood was given: samples are the surrogate's, weights uniform. */
  readonly surrogateOnly: boolean;
  /** Diagnostics worth reading (heavy-tailed weights, dropped simulations, a short n_eff). */
  readonly warnings: readonly string[];
  /** One name per parameter (the columns of `samples`). */
  readonly labels: readonly string[];
  /**
   * One verdict ("ok" | "caution" | "do-not-trust") from the out-of-distribution alarm (how far
   * xObs lies from the training simulations in the featurizer's space) and the weights' health
   * (n_eff, efficiency, Pareto k̂), with its message; also in `warnings` when not ok.
   */
  readonly trust: TrustReport;
}
