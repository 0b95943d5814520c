/**
 * MADE (Germain et al. 2015), as nbi's MADE2 / pytorch-flows: masked linear layers whose masks come
 * from degrees (inputs 1..d, hidden (k mod (d−1)) + 1, outputs of coordinate i degree i), ReLU, an
 * optional context added to the first hidden layer's pre-activation, and outputs
 * `[..., d, nParams]` where the parameters of coordinate i depend only on inputs 1..i−1.
 */
import { fail } from "../errors.js";
import * as np from "../ops/np.js";
import * as random from "../ops/random.js";
import type { Array } from "../trace/array.js";
import type { ParamModule } from "../transforms/module.js";

/** Options of `made`. */
export interface MadeOptions {
  /** Event size d. */
  nDims: number;
  /** Hidden layer widths (default [64, 64]: two masked hidden layers, as nbi). */
  hidden?: readonly number[];
  /** Parameters per coordinate (2 for an affine transformer). */
  nParams: number;
  /** Size of the conditioning context (0 or undefined: unconditional). */
  contextDim?: number;
}

/** One masked linear layer of a MADE. */
export interface MadeLayer {
  /** Weights [in, out], unmasked (the mask is applied in `apply`). */
  readonly w: Array;
  /** Biases [out]. */
  readonly b: Array;
}

/** The parameters of a MADE: a plain pytree. */
export interface MadeParams {
  /** The masked linear layers, input first, output last. */
  readonly layers: readonly MadeLayer[];
  /** Context weights [contextDim, hidden[0]], when contextDim > 0. */
  readonly context?: Array;
}

/**
 * A MADE conditioner: an `init` / `apply` module (`ParamModule`) whose outputs for coordinate i see
 * only y_1..y_{i−1}. `init(key, options?)` gives orthogonal weights and zero biases (float32 unless
 * `dtype` says otherwise); `apply(params, y, context?)` gives the raw transformer parameters
 * [..., d, nParams] from y [..., d] (and the context, if any).
 */
export interface Made extends ParamModule<MadeParams, [y: Array, context?: Array], Array> {
  /** Event size d. */
  readonly nDims: number;
  /** Parameters per coordinate. */
  readonly nParams: number;
  /** Size of the conditioning context (0: unconditional). */
  readonly contextDim: number;
  /** The 0/1 masks [in, out] of each layer (static configuration). */
  readonly masks: readonly number[][][];
}

function checkPositive(fn: string, name: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1)
    fail(fn, name, "a positive integer", v);
  return v;
}

/**
 * An orthogonal matrix [rows, cols] (orthonormal columns when rows ≥ cols, rows otherwise), by
 * Gram–Schmidt on a standard-normal draw: torch.nn.init.orthogonal_'s distribution.
 *
 * @example
 * ```ts
 * const w = bijectors.orthogonal(random.key(0), 64, 3); // [64, 3], orthonormal columns
 * ```
 */
export function orthogonal(
  key: Array,
  rows: number,
  cols: number,
  options?: { dtype?: "float32" | "float64"; gain?: number },
): Array {
  const tall = rows >= cols;
  const n = tall ? rows : cols; // vector length
  const k = tall ? cols : rows; // number of orthonormal vectors
  const g = random.normal(key, [k, n], { dtype: "float64" }).dataSync() as Float64Array;
  const v: Float64Array[] = [];
  for (let i = 0; i < k; i++) {
    const u = g.slice(i * n, (i + 1) * n);
    // Two passes of modified Gram–Schmidt keep the vectors orthogonal to rounding.
    for (let pass = 0; pass < 2; pass++) {
      for (const q of v) {
        let dot = 0;
        for (let t = 0; t < n; t++) dot += u[t]! * q[t]!;
        for (let t = 0; t < n; t++) u[t]! -= dot * q[t]!;
      }
    }
    let norm = 0;
    for (let t = 0; t < n; t++) norm += u[t]! * u[t]!;
    norm = Math.sqrt(norm);
    for (let t = 0; t < n; t++) u[t]! /= norm;
    v.push(u);
  }
  const gain = options?.gain ?? 1;
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      out[r * cols + c] = gain * (tall ? v[c]![r]! : v[r]![c]!);
    }
  }
  const dtype = options?.dtype ?? "float32";
  return np.fromTypedArray(dtype === "float64" ? out : Float32Array.from(out), [rows, cols], {
    dtype,
  });
}

/**
 * Degree-based masks [in, out] of a MADE with these sizes (1: connected, 0: cut).
 *
 * @example
 * ```ts
 * const [m1, m2] = bijectors.madeMasks(3, [4], 2); // [3][4] and [4][6]
 * ```
 */
export function madeMasks(nDims: number, hidden: readonly number[], nParams: number): number[][][] {
  const inDeg = globalThis.Array.from({ length: nDims }, (_, i) => i + 1);
  // With one input no hidden unit may see it (degree 0); the outputs then depend on the context only.
  const hiddenDeg = (h: number) =>
    globalThis.Array.from({ length: h }, (_, k) => (nDims > 1 ? (k % (nDims - 1)) + 1 : 0));
  const outDeg = globalThis.Array.from(
    { length: nDims * nParams },
    (_, j) => Math.floor(j / nParams) + 1,
  );
  const masks: number[][][] = [];
  let prev = inDeg;
  for (const h of hidden) {
    const deg = hiddenDeg(h);
    masks.push(prev.map((p) => deg.map((q) => (q >= p ? 1 : 0))));
    prev = deg;
  }
  masks.push(prev.map((p) => outDeg.map((q) => (q > p ? 1 : 0))));
  return masks;
}

/**
 * A MADE conditioner module: the autoregressive network inside each MAF block.
 *
 * @example
 * ```ts
 * const net = bijectors.made({ nDims: 3, nParams: 2, contextDim: 4 });
 * const params = net.init(random.key(0));
 * net.apply(params, np.zeros([10, 3]), np.zeros([10, 4])); // [10, 3, 2]
 * ```
 */
export function made(options: MadeOptions): Made {
  const nDims = checkPositive("made", "options.nDims", options.nDims);
  const nParams = checkPositive("made", "options.nParams", options.nParams);
  const hidden = options.hidden ?? [64, 64];
  if (!globalThis.Array.isArray(hidden) || hidden.length === 0) {
    fail("made", "options.hidden", "a non-empty list of positive integers", hidden);
  }
  hidden.forEach((h, i) => {
    checkPositive("made", `options.hidden[${i}]`, h);
  });
  const contextDim = options.contextDim ?? 0;
  if (!Number.isInteger(contextDim) || contextDim < 0) {
    fail("made", "options.contextDim", "a non-negative integer", contextDim);
  }
  const masks = madeMasks(nDims, hidden, nParams);
  const sizes = [nDims, ...hidden, nDims * nParams];
  const maskArrays = new Map<string, Array>();
  const maskFor = (i: number, dtype: "float32" | "float64") => {
    const k = `${i}:${dtype}`;
    let m = maskArrays.get(k);
    if (m === undefined) {
      m = np.array(masks[i]!, { dtype });
      maskArrays.set(k, m);
    }
    return m;
  };
  return {
    nDims,
    nParams,
    contextDim,
    masks,
    init(key, initOptions) {
      const dtype = initOptions?.dtype ?? "float32";
      const keys = random.splitList(key, sizes.length);
      const layers = sizes.slice(0, -1).map((nIn, i) => ({
        w: orthogonal(keys[i]!, nIn, sizes[i + 1]!, { dtype }),
        b: np.zeros([sizes[i + 1]!], { dtype }),
      }));
      return contextDim > 0
        ? {
            layers,
            context: orthogonal(keys[sizes.length - 1]!, contextDim, hidden[0]!, { dtype }),
          }
        : { layers };
    },
    apply(params, y, context) {
      if (y.ndim < 1 || y.shape[y.ndim - 1] !== nDims) {
        fail("made", "y", `an array [..., ${nDims}]`, y);
      }
      let h = y;
      params.layers.forEach((layer, i) => {
        const w = np.mul(layer.w, maskFor(i, layer.w.dtype === "float64" ? "float64" : "float32"));
        h = np.add(np.matmul(h, w), layer.b);
        if (i === 0 && contextDim > 0) {
          if (context === undefined || context.shape[context.ndim - 1] !== contextDim) {
            fail("made", "context", `an array [..., ${contextDim}]`, context);
          }
          h = np.add(h, np.matmul(context, params.context!));
        }
        if (i < params.layers.length - 1) h = np.relu(h);
      });
      return np.reshape(h, [...h.shape.slice(0, -1), nDims, nParams]);
    },
  };
}
