/**
 * Combinators: `chain`, `invert`, `blockwise`, `conditional` and `maskedAutoregressive`.
 */
import { fail, NbiError } from "../errors.js";
import * as np from "../ops/np.js";
import type { Array } from "../trace/array.js";
import { type Bijector, bijector, checkBijector, type ValueAndLogDet } from "./types.js";

/**
 * Composition, in the order of function composition: `chain([b1, b2])` is b1 ∘ b2, so its forward
 * applies **b2 first**, then b1 (and its inverse applies b1⁻¹ first). Log-dets add. The context is
 * passed to every member.
 *
 * @example
 * ```ts
 * const b = bijectors.chain([bijectors.shift(1), bijectors.scale(2)]);
 * b.forward(np.array([[1, 2]])); // scale first, then shift: [[3, 5]]
 * ```
 */
export function chain(bijectors: readonly Bijector[]): Bijector {
  if (!globalThis.Array.isArray(bijectors) || bijectors.length === 0) {
    fail("chain", "bijectors", "a non-empty list of bijectors", bijectors);
  }
  const bs = bijectors.map((b, i) => checkBijector("chain", `bijectors[${i}]`, b));
  const run = (x: Array, c: Array | undefined, order: Bijector[], inverse: boolean) => {
    let v = x;
    let total: Array | null = null;
    for (const b of order) {
      const [next, ld] = inverse ? b.inverseAndLogDet(v, c) : b.forwardAndLogDet(v, c);
      v = next;
      total = total === null ? ld : np.add(total, ld);
    }
    return [v, total!] as ValueAndLogDet;
  };
  const reversed = [...bs].reverse();
  return bijector({
    name: `chain([${bs.map((b) => b.name).join(", ")}])`,
    forwardAndLogDet: (x, c) => run(x, c, reversed, false),
    inverseAndLogDet: (y, c) => run(y, c, bs, true),
  });
}

/**
 * The inverse bijector: forward and inverse swapped.
 *
 * @example
 * ```ts
 * const logit = bijectors.invert(bijectors.sigmoid());
 * logit.forward(np.array([[0.5]])); // [[0]]
 * ```
 */
export function invert(b: Bijector): Bijector {
  const inner = checkBijector("invert", "b", b);
  return bijector({
    name: `invert(${inner.name})`,
    forwardAndLogDet: (x, c) => inner.inverseAndLogDet(x, c),
    inverseAndLogDet: (y, c) => inner.forwardAndLogDet(y, c),
  });
}

/**
 * Different bijectors on consecutive slices of the event axis: `blockwise([b1, b2], [2, 3])` maps
 * x[..., 0:2] with b1 and x[..., 2:5] with b2. Log-dets add.
 *
 * @example
 * ```ts
 * const b = bijectors.blockwise([bijectors.exp(), bijectors.shift(1)], [1, 2]);
 * b.forward(np.array([[0, 0, 0]])); // [[1, 1, 1]]
 * ```
 */
export function blockwise(bijectors: readonly Bijector[], sizes: readonly number[]): Bijector {
  if (!globalThis.Array.isArray(bijectors) || bijectors.length === 0) {
    fail("blockwise", "bijectors", "a non-empty list of bijectors", bijectors);
  }
  const bs = bijectors.map((b, i) => checkBijector("blockwise", `bijectors[${i}]`, b));
  if (
    !globalThis.Array.isArray(sizes) ||
    sizes.length !== bs.length ||
    sizes.some((s) => !Number.isInteger(s) || s < 1)
  ) {
    fail("blockwise", "sizes", `${bs.length} positive integers (one per bijector)`, sizes);
  }
  const total = sizes.reduce((a, b) => a + b, 0);
  const bounds: number[] = [];
  sizes.reduce((acc, s) => {
    bounds.push(acc + s);
    return acc + s;
  }, 0);
  const run = (x: Array, c: Array | undefined, inverse: boolean): ValueAndLogDet => {
    if (x.ndim < 1 || x.shape[x.ndim - 1] !== total) {
      fail("blockwise", "x", `an array whose last axis has size ${total}`, x);
    }
    const parts = np.split(x, bounds.slice(0, -1), -1);
    const outs: Array[] = [];
    let ld: Array | null = null;
    parts.forEach((p, i) => {
      const b = bs[i]!;
      const [v, l] = inverse ? b.inverseAndLogDet(p, c) : b.forwardAndLogDet(p, c);
      outs.push(v);
      ld = ld === null ? l : np.add(ld, l);
    });
    return [np.concatenate(outs, -1), ld!];
  };
  return bijector({
    name: `blockwise([${bs.map((b) => b.name).join(", ")}])`,
    autoregressive: bs.every((b) => b.autoregressive === true),
    forwardAndLogDet: (x, c) => run(x, c, false),
    inverseAndLogDet: (y, c) => run(y, c, true),
  });
}

/**
 * A bijector whose parameters come from the context: `build(context)` returns the bijector to use
 * (typically closing over a network's parameters). Every call must pass a context.
 *
 * @example
 * ```ts
 * const b = bijectors.conditional((c) => bijectors.shift(c));
 * b.forward(np.array([[1, 2]]), np.array([[10, 20]])); // [[11, 22]]
 * ```
 */
export function conditional(
  build: (context: Array) => Bijector,
  options?: { name?: string; autoregressive?: boolean },
): Bijector {
  const name = options?.name ?? "conditional";
  const get = (c: Array | undefined): Bijector => {
    if (c === undefined) {
      throw new NbiError(
        `${name}: context expected an array (this bijector is conditional), got undefined`,
      );
    }
    return build(c);
  };
  return bijector({
    name,
    autoregressive: options?.autoregressive ?? false,
    forwardAndLogDet: (x, c) => get(c).forwardAndLogDet(x),
    inverseAndLogDet: (y, c) => get(c).inverseAndLogDet(y),
  });
}

/**
 * Maps the parameters of one autoregressive step to an elementwise bijector: raw parameters
 * `[..., d, p]` (p per coordinate) in, a bijector on `[..., d]` out.
 */
export type Transformer = (raw: Array) => Bijector;

/**
 * An autoregressive conditioner: from y `[..., d]` (and a context) to raw parameters
 * `[..., d, p]` where the parameters of coordinate i depend only on y_1..y_{i−1} (e.g. MADE).
 */
export type Conditioner = (y: Array, context?: Array) => Array;

/**
 * A masked autoregressive bijector (TFP's convention): the conditioner reads the **output** y, so
 * `inverse` (density evaluation, y → x) is one pass, and `forward` (sampling, x → y) takes `d`
 * passes, each fixing one more coordinate. The Jacobian ∂y/∂x is lower-triangular in the natural
 * order of the event axis.
 *
 * @example
 * ```ts
 * const net = bijectors.made({ nDims: 3, nParams: 2 });
 * const params = net.init(random.key(0));
 * const b = bijectors.maskedAutoregressive((y) => net.apply(params, y), bijectors.affineTransformer());
 * const [x, logDet] = b.inverseAndLogDet(np.ones([4, 3])); // [4, 3], [4]
 * ```
 */
export function maskedAutoregressive(
  conditioner: Conditioner,
  transformer: Transformer,
  options?: { name?: string },
): Bijector {
  if (typeof conditioner !== "function") {
    fail(
      "maskedAutoregressive",
      "conditioner",
      "a function (y, context) => raw parameters",
      conditioner,
    );
  }
  if (typeof transformer !== "function") {
    fail(
      "maskedAutoregressive",
      "transformer",
      "a function raw parameters => bijector",
      transformer,
    );
  }
  const name = options?.name ?? "maskedAutoregressive";
  return bijector({
    name,
    autoregressive: true,
    inverseAndLogDet(y, c) {
      if (y.ndim < 1) fail(name, "y", "an array [..., d]", y);
      return transformer(conditioner(y, c)).inverseAndLogDet(y);
    },
    forwardAndLogDet(x, c) {
      if (x.ndim < 1) fail(name, "x", "an array [..., d]", x);
      const d = x.shape[x.ndim - 1]!;
      // After pass k the first k coordinates of y are exact; the parameters of the last pass read
      // only exact coordinates, so its log-det is exact too.
      let y = np.zerosLike(x);
      let ld: Array = np.zeros(x.shape.slice(0, -1), { dtype: x.dtype });
      for (let k = 0; k < d; k++) {
        [y, ld] = transformer(conditioner(y, c)).forwardAndLogDet(x);
      }
      return [y, ld];
    },
  });
}
