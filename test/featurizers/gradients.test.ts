/**
 * Gradients of every network with respect to its parameters against central finite differences,
 * in float64 on small sizes: for each parameter leaf, ⟨∂L/∂leaf, t⟩ equals the directional
 * derivative of L along a random t on that leaf (so every leaf of the pytree is checked), with
 * L = Σ apply(params, x) ⊙ ct. float64 exists on the CPU backend only.
 */
import { describe, expect, it } from "vitest";
import * as featurizers from "../../src/featurizers/index.js";
import { grad, type Array as NbiArray, np, random, tree } from "../../src/index.js";
import { useTestBackend } from "../helpers/backends.js";
import { assertClose, dotWithScale, rand, values } from "../helpers/finite-diff.js";

interface Net {
  init(key: NbiArray, options?: featurizers.InitOptions): unknown;
  apply(params: never, x: NbiArray): NbiArray;
}

function checkParamGradients(net: Net, xShape: number[], seed: number): number {
  const params = net.init(random.key(seed), { dtype: "float64" });
  const x = rand(xShape, seed + 1);
  const out = net.apply(params as never, x);
  const ct = rand(out.shape, seed + 2);
  const loss = (p: unknown) => np.sum(np.mul(net.apply(p as never, x), ct));
  const g = grad(loss)(params);
  const [leaves, def] = tree.flatten<NbiArray>(params);
  const gLeaves = tree.leaves<NbiArray>(g);
  expect(gLeaves.length).toBe(leaves.length);
  const h = 1e-6;
  leaves.forEach((leaf, i) => {
    expect(gLeaves[i]!.shape, `leaf ${tree.paths(params)[i]} gradient shape`).toEqual(leaf.shape);
    const t = rand(leaf.shape, seed + 100 + i);
    const shifted = (sign: number) =>
      tree.unflatten(
        def,
        leaves.map((l, j) => (j === i ? np.add(l, np.mul(t, sign * h)) : l)),
      );
    const numeric = (loss(shifted(1)).item() - loss(shifted(-1)).item()) / (2 * h);
    const [analytic, scale] = dotWithScale(values(gLeaves[i]!), values(t));
    assertClose(
      [analytic],
      [numeric],
      { rtol: 1e-5, atol: 1e-7 * Math.max(1, scale) },
      `d loss / d ${tree.paths(params)[i]}`,
    );
  });
  return leaves.length;
}

describe("featurizer parameter gradients vs finite differences (cpu, float64)", () => {
  useTestBackend("cpu");

  it("linear, conv1d and weightNorm layers", () => {
    checkParamGradients(featurizers.linear({ dimIn: 3, dimOut: 2 }), [4, 3], 1);
    checkParamGradients(
      featurizers.weightNorm(featurizers.conv1d({ inChannels: 2, outChannels: 3, kernel: 3 })),
      [2, 2, 5],
      2,
    );
  });

  it("mlp", () => {
    const n = checkParamGradients(
      featurizers.mlp({ dimIn: 4, hidden: [5, 3], dimOut: 2, activation: "tanh" }),
      [3, 4],
      3,
    );
    expect(n).toBe(6);
  });

  it("resnet1d with weight norm and with batch norm (non-power-of-two length)", () => {
    const options = { dimIn: 2, dimOut: 3, depth: 2, dimConvMin: 2, dimConvMax: 4 } as const;
    checkParamGradients(featurizers.resnet1d(options), [2, 2, 7], 4);
    checkParamGradients(featurizers.resnet1d({ ...options, norm: "batch_norm" }), [3, 2, 6], 5);
  });

  it("gru (two layers)", () => {
    checkParamGradients(featurizers.gru({ dimIn: 2, dimHidden: 3, nLayers: 2 }), [2, 2, 5], 6);
  });

  it("resnetGru", () => {
    const n = checkParamGradients(
      featurizers.resnetGru({
        dimIn: 1,
        dimOut: 2,
        depth: 2,
        dimConvMin: 2,
        dimConvMax: 3,
        nLayer: 1,
        nRnn: 2,
      }),
      [2, 1, 9],
      7,
    );
    // 2 blocks × (2 convs × {g, v, bias} + skip {weight, bias}) + 2 GRU layers × 4 + head 2.
    expect(n).toBe(2 * 8 + 8 + 2);
  });

  it("the input gradient of resnetGru by finite differences too", () => {
    const net = featurizers.resnetGru({
      dimIn: 2,
      dimOut: 2,
      depth: 2,
      dimConvMin: 2,
      dimConvMax: 2,
    });
    const params = net.init(random.key(8), { dtype: "float64" });
    const x = rand([1, 2, 6], 9);
    const ct = rand([1, 2], 10);
    const loss = (xx: NbiArray) => np.sum(np.mul(net.apply(params, xx), ct));
    const g = values(grad(loss)(x));
    const t = rand(x.shape, 11);
    const h = 1e-6;
    const numeric =
      (loss(np.add(x, np.mul(t, h))).item() - loss(np.sub(x, np.mul(t, h))).item()) / (2 * h);
    const [analytic, scale] = dotWithScale(g, values(t));
    assertClose([analytic], [numeric], { rtol: 1e-5, atol: 1e-7 * Math.max(1, scale) }, "d/dx");
  });
});
