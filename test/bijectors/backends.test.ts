/**
 * Flows and featurizers on every backend: log-prob, its gradient and a featurizer's forward pass
 * agree with the CPU (float32, read back asynchronously). Parameters are initialised on the CPU
 * (orthogonal initialisation reads values on the host) and moved with `np.toBackend`.
 */
import { beforeAll, describe, expect, it } from "vitest";
import * as bij from "../../src/bijectors/index.js";
import {
  type Array,
  type BackendName,
  featurizers,
  grad,
  np,
  random,
  tree,
} from "../../src/index.js";
import { testBackends } from "../helpers/backends.js";

async function values(t: unknown): Promise<number[]> {
  const out: number[] = [];
  for (const l of tree.leaves<Array>(t)) out.push(...globalThis.Array.from(await l.data()));
  return out;
}

async function moveTree<T>(t: T, backend: BackendName): Promise<T> {
  const [leaves, def] = tree.flatten<Array>(t);
  const moved = await Promise.all(leaves.map((l) => np.toBackend(l, backend)));
  return tree.unflatten(def, moved) as T;
}

function close(got: number[], want: number[], tol: number): void {
  expect(got.length).toBe(want.length);
  got.forEach((g, i) => {
    expect(Math.abs(g - want[i]!)).toBeLessThanOrEqual(tol * (1 + Math.abs(want[i]!)));
  });
}

describe.each(testBackends())("flows and featurizers agree with the CPU (%s)", (backend) => {
  beforeAll(async () => {
    await np.useBackend(backend); // acquires the device once
  });
  it("MAF (with context and a mixture block) and NSF: logProb and its gradient", async () => {
    await np.useBackend("cpu");
    const flows: [bij.Flow, number][] = [
      [bij.maf({ nDims: 3, flowHidden: 16, numBlocks: 2, contextDim: 4, nMog: 2 }), 3],
      [bij.nsf({ nDims: 2, flowHidden: 16, numBlocks: 2, contextDim: 4 }), 2],
    ];
    for (const [flow, dims] of flows) {
      const inputs = {
        params: flow.init(random.key(1)),
        theta: random.normal(random.key(2), [5, dims]),
        ctx: random.normal(random.key(3), [5, 4]),
      };
      const density = (t: typeof inputs) => [
        flow.logProb(t.params, t.theta, t.ctx),
        grad((p: typeof t.params) => np.sum(flow.logProb(p, t.theta, t.ctx)))(t.params),
      ];
      const want = await values(density(inputs));
      const got = await values(density(await moveTree(inputs, backend)));
      close(got, want, 2e-4);
    }
  });

  it("the ResNet-GRU featurizer's forward pass", async () => {
    await np.useBackend("cpu");
    const net = featurizers.resnetGru({
      dimIn: 1,
      dimOut: 8,
      depth: 2,
      dimConvMin: 4,
      dimConvMax: 8,
    });
    const inputs = { params: net.init(random.key(5)), x: random.normal(random.key(6), [3, 1, 20]) };
    const want = await values(net.apply(inputs.params, inputs.x));
    const moved = await moveTree(inputs, backend);
    close(await values(net.apply(moved.params, moved.x)), want, 2e-4);
  });
});
