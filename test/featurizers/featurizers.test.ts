/**
 * Featurizer behaviour beyond the golden values: output shapes for lengths that are not powers of
 * two and for one unbatched example, multi-channel input, nbi's channel schedule and defaults from
 * the registry, `vmap(apply)` equal to the batched call, `jit(apply)` equal to apply, custom
 * featurizers, weight-norm initialisation, and the errors for unknown keys and impossible values.
 */
import { describe, expect, it } from "vitest";
import * as featurizers from "../../src/featurizers/index.js";
import { type Array as NbiArray, NbiError, np, random, tree, vmap } from "../../src/index.js";
import { jit } from "../../src/transforms/jit.js";
import { testBackends, useTestBackend } from "../helpers/backends.js";
import { assertClose, rand } from "../helpers/finite-diff.js";

const f32 = (shape: number[], seed: number) => rand(shape, seed, { dtype: "float32" });

const small = {
  "resnet-gru": { type: "resnet-gru", dimIn: 2, dimOut: 5, depth: 3, dimConvMin: 4, dimConvMax: 8 },
  resnet: { type: "resnet", dimIn: 2, dimOut: 5, depth: 3, dimConvMin: 4, dimConvMax: 8 },
  gru: { type: "gru", dimIn: 2, dimOut: 5, dimHidden: 6 },
} as const;

describe.each(testBackends())("featurizers (%s)", (backend) => {
  useTestBackend(backend);

  for (const [name, config] of Object.entries(small)) {
    it(`${name}: batch × channels × length → batch × dimOut for lengths 13, 37 and 50`, async () => {
      const f = featurizers.fromConfig(config);
      const params = f.init(random.key(0));
      for (const length of [13, 37, 50]) {
        const y = f.apply(params, f32([3, 2, length], length));
        expect(y.shape).toEqual([3, 5]);
        expect(y.dtype).toBe("float32");
        expect(Array.from(await y.data()).every(Number.isFinite)).toBe(true);
      }
      // One example without the batch axis.
      expect(f.apply(params, f32([2, 21], 1)).shape).toEqual([5]);
    });

    it(`${name}: vmap(apply) over examples equals the batched call`, async () => {
      const f = featurizers.fromConfig(config);
      const params = f.init(random.key(1));
      const x = f32([4, 2, 19], 2);
      const batched = f.apply(params, x);
      const mapped = vmap((xi: NbiArray) => f.apply(params, xi))(x);
      expect(mapped.shape).toEqual(batched.shape);
      assertClose(await mapped.data(), await batched.data(), { rtol: 1e-5, atol: 1e-6 }, "vmap");
      // And per example, one at a time.
      const first = f.apply(params, np.index(x, 0));
      assertClose(
        await first.data(),
        await np.index(batched, 0).data(),
        { rtol: 1e-5, atol: 1e-6 },
        "x[0]",
      );
      // vmap over parameters too (an ensemble of networks).
      const keys = random.split(random.key(2), 2);
      const ensemble = vmap((k: NbiArray) => f.init(k))(keys);
      const outs = vmap((p: unknown) => f.apply(p, x))(ensemble);
      expect(outs.shape).toEqual([2, 4, 5]);
      const second = f.apply(
        tree.map((l: NbiArray) => np.index(l, 1), ensemble as never),
        x,
      );
      assertClose(
        await np.index(outs, 1).data(),
        await second.data(),
        { rtol: 1e-5, atol: 1e-6 },
        "ensemble",
      );
    });

    it(`${name}: jit(apply) equals apply`, async () => {
      const f = featurizers.fromConfig(config);
      const params = f.init(random.key(3));
      const jitted = jit(f.apply);
      const x = f32([2, 2, 17], 4);
      assertClose(
        await jitted(params, x).data(),
        await f.apply(params, x).data(),
        { rtol: 1e-6, atol: 1e-6 },
        "jit",
      );
      jitted(params, f32([2, 2, 17], 5));
      expect(jitted.cacheInfo().hits).toBe(1);
    });
  }

  it("mlp: [batch, dimIn] and flattened [batch, channels, length]", async () => {
    const f = featurizers.fromConfig({ type: "mlp", dimIn: 12, dimOut: 3, hidden: [8] });
    const p = f.init(random.key(0));
    const x = f32([5, 2, 6], 1);
    const y = f.apply(p, x);
    expect(y.shape).toEqual([5, 3]);
    assertClose(
      await y.data(),
      await f.apply(p, np.reshape(x, [5, 12])).data(),
      { rtol: 0, atol: 0 },
      "flat",
    );
    const mapped = vmap((xi: NbiArray) => f.apply(p, xi))(np.reshape(x, [5, 12]));
    assertClose(await mapped.data(), await y.data(), { rtol: 1e-6, atol: 1e-6 }, "vmap");
  });

  it("the nbi default config builds nbi's channel schedule and parameter shapes", () => {
    const f = featurizers.fromConfig({ type: "resnet-gru", dimIn: 1, depth: 5 });
    const p = f.init(random.key(0)) as featurizers.ResNetGruParams;
    expect(f.dimOut).toBe(256); // dimOut defaults to the last stage's channels (nbi's -1)
    const blocks = p.trunk.blocks as readonly {
      conv1: { v: NbiArray };
      conv2: { v: NbiArray };
      skip?: unknown;
    }[];
    expect(blocks.length).toBe(10); // nLayer 2 blocks × depth 5 stages
    expect(blocks.map((b) => b.conv2.v.shape[0])).toEqual([
      32, 32, 64, 64, 128, 128, 256, 256, 256, 256,
    ]);
    expect(blocks.map((b) => b.skip !== undefined)).toEqual([
      true,
      false,
      true,
      false,
      true,
      false,
      true,
      false,
      false,
      false,
    ]);
    expect(blocks[0]!.conv1.v.shape).toEqual([32, 1, 3]);
    expect(p.gru.layers.length).toBe(2);
    expect(p.gru.layers[0]!.weightIh.shape).toEqual([768, 256]);
    expect(p.head.weight.shape).toEqual([256, 256]);
    // Multi-channel input: flux and error.
    const two = featurizers.fromConfig({
      type: "resnet",
      dimIn: 2,
      depth: 2,
      dimOut: 7,
      dimConvMin: 4,
      dimConvMax: 8,
    });
    expect(two.apply(two.init(random.key(1)), f32([3, 2, 10], 3)).shape).toEqual([3, 7]);
  });

  it("weightNorm initialises g = ‖v‖ per output channel, so the weight starts as v", async () => {
    const conv = featurizers.conv1d({ inChannels: 3, outChannels: 4, kernel: 3 });
    const p = featurizers.weightNorm(conv).init(random.key(5));
    const w = featurizers.weightFromNorm(p.g, p.v);
    assertClose(await w.data(), await p.v.data(), { rtol: 1e-6, atol: 1e-7 }, "w = v at init");
    // PyTorch's default bound 1/√(fan_in) for the direction.
    const bound = 1 / Math.sqrt(9);
    expect(Array.from(await p.v.data()).every((v) => Math.abs(v) <= bound)).toBe(true);
  });

  it("batch norm resnet runs and depends on the batch (training-mode statistics)", () => {
    const f = featurizers.fromConfig({ ...small.resnet, norm: "batch_norm" });
    const p = f.init(random.key(0));
    expect(f.apply(p, f32([3, 2, 12], 1)).shape).toEqual([3, 5]);
  });

  it("custom featurizers: any { init, apply, dimOut } goes where a config would", () => {
    const custom = featurizers.custom({
      dimOut: 2,
      init: (key: NbiArray) => ({ w: random.normal(key, [3, 2]) }),
      apply: (p: { w: NbiArray }, x: NbiArray) => np.matmul(np.mean(x, { axis: -1 }), p.w),
    });
    const f = featurizers.resolve(custom);
    const p = f.init(random.key(0));
    expect(f.apply(p, f32([4, 3, 9], 1)).shape).toEqual([4, 2]);
    expect(featurizers.resolve({ type: "gru", dimIn: 1, dimOut: 2, dimHidden: 3 }).dimOut).toBe(2);
    expect(() => featurizers.custom({ dimOut: 2, init: () => ({}) } as never)).toThrow(
      /featurizer\.apply/,
    );
    expect(() =>
      featurizers.custom({ dimOut: 0, init: () => ({}), apply: () => np.zeros([1]) }),
    ).toThrow(/featurizer\.dimOut/);
  });

  it("defaults depth by the rule of thumb when only the length is given", () => {
    expect(featurizers.defaultDepth(1000)).toBe(5);
    expect(featurizers.defaultDepth(50)).toBe(1);
    expect(featurizers.defaultDepth(4)).toBe(1);
    const f = featurizers.fromConfig({
      type: "resnet",
      dimIn: 1,
      length: 256,
      dimConvMin: 2,
      dimConvMax: 4,
    });
    // depth 3 → 4 channels in the last stage → default dimOut 4
    expect(f.dimOut).toBe(4);
  });
});

describe("featurizer config errors", () => {
  const throwsNaming = (config: unknown, pattern: RegExp) => {
    let error: unknown;
    try {
      featurizers.fromConfig(config as featurizers.FeaturizerConfig);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(NbiError);
    expect((error as Error).message).toMatch(pattern);
  };

  it("refuses unknown keys, naming them (with a hint for nbi's snake_case)", () => {
    throwsNaming(
      { type: "resnet-gru", dimIn: 1, depth: 3, dim_conv_min: 16 },
      /config\.dim_conv_min.*did you mean dimConvMin/,
    );
    throwsNaming(
      { type: "resnet-gru", dimIn: 1, depth: 3, dropout: 0.1 },
      /config\.dropout is not a key/,
    );
    throwsNaming(
      { type: "gru", dimIn: 1, dimOut: 2, dimHidden: 3, kernel: 3 },
      /config\.kernel is not a key of a "gru"/,
    );
    throwsNaming({ type: "mlp", dimIn: 1, dimOut: 2, nRnn: 2 }, /config\.nRnn/);
  });

  it("refuses impossible values, naming the key and why", () => {
    throwsNaming({ type: "transformer", dimIn: 1 }, /config\.type/);
    throwsNaming(null, /config expected an object/);
    throwsNaming(
      { type: "resnet", dimIn: 1, depth: 8, length: 100 },
      /config\.depth 8 pools a sequence of length 100 below length 1/,
    );
    throwsNaming({ type: "resnet", dimIn: 1 }, /config\.depth .*required/);
    throwsNaming(
      { type: "resnet", dimIn: 0, depth: 2 },
      /config\.dimIn expected a positive integer, got 0/,
    );
    throwsNaming(
      { type: "resnet", dimIn: 1, depth: 2.5 },
      /config\.depth expected a positive integer/,
    );
    throwsNaming(
      { type: "resnet", dimIn: 1, depth: 2, kernel: 4 },
      /config\.kernel expected an odd/,
    );
    throwsNaming({ type: "resnet", dimIn: 1, depth: 2, norm: "layer_norm" }, /config\.norm/);
    throwsNaming(
      { type: "resnet", dimIn: 1, depth: 2, dimConvMin: 64, dimConvMax: 32 },
      /config\.dimConvMax expected at least config\.dimConvMin \(64\)/,
    );
    throwsNaming({ type: "gru", dimIn: 1, dimOut: 2 }, /config\.dimHidden/);
    throwsNaming(
      { type: "gru", dimIn: 1, dimOut: 2, dimHidden: 3, depth: 2, nRnn: 3 },
      /config\.depth \(2\) and config\.nRnn \(3\)/,
    );
    throwsNaming({ type: "mlp", dimIn: 3, dimOut: 2, hidden: [4, -1] }, /config\.hidden\[1\]/);
  });

  it("apply refuses a sequence that depth pools below length 1, and wrong channels", () => {
    const f = featurizers.fromConfig(small["resnet-gru"]);
    const p = f.init(random.key(0));
    expect(() => f.apply(p, f32([1, 2, 3], 0))).toThrow(
      /depth 3 pools a sequence of length 3 below length 1/,
    );
    expect(() => f.apply(p, f32([1, 3, 30], 0))).toThrow(NbiError);
    expect(() => f.apply(p, f32([1, 3, 30], 0))).toThrow(/x expected \[batch, 2, length\]/);
  });
});
