/**
 * The sine light-curve demo (`npm run demo`): SNPE-IS on nbi's example, 3 rounds × 320
 * simulations, then an importance-weighted posterior next to the true parameters.
 *
 * Options: --featurizer mlp|resnet-gru (default mlp), --epochs N (default 60), --seed N,
 * --backend cpu|webgpu|auto, --path DIR (default a fresh temporary folder).
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { inference, NBI, plots } from "../src/index.js";
import {
  flow,
  mlpFeaturizer,
  NOISE_SIGMA,
  observation,
  priors,
  resnetGruFeaturizer,
  sine,
  truth,
} from "./sine-model.js";

const { values } = parseArgs({
  options: {
    featurizer: { type: "string", default: "mlp" },
    epochs: { type: "string", default: "60" },
    seed: { type: "string", default: "0" },
    backend: { type: "string" },
    path: { type: "string" },
  },
});
const seed = Number(values.seed);

// The observation: the true light curve plus unit Gaussian noise, from a key of its own.
const xObs = observation(seed);

const engine = new NBI({
  flow,
  featurizer: values.featurizer === "resnet-gru" ? resnetGruFeaturizer : mlpFeaturizer,
  simulator: sine,
  priors,
  path: values.path ?? mkdtempSync(join(tmpdir(), "nbi-sine-")),
  seed,
  ...(values.backend ? { backend: values.backend as "cpu" | "webgpu" | "auto" } : {}),
});

console.log(`nbi sine demo: ${engine.prior.toString()}`);
console.log(`run folder ${engine.path}\n`);
const t0 = performance.now();
const fit = await engine.fit({
  xObs,
  nSims: 320,
  nRounds: 3,
  nEpochs: Number(values.epochs),
  batchSize: 32,
  noise: NOISE_SIGMA,
  onRound: (r) => {
    const eff =
      r.efficiency === undefined ? "" : `, efficiency ${(100 * r.efficiency).toFixed(1)}%`;
    console.log(
      `round ${r.round}: ${r.nSimulated} simulations, n_eff ${r.nEff?.toFixed(1) ?? "–"}${eff}, ` +
        `Pareto k̂ ${r.paretoK?.toFixed(2) ?? "–"}, best epoch ${r.bestEpoch} (val loss ${r.bestValLoss.toFixed(3)}), ` +
        // Later rounds: the loss "auto" (select) kept — APT, or NLL when it scored clearly higher.
        `${r.round > 0 ? `loss ${r.loss}, ` : ""}${(r.seconds.simulate + r.seconds.train).toFixed(1)} s`,
    );
  },
});
const fitSeconds = (performance.now() - t0) / 1000;
const t1 = performance.now();
const post = await engine.predict(xObs, { xErr: NOISE_SIGMA, nSamples: 2000 });
const predictSeconds = (performance.now() - t1) / 1000;

const { mean, std } = inference.weightedMoments(post.samples, post.weights, 3);
console.log(
  `\nfit ${fitSeconds.toFixed(1)} s (${fit.stopped}); predict ${predictSeconds.toFixed(2)} s`,
);
console.log(
  `predict: n_eff ${post.ess.toFixed(0)} of ${post.nSimulations} (efficiency ${(100 * post.efficiency).toFixed(1)}%), ` +
    `Pareto k̂ ${post.paretoK.toFixed(2)}, log evidence ${post.logEvidence.toFixed(2)} ± ${post.logEvidenceSe.toFixed(2)}`,
);
console.log("\nweighted posterior      truth");
engine.labels.forEach((label, j) => {
  const m = mean[j]!.toFixed(3).padStart(8);
  const s = std[j]!.toFixed(3).padEnd(6);
  console.log(`  ${label.padEnd(6)} ${m} ± ${s}  ${truth[j]!.toFixed(3).padStart(7)}`);
});
for (const w of post.warnings) console.log(`warning: ${w}`);

// Pictures of the run: the weighted corner plot (truths marked) and n_eff per round.
const corner = await plots.cornerPlot(post.samples, post.weights, engine.labels, { truths: truth });
const files = [
  await plots.writePlot(corner, join(engine.path, "corner")),
  await plots.writePlot(await plots.essPlot(fit.history), join(engine.path, "ess")),
];
console.log(`\nplots: ${files.map((f) => f.svg).join(", ")} (and .png)`);
