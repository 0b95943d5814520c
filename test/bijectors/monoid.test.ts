/**
 * Bijector composition as an fp-ts Monoid (`bijectorMonoid`): its laws on random triples of
 * bijectors on ℝ^d with random parameters, `composeAll` against `chain`, and the law check's own
 * ability to fail.
 */
import fc from "fast-check";
import { concatAll } from "fp-ts/lib/Monoid.js";
import { describe, expect, it } from "vitest";
import * as bij from "../../src/bijectors/index.js";
import { type Bijector, bijector } from "../../src/bijectors/types.js";
import { type Array, np } from "../../src/index.js";
import { useTestBackend } from "../helpers/backends.js";

const D = 2;
const N = 3;

/** Bijectors defined on all of ℝ^D, with a random parameter where they take one. */
const members: fc.Arbitrary<Bijector> = fc.oneof(
  fc.double({ min: -2, max: 2, noNaN: true }).map((s) => bij.shift(s)),
  fc.double({ min: 0.3, max: 2, noNaN: true }).map((s) => bij.scale(s)),
  fc
    .tuple(
      fc.double({ min: -1, max: 1, noNaN: true }),
      fc.double({ min: -0.5, max: 0.5, noNaN: true }),
    )
    .map(([s, l]) => bij.affine(s, l)),
  fc.constant(bij.softplus()),
  fc.constant(bij.tanh()),
  fc.constant(bij.sigmoid()),
  fc.constant(bij.reverse()),
  fc.constant(bij.identity()),
);

const batch = fc
  .array(fc.double({ min: -2, max: 2, noNaN: true }), { minLength: N * D, maxLength: N * D })
  .map((v) => np.reshape(np.array(v, { dtype: "float64" }), [N, D]));

const values = (a: Array) => globalThis.Array.from(a.dataSync() as Float64Array);

describe("bijectorMonoid", () => {
  useTestBackend("cpu");

  it("satisfies associativity and left/right identity on random triples", () => {
    fc.assert(
      fc.property(members, members, members, batch, (a, b, c, x) => {
        bij.bijectorLaws.monoid(a, b, c, x);
      }),
      { numRuns: 60, seed: 7 },
    );
  });

  it("composeAll folds in chain's order, and the empty list is the identity", () => {
    const x = np.array([[0.5, -1.25]], { dtype: "float64" });
    const list = [bij.shift(1), bij.scale(2), bij.tanh()];
    const [y, ld] = bij.composeAll(list).forwardAndLogDet(x);
    const [yc, ldc] = bij.chain(list).forwardAndLogDet(x);
    expect(values(y)).toEqual(values(yc));
    expect(values(ld)).toEqual(values(ldc));
    const [yi, ldi] = bij.composeAll([]).forwardAndLogDet(x);
    expect(values(yi)).toEqual([0.5, -1.25]);
    expect(values(ldi)).toEqual([0]);
    expect(bij.bijectorMonoid.concat(bij.bijectorMonoid.empty, list[0]!)).toBe(list[0]);
    // A genuine fp-ts Monoid: fp-ts's own fold agrees.
    const [yf, ldf] = concatAll(bij.bijectorMonoid)(list).forwardAndLogDet(x);
    expect(values(yf)).toEqual(values(yc));
    expect(values(ldf)).toEqual(values(ldc));
  });

  it("the law check fails on a map that is not a function of its input", () => {
    // A shift that grows on every call: composing it twice in different groupings disagrees.
    let calls = 0;
    const drifting = bijector({
      name: "drifting shift",
      forwardAndLogDet: (x) => [np.add(x, ++calls), np.zeros([x.shape[0]!], { dtype: x.dtype })],
      inverseAndLogDet: (y) => [np.sub(y, calls), np.zeros([y.shape[0]!], { dtype: y.dtype })],
    });
    const x = np.array([[0.1, 0.2]], { dtype: "float64" });
    expect(() => bij.bijectorLaws.monoid(drifting, bij.scale(2), drifting, x)).toThrow(
      /bijectorLaws\.monoid \(associativity\)/,
    );
  });
});
