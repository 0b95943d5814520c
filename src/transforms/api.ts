/**
 * The user-facing transforms over pytrees: jvp, vjp, grad, valueAndGrad, vmap, jacfwd, jacrev,
 * hessian, stopGradient and scan. Each is a thin wrapper that flattens pytrees and calls the
 * flat core of its transform.
 */
import { fail, NbiError } from "../errors.js";
import { eye, zerosLike } from "../ops/creation.js";
import * as np from "../ops/numpy.js";
import { full } from "../ops/primitives/rules.js";
import { Array } from "../trace/array.js";
import { bind } from "../trace/core.js";
import { isFloat } from "../trace/dtype.js";
import type { BatchDim } from "../trace/primitive.js";
import { showShape } from "../trace/shape.js";
import * as tree from "../trace/tree.js";
import { evalJaxpr, jaxprToString, makeJaxpr as stage } from "./jaxpr.js";
import { jvpFlat } from "./jvp.js";
import { scanP } from "./scan.js";
import { vjpFlat } from "./vjp.js";
import { vmapFlat } from "./vmap.js";

/** A pytree: arrays and numbers as leaves, nested in plain arrays and objects. */
export type Tree = unknown;

function toArrayLeaf(fn: string, x: unknown, path: string): Array {
  if (x instanceof Array) return x;
  if (typeof x === "number") return np.asArray(x);
  return fail(fn, path || "argument", "an array or a number", x);
}

function flattenArrays(fn: string, t: Tree, name: string): [Array[], tree.TreeDef] {
  let leaves: unknown[];
  let def: tree.TreeDef;
  try {
    [leaves, def] = tree.flatten(t);
  } catch (e) {
    if (e instanceof NbiError) throw new NbiError(`${fn}: ${name}: ${e.message}`);
    throw e;
  }
  const paths = tree.paths(t);
  return [
    leaves.map((l, i) => toArrayLeaf(fn, l, `${name}${paths[i] ? `.${paths[i]}` : ""}`)),
    def,
  ];
}

/** Flattens the outputs of a user function, checking they are arrays. */
function flattenOut(fn: string, out: Tree): [Array[], tree.TreeDef] {
  return flattenArrays(fn, out, "output");
}

// ---------------------------------------------------------------------------------------------

/**
 * Forward mode: `[f(primals), J·tangents]`; primals and tangents are argument lists.
 *
 * @example
 * ```ts
 * const f = (x: Array) => np.sin(x);
 * const [y, dy] = jvp(f, [np.array([0, 1])], [np.ones([2])]);
 * dy.tolist(); // cos(x): [1, 0.5403022766113281]
 * ```
 */
export function jvp<A extends unknown[], R>(f: (...args: A) => R, primals: A, tangents: A): [R, R] {
  const [flatP, defP] = flattenArrays("jvp", primals, "primals");
  const [flatT, defT] = flattenArrays("jvp", tangents, "tangents");
  if (!tree.treeDefEqual(defP, defT))
    tree.assertSameStructure("jvp", primals, tangents, "primals", "tangents");
  let outDef: tree.TreeDef | null = null;
  const [po, to] = jvpFlat(
    (...xs) => {
      const [flat, def] = flattenOut("jvp", f(...(tree.unflatten(defP, xs) as A)));
      outDef = def;
      return flat;
    },
    flatP,
    flatT,
  );
  return [tree.unflatten(outDef!, po), tree.unflatten(outDef!, to)];
}

/**
 * Reverse mode: `[f(...primals), pullback]`, where pullback maps an output cotangent to the
 * arguments' cotangents.
 *
 * @example
 * ```ts
 * const [y, pullback] = vjp((x: Array) => np.square(x), np.array([1, 2]));
 * const [dx] = pullback(np.ones([2]));
 * dx.tolist(); // [2, 4]
 * ```
 */
export function vjp<A extends unknown[], R>(
  f: (...args: A) => R,
  ...primals: A
): [R, (cotangent: R) => A] {
  const [flatP, defP] = flattenArrays("vjp", primals, "primals");
  let outDef: tree.TreeDef | null = null;
  const [outs, pull] = vjpFlat((...xs) => {
    const [flat, def] = flattenOut("vjp", f(...(tree.unflatten(defP, xs) as A)));
    outDef = def;
    return flat;
  }, flatP);
  const pullback = (ct: R): A => {
    const [leaves, def] = tree.flatten(ct);
    if (!tree.treeDefEqual(def, outDef!)) {
      tree.assertSameStructure("vjp", tree.unflatten(outDef!, outs), ct, "output", "cotangent");
    }
    const cts = leaves.map((l, i) =>
      l instanceof Array ? l : np.astype(toArrayLeaf("vjp", l, "cotangent"), outs[i]!.dtype),
    );
    return tree.unflatten(defP, pull(cts)) as A;
  };
  return [tree.unflatten(outDef!, outs), pullback];
}

/** Options of `grad` and `valueAndGrad`. */
export interface GradOptions {
  /** Which positional arguments to differentiate (default 0). */
  argnums?: number | readonly number[];
  /** f returns `[value, aux]`; aux is passed through undifferentiated. */
  hasAux?: boolean;
}

function normalizeArgnums(
  fn: string,
  argnums: number | readonly number[],
  nArgs: number,
): number[] {
  const list = typeof argnums === "number" ? [argnums] : [...argnums];
  for (const a of list) {
    if (!Number.isInteger(a) || a < 0 || a >= nArgs) {
      fail(fn, "argnums", `indices of the ${nArgs} positional arguments`, argnums);
    }
  }
  return list;
}

function valueAndGradImpl(
  fn: string,
  f: (...args: unknown[]) => unknown,
  options: GradOptions | undefined,
) {
  return (...args: unknown[]): [unknown, unknown, unknown] => {
    const argnums = normalizeArgnums(fn, options?.argnums ?? 0, args.length);
    const diffArgs = argnums.map((i) => args[i]);
    const [flat, def] = flattenArrays(fn, diffArgs, "argument");
    let aux: unknown;
    let auxLeaves: Array[] = [];
    let auxDef: tree.TreeDef | null = null;
    const [outs, pull] = vjpFlat((...xs) => {
      const call = [...args];
      const rebuilt = tree.unflatten(def, xs) as unknown[];
      argnums.forEach((a, k) => {
        call[a] = rebuilt[k];
      });
      let out = f(...call);
      if (options?.hasAux) {
        if (!globalThis.Array.isArray(out) || out.length !== 2) {
          fail(fn, "f", "to return [value, aux] with hasAux", out);
        }
        [out, aux] = out as [unknown, unknown];
        const [l, d] = tree.flatten(aux);
        auxLeaves = l.map((x) => (x instanceof Array ? x : np.asArray(x as number)));
        auxDef = d;
      }
      const value = out instanceof Array ? out : typeof out === "number" ? np.asArray(out) : null;
      if (value === null || value.ndim !== 0 || !isFloat(value.dtype)) {
        throw new NbiError(
          `${fn}: f expected to return a scalar float array (shape []), got ${value === null ? typeof out : `shape ${showShape(value.shape)} and dtype ${value.dtype}`}`,
        );
      }
      return [value, ...auxLeaves];
    }, flat);
    const grads = pull([full([], outs[0]!.dtype, 1), ...auxLeaves.map(() => null)]);
    const rebuilt = tree.unflatten(def, grads) as unknown[];
    const g = typeof (options?.argnums ?? 0) === "number" ? rebuilt[0] : rebuilt;
    const auxOut = auxDef ? tree.unflatten(auxDef, outs.slice(1)) : aux;
    return [outs[0], g, auxOut];
  };
}

/**
 * The gradient of a scalar function with respect to argument `argnums` (a pytree like that
 * argument). With `hasAux`, returns `[grads, aux]`.
 *
 * @example
 * ```ts
 * const loss = (w: Array, x: Array) => np.sum(np.square(x.mul(w)));
 * grad(loss)(np.array(2), np.array([1, 2])).item(); // 20 (d/dw of 5w²)
 * const [gw, gx] = grad(loss, { argnums: [0, 1] })(np.array(2), np.array([1, 2]));
 * gx.tolist(); // [8, 16]
 * ```
 */
export function grad<A extends unknown[]>(
  f: (...args: A) => unknown,
  options?: GradOptions,
  // biome-ignore lint/suspicious/noExplicitAny: the gradient's type follows argnums; see GradOptions.
): (...args: A) => any {
  const inner = valueAndGradImpl("grad", f as (...args: unknown[]) => unknown, options);
  return (...args: A) => {
    const [, g, aux] = inner(...args);
    return options?.hasAux ? [g, aux] : g;
  };
}

/**
 * `[value, grads]` (with `hasAux`: `[[value, aux], grads]`, as JAX).
 *
 * @example
 * ```ts
 * const [value, g] = valueAndGrad((x: Array) => np.sum(np.square(x)))(np.array([1, 2]));
 * value.item(); // 5
 * g.tolist(); // [2, 4]
 * ```
 */
export function valueAndGrad<A extends unknown[]>(
  f: (...args: A) => unknown,
  options?: GradOptions,
  // biome-ignore lint/suspicious/noExplicitAny: the gradient's type follows argnums; see GradOptions.
): (...args: A) => [any, any] {
  const inner = valueAndGradImpl("valueAndGrad", f as (...args: unknown[]) => unknown, options);
  return (...args: A) => {
    const [value, g, aux] = inner(...args);
    return options?.hasAux ? [[value, aux], g] : [value, g];
  };
}

// ---------------------------------------------------------------------------------------------

/** Axis spec: a number or null for every leaf, or a tree (prefix) of them. */
export type AxisSpec = number | null | readonly AxisSpec[] | { readonly [k: string]: AxisSpec };

/** Expands an axis spec that is a prefix of `t` to one axis per leaf. */
function expandAxes(fn: string, spec: AxisSpec | undefined, t: Tree, name: string): BatchDim[] {
  if (spec === undefined || spec === null || typeof spec === "number") {
    return tree.leaves(t).map(() => (spec === undefined ? 0 : spec));
  }
  if (globalThis.Array.isArray(spec)) {
    if (!globalThis.Array.isArray(t) || t.length !== spec.length) {
      fail(fn, name, `an argument list of length ${spec.length} matching the axis spec`, t);
    }
    return spec.flatMap((s, i) => expandAxes(fn, s, (t as unknown[])[i], `${name}[${i}]`));
  }
  if (typeof t !== "object" || t === null || globalThis.Array.isArray(t)) {
    fail(fn, name, "an object matching the axis spec", t);
  }
  const obj = t as Record<string, unknown>;
  const specObj = spec as Record<string, AxisSpec>;
  return Object.keys(obj)
    .sort()
    .flatMap((k) => expandAxes(fn, specObj[k] ?? 0, obj[k], `${name}.${k}`));
}

/** Options of `vmap`. */
export interface VmapOptions {
  /** Per argument: the axis to map over (null: not mapped); default 0 for every argument. */
  inAxes?: AxisSpec;
  /** Where the mapped axis goes in the outputs (null: output not mapped); default 0. */
  outAxes?: AxisSpec;
}

/**
 * Vectorises f over an axis of its arguments.
 * Maps over axis 0 of every argument unless `options.inAxes` says otherwise; `f` is written for
 * one example and sees arrays without the mapped axis.
 *
 * @example
 * ```ts
 * const dot = (a: Array, b: Array) => np.sum(a.mul(b));
 * vmap(dot)(np.ones([8, 3]), np.ones([8, 3])).shape; // [8]
 * vmap(dot, { inAxes: [0, null] })(np.ones([8, 3]), np.ones([3])).shape; // [8]
 * ```
 */
export function vmap<A extends unknown[], R>(
  f: (...args: A) => R,
  options?: VmapOptions,
): (...args: A) => R {
  return (...args: A): R => {
    const [flat, def] = flattenArrays("vmap", args, "argument");
    const spec = options?.inAxes;
    const inAxes =
      spec === undefined || spec === null || typeof spec === "number"
        ? flat.map(() => (spec === undefined ? 0 : spec))
        : expandAxes("vmap", spec, args, "arguments");
    const normalized = inAxes.map((ax, i) => {
      if (ax === null) return null;
      const rank = flat[i]!.ndim;
      if (!Number.isInteger(ax) || ax < -rank || ax >= rank) {
        fail(
          "vmap",
          `inAxes for argument leaf ${i}`,
          `an axis of its shape ${showShape(flat[i]!.shape)}`,
          ax,
        );
      }
      return ax < 0 ? ax + rank : ax;
    });
    let outDef: tree.TreeDef | null = null;
    let outTree: Tree = null;
    const outs = vmapFlat(
      (...xs) => {
        const out = f(...(tree.unflatten(def, xs) as A));
        const [flatOut, d] = flattenOut("vmap", out);
        outDef = d;
        outTree = out;
        return flatOut;
      },
      flat,
      normalized,
      (n) => {
        const o = options?.outAxes;
        if (o === undefined || o === null || typeof o === "number") {
          return new globalThis.Array<BatchDim>(n).fill(o === undefined ? 0 : o);
        }
        return expandAxes("vmap", o, outTree, "outAxes");
      },
    );
    return tree.unflatten(outDef!, outs);
  };
}

// ---------------------------------------------------------------------------------------------

function jacobian(mode: "fwd" | "rev", f: (...args: unknown[]) => unknown, argnum: number) {
  const fn = mode === "fwd" ? "jacfwd" : "jacrev";
  return (...args: unknown[]): unknown => {
    normalizeArgnums(fn, argnum, args.length);
    const [xs, xDef] = flattenArrays(fn, args[argnum], "argument");
    for (const x of xs) {
      if (!isFloat(x.dtype)) fail(fn, "argument", "float arrays", x);
    }
    let outDef: tree.TreeDef | null = null;
    const flatF = (...leaves: Array[]): Array[] => {
      const call = [...args];
      call[argnum] = tree.unflatten(xDef, leaves);
      const [flat, d] = flattenOut(fn, f(...call));
      outDef = d;
      return flat;
    };
    // blocks[i][j]: d out_i / d x_j, shape out_i.shape ++ x_j.shape
    let blocks: Array[][];
    if (mode === "fwd") {
      const perInput = xs.map((x, j) => {
        const n = x.size;
        const basis = np.reshape(eye(n, n, { dtype: x.dtype }), [n, ...x.shape]);
        const tangentOuts = vmapFlat(
          (t) => {
            const tangents = xs.map((y, k) => (k === j ? t! : zerosLike(y)));
            return jvpFlat(flatF, xs, tangents)[1];
          },
          [basis],
          [0],
          (m) => new globalThis.Array<BatchDim>(m).fill(0),
        );
        // [n, ...out.shape] → [...out.shape, ...x.shape]
        return tangentOuts.map((t) =>
          np.reshape(np.moveaxis(t, 0, -1), [...t.shape.slice(1), ...x.shape]),
        );
      });
      blocks = perInput[0] ? perInput[0].map((_, i) => perInput.map((col) => col[i]!)) : [];
      if (xs.length === 0) flatF();
    } else {
      const [outs, pull] = vjpFlat(flatF, xs);
      blocks = outs.map((o, i) => {
        const m = o.size;
        const basis = np.reshape(eye(m, m, { dtype: o.dtype }), [m, ...o.shape]);
        const cts = vmapFlat(
          (c) => pull(outs.map((_, k) => (k === i ? c! : null))),
          [basis],
          [0],
          (nOut) => new globalThis.Array<BatchDim>(nOut).fill(0),
        );
        return cts.map((c, j) => np.reshape(c, [...o.shape, ...xs[j]!.shape]));
      });
    }
    return tree.unflatten(
      outDef!,
      blocks.map((row) => tree.unflatten(xDef, row)),
    );
  };
}

/**
 * Jacobian by forward mode (one jvp per input element, vectorised with vmap).
 * Each block has shape `[...output.shape, ...input.shape]`. Cheaper than `jacrev` when there are
 * fewer inputs than outputs.
 *
 * @example
 * ```ts
 * jacfwd((x: Array) => np.sin(x))(np.array([0, 0])).tolist(); // [[1, 0], [0, 1]]
 * ```
 */
export function jacfwd<A extends unknown[]>(
  f: (...args: A) => unknown,
  options?: { argnums?: number },
  // biome-ignore lint/suspicious/noExplicitAny: the Jacobian's pytree follows f's output and input.
): (...args: A) => any {
  return jacobian("fwd", f as (...args: unknown[]) => unknown, options?.argnums ?? 0) as (
    ...args: A
  ) => unknown;
}

/**
 * Jacobian by reverse mode (one vjp per output element, vectorised with vmap).
 * Each block has shape `[...output.shape, ...input.shape]`. Cheaper than `jacfwd` when there are
 * fewer outputs than inputs.
 *
 * @example
 * ```ts
 * const f = (x: Array) => np.stack([np.sum(x), np.prod(x)]);
 * jacrev(f)(np.array([1, 2, 3])).shape; // [2, 3]
 * ```
 */
export function jacrev<A extends unknown[]>(
  f: (...args: A) => unknown,
  options?: { argnums?: number },
  // biome-ignore lint/suspicious/noExplicitAny: the Jacobian's pytree follows f's output and input.
): (...args: A) => any {
  return jacobian("rev", f as (...args: unknown[]) => unknown, options?.argnums ?? 0) as (
    ...args: A
  ) => unknown;
}

/**
 * The Hessian, as forward-over-reverse (jacfwd of jacrev).
 *
 * @example
 * ```ts
 * hessian((x: Array) => np.sum(x.pow(3)))(np.array([1, 2])).tolist(); // [[6, 0], [0, 12]]
 * ```
 */
export function hessian<A extends unknown[]>(
  f: (...args: A) => unknown,
  options?: { argnums?: number },
  // biome-ignore lint/suspicious/noExplicitAny: the Hessian's pytree follows f's input.
): (...args: A) => any {
  return jacfwd(jacrev(f, options), options);
}

/**
 * Identity on values; blocks derivatives through every leaf of the tree.
 *
 * @example
 * ```ts
 * const f = (p: { a: Array; b: Array }) => np.sum(p.a.mul(stopGradient(p).b));
 * grad(f)({ a: np.array([1, 2]), b: np.array([3, 4]) }).b.tolist(); // [0, 0]
 * ```
 */
export function stopGradient<T>(t: T): T {
  return tree.map((x: unknown) => np.stopGradient(toArrayLeaf("stopGradient", x, "leaf")), t) as T;
}

// ---------------------------------------------------------------------------------------------

/** Options of `scan`. */
export interface ScanOptions {
  /** Number of steps; required when xs is null, otherwise xs' leading axis. */
  length?: number;
  /** Iterate from the last step to the first (ys stay in step order). */
  reverse?: boolean;
}

/**
 * A loop carried over the leading axis of `xs` (JAX's lax.scan):
 * `f(carry, x) → [carry, y]`; returns `[finalCarry, ys]` with ys stacked on a new leading axis.
 * Staged once and run as one primitive, so it differentiates and batches as a whole.
 *
 * @example
 * ```ts
 * const step = (c: Array, x: Array): [Array, Array] => [c.add(x), c.add(x)];
 * const [total, partial] = scan(step, np.array(0), np.array([1, 2, 3, 4]));
 * total.item(); // 10
 * partial.tolist(); // [1, 3, 6, 10]
 * ```
 */
export function scan<C, X, Y>(
  f: (carry: C, x: X) => [C, Y],
  init: C,
  xs: X | null,
  options?: ScanOptions,
): [C, Y] {
  const [carryLeaves, carryDef] = flattenArrays("scan", init, "init");
  const [xLeaves, xDef] =
    xs === null ? [[], tree.structure(null)] : flattenArrays("scan", xs, "xs");
  const lengths = new Set(xLeaves.map((x) => x.shape[0]));
  if (xLeaves.some((x) => x.ndim === 0)) fail("scan", "xs", "arrays with a leading axis", xs);
  if (lengths.size > 1) fail("scan", "xs", "one common leading-axis length", [...lengths]);
  const length = options?.length ?? (xLeaves[0]?.shape[0] as number | undefined);
  if (length === undefined) fail("scan", "options.length", "a length when xs is null", length);
  if (xLeaves.length > 0 && xLeaves[0]!.shape[0] !== length) {
    fail("scan", "options.length", `the leading axis of xs (${xLeaves[0]!.shape[0]})`, length);
  }
  let yDef: tree.TreeDef | null = null;
  const nCarry = carryLeaves.length;
  const body = (...flat: Array[]): Array[] => {
    const carry = tree.unflatten(carryDef, flat.slice(0, nCarry)) as C;
    const x = tree.unflatten(xDef, flat.slice(nCarry)) as X;
    const out = f(carry, x);
    if (!globalThis.Array.isArray(out) || out.length !== 2)
      fail("scan", "f", "to return [carry, y]", out);
    const [newCarryLeaves, newCarryDef] = flattenArrays("scan", out[0], "carry");
    if (!tree.treeDefEqual(newCarryDef, carryDef)) {
      tree.assertSameStructure("scan", init, out[0], "init", "carry");
    }
    newCarryLeaves.forEach((c, i) => {
      const want = carryLeaves[i]!;
      if (
        c.dtype !== want.dtype ||
        c.shape.length !== want.shape.length ||
        c.shape.some((d, k) => d !== want.shape[k])
      ) {
        throw new NbiError(
          `scan: carry leaf ${i} expected shape ${showShape(want.shape)} and dtype ${want.dtype} (as init), got ${showShape(c.shape)} and ${c.dtype}`,
        );
      }
    });
    const [yLeaves, d] = flattenArrays("scan", out[1], "y");
    yDef = d;
    return [...newCarryLeaves, ...yLeaves];
  };
  const avals = [
    ...carryLeaves.map((c) => ({ shape: c.shape, dtype: c.dtype })),
    ...xLeaves.map((x) => ({ shape: x.shape.slice(1), dtype: x.dtype })),
  ];
  const staged = stage(body, avals);
  const outs = bind(scanP, [...staged.consts, ...carryLeaves, ...xLeaves], {
    jaxpr: staged.jaxpr,
    numConsts: staged.consts.length,
    numCarry: nCarry,
    length: length as number,
    reverse: options?.reverse ?? false,
  });
  return [
    tree.unflatten(carryDef, outs.slice(0, nCarry)) as C,
    tree.unflatten(yDef!, outs.slice(nCarry)) as Y,
  ];
}

// ---------------------------------------------------------------------------------------------

/**
 * The staged program (jaxpr) of f at the given example arguments, for reading and debugging.
 *
 * @example
 * ```ts
 * const staged = makeJaxpr((x: Array) => np.exp(x).mul(2))(np.ones([3]));
 * console.log(staged.toString()); // one equation per primitive
 * ```
 */
export function makeJaxpr<A extends unknown[]>(f: (...args: A) => unknown) {
  return (...args: A) => {
    const [flat, def] = flattenArrays("makeJaxpr", args, "argument");
    const closed = stage(
      (...xs) => flattenOut("makeJaxpr", f(...(tree.unflatten(def, xs) as A)))[0],
      flat,
    );
    return {
      /** The staged program: input variables, equations and outputs. */
      jaxpr: closed.jaxpr,
      /** Arrays f captured from outside (constants): the program's leading inputs. */
      consts: closed.consts,
      /** The program as text, one equation per line. */
      toString: () => jaxprToString(closed.jaxpr),
      /** Evaluates the staged program on flat inputs (for checking it against f). */
      call: (...xs: Array[]) => evalJaxpr(closed.jaxpr, [...closed.consts, ...xs]),
    };
  };
}
