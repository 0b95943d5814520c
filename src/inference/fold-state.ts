/**
 * The transitions of the sequential fold's state (snpe.ts): the initial state and "one more
 * round", written with immer's `produce`. The state is a value: each round returns a new one and
 * the old stays valid (a caller may keep it, `runRound` again from it, or compare). immer gives
 * that without hand-written spreads and, outside production (`NODE_ENV` other than
 * "production"), freezes every state and what it holds (records, round data, parameter and
 * scale trees), so code that mutates a finished round by accident throws a TypeError at once
 * instead of corrupting the run's history. Typed arrays and device arrays are left as they are
 * (immer does not freeze them); their immutability is the library's convention.
 */
import { freeze, produce, setAutoFreeze } from "immer";

const production = globalThis.process?.env?.NODE_ENV === "production";
setAutoFreeze(!production);

/**
 * The fold's state after some rounds (snpe.ts's `SnpeState`: C a surrogate checkpoint, D a
 * round's data, R its record), an immutable value, one per round.
 */
export interface FoldState<C, D, R> {
  /** The surrogate after the last trained round. */
  readonly current: C;
  /** checkpoints[r]: the surrogate after round r (what later proposals are made of). */
  readonly checkpoints: readonly C[];
  /** Each round's valid simulations and importance weights. */
  readonly data: readonly D[];
  /** Each round's record. */
  readonly history: readonly R[];
  /** Why the fold stopped, once a stopping rule fired. */
  readonly stopped?: string;
}

/** The first state of a fold: the network's initial surrogate, no rounds yet. */
export function initialFoldState<C, D, R>(current: C): FoldState<C, D, R> {
  const state: FoldState<C, D, R> = { current, checkpoints: [], data: [], history: [] };
  return production ? state : freeze(state, true);
}

/** What one round adds to the fold's state. */
export interface RoundOutcome<C, D, R> {
  /** The surrogate after the round (trained, restored or reverted to). */
  readonly current: C;
  /** The round's draws, simulations and weights. */
  readonly data: D;
  /** The round's record. */
  readonly record: R;
  /** Why the fold stops after this round, if it does. */
  readonly stopped?: string;
}

/** The state after one more round; `state` itself is unchanged. */
export function afterRound<C, D, R>(
  state: FoldState<C, D, R>,
  outcome: RoundOutcome<C, D, R>,
): FoldState<C, D, R> {
  return produce(state, (draft) => {
    // The draft of a generic state: immer's Draft<C> cannot be written for an unknown C.
    const d = draft as unknown as {
      current: C;
      checkpoints: C[];
      data: D[];
      history: R[];
      stopped?: string;
    };
    d.current = outcome.current;
    d.checkpoints.push(outcome.current);
    d.data.push(outcome.data);
    d.history.push(outcome.record);
    if (outcome.stopped !== undefined) d.stopped = outcome.stopped;
  });
}
