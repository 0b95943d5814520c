import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { NbiError } from "../../src/errors.js";
import * as tree from "../../src/trace/tree.js";

/** A duck-typed array: a leaf under the default predicate. */
function fakeArray(value: number): { shape: number[]; dtype: string; value: number } {
  return { shape: [1], dtype: "float32", value };
}

const { node } = fc.letrec<{
  node: unknown;
  leaf: unknown;
  array: unknown[];
  object: Record<string, unknown>;
}>((tie) => ({
  node: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    tie("leaf"),
    tie("array"),
    tie("object"),
  ),
  leaf: fc.oneof(
    fc.double(),
    fc.integer(),
    fc.constant(null),
    fc.constant(undefined),
    fc.integer().map(fakeArray),
  ),
  array: fc.array(tie("node"), { maxLength: 4 }),
  object: fc.dictionary(fc.string({ maxLength: 4 }), tie("node"), {
    maxKeys: 4,
    noNullPrototype: true,
  }),
}));

function expectNbiError(f: () => unknown, ...parts: string[]): NbiError {
  let caught: unknown;
  try {
    f();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(NbiError);
  const message = (caught as NbiError).message;
  for (const p of parts) expect(message).toContain(p);
  return caught as NbiError;
}

describe("flatten / unflatten", () => {
  it("round-trips arbitrary trees, keeping leaf identity", () => {
    fc.assert(
      fc.property(node, (t) => {
        const [ls, def] = tree.flatten(t);
        expect(tree.numLeaves(def)).toBe(ls.length);
        const back = tree.unflatten(def, ls);
        expect(back).toStrictEqual(t);
        const [ls2, def2] = tree.flatten(back);
        expect(tree.treeDefEqual(def, def2)).toBe(true);
        expect(ls2.length).toBe(ls.length);
        for (let i = 0; i < ls.length; i++) expect(Object.is(ls2[i], ls[i])).toBe(true);
        expect(tree.paths(t)).toHaveLength(ls.length);
        expect(tree.leaves(t)).toEqual(ls);
        expect(tree.treeDefEqual(tree.structure(t), def)).toBe(true);
      }),
    );
  });

  it("orders leaves depth first with object keys sorted", () => {
    const t = { b: [1, { y: 2, x: 3 }], a: 4, c: null };
    const [ls, def] = tree.flatten<number>(t);
    expect(ls).toEqual([4, 1, 3, 2]);
    expect(tree.paths(t)).toEqual(["a", "b[0]", "b[1].x", "b[1].y"]);
    expect(tree.treeDefToString(def)).toBe("TreeDef({a: *, b: [*, {x: *, y: *}], c: null})");
  });

  it("keeps null and undefined subtrees in the structure", () => {
    const t = { a: null, b: [undefined, 1] };
    const [ls, def] = tree.flatten(t);
    expect(ls).toEqual([1]);
    const back = tree.unflatten<typeof t>(def, [5]);
    expect(back).toStrictEqual({ a: null, b: [undefined, 5] });
    expect("a" in back).toBe(true);
  });

  it("builds fresh containers and never mutates the input", () => {
    const inner = [1, 2];
    const t = { w: inner, b: 3 };
    const [ls, def] = tree.flatten<number>(t);
    const back = tree.unflatten<typeof t>(
      def,
      ls.map((x) => x * 10),
    );
    expect(back).toEqual({ w: [10, 20], b: 30 });
    expect(back.w).not.toBe(inner);
    expect(t).toEqual({ w: [1, 2], b: 3 });
  });

  it("treats a root leaf and an empty tree", () => {
    expect(tree.flatten(7)[0]).toEqual([7]);
    expect(tree.paths(7)).toEqual([""]);
    expect(tree.flatten(null)[0]).toEqual([]);
    expect(tree.unflatten(tree.structure(null), [])).toBeNull();
    expect(tree.unflatten(tree.structure({}), [])).toEqual({});
  });

  it("handles keys that are not identifiers, including __proto__", () => {
    const t = JSON.parse('{"__proto__": 1, "a b": [2]}') as Record<string, unknown>;
    const [ls, def] = tree.flatten(t);
    expect(ls).toEqual([1, 2]);
    const back = tree.unflatten<Record<string, unknown>>(def, ls);
    expect(Object.getPrototypeOf(back)).toBe(Object.prototype);
    expect(Object.keys(back).sort()).toEqual(["__proto__", "a b"]);
    expect(tree.paths(t)).toEqual(["__proto__", '["a b"][0]']);
  });

  it("accepts null-prototype objects as containers", () => {
    const t = Object.assign(Object.create(null) as Record<string, unknown>, { a: 1 });
    expect(tree.leaves(t)).toEqual([1]);
  });

  it("rejects a leaf count that does not match", () => {
    const def = tree.structure({ a: 1, b: [2, 3] });
    expectNbiError(
      () => tree.unflatten(def, [1, 2]),
      "tree.unflatten",
      "expected 3 leaves",
      "got 2",
    );
  });
});

describe("key order independence", () => {
  it("gives equal structures and leaf order whatever the insertion order", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.string({ maxLength: 3 }), { maxLength: 6 }),
        fc.integer(),
        (keys, seed) => {
          const a: Record<string, number> = {};
          keys.forEach((k, i) => {
            a[k] = i;
          });
          const shuffled = [...keys].sort((x, y) => ((x.length * 31 + seed) % 7) - y.length);
          const b: Record<string, number> = {};
          for (const k of shuffled.reverse()) b[k] = a[k]!;
          expect(tree.treeDefEqual(tree.structure(a), tree.structure(b))).toBe(true);
          expect(tree.leaves(a)).toEqual(tree.leaves(b));
        },
      ),
    );
  });

  it("distinguishes different structures", () => {
    const s = tree.structure;
    expect(tree.treeDefEqual(s({ a: 1 }), s({ b: 1 }))).toBe(false);
    expect(tree.treeDefEqual(s([1, 2]), s([1, [2]]))).toBe(false);
    expect(tree.treeDefEqual(s([1, 2]), s({ 0: 1, 1: 2 }))).toBe(false);
    expect(tree.treeDefEqual(s([1, null]), s([1, 2]))).toBe(false);
    expect(tree.treeDefEqual(s([1, null]), s([1, undefined]))).toBe(true);
    expect(tree.treeDefEqual(s(1), s(fakeArray(2)))).toBe(true);
  });
});

describe("map", () => {
  it("maps one tree", () => {
    const out = tree.map((x: number) => x + 1, { a: [1, 2], b: null, c: 3 });
    expect(out).toStrictEqual({ a: [2, 3], b: null, c: 4 });
  });

  it("maps two and three trees leafwise", () => {
    const p = { w: [1, 2], b: 3 };
    const g = { b: 30, w: [10, 20] };
    const m = { w: [100, 200], b: 300 };
    expect(tree.map((x: number, y: number) => x - y, p, g)).toEqual({ w: [-9, -18], b: -27 });
    expect(tree.map((x: number, y: number, z: number) => x + y + z, p, g, m)).toEqual({
      w: [111, 222],
      b: 333,
    });
  });

  it("is the identity on structure for arbitrary trees", () => {
    fc.assert(
      fc.property(node, (t) => {
        const out = tree.map((x: unknown) => x, t, t);
        expect(out).toStrictEqual(t);
      }),
    );
  });

  it("names the tree and path where structures differ", () => {
    const a = { params: { b: { w: 1, b: 2 } } };
    const b = { params: { b: [1, 2] } };
    const err = expectNbiError(
      () => tree.map((x: number, y: number) => x + y, a, b),
      "tree.map",
      "tree 2 differs from tree 1 at params.b",
      "expected an object with keys [b, w]",
      "got an array of length 2",
    );
    expect(err.message).toBe(
      "tree.map: tree 2 differs from tree 1 at params.b: expected an object with keys [b, w], got an array of length 2",
    );
    expectNbiError(
      () => tree.map((x: number) => x, [1, [2, 3]], [1, [2, 3]], [1, [2]]),
      "tree 3 differs from tree 1 at [1]",
      "expected an array of length 2, got an array of length 1",
    );
    expectNbiError(
      () => tree.map((x: number) => x, { a: 1, b: 2 }, { a: 1, c: 2 }),
      "at the root",
      "missing [b]",
      "extra [c]",
    );
  });

  it("names the path of an invalid node", () => {
    expectNbiError(
      () => tree.map((x: number) => x, { layers: [{ w: 1 }, { w: "x" }] }),
      "tree.map: tree at layers[1].w expected",
      'got "x"',
    );
    expectNbiError(() => tree.map((x: number) => x, [1], [new Map()]), "tree 2 at [0]", "a Map");
  });
});

describe("invalid values", () => {
  it.each([
    ["a string", "s"],
    ["a boolean", true],
    ["a function", () => 1],
    ["a Map", new Map()],
    ["a typed array", new Float32Array(2)],
    ["a class instance", new (class Foo {})()],
  ])("rejects %s", (_name, value) => {
    expectNbiError(() => tree.flatten({ a: [1, value] }), "tree.flatten", "tree at a[1]", "got");
  });

  it("rejects cycles", () => {
    const t: Record<string, unknown> = { a: 1 };
    t.self = [t];
    expectNbiError(() => tree.leaves(t), "tree.leaves", "self[0]", "cycles");
  });

  it("allows the same subtree twice when it is not a cycle", () => {
    const shared = [1, 2];
    expect(tree.leaves({ a: shared, b: shared })).toEqual([1, 2, 1, 2]);
  });
});

describe("assertSameStructure", () => {
  it("passes on equal structures", () => {
    expect(() => tree.assertSameStructure("f", { a: [1] }, { a: [2] })).not.toThrow();
  });

  it("throws with the named path of the first difference", () => {
    const params = { layers: [{ w: 1 }, { w: 1 }, { w: 1, b: 2 }] };
    const grads = { layers: [{ w: 1 }, { w: 1 }, { w: [1], b: 2 }] };
    expectNbiError(
      () => tree.assertSameStructure("sgd.update", params, grads, "params", "grads"),
      "sgd.update: grads expected the same structure as params",
      "at grads.layers[2].w",
      "expected a leaf, got an array of length 1",
    );
  });
});

describe("leaf predicate", () => {
  afterEach(() => tree.setLeafPredicate(tree.defaultLeafPredicate));

  class Fake {
    constructor(readonly v: number) {}
  }

  it("uses the registered predicate for leaves", () => {
    const t = { a: new Fake(1), b: [new Fake(2), 3] };
    expectNbiError(() => tree.leaves(t), "tree at a", "a Fake");
    tree.setLeafPredicate((x) => x instanceof Fake);
    const ls = tree.leaves(t);
    expect(ls).toHaveLength(3);
    expect(ls[0]).toBe(t.a);
    expect(tree.isLeaf(t.a)).toBe(true);
    expect(tree.isLeaf(4)).toBe(true);
    const doubled = tree.map((x: Fake | number) => (x instanceof Fake ? x.v * 2 : x), t);
    expect(doubled).toEqual({ a: 2, b: [4, 3] });
  });

  it("keeps numbers as leaves and drops the duck-typed default once replaced", () => {
    tree.setLeafPredicate((x) => x instanceof Fake);
    expect(tree.leaves([1, 2])).toEqual([1, 2]);
    expectNbiError(() => tree.leaves(fakeArray(1)), "tree at dtype", 'got "float32"');
  });
});
