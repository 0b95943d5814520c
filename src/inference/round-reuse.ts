/**
 * Which rounds' simulations a sequential round trains on (fit's `nReuse`).
 *
 * nbi trains each round on its own simulations (`n_reuse = 0`); pooling every round (−1) keeps
 * the prior's and the early rounds' draws, which teach the network the posterior family's broad
 * shape and keep a multimodal posterior's modes, but once a round's proposal has found the
 * posterior they spend most of each epoch far from it. Neither wins everywhere (bench/RESULTS.md,
 * 2026-12-05 afternoon): on nbi's sine at nbi's settings (ResNet-GRU, patience 1) a round trained
 * on its own draws gives the sharper surrogate, while on SLCP at 10⁴ simulations it wrecks the
 * raw surrogate (C2ST 0.80 → 0.91), and a round whose own proposal missed the posterior (0.3%)
 * trains a worse one alone. So "auto" (the default) trains on every round, and a "select" round
 * whose own draws pass the rule below also trains NLL on them alone, a third candidate kept only
 * when it scores better at held-out draws (loss-selection.ts): the data decide. Where the
 * held-out draws are too few to judge (nbi's 320-draw rounds hold 32 validation rows), or its
 * own draws too few effective ones for the rule, and a next round is drawn in stages, the
 * candidate is kept as a challenger (`offersChallenger`), and that round's pilot judges it with
 * fresh draws: half from each network, the larger n_eff drawing the rest of the round and
 * starting its training (staged-draws.ts, snpe.ts).
 */

/** fit's `nReuse`: earlier rounds to train on as well (0 none, −1 all), or "auto" (above). */
export type Reuse = number | "auto";

/** "auto": effective samples per parameter a round's draws need to try training on alone. */
export const REUSE_EFFECTIVE_PER_DIM = 3;
/** "auto": rows per parameter a round needs to try training on alone. */
export const REUSE_ROWS_PER_DIM = 100;

/** What the rule reads of a round: its rows and, with a likelihood, its importance n_eff. */
export interface ReuseRound {
  /** log p(θ) per row: only its length (the round's rows) is read. */
  readonly logPrior: {
    /** The round's rows. */
    readonly length: number;
  };
  /** The round's importance weights, where it has a likelihood. */
  readonly importance?: {
    /** nbi's effective sample size of the round's draws. */
    readonly nEff: number;
  };
}

/**
 * The index of the first round whose simulations the last of `rounds` (the round training now)
 * trains on, `rounds.slice(first)`; with "auto", the first round of its own-draws candidate (its
 * own index when its draws hold ≥ 3 effective samples and ≥ 100 rows per parameter, else 0).
 *
 * @example
 * ```ts
 * firstTrainingRound(rounds, 0, 3); // rounds.length - 1: its own only, as nbi's n_reuse = 0
 * firstTrainingRound(rounds, -1, 3); // 0: all rounds
 * ```
 */
export function firstTrainingRound(
  rounds: readonly ReuseRound[],
  nReuse: Reuse,
  nDims: number,
): number {
  const last = rounds.length - 1;
  if (nReuse !== "auto") return nReuse < 0 ? 0 : Math.max(0, last - nReuse);
  const own = rounds[last];
  if (!own || last === 0) return 0;
  const onItsOwn =
    (own.importance?.nEff ?? 0) >= REUSE_EFFECTIVE_PER_DIM * nDims &&
    own.logPrior.length >= REUSE_ROWS_PER_DIM * nDims;
  return onItsOwn ? last : 0;
}

/**
 * Whether the round training now (the last of `rounds`) may offer its own draws' candidate as a
 * challenger for the next round's pilot: any round after the first with ≥ 100 rows per parameter.
 * Unlike `firstTrainingRound`'s rule it asks no effective draws: the pilot judges the candidate
 * with fresh draws, so a round whose own draws barely found the posterior (nbi's sine: 1–2
 * effective of 320) can still offer one, and a poor one costs half the pilot, not the round.
 *
 * @example
 * ```ts
 * offersChallenger(rounds, 3); // true once the round holds 300 rows
 * ```
 */
export function offersChallenger(rounds: readonly ReuseRound[], nDims: number): boolean {
  const last = rounds.length - 1;
  return last > 0 && rounds[last]!.logPrior.length >= REUSE_ROWS_PER_DIM * nDims;
}
