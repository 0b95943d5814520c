/**
 * The engine on every backend: a two-round SNPE-IS fit and predict on the line problem run on the
 * CPU and on WebGPU (where an adapter exists) and agree to float32 rounding. Host-side numerics
 * (priors, weights, the store) are backend-independent; the network trains on the backend.
 */
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { np } from "../../src/index.js";
import { NBI } from "../../src/inference/engine.js";
import { normal, uniform } from "../../src/inference/priors.js";
import { testBackends } from "../helpers/backends.js";
import { tempDirs } from "../helpers/temp-dirs.js";

const T = Array.from({ length: 8 }, (_, i) => i / 7);
const line = (th: ArrayLike<number>) => Float64Array.from(T, (t) => th[0]! + th[1]! * t);
const xObs = T.map((t) => 0.3 + 1.1 * t);
const root = tempDirs("nbi-backends-")();
afterAll(async () => {
  await np.useBackend("cpu");
});

async function run(backend: "cpu" | "webgpu") {
  const engine = new NBI({
    flow: { nDims: 2, flowHidden: 16, numBlocks: 2 },
    featurizer: { type: "mlp", dimIn: 8, dimOut: 8, hidden: [16] },
    simulator: line,
    priors: { a: normal(0, 1), b: uniform(-2, 2) },
    path: join(root, backend),
    seed: 3,
    backend,
  });
  const fit = await engine.fit({
    xObs,
    nSims: 64,
    nRounds: 2,
    nEpochs: 2,
    batchSize: 16,
    noise: 0.2,
    progress: false,
  });
  // The surrogate's own draws and weights: adaptive stages refit a mixture to the weights, so on a
  // two-epoch toy fit whose weights rest on a draw or two, float32 rounding on another backend
  // sends them down other paths (the stages themselves run on the host, backend-free).
  const post = await engine.predict(xObs, { xErr: 0.2, nSamples: 200, adapt: false });
  return { fit, post };
}

describe("the NBI engine on each backend", () => {
  it.each(testBackends())("fits and predicts on %s like on the CPU", async (backend) => {
    const cpu = await run("cpu");
    const other = backend === "cpu" ? cpu : await run(backend);
    const losses = (r: typeof cpu) => r.fit.history.flatMap((h) => h.epochs.map((e) => e.valLoss));
    losses(other).forEach((l, i) => {
      expect(l).toBeCloseTo(losses(cpu)[i]!, 3);
    });
    other.fit.essHistory.forEach((e, i) => {
      expect(e).toBeCloseTo(cpu.fit.essHistory[i]!, 2);
    });
    expect(other.post.ess).toBeCloseTo(cpu.post.ess, 1);
  });
});
