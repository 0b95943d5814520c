/**
 * Error messages: every bad input throws an NbiError whose message names the function, the
 * argument, what was expected and what was given (the `fn: argument expected ..., got ...`
 * form), so a user can fix the call without reading the source.
 */
import { describe, expect, it } from "vitest";
import {
  type Array,
  grad,
  jvp,
  makeJaxpr,
  NbiError,
  np,
  random,
  scan,
  tree,
  valueAndGrad,
  vjp,
  vmap,
} from "../src/index.js";
import { testBackends, useTestBackend } from "./helpers/backends.js";

function errorOf(f: () => unknown): Error {
  try {
    f();
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected the call to throw, but it returned normally");
}

/**
 * Runs `f`, expects an NbiError whose message starts with `fn:` and says "expected" and "got",
 * and contains every fragment (strings literally, regexps by match). Returns the message.
 */
function expectNbiError(f: () => unknown, fn: string, ...fragments: (string | RegExp)[]): string {
  const e = errorOf(f);
  // Show the actual error when it is of the wrong type.
  expect(e instanceof NbiError ? "NbiError" : `${e.name}: ${e.message}`).toBe("NbiError");
  expect(e.name).toBe("NbiError");
  expect(e.message.startsWith(`${fn}:`), e.message).toBe(true);
  expect(e.message).toContain("expected");
  expect(e.message).toMatch(/\bgot\b/);
  for (const frag of fragments) {
    if (typeof frag === "string") expect(e.message).toContain(frag);
    else expect(e.message).toMatch(frag);
  }
  return e.message;
}

// Argument validation throws before any kernel runs, but the arrays live on the backend under test,
// so running both backends checks that every message is the same NbiError whichever backend holds
// the operands (and that a tracer's host read says "traced" before WebGPU's "use await x.data()").
describe.each(testBackends())("error messages (%s)", (backend) => {
  useTestBackend(backend);

  describe("shapes in array operations", () => {
    it("add with shapes that do not broadcast names both shapes", () => {
      const x = np.zeros([2, 3]);
      const y = np.zeros([4]);
      expectNbiError(() => np.add(x, y), "add", "[2, 3]", "[4]", "broadcast");
      expectNbiError(() => x.add(y), "add", "[2, 3]", "[4]");
      expectNbiError(() => np.mul(np.zeros([3, 1]), np.zeros([2, 4])), "mul", "[3, 1]", "[2, 4]");
      expectNbiError(
        () => np.where(np.zeros([2], { dtype: "bool" }), x, 0),
        "where",
        "[2]",
        "[2, 3]",
      );
    });

    it("matmul with mismatched inner dimensions names both shapes", () => {
      const msg = expectNbiError(
        () => np.matmul(np.zeros([2, 3]), np.zeros([4, 5])),
        "matmul",
        "[2, 3]",
        "[4, 5]",
      );
      expect(msg).toMatch(/inner/);
      expectNbiError(() => np.zeros([2, 3]).matmul(np.zeros([2])), "matmul", "[2, 3]");
    });

    it("matmul reports the same error inside a transform as outside", () => {
      const inside = errorOf(() =>
        makeJaxpr((a: Array, b: Array) => np.matmul(a, b))(np.zeros([2, 3]), np.zeros([4, 5])),
      );
      const outside = errorOf(() => np.matmul(np.zeros([2, 3]), np.zeros([4, 5])));
      expect(inside).toBeInstanceOf(NbiError);
      expect(outside.message).toBe(inside.message);
    });

    it("matmul with batch dimensions that do not broadcast", () => {
      expectNbiError(
        () => np.matmul(np.zeros([2, 2, 3]), np.zeros([3, 3, 4])),
        "matmul",
        "[2]",
        "[3]",
      );
    });

    it("sum over an out-of-range axis names the axis, the valid range and the rank", () => {
      const x = np.zeros([2, 3]);
      expectNbiError(() => np.sum(x, { axis: 2 }), "sum", "axis", "[-2, 1]", "rank 2", "got 2");
      expectNbiError(() => np.sum(x, { axis: -3 }), "sum", "axis", "got -3");
      expectNbiError(() => x.sum({ axis: [0, 5] }), "sum", "axis", "got 5");
      expectNbiError(() => np.sum(x, { axis: 0.5 }), "sum", "axis", "0.5");
      expectNbiError(() => np.sum(x, { axis: [1, 1] }), "sum", "axis", "distinct");
      expectNbiError(() => np.mean(x, { axis: 5 }), "mean", "axis", "got 5");
      expectNbiError(() => np.max(x, { axis: 2 }), "max", "axis");
      expectNbiError(() => np.argmax(x, { axis: 2 }), "argmax", "axis");
    });

    it("reshape to a different number of elements names both shapes", () => {
      expectNbiError(
        () => np.reshape(np.zeros([2, 3]), [4, 2]),
        "reshape",
        "shape",
        "[2, 3]",
        "[4, 2]",
      );
      expectNbiError(() => np.zeros([6]).reshape([7]), "reshape", "[6]", "[7]");
    });

    it("reshape with an unresolvable -1 or bad entries", () => {
      const x = np.zeros([2, 3]);
      expect(() => np.reshape(x, [-1, 4])).toThrow(NbiError);
      expect(() => np.reshape(x, [-1, 4])).toThrow(/reshape.*\[-1, 4\].*\[2, 3\]/);
      expectNbiError(() => np.reshape(x, [-1, -1]), "reshape", "shape", "[-1, -1]");
      expectNbiError(() => np.reshape(x, [2.5, 2]), "reshape", "shape");
    });

    it("reshape reports the same error inside a transform as outside", () => {
      const inside = errorOf(() =>
        makeJaxpr((a: Array) => np.reshape(a, [4, 2]))(np.zeros([2, 3])),
      );
      expect(inside).toBeInstanceOf(NbiError);
      const outside = errorOf(() => np.reshape(np.zeros([2, 3]), [4, 2]));
      expect(outside.message).toBe(inside.message);
      const underGrad = errorOf(() =>
        grad((a: Array) => np.sum(np.reshape(a, [4, 2])))(np.zeros([2, 3])),
      );
      expect(underGrad.message).toBe(inside.message);
    });

    it("broadcastTo an incompatible shape", () => {
      expectNbiError(() => np.broadcastTo(np.zeros([2]), [3]), "broadcastTo", "[2]", "[3]");
    });

    it("concatenate with mismatched shapes names the array, the expected and the given shape", () => {
      const msg = expectNbiError(
        () => np.concatenate([np.zeros([2, 3]), np.zeros([2, 4])], 0),
        "concatenate",
        "[2, 3]",
        "[2, 4]",
      );
      expect(msg).toMatch(/array 1/);
      expectNbiError(
        () => np.concatenate([np.zeros([2, 3]), np.zeros([3])]),
        "concatenate",
        "[2, 3]",
        "[3]",
      );
      expectNbiError(() => np.concatenate([np.zeros([2, 3])], 2), "concatenate", "axis", "got 2");
      expectNbiError(() => np.concatenate([]), "concatenate", "at least one array");
    });

    it("stack with mismatched shapes names stack (the function called) and both shapes", () => {
      expectNbiError(() => np.stack([np.zeros([2]), np.zeros([3])]), "stack", "2", "3");
    });

    it("concatenate promotes mixed dtypes (NumPy rules) instead of failing", async () => {
      const out = np.concatenate([
        np.array([1.5, 2.5]),
        np.array([3, 4], { dtype: "int32" }),
        np.array([true]),
      ]);
      expect(out.dtype).toBe("float32");
      expect(globalThis.Array.from(await out.data())).toEqual([1.5, 2.5, 3, 4, 1]);
    });

    it("conv1d with mismatched channels names both shapes", () => {
      const msg = expectNbiError(
        () => np.conv1d(np.zeros([1, 3, 10]), np.zeros([2, 4, 3])),
        "conv1d",
        "[1, 3, 10]",
        "[2, 4, 3]",
      );
      expect(msg).toMatch(/channel/);
    });

    it("conv1d with operands of the wrong rank", () => {
      expectNbiError(() => np.conv1d(np.zeros([3, 10]), np.zeros([2, 3, 3])), "conv1d", "[3, 10]");
      expectNbiError(() => np.conv1d(np.zeros([1, 3, 10]), np.zeros([2, 3])), "conv1d", "[2, 3]");
    });

    it("conv1d with a bad stride, dilation or padding", () => {
      const x = np.zeros([1, 2, 8]);
      const w = np.zeros([1, 2, 3]);
      expectNbiError(() => np.conv1d(x, w, { stride: 0 }), "conv1d", "stride", "got 0");
      expectNbiError(() => np.conv1d(x, w, { dilation: 1.5 }), "conv1d", "dilation", "1.5");
      expectNbiError(() => np.conv1d(x, w, { padding: -1 }), "conv1d", "padding", "-1");
    });

    it("take with float indices names the indices' dtype", () => {
      expectNbiError(
        () => np.take(np.zeros([5]), np.array([1.5, 2])),
        "take",
        "indices",
        "integer",
        "float32",
      );
      expectNbiError(() => np.take(np.zeros([5]), [1], 2), "take", "axis", "got 2");
    });

    it("index out of range and squeeze of a non-unit axis", () => {
      expectNbiError(() => np.index(np.zeros([3]), 3), "index", "i", "[-3, 2]", "got 3");
      expectNbiError(() => np.squeeze(np.zeros([2, 1]), 0), "squeeze", "axis", "[2, 1]");
    });

    it("bad dtypes and operand types", () => {
      expectNbiError(
        () => np.astype(np.zeros([2]), "float16" as never),
        "astype",
        "dtype",
        "float32",
        '"float16"',
      );
      expectNbiError(() => np.add(np.zeros([2]), "1" as never), "np", "operand", '"1"');
      expectNbiError(() => np.zeros([2, -1]), "np.full", "shape", "-1");
      expectNbiError(
        () => np.array([1], { dtype: "int8" as never }),
        "np.array",
        "dtype",
        '"int8"',
      );
    });

    it("creation functions reject an unknown dtype", () => {
      expectNbiError(() => np.full([2], 1, { dtype: "int8" as never }), "np.full", "dtype", "int8");
      expect(() => np.zeros([2], { dtype: "int8" as never })).toThrow(NbiError);
      expect(() => np.arange(3, undefined, 1, { dtype: "int8" as never })).toThrow(NbiError);
    });

    it("einsum with a repeated index or a rank mismatch", () => {
      expectNbiError(() => np.einsum("ii->", np.eye(3)), "einsum", "spec", '"ii->"');
      expectNbiError(() => np.einsum("ijk->", np.zeros([2, 3])), "einsum", "spec");
      expectNbiError(
        () => np.einsum("ij,jk->ik", np.zeros([2, 3]), np.zeros([4, 5])),
        "einsum",
        "index j",
      );
    });
  });

  describe("transforms", () => {
    it("grad of a non-scalar output names the output's shape", () => {
      expectNbiError(
        () => grad((x: Array) => x.mul(2))(np.zeros([3])),
        "grad",
        "f",
        "scalar",
        "[3]",
      );
      expectNbiError(
        () => valueAndGrad((x: Array) => x.mul(2))(np.zeros([3])),
        "valueAndGrad",
        "scalar",
        "[3]",
      );
    });

    it("grad of an integer output names the dtype", () => {
      expectNbiError(
        () => grad((x: Array) => np.sum(x).astype("int32"))(np.zeros([3])),
        "grad",
        "float",
        "int32",
      );
      expectNbiError(
        () => grad((x: Array) => np.any(np.greater(x, 0)))(np.zeros([3])),
        "grad",
        "float",
        "bool",
      );
    });

    it("grad with argnums out of range, or hasAux without [value, aux]", () => {
      expectNbiError(
        () => grad((x: Array) => np.sum(x), { argnums: 2 })(np.zeros([3])),
        "grad",
        "argnums",
        "got 2",
      );
      expectNbiError(
        () => grad((x: Array) => np.sum(x), { hasAux: true })(np.zeros([3])),
        "grad",
        "f",
        "[value, aux]",
      );
    });

    it("grad of a non-array argument names the argument", () => {
      expectNbiError(
        () => grad((x: unknown) => np.sum(x as Array))("abc" as never),
        "grad",
        "argument",
      );
    });

    it("vmap with inconsistent mapped axis sizes names both sizes", () => {
      expectNbiError(
        () => vmap((a: Array, b: Array) => a.add(b))(np.zeros([3, 2]), np.zeros([4, 2])),
        "vmap",
        "3",
        "4",
        "size",
      );
      expectNbiError(
        () =>
          vmap((a: Array, b: Array) => a.add(b), { inAxes: [0, 1] })(
            np.zeros([3, 2]),
            np.zeros([2, 5]),
          ),
        "vmap",
        "3",
        "5",
      );
      expectNbiError(
        () =>
          vmap((p: { a: Array; b: Array }) => p.a.add(p.b))({ a: np.zeros([3]), b: np.zeros([5]) }),
        "vmap",
        "3",
        "5",
      );
    });

    it("vmap with inAxes out of range names the axis and the argument's shape", () => {
      expectNbiError(
        () => vmap((a: Array) => a, { inAxes: 2 })(np.zeros([3, 2])),
        "vmap",
        "inAxes",
        "[3, 2]",
        "got 2",
      );
      expectNbiError(
        () => vmap((a: Array) => a, { inAxes: -3 })(np.zeros([3, 2])),
        "vmap",
        "inAxes",
        "got -3",
      );
      expectNbiError(
        () => vmap((a: Array) => a, { inAxes: 0 })(np.zeros([])),
        "vmap",
        "inAxes",
        "[]",
      );
      expectNbiError(
        () => vmap((a: Array, _b: Array) => a, { inAxes: [0] })(np.zeros([3]), np.zeros([3])),
        "vmap",
        "length 1",
      );
    });

    it("tree.map with mismatched structures names the path", () => {
      const msg = expectNbiError(
        () =>
          tree.map(
            (a: number, b: number) => a + b,
            { layers: [{ w: 1 }, { w: 1, b: 2 }] },
            { layers: [{ w: 1 }, { w: 1 }] },
          ),
        "tree.map",
        "layers[1]",
        "missing [b]",
      );
      expect(msg).toMatch(/tree 2/);
      expectNbiError(
        () => tree.map((a: number, b: number) => a + b, { a: [1, 2], b: 3 }, { a: [1], b: 3 }),
        "tree.map",
        " a:",
        "length 2",
        "length 1",
      );
      expectNbiError(
        () => tree.map((a: number, b: number) => a + b, [1, 2], { x: 1, y: 2 }),
        "tree.map",
        "the root",
      );
    });

    it("tree functions name the path of a bad leaf", () => {
      expectNbiError(() => tree.leaves({ a: [1, "s"] }), "tree.leaves", "a[1]", '"s"');
    });

    it("jvp with a tangent of the wrong shape names both shapes", () => {
      expectNbiError(
        () => jvp((x: Array) => x.mul(2), [np.zeros([3])], [np.zeros([4])]),
        "jvp",
        "tangent",
        "[3]",
        "[4]",
      );
      expectNbiError(
        () =>
          jvp((x: Array, y: Array) => x.mul(y), [np.zeros([3]), np.zeros([3])], [
            np.zeros([3]),
          ] as never),
        "jvp",
        "tangents",
        "length 2",
        "length 1",
      );
    });

    it("jvp with a tangent of the wrong dtype names both dtypes", () => {
      expectNbiError(
        () => jvp((x: Array) => x.mul(2), [np.zeros([3])], [np.zeros([3], { dtype: "int32" })]),
        "jvp",
        "tangent",
        "float32",
        "int32",
      );
    });

    it("vjp with a cotangent of the wrong shape names both shapes", () => {
      const [, pullback] = vjp((x: Array) => x.mul(2), np.zeros([3]));
      expectNbiError(() => pullback(np.zeros([4])), "vjp", "cotangent", "[3]", "[4]");
    });

    it("scan whose carry changes shape names the init and the new shape", () => {
      expectNbiError(
        () =>
          scan(
            (c: Array, x: Array) => [np.concatenate([c, np.reshape(x, [1])]), x],
            np.zeros([2]),
            np.zeros([3]),
          ),
        "scan",
        "carry",
        "[2]",
        "[3]",
      );
      expectNbiError(
        () => scan((c: Array, x: Array) => [c.astype("int32"), x], np.zeros([2]), np.zeros([3])),
        "scan",
        "carry",
        "float32",
        "int32",
      );
      expectNbiError(
        () => scan(((c: Array, x: Array) => [[c, c], x]) as never, np.zeros([2]), np.zeros([3])),
        "scan",
        "carry",
      );
    });

    it("scan with xs of different lengths or no length", () => {
      expectNbiError(
        () =>
          scan((c: Array, x: Array[]) => [c, x[0]!], np.zeros([]), [np.zeros([3]), np.zeros([4])]),
        "scan",
        "xs",
      );
      expectNbiError(() => scan((c: Array) => [c, c], np.zeros([]), null), "scan", "length");
    });

    it("reading dataSync() of a tracer inside grad says it is traced", () => {
      // Not the "expected ..., got ..." form: the message explains what to do instead.
      const e = errorOf(() =>
        grad((x: Array) => {
          x.dataSync();
          return np.sum(x);
        })(np.zeros([3])),
      );
      expect(e).toBeInstanceOf(NbiError);
      expect(e.message.startsWith("dataSync:")).toBe(true);
      expect(e.message).toContain("traced");
      expect(e.message).toContain("transform");
      expect(e.message).toContain("[3]");
    });

    it("item() and tolist() of tracers inside grad and vmap are NbiErrors too", () => {
      expect(() =>
        grad((x: Array) => {
          x.item();
          return np.sum(x);
        })(np.zeros([1])),
      ).toThrow(/traced/);
      expect(() =>
        vmap((x: Array) => {
          x.tolist();
          return x;
        })(np.zeros([2, 1])),
      ).toThrow(NbiError);
      expect(() =>
        vmap((x: Array) => {
          x.dataSync();
          return x;
        })(np.zeros([2, 1])),
      ).toThrow(/traced/);
    });

    it("await x.data() of a tracer rejects with an NbiError", async () => {
      let pending: Promise<unknown> | null = null;
      grad((x: Array) => {
        pending = x.data();
        pending.catch(() => {});
        return np.sum(x);
      })(np.zeros([2]));
      await expect(pending).rejects.toThrow(NbiError);
      await expect(pending).rejects.toThrow(/traced/);
    });

    it("using a tracer after its transform finished is an NbiError", () => {
      let leaked: Array | null = null;
      grad((x: Array) => {
        leaked = x;
        return np.sum(x);
      })(np.zeros([3]));
      expect(() => (leaked as unknown as Array).add(1)).toThrow(NbiError);
      expect(() => (leaked as unknown as Array).add(1)).toThrow(/escaped/);
    });
  });

  describe("random", () => {
    it("random.key with a non-integer seed", () => {
      expectNbiError(() => random.key(1.5), "random.key", "seed", "integer", "1.5");
    });

    it("samplers given something that is not a key", () => {
      expectNbiError(() => random.normal(np.zeros([2]), [3]), "random.normal", "key", "float32");
      expectNbiError(() => random.split(np.zeros([3], { dtype: "uint32" })), "random.split", "key");
    });

    it("choice without replacement of more items than exist", () => {
      expectNbiError(
        () => random.choice(random.key(0), 3, { shape: [5], replace: false }),
        "random.choice",
        "at most 3",
        "[5]",
      );
    });
  });
});

// float64 exists on the CPU backend only (WGSL has no float64; the WebGPU backend refuses it).
describe("error messages, float64 (cpu)", () => {
  useTestBackend("cpu");

  it("concatenate promotes int32 with float64 to float64", () => {
    expect(
      np.concatenate([np.array([1], { dtype: "int32" }), np.array([2], { dtype: "float64" })])
        .dtype,
    ).toBe("float64");
  });

  it("take with float64 indices names the indices' dtype", () => {
    expectNbiError(
      () => np.zeros([5]).take(np.array([1], { dtype: "float64" })),
      "take",
      "float64",
    );
  });
});
