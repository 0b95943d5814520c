import fc from "fast-check";
import { describe, expect, it } from "vitest";
import * as bij from "../../src/bijectors/index.js";
import { bijectorLaws } from "../../src/bijectors/index.js";
import { type Array, type BackendName, jacfwd, jit, np, vmap } from "../../src/index.js";
import { testBackends, useTestBackend } from "../helpers/backends.js";
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

/** Throws unless |got − want| ≤ atol + rtol·|want| everywhere (NaN never passes). */
async function expectClose(
  what: string,
  got: Array,
  want: Array,
  rtol: number,
  atol: number,
): Promise<void> {
  const g = await got.data();
  const w = await want.data();
  expect(g.length, `${what}: length`).toBe(w.length);
  const bad: string[] = [];
  for (let i = 0; i < w.length; i++) {
    const a = Number(g[i]);
    const e = Number(w[i]);
    if (!(Math.abs(a - e) <= atol + rtol * Math.abs(e)) && bad.length < 3) {
      bad.push(`[${i}] got ${a}, expected ${e}`);
    }
  }
  expect(bad, what).toEqual([]);
}

/**
 * The float32 laws of `bijectorLaws.all` (roundTrip, logDetAntisymmetry, triangularJacobian when
 * autoregressive, vmapAgrees, jitAgrees; the Jacobian log-det law needs float64) with the same
 * tolerances, reading values with `await x.data()` so they run on any backend — `bijectorLaws`
 * itself reads synchronously (CPU only). Also: forward and its log-det on this backend equal the
 * CPU's float32 results within the law tolerance.
 */
async function float32Laws(
  b: bij.Bijector,
  x: Array,
  context: Array | undefined,
  tol: { rtol: number; atol: number },
): Promise<void> {
  const { rtol, atol } = tol;
  const [y, ld] = b.forwardAndLogDet(x, context);
  const [x2, ild] = b.inverseAndLogDet(y, context);
  // roundTrip
  await expectClose("inverse(forward(x))", x2, x, rtol * 10, atol * 10);
  await expectClose("forward(x)", b.forward(x, context), y, 0, 0);
  await expectClose("forwardLogDet(x)", b.forwardLogDet(x, context), ld, 0, 0);
  await expectClose("inverse(y)", b.inverse(y, context), x2, 0, 0);
  await expectClose("inverseLogDet(y)", b.inverseLogDet(y, context), ild, 0, 0);
  // logDetAntisymmetry
  const minus = np.neg(b.inverseLogDet(y, context));
  await expectClose("−inverseLogDet(forward(x))", minus, ld, rtol * 10, atol * 10);
  // triangularJacobian: ∂y_i/∂x_j = 0 for j > i, row by row.
  if (b.autoregressive) {
    const d = x.shape[1]!;
    for (let r = 0; r < x.shape[0]!; r++) {
      const c = context === undefined ? undefined : np.index(context, r, 0);
      const j = await (jacfwd((v: Array) => b.forward(v, c))(np.index(x, r, 0)) as Array).data();
      for (let i = 0; i < d; i++) {
        for (let k = i + 1; k < d; k++) expect(Math.abs(j[i * d + k]!)).toBeLessThanOrEqual(1e-12);
      }
    }
  }
  // vmapAgrees and jitAgrees, both directions.
  for (const [label, transform] of [
    ["vmap", vmap],
    ["jit", jit],
  ] as const) {
    for (const dir of ["forwardAndLogDet", "inverseAndLogDet"] as const) {
      const input = dir === "forwardAndLogDet" ? x : y;
      const [v, l] = b[dir](input, context);
      const [tv, tl] =
        context === undefined
          ? (transform as typeof vmap)((xi: Array) => b[dir](xi))(input)
          : (transform as typeof vmap)((xi: Array, ci: Array) => b[dir](xi, ci))(input, context);
      await expectClose(`${label}(${dir}) value`, tv as Array, v, rtol, atol);
      await expectClose(`${label}(${dir}) log-det`, tl as Array, l, rtol, atol);
    }
  }
  // The backend agrees with the CPU (x and context moved there; the parameters already are).
  const xc = await np.toBackend(x, "cpu");
  const cc = context === undefined ? undefined : await np.toBackend(context, "cpu");
  const [yc, ldc] = b.forwardAndLogDet(xc, cc);
  await expectClose("forward vs the CPU", y, yc, rtol, atol);
  await expectClose("forwardLogDet vs the CPU", ld, ldc, rtol, atol);
}

/**
 * float32 on every backend. The bijectors are built on the CPU (MADE's orthogonal initialisation
 * draws float64 and reads it on the host), so on WebGPU their parameters are CPU arrays that each
 * operation uploads (an operation mixing backends runs on WebGPU); the inputs live on the backend.
 * Tolerances: rtol = atol = 2e-3 (×10 for the round trip and antisymmetry), as before; lavapipe's
 * float32 transcendental functions stay well inside them.
 */
describe.each(testBackends())("bijector laws, float32 (%s)", (backend: BackendName) => {
  useTestBackend(backend);
  for (const e of registry) {
    it(`${e.name}: round trip, antisymmetry, vmap, jit in float32`, async () => {
      await np.useBackend("cpu");
      const b = e.make("float32");
      await np.useBackend(backend);
      await fc.assert(
        fc.asyncProperty(inputs(e, "float32"), async ({ x, context }) => {
          await float32Laws(b, x, context, { rtol: 2e-3, atol: 2e-3 });
          // And the library's own checker, which reads synchronously (so on the CPU only).
          if (backend === "cpu") bijectorLaws.all(b, x, { context, rtol: 2e-3, atol: 2e-3 });
        }),
        // The same 5 inputs on WebGPU: the spline entries take about 2.5 s there, but mostly
        // compiling their kernels once (3 inputs saved only 0.3 s), so fewer runs would buy little.
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
