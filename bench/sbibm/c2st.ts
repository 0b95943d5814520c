/**
 * Classifier two-sample test (C2ST) as in sbibm (Lueckmann et al. 2021; Lopez-Paz & Oquab 2017):
 * the accuracy of a classifier telling reference draws from the draws under test, 5-fold
 * cross-validated. 0.5: indistinguishable; 1.0: fully separated.
 *
 * As sbibm's `c2st`: both sets are z-scored by the reference's mean and standard deviation; the
 * classifier is an MLP with two hidden layers of 10·dim ReLU units (the library's `featurizers.mlp`)
 * trained by Adam (lr 1e-3, batches of 200, L2 penalty 1e-4 as scikit-learn's MLPClassifier) until
 * the training loss has not improved by 1e-4 for 10 epochs (scikit-learn's rule) or `maxEpochs`;
 * folds from a shuffled 5-fold split. Built on the library: `np`, `valueAndGrad`, `vmap`, `jit`,
 * `random` and `optim.adam`; the five folds train together in one jit-compiled, vmapped step.
 */
import type { Array as NdArray } from "../../src/index.js";
import { featurizers, jit, np, random, tree, valueAndGrad, vmap } from "../../src/index.js";
import * as optim from "../../src/optim/index.js";
import { Rng } from "./rng.js";

/** Options of `c2st`. */
export interface C2stOptions {
  /** Seed of the split, the initialisation and the batches (default 1, as sbibm). */
  seed?: number;
  /** Cross-validation folds (default 5). */
  folds?: number;
  /** Use at most this many rows of each set (default: all). */
  n?: number;
  /** Most training epochs per fold (default 300; scikit-learn allows 10,000). */
  maxEpochs?: number;
  /** Epochs without a training-loss improvement of `tol` before stopping (default 10). */
  patience?: number;
  /** Improvement that counts (default 1e-4). */
  tol?: number;
  /** Batch size (default 200). */
  batchSize?: number;
  /** Adam's learning rate (default 1e-3). */
  lr?: number;
  /** L2 penalty α: adds α/2 · Σ W² / batch to the loss (default 1e-4). */
  l2?: number;
}

/** What `c2st` returns. */
export interface C2stResult {
  /** Mean held-out accuracy over the folds. */
  readonly accuracy: number;
  /** Held-out accuracy per fold. */
  readonly foldAccuracy: number[];
  /** Epochs trained per fold. */
  readonly epochs: number[];
  /** Wall time. */
  readonly seconds: number;
}

type Params = { layers: readonly { weight: NdArray; bias?: NdArray }[] };

/**
 * C2ST accuracy between `reference` and `other` (rows of `dim`, row-major).
 *
 * @example
 * ```ts
 * const { accuracy } = await c2st(ref.samples, surrogateDraws, 2, { n: 2000 });
 * ```
 */
export async function c2st(
  reference: Float64Array,
  other: Float64Array,
  dim: number,
  options: C2stOptions = {},
): Promise<C2stResult> {
  const t0 = performance.now();
  const seed = options.seed ?? 1;
  const nFolds = options.folds ?? 5;
  const maxEpochs = options.maxEpochs ?? 300;
  const patience = options.patience ?? 10;
  const tol = options.tol ?? 1e-4;
  const batchSize = options.batchSize ?? 200;
  const lr = options.lr ?? 1e-3;
  const l2 = options.l2 ?? 1e-4;
  const nA = Math.min(reference.length / dim, options.n ?? Number.POSITIVE_INFINITY);
  const nB = Math.min(other.length / dim, options.n ?? Number.POSITIVE_INFINITY);
  if (!(nA >= nFolds && nB >= nFolds)) throw new Error("c2st: too few rows for the folds");
  if (!Number.isInteger(nA) || !Number.isInteger(nB))
    throw new Error("c2st: the arrays must hold whole rows of `dim`");

  // z-score by the reference (sample standard deviation, as torch.std).
  const mean = new Float64Array(dim);
  const sd = new Float64Array(dim);
  for (let i = 0; i < nA; i++) for (let j = 0; j < dim; j++) mean[j]! += reference[i * dim + j]!;
  for (let j = 0; j < dim; j++) mean[j]! /= nA;
  for (let i = 0; i < nA; i++)
    for (let j = 0; j < dim; j++) sd[j]! += (reference[i * dim + j]! - mean[j]!) ** 2;
  for (let j = 0; j < dim; j++) sd[j] = Math.sqrt(sd[j]! / (nA - 1)) || 1;
  const N = nA + nB;
  const X = new Float32Array(N * dim);
  const Y = new Float32Array(N);
  for (let i = 0; i < N; i++) {
    const src = i < nA ? reference : other;
    const r = i < nA ? i : i - nA;
    for (let j = 0; j < dim; j++) X[i * dim + j] = (src[r * dim + j]! - mean[j]!) / sd[j]!;
    Y[i] = i < nA ? 0 : 1;
  }
  const xAll = np.array(X, { dtype: "float32" }).reshape([N, dim]);
  const yAll = np.array(Y, { dtype: "float32" });

  const hidden = 10 * dim;
  const net = featurizers.mlp({
    dimIn: dim,
    hidden: [hidden, hidden],
    dimOut: 1,
    activation: "relu",
  });
  const logits = (p: Params, x: NdArray) => net.apply(p as never, x).reshape([x.shape[0]!]);
  const foldLoss = (p: Params, x: NdArray, y: NdArray) => {
    const z = logits(p, x);
    // Binary cross-entropy with logits: softplus(z) − y·z.
    const bce = np.mean(np.softplus(z).sub(y.mul(z)));
    let penalty: NdArray = np.array(0, { dtype: "float32" });
    for (const layer of p.layers) penalty = penalty.add(np.sum(np.square(layer.weight)));
    return bce.add(penalty.mul((0.5 * l2) / x.shape[0]!));
  };
  // All folds train at once: parameters stacked on a leading fold axis, the per-fold loss mapped
  // with vmap and summed. The folds share no parameter, so the gradient of the sum is each fold's
  // own gradient, and Adam (elementwise, one step count for all) is each fold's own Adam.
  const perFold = vmap(foldLoss);
  const total = (p: Params, x: NdArray, y: NdArray) => {
    const losses = perFold(p, x, y);
    return [np.sum(losses), losses] as const;
  };
  const optimizer = optim.adam(lr);
  const step = jit(
    (p: Params, s: optim.AdamState<Params>, xs: NdArray, ys: NdArray, idx: NdArray) => {
      // idx: [folds, batch] rows of the pooled data.
      const x = np.take(xs, idx.reshape([-1]), 0).reshape([idx.shape[0]!, idx.shape[1]!, dim]);
      const y = np.take(ys, idx.reshape([-1]), 0).reshape([idx.shape[0]!, idx.shape[1]!]);
      const [[, losses], grads] = valueAndGrad((q: Params) => total(q, x, y), { hasAux: true })(p);
      const { updates, state } = optimizer.update<Params>(grads, s, p);
      return [optim.applyUpdates(p, updates), state, losses] as const;
    },
    { donateArgnums: [1] },
  );
  const predict = jit((p: Params, xs: NdArray, idx: NdArray) => logits(p, np.take(xs, idx, 0)));

  // Shuffled K-fold split.
  const rng = new Rng(seed, 77);
  const order = shuffled(N, rng);
  const bounds = Array.from({ length: nFolds + 1 }, (_, f) => Math.floor((f * N) / nFolds));
  const tests = Array.from({ length: nFolds }, (_, f) => order.slice(bounds[f]!, bounds[f + 1]!));
  const trains = Array.from({ length: nFolds }, (_, f) =>
    Int32Array.from([...order.slice(0, bounds[f]!), ...order.slice(bounds[f + 1]!)]),
  );
  const keys = random.splitList(random.key(seed), nFolds);
  const inits = keys.map((k) => net.init(k) as unknown as Params);
  let params = tree.map(
    (...leaves: unknown[]) => np.stack(leaves as NdArray[]),
    inits[0],
    ...inits.slice(1),
  ) as Params;
  let state = optimizer.init(params);
  const minTrain = Math.min(...trains.map((t) => t.length));
  const batch = Math.min(batchSize, minTrain);
  const steps = Math.floor(minTrain / batch);
  const best = new Array(nFolds).fill(Number.POSITIVE_INFINITY);
  const noImprove = new Array(nFolds).fill(0);
  const epochsPerFold = new Array(nFolds).fill(maxEpochs);
  const kept: (Params | null)[] = new Array(nFolds).fill(null);
  const foldParams = (p: Params, f: number) =>
    tree.map((leaf: unknown) => np.take(leaf as NdArray, f, 0), p) as Params;
  for (let epoch = 0; epoch < maxEpochs && kept.some((k) => k === null); epoch++) {
    const perms = trains.map((t) => shuffled(t.length, rng));
    const values: NdArray[] = [];
    for (let s = 0; s < steps; s++) {
      const idx = new Int32Array(nFolds * batch);
      for (let f = 0; f < nFolds; f++)
        for (let b = 0; b < batch; b++) idx[f * batch + b] = trains[f]![perms[f]![s * batch + b]!]!;
      const [p, st, losses] = step(
        params,
        state,
        xAll,
        yAll,
        np.array(idx, { dtype: "int32" }).reshape([nFolds, batch]),
      );
      params = p as Params;
      state = st;
      values.push(losses);
    }
    const epochLoss = new Array(nFolds).fill(0);
    for (const v of values) {
      const d = await v.data();
      for (let f = 0; f < nFolds; f++) epochLoss[f] += d[f]! / values.length;
    }
    for (let f = 0; f < nFolds; f++) {
      if (kept[f] !== null) continue;
      // scikit-learn's rule: count epochs whose loss is not below best − tol.
      if (epochLoss[f] > best[f] - tol) noImprove[f]++;
      else noImprove[f] = 0;
      if (epochLoss[f] < best[f]) best[f] = epochLoss[f];
      if (noImprove[f] >= patience) {
        kept[f] = foldParams(params, f); // this fold stops here; the others train on
        epochsPerFold[f] = epoch + 1;
      }
    }
  }
  const foldAccuracy: number[] = [];
  for (let f = 0; f < nFolds; f++) {
    const p = kept[f] ?? foldParams(params, f);
    const test = tests[f]!;
    let correct = 0;
    for (let i = 0; i < test.length; i += 4096) {
      const idx = test.slice(i, i + 4096);
      const z = (await predict(p, xAll, np.array(idx, { dtype: "int32" })).data()) as Float32Array;
      for (let k = 0; k < idx.length; k++) if ((z[k]! > 0 ? 1 : 0) === Y[idx[k]!]) correct++;
    }
    foldAccuracy.push(correct / test.length);
  }
  return {
    accuracy: foldAccuracy.reduce((a, b) => a + b, 0) / nFolds,
    foldAccuracy,
    epochs: epochsPerFold,
    seconds: (performance.now() - t0) / 1000,
  };
}

function shuffled(n: number, rng: Rng): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = p[i]!;
    p[i] = p[j]!;
    p[j] = t;
  }
  return p;
}
