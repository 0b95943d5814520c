/**
 * One registry of bijector constructors: every entry gets every law in laws.test.ts. An entry says
 * its event size, the interval its forward map's inputs are drawn from, and (when conditional) its
 * context size. Add a bijector here and it is property-tested for free.
 */

import * as bij from "../../src/bijectors/index.js";
import type { Array } from "../../src/index.js";
import { np, random } from "../../src/index.js";

type Dtype = "float32" | "float64";

export interface RegistryEntry {
  name: string;
  dim: number;
  /** Forward-domain interval of each input coordinate. */
  domain: [number, number];
  contextDim?: number;
  /** Also check chain([this, this]) (needs the image inside the domain). */
  selfComposable?: boolean;
  make(dtype: Dtype): bij.Bijector;
}

const arr = (v: number[], dtype: Dtype) => np.array(v, { dtype });

function madeAffine(dtype: Dtype, contextDim: number, seed: number) {
  const m = bij.made({ nDims: 3, hidden: [8, 8], nParams: 2, contextDim });
  const p = m.init(random.key(seed), { dtype });
  return bij.maskedAutoregressive((y, c) => m.apply(p, y, c), bij.affineTransformer());
}

function madeSpline(dtype: Dtype, seed: number) {
  const t = bij.rationalQuadraticSpline({ bins: 4, bound: 3 });
  const m = bij.made({ nDims: 3, hidden: [8], nParams: t.nParams });
  // Scale the raw outputs up so bins differ markedly (orthogonal init gives O(1) values).
  const p = m.init(random.key(seed), { dtype });
  return bij.maskedAutoregressive((y) => np.mul(m.apply(p, y), 2), t);
}

export const registry: RegistryEntry[] = [
  {
    name: "shift",
    dim: 3,
    domain: [-4, 4],
    selfComposable: true,
    make: (d) => bij.shift(arr([0.5, -1.2, 2], d)),
  },
  {
    name: "scale",
    dim: 3,
    domain: [-4, 4],
    selfComposable: true,
    make: (d) => bij.scale(arr([2, -0.5, 1.5], d)),
  },
  {
    name: "affine",
    dim: 3,
    domain: [-4, 4],
    selfComposable: true,
    make: (d) => bij.affine(arr([0.5, -1, 0], d), arr([0.3, -0.7, 1.1], d)),
  },
  {
    name: "clampedAffine (hard)",
    dim: 3,
    domain: [-4, 4],
    make: (d) => bij.clampedAffine(arr([0.5, -1, 0], d), arr([-3, 0.3, 2], d)),
  },
  {
    name: "clampedAffine (soft)",
    dim: 3,
    domain: [-4, 4],
    make: (d) =>
      bij.clampedAffine(arr([0.5, -1, 0], d), arr([-3, 0.3, 2], d), {
        mode: "soft",
        clamp: [-2, 1],
      }),
  },
  { name: "exp", dim: 2, domain: [-3, 3], make: () => bij.exp() },
  { name: "softplus", dim: 2, domain: [-5, 5], selfComposable: true, make: () => bij.softplus() },
  { name: "sigmoid", dim: 2, domain: [-5, 5], selfComposable: true, make: () => bij.sigmoid() },
  { name: "logit", dim: 2, domain: [0.02, 0.98], make: () => bij.logit() },
  { name: "tanh", dim: 2, domain: [-3, 3], selfComposable: true, make: () => bij.tanh() },
  {
    name: "bounded",
    dim: 2,
    domain: [-5, 5],
    make: (d) => bij.bounded(arr([-2, 0], d), arr([5, 0.1], d)),
  },
  {
    name: "invert(bounded)",
    dim: 2,
    domain: [-1.9, 4.9],
    make: (d) => bij.invert(bij.bounded(arr([-2], d), arr([5], d))),
  },
  {
    name: "permute",
    dim: 4,
    domain: [-3, 3],
    selfComposable: true,
    make: () => bij.permute([2, 0, 3, 1]),
  },
  { name: "reverse", dim: 3, domain: [-3, 3], selfComposable: true, make: () => bij.reverse() },
  {
    name: "chain([affine, tanh, permute])",
    dim: 3,
    domain: [-3, 3],
    make: (d) =>
      bij.chain([
        bij.affine(arr([1, 0, -1], d), arr([0.2, 0, -0.4], d)),
        bij.tanh(),
        bij.permute([1, 2, 0]),
      ]),
  },
  {
    name: "blockwise([exp, sigmoid])",
    dim: 3,
    domain: [-3, 3],
    make: () => bij.blockwise([bij.exp(), bij.sigmoid()], [1, 2]),
  },
  {
    name: "conditional affine",
    dim: 2,
    domain: [-3, 3],
    contextDim: 2,
    make: (d) => {
      const w = np.array(
        [
          [0.5, -1],
          [2, 0.3],
        ],
        { dtype: d },
      );
      return bij.conditional((c: Array) => bij.affine(np.matmul(c, w), np.tanh(np.matmul(c, w))));
    },
  },
  {
    name: "maskedAutoregressive(MADE, affine)",
    dim: 3,
    domain: [-3, 3],
    make: (d) => madeAffine(d, 0, 1),
  },
  {
    name: "maskedAutoregressive(MADE with context, affine)",
    dim: 3,
    domain: [-3, 3],
    contextDim: 2,
    make: (d) => madeAffine(d, 2, 2),
  },
  {
    name: "maskedAutoregressive(MADE, spline)",
    dim: 3,
    domain: [-4, 4],
    make: (d) => madeSpline(d, 3),
  },
  {
    name: "maf bijector (2 blocks, nMog 1)",
    dim: 3,
    domain: [-3, 3],
    contextDim: 2,
    make: (d) => {
      const flow = bij.maf({ nDims: 3, flowHidden: 8, numBlocks: 2, contextDim: 2, permSeed: 7 });
      return flow.bijector(flow.init(random.key(4), { dtype: d }));
    },
  },
  {
    name: "nsf bijector (2 blocks)",
    dim: 2,
    domain: [-6, 6],
    make: (d) => {
      const flow = bij.nsf({ nDims: 2, flowHidden: 8, numBlocks: 2, bins: 4, bound: 4 });
      return flow.bijector(flow.init(random.key(5), { dtype: d }));
    },
  },
];
