/**
 * `nbi demo sine` and `nbi demo spectrum`: end-to-end SNPE-IS runs on built-in problems, printing
 * each round's n_eff and efficiency and the weighted posterior beside the truth, and writing the
 * corner, ESS and loss plots into the run folder.
 *
 * - sine: nbi's light-curve example (src/cli/demo-models/sine.ts), 3 rounds × 320 simulations, the
 *   same run as examples/sine.ts.
 * - spectrum: an emission line on a 128-bin spectrum (src/cli/demo-models/spectrum.ts) through nbi's
 *   default featurizer, the ResNet-GRU.
 *
 * The models live in src/cli/demo-models/ (compiled with the package, so the demos run installed;
 * examples/ re-exports them).
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { FeaturizerConfig } from "../featurizers/registry.js";
import { NBI } from "../inference/engine.js";
import { hostKey, keyAt, normals } from "../inference/host.js";
import type { Prior } from "../inference/priors.js";
import {
  GLOBAL_HELP,
  interruptSignal,
  intOption,
  parse,
  positionals,
  stringOption,
  UsageError,
} from "./common.js";
import * as sineDemo from "./demo-models/sine.js";
import * as spectrumDemo from "./demo-models/spectrum.js";
import { writeRunPlots } from "./plots.js";
import { Reporter, summarize, summaryTable } from "./report.js";

export const DEMO_HELP = `Usage: nbi demo sine|spectrum [options]

  sine       nbi's sine light curve (50 points; phase, amplitude, frequency): SNPE-IS,
             3 rounds × 320 simulations; the fit took 82 s with the MLP featurizer on a
             loaded 2-core Xeon VM (load ~5; bench/RESULTS.md), less on an idle machine
  spectrum   an emission line on a 128-bin spectrum (centre, width, amplitude,
             continuum) through nbi's ResNet-GRU featurizer: 3 rounds × 320 simulations,
             slower than sine (not benchmarked)

Prints n_eff and the efficiency of each round and the weighted posterior beside the truth,
and writes corner, ESS and loss plots (SVG and PNG) into the run folder.

Options:
      --featurizer F  sine: mlp (default) or resnet-gru; spectrum: resnet-gru (default,
                      nbi's channels 32→64) or resnet-gru-small (16→32, quicker)
      --epochs N      epochs per round (default: sine 60, spectrum 10)
      --seed N        seed of the run and of the observation's noise (default 0)
      --backend B     cpu, webgpu or auto
      --path DIR      the run folder (default: a new temporary folder)

${GLOBAL_HELP}`;

interface DemoModel {
  readonly title: string;
  readonly simulator: (theta: Float64Array) => Float64Array;
  readonly priors: Readonly<Record<string, Prior>>;
  readonly truth: readonly number[];
  readonly flow: { nDims: number; flowHidden?: number; numBlocks?: number };
  readonly featurizer: FeaturizerConfig;
  readonly noise: number;
  readonly length: number;
  readonly epochs: number;
}

async function sineModel(featurizer: string): Promise<DemoModel> {
  const m = sineDemo;
  if (featurizer !== "mlp" && featurizer !== "resnet-gru") {
    throw new UsageError(
      `--featurizer expected mlp or resnet-gru for the sine demo, got ${JSON.stringify(featurizer)}`,
      "demo",
    );
  }
  return {
    title: "sine light curve",
    simulator: m.sine,
    priors: m.priors,
    truth: m.truth,
    flow: m.flow,
    featurizer: featurizer === "mlp" ? m.mlpFeaturizer : m.resnetGruFeaturizer,
    noise: m.NOISE_SIGMA,
    length: m.LENGTH,
    epochs: 60,
  };
}

async function spectrumModel(featurizer: string): Promise<DemoModel> {
  const m = spectrumDemo;
  if (featurizer !== "resnet-gru" && featurizer !== "resnet-gru-small") {
    throw new UsageError(
      `--featurizer expected resnet-gru or resnet-gru-small for the spectrum demo, got ${JSON.stringify(featurizer)}`,
      "demo",
    );
  }
  return {
    title: "emission line",
    simulator: m.spectrum,
    priors: m.priors,
    truth: m.truth,
    flow: m.flow,
    featurizer:
      featurizer === "resnet-gru"
        ? m.featurizer
        : ({ ...m.featurizer, dimConvMin: 16, dimConvMax: 32 } as FeaturizerConfig),
    noise: m.NOISE_SIGMA,
    length: m.LENGTH,
    epochs: 10,
  };
}

export async function demoCommand(argv: readonly string[]): Promise<number> {
  const args = parse("demo", argv, {
    featurizer: { type: "string" },
    epochs: { type: "string" },
    seed: { type: "string" },
    backend: { type: "string" },
    path: { type: "string" },
  });
  if (args.help) {
    process.stdout.write(`${DEMO_HELP}\n`);
    return 0;
  }
  const [name] = positionals("demo", args.positionals, ["the demo's name (sine or spectrum)"]);
  const featurizer = stringOption(args.values.featurizer);
  let model: DemoModel;
  if (name === "sine") model = await sineModel(featurizer ?? "mlp");
  else if (name === "spectrum") model = await spectrumModel(featurizer ?? "resnet-gru");
  else
    throw new UsageError(
      `unknown demo ${JSON.stringify(name)} (expected sine or spectrum)`,
      "demo",
    );
  const seed = intOption("demo", "seed", args.values.seed, 0) ?? 0;
  const epochs = intOption("demo", "epochs", args.values.epochs, 1) ?? model.epochs;
  const backend = stringOption(args.values.backend);
  if (backend !== undefined && !["cpu", "webgpu", "auto"].includes(backend)) {
    throw new UsageError(
      `--backend expected cpu, webgpu or auto, got ${JSON.stringify(backend)}`,
      "demo",
    );
  }
  const path = resolve(
    stringOption(args.values.path) ?? mkdtempSync(join(tmpdir(), `nbi-${name}-`)),
  );
  const reporter = new Reporter(args.flags);

  // The observation: the true signal plus Gaussian noise, from a key of its own.
  const eps = normals(keyAt(hostKey(1000 + seed), 0), model.length);
  const xObs = model
    .simulator(Float64Array.from(model.truth))
    .map((v, i) => v + model.noise * eps[i]!);
  const engine = new NBI({
    flow: model.flow,
    featurizer: model.featurizer,
    simulator: model.simulator,
    priors: model.priors,
    path: join(path, "store"),
    seed,
    ...(backend ? { backend: backend as "cpu" | "webgpu" | "auto" } : {}),
  });
  reporter.info(`nbi ${name} demo: ${engine.prior.toString()}`);
  reporter.info(`run folder ${path}\n`);
  reporter.event("start", {
    command: "demo",
    demo: name,
    runDir: path,
    prior: engine.prior.toJSON(),
    truth: model.truth,
  });
  const t0 = performance.now();
  const fit = await engine.fit({
    xObs,
    nSims: 320,
    nRounds: 3,
    nEpochs: epochs,
    batchSize: 32,
    noise: model.noise,
    progress: false,
    ...(await reporter.fitHooks({ signal: interruptSignal() })),
  });
  const fitSeconds = (performance.now() - t0) / 1000;
  await engine.save(path);
  const t1 = performance.now();
  const post = await engine.predict(xObs, { xErr: model.noise, nSamples: 2000 });
  const predictSeconds = (performance.now() - t1) / 1000;

  const table = summarize(post.samples, post.weights, engine.labels, model.truth);
  reporter.result(
    `\nfit ${fitSeconds.toFixed(1)} s (${fit.stopped}); predict ${predictSeconds.toFixed(2)} s`,
  );
  reporter.result(
    `predict: n_eff ${post.ess.toFixed(0)} of ${post.nSimulations} (efficiency ${(100 * post.efficiency).toFixed(1)}%), ` +
      `Pareto k̂ ${post.paretoK.toFixed(2)}, log evidence ${post.logEvidence.toFixed(2)} ± ${post.logEvidenceSe.toFixed(2)}`,
  );
  reporter.result("\nweighted posterior beside the truth:");
  reporter.result(summaryTable(table));
  for (const w of post.warnings) reporter.warn(w);
  const plots = await writeRunPlots(
    path,
    {
      samples: post.samples,
      weights: post.weights,
      labels: engine.labels,
      truths: model.truth,
      history: fit.history,
      title: `${model.title}: weighted posterior`,
    },
    reporter,
  );
  for (const [what, file] of Object.entries(plots)) reporter.result(`${what} plot: ${file}`);
  reporter.event("summary", {
    command: "demo",
    demo: name,
    fitSeconds,
    predictSeconds,
    stopped: fit.stopped,
    essHistory: fit.essHistory,
    efficiency: fit.history.map((r) => r.efficiency ?? null),
    predict: {
      ess: post.ess,
      efficiency: post.efficiency,
      paretoK: post.paretoK,
      logEvidence: post.logEvidence,
      logEvidenceSe: post.logEvidenceSe,
    },
    posterior: table,
    runDir: path,
    plots,
  });
  return 0;
}
