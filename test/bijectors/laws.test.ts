import fc from "fast-check";
import { describe, expect, it } from "vitest";
import * as bij from "../../src/bijectors/index.js";
import { bijectorLaws } from "../../src/bijectors/index.js";
import { np } from "../../src/index.js";
import { hostReadingSuiteBackends, useTestBackend } from "../helpers/backends.js";
import { type RegistryEntry, registry } from "./registry.js";

const N = 3; // rows per batch

/** fast-check inputs: an [N, dim] batch in the entry's domain and an [N, contextDim] context. */
function inputs(e: RegistryEntry, dtype: "float32" | "float64") {
  const [lo, hi] = e.domain;
  const cd = e.contextDim ?? 0;
  return fc
    .tuple(
      fc.array(fc.double({ min: lo, max: hi, noNaN: true }), {
        minLength: N * e.dim,
        maxLength: N * e.dim,
      }),
      fc.array(fc.double({ min: -2, max: 2, noNaN: true }), {
        minLength: N * cd,
        maxLength: N * cd,
      }),
    )
    .map(([xs, cs]) => ({
      x: np.reshape(np.array(xs, { dtype }), [N, e.dim]),
      context: cd > 0 ? np.reshape(np.array(cs, { dtype }), [N, cd]) : undefined,
    }));
}

describe("bijector laws, float64 (cpu)", () => {
  useTestBackend("cpu");
  for (const e of registry) {
    it(`${e.name}: round trip, log-det antisymmetry, log-det = log|det jacfwd|, triangular, vmap, jit`, () => {
      const b = e.make("float64");
      fc.assert(
        fc.property(inputs(e, "float64"), ({ x, context }) => {
          bijectorLaws.all(b, x, { context });
        }),
        { numRuns: 12, seed: 42 },
      );
    });
  }

  for (const e of registry.filter((r) => r.selfComposable)) {
    it(`${e.name}: chain log-dets add`, () => {
      const b = e.make("float64");
      fc.assert(
        fc.property(inputs(e, "float64"), ({ x }) => {
          bijectorLaws.chainAddsLogDets(b, b, x);
          bijectorLaws.chainAddsLogDets(bij.shift(0.3), b, x);
        }),
        { numRuns: 20, seed: 7 },
      );
    });
  }

  it("autoregressive entries are flagged, so the triangular law runs on them", () => {
    const flagged = registry.filter((e) => e.make("float64").autoregressive).map((e) => e.name);
    expect(flagged).toEqual(
      expect.arrayContaining([
        "maskedAutoregressive(MADE, affine)",
        "maskedAutoregressive(MADE with context, affine)",
        "maskedAutoregressive(MADE, spline)",
        "tanh",
      ]),
    );
  });
});

describe.each(hostReadingSuiteBackends())("bijector laws, float32 (%s)", (backend) => {
  useTestBackend(backend);
  for (const e of registry) {
    it(`${e.name}: round trip, antisymmetry, vmap, jit in float32`, () => {
      const b = e.make("float32");
      fc.assert(
        fc.property(inputs(e, "float32"), ({ x, context }) => {
          bijectorLaws.all(b, x, { context, rtol: 2e-3, atol: 2e-3 });
        }),
        { numRuns: 5, seed: 3 },
      );
    });
  }
});

describe("the laws catch broken bijectors", () => {
  useTestBackend("cpu");
  const x = np.array(
    [
      [0.1, -0.4],
      [1.2, 0.7],
    ],
    { dtype: "float64" },
  );
  it("a wrong log-det fails logDetMatchesJacobian", () => {
    const bad = bij.bijector({
      name: "bad scale",
      forwardAndLogDet: (v) => [np.mul(v, 2), np.zeros(v.shape.slice(0, -1), { dtype: v.dtype })],
      inverseAndLogDet: (v) => [np.div(v, 2), np.zeros(v.shape.slice(0, -1), { dtype: v.dtype })],
    });
    expect(() => bijectorLaws.logDetMatchesJacobian(bad, x)).toThrow(
      /logDetMatchesJacobian: bad scale/,
    );
  });
  it("a wrong inverse fails roundTrip", () => {
    const bad = bij.bijector({
      name: "bad inverse",
      forwardAndLogDet: (v) => [np.add(v, 1), np.zeros(v.shape.slice(0, -1), { dtype: v.dtype })],
      inverseAndLogDet: (v) => [
        np.sub(v, 0.999),
        np.zeros(v.shape.slice(0, -1), { dtype: v.dtype }),
      ],
    });
    expect(() => bijectorLaws.roundTrip(bad, x)).toThrow(/roundTrip: bad inverse/);
  });
  it("a non-triangular map flagged autoregressive fails triangularJacobian", () => {
    const bad = { ...bij.reverse(), autoregressive: true, name: "reverse (mislabelled)" };
    expect(() => bijectorLaws.triangularJacobian(bad, x)).toThrow(/triangularJacobian/);
  });
});
