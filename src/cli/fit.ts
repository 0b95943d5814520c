/**
 * `nbi fit CONFIG`: runs the fit of a config into its run folder and saves the model there.
 * Simulations already in the store (an interrupted fit, or shards from `nbi simulate`) are used
 * as they are; finished rounds are replayed from their checkpoints.
 */
import { join } from "node:path";
import type { FitResult } from "../inference/engine.js";
import {
  GLOBAL_HELP,
  intOption,
  type Parsed,
  parse,
  positionals,
  stringOption,
  UsageError,
} from "./common.js";
import { loadConfig, type Overrides, type RunConfig, saveRun } from "./config.js";
import { samplesTable, writeTable } from "./data.js";
import { writeRunPlots } from "./plots.js";
import { Reporter, summarize, summaryTable } from "./report.js";
import { engineFor, fitOptions, roundsOf } from "./run.js";

export const FIT_HELP = `Usage: nbi fit CONFIG [options]

Fits the neural posterior of CONFIG (a .json file, or a .mjs/.ts module exporting the same
object) into its run folder: the simulation store (store/), the saved model (model.json,
weights.safetensors) and, with an observation, the weighted draws of all rounds
(fit-posterior.csv). Simulations already stored (an interrupted fit, or the shards of
'nbi simulate') are not run again.

Options:
      --path DIR      the run folder (default: the config's "path")
      --workers N     simulator worker threads (default: the config's, or the core count)
      --backend B     cpu, webgpu or auto
      --rounds N      run only the first N rounds (default: the config's fit.nRounds)
      --plots         also write corner, ESS and loss plots (SVG and PNG) into the run folder

${GLOBAL_HELP}`;

export const RUN_OPTIONS = {
  path: { type: "string" },
  workers: { type: "string" },
  backend: { type: "string" },
} as const;

/** --path, --workers and --backend as config overrides. */
export function overridesOf(command: string, values: Parsed<string>["values"]): Overrides {
  const backend = stringOption(values.backend);
  if (backend !== undefined && !["cpu", "webgpu", "auto"].includes(backend)) {
    throw new UsageError(
      `--backend expected cpu, webgpu or auto, got ${JSON.stringify(backend)}`,
      command,
    );
  }
  const workers = intOption(command, "workers", values.workers, 1);
  const path = stringOption(values.path);
  return {
    ...(path !== undefined ? { path } : {}),
    ...(workers !== undefined ? { workers } : {}),
    ...(backend !== undefined ? { backend: backend as Overrides["backend"] } : {}),
  };
}

export async function fitCommand(argv: readonly string[]): Promise<number> {
  const args = parse("fit", argv, {
    ...RUN_OPTIONS,
    rounds: { type: "string" },
    plots: { type: "boolean" },
  });
  if (args.help) {
    process.stdout.write(`${FIT_HELP}\n`);
    return 0;
  }
  const [configPath] = positionals("fit", args.positionals, ["CONFIG"]);
  const rounds = intOption("fit", "rounds", args.values.rounds, 1);
  const reporter = new Reporter(args.flags);
  const run = await loadConfig(configPath!, overridesOf("fit", args.values));
  await fitRun(run, reporter, {
    ...(rounds !== undefined ? { rounds } : {}),
    plots: args.values.plots === true,
  });
  return 0;
}

/** Fits, saves, writes the draws (and plots) and prints the summary. */
export async function fitRun(
  run: RunConfig,
  reporter: Reporter,
  options: { rounds?: number; plots?: boolean } = {},
): Promise<FitResult> {
  await saveRun(run);
  const engine = engineFor(run);
  const nRounds = options.rounds ?? roundsOf(run);
  reporter.info(`nbi fit: ${engine.prior.toString()}`);
  reporter.info(`run folder ${run.runDir}`);
  reporter.event("start", {
    command: "fit",
    runDir: run.runDir,
    prior: engine.prior.toJSON(),
    nRounds,
    nSims: run.fit.nSims,
  });
  const t0 = performance.now();
  const fit = await engine.fit(fitOptions(run, await reporter.fitHooks(), nRounds));
  const seconds = (performance.now() - t0) / 1000;
  await engine.save(run.runDir);
  const files: Record<string, string> = {
    model: join(run.runDir, "model.json"),
    weights: join(run.runDir, "weights.safetensors"),
  };
  reporter.result(`\nfit ${seconds.toFixed(1)} s (${fit.stopped}); model saved in ${run.runDir}`);
  let summary: ReturnType<typeof summarize> | undefined;
  if (fit.weights.length > 0) {
    files.samples = join(run.runDir, "fit-posterior.csv");
    const table = samplesTable([{ samples: fit.samples, weights: fit.weights }], fit.labels);
    await writeTable(files.samples, table.columns, table.data);
    summary = summarize(fit.samples, fit.weights, fit.labels);
    reporter.result(`weighted posterior of all rounds (${files.samples}):`);
    reporter.result(summaryTable(summary));
  } else {
    reporter.result(
      `amortized posterior trained; sample it with: nbi predict ${run.runDir} --obs FILE`,
    );
  }
  if (options.plots) {
    const plots = await writeRunPlots(
      run.runDir,
      { samples: fit.samples, weights: fit.weights, labels: fit.labels, history: fit.history },
      reporter,
    );
    for (const [what, file] of Object.entries(plots)) {
      files[what] = file;
      reporter.result(`${what} plot: ${file}`);
    }
  }
  reporter.event("summary", {
    command: "fit",
    seconds,
    stopped: fit.stopped,
    essHistory: fit.essHistory,
    labels: fit.labels,
    ...(summary ? { posterior: summary } : {}),
    files,
  });
  return fit;
}
