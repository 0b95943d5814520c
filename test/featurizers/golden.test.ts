/**
 * Golden values from PyTorch (scripts/make-featurizer-fixtures.py, Debian's python3-torch): for
 * fixed weights and inputs, weight-normalised conv1d, nbi's residual block (1×1 and identity
 * skip, weight norm and batch norm), GRUs of one and two layers, and nbi's ResNet and ResNet-GRU
 * featurizers agree with torch's outputs and input gradients to float32 tolerance; and `jit` of
 * each apply agrees with the eager apply.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import * as featurizers from "../../src/featurizers/index.js";
import { grad, type Array as NbiArray, np, vjp } from "../../src/index.js";
import { jit } from "../../src/transforms/jit.js";
import { testBackends, useTestBackend } from "../helpers/backends.js";
import { assertClose } from "../helpers/finite-diff.js";

interface Stored {
  shape: number[];
  data: number[];
}
interface Case {
  params: unknown;
  x: Stored;
  ct: Stored;
  out: Stored;
  gradX: Stored;
  config: Record<string, unknown>;
}

const fixture = JSON.parse(
  readFileSync(new URL("../fixtures/featurizers/torch-golden.json", import.meta.url), "utf8"),
) as { torch: string; cases: Record<string, Case> };

const isStored = (v: unknown): v is Stored =>
  typeof v === "object" && v !== null && "shape" in v && "data" in v;

/** The stored tree with every {shape, data} leaf made a float32 array. */
function load(v: unknown): unknown {
  if (isStored(v)) return np.fromTypedArray(Float32Array.from(v.data), v.shape);
  if (Array.isArray(v)) return v.map(load);
  if (typeof v === "object" && v !== null) {
    return Object.fromEntries(Object.entries(v).map(([k, w]) => [k, load(w)]));
  }
  return v;
}

/** float32 against torch's float32: both round differently, so a few ulps of the largest value. */
async function expectClose(got: NbiArray, want: Stored, label: string): Promise<void> {
  expect(got.shape, `${label}: shape`).toEqual(want.shape);
  const scale = Math.max(1, ...want.data.map(Math.abs));
  assertClose(await got.data(), want.data, { rtol: 1e-4, atol: 2e-6 * scale }, label);
}

type Apply = (params: never, x: NbiArray) => NbiArray;

function network(name: string, c: Record<string, unknown>): Apply {
  const n = c as never;
  switch (name) {
    case "weightNormConv":
      return featurizers.weightNorm(
        featurizers.conv1d({ ...(c as unknown as featurizers.Conv1dLayerOptions), padding: 1 }),
      ).apply as Apply;
    case "resBlock":
    case "resBlockIdentitySkip":
    case "resBlockBatchNorm":
      return featurizers.resBlock(n).apply as Apply;
    case "gru1":
    case "gru2":
      return featurizers.gru(n).apply as Apply;
    case "resnetGru":
      return featurizers.resnetGru(n).apply as Apply;
    case "resnet":
      return featurizers.resnet1d(n).apply as Apply;
  }
  throw new Error(`no network for fixture case ${name}`);
}

describe.each(testBackends())(`featurizers against PyTorch ${fixture.torch} (%s)`, (backend) => {
  useTestBackend(backend);

  it("covers every network the issue names", () => {
    expect(Object.keys(fixture.cases).sort()).toEqual(
      [
        "gru1",
        "gru2",
        "resBlock",
        "resBlockBatchNorm",
        "resBlockIdentitySkip",
        "resnet",
        "resnetGru",
        "weightNormConv",
      ].sort(),
    );
  });

  for (const [name, c] of Object.entries(fixture.cases)) {
    it(`${name}: output and input gradient match torch`, async () => {
      const apply = network(name, c.config);
      const params = load(c.params) as never;
      const x = load(c.x) as NbiArray;
      const ct = load(c.ct) as NbiArray;
      const [out, pullback] = vjp((xx: NbiArray) => apply(params, xx), x);
      await expectClose(out, c.out, `${name} output`);
      await expectClose(pullback(ct)[0], c.gradX, `${name} input gradient`);
      // The same through grad of a scalar loss (its own code path).
      const gx = grad((xx: NbiArray) => np.sum(np.mul(apply(params, xx), ct)))(x);
      await expectClose(gx, c.gradX, `${name} grad`);
    });

    it(`${name}: jit(apply) equals apply, and grad through jit matches torch`, async () => {
      const apply = network(name, c.config);
      const params = load(c.params) as never;
      const x = load(c.x) as NbiArray;
      const ct = load(c.ct) as NbiArray;
      const jitted = jit(apply);
      const eager = apply(params, x);
      const compiled = jitted(params, x);
      assertClose(
        await compiled.data(),
        await eager.data(),
        { rtol: 1e-6, atol: 1e-6 },
        `${name} jit`,
      );
      const gx = grad((xx: NbiArray) => np.sum(np.mul(jitted(params, xx), ct)))(x);
      await expectClose(gx, c.gradX, `${name} grad of jit`);
    });
  }
});
