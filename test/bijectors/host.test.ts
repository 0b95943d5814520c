/**
 * Host bijectors (float64 rows): the chain from a user's parameters to a flow's coordinates. The
 * log-det of the whole map must be the log of its Jacobian's determinant (central differences),
 * the inverse must undo the forward, and the chain must apply its members in `chain`'s order.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { hostChain, hostStandardise } from "../../src/bijectors/host.js";
import { thetaMap } from "../../src/inference/posterior.js";
import { type BoundedMap, supportMap } from "../../src/inference/unbounded.js";

/** log |det ∂T/∂θ| of a column-wise map by central differences, one row of d. */
function numericLogDet(f: (x: Float64Array) => Float64Array, row: Float64Array, d: number): number {
  let s = 0;
  for (let j = 0; j < d; j++) {
    const h = 1e-6 * Math.max(1, Math.abs(row[j]!));
    const plus = Float64Array.from(row);
    const minus = Float64Array.from(row);
    plus[j]! += h;
    minus[j]! -= h;
    s += Math.log(Math.abs((f(plus)[j]! - f(minus)[j]!) / (2 * h)));
  }
  return s;
}

describe("hostStandardise", () => {
  it("maps (u − mean) / std per column, log-det −Σ log std, and inverts", () => {
    const z = hostStandardise(Float64Array.of(1, -2), Float64Array.of(2, 0.25));
    const { value, logDet } = z.forwardAndLogDet(Float64Array.of(3, -1.5, 1, -2), 2);
    expect([...value]).toEqual([1, 2, 0, 0]);
    for (const v of logDet) expect(v).toBeCloseTo(-Math.log(2) - Math.log(0.25), 15);
    expect([...z.inverse(value, 2)]).toEqual([3, -1.5, 1, -2]);
  });

  it("rejects scales that are not positive and rows of the wrong width", () => {
    expect(() => hostStandardise(Float64Array.of(0), Float64Array.of(0))).toThrow(
      /std\[0\].*positive finite number.*0/,
    );
    expect(() => hostStandardise(Float64Array.of(0, 1), Float64Array.of(1))).toThrow(/std/);
    const z = hostStandardise(Float64Array.of(0, 0), Float64Array.of(1, 1));
    expect(() => z.forwardAndLogDet(Float64Array.of(1, 2, 3), 3)).toThrow(/\bd\b.*2 columns.*3/);
  });
});

describe("hostChain", () => {
  it("applies the last member first and adds the log-dets", () => {
    const shift = hostStandardise(Float64Array.of(1), Float64Array.of(1)); // u − 1
    const halve = hostStandardise(Float64Array.of(0), Float64Array.of(2)); // u / 2
    const t = hostChain([shift, halve]); // halve first: u / 2 − 1
    const { value, logDet } = t.forwardAndLogDet(Float64Array.of(6), 1);
    expect([...value]).toEqual([2]);
    expect(logDet[0]).toBeCloseTo(-Math.log(2), 15);
    expect([...t.inverse(value, 1)]).toEqual([6]);
  });

  it("rejects an empty list", () => {
    expect(() => hostChain([])).toThrow(/hostChain.*bs.*non-empty/);
  });
});

const MAPS: readonly BoundedMap[] = ["logit", "probit"];

describe.each(MAPS)("thetaMap: support map then standardisation (%s)", (boundedMap) => {
  const d = 4;
  const scales = {
    xMean: Float64Array.of(0),
    xStd: Float64Array.of(1),
    thetaMean: Float64Array.of(0.3, -1, 2, 5),
    thetaStd: Float64Array.of(1.7, 0.4, 2.5, 3),
    thetaLower: Float64Array.of(-1, 0, Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY),
    thetaUpper: Float64Array.of(2, Number.POSITIVE_INFINITY, 3, Number.POSITIVE_INFINITY),
    boundedMap,
  };
  const T = thetaMap(scales);
  // Rows inside the support, away from the clamping band.
  const rows = fc
    .tuple(
      fc.double({ min: -0.999, max: 1.999, noNaN: true }),
      fc.double({ min: 1e-3, max: 50, noNaN: true }),
      fc.double({ min: -40, max: 2.999, noNaN: true }),
      fc.double({ min: -1e3, max: 1e3, noNaN: true }),
    )
    .map((r) => Float64Array.from(r));

  it("is the support map composed with the standardisation of its image", () => {
    fc.assert(
      fc.property(rows, (theta) => {
        const u = supportMap(scales).forwardAndLogDet(theta, d).value;
        const { value } = T.forwardAndLogDet(theta, d);
        for (let j = 0; j < d; j++) {
          expect(value[j]).toBe((u[j]! - scales.thetaMean[j]!) / scales.thetaStd[j]!);
        }
      }),
    );
  });

  it("round-trips, and its log-det is the log-determinant of its Jacobian", () => {
    const forward = (x: Float64Array) => T.forwardAndLogDet(x, d).value;
    fc.assert(
      fc.property(rows, (theta) => {
        const { value, logDet } = T.forwardAndLogDet(theta, d);
        const back = T.inverse(value, d);
        for (let j = 0; j < d; j++) {
          expect(Math.abs(back[j]! - theta[j]!)).toBeLessThan(
            1e-8 * Math.max(1, Math.abs(theta[j]!)),
          );
        }
        expect(logDet[0]).toBeCloseTo(numericLogDet(forward, theta, d), 4);
      }),
      { numRuns: 200 },
    );
  });
});
