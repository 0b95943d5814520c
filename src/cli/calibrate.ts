/**
 * `nbi calibrate RUN_DIR`: is the amortized posterior a run folder saved calibrated over the
 * prior predictive? Test pairs from the prior and the simulator (with the fit's noise), SBC
 * ranks, HPD expected coverage, TARP and a verdict in words; --plots draws the rank histograms
 * and the coverage curve.
 */
import { join, resolve } from "node:path";
import { NBI } from "../inference/engine.js";
import { hostKey } from "../inference/host.js";
import type { Noise } from "../inference/train.js";
import {
  GLOBAL_HELP,
  interruptSignal,
  intOption,
  parse,
  positionals,
  stringOption,
  UsageError,
} from "./common.js";
import { loadConfig, loadRun, STORE_DIR, simulatorArgument } from "./config.js";
import { overridesOf, RUN_OPTIONS } from "./fit.js";
import { Reporter } from "./report.js";

export const CALIBRATE_HELP = `Usage: nbi calibrate RUN_DIR [options]

Checks the calibration of the amortized posterior that 'nbi fit' saved in RUN_DIR: draws test
parameters from the prior, simulates them (with the fit's noise), samples the posterior at each
simulation, and reports simulation-based calibration (SBC) ranks per parameter, the expected
coverage of highest-density regions, TARP, and a verdict in words ("over-confident: the 90%
highest-density region covers 71% of true parameters ..."). A sequential fit (several rounds
around one observation) is refused: its posterior is not meant to hold over the prior.

Calibration simulates, and a run folder is data, not code: the simulator it names is run only
with --simulator, --config or --trust-run-dir. The noise added to the test simulations is the
config's fit.noise with --config, else the Gaussian noise recorded in RUN_DIR; a model fitted to
light curves with gaps and error bars (fit.noise { "missing", "sigma" }) gives each test
simulation gaps and error bars of its own, from the model RUN_DIR/model.json records.

Options:
      --n-test N      test pairs to simulate (default 200, at least 10)
      --n-samples M   posterior draws per test pair (default 500, at least 20)
      --seed S        seed of the test pairs and draws (default: from the fit's seed)
      --plots DIR     write ranks.{svg,png} (rank histograms) and coverage.{svg,png} into DIR
      --simulator M   the simulator module to run: FILE.mjs or FILE.mjs#export
      --config CONFIG the config whose simulator (and noise) to use (the one 'nbi fit' ran)
      --trust-run-dir run the simulator RUN_DIR/nbi-config.json names
      --sim-timeout S stop a simulation after S seconds (worker simulators)
      --workers N     simulator worker threads
      --backend B     cpu, webgpu or auto

${GLOBAL_HELP}`;

export async function calibrateCommand(argv: readonly string[]): Promise<number> {
  const command = "calibrate";
  const args = parse(command, argv, {
    workers: RUN_OPTIONS.workers,
    backend: RUN_OPTIONS.backend,
    "sim-timeout": RUN_OPTIONS["sim-timeout"],
    simulator: { type: "string" },
    config: { type: "string" },
    "trust-run-dir": { type: "boolean" },
    "n-test": { type: "string" },
    "n-samples": { type: "string" },
    seed: { type: "string" },
    plots: { type: "string" },
  });
  if (args.help) {
    process.stdout.write(`${CALIBRATE_HELP}\n`);
    return 0;
  }
  const [runArg] = positionals(command, args.positionals, ["RUN_DIR"]);
  const runDir = resolve(runArg!);
  const overrides = overridesOf(command, args.values);
  const nTest = intOption(command, "n-test", args.values["n-test"], 10) ?? 200;
  const nSamples = intOption(command, "n-samples", args.values["n-samples"], 20) ?? 500;
  const seed = intOption(command, "seed", args.values.seed, 0);
  if (args.values.plots === "") throw new UsageError("--plots expected a folder", command);
  const plotsDir = stringOption(args.values.plots);
  const reporter = new Reporter(args.flags);

  const simulatorFlag = stringOption(args.values.simulator);
  const configFlag = stringOption(args.values.config);
  if (simulatorFlag !== undefined && configFlag !== undefined) {
    throw new UsageError("give either --simulator or --config, not both", command);
  }
  const saved = await loadRun(runDir, {
    ...(simulatorFlag !== undefined ? { simulator: await simulatorArgument(simulatorFlag) } : {}),
    ...(configFlag !== undefined ? { config: configFlag } : {}),
    trustRunDir: args.values["trust-run-dir"] === true,
  });
  if (saved.simulatorValue === undefined) {
    // Every test pair is a simulation, and nothing in the folder is run unasked.
    throw new UsageError(saved.simulatorNote ?? "a simulator is needed (--simulator)", command);
  }
  // The config given on the command line is trusted code: its noise may be a function.
  const noise: Noise | undefined =
    configFlag !== undefined ? (await loadConfig(configFlag)).fit.noise : saved.noise;
  const workers = overrides.workers ?? saved.workers;
  const backend = overrides.backend ?? saved.backend;
  const engine = await NBI.load(runDir, {
    simulator: saved.simulatorValue,
    path: join(runDir, STORE_DIR),
    ...(workers !== undefined ? { workers } : {}),
    ...(backend !== undefined ? { backend } : {}),
    ...(overrides.simTimeoutMs !== undefined ? { simTimeoutMs: overrides.simTimeoutMs } : {}),
  });
  reporter.event("start", { command, runDir, nTest, nSamples });
  // A gapped model's noise is its observation model, which model.json records and NBI.load
  // restores: the engine applies it with no noise given.
  if (noise === undefined && engine.observationModel === undefined) {
    reporter.warn(
      "no noise is recorded for this run: the test simulations get none (a fit with a noise " +
        "function needs --config CONFIG to apply it)",
    );
  }
  const t0 = performance.now();
  const bar = reporter.progress("calibrate: simulate", nTest);
  const result = await engine.calibrate({
    nTest,
    nSamples,
    ...(seed !== undefined ? { key: hostKey(seed) } : {}),
    ...(noise !== undefined ? { noise } : {}),
    signal: interruptSignal(),
    onSimulate: (done) => bar.update(done),
  });
  bar.stop();
  const seconds = (performance.now() - t0) / 1000;
  const { formatCalibration } = await import("../inference/calibration/format.js");
  reporter.result(formatCalibration(result));
  for (const w of result.warnings) reporter.warn(w);
  const plots: Record<string, string> = {};
  if (plotsDir !== undefined) {
    const dir = resolve(plotsDir);
    try {
      const p = await import("../plots/index.js");
      // Without resvg's native binary the SVGs are still written; one warning says why no PNG.
      let pngSkipped = false;
      const onWarning = (message: string): void => {
        if (!pngSkipped) reporter.warn(message);
        pngSkipped = true;
      };
      const ranks = await p.writePlot(await p.rankHistogramPlot(result.sbc), join(dir, "ranks"), {
        onWarning,
      });
      plots.ranks = ranks.png ?? ranks.svg;
      const coverage = await p.writePlot(
        await p.coveragePlot(result.coverage, result.tarp),
        join(dir, "coverage"),
        { onWarning },
      );
      plots.coverage = coverage.png ?? coverage.svg;
      reporter.result(
        `plots written to ${dir} (ranks, coverage; ${pngSkipped ? ".svg only" : ".svg and .png"})`,
      );
    } catch (error) {
      reporter.warn(`the calibration plots were not written: ${(error as Error).message}`);
    }
  }
  reporter.info(
    `calibrate: ${result.nRequested} test simulations and their posteriors in ${seconds.toFixed(1)} s`,
  );
  reporter.event("summary", { command, runDir, seconds, plots, ...result });
  return 0;
}
