/**
 * Bijectors under composition form a monoid: `identity()` is the neutral element and `chain` the
 * associative operation. `bijectorMonoid` is that structure as an fp-ts `Monoid`, so generic fp-ts
 * code that takes a Monoid (fp-ts's `concatAll(bijectorMonoid)`, `foldMap`, …) takes bijectors,
 * and `composeAll` folds a list (an empty list gives the identity, where `chain([])` is an error).
 * The laws (associativity, left and right identity) are checked by `bijectorLaws.monoid`.
 *
 * fp-ts is used here because the user's design card names it and because a Monoid instance is
 * exactly the abstraction: composition written once, with laws that a property test can check.
 * Only its type is imported: nbi/core stays free of run-time dependencies (the package test
 * checks that its browser bundle holds nbi's own code only), and the fold is one line.
 */
import type { Monoid } from "fp-ts/lib/Monoid.js";
import { chain } from "./combinators.js";
import { identity } from "./elementary.js";
import type { Bijector } from "./types.js";

// The neutral element, shared so that composing with it returns the other operand unchanged.
const IDENTITY = identity();

/**
 * The monoid of bijectors under composition: `concat(f, g)` is f ∘ g (`chain([f, g])`: g first),
 * `empty` the identity. Composing with the identity returns the other bijector itself.
 *
 * @example
 * ```ts
 * const b = bijectors.bijectorMonoid.concat(bijectors.shift(1), bijectors.scale(2));
 * b.forward(np.array([[1]])); // scale first, then shift: [[3]]
 * ```
 */
export const bijectorMonoid: Monoid<Bijector> = {
  empty: IDENTITY,
  concat: (outer, inner) => {
    if (outer === IDENTITY) return inner;
    if (inner === IDENTITY) return outer;
    return chain([outer, inner]);
  },
};

/**
 * The composition of a list of bijectors in `chain`'s order (the last applied first), through
 * the monoid: the identity for an empty list.
 *
 * @example
 * ```ts
 * bijectors.composeAll([bijectors.shift(1), bijectors.scale(2)]).forward(np.array([[1]])); // [[3]]
 * bijectors.composeAll([]).forward(np.array([[1]])); // [[1]]
 * ```
 */
export function composeAll(bs: readonly Bijector[]): Bijector {
  // fp-ts's concatAll(bijectorMonoid)(bs), without importing it at run time.
  return bs.reduce(bijectorMonoid.concat, bijectorMonoid.empty);
}
