/**
 * The whole sine run (nbi's example and budget: 3 rounds × 320 simulations, batch 32): fit and
 * predict wall time, final-round efficiency and predict's n_eff, medians over seeds, per backend
 * and featurizer. nbi 0.4.1's figures on this problem (PyTorch 1.13, 2 threads, a 2-core machine
 * like ours; from the engine issue): fit 14.8 s, predict 0.25 s, final-round efficiency ≈ 5%.
 *
 * Usage: npm run bench:sine [-- --seeds 0,1,2 --featurizers mlp,resnet-gru --backends cpu,webgpu
 *        --epochs 60 --gpu-epochs 5]
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  flow,
  mlpFeaturizer,
  NOISE_SIGMA,
  observation,
  priors,
  resnetGruFeaturizer,
  sine,
} from "../examples/sine-model.js";
import { NBI, np } from "../src/index.js";
import type { ProposalKind, SequentialLoss } from "../src/inference/snpe.js";

const { values } = parseArgs({
  options: {
    seeds: { type: "string", default: "0,1,2" },
    featurizers: { type: "string", default: "mlp" },
    backends: { type: "string", default: "cpu,webgpu" },
    epochs: { type: "string", default: "60" },
    // lavapipe emulates a GPU on the CPU: a full run there takes many minutes, so fewer epochs.
    "gpu-epochs": { type: "string", default: "5" },
    // Sequential loss/proposal[/flowSpace] to compare (RoundOptions), e.g. nll/surrogate/theta.
    methods: { type: "string", default: "auto/auto" },
  },
});

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function runOnce(
  seed: number,
  featurizer: string,
  backend: "cpu" | "webgpu",
  nEpochs: number,
  method: string,
) {
  const [loss, proposal, flowSpace = "unbounded"] = method.split("/") as [
    SequentialLoss,
    ProposalKind,
    "unbounded" | "theta",
  ];
  const xObs = observation(seed);
  const path = mkdtempSync(join(os.tmpdir(), "nbi-bench-sine-"));
  try {
    const engine = new NBI({
      flow,
      featurizer: featurizer === "resnet-gru" ? resnetGruFeaturizer : mlpFeaturizer,
      simulator: sine,
      priors,
      path,
      seed,
      backend,
    });
    const t0 = performance.now();
    const fit = await engine.fit({
      xObs,
      nSims: 320,
      nRounds: 3,
      nEpochs,
      batchSize: 32,
      noise: NOISE_SIGMA,
      progress: false,
      loss,
      proposal,
      flowSpace,
    });
    const fitS = (performance.now() - t0) / 1000;
    const t1 = performance.now();
    const post = await engine.predict(xObs, { xErr: NOISE_SIGMA, nSamples: 1000 });
    const predictS = (performance.now() - t1) / 1000;
    return { fitS, predictS, efficiency: fit.history.at(-1)!.efficiency!, ess: post.ess };
  } finally {
    rmSync(path, { recursive: true, force: true });
  }
}

console.log(
  `sine run (fit + predict) — ${os.cpus()[0]?.model ?? "cpu"} × ${os.cpus().length}, Node ${process.version}`,
);
console.log(
  "nbi 0.4.1 reference (PyTorch 1.13, 2 threads): fit 14.8 s, predict 0.25 s, final-round efficiency ≈ 5%\n",
);
console.log(
  `${"backend".padEnd(8)} ${"featurizer".padEnd(11)} ${"loss/proposal".padEnd(22)} ${"epochs".padStart(6)} ${"seeds".padStart(5)} ${"fit s".padStart(7)} ${"predict s".padStart(9)} ${"final eff".padStart(9)} ${"predict n_eff/1000".padStart(18)}`,
);
const seeds = values.seeds.split(",").map(Number);
for (const backend of values.backends.split(",") as ("cpu" | "webgpu")[]) {
  if (backend === "webgpu") {
    try {
      await np.useBackend("webgpu");
    } catch (e) {
      console.log(`webgpu skipped: ${(e as Error).message.split("\n")[0]}`);
      continue;
    }
  }
  for (const [featurizer, method] of values.featurizers
    .split(",")
    .flatMap((f) => values.methods.split(",").map((m) => [f, m] as const))) {
    const nEpochs = Number(backend === "webgpu" ? values["gpu-epochs"] : values.epochs);
    const runSeeds = backend === "webgpu" ? seeds.slice(0, 1) : seeds;
    const runs = [];
    for (const seed of runSeeds)
      runs.push(await runOnce(seed, featurizer, backend, nEpochs, method));
    console.log(
      `${backend.padEnd(8)} ${featurizer.padEnd(11)} ${method.padEnd(22)} ${String(nEpochs).padStart(6)} ${String(runSeeds.length).padStart(5)} ` +
        `${median(runs.map((r) => r.fitS))
          .toFixed(2)
          .padStart(7)} ${median(runs.map((r) => r.predictS))
          .toFixed(2)
          .padStart(9)} ` +
        `${`${(100 * median(runs.map((r) => r.efficiency))).toFixed(1)}%`.padStart(9)} ${median(
          runs.map((r) => r.ess),
        )
          .toFixed(0)
          .padStart(18)}`,
    );
  }
}
