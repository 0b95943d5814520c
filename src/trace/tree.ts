/**
 * JAX-style pytrees: nested plain arrays and plain objects whose leaves are arrays (or numbers).
 *
 * A tree is one of
 *  - a leaf: a number, or any value accepted by the registered leaf predicate (the array module
 *    registers `x instanceof Array`; before that, anything with a `shape` array and a `dtype`
 *    string counts),
 *  - an empty subtree: `null` or `undefined` (no leaves, but kept in the structure),
 *  - a plain JS array of trees,
 *  - a plain object (prototype `Object.prototype` or `null`) of trees.
 * Anything else (strings, booleans, functions, Maps, typed arrays, other class instances) is an
 * error. Leaves are visited depth first, array elements in order and object keys sorted (as JAX
 * sorts dict keys), so the leaf order never depends on key insertion order.
 */
import { describe, NbiError } from "../errors.js";

/**
 * Decides which non-number values are leaves.
 * @internal
 */
export type LeafPredicate = (value: unknown) => boolean;

/**
 * The leaf test used before the array module registers its own: duck-typed arrays.
 * @internal
 */
export const defaultLeafPredicate: LeafPredicate = (value) => {
  if (typeof value !== "object" || value === null) return false;
  const maybe = value as { shape?: unknown; dtype?: unknown };
  return globalThis.Array.isArray(maybe.shape) && typeof maybe.dtype === "string";
};

let leafPredicate: LeafPredicate = defaultLeafPredicate;

/**
 * Sets which values are leaves (besides numbers, which always are). The array module registers
 * `x instanceof Array` when it loads; users have no reason to call this.
 * @internal
 */
export function setLeafPredicate(p: LeafPredicate): void {
  if (typeof p !== "function") {
    throw new NbiError(`tree.setLeafPredicate: p expected a function, got ${describe(p)}`);
  }
  leafPredicate = p;
}

/**
 * Whether `value` is a leaf: a number or a value accepted by the leaf predicate.
 *
 * @example
 * ```ts
 * tree.isLeaf(np.ones([2])); // true
 * tree.isLeaf(3); // true
 * tree.isLeaf([np.ones([2])]); // false: a subtree
 * ```
 */
export function isLeaf(value: unknown): boolean {
  return typeof value === "number" || leafPredicate(value);
}

/**
 * Opaque description of a tree's structure. Treat as read-only; build it with `structure` or
 * `flatten`. `null` and `undefined` subtrees compare equal (both are "none").
 */
export interface TreeDef {
  /**
   * What this node is: a leaf, an empty subtree (`null`/`undefined`), a plain array or a plain
   * object.
   */
  readonly kind: "leaf" | "none" | "array" | "object";
  /** Sorted keys for kind "object"; empty otherwise. */
  readonly keys: readonly string[];
  /** One child per element ("array") or per sorted key ("object"); empty otherwise. */
  readonly children: readonly TreeDef[];
  /** For kind "none": the empty value to rebuild (`null` or `undefined`). */
  readonly noneValue: null | undefined;
  /** Number of leaves below (and including) this node. */
  readonly numLeaves: number;
}

const LEAF: TreeDef = Object.freeze({
  kind: "leaf",
  keys: [],
  children: [],
  noneValue: undefined,
  numLeaves: 1,
});
const NULL_DEF: TreeDef = Object.freeze({
  kind: "none",
  keys: [],
  children: [],
  noneValue: null,
  numLeaves: 0,
});
const UNDEFINED_DEF: TreeDef = Object.freeze({
  kind: "none",
  keys: [],
  children: [],
  noneValue: undefined,
  numLeaves: 0,
});

type Segment = string | number;

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

/** Relative path like `layers[2].w` (empty string for the root). */
function pathString(path: readonly Segment[]): string {
  let s = "";
  for (const seg of path) {
    if (typeof seg === "number") s += `[${seg}]`;
    else if (IDENTIFIER.test(seg)) s += s === "" ? seg : `.${seg}`;
    else s += `[${JSON.stringify(seg)}]`;
  }
  return s;
}

/** Path below a named root, like `params.layers[2].w`. */
function joinPath(root: string, path: readonly Segment[]): string {
  const rel = pathString(path);
  if (rel === "") return root;
  return rel.startsWith("[") ? `${root}${rel}` : `${root}.${rel}`;
}

function isPlainObject(value: object): boolean {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

const NODE_EXPECTED =
  "a leaf (a number or an array), a plain JS array, a plain object, null or undefined";

function where(label: string, path: readonly Segment[]): string {
  const rel = pathString(path);
  return rel === "" ? label : `${label} at ${rel}`;
}

/** Depth-first flatten; `fn` and `label` name the caller and the argument in errors. */
function flattenWith(fn: string, label: string, tree: unknown, leaves: unknown[]): TreeDef {
  const path: Segment[] = [];
  const ancestors = new Set<object>();

  const visit = (value: unknown): TreeDef => {
    if (typeof value === "number") {
      leaves.push(value);
      return LEAF;
    }
    if (value === null) return NULL_DEF;
    if (value === undefined) return UNDEFINED_DEF;
    if (leafPredicate(value)) {
      leaves.push(value);
      return LEAF;
    }
    const isArray = globalThis.Array.isArray(value);
    if (typeof value !== "object" || !(isArray || isPlainObject(value))) {
      throw new NbiError(
        `${fn}: ${where(label, path)} expected ${NODE_EXPECTED}, got ${describe(value)}`,
      );
    }
    if (ancestors.has(value)) {
      throw new NbiError(
        `${fn}: ${where(label, path)} expected a tree without cycles, got a reference to one of its own ancestors`,
      );
    }
    ancestors.add(value);
    const start = leaves.length;
    let def: TreeDef;
    if (isArray) {
      const arr = value as readonly unknown[];
      const children: TreeDef[] = new globalThis.Array(arr.length);
      for (let i = 0; i < arr.length; i++) {
        path.push(i);
        children[i] = visit(arr[i]);
        path.pop();
      }
      def = { kind: "array", keys: [], children, noneValue: undefined, numLeaves: 0 };
    } else {
      const obj = value as Record<string, unknown>;
      const keys = Object.keys(obj).sort();
      const children: TreeDef[] = new globalThis.Array(keys.length);
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i]!;
        path.push(key);
        children[i] = visit(obj[key]);
        path.pop();
      }
      def = { kind: "object", keys, children, noneValue: undefined, numLeaves: 0 };
    }
    ancestors.delete(value);
    (def as { numLeaves: number }).numLeaves = leaves.length - start;
    return def;
  };

  return visit(tree);
}

/**
 * Leaves in depth-first order (object keys sorted) and the structure to rebuild the tree.
 *
 * @example
 * ```ts
 * const [leaves, def] = tree.flatten({ b: np.ones([2]), a: [1, 2] });
 * leaves.length; // 3: a[0], a[1], b (keys sorted)
 * tree.unflatten(def, [0, 0, 0]); // { a: [0, 0], b: 0 }
 * ```
 */
export function flatten<T = unknown>(tree: unknown): [leaves: T[], def: TreeDef] {
  const out: T[] = [];
  const def = flattenWith("tree.flatten", "tree", tree, out);
  return [out, def];
}

/**
 * The leaves of `tree` in flatten order.
 *
 * @example
 * ```ts
 * const params = { w: np.ones([2, 3]), b: np.zeros([3]) };
 * tree.leaves<Array>(params).map((x) => x.size); // [3, 6]: b before w
 * ```
 */
export function leaves<T = unknown>(tree: unknown): T[] {
  const out: T[] = [];
  flattenWith("tree.leaves", "tree", tree, out);
  return out;
}

/**
 * The structure of `tree` (its TreeDef), without the leaves.
 *
 * @example
 * ```ts
 * const def = tree.structure({ w: np.ones([2]), layers: [1, null] });
 * tree.treeDefToString(def); // "TreeDef({layers: [*, null], w: *})"
 * ```
 */
export function structure(tree: unknown): TreeDef {
  return flattenWith("tree.structure", "tree", tree, []);
}

function checkDef(fn: string, def: unknown): asserts def is TreeDef {
  const d = def as Partial<TreeDef> | null;
  if (
    typeof d !== "object" ||
    d === null ||
    typeof d.kind !== "string" ||
    typeof d.numLeaves !== "number" ||
    !globalThis.Array.isArray(d.children)
  ) {
    throw new NbiError(`${fn}: def expected a TreeDef, got ${describe(def)}`);
  }
}

/**
 * Number of leaves a tree of this structure has.
 *
 * @example
 * ```ts
 * tree.numLeaves(tree.structure([1, [2, 3], null])); // 3
 * ```
 */
export function numLeaves(def: TreeDef): number {
  checkDef("tree.numLeaves", def);
  return def.numLeaves;
}

/** Sets `out[key] = value` as an own data property, even for the key `__proto__`. */
function setOwn(out: Record<string, unknown>, key: string, value: unknown): void {
  if (key === "__proto__") {
    Object.defineProperty(out, key, {
      value,
      writable: true,
      enumerable: true,
      configurable: true,
    });
  } else {
    out[key] = value;
  }
}

function build(def: TreeDef, leaves: readonly unknown[], pos: { i: number }): unknown {
  switch (def.kind) {
    case "leaf":
      return leaves[pos.i++];
    case "none":
      return def.noneValue;
    case "array": {
      const out: unknown[] = new globalThis.Array(def.children.length);
      for (let i = 0; i < def.children.length; i++) out[i] = build(def.children[i]!, leaves, pos);
      return out;
    }
    case "object": {
      const out: Record<string, unknown> = {};
      for (let i = 0; i < def.keys.length; i++) {
        setOwn(out, def.keys[i]!, build(def.children[i]!, leaves, pos));
      }
      return out;
    }
  }
}

/**
 * Rebuilds a tree of structure `def` from `leaves` (fresh arrays and objects; inputs untouched).
 *
 * @example
 * ```ts
 * const def = tree.structure({ w: 0, b: 0 });
 * const params = tree.unflatten(def, [np.zeros([2]), np.ones([2, 2])]); // b: zeros, w: ones
 * ```
 */
export function unflatten<T = unknown>(def: TreeDef, leaves: readonly unknown[]): T {
  checkDef("tree.unflatten", def);
  if (!globalThis.Array.isArray(leaves)) {
    throw new NbiError(`tree.unflatten: leaves expected an array, got ${describe(leaves)}`);
  }
  if (leaves.length !== def.numLeaves) {
    throw new NbiError(
      `tree.unflatten: leaves expected ${def.numLeaves} leaves for ${treeDefToString(def)}, got ${leaves.length}`,
    );
  }
  return build(def, leaves, { i: 0 }) as T;
}

/**
 * Structural equality (`null` and `undefined` subtrees are equal; leaves are not compared).
 *
 * @example
 * ```ts
 * tree.treeDefEqual(tree.structure({ a: 1 }), tree.structure({ a: np.ones([3]) })); // true
 * tree.treeDefEqual(tree.structure([1]), tree.structure([1, 2])); // false
 * ```
 */
export function treeDefEqual(a: TreeDef, b: TreeDef): boolean {
  if (a === b) return true;
  if (a.kind !== b.kind || a.numLeaves !== b.numLeaves) return false;
  if (a.children.length !== b.children.length) return false;
  if (a.kind === "object") {
    for (let i = 0; i < a.keys.length; i++) if (a.keys[i] !== b.keys[i]) return false;
  }
  for (let i = 0; i < a.children.length; i++) {
    if (!treeDefEqual(a.children[i]!, b.children[i]!)) return false;
  }
  return true;
}

function showKey(key: string): string {
  return IDENTIFIER.test(key) ? key : JSON.stringify(key);
}

function defToString(def: TreeDef): string {
  switch (def.kind) {
    case "leaf":
      return "*";
    case "none":
      return def.noneValue === null ? "null" : "undefined";
    case "array":
      return `[${def.children.map(defToString).join(", ")}]`;
    case "object":
      if (def.keys.length === 0) return "{}";
      return `{${def.keys.map((k, i) => `${showKey(k)}: ${defToString(def.children[i]!)}`).join(", ")}}`;
  }
}

/**
 * Readable form, e.g. `TreeDef({a: *, b: [*, *]})`; `*` marks a leaf.
 *
 * @example
 * ```ts
 * tree.treeDefToString(tree.structure({ a: 1, b: [2, 3] })); // "TreeDef({a: *, b: [*, *]})"
 * ```
 */
export function treeDefToString(def: TreeDef): string {
  checkDef("tree.treeDefToString", def);
  return `TreeDef(${defToString(def)})`;
}

function listKeys(keys: readonly string[]): string {
  const shown = keys.slice(0, 10).map(showKey).join(", ");
  return `[${shown}${keys.length > 10 ? ", ..." : ""}]`;
}

function describeDef(def: TreeDef): string {
  switch (def.kind) {
    case "leaf":
      return "a leaf";
    case "none":
      return def.noneValue === null ? "null" : "undefined";
    case "array":
      return `an array of length ${def.children.length}`;
    case "object":
      return def.keys.length === 0
        ? "an empty object"
        : `an object with keys ${listKeys(def.keys)}`;
  }
}

interface Difference {
  path: Segment[];
  expected: string;
  got: string;
}

/** The first place (in flatten order) where `b` differs from `a`, or undefined if none. */
function firstDifference(a: TreeDef, b: TreeDef, path: Segment[]): Difference | undefined {
  if (a === b) return undefined;
  const mismatch = (extra = ""): Difference => ({
    path: [...path],
    expected: describeDef(a),
    got: describeDef(b) + extra,
  });
  if (a.kind !== b.kind) return mismatch();
  if (a.kind === "array") {
    if (a.children.length !== b.children.length) return mismatch();
  } else if (a.kind === "object") {
    const sameKeys = a.keys.length === b.keys.length && a.keys.every((k, i) => k === b.keys[i]);
    if (!sameKeys) {
      const inB = new Set(b.keys);
      const inA = new Set(a.keys);
      const missing = a.keys.filter((k) => !inB.has(k));
      const extra = b.keys.filter((k) => !inA.has(k));
      const notes: string[] = [];
      if (missing.length > 0) notes.push(`missing ${listKeys(missing)}`);
      if (extra.length > 0) notes.push(`extra ${listKeys(extra)}`);
      return mismatch(notes.length > 0 ? ` (${notes.join("; ")})` : "");
    }
  } else {
    return undefined;
  }
  for (let i = 0; i < a.children.length; i++) {
    path.push(a.kind === "array" ? i : a.keys[i]!);
    const d = firstDifference(a.children[i]!, b.children[i]!, path);
    path.pop();
    if (d) return d;
  }
  return undefined;
}

/**
 * Applies `f` leafwise. With several trees, `f` gets the corresponding leaf of each; all trees
 * must have the structure of the first. The result has the first tree's structure, with each
 * leaf replaced by what `f` returned.
 *
 * @example
 * ```ts
 * const params = { w: np.ones([2, 2]), b: np.zeros([2]) };
 * const grads = { w: np.ones([2, 2]), b: np.ones([2]) };
 * const next = tree.map((p: Array, g: Array) => p.sub(g.mul(0.1)), params, grads);
 * ```
 */
export function map(
  // biome-ignore lint/suspicious/noExplicitAny: callbacks are written against concrete leaf types
  f: (...leaves: any[]) => unknown,
  tree: unknown,
  ...rest: unknown[]
  // biome-ignore lint/suspicious/noExplicitAny: the result's type is the caller's to assert
): any {
  if (typeof f !== "function") {
    throw new NbiError(`tree.map: f expected a function, got ${describe(f)}`);
  }
  const multi = rest.length > 0;
  const first: unknown[] = [];
  const def = flattenWith("tree.map", multi ? "tree 1" : "tree", tree, first);
  if (!multi)
    return build(
      def,
      first.map((leaf) => f(leaf)),
      { i: 0 },
    );

  const all: unknown[][] = [first];
  for (let t = 0; t < rest.length; t++) {
    const ls: unknown[] = [];
    const d = flattenWith("tree.map", `tree ${t + 2}`, rest[t], ls);
    if (!treeDefEqual(def, d)) {
      const diff = firstDifference(def, d, []);
      const at = diff && diff.path.length > 0 ? pathString(diff.path) : "the root";
      const how = diff ? `expected ${diff.expected}, got ${diff.got}` : "structures differ";
      throw new NbiError(`tree.map: tree ${t + 2} differs from tree 1 at ${at}: ${how}`);
    }
    all.push(ls);
  }
  const out = new globalThis.Array<unknown>(first.length);
  const args = new globalThis.Array<unknown>(all.length);
  for (let i = 0; i < first.length; i++) {
    for (let t = 0; t < all.length; t++) args[t] = all[t]![i];
    out[i] = f(...args);
  }
  return build(def, out, { i: 0 });
}

function collectPaths(def: TreeDef, path: Segment[], out: string[]): void {
  switch (def.kind) {
    case "leaf":
      out.push(pathString(path));
      return;
    case "none":
      return;
    case "array":
    case "object":
      for (let i = 0; i < def.children.length; i++) {
        path.push(def.kind === "array" ? i : def.keys[i]!);
        collectPaths(def.children[i]!, path, out);
        path.pop();
      }
  }
}

/**
 * The path of each leaf (e.g. `layers[2].w`; `""` for a root leaf), in flatten order.
 *
 * @example
 * ```ts
 * tree.paths({ layers: [{ w: 1 }, { w: 2 }], b: 3 }); // ["b", "layers[0].w", "layers[1].w"]
 * ```
 */
export function paths(tree: unknown): string[] {
  const out: string[] = [];
  collectPaths(flattenWith("tree.paths", "tree", tree, []), [], out);
  return out;
}

/**
 * Throws an NbiError naming `fn` and the first path where `b`'s structure differs from `a`'s,
 * e.g. `sgd: grads expected the same structure as params; at grads.layers[2] expected an object
 * with keys [b, w], got an array of length 2`.
 *
 * @example
 * ```ts
 * tree.assertSameStructure("sgd", { w: 1, b: 2 }, { w: 1 }, "params", "grads");
 * // throws NbiError: sgd: grads expected the same structure as params; at grads expected
 * // an object with keys [b, w], got an object with keys [w] (missing [b])
 * ```
 */
export function assertSameStructure(
  fn: string,
  a: unknown,
  b: unknown,
  nameA = "a",
  nameB = "b",
): void {
  const defA = flattenWith(fn, nameA, a, []);
  const defB = flattenWith(fn, nameB, b, []);
  if (treeDefEqual(defA, defB)) return;
  const diff = firstDifference(defA, defB, []);
  const at = joinPath(nameB, diff?.path ?? []);
  const how = diff ? `expected ${diff.expected}, got ${diff.got}` : "the structures differ";
  throw new NbiError(`${fn}: ${nameB} expected the same structure as ${nameA}; at ${at} ${how}`);
}
