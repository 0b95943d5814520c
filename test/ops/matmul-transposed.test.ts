/**
 * `matmul` with transposed operands as primitive parameters (`transposeA`, `transposeB`): values
 * against the float64 reference on random batched and broadcasting shapes, and its rules (jvp,
 * vjp, vmap) against the same product written with explicit transposes, on every backend.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { grad, jvp, type Array as NbiArray, np, vmap } from "../../src/index.js";
import { type MatmulParams, matmul as matmulPrim } from "../../src/ops/primitives/matmul.js";
import { testBackends, useTestBackend } from "../helpers/backends.js";
import {
  broadcastShapesArb,
  dimArb,
  expectMatches,
  floatDTypes,
  floats,
  map,
  matmul,
  type Ref,
  refArb,
  toArray,
  transpose,
} from "../helpers/reference.js";
import { expectTreeClose, randn } from "../helpers/values.js";

const swapLast = (x: Ref): Ref => {
  const r = x.shape.length;
  return transpose(
    x,
    x.shape.map((_, i) => (i < r - 2 ? i : i === r - 2 ? r - 1 : r - 2)),
  );
};
const abs = (x: Ref) => map(x, Math.abs);

describe.each(testBackends())("matmul with transposed operands on %s", (backend) => {
  useTestBackend(backend);

  for (const dtype of floatDTypes(backend)) {
    it(`${dtype}: a stored [.., K, M] and/or b stored [.., N, K] match the reference`, async () => {
      const arb = fc
        .record({
          m: dimArb(0, 6),
          k: dimArb(0, 6),
          n: dimArb(0, 9),
          batch: broadcastShapesArb(2, { maxRank: 2, maxDim: 3 }),
          transposeA: fc.boolean(),
          transposeB: fc.boolean(),
        })
        .chain(({ m, k, n, batch, transposeA, transposeB }) =>
          fc.tuple(
            refArb([...batch[0]!, ...(transposeA ? [k, m] : [m, k])], dtype, floats(-2, 2)),
            refArb([...batch[1]!, ...(transposeB ? [n, k] : [k, n])], dtype, floats(-2, 2)),
            fc.constant({ transposeA, transposeB }),
          ),
        );
      await fc.assert(
        fc.asyncProperty(arb, async ([a, b, flags]) => {
          const used = (x: Ref, t: boolean) => (t ? swapLast(x) : x);
          const want = matmul(used(a, flags.transposeA), used(b, flags.transposeB));
          const scale = matmul(abs(used(a, flags.transposeA)), abs(used(b, flags.transposeB)));
          const got = matmulPrim(toArray(a, dtype), toArray(b, dtype), flags);
          await expectMatches(got, want, dtype, { scale });
        }),
        { numRuns: 120 },
      );
    });
  }

  it("GEMM-sized float32 products with either operand transposed (SIMD / tiled kernels)", async () => {
    for (const [m, k, n] of [
      [33, 70, 45],
      [128, 64, 20],
      [130, 37, 200], // WebGPU's register-blocked kernel, with ragged tiles
    ] as const) {
      const a = randn([k, m], 1);
      const b = randn([n, k], 2);
      // The reference on the CPU, so a WebGPU kernel is not checked against itself.
      const [ac, bc] = [await np.toBackend(a, "cpu"), await np.toBackend(b, "cpu")];
      const want = np.matmul(np.transpose(ac), np.transpose(bc));
      for (const flags of [
        { transposeA: true },
        { transposeB: true },
        { transposeA: true, transposeB: true },
      ] as MatmulParams[]) {
        const x = flags.transposeA ? a : np.transpose(a);
        const y = flags.transposeB ? b : np.transpose(b);
        await expectTreeClose(matmulPrim(x, y, flags), want, { rtol: 1e-5, atol: 1e-5 });
      }
    }
  });

  it("refuses mismatched inner dimensions, naming the transposed operand", () => {
    const a = np.zeros([2, 3]);
    expect(() => matmulPrim(a, np.zeros([2, 3]), {})).toThrow(/inner dimensions/);
    expect(() => matmulPrim(a, np.zeros([2, 3]), { transposeA: true })).not.toThrow();
    expect(() => matmulPrim(a, np.zeros([4, 2]), { transposeB: true })).toThrow(/ᵀ/);
  });
});

describe.each(testBackends())("rules of the transposed matmul (%s)", (backend) => {
  useTestBackend(backend);
  // float64 to 1e-12 on the CPU; WGSL has no float64, so float32 to float32 rounding on WebGPU.
  const dtype = backend === "cpu" ? "float64" : "float32";
  const tol = backend === "cpu" ? { rtol: 1e-12, atol: 1e-12 } : { rtol: 2e-4, atol: 2e-4 };
  const cases: [MatmulParams, number[], number[]][] = [
    [{}, [2, 3, 4], [4, 5]],
    [{ transposeA: true }, [2, 4, 3], [4, 5]],
    [{ transposeB: true }, [3, 4], [2, 5, 4]],
    [{ transposeA: true, transposeB: true }, [1, 4, 3], [2, 5, 4]],
    // a batched, b shared: the reverse rule folds the batch into one product.
    [{ transposeB: true }, [6, 3, 4], [5, 4]],
    [{}, [2, 6, 3, 4], [4, 5]],
  ];
  const explicit = (x: NbiArray, t: boolean | undefined) => (t ? np.swapaxes(x, -1, -2) : x);

  for (const [flags, sa, sb] of cases) {
    const label = `${JSON.stringify(flags)} ${JSON.stringify(sa)} @ ${JSON.stringify(sb)}`;
    it(`grad, jvp and vmap equal the explicit-transpose product: ${label}`, async () => {
      const a = randn(sa, 3, dtype);
      const b = randn(sb, 4, dtype);
      const w = randn(
        np.matmul(explicit(a, flags.transposeA), explicit(b, flags.transposeB)).shape,
        5,
        dtype,
      );
      const fFlags = (x: NbiArray, y: NbiArray) => np.sum(np.mul(w, matmulPrim(x, y, flags)));
      const fRef = (x: NbiArray, y: NbiArray) =>
        np.sum(np.mul(w, np.matmul(explicit(x, flags.transposeA), explicit(y, flags.transposeB))));
      await expectTreeClose(
        grad(fFlags, { argnums: [0, 1] })(a, b),
        grad(fRef, { argnums: [0, 1] })(a, b),
        tol,
      );
      const da = randn(sa, 6, dtype);
      const db = randn(sb, 7, dtype);
      await expectTreeClose(jvp(fFlags, [a, b], [da, db]), jvp(fRef, [a, b], [da, db]), tol);
      // Second order: the reverse rule is itself differentiable.
      const gg = (f: typeof fFlags) => (x: NbiArray, y: NbiArray) =>
        np.sum(np.square(grad(f, { argnums: 0 })(x, y)));
      await expectTreeClose(grad(gg(fFlags))(a, b), grad(gg(fRef))(a, b), tol);
      // vmap over a new leading axis of a.
      const as = np.stack([a, np.mul(a, 2), np.sub(a, 1)]);
      const batched = vmap((x: NbiArray) => matmulPrim(x, b, flags))(as);
      const looped = np.stack([0, 1, 2].map((i) => matmulPrim(np.index(as, i), b, flags)));
      await expectTreeClose(batched, looped, tol);
    });
  }
});
